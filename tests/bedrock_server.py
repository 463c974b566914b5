"""An Amazon Bedrock Runtime endpoint on 127.0.0.1: Converse and ConverseStream, the stand-in for AWS.

boto3 reaches it through ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``. ``POST /model/{id}/converse`` answers with a JSON
``ConverseResponse``; ``POST /model/{id}/converse-stream`` with the same answer as an AWS event stream (binary
frames: prelude, headers, JSON payload, CRC-32s), which botocore decodes; ``count-tokens`` with a fixed count.
The reply is a ``toolUse`` while tools are offered and no tool result is in the conversation, else the offline
LLM's ReAct reply. Each call reports its own usage with cache reads and writes (:data:`USAGES`); every answered
call is kept, in order, in ``calls``.
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from crewtrace.offline_llm import OfflineLLM
from tests.local_http import LocalHTTPServer, QuietHandler

# Usage of the 1st, 2nd, ... call (repeated after the last), as Converse reports it: ``inputTokens`` leaves out
# the cache reads and writes, ``totalTokens`` counts everything. All non-zero and all different.
_COUNTS = ((380, 1200, 150, 64), (77, 230, 1350, 141), (52, 41, 1580, 96))
USAGES: tuple[dict[str, int], ...] = tuple(
    {
        "inputTokens": fresh,
        "outputTokens": output,
        "totalTokens": fresh + write + read + output,
        "cacheReadInputTokens": read,
        "cacheWriteInputTokens": write,
    }
    for fresh, write, read, output in _COUNTS
)


@dataclass
class Call:
    """One answered Converse or ConverseStream request: the model id, the SigV4 Authorization header, the body
    and the usage sent back."""

    model_id: str
    authorization: str
    body: dict[str, Any]
    usage: dict[str, int]
    stream: bool


def _text(blocks: list[dict[str, Any]]) -> str:
    """A Converse message's content blocks as plain text, for the offline replier."""
    parts: list[str] = []
    for block in blocks or []:
        if "text" in block:
            parts.append(block["text"])
        elif "toolResult" in block:
            parts.append(_text(block["toolResult"].get("content", [])))
    return "\n".join(parts)


def _reply(body: dict[str, Any], replier: OfflineLLM) -> tuple[list[dict[str, Any]], str]:
    """The answer's content blocks and stop reason."""
    messages = body.get("messages", [])
    tools = (body.get("toolConfig") or {}).get("tools") or []
    answered = any("toolResult" in block for m in messages for block in m.get("content", []))
    if tools and not answered:
        spec = tools[0]["toolSpec"]
        properties = spec.get("inputSchema", {}).get("json", {}).get("properties", {})
        use = {"toolUseId": "tooluse_01", "name": spec["name"], "input": dict.fromkeys(properties, "tracing")}
        return [{"text": "Let me check the notebook."}, {"toolUse": use}], "tool_use"
    system = _text(body.get("system") or [])
    flat = [{"role": "system", "content": system}] if system else []
    flat += [{"role": m.get("role", "user"), "content": _text(m.get("content", []))} for m in messages]
    return [{"text": replier.answer(flat)}], "end_turn"


def _header(name: str, value: str) -> bytes:
    """One event-stream header of type 7 (string): name length, name, type, value length, value."""
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: total length, headers length, prelude CRC, headers, payload, message CRC."""
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", "event")
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack("!II", 12 + len(headers) + len(body) + 4, len(headers))
    prelude += struct.pack("!I", crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack("!I", crc32(message) & 0xFFFFFFFF)


def _stream_events(content: list[dict[str, Any]], stop_reason: str, usage: dict[str, int]) -> list[bytes]:
    """ConverseStream's events for an answer: messageStart, each block's start, deltas and stop, messageStop,
    and the metadata event that carries the usage."""
    events = [frame("messageStart", {"role": "assistant"})]
    for index, block in enumerate(content):
        if "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(frame("contentBlockStart", {"start": start, "contentBlockIndex": index}))
            arguments = json.dumps(use["input"])
            deltas = [{"toolUse": {"input": arguments[i : i + 10]}} for i in range(0, len(arguments), 10)]
        else:
            deltas = [{"text": block["text"][i : i + 24]} for i in range(0, len(block["text"]), 24)]
        events += [frame("contentBlockDelta", {"delta": d, "contentBlockIndex": index}) for d in deltas]
        events.append(frame("contentBlockStop", {"contentBlockIndex": index}))
    events.append(frame("messageStop", {"stopReason": stop_reason}))
    events.append(frame("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}))
    return events


class BedrockServer:
    """Bedrock Runtime on a free loopback port; point boto3 at ``base_url``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.count_requests = 0  # CountTokens (/model/{id}/count-tokens): not a model call, not in ``calls``
        self.rejected: list[str] = []  # anything else asked of the server
        replier = OfflineLLM()
        server_self = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                parts = unquote(self.path.split("?", 1)[0]).split("/")
                if len(parts) == 4 and parts[1] == "model" and parts[3] == "count-tokens":
                    server_self.count_requests += 1
                    self.reply(200, json.dumps({"inputTokens": 1000}).encode(), "application/json")
                    return
                if len(parts) != 4 or parts[1] != "model" or parts[3] not in ("converse", "converse-stream"):
                    server_self.rejected.append(self.path)
                    self.reply(404, b'{"message":"unknown operation"}', "application/json")
                    return
                stream = parts[3] == "converse-stream"
                usage = dict(USAGES[len(server_self.calls) % len(USAGES)])
                server_self.calls.append(Call(parts[2], self.headers.get("Authorization", ""), body, usage, stream))
                content, stop_reason = _reply(body, replier)
                if not stream:
                    answer = {
                        "output": {"message": {"role": "assistant", "content": content}},
                        "stopReason": stop_reason,
                        "usage": usage,
                        "metrics": {"latencyMs": 42},
                    }
                    self.reply(200, json.dumps(answer).encode(), "application/json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("x-amzn-RequestId", f"req-{len(server_self.calls)}")
                self.end_headers()
                for event in _stream_events(content, stop_reason, usage):
                    self.wfile.write(event)
                self.close_connection = True

        self._http = LocalHTTPServer(Handler)
        self.base_url = self._http.base_url

    def __enter__(self) -> BedrockServer:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)
