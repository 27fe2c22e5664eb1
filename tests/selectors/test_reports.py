from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from routerapp.selectors.decisions import (
    DecisionCursor,
    DecisionFilters,
    decision_get_detail,
    decision_list,
)
from routerapp.selectors.reports import (
    goal_traffic_series,
    overview_report,
    savings_report,
)
from tests.builders import make_goal
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


def test_overview_sums_rollups_per_goal_and_projects_a_month() -> None:
    goal = make_goal()
    make_goal(slug="idle")
    path = goal.paths.first()
    record_decision(path=path, cost="1", baseline_cost="3", value=1.0)
    record_decision(path=path, cost="1", baseline_cost="3", value=0.0)
    now = timezone.now()
    report = overview_report(start=now - timedelta(hours=10), end=now, granularity="hour")
    by_slug = {summary.slug: summary for summary in report.goals}
    assert by_slug["email_classification"].totals.savings == Decimal(4)
    assert by_slug["email_classification"].totals.success_rate == 0.5
    assert sum(by_slug["email_classification"].requests_series) == 2
    assert by_slug["idle"].totals.requests == 0
    # The rate runs from the first hour with traffic (this hour: under an hour ago, so one
    # hour counts), not from the start of the 10-hour window.
    assert report.projected_monthly_saving == Decimal(4 * 730).quantize(Decimal("0.01"))


def test_projection_uses_the_hours_since_traffic_began() -> None:
    goal = make_goal()
    path = goal.paths.first()
    now = timezone.now()
    record_decision(path=path, cost="1", baseline_cost="3", at=now - timedelta(hours=5))
    record_decision(path=path, cost="1", baseline_cost="3")
    report = overview_report(start=now - timedelta(days=7), end=now, granularity="day")
    # 4 saved over 5-6 hours (from the start of the hour 5 h ago), not over 7 days.
    assert Decimal(4 * 730 / 6) <= report.projected_monthly_saving <= Decimal(4 * 730 / 5)


def test_savings_report_groups_per_period_goal_and_path() -> None:
    goal = make_goal()
    mini, big = goal.paths.order_by("id")
    now = timezone.now()
    record_decision(path=mini, cost="1", baseline_cost="4", at=now - timedelta(days=1))
    record_decision(path=mini, cost="1", baseline_cost="4")
    record_decision(path=big, cost="4", baseline_cost="4")
    report = savings_report(start=now - timedelta(days=3), end=now + timedelta(minutes=1))
    assert len(report.rows) == 3
    assert report.totals.savings == Decimal(6)
    assert report.totals.savings_pct == 0.5
    costs = {cost.path: cost for cost in report.path_costs}
    assert costs["gpt-4o-mini"].requests == 2
    assert costs["gpt-4o-mini"].cost_per_1k == Decimal(1000)


def test_traffic_series_has_rates_with_intervals() -> None:
    goal = make_goal()
    path = goal.paths.first()
    for value in (1.0, 1.0, 0.0, 1.0):
        record_decision(path=path, value=value)
    now = timezone.now()
    (row,) = goal_traffic_series(goal=goal, start=now - timedelta(hours=2), end=now)
    assert row["rate"] == 0.75
    assert row["low"] < 0.75 < row["high"]


def test_decision_list_keyset_is_stable_for_equal_timestamps() -> None:
    goal = make_goal()
    path = goal.paths.first()
    at = timezone.now()
    made = [record_decision(path=path, at=at) for _ in range(5)]
    seen = []
    cursor = None
    while True:
        page = decision_list(filters=DecisionFilters(), older_than=cursor, limit=2)
        seen += [row["id"] for row in page.rows]
        if page.older is None:
            break
        cursor = DecisionCursor.decode(page.older)
    assert sorted(seen) == sorted(d.id for d in made)
    assert len(seen) == len(set(seen))


def test_decision_detail_lists_every_path_sample() -> None:
    goal = make_goal()
    decision = record_decision(path=goal.paths.first())
    detail = decision_get_detail(request_id=decision.request_id)
    assert detail.samples[0]["chosen"] is True
    assert detail.outcome["source"] == "success_when"
    assert decision_get_detail(request_id="req_missing") is None
