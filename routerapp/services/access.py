"""API keys: creation (secret shown once), authentication, rate limiting; and the audit log."""

from __future__ import annotations

import asyncio
import math
import re
import time
import weakref
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis

from routerapp.dbwork import run_db
from routerapp.errors import AuthenticationFailed, InvalidRequest, PermissionDenied, RateLimited
from routerapp.models import ApiKey, AuditLog, Goal
from routerapp.selectors.catalog_cache import (
    ApiKeyRecord,
    GoalRoute,
    catalog_aget,
    catalog_refresh,
)
from routerapp.selectors.goals import goal_is_visible

VALID_SCOPES = {choice.value for choice in ApiKey.Scope}


def _account(user: AbstractBaseUser | AnonymousUser | None) -> User | None:
    """The signed-in account to store on a row; never the anonymous user."""
    return user if isinstance(user, User) and user.is_authenticated else None


def audit(
    *,
    action: str,
    obj: Any,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    api_key: ApiKey | None = None,
    changes: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    AuditLog.objects.create(
        actor=_account(actor),
        api_key=api_key,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(getattr(obj, "pk", "")),
        changes=changes or {},
        ip=ip,
    )


def api_key_create(
    *,
    name: str,
    scopes: Iterable[str],
    goals: Iterable[Goal] = (),
    rate_limit_per_minute: int | None = None,
    created_by: AbstractBaseUser | AnonymousUser | None = None,
) -> tuple[ApiKey, str]:
    """Returns (key, raw secret). The raw secret is never stored; show it once."""
    scope_list = sorted(set(scopes))
    unknown = set(scope_list) - VALID_SCOPES
    if not scope_list or unknown:
        raise InvalidRequest(
            f"Scopes must be a non-empty subset of {sorted(VALID_SCOPES)}; got {sorted(unknown)}.",
            param="scopes",
        )
    if not name.strip():
        raise InvalidRequest("A key needs a name.", param="name")
    prefix, raw = ApiKey.generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name.strip(),
            prefix=prefix,
            hashed_secret=ApiKey.hash_secret(raw),
            scopes=scope_list,
            rate_limit_per_minute=rate_limit_per_minute,
            created_by=_account(created_by),
        )
        key.allowed_goals.set(list(goals))
        audit(
            action="api_key.create",
            obj=key,
            actor=created_by,
            changes={"scopes": scope_list, "name": key.name},
        )
    return key, raw


def api_key_revoke(
    *, key: ApiKey, actor: AbstractBaseUser | AnonymousUser | None = None, ip: str | None = None
) -> bool:
    """Revoke a key (audited). Returns False when it was already revoked: nothing changes."""
    with transaction.atomic():
        active = ApiKey.objects.filter(id=key.id, revoked_at=None)
        revoked = active.update(revoked_at=timezone.now())
        if revoked:
            audit(action="api_key.revoke", obj=key, actor=actor, ip=ip)
    key.refresh_from_db(fields=["revoked_at"])
    return bool(revoked)


Key = TypeVar("Key", ApiKey, ApiKeyRecord)


def _key_prefix(raw: str | None) -> str:
    if not raw:
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.")
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != "rk":
        raise AuthenticationFailed("Invalid API key.")
    return parts[1]


def _key_verified(key: Key | None, raw: str) -> Key:
    if key is None or key.hashed_secret != ApiKey.hash_secret(raw):
        raise AuthenticationFailed("Invalid API key.")
    if not key.is_active:
        raise AuthenticationFailed("This API key has been revoked.")
    return key


def api_key_authenticate(raw: str | None) -> ApiKey:
    """The active key for a raw secret, or AuthenticationFailed. Constant-time by construction:
    the lookup is by prefix and the secret is compared as a hash."""
    prefix = _key_prefix(raw)
    return _key_verified(ApiKey.objects.filter(prefix=prefix).first(), raw or "")


async def api_key_authenticate_cached(raw: str | None) -> ApiKeyRecord:
    """`api_key_authenticate` against this process's catalog (no SQL when warm): a change or a
    revocation is in force within ROUTING_CACHE_SECONDS (selectors/catalog_cache.py). A prefix
    the catalog does not know makes it check the version first (one indexed read, on the DB
    pool), so a key is usable as soon as it is created."""
    prefix = _key_prefix(raw)
    record = (await catalog_aget()).keys.get(prefix)
    if record is None:
        record = (await run_db(catalog_refresh)).keys.get(prefix)
    return _key_verified(record, raw or "")


