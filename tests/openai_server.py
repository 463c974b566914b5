"""An OpenAI-compatible chat completions endpoint on 127.0.0.1: the stand-in for a vendor's API.

Answers with the offline LLM's ReAct replies and reports usage in OpenAI's shape, including cached
prompt tokens and reasoning tokens, so the real provider code in CrewAI parses a real HTTP response.
"""

from __future__ import annotations

import json
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


def _choice(body: dict[str, Any], replier: OfflineLLM) -> dict[str, Any]:
    """A native tool call when tools are offered and none has run yet; else the offline reply as text."""
    messages = body.get("messages", [])
    tools = body.get("tools") or []
    if tools and not any(m.get("role") == "tool" for m in messages):
        function = tools[0]["function"]
        properties = function.get("parameters", {}).get("properties", {})
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": function["name"], "arguments": json.dumps(dict.fromkeys(properties, "tracing"))},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"index": 0, "message": message, "finish_reason": "tool_calls"}
    return {"index": 0, "message": {"role": "assistant", "content": replier.answer(messages)}, "finish_reason": "stop"}


class OpenAIServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        replier = OfflineLLM()
        server_self = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server_self.requests.append(body)
                head = {
                    "id": f"chatcmpl-{len(server_self.requests)}",
                    "created": 1_700_000_000,
                    "model": body.get("model", "gpt-4o-mini"),
                }
                choice = _choice(body, replier)
                if body.get("response_format"):  # structured output: a JSON object of the schema's fields
                    fields = body["response_format"].get("json_schema", {}).get("schema", {}).get("properties", {})
                    content = json.dumps(dict.fromkeys(fields, "tracing"))
                    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                if body.get("stream"):
                    self._stream(head, choice, bool((body.get("stream_options") or {}).get("include_usage")))
                    return
                reply = {**head, "object": "chat.completion", "choices": [choice], "usage": USAGE}
                self.reply(200, json.dumps(reply).encode(), "application/json")

            def _stream(self, head: dict[str, Any], choice: dict[str, Any], usage: bool) -> None:
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
                if usage:
                    payloads.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": USAGE})
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
