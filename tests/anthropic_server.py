"""An Anthropic Messages API endpoint on 127.0.0.1: the stand-in for api.anthropic.com.

Answers ``POST /v1/messages`` with the offline LLM's ReAct replies, or a ``tool_use`` block when tools are offered
and none has run yet, as a JSON message or as Anthropic's server-sent events (``stream: true``). Each call reports
its own usage with cache reads and cache writes (see :data:`USAGES`), so sums over a crew's calls mean something.
Every answered call is kept in :attr:`AnthropicServer.calls`, in order, with the usage sent for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crewtrace.offline_llm import OfflineLLM
from tests.local_http import LocalHTTPServer, QuietHandler

# Usage of the 1st, 2nd, ... call (repeated after the last), as Anthropic reports it: ``input_tokens`` is only the
# input after the last cache breakpoint; cache reads and writes come on top. All non-zero and all different.
USAGES: tuple[dict[str, int], ...] = (
    {"input_tokens": 412, "cache_creation_input_tokens": 1536, "cache_read_input_tokens": 128, "output_tokens": 57},
    {"input_tokens": 95, "cache_creation_input_tokens": 210, "cache_read_input_tokens": 1664, "output_tokens": 133},
    {"input_tokens": 61, "cache_creation_input_tokens": 37, "cache_read_input_tokens": 1874, "output_tokens": 88},
)
THINKING = "The notebook answered; I can write the final answer now."


@dataclass
class Call:
    """One answered ``/v1/messages`` request: its body, the answer's id, content blocks and usage, and whether it
    was streamed."""

    body: dict[str, Any]
    message_id: str
    content: list[dict[str, Any]]
    usage: dict[str, int]
    stream: bool


def _text(content: Any) -> str:
    """A message's content (a string or a list of blocks) as plain text, for the offline replier."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(_text(block.get("content")))
    return "\n".join(parts)


def _blocks(body: dict[str, Any], replier: OfflineLLM) -> tuple[list[dict[str, Any]], str]:
    """The reply's content blocks and stop reason: a tool_use while no tool result is in the conversation, else
    a thinking block and the offline reply as text."""
    messages = body.get("messages", [])
    tools = body.get("tools") or []
    answered = any(
        isinstance(m.get("content"), list) and any(b.get("type") == "tool_result" for b in m["content"])
        for m in messages
    )
    if tools and not answered:
        tool = tools[0]
        properties = tool.get("input_schema", {}).get("properties", {})
        use = {
            "type": "tool_use",
            "id": "toolu_01",
            "name": tool["name"],
            "input": dict.fromkeys(properties, "tracing"),
        }
        return [{"type": "text", "text": "Let me check the notebook."}, use], "tool_use"
    system = body.get("system")
    flat = [{"role": "system", "content": _text(system)}] if system else []
    flat += [{"role": m.get("role", "user"), "content": _text(m.get("content"))} for m in messages]
    thinking = {"type": "thinking", "thinking": THINKING, "signature": "c2lnbmF0dXJl"}
    return [thinking, {"type": "text", "text": replier.answer(flat)}], "end_turn"


def _events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A complete message as Anthropic's stream events: message_start (with the input usage), each content block
    as start, deltas and stop, then message_delta (with the final, cumulative usage) and message_stop."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            empty: dict[str, Any] = {"type": "text", "text": ""}
            text = block["text"]
            deltas = [{"type": "text_delta", "text": text[i : i + 24]} for i in range(0, len(text), 24)]
        elif kind == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        else:
            empty = {**block, "input": {}}
            arguments = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": arguments[i : i + 10]}
                for i in range(0, len(arguments), 10)
            ]
        events.append({"type": "content_block_start", "index": index, "content_block": empty})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    final = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append({"type": "message_delta", "delta": final, "usage": usage})
    events.append({"type": "message_stop"})
    return events


class AnthropicServer:
    """The Messages API on a free loopback port; ``base_url`` is what the Anthropic SDK and litellm take."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.count_requests = 0  # /v1/messages/count_tokens: not a model call, answered but not in ``calls``
        self.rejected: list[str] = []  # anything else asked of the server
        replier = OfflineLLM()
        server_self = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                path = self.path.split("?", 1)[0]
                if path.endswith("/v1/messages/count_tokens"):
                    server_self.count_requests += 1
                    self.reply(200, json.dumps({"input_tokens": 1000}).encode(), "application/json")
                    return
                if not path.endswith("/v1/messages"):
                    server_self.rejected.append(self.path)
                    self.reply(404, b'{"type":"error","error":{"type":"not_found_error","message":"?"}}')
                    return
                usage = dict(USAGES[len(server_self.calls) % len(USAGES)])
                content, stop_reason = _blocks(body, replier)
                message_id = f"msg_{len(server_self.calls) + 1:02d}"
                server_self.calls.append(Call(body, message_id, content, usage, bool(body.get("stream"))))
                message = {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "claude-sonnet-4-20250514"),
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                }
                if not body.get("stream"):
                    self.reply(200, json.dumps(message).encode(), "application/json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for event in _events(message):
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                self.close_connection = True

        self._http = LocalHTTPServer(Handler)
        self.base_url = self._http.base_url

    def __enter__(self) -> AnthropicServer:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)
