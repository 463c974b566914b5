"""Ollama's native API on 127.0.0.1 (``/api/generate`` and ``/api/chat``): the stand-in for a local Ollama.

litellm's ``ollama/`` route posts one flattened prompt to ``/api/generate``; when tools are offered it lists
them in the prompt, asks for ``format: json`` and reads a ``{"name", "arguments"}`` reply as a tool call.
``ollama_chat/`` posts messages to ``/api/chat``. Ollama reports its counts as ``prompt_eval_count`` and
``eval_count`` (no cached or reasoning counts); ``usages`` keeps what was sent for each request, in order.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Callable
from typing import Any

from crewtrace.offline_llm import OfflineLLM
from tests.local_http import LocalHTTPServer, QuietHandler

# The counts for the n-th (1-based) generation request: {"prompt_eval_count": ..., "eval_count": ...}.
CountsFor = Callable[[int], dict[str, int]]
COUNTS = {"prompt_eval_count": 120, "eval_count": 30}
_TIMINGS = {"total_duration": 5_000_000, "load_duration": 1_000_000, "prompt_eval_duration": 2_000_000}


def _listed_tool(prompt: str) -> dict[str, Any] | None:
    """The first function litellm listed in a flattened prompt (one Python literal per line), if any."""
    for line in prompt.splitlines():
        if line.startswith("{'type': 'function'"):
            return ast.literal_eval(line)["function"]
    return None


def _tool_call(function: dict[str, Any]) -> dict[str, Any]:
    properties = function.get("parameters", {}).get("properties", {})
    return {"name": function["name"], "arguments": dict.fromkeys(properties, "tracing")}


def _generate(body: dict[str, Any], replier: OfflineLLM) -> dict[str, Any]:
    """``/api/generate``: a JSON tool call while the listed tool has not been called, else the final answer."""
    prompt = body.get("prompt", "")
    function = _listed_tool(prompt) if body.get("format") == "json" else None
    if function is not None:
        call = json.dumps(_tool_call(function))
        if call not in prompt:  # litellm replays the call we made in the prompt once the tool has run
            return {"response": call}
    return {"response": replier.answer([{"role": "user", "content": prompt}])}


def _chat(body: dict[str, Any], replier: OfflineLLM) -> dict[str, Any]:
    """``/api/chat``: a native tool call when tools are offered and none has run yet, else the ReAct reply."""
    messages = body.get("messages", [])
    tools = body.get("tools") or []
    if tools and not any(m.get("role") == "tool" for m in messages):
        message = {"role": "assistant", "content": "", "tool_calls": [{"function": _tool_call(tools[0]["function"])}]}
        return {"message": message}
    return {"message": {"role": "assistant", "content": replier.answer(messages)}}


class OllamaServer:
    """``/api/generate`` and ``/api/chat`` on 127.0.0.1, not streamed; other paths are answered 404."""

    def __init__(self, counts: CountsFor | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.usages: list[dict[str, int]] = []
        self.paths: list[str] = []
        replier = OfflineLLM()
        lock = threading.Lock()
        server_self = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server_self.paths.append(self.path)
                self.reply(404, b'{"error": "not served here"}', "application/json")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                path = self.path.split("?", 1)[0].rstrip("/")
                server_self.paths.append(path)
                answer = {"/api/generate": _generate, "/api/chat": _chat}.get(path)
                if answer is None or body.get("stream"):
                    self.reply(404, b'{"error": "not served here"}', "application/json")
                    return
                with lock:
                    server_self.requests.append(body)
                    sent = counts(len(server_self.requests)) if counts is not None else COUNTS
                    server_self.usages.append(sent)
                head = {"model": body.get("model", ""), "created_at": "2026-01-01T00:00:00Z"}
                reply = {**head, **answer(body, replier), "done": True, "done_reason": "stop", **_TIMINGS, **sent}
                self.reply(200, json.dumps(reply).encode(), "application/json")

        self._http = LocalHTTPServer(Handler)
        self.base_url = self._http.base_url

    def __enter__(self) -> OllamaServer:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)
