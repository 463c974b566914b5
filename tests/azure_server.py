"""An Azure OpenAI chat completions endpoint on 127.0.0.1: the stand-in for an Azure deployment.

Serves ``{endpoint}/chat/completions?api-version=...`` in the OpenAI-like shape the azure-ai-inference SDK
reads, so CrewAI's native Azure provider parses a real HTTP response. Replies come from tests/openai_server.py
(a native tool call when tools are offered and none has run yet, else the offline LLM's ReAct text); the usage
differs per call, reports cached prompt tokens and (for a reasoning deployment) reasoning tokens, and is kept.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crewtrace.offline_llm import OfflineLLM
from tests.local_http import LocalHTTPServer, QuietHandler
from tests.openai_server import _choice


def usage(call: int, reasoning: bool) -> dict[str, Any]:
    """OpenAI's usage for the ``call``-th answered request (1-based): every count differs per call.

    ``prompt_tokens`` includes ``cached_tokens`` and ``completion_tokens`` includes ``reasoning_tokens``, as
    https://learn.microsoft.com/azure/ai-services/openai/reference (CompletionUsage) defines them. A model
    that does not reason (gpt-4o-mini) reports 0 reasoning tokens, as Azure does.
    """
    prompt, cached = 1100 + 120 * call, 256 * call
    thinking = 192 + 64 * call if reasoning else 0
    completion = 50 + 9 * call + thinking
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": thinking,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass
class AzureRequest:
    """One request the server answered: path, api-version, the api-key header, JSON body and the usage sent."""

    path: str
    api_version: str | None
    api_key: str | None
    body: dict[str, Any]
    usage: dict[str, Any]


class AzureServer:
    """Azure OpenAI on loopback; ``endpoint`` is a deployment URL for ``LLM(model="azure/...", endpoint=...)``."""

    def __init__(self, deployment: str, reasoning: bool = False) -> None:
        self.requests: list[AzureRequest] = []
        self.paths: list[str] = []  # every request's path, answered or not
        self._lock = threading.Lock()
        replier = OfflineLLM()
        server_self = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server_self.paths.append(self.path)
                url = urlsplit(self.path)
                if not url.path.endswith("/chat/completions"):
                    self.reply(404, b'{"error": {"code": "404", "message": "Resource not found"}}', "application/json")
                    return
                with server_self._lock:
                    number = len(server_self.requests) + 1
                    version = parse_qs(url.query).get("api-version", [None])[0]
                    request = AzureRequest(
                        url.path, version, self.headers.get("api-key"), body, usage(number, reasoning)
                    )
                    server_self.requests.append(request)
                head = {"id": f"chatcmpl-azure-{number}", "created": 1_700_000_000, "model": deployment}
                choice = _choice(body, replier)
                if body.get("stream"):
                    self._stream(head, choice, request.usage)
                    return
                reply = {**head, "object": "chat.completion", "choices": [choice], "usage": request.usage}
                self.reply(200, json.dumps(reply).encode(), "application/json")

            def _stream(self, head: dict[str, Any], choice: dict[str, Any], sent: dict[str, Any]) -> None:
                """The answer as server-sent chunks, then a last chunk with no choices and the usage."""
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
                payloads.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": sent})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for payload in payloads:
                    self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        self._http = LocalHTTPServer(Handler)
        self.base_url = self._http.base_url
        self.endpoint = f"{self.base_url}/openai/deployments/{deployment}"

    @property
    def usages(self) -> list[dict[str, Any]]:
        """The usage sent with each answered request, in order."""
        return [request.usage for request in self.requests]

    def __enter__(self) -> AzureServer:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)
