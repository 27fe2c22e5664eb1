"""System checks for deployment mistakes Django's own checks do not see."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register

PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@register()
def shared_cache_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """Rate limits count in the default cache: a per-process cache lets N workers allow N times
    each key's limit. `make run` and docker-compose set CACHE_URL; a bare deployment may not."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            f"The default cache ({backend}) is not shared between processes, so API key rate "
            "limits do not hold across worker processes.",
            hint="Set CACHE_URL to a Redis URL, e.g. redis://redis:6379/1.",
            id="routerapp.W001",
        )
    ]
