"""Per-key rate limits: Retry-After on both APIs, a default limit, one count across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from django.conf import settings
from django.db import connection
from openai.types.chat import ChatCompletionMessageParam
from pytest_django import Settings
from rest_framework.test import APIClient

from tests.builders import make_api_key, make_goal
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}
]


def openai_client(base: str, key: str) -> openai.OpenAI:
    # max_retries=0: the SDK would otherwise sleep for Retry-After and try again.
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)


def api_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def seconds_left_in_minute() -> float:
    return 60 - time.time() % 60


def start_of_a_fresh_window(needed: float) -> None:
    """The limit is a fixed one-minute window: start where the whole burst fits in one."""
    if seconds_left_in_minute() < needed:
        time.sleep(seconds_left_in_minute() + 0.05)


def assert_retry_after(value: str) -> None:
    assert value.isdigit()
    assert 1 <= int(value) <= 60
    assert int(value) <= seconds_left_in_minute() + 1


def test_v1_answers_an_openai_style_429_with_retry_after(live: str) -> None:
    make_goal(slug="email_classification")
    _, key = make_api_key(rate_limit_per_minute=2)
    client = openai_client(live, key)
    start_of_a_fresh_window(needed=10)

    for _ in range(2):
        client.chat.completions.create(model="goal/email_classification", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="goal/email_classification", messages=MESSAGES)

    response = refused.value.response
    assert response.status_code == 429
    assert_retry_after(response.headers["Retry-After"])
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "2 requests per minute" in error["message"]
    assert error["retry_after"] == int(response.headers["Retry-After"])


@pytest.mark.django_db
def test_api_v1_answers_429_with_retry_after() -> None:
    _, key = make_api_key(rate_limit_per_minute=2)
    client = api_client(key)
    start_of_a_fresh_window(needed=5)

    statuses = [client.get("/api/v1/goals").status_code for _ in range(3)]
    refused = client.get("/api/v1/goals")

    assert statuses == [200, 200, 429]
    assert refused.status_code == 429
    assert_retry_after(refused["Retry-After"])
    assert f"Expected available in {refused['Retry-After']} second" in refused.json()["detail"]


@pytest.mark.django_db
def test_keys_without_their_own_limit_get_the_default_and_a_key_limit_overrides_it(
    settings: Settings,
) -> None:
    settings.DEFAULT_RATE_LIMIT_PER_MINUTE = 3
    _, plain = make_api_key(name="plain")
    _, generous = make_api_key(name="generous", rate_limit_per_minute=5)
    start_of_a_fresh_window(needed=5)

    plain_statuses = [api_client(plain).get("/api/v1/goals").status_code for _ in range(4)]
    generous_statuses = [api_client(generous).get("/api/v1/goals").status_code for _ in range(6)]

    assert plain_statuses == [200, 200, 200, 429]
    assert generous_statuses == [200] * 5 + [429]


def test_the_shipped_default_is_600_per_minute_and_documented() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEFAULT_RATE_LIMIT_PER_MINUTE"}
    printed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DEFAULT_RATE_LIMIT_PER_MINUTE)",
        ],
        env={**env, "DJANGO_SETTINGS_MODULE": "routerapp.settings", "DEBUG": "true"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert printed[-1] == "600"
    assert "\nDEFAULT_RATE_LIMIT_PER_MINUTE=600\n" in (ROOT / ".env.example").read_text()


# --- two worker processes, one limit ------------------------------------------------------


def database_url_of_tests() -> str:
    """The URL of the test database (pytest-django's), for servers in other processes."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "postgres", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    return f"postgres://{credentials}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def two_servers(transactional_db: None, simulator_url: str) -> Iterator[list[str]]:
    """Two uvicorn processes serving routerapp on the same database and the same Redis."""
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache"), (
        "run the suite through `make test` (routerapp.devstack), which sets CACHE_URL to Redis"
    )
    # The same CACHE_URL as this process (inherited); the test database, the test simulator.
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_tests(),
        "SIMULATOR_URL": simulator_url,
        "DEBUG": "true",
    }
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "routerapp.asgi:application", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for base, server in zip(bases, servers, strict=True):
            while True:
                assert server.poll() is None, f"the server for {base} exited"
                assert time.monotonic() < deadline, f"{base} did not start"
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
        yield bases
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)


def test_the_limit_holds_across_two_server_processes(two_servers: list[str]) -> None:
    make_goal(slug="email_classification")
    limit, sent = 4, 10
    _, key = make_api_key(rate_limit_per_minute=limit)
    clients = [openai_client(base, key) for base in two_servers]
    start_of_a_fresh_window(needed=10)

    served: list[int] = []
    refused: list[tuple[int, Any]] = []  # (server, the 429 response)
    for n in range(sent):
        server = n % 2  # alternate: each process alone would allow `limit`
        try:
            clients[server].chat.completions.create(
                model="goal/email_classification", messages=MESSAGES
            )
            served.append(server)
        except openai.RateLimitError as error:
            refused.append((server, error.response))

    assert len(served) == limit
    assert set(served) == {0, 1}
    assert len(refused) == sent - limit
    assert {server for server, _ in refused} == {0, 1}
    for _, response in refused:
        assert response.status_code == 429
        assert_retry_after(response.headers["Retry-After"])