def api_key_check(
    *, key: ApiKey | ApiKeyRecord, scope: str, goal: Goal | GoalRoute | None = None
) -> None:
    if not key.has_scope(scope):
        raise PermissionDenied(f"This API key lacks the '{scope}' scope.")
    if isinstance(key, ApiKeyRecord) and not key.owner_active:
        # /api/v1 refuses it in api/permissions.py::key_refusal; this is the /v1 side.
        raise PermissionDenied("This API key's owner is deactivated.")
    if goal is None:
        return
    if isinstance(key, ApiKeyRecord):
        allowed = key.may_use(goal.id)  # the cached form of goal_ids_visible
    else:
        assert isinstance(goal, Goal)
        allowed = goal_is_visible(api_key=key, goal=goal)
    if not allowed:
        raise PermissionDenied(f"This API key is not allowed to use goal '{goal.slug}'.")


def api_key_rate_limit(*, key: ApiKey | ApiKeyRecord) -> int:
    """Requests a minute the key may make; 0 for no limit."""
    return key.rate_limit_per_minute or settings.DEFAULT_RATE_LIMIT_PER_MINUTE


RATE_WINDOW_KEPT_SECONDS = 90  # a window's count outlives its minute, then goes
RATE_REDIS_CONNECTIONS = 32  # per process and event loop


def _rate_window(key: ApiKey | ApiKeyRecord) -> tuple[str, int, float]:
    """(cache key, window number, now) of the fixed one-minute window this call counts in."""
    now = time.time()
    window = int(now // 60)
    # The key's random public prefix, not its row id: ids restart in a fresh database that may
    # share the Redis (a test run, a restore), prefixes do not.
    return f"ratelimit:{key.prefix}:{window}", window, now


def _rate_check(limit: int, count: int, window: int, now: float) -> None:
    if count > limit:
        raise RateLimited(
            f"Rate limit of {limit} requests per minute exceeded.",
            retry_after=max(1, math.ceil((window + 1) * 60 - now)),
        )


def api_key_throttle(*, key: ApiKey | ApiKeyRecord) -> None:
    """Fixed one-minute window counted in the shared cache (Redis: one count for every worker
    process; `add` then `incr` is an atomic INCR on a key that expires). No SQL here.

    The key's own `rate_limit_per_minute`, else DEFAULT_RATE_LIMIT_PER_MINUTE (0 = unlimited).
    Past the limit: RateLimited with `retry_after`, the whole seconds until the window resets.
    """
    limit = api_key_rate_limit(key=key)
    if not limit:
        return
    cache_key, window, now = _rate_window(key)
    cache.add(cache_key, 0, timeout=RATE_WINDOW_KEPT_SECONDS)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=RATE_WINDOW_KEPT_SECONDS)
        count = 1
    _rate_check(limit, count, window, now)


_rate_redis_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedis] = (
    weakref.WeakKeyDictionary()
)


def _rate_redis() -> AsyncRedis | None:
    """An asyncio client of the cache's Redis for the running loop; None when the cache is
    not Redis (a per-process cache in memory, where counting waits on nothing)."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    loop = asyncio.get_running_loop()
    client = _rate_redis_clients.get(loop)
    if client is None:
        location = config["LOCATION"]
        # Django writes to the first server of the list (RedisCache.get_client(write=True)).
        url = re.split("[;,]", location)[0] if isinstance(location, str) else location[0]
        # Calls past RATE_REDIS_CONNECTIONS wait their turn for a connection (one short round
        # trip each) instead of failing, as the default pool does past its size.
        pool = BlockingConnectionPool.from_url(url, max_connections=RATE_REDIS_CONNECTIONS)
        client = _rate_redis_clients[loop] = AsyncRedis(connection_pool=pool)
    return client


async def api_key_throttle_async(*, key: ApiKey | ApiKeyRecord) -> None:
    """`api_key_throttle` from the event loop: the same count under the same Redis key, in one
    round trip (INCR; the window's first call also sets its expiry) and without a thread hop;
    Django's cache takes three round trips (add, exists, incr) in a thread."""
    limit = api_key_rate_limit(key=key)
    if not limit:
        return
    client = _rate_redis()
    if client is None:
        api_key_throttle(key=key)
        return
    cache_key, window, now = _rate_window(key)
    stored_as = cache.make_and_validate_key(cache_key)
    count = int(await client.incr(stored_as))
    if count == 1:
        await client.expire(stored_as, RATE_WINDOW_KEPT_SECONDS)
    _rate_check(limit, count, window, now)


TOUCH_EVERY_SECONDS = 60
_touched: dict[int, float] = {}  # key id -> when this process last wrote it (monotonic)


def api_key_touch(*, key_id: int) -> None:
    """Note that a key was used. `last_used_at` is informative, not an audit record: minute
    precision is enough, so a process writes it at most once a minute per key (and not at all
    while another process wrote it less than a minute ago), after the call, never before."""
    now = time.monotonic()
    last = _touched.get(key_id)
    if last is not None and now - last < TOUCH_EVERY_SECONDS:
        return
    _touched[key_id] = now
    at = timezone.now()
    stale = Q(last_used_at=None) | Q(last_used_at__lt=at - timedelta(seconds=TOUCH_EVERY_SECONDS))
    ApiKey.objects.filter(stale, id=key_id).update(last_used_at=at)
