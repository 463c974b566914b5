"""Builders of the agent span, ``invoke_agent {role}``, for crew agents and standalone (lite) agents.

Pure functions of (source, event); tracing/event_table.py says which event calls which, and
docs/span-model.md documents every name written here.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from crewtrace import attributes
from crewtrace.tracing.builders.common import Attributes, SpanStart, model_of, provider_of, put, put_text, tool_names
from crewtrace.tracing.content import ContentPolicy


def _agent_span(
    role: str, agent_id: Any, llm: Any, tools: Any, goal: Any, backstory: Any, prompt: Any, policy: ContentPolicy
) -> SpanStart:
    """``invoke_agent {role}`` with the attributes shared by crew agents and standalone agents."""
    attrs: Attributes = {
        attributes.GEN_AI_OPERATION_NAME: attributes.OP_INVOKE_AGENT,
        attributes.GEN_AI_AGENT_NAME: role,
    }
    put(attrs, attributes.GEN_AI_AGENT_ID, str(agent_id) if agent_id else None)
    model = model_of(llm)
    put(attrs, attributes.GEN_AI_REQUEST_MODEL, model)
    put(attrs, attributes.GEN_AI_PROVIDER_NAME, provider_of(llm, model) if llm is not None else None)
    if tools:
        attrs[attributes.AGENT_TOOLS] = tool_names(tools)
    put_text(attrs, attributes.AGENT_GOAL, goal, policy)
    put_text(attrs, attributes.AGENT_BACKSTORY, backstory, policy)
    put_text(attrs, attributes.AGENT_TASK_PROMPT, prompt, policy)  # a standalone agent's messages
    return SpanStart(f"{attributes.OP_INVOKE_AGENT} {role}", SpanKind.INTERNAL, attrs)


def agent_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """agent_execution_started: ``invoke_agent {role}``."""
    agent = getattr(event, "agent", None) or source
    role = str(getattr(agent, "role", None) or getattr(event, "agent_role", None) or "agent")
    return _agent_span(
        role,
        getattr(agent, "id", None),
        getattr(agent, "llm", None),
        getattr(event, "tools", None) or getattr(agent, "tools", None),
        getattr(agent, "goal", None),
        getattr(agent, "backstory", None),
        None,  # the task prompt repeats the task span's description and context: not stored again
        policy,
    )


def lite_agent_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """lite_agent_execution_started (``Agent.kickoff()`` outside a crew): ``invoke_agent {role}``."""
    info = getattr(event, "agent_info", None) or {}
    role = str(info.get("role") or getattr(source, "role", None) or "agent")
    return _agent_span(
        role,
        info.get("id") or getattr(source, "id", None),
        getattr(source, "llm", None),
        getattr(event, "tools", None),
        info.get("goal"),
        info.get("backstory"),
        getattr(event, "messages", None),
        policy,
    )


def agent_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.AGENT_OUTPUT, getattr(event, "output", None), policy)
    return attrs
