"""/v1 served past Django's middleware chain (routerapp/api/v1_handler.py), over real HTTP:
no thread hop per call, and still the security headers, the Host check and JSON errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.sync import SyncToAsync

from routerapp.api import completions
from tests.builders import make_api_key, make_goal

MESSAGES = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]


def call(live: str, key: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{live}/v1/chat/completions",
        json={"model": "goal/handled", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def test_a_warm_completion_makes_no_sync_to_async_hop(
    live: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_goal(slug="handled")
    _, key = make_api_key()
    assert call(live, key).status_code == 200  # warms the caches
    hops: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)

    assert call(live, key).status_code == 200
    assert call(live, key).status_code == 200
    assert hops == []


def test_v1_answers_carry_the_security_headers(live: str) -> None:
    make_goal(slug="handled")
    _, key = make_api_key()

    for response in (call(live, key), httpx.get(f"{live}/v1/models", headers={"X-API-Key": key})):
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        # JSON loads and runs nothing: the policy OWASP recommends for APIs.
        assert (
            response.headers["Content-Security-Policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )


def test_a_host_outside_allowed_hosts_is_refused_with_json(live: str, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["routerapp.example"]
    _, key = make_api_key()

    response = call(live, key, Host="evil.example")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    # An allowed host goes on to the view (which knows no such goal).
    assert call(live, key, Host="routerapp.example").status_code == 404


def test_an_exception_escaping_the_view_is_a_json_500_without_details(
    live: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = make_api_key()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SECRET-IN-TRACEBACK")

    monkeypatch.setattr(completions, "completion_request_parse", broken)

    response = call(live, key)

    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "SECRET-IN-TRACEBACK" not in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
