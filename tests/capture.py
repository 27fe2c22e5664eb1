"""A stand-in upstream for the security tests: an OpenAI-compatible endpoint on 127.0.0.1 that
records the `Authorization` header of every request and answers as told (a completion, or an
error that echoes the header back, as real upstreams do on a 401). No Django: the provider-layer
tests use it too."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class CaptureUpstream:
    url: str = ""
    # Every Authorization header received, in order ("" when none was sent).
    authorizations: list[str] = field(default_factory=list)
    # Every request body received, in order.
    requests: list[dict[str, Any]] = field(default_factory=list)
    # 200: a completion; anything else: {"error": {"message": error_text}} with that status,
    # `{authorization}` in error_text replaced by the header received.
    status: int = 200
    error_text: str = "Incorrect API key provided: {authorization}"

    def answer(self, authorization: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.authorizations.append(authorization)
        self.requests.append(request)
        if self.status != 200:
            message = self.error_text.format(authorization=authorization)
            return self.status, {"error": {"message": message, "type": "invalid_request_error"}}
        return 200, {
            "id": "chatcmpl-capture",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }


@contextmanager
def capture_upstream() -> Iterator[CaptureUpstream]:
    """Serve a `CaptureUpstream` on a free port for the duration of the block."""
    upstream = CaptureUpstream()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            status, body = upstream.answer(self.headers.get("Authorization", ""), request)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the test asserts on what was recorded."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
