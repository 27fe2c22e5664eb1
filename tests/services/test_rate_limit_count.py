"""The rate-limit count taken on the event loop (`api_key_throttle_async`): the same Redis key
and count as Django's cache path, exact under hundreds of concurrent calls."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from routerapp.errors import RateLimited
from routerapp.selectors.catalog_cache import ApiKeyRecord
from routerapp.services.access import _rate_window, api_key_throttle, api_key_throttle_async


def key_record(limit: int) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=1,
        prefix=secrets.token_hex(4),  # a fresh count in the shared Redis
        hashed_secret="",
        scopes=frozenset({"completions"}),
        goal_ids=None,
        rate_limit_per_minute=limit,
        revoked=False,
    )


@pytest.fixture(autouse=True)
def _redis_cache() -> None:
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache"), (
        "run the suite through `make test` (routerapp.devstack), which sets CACHE_URL to Redis"
    )


def test_concurrent_counts_are_exact_and_shared_with_the_cache_path() -> None:
    key = key_record(limit=1000)

    async def burst() -> list[Any]:
        # More calls at once than the process keeps Redis connections: they wait, never fail.
        calls = (api_key_throttle_async(key=key) for _ in range(300))
        return await asyncio.gather(*calls, return_exceptions=True)

    failures = [outcome for outcome in asyncio.run(burst()) if outcome is not None]

    assert failures == []
    cache_key, _, _ = _rate_window(key)
    assert cache.get(cache_key) == 300  # Django's cache reads the same count
    api_key_throttle(key=key)  # and the synchronous path (the /api/v1 one) goes on from it
    assert cache.get(cache_key) == 301
    server = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert 60 < server.ttl(cache.make_and_validate_key(cache_key)) <= 90  # gone after its window


def test_past_the_limit_the_async_count_refuses_with_retry_after() -> None:
    key = key_record(limit=2)

    async def three() -> None:
        for _ in range(3):
            await api_key_throttle_async(key=key)

    with pytest.raises(RateLimited) as refused:
        asyncio.run(three())

    assert 1 <= refused.value.extra["retry_after"] <= 60
