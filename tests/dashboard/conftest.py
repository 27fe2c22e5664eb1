"""Dashboard test helpers: CSRF-enforcing clients per persona, and recorded traffic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from routerapp.models import Path, RoutingDecision
from tests.builders import make_decision


def csrf_post(client: Client, url: str, data: dict[str, Any] | None = None, **extra: Any) -> Any:
    """POST with the CSRF token a browser would send (the client enforces CSRF checks)."""
    if "csrftoken" not in client.cookies:
        client.get(reverse("login"))
    payload = {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    return client.post(url, payload, **extra)


@pytest.fixture
def client_for() -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        client = Client(enforce_csrf_checks=True)
        if user is not None:
            client.force_login(user)
        return client

    return make


def record_decision(
    *,
    path: Path,
    value: float | None = 1.0,
    cost: str = "0.0001",
    baseline_cost: str = "0.001",
    at: datetime | None = None,
    prompt: str = "user: hello",
    response: str = "spam",
    reason: str = RoutingDecision.Reason.THOMPSON,
    latency_ms: float = 120.0,
) -> RoutingDecision:
    """A decision as routing stores it: row, outcome, posterior and rollups."""
    return make_decision(
        goal=path.goal,
        path=path,
        outcome=value,
        reason=reason,
        objective="cost_at_quality",
        ranking=[path.id],
        samples={str(path.id): 0.9},
        features={"prompt_tokens": 12},
        attempts=[
            {
                "path_id": path.id,
                "path": path.name,
                "model": path.model,
                "ok": True,
                "latency_ms": latency_ms,
                "error": None,
                "skipped": False,
            }
        ],
        tokens_in=100,
        tokens_out=10,
        cost=Decimal(cost),
        baseline_cost=Decimal(baseline_cost),
        latency_ms=latency_ms,
        prompt_preview=prompt,
        response_text=response,
        created_at=at or timezone.now(),
    )


@pytest.fixture
def traffic(db: None) -> Callable[..., list[RoutingDecision]]:
    """traffic(goal, n=10, hours_ago=1): n decisions over the goal's paths, alternating."""

    def make(
        goal: Any, *, n: int = 10, hours_ago: float = 1.0, **fields: Any
    ) -> list[RoutingDecision]:
        paths = list(goal.paths.order_by("id"))
        start = timezone.now() - timedelta(hours=hours_ago)
        return [
            record_decision(
                path=paths[i % len(paths)],
                at=start + timedelta(seconds=i),
                value=1.0 if i % 3 else 0.0,
                **fields,
            )
            for i in range(n)
        ]

    return make
