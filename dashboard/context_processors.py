"""Context every page gets: whether the simulator is in use (shown as a banner)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def banners(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from routerapp.selectors.goals import simulator_in_use

    return {"simulator_in_use": simulator_in_use()}
