"""Downgrade-regret reads: the shadow comparisons' figures per goal, served path, bucket and
period, from `RegretRollup` (a few rows per goal, path, bucket and hour, written by
services/shadows.py), never the comparison table, so the pages stay fast; and the comparison
list itself, for the page's table and the API.

Regret rate = judged comparisons where the baseline's answer was better / judged comparisons,
with its 95% Wilson interval (rates near 0, where the normal approximation fails). Every sampled
call is in exactly one funnel state; `pending` is what has not reached one yet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.db.models.functions import Trunc

from routerapp.models import Goal, RegretRollup, ShadowComparison
from routerapp.selectors.reports import Granularity, period_label, rollup_window
from routerapp.stats import wilson_interval

ZERO = Decimal(0)
COUNTERS = (
    "sampled",
    "judged",
    "regret",
    "same",
    "worse",
    "unjudgeable",
    "shadow_failed",
    "over_budget",
    "dropped",
    "first_shown_wins",
    "decisive",
)
# The states a sampled call ends in (ShadowComparison.State minus pending), in funnel order.
TERMINAL_STATES = ("judged", "unjudgeable", "shadow_failed", "over_budget", "dropped")
FUNNEL_STATES = (*TERMINAL_STATES, "pending")
_SUMS = {
    **{name: Sum(name) for name in COUNTERS},
    "score_delta_sum": Sum("score_delta_sum"),
    "shadow_spend": Sum("shadow_spend"),
    "judge_spend": Sum("judge_spend"),
}


@dataclass
class RegretCounts:
    """Summed rollup counters of some slice, and the rates and intervals derived from them."""

    sampled: int = 0
    judged: int = 0
    regret: int = 0
    same: int = 0
    worse: int = 0
    unjudgeable: int = 0
    shadow_failed: int = 0
    over_budget: int = 0
    dropped: int = 0
    first_shown_wins: int = 0
    decisive: int = 0
    score_delta_sum: float = 0.0
    shadow_spend: Decimal = ZERO
    judge_spend: Decimal = ZERO

    def add(self, row: Mapping[str, Any]) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + (row.get(name) or 0))
        self.score_delta_sum += row.get("score_delta_sum") or 0.0
        self.shadow_spend += row.get("shadow_spend") or ZERO
        self.judge_spend += row.get("judge_spend") or ZERO

    @property
    def regret_rate(self) -> float | None:
        return self.regret / self.judged if self.judged else None

    @property
    def low(self) -> float | None:
        return wilson_interval(self.regret, self.judged)[0] if self.judged else None

    @property
    def high(self) -> float | None:
        return wilson_interval(self.regret, self.judged)[1] if self.judged else None

    @property
    def mean_score_delta(self) -> float | None:
        """Baseline score minus served score, per judged comparison."""
        return self.score_delta_sum / self.judged if self.judged else None

    @property
    def position_bias(self) -> dict[str, Any]:
        """How often the answer shown first won, among judged comparisons that were not a tie:
        about 0.5 for a fair judge (the order is randomised per comparison)."""
        decisive = self.decisive
        wins = min(self.first_shown_wins, decisive)
        low, high = wilson_interval(wins, decisive) if decisive else (None, None)
        return {
            "first_shown_wins": self.first_shown_wins,
            "decisive": decisive,
            "rate": wins / decisive if decisive else None,
            "low": low,
            "high": high,
        }

    @property
    def pending(self) -> int:
        """Sampled calls not yet in a terminal state (clamped: a terminal count rolled into a
        later hour than its sample can make a slice's difference negative)."""
        return max(self.sampled - sum(getattr(self, state) for state in TERMINAL_STATES), 0)

    @property
    def funnel(self) -> dict[str, int]:
        return {
            **{state: getattr(self, state) for state in TERMINAL_STATES},
            "pending": self.pending,
        }

    @property
    def spend(self) -> Decimal:
        return self.shadow_spend + self.judge_spend

    def as_dict(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "judged": self.judged,
            "regret": self.regret,
            "same": self.same,
            "worse": self.worse,
            "regret_rate": self.regret_rate,
            "low": self.low,
            "high": self.high,
            "mean_score_delta": self.mean_score_delta,
            "position_bias": self.position_bias,
            "funnel": self.funnel,
            "shadow_spend": self.shadow_spend,
            "judge_spend": self.judge_spend,
        }


@dataclass
class RegretRow:
    """One slice: `period`, `path`/`model` and `bucket` are "" where the slice spans them."""

    goal: str
    period: str = ""
    path: str = ""
    model: str = ""
    bucket: str = ""
    counts: RegretCounts = field(default_factory=RegretCounts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "goal": self.goal,
            "path": self.path,
            "model": self.model,
            "bucket": self.bucket,
            **self.counts.as_dict(),
        }


@dataclass
class RegretReport:
    start: datetime
    end: datetime
    granularity: Granularity
    goal: str | None
    totals: RegretCounts = field(default_factory=RegretCounts)
    rows: list[RegretRow] = field(default_factory=list)  # period x goal x path x bucket
    paths: list[RegretRow] = field(default_factory=list)  # goal x served path
    buckets: list[RegretRow] = field(default_factory=list)  # goal x bucket
    series: list[RegretRow] = field(default_factory=list)  # period x goal
    # Per goal in the report: its alert threshold (the chart's line).
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def has_shadows(self) -> bool:
        return self.totals.sampled > 0


def regret_report(
    *,
    start: datetime,
    end: datetime,
    goal: Goal | None = None,
    granularity: Granularity = "day",
    goal_ids: Collection[int] | None = None,
) -> RegretReport:
    """Regret figures of the window (the hour holding `start` included, `end` exclusive) per
    period, goal, served path and bucket, with the by-path, by-bucket and per-period-per-goal
    breakdowns summed from them; `goal_ids` limits it to those goals (a key restricted to some
    goals), like the savings report. One query."""
    grouping = ("period", "goal__slug", "path__name", "path__model", "bucket")
    rows: Iterable[Mapping[str, Any]] = (  # mappings: the stubs miss the annotated sums
        rollup_window(
            RegretRollup.objects.all(), start=start, end=end, goal=goal, goal_ids=goal_ids
        )
        .annotate(period=Trunc("hour", granularity, tzinfo=UTC))
        .values(*grouping, "goal__regret_threshold")
        .annotate(**_SUMS)
        .order_by(*grouping)
    )
    report = RegretReport(
        start=start, end=end, granularity=granularity, goal=goal.slug if goal else None
    )
    paths: dict[tuple[str, str], RegretRow] = {}
    buckets: dict[tuple[str, str], RegretRow] = {}
    series: dict[tuple[str, str], RegretRow] = {}
    for row in rows:
        slug, path, model, bucket = (
            row["goal__slug"],
            row["path__name"],
            row["path__model"],
            row["bucket"],
        )
        period = period_label(row["period"], granularity)
        report.thresholds[slug] = row["goal__regret_threshold"]
        line = RegretRow(goal=slug, period=period, path=path, model=model, bucket=bucket)
        line.counts.add(row)
        report.rows.append(line)
        report.totals.add(row)
        paths.setdefault((slug, path), RegretRow(goal=slug, path=path, model=model)).counts.add(row)
        buckets.setdefault((slug, bucket), RegretRow(goal=slug, bucket=bucket)).counts.add(row)
        series.setdefault((period, slug), RegretRow(goal=slug, period=period)).counts.add(row)
    report.paths = [paths[key] for key in sorted(paths)]
    report.buckets = [buckets[key] for key in sorted(buckets)]
    report.series = [series[key] for key in sorted(series)]
    return report


def shadow_comparison_list(
    *,
    goal: Goal | None = None,
    goal_ids: Collection[int] | None = None,
    state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[ShadowComparison]:
    """Comparisons, newest first, with what a list shows of their decision and paths."""
    comparisons = ShadowComparison.objects.select_related(
        "goal", "served_path", "baseline_path", "decision"
    ).order_by("-created_at", "-id")
    if goal_ids is not None:
        comparisons = comparisons.filter(goal_id__in=list(goal_ids))
    if goal is not None:
        comparisons = comparisons.filter(goal=goal)
    if state:
        comparisons = comparisons.filter(state=state)
    if start is not None:
        comparisons = comparisons.filter(created_at__gte=start)
    if end is not None:
        comparisons = comparisons.filter(created_at__lt=end)
    return comparisons


def regret_alerts_active() -> list[dict[str, Any]]:
    """The goals whose regret alert is on (services/shadows.py sets and clears it), for the
    banner every page shows: one query on the goal table."""
    return [
        {"slug": slug, "threshold": threshold, **(alert if isinstance(alert, dict) else {})}
        for slug, threshold, alert in Goal.objects.filter(regret_alert__active=True)
        .order_by("slug")
        .values_list("slug", "regret_threshold", "regret_alert")
    ]
