"""An OpenAI-compatible endpoint on 127.0.0.1: the stand-in for a vendor's API (Chat Completions and Responses).

Answers with the offline LLM's ReAct replies and reports usage in the vendor's shape, including cached
prompt tokens and reasoning tokens, so the real provider code in CrewAI parses a real HTTP response. Every
call reports the same ``USAGE`` unless a ``usage`` function gives each request its own (then sums mean
something); ``usages`` keeps what was sent, in order, for the tests to compute their expectations from.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from crewtrace.offline_llm import OfflineLLM
from tests.local_http import LocalHTTPServer, QuietHandler

USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 64},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
# The same counts in the Responses API's shape (input_tokens includes the cached ones, output the reasoning).
RESPONSES_USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 64},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 12},
    "total_tokens": 150,
}

# The usage object for the n-th (1-based) generation request, in the shape of the endpoint it went to.
UsageFor = Callable[[int], dict[str, Any]]


def _call_arguments(parameters: dict[str, Any]) -> str:
    """Arguments for a tool call: every parameter of the schema, as the text "tracing"."""
    return json.dumps(dict.fromkeys(parameters.get("properties", {}), "tracing"))


def _choice(body: dict[str, Any], replier: OfflineLLM) -> dict[str, Any]:
    """A native tool call when tools are offered and none has run yet; else the offline reply as text."""
    messages = body.get("messages", [])
    tools = body.get("tools") or []
    if tools and not any(m.get("role") == "tool" for m in messages):
        function = tools[0]["function"]
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": function["name"], "arguments": _call_arguments(function.get("parameters", {}))},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"index": 0, "message": message, "finish_reason": "tool_calls"}
    return {"index": 0, "message": {"role": "assistant", "content": replier.answer(messages)}, "finish_reason": "stop"}


def _response_output(body: dict[str, Any], replier: OfflineLLM) -> list[dict[str, Any]]:
    """Responses API output items: a function call when tools are offered and none has run yet, else a message."""
    items = body.get("input") or []
    items = [{"role": "user", "content": items}] if isinstance(items, str) else items
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools and not any(i.get("type") == "function_call_output" for i in items):
        arguments = _call_arguments(tools[0].get("parameters", {}))
        call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": tools[0]["name"]}
        return [{**call, "arguments": arguments, "status": "completed"}]
    messages = [{"role": "system", "content": body.get("instructions") or ""}, *(i for i in items if "role" in i)]
    text = {"type": "output_text", "text": replier.answer(messages), "annotations": []}
    return [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [text]}]


class OpenAIServer:
    """Chat Completions (``/chat/completions``, streamed or not) and Responses (``/responses``) on 127.0.0.1.

    ``requests`` holds each generation request's body and ``usages`` the usage object sent back for it;
    ``paths`` every POST's path (other paths, and streamed Responses, are answered 404). ``extra``: a vendor's
    own top-level fields, added to every Chat Completions reply and chunk (Groq's ``service_tier``, ``x_groq``)."""

    def __init__(self, usage: UsageFor | None = None, extra: dict[str, Any] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.usages: list[dict[str, Any]] = []
        self.paths: list[str] = []
        replier = OfflineLLM()
        lock = threading.Lock()
        server_self = self

        def take(body: dict[str, Any], default: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            """Number the request and pick its usage, under a lock (the server is threaded)."""
            with lock:
                server_self.requests.append(body)
                number = len(server_self.requests)
                sent = usage(number) if usage is not None else default
                server_self.usages.append(sent)
                return number, sent

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                path = self.path.split("?", 1)[0].rstrip("/")
                server_self.paths.append(path)
                if path.endswith("/responses") and not body.get("stream"):
                    self._responses(body)
                elif path.endswith("/chat/completions"):
                    self._chat(body)
                else:
                    self.reply(404, b'{"error": {"message": "not served here"}}', "application/json")

            def _chat(self, body: dict[str, Any]) -> None:
                number, sent = take(body, USAGE)
                head = {"id": f"chatcmpl-{number}", "created": 1_700_000_000, "model": body.get("model", "gpt-4o-mini")}
                head.update(extra or {})
                choice = _choice(body, replier)
                if body.get("response_format"):  # structured output: a JSON object of the schema's fields
                    fields = body["response_format"].get("json_schema", {}).get("schema", {}).get("properties", {})
                    content = json.dumps(dict.fromkeys(fields, "tracing"))
                    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                if body.get("stream"):
                    wanted = (body.get("stream_options") or {}).get("include_usage")
                    self._stream(head, choice, sent if wanted else None)
                    return
                reply = {**head, "object": "chat.completion", "choices": [choice], "usage": sent}
                self.reply(200, json.dumps(reply).encode(), "application/json")

            def _responses(self, body: dict[str, Any]) -> None:
                number, sent = take(body, RESPONSES_USAGE)
                reply = {
                    "id": f"resp_{number}",
                    "object": "response",
                    "created_at": 1_700_000_000,
                    "model": body.get("model", "gpt-4o-mini"),
                    "status": "completed",
                    "output": _response_output(body, replier),
                    "parallel_tool_calls": True,
                    "tool_choice": "auto",
                    "tools": body.get("tools") or [],
                    "usage": sent,
                }
                self.reply(200, json.dumps(reply).encode(), "application/json")

            def _stream(self, head: dict[str, Any], choice: dict[str, Any], usage: dict[str, Any] | None) -> None:
                """The answer as server-sent chunks, then the usage chunk when asked for."""
                message = choice["message"]
                deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
                if message.get("tool_calls"):
                    deltas.append({"tool_calls": [{"index": 0, **message["tool_calls"][0]}]})
                else:
                    text = message["content"]
                    deltas += [{"content": text[i : i + 40]} for i in range(0, len(text), 40)]
                chunks = [{"index": 0, "delta": delta, "finish_reason": None} for delta in deltas]
                chunks.append({"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]})
                payloads = [{**head, "object": "chat.completion.chunk", "choices": [c]} for c in chunks]
                if usage is not None:
                    payloads.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for payload in payloads:
                    self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        self._http = LocalHTTPServer(Handler)
        self.base_url = f"{self._http.base_url}/v1"

    def __enter__(self) -> OpenAIServer:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)
