"""A deterministic, offline ``crewai.BaseLLM`` for the demo and tests: no network, no API key.

It follows CrewAI's text (ReAct) protocol: when the agent has tools and has not used one yet it asks for
the first tool, otherwise it gives a final answer. It emits CrewAI's LLM events and reports token usage
(about four characters per token), as a real provider does.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import nullcontext
from typing import Any

from crewai import BaseLLM
from crewai.events.types.llm_events import LLMCallType
from pydantic import Field, PrivateAttr

from crewtrace import crewai_releases

try:  # the scope that gives an LLM call's events their call_id (crewai 1.10.0)
    from crewai.llms.base_llm import llm_call_context
except ImportError:  # older releases: crewtrace does not trace them, but the demo's LLM still runs
    llm_call_context = nullcontext  # type: ignore[assignment]  # (a no-op scope of the same use)

_TOOL = re.compile(r"^Tool Name: (?P<name>.+?)\nTool Arguments: (?P<schema>\{.*?\n\})", re.MULTILINE | re.DOTALL)
_COWORKERS = re.compile(r"following coworkers: (?P<names>[^\n]+)")
_TASK = re.compile(r"Current Task: (?P<task>.+)")


class OfflineLLMError(RuntimeError):
    """Raised by :class:`OfflineLLM` on a call chosen to fail."""


def count_tokens(text: str) -> int:
    """The offline model's token count: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def _content(message: Any) -> str:
    if isinstance(message, dict):
        content = message.get("content")
        return content if isinstance(content, str) else json.dumps(content, default=str)
    return str(message)


def _role(message: Any) -> str:
    return str(message.get("role", "user")) if isinstance(message, dict) else "user"


class OfflineLLM(BaseLLM):
    """Deterministic LLM. ``fail_calls`` lists 1-based call numbers that raise :class:`OfflineLLMError`.

    With ``stream=True`` it emits each word of the answer as a stream chunk event before completing.
    """

    model: str = "crewtrace-offline"
    provider: str = "crewtrace"
    fail_calls: list[int] = Field(default_factory=list)
    stream: bool | None = None  # a BaseLLM field since crewai 1.14.7; declared for the releases before
    _calls: int = PrivateAttr(default=0)
    _usages: list[dict[str, int]] = PrivateAttr(default_factory=list)

    def __init__(self, model: str = "crewtrace-offline", provider: str = "crewtrace", **data: Any) -> None:
        if crewai_releases.llm_is_pydantic():
            super().__init__(model=model, provider=provider, **data)
            return
        # Before crewai 1.13.0 BaseLLM is a plain class: its __init__ takes model and extra keywords only.
        fail_calls, stream = list(data.pop("fail_calls", None) or []), data.pop("stream", None)
        super().__init__(model=model, **data)
        self.provider, self.fail_calls, self.stream = provider, fail_calls, stream
        self._calls, self._usages = 0, []

    @property
    def usages(self) -> list[dict[str, int]]:
        """The usage this LLM reported for each successful call, in order."""
        return list(self._usages)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        with llm_call_context():
            self._emit_call_started_event(
                messages=messages,
                tools=tools,
                callbacks=callbacks,
                available_functions=available_functions,
                from_task=from_task,
                from_agent=from_agent,
            )
            self._calls += 1
            if self._calls in self.fail_calls:
                error = OfflineLLMError(f"offline LLM call {self._calls} failed on purpose")
                self._emit_call_failed_event(error=str(error), from_task=from_task, from_agent=from_agent)
                raise error
            listed = messages if isinstance(messages, list) else [{"role": "user", "content": str(messages)}]
            answer = self.answer(listed) if response_model is None else structured_answer(response_model)
            if crewai_releases.streams(self):
                for piece in re.findall(r"\S+\s*", answer):
                    self._emit_stream_chunk_event(piece, from_task=from_task, from_agent=from_agent)
            prompt = "".join(_content(m) for m in listed)
            usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(answer)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self._usages.append(usage)
            self._track_token_usage_internal(usage)
            details = {"usage": usage, "finish_reason": "stop"}  # what this crewai release's event can carry
            accepted = crewai_releases.completed_event_arguments()
            self._emit_call_completed_event(
                response=answer,
                call_type=LLMCallType.LLM_CALL,
                from_task=from_task,
                from_agent=from_agent,
                messages=messages,
                **{name: value for name, value in details.items() if name in accepted},  # type: ignore[arg-type]
            )
            return answer

    async def acall(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        return self.call(messages, *args, **kwargs)

    def answer(self, messages: list[Any]) -> str:
        """The reply for a conversation: a tool request first (if tools are offered), then a final answer."""
        system = "\n".join(_content(m) for m in messages if _role(m) == "system")
        rest = "\n".join(_content(m) for m in messages if _role(m) != "system")
        task_match = _TASK.search(rest)
        task = task_match.group("task").strip() if task_match else rest.strip()[:80]
        tool = _TOOL.search(system)
        observations = re.findall(r"Observation:\s*(.+)", rest)
        if tool and not observations:
            coworkers = _COWORKERS.search(system)
            arguments = _arguments(tool.group("schema"), task)
            if coworkers and "coworker" in arguments:  # hierarchical manager: delegate to the first coworker
                arguments["coworker"] = coworkers.group("names").split(",")[0].strip()
            return (
                f"Thought: I should use {tool.group('name')} first\n"
                f"Action: {tool.group('name')}\nAction Input: {json.dumps(arguments)}"
            )
        basis = f" using {observations[-1].strip()}" if observations else ""
        return f"Thought: I now know the final answer\nFinal Answer: Offline answer to '{task}'{basis}."

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        """The offline model's own (native) count, so CrewAI does not warn about estimating it."""
        listed = messages if isinstance(messages, list) else [messages]
        return count_tokens("".join(_content(m) for m in listed))

    def supports_function_calling(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 128_000


def structured_answer(model: Any) -> str:
    """A JSON reply valid for a pydantic ``response_model`` (a guardrail verdict, a plan, …): every field filled."""
    schema = model.model_json_schema() if hasattr(model, "model_json_schema") else {}
    return json.dumps(_instance(schema, schema.get("$defs", {}), depth=0))


def _instance(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> Any:
    if "$ref" in schema and depth < 8:
        return _instance(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs, depth + 1)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return _instance(next((o for o in options if o.get("type") != "null"), options[0]), defs, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        return {name: _instance(spec, defs, depth + 1) for name, spec in schema.get("properties", {}).items()}
    if kind == "array":
        return [_instance(schema.get("items", {}), defs, depth + 1)] if depth < 8 else []
    samples = {"boolean": True, "integer": 1, "number": 1.0, "null": None}
    return samples.get(kind, "Offline answer.")


def _arguments(schema_text: str, task: str) -> dict[str, Any]:
    """Arguments for a tool call that satisfy the tool's JSON schema, derived from the task text."""
    try:
        properties = json.loads(schema_text).get("properties", {})
    except (ValueError, AttributeError):
        return {}
    samples = {"integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}
    return {name: samples.get(spec.get("type"), task[:60]) for name, spec in properties.items()}
