"""CrewAI's own fixes across releases that change what a test can expect, detected from the installed crewai.

crewtrace does nothing about these (they are CrewAI's behaviour, traced faithfully); the differences crewtrace
does handle are in src/crewtrace/crewai_releases.py. Each check names the release that fixed it. Two read
CrewAI's source, because the fix left nothing else to test for: a later rewrite reads as fixed.
"""

from __future__ import annotations

import inspect
import re
from functools import cache


@cache
def calls_strict_tools() -> bool:
    """CrewAI can call a tool whose schema forbids extra arguments, as an MCP server's tools do (1.13.0):
    ``ToolUsage`` passes the agent's and task's fingerprints beside the arguments; before, it adds them as a
    ``security_context`` argument, the tool's schema rejects it and the tool is never called."""
    from crewai.tools.tool_usage import ToolUsage

    return not hasattr(ToolUsage, "_add_fingerprint_metadata")


@cache
def mcp_connection_errors_propagate() -> bool:
    """A native MCP server that cannot be reached fails the agent with its connection error (1.14.4); before,
    ``MCPToolResolver._resolve_native`` swallows it (an ``except RuntimeError`` that does not re-raise) and
    fails with an ``UnboundLocalError`` about ``tools_list`` instead."""
    from crewai.mcp.tool_resolver import MCPToolResolver

    source = inspect.getsource(MCPToolResolver._resolve_native)
    _, found, rest = source.partition('"cancel scope" in error_msg')
    if not found:  # that handler was rewritten later, re-raising
        return True
    handler = rest.partition("except asyncio.CancelledError")[0]
    return re.search(r"^\s*raise\s*$", handler, re.MULTILINE) is not None


@cache
def waits_for_memory_saves() -> bool:
    """A crew waits for its agents' background memory saves before it emits its completion (1.15.3); before,
    it waits only after, so a save's events come after the crew's end (and before 1.15.0 memory uses
    gpt-4o-mini, unreachable offline, so no save happens at all)."""
    from crewai.crew import Crew

    return hasattr(Crew, "_drain_memory_writes")


@cache
def executor_starts_each_task_afresh() -> bool:
    """An agent starts each task with a fresh conversation (1.14.4); before, ``CrewAgentExecutor.invoke``, run
    for each of an agent's tasks by the one executor, only appends to its messages, so a task's LLM calls
    also see the agent's earlier tasks. (``CrewAgentExecutor`` is gone by 1.15.30: its successor starts afresh.)"""
    try:
        from crewai.agents.crew_agent_executor import CrewAgentExecutor
    except ImportError:
        return True
    return "self.messages = []" in inspect.getsource(CrewAgentExecutor.invoke)
