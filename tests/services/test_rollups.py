"""Rollups: maintained live by every decision and outcome; reconciliation rebuilds the same rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routerapp.models import HourlyRollup, RoutingDecision
from routerapp.services.outcomes import outcome_report
from routerapp.services.rollups import rollups_reconcile
from tests.builders import make_decision, make_goal


def record(goal, path, *, cost: str, baseline: str) -> RoutingDecision:  # noqa: ANN001
    return make_decision(
        goal=goal,
        path=path,
        cost=Decimal(cost),
        baseline_cost=Decimal(baseline),
        latency_ms=100.0,
        tokens_in=10,
        tokens_out=5,
    )


def snapshot() -> list[tuple]:
    return sorted(
        HourlyRollup.objects.values_list(
            "goal_id",
            "path_id",
            "hour",
            "requests",
            "outcomes",
            "success_sum",
            "spend",
            "baseline_spend",
            "tokens_in",
            "tokens_out",
        )
    )


@pytest.mark.django_db
def test_reconcile_rebuilds_exactly_what_live_updates_maintained() -> None:
    goal = make_goal(slug="g")
    cheap, strong = goal.paths.order_by("id")
    first = record(goal, cheap, cost="0.001", baseline="0.01")
    record(goal, strong, cost="0.01", baseline="0.01")
    outcome_report(decision=first, value=1.0)
    live = snapshot()

    rows = rollups_reconcile()

    assert rows == 2
    assert snapshot() == live
    cheap_row = HourlyRollup.objects.get(path=cheap)
    assert (cheap_row.requests, cheap_row.outcomes, cheap_row.success_sum) == (1, 1, 1.0)
    assert cheap_row.spend == Decimal("0.001")
    assert cheap_row.baseline_spend == Decimal("0.01")


@pytest.mark.django_db
def test_reconcile_heals_a_drifted_rollup_and_running_twice_changes_nothing() -> None:
    goal = make_goal(slug="g")
    path = goal.paths.first()
    record(goal, path, cost="0.002", baseline="0.02")
    HourlyRollup.objects.update(requests=99)

    rollups_reconcile()
    once = snapshot()
    rollups_reconcile()

    assert snapshot() == once
    assert HourlyRollup.objects.get().requests == 1
