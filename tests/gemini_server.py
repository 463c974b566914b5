"""A Gemini API (generativelanguage v1beta) endpoint on 127.0.0.1: the stand-in for Google's API.

Serves ``models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` and ``:countTokens`` in Google's
JSON shape, so the real google-genai SDK inside CrewAI's native Gemini provider parses a real HTTP response.
Replies are the offline LLM's (a native ``functionCall`` when tools are declared and none has run yet, else its
text), each with a thought-summary part and ``usageMetadata`` that differs per call; the usage sent is kept.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from crewtrace.offline_llm import OfflineLLM
from tests.local_http import LocalHTTPServer, QuietHandler

GENERATE = ":generateContent"
STREAM = ":streamGenerateContent"
COUNT = ":countTokens"
# Where a functionDeclaration holds its parameters: google-genai sends parameters_json_schema as it is named.
_SCHEMA_KEYS = ("parametersJsonSchema", "parameters_json_schema", "parameters")


def usage_metadata(call: int) -> dict[str, Any]:
    """Google's ``usageMetadata`` for the ``call``-th answered request (1-based): every count differs per call.

    ``promptTokenCount`` includes ``cachedContentTokenCount`` and ``totalTokenCount`` is prompt + candidates +
    thoughts, as https://ai.google.dev/api/generate-content#UsageMetadata defines them.
    """
    prompt, cached = 1200 + 150 * call, 384 * call
    candidates, thoughts = 40 + 7 * call, 90 + 11 * call
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "cachedContentTokenCount": cached,
        "thoughtsTokenCount": thoughts,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": cached}],
    }


def _text(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(part["text"]) for part in parts if "text" in part and not part.get("thought"))


def as_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A generateContent request as OpenAI-style messages, which :meth:`OfflineLLM.answer` reads."""
    messages: list[dict[str, Any]] = []
    system = (body.get("systemInstruction") or {}).get("parts") or []
    if system:
        messages.append({"role": "system", "content": _text(system)})
    for content in body.get("contents", []):
        parts = content.get("parts") or []
        for part in parts:
            if "functionResponse" in part:
                result = json.dumps(part["functionResponse"].get("response", {}))
                messages.append({"role": "tool", "content": result})
        text = _text(parts)
        if text:
            messages.append({"role": "assistant" if content.get("role") == "model" else "user", "content": text})
    return messages


def _declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]


def _has_function_response(body: dict[str, Any]) -> bool:
    return any("functionResponse" in p for c in body.get("contents", []) for p in c.get("parts") or [])


def answer_parts(body: dict[str, Any], replier: OfflineLLM) -> tuple[list[dict[str, Any]], str]:
    """The model's parts (a thought summary, then a functionCall or text) and the finish reason."""
    thought = {"text": "Considering what the task needs.", "thought": True}
    declarations = _declarations(body)
    if declarations and not _has_function_response(body):
        declaration = declarations[0]
        schema = next((declaration[k] for k in _SCHEMA_KEYS if declaration.get(k)), {})
        args = dict.fromkeys(schema.get("properties", {}), "tracing")
        return [thought, {"functionCall": {"name": declaration["name"], "args": args}}], "STOP"
    return [thought, {"text": replier.answer(as_messages(body))}], "STOP"


@dataclass
class GeminiRequest:
    """One request the server answered: its path (model and method) and JSON body."""

    path: str
    body: dict[str, Any]
    usage: dict[str, Any] = field(default_factory=dict)


class GeminiServer:
    """The Gemini API on loopback; ``base_url`` goes to ``genai.Client(http_options={"base_url": ...})``."""

    def __init__(self) -> None:
        self.requests: list[GeminiRequest] = []
        self.paths: list[str] = []  # every request's path, answered or not
        self._lock = threading.Lock()
        replier = OfflineLLM()
        server_self = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server_self.paths.append(self.path)
                if COUNT in self.path:  # CrewAI sizes tool results with Google's (free) token counter
                    total = math.ceil(len(json.dumps(body.get("contents", []))) / 4)
                    self.reply(200, json.dumps({"totalTokens": total}).encode(), "application/json")
                    return
                if GENERATE not in self.path and STREAM not in self.path:
                    self.reply(404, b'{"error": {"code": 404, "status": "NOT_FOUND"}}', "application/json")
                    return
                with server_self._lock:
                    request = GeminiRequest(self.path, body, usage_metadata(len(server_self.requests) + 1))
                    server_self.requests.append(request)
                    number = len(server_self.requests)
                parts, finish = answer_parts(body, replier)
                head = {"modelVersion": "gemini-2.5-flash", "responseId": f"gemini-response-{number}"}
                if STREAM in self.path:
                    self._stream(head, parts, finish, request.usage)
                    return
                candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
                reply = {"candidates": [candidate], "usageMetadata": request.usage, **head}
                self.reply(200, json.dumps(reply).encode(), "application/json")

            def _stream(self, head: dict[str, Any], parts: list[dict[str, Any]], finish: str, usage: Any) -> None:
                """One SSE event per part (text split in pieces); finishReason and usageMetadata in the last."""
                pieces: list[dict[str, Any]] = []
                for part in parts:
                    text = part.get("text")
                    if text is None or part.get("thought"):
                        pieces.append(part)
                    else:
                        pieces += [{"text": text[i : i + 40]} for i in range(0, len(text), 40)]
                events = [
                    {"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}], **head} for p in pieces
                ]
                events[-1]["candidates"][0]["finishReason"] = finish
                events[-1]["usageMetadata"] = usage
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
                self.close_connection = True

        self._http = LocalHTTPServer(Handler)
        self.base_url = self._http.base_url

    @property
    def usages(self) -> list[dict[str, Any]]:
        """The usageMetadata sent with each answered request, in order."""
        return [request.usage for request in self.requests]

    def __enter__(self) -> GeminiServer:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)
