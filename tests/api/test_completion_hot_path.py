"""The completion path over real HTTP with warm caches: no SQL before the upstream call, one
statement after it; configuration writes and revoked keys in force within ROUTING_CACHE_SECONDS,
never before their commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from routerapp import dbwork
from routerapp.models import Path, Provider, RoutingDecision
from routerapp.services.access import api_key_revoke
from tests.builders import make_api_key, make_goal, make_provider, make_user
from tests.capture import CaptureUpstream, capture_upstream

MESSAGES = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]
# Threads that read on their own schedule, not per call: the routing cache's refresher and the
# controller's fold (selectors/catalog_cache.py, services/controller.py).
BACKGROUND_THREADS = ("routing-cache", "controller-fold")

Event = tuple[str, str, str]  # (kind, thread name, SQL)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """Every SQL statement any thread runs through Django, in order (the server runs in this
    process: its event loop, its DB pool and its background threads)."""
    found: list[Event] = []
    original = CursorWrapper._execute_with_wrappers

    def recording(self: CursorWrapper, sql: str, params: Any, many: bool, executor: Any) -> Any:
        found.append(("sql", threading.current_thread().name, sql))
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", recording)
    return found


@pytest.fixture
def upstream(events: list[Event]) -> Iterator[CaptureUpstream]:
    """An upstream that marks in `events` the moment a call reaches it."""
    with capture_upstream() as capture:
        answer = capture.answer

        def marked(authorization: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            events.append(("upstream", threading.current_thread().name, ""))
            return answer(authorization, request)

        capture.answer = marked  # type: ignore[method-assign]
        yield capture


def call(live: str, key: str, goal: str = "hot") -> httpx.Response:
    return httpx.post(
        f"{live}/v1/chat/completions",
        json={"model": f"goal/{goal}", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def hot_goal(upstream: CaptureUpstream, **fields: Any) -> None:
    provider = make_provider(
        name="capture", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=upstream.url
    )
    make_goal(
        slug="hot",
        provider=provider,
        success_when="response.choices[0].finish_reason == 'stop'",
        **fields,
    )


def test_a_warm_completion_runs_no_sql_before_its_upstream_call_and_one_statement_after(
    live: str,
    settings: Any,
    events: list[Event],
    upstream: CaptureUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A long bound, so a slow refresher on a busy machine never makes a request read for itself.
    settings.ROUTING_CACHE_SECONDS = 5.0
    hot_goal(upstream)
    _, key = make_api_key(rate_limit_per_minute=10_000)  # the rate limit is counted too
    for _ in range(3):  # the first calls read the catalog and the posteriors, and note the key
        assert call(live, key).status_code == 200
    units: list[str] = []
    submit = dbwork._executor.submit
    monkeypatch.setattr(
        dbwork._executor, "submit", lambda *args: units.append("unit") or submit(*args)
    )
    events.clear()

    response = call(live, key)

    assert response.status_code == 200
    assert upstream.requests  # the call went upstream
    during = list(events)
    request_sql = [
        (index, sql)
        for index, (kind, thread, sql) in enumerate(during)
        if kind == "sql" and thread not in BACKGROUND_THREADS
    ]
    reached = next(index for index, (kind, _, _) in enumerate(during) if kind == "upstream")
    assert [sql for index, sql in request_sql if index < reached] == []
    assert 1 <= len(request_sql) <= 3, request_sql
    assert any(RoutingDecision._meta.db_table in sql for _, sql in request_sql)
    assert units == ["unit"]  # one trip to the DB pool: the record (the rate limit is async)
    assert RoutingDecision.objects.filter(request_id=response.headers["X-Router-Request-Id"])


def test_a_revoked_key_stops_working_within_one_second(live: str, settings: Any) -> None:
    assert settings.ROUTING_CACHE_SECONDS == 1.0
    make_goal(slug="hot")
    key, raw = make_api_key()
    for _ in range(2):
        assert call(live, raw).status_code == 200  # the key is in every cache

    api_key_revoke(key=key)
    committed = time.monotonic()
    time.sleep(max(0.0, committed + settings.ROUTING_CACHE_SECONDS - time.monotonic()))

    refused = call(live, raw)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "This API key has been revoked."
    assert call(live, raw).status_code == 401


def test_a_deactivated_owner_stops_the_key_within_one_second(live: str, settings: Any) -> None:
    make_goal(slug="hot")
    owner = make_user(username="owner", role="operator")
    _, raw = make_api_key(created_by=owner)
    assert call(live, raw).status_code == 200  # the key is in every cache

    owner.is_active = False
    owner.save(update_fields=["is_active"])
    time.sleep(settings.ROUTING_CACHE_SECONDS)

    refused = call(live, raw)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This API key's owner is deactivated."


def test_a_new_key_works_at_once_while_the_catalog_is_warm(live: str) -> None:
    make_goal(slug="hot")
    _, first = make_api_key()
    assert call(live, first).status_code == 200  # the catalog is warm, without the next key

    _, created = make_api_key(name="created just now")

    assert call(live, created).status_code == 200


def test_a_configuration_write_is_routed_on_within_one_second_and_never_before_its_commit(
    live: str, settings: Any
) -> None:
    make_goal(slug="hot", models=("gpt-4o-mini",))
    _, raw = make_api_key()
    assert call(live, raw).status_code == 200
    written, release, done = threading.Event(), threading.Event(), threading.Event()

    def disable_the_only_path() -> None:
        try:
            with transaction.atomic():
                Path.objects.filter(goal__slug="hot").update(enabled=False)
                written.set()
                release.wait(timeout=30)
        finally:
            done.set()
            connection.close()

    writer = threading.Thread(target=disable_the_only_path)
    writer.start()
    try:
        assert written.wait(timeout=30)
        # Longer than the bound, while the write is not committed: routing never sees it.
        uncommitted_until = time.monotonic() + 1.5 * settings.ROUTING_CACHE_SECONDS
        while time.monotonic() < uncommitted_until:
            assert call(live, raw).status_code == 200
            time.sleep(0.1)
    finally:
        release.set()
        writer.join(timeout=30)
    assert done.is_set()
    committed = time.monotonic()
    time.sleep(max(0.0, committed + settings.ROUTING_CACHE_SECONDS - time.monotonic()))

    answer = call(live, raw)
    assert answer.status_code == 409
    assert "no enabled path" in answer.json()["error"]["message"]
