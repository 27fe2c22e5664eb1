"""Plain builders for test data: keyword-only, saved objects, sensible defaults."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User

from routerapp.models import (
    ApiKey,
    ControllerObservation,
    Goal,
    ModelPrice,
    Outcome,
    Path,
    Provider,
    RoutingDecision,
)
from routerapp.services.access import api_key_create
from routerapp.services.controller import controller_advance
from routerapp.services.learning import decision_insert

PRICES = {"gpt-4o-mini": ("0.15", "0.60"), "gpt-4o": ("2.50", "10.00")}


def make_provider(
    *, name: str = "simulator", kind: str = Provider.Kind.SIMULATOR, **fields: Any
) -> Provider:
    provider, _ = Provider.objects.get_or_create(name=name, defaults={"kind": kind, **fields})
    return provider


def make_price(
    *,
    provider: Provider,
    model: str,
    price_in: str,
    price_out: str,
    effective_from: date = date(2024, 1, 1),
) -> ModelPrice:
    return ModelPrice.objects.create(
        provider=provider,
        model=model,
        input_per_million=Decimal(price_in),
        output_per_million=Decimal(price_out),
        effective_from=effective_from,
    )


def make_goal(
    *,
    slug: str = "email_classification",
    models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o"),
    weights: tuple[float, ...] | None = None,
    provider: Provider | None = None,
    priced: bool = True,
    **fields: Any,
) -> Goal:
    """A goal with one simulator path per model; the last model is the baseline."""
    provider = provider or make_provider()
    goal = Goal.objects.create(slug=slug, **fields)
    weights = weights or tuple(1.0 for _ in models)
    for model, weight in zip(models, weights, strict=True):
        name = model.replace("/", "-").replace(".", "-")
        Path.objects.create(goal=goal, name=name, provider=provider, model=model, weight=weight)
        base_model = model.split("/")[-1]
        if (
            priced
            and base_model in PRICES
            and not ModelPrice.objects.filter(provider=provider, model=model).exists()
        ):
            make_price(
                provider=provider,
                model=model,
                price_in=PRICES[base_model][0],
                price_out=PRICES[base_model][1],
            )
    goal.baseline_path = goal.paths.order_by("-id").first()
    goal.save()
    return goal


def make_api_key(
    *,
    scopes: tuple[str, ...] = ("completions", "outcomes", "read"),
    goals: tuple[Goal, ...] = (),
    name: str = "test key",
    **fields: Any,
) -> tuple[ApiKey, str]:
    return api_key_create(name=name, scopes=scopes, goals=goals, **fields)


def make_user(*, username: str, role: str | None = None, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username=username, password="pw-" + username, is_superuser=superuser, is_staff=superuser
    )
    if role:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user


def make_decision(
    *,
    goal: Goal,
    path: Path | None,
    bucket: str = "",
    outcome: float | None = None,
    reference_quality: float = 0.8,
    **fields: Any,
) -> RoutingDecision:
    """A call recorded as `decision_record` records it: the decision, its automatic outcome
    (None: no outcome), the controller's observation, posteriors and rollup, in one statement.
    `path` None is a call every path failed."""
    others = [p.id for p in goal.paths.order_by("id") if path is None or p.id != path.id]
    values: dict[str, Any] = {
        "reason": RoutingDecision.Reason.THOMPSON,
        "objective": goal.objective,
        "ranking": ([path.id] if path else []) + others,
        "explanation": {"reference_quality": reference_quality},
        "status": RoutingDecision.Status.OK if path else RoutingDecision.Status.FAILED,
        **fields,
    }
    decision = RoutingDecision(
        goal_id=goal.id, path_id=path.id if path else None, bucket=bucket, **values
    )
    decision_insert(decision, outcome=outcome, source=Outcome.Source.SUCCESS_WHEN, note="")
    return decision


def controller_settle(goal: Goal, *, timeout: float = 60.0) -> None:
    """Fold the goal's controller until every observation is in. A fold waits for the oldest
    writer on the whole PostgreSQL server, so other suites' open transactions delay it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        controller_advance(goal.id)
        cursor = Goal.objects.values_list("controller_cursor", flat=True).get(pk=goal.pk)
        if not ControllerObservation.objects.filter(goal=goal, xid__gte=cursor).exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"goal {goal.slug}: controller not folded within {timeout} s")
