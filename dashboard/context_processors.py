"""Context every page gets: whether the simulator is in use, and the goals whose regret alert is
on (both shown as banners); the number of pending change requests (in the navigation)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def banners(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from routerapp.selectors.goals import simulator_in_use
    from routerapp.selectors.governance import pending_count
    from routerapp.selectors.regret import regret_alerts_active

    return {
        "simulator_in_use": simulator_in_use(),
        "regret_alerts": regret_alerts_active(),
        "pending_change_requests": pending_count(request.user),
    }
