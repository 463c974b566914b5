"""Span names, operation names, attribute keys and metric names: every name crewtrace writes, in one place.

Three kinds, kept apart below: stable OpenTelemetry names, imported from ``opentelemetry.semconv``; GenAI
names, typed here because the GenAI conventions are still in development (they follow
github.com/open-telemetry/semantic-conventions-genai, whose names may change before they are stable); and
crewtrace's own names for CrewAI's facts, under ``crewai.*`` (``crewtrace.*`` for the tracer's own
delivery). docs/span-model.md documents each, and lists every rename in its changelog.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv.attributes import error_attributes, exception_attributes

# --- Stable OpenTelemetry names ----------------------------------------------------------------------------------
ERROR_TYPE: Final = error_attributes.ERROR_TYPE
ERROR_TYPE_OTHER: Final = error_attributes.ErrorTypeValues.OTHER.value
EXCEPTION_EVENT: Final = "exception"  # the event name the SDK's record_exception() uses
EXCEPTION_TYPE: Final = exception_attributes.EXCEPTION_TYPE
EXCEPTION_MESSAGE: Final = exception_attributes.EXCEPTION_MESSAGE

# --- GenAI semantic conventions (in development) ----------------------------------------------------------------

# The schema the names follow: 1.41.1 is the last core semantic-conventions release that still held the GenAI
# conventions (they moved to semantic-conventions-genai afterwards, which has published no release since). Every
# GenAI name below is in that release (tests/test_vocabulary.py).
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.1"

# gen_ai.operation.name values, also the first word of each span name.
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_EXECUTE_TASK: Final = "execute_task"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"
# First word of a flow method's span name (not a GenAI operation, so no gen_ai.operation.name).
SPAN_FLOW_METHOD: Final = "flow_method"

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_METHOD_TOOLS_CALL: Final = "tools/call"
TOOL_TYPE_FUNCTION: Final = "function"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"

# --- Other OpenTelemetry names in development (session and user registries) -------------------------------------
SESSION_ID: Final = "session.id"
USER_ID: Final = "user.id"

# --- crewtrace's own names: CrewAI's facts ----------------------------------------------------------------------
RUN_TAGS: Final = "crewai.tags"  # crewtrace.context(tags=...)
RUN_METADATA_PREFIX: Final = "crewai.metadata."  # crewtrace.context(metadata=...): one attribute per key
CREWAI_VERSION: Final = "crewai.version"
CREW_ID: Final = "crewai.crew.id"
CREW_KEY: Final = "crewai.crew.key"
CREW_PROCESS: Final = "crewai.crew.process"
CREW_INPUTS: Final = "crewai.crew.inputs"
CREW_TASK_COUNT: Final = "crewai.crew.task_count"
CREW_AGENT_COUNT: Final = "crewai.crew.agent_count"
CREW_FINAL_OUTPUT: Final = "crewai.crew.final_output"

TASK_ID: Final = "crewai.task.id"
TASK_KEY: Final = "crewai.task.key"
TASK_NAME: Final = "crewai.task.name"
TASK_INDEX: Final = "crewai.task.index"
TASK_DESCRIPTION: Final = "crewai.task.description"
TASK_EXPECTED_OUTPUT: Final = "crewai.task.expected_output"
TASK_CONTEXT: Final = "crewai.task.context"
TASK_AGENT_ROLE: Final = "crewai.task.agent_role"
TASK_ASYNC_EXECUTION: Final = "crewai.task.async_execution"
TASK_OUTPUT: Final = "crewai.task.output"

AGENT_ROLE: Final = "crewai.agent.role"
AGENT_GOAL: Final = "crewai.agent.goal"
AGENT_BACKSTORY: Final = "crewai.agent.backstory"
AGENT_TOOLS: Final = "crewai.agent.tools"
AGENT_TASK_PROMPT: Final = "crewai.agent.task_prompt"
AGENT_OUTPUT: Final = "crewai.agent.output"

LLM_CALL_ID: Final = "crewai.llm.call_id"
LLM_CALL_TYPE: Final = "crewai.llm.call_type"
LLM_STREAM: Final = "crewai.llm.stream"

FLOW_NAME: Final = "crewai.flow.name"
FLOW_ID: Final = "crewai.flow.id"
FLOW_INPUTS: Final = "crewai.flow.inputs"
FLOW_OUTPUT: Final = "crewai.flow.output"
FLOW_METHOD_NAME: Final = "crewai.flow.method.name"
FLOW_METHOD_PARAMS: Final = "crewai.flow.method.params"
FLOW_METHOD_OUTPUT: Final = "crewai.flow.method.output"

TOOL_ATTEMPT: Final = "crewai.tool.attempt"
TOOL_CLASS: Final = "crewai.tool.class"
TOOL_FROM_CACHE: Final = "crewai.tool.from_cache"

LLM_COST_USD: Final = "crewai.llm.cost_usd"
LLM_TIME_TO_FIRST_CHUNK: Final = "crewai.llm.time_to_first_chunk"
LLM_CHUNK_COUNT: Final = "crewai.llm.chunk_count"

# Roll-ups on crew, task, agent, flow (and other) spans: the LLM calls beneath them (usage.Totals).
USAGE_INPUT_TOKENS: Final = "crewai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "crewai.usage.output_tokens"
USAGE_TOTAL_TOKENS: Final = "crewai.usage.total_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "crewai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "crewai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "crewai.usage.reasoning.output_tokens"
USAGE_REQUESTS: Final = "crewai.usage.requests"
USAGE_UNPRICED_REQUESTS: Final = "crewai.usage.unpriced_requests"
USAGE_COST_USD: Final = "crewai.usage.cost_usd"

# Steps of a run besides the main units (tracing/builders/steps.py).
SPAN_GUARDRAIL: Final = "guardrail"
GUARDRAIL_NAME: Final = "crewai.guardrail.name"
GUARDRAIL_TYPE: Final = "crewai.guardrail.type"
GUARDRAIL_DESCRIPTION: Final = "crewai.guardrail.description"
GUARDRAIL_RETRY_COUNT: Final = "crewai.guardrail.retry_count"
GUARDRAIL_PASSED: Final = "crewai.guardrail.passed"
GUARDRAIL_FEEDBACK: Final = "crewai.guardrail.feedback"

SPAN_REASONING: Final = "agent_reasoning"
REASONING_ATTEMPT: Final = "crewai.reasoning.attempt"
REASONING_READY: Final = "crewai.reasoning.ready"
REASONING_PLAN: Final = "crewai.reasoning.plan"

SPAN_MEMORY_QUERY: Final = "memory_query"
SPAN_MEMORY_SAVE: Final = "memory_save"
SPAN_MEMORY_RETRIEVAL: Final = "memory_retrieval"
MEMORY_QUERY: Final = "crewai.memory.query"
MEMORY_LIMIT: Final = "crewai.memory.limit"
MEMORY_SCORE_THRESHOLD: Final = "crewai.memory.score_threshold"
MEMORY_RESULT_COUNT: Final = "crewai.memory.result_count"
MEMORY_RESULTS: Final = "crewai.memory.results"
MEMORY_VALUE: Final = "crewai.memory.value"
MEMORY_CONTENT: Final = "crewai.memory.content"

SPAN_KNOWLEDGE_QUERY: Final = "knowledge_query"
SPAN_KNOWLEDGE_SEARCH: Final = "knowledge_search"
KNOWLEDGE_TASK_PROMPT: Final = "crewai.knowledge.task_prompt"
KNOWLEDGE_QUERY: Final = "crewai.knowledge.query"
KNOWLEDGE_RESULTS: Final = "crewai.knowledge.results"

SPAN_MCP_CONNECT: Final = "mcp_connect"
MCP_SERVER_NAME: Final = "crewai.mcp.server.name"
MCP_SERVER_URL: Final = "crewai.mcp.server.url"
MCP_TRANSPORT: Final = "crewai.mcp.transport"
MCP_RECONNECT: Final = "crewai.mcp.reconnect"
# Span events marking moments inside a span (tracing/builders/steps.py).
EVENT_TOOL_FAILURE: Final = "crewai.tool.failure"
EVENT_TOOL_SELECTION_ERROR: Final = "crewai.tool.selection_error"
EVENT_TOOL_INPUT_ERROR: Final = "crewai.tool.input_error"
TOOL_ERROR: Final = "crewai.tool.error"
EVENT_LLM_FIRST_CHUNK: Final = "crewai.llm.first_chunk"

# Metrics (tracing/metrics.py) that no convention defines.
METRIC_AGENT_DURATION: Final = "crewai.agent.duration"  # was gen_ai.invoke_agent.duration (invented)
METRIC_TOOL_DURATION: Final = "crewai.tool.duration"  # was gen_ai.execute_tool.duration (invented)
METRIC_COST: Final = "crewai.llm.cost"
METRIC_CREW_RUNS: Final = "crewai.crew.runs"
METRIC_SPANS_DROPPED: Final = "crewtrace.spans.dropped"
SPANS_DROPPED_REASON: Final = "crewtrace.drop.reason"
# crewtrace.drop.reason values: why spans were not delivered (setup/losses.py says what to do for each).
DROPPED_NOTHING_LISTENING: Final = "nothing_listening"  # the endpoint refused the connection
DROPPED_TOO_LARGE: Final = "too_large"  # the receiver refused the request's size
DROPPED_TIMED_OUT: Final = "timed_out"  # no answer within the timeout
DROPPED_REJECTED: Final = "rejected"  # the receiver answered with an error status
DROPPED_WRONG_PROTOCOL: Final = "wrong_protocol"  # gRPC sent to an OTLP/HTTP port, or the other way round
DROPPED_FILE_UNWRITABLE: Final = "file_unwritable"
DROPPED_EXPORT_FAILED: Final = "export_failed"  # failed, for a reason none of the above
DROPPED_NOT_SENT: Final = "not_sent"  # pushed out of the full queue, or still queued when shutdown gave up
CREW_RUN_STATUS: Final = "crewai.crew.status"
RUN_STATUS_OK: Final = "ok"
RUN_STATUS_ERROR: Final = "error"

# Span event on the agent (or other parent) span for an LLM call whose span another instrumentation made:
# what that span lacks, since it ended before CrewAI reported the call's usage.
EVENT_LLM_CALL: Final = "crewai.llm.call"
LLM_SPAN_ID: Final = "crewai.llm.span_id"  # the other instrumentation's span of the call, hex

# Span event on an LLM span for the "Thought:" of its ReAct answers.
EVENT_AGENT_THOUGHT: Final = "crewai.agent.thought"
AGENT_THOUGHT_TEXT: Final = "crewai.agent.thought.text"

# Set on a span crewtrace had to close itself because CrewAI never sent its ending event.
SPAN_INCOMPLETE: Final = "crewai.span.incomplete"
# Set on a span whose longest values were cut because it was larger than one export request may be.
SPAN_TRUNCATED: Final = "crewai.span.truncated"

# Names and labels written whatever the capture switch says (the span name too): secrets in them are masked
# (ContentPolicy.label), as in captured text.
LABEL_ATTRIBUTES: Final = frozenset(
    {
        GEN_AI_WORKFLOW_NAME,
        GEN_AI_AGENT_NAME,
        GEN_AI_TOOL_NAME,
        GEN_AI_REQUEST_MODEL,
        TASK_NAME,
        TASK_AGENT_ROLE,
        AGENT_ROLE,
        AGENT_TOOLS,
        FLOW_NAME,
        FLOW_METHOD_NAME,
        GUARDRAIL_NAME,
        MCP_SERVER_NAME,
        TOOL_CLASS,
    }
)
