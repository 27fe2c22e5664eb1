"""API keys: creation (secret shown once), authentication, rate limiting; and the audit log."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from routerapp.errors import AuthenticationFailed, InvalidRequest, PermissionDenied, RateLimited
from routerapp.models import ApiKey, AuditLog, Goal

VALID_SCOPES = {choice.value for choice in ApiKey.Scope}


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
        actor=actor if actor is not None and actor.is_authenticated else None,
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
    created_by: AbstractBaseUser | None = None,
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
            created_by=created_by,
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


def api_key_authenticate(raw: str | None) -> ApiKey:
    """The active key for a raw secret, or AuthenticationFailed. Constant-time by construction:
    the lookup is by prefix and the secret is compared as a hash."""
    if not raw:
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.")
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != "rk":
        raise AuthenticationFailed("Invalid API key.")
    key = ApiKey.objects.filter(prefix=parts[1]).first()
    if key is None or key.hashed_secret != ApiKey.hash_secret(raw):
        raise AuthenticationFailed("Invalid API key.")
    if not key.is_active:
        raise AuthenticationFailed("This API key has been revoked.")
    return key


def api_key_check(*, key: ApiKey, scope: str, goal: Goal | None = None) -> None:
    if not key.has_scope(scope):
        raise PermissionDenied(f"This API key lacks the '{scope}' scope.")
    if (
        goal is not None
        and key.allowed_goals.exists()
        and not key.allowed_goals.filter(id=goal.id).exists()
    ):
        raise PermissionDenied(f"This API key is not allowed to use goal '{goal.slug}'.")


def api_key_throttle(*, key: ApiKey) -> None:
    """Fixed one-minute window in the shared cache (Redis in production: per cluster)."""
    limit = key.rate_limit_per_minute or settings.DEFAULT_RATE_LIMIT_PER_MINUTE
    if not limit:
        return
    window = int(time.time() // 60)
    cache_key = f"ratelimit:{key.id}:{window}"
    cache.add(cache_key, 0, timeout=90)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=90)
        count = 1
    if count > limit:
        raise RateLimited(f"Rate limit of {limit} requests per minute exceeded.")


def api_key_touch(*, key: ApiKey) -> None:
    # At most one write a minute per key: last_used_at is informative, not an audit record.
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(id=key.id).update(last_used_at=now)
