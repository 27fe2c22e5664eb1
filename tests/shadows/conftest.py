"""Shadow-test fixtures: a webhook receiver and a scripted upstream (judge or baseline) over
real HTTP, and helpers that record a sampled call as the request path does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from routerapp.models import Goal, RoutingDecision
from routerapp.providers.client import ProviderResult
from routerapp.selectors.catalog_cache import catalog_get
from routerapp.services.routing import Attempt, ExecutionResult, decision_record, route_plan
from routerapp.services.shadows import shadow_payload

MESSAGES = [{"role": "user", "content": "Explain the trade-offs of caching in web apps."}]


@dataclass
class Recorder:
    """An HTTP server in a thread: answers every POST with the next scripted reply (the last
    one repeats) and records the JSON bodies it received."""

    replies: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {"ok": True})])
    bodies: list[Any] = field(default_factory=list)
    url: str = ""

    def received(self, count: int, *, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bodies


def _serve(recorder: Recorder) -> Iterator[Recorder]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            recorder.bodies.append(json.loads(self.rfile.read(length) or b"null"))
            index = min(len(recorder.bodies), len(recorder.replies)) - 1
            status, body = recorder.replies[index]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    yield from _serve(Recorder())


@pytest.fixture
def upstream() -> Iterator[Recorder]:
    """An OpenAI-compatible upstream whose answers the test scripts (`chat(content)`)."""
    yield from _serve(Recorder(replies=[(200, chat("{}"))]))


def chat(content: str, *, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def record_served(
    goal: Goal,
    *,
    content: str = "",
    finish_reason: str = "stop",
    served_model: str = "gpt-4o-mini",
    messages: list[dict[str, Any]] | None = None,
    passthrough: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[RoutingDecision, dict[str, Any]]:
    """A call answered by the path of `served_model`, recorded by `decision_record` as the
    request path does; returns the decision and the shadow task's payload."""
    messages = messages or MESSAGES
    plan = route_plan(
        goal=catalog_get().goal(goal.slug),
        api_key=None,
        messages=messages,
        metadata=metadata,
        passthrough=passthrough or {},
    )
    path = next(plan_path for plan_path in plan.paths.values() if plan_path.model == served_model)
    response = chat(content, finish_reason=finish_reason)
    result = ProviderResult(response=response, prompt_tokens=30, completion_tokens=2, latency_ms=5)
    attempt = Attempt(path.id, path.name, path.model, ok=True, latency_ms=5.0)
    execution = ExecutionResult(path=path, result=result, attempts=[attempt], latency_ms=5.0)
    decision, _ = decision_record(plan=plan, execution=execution)
    payload = shadow_payload(
        decision_id=decision.pk, messages=messages, params=plan.passthrough, served=response
    )
    return decision, payload
