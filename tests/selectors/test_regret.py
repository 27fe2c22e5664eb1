"""Regret figures from RegretRollup rows inserted directly (services/shadows.py writes them
in production): known counts give known rates, Wilson intervals, funnels and breakdowns."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from routerapp.models import Goal, Path, RegretRollup
from routerapp.selectors.regret import RegretCounts, regret_alerts_active, regret_report
from routerapp.stats import wilson_interval
from tests.builders import make_goal

pytestmark = pytest.mark.django_db


def this_hour(hours_ago: int = 0) -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


def make_regret_rollup(
    *, path: Path, bucket: str = "", hours_ago: int = 0, **counts: Any
) -> RegretRollup:
    return RegretRollup.objects.create(
        goal=path.goal, path=path, bucket=bucket, hour=this_hour(hours_ago), **counts
    )


def window(hours: int = 48) -> dict[str, datetime]:
    now = timezone.now()
    return {"start": now - timedelta(hours=hours), "end": now + timedelta(minutes=1)}


def test_wilson_interval_on_known_counts() -> None:
    # Worked by hand from Wilson's formula (z = 1.96): 3/100 has centre 0.047387 and
    # half-width 0.037132; 0/50 has upper bound z^2 / (n + z^2); 50/100 is symmetric.
    assert [round(x, 6) for x in wilson_interval(3, 100)] == [0.010255, 0.084519]
    low, high = wilson_interval(0, 50)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.0714, abs=1e-4)
    assert [round(x, 4) for x in wilson_interval(50, 100)] == [0.4038, 0.5962]


def test_counts_give_rate_interval_delta_position_bias_and_funnel() -> None:
    counts = RegretCounts()
    counts.add(
        {
            "sampled": 130,
            "judged": 100,
            "regret": 3,
            "same": 90,
            "worse": 7,
            "unjudgeable": 4,
            "shadow_failed": 6,
            "over_budget": 5,
            "dropped": 5,
            "first_shown_wins": 6,
            "decisive": 10,
            "score_delta_sum": -2.5,
            "shadow_spend": Decimal("0.25"),
            "judge_spend": Decimal("0.05"),
        }
    )
    assert counts.regret_rate == 0.03
    assert (round(counts.low or 0, 4), round(counts.high or 0, 4)) == (0.0103, 0.0845)
    assert counts.mean_score_delta == -0.025
    bias = counts.position_bias
    assert bias["rate"] == 0.6
    assert (bias["low"], bias["high"]) == wilson_interval(6, 10)
    assert counts.funnel == {
        "judged": 100,
        "unjudgeable": 4,
        "shadow_failed": 6,
        "over_budget": 5,
        "dropped": 5,
        "pending": 10,
    }
    assert sum(counts.funnel.values()) == counts.sampled
    assert counts.spend == Decimal("0.30")


def test_no_judged_comparison_has_no_rate_and_no_interval() -> None:
    counts = RegretCounts(sampled=3, dropped=1)
    assert counts.regret_rate is None
    assert counts.low is None
    assert counts.high is None
    assert counts.mean_score_delta is None
    assert counts.position_bias["rate"] is None
    assert counts.funnel["pending"] == 2


def test_pending_never_goes_negative() -> None:
    # A terminal count rolled into a later hour than its sample.
    assert RegretCounts(sampled=0, judged=1, regret=0).pending == 0


def test_report_sums_per_path_bucket_period_and_goal() -> None:
    goal = make_goal(regret_threshold=0.03)
    mini, big = goal.paths.order_by("id")
    make_regret_rollup(path=mini, bucket="math", sampled=10, judged=8, regret=4, score_delta_sum=2)
    make_regret_rollup(path=mini, bucket="math", hours_ago=3, sampled=10, judged=10, regret=1)
    make_regret_rollup(
        path=mini,
        bucket="chat",
        sampled=20,
        judged=20,
        regret=0,
        shadow_spend=Decimal("0.5"),
        judge_spend=Decimal("0.1"),
    )
    make_regret_rollup(path=big, bucket="chat", sampled=2, judged=1, dropped=1)
    report = regret_report(**window(), goal=goal, granularity="hour")

    assert report.totals.sampled == 42
    assert report.totals.judged == 39
    assert report.totals.regret == 5
    assert report.totals.regret_rate == pytest.approx(5 / 39)
    assert (report.totals.low, report.totals.high) == wilson_interval(5, 39)
    assert report.totals.funnel["pending"] == 42 - 39 - 1
    assert report.totals.shadow_spend == Decimal("0.5")
    assert report.totals.judge_spend == Decimal("0.1")
    assert report.thresholds == {goal.slug: 0.03}

    by_bucket = {row.bucket: row.counts for row in report.buckets}
    assert by_bucket["math"].regret_rate == pytest.approx(5 / 18)
    assert by_bucket["math"].mean_score_delta == pytest.approx(2 / 18)
    assert by_bucket["chat"].regret_rate == 0.0
    assert (by_bucket["chat"].low, by_bucket["chat"].high) == wilson_interval(0, 21)
    by_path = {row.path: row.counts for row in report.paths}
    assert by_path["gpt-4o-mini"].sampled == 40
    assert by_path["gpt-4o"].dropped == 1
    assert {row.path: row.model for row in report.paths} == {
        "gpt-4o-mini": "gpt-4o-mini",
        "gpt-4o": "gpt-4o",
    }
    # Two hours with shadows: the series has one point per hour (one goal), in order.
    assert [row.counts.judged for row in report.series] == [10, 29]
    assert report.series[0].period < report.series[1].period
    assert len(report.rows) == 4
    assert sum(row.counts.sampled for row in report.rows) == 42


def test_daily_granularity_merges_the_hours() -> None:
    goal = make_goal()
    mini = goal.paths.order_by("id").first()
    make_regret_rollup(path=mini, sampled=1, judged=1, regret=1)
    make_regret_rollup(path=mini, hours_ago=1, sampled=1, judged=1)
    now = timezone.now()
    report = regret_report(start=now - timedelta(hours=1), end=now + timedelta(minutes=1))
    days = {row.period for row in report.series}
    assert len(days) in (1, 2)  # 2 only when the last hour crossed midnight UTC
    assert sum(row.counts.judged for row in report.series) == 2


def test_window_goal_and_goal_ids_limit_the_report() -> None:
    goal_a = make_goal(slug="a")
    goal_b = make_goal(slug="b")
    make_regret_rollup(path=goal_a.paths.first(), sampled=1, judged=1, regret=1)
    make_regret_rollup(path=goal_b.paths.first(), sampled=2, judged=2)
    make_regret_rollup(path=goal_b.paths.first(), hours_ago=24 * 10, sampled=5, judged=5)
    assert regret_report(**window()).totals.sampled == 3
    assert regret_report(**window(), goal=goal_a).totals.sampled == 1
    assert regret_report(**window(), goal_ids=[goal_b.id]).totals.sampled == 2
    assert regret_report(**window(), goal_ids=[goal_b.id]).thresholds.keys() == {"b"}
    assert regret_report(**window(24 * 30)).totals.sampled == 8
    empty = regret_report(**window(), goal_ids=[])
    assert empty.totals.sampled == 0
    assert not empty.has_shadows
    assert empty.rows == []


def test_alerts_lists_only_goals_whose_alert_is_active(django_assert_num_queries: Any) -> None:
    make_goal(slug="quiet")
    make_goal(slug="cleared", regret_alert={"active": False, "rate": 0.01})
    loud = make_goal(slug="loud", regret_threshold=0.03)
    Goal.objects.filter(pk=loud.pk).update(
        regret_alert={"active": True, "rate": 0.12, "low": 0.06, "high": 0.2, "judged": 100}
    )
    with django_assert_num_queries(1):
        alerts = regret_alerts_active()
    assert alerts == [
        {
            "slug": "loud",
            "threshold": 0.03,
            "active": True,
            "rate": 0.12,
            "low": 0.06,
            "high": 0.2,
            "judged": 100,
        }
    ]
