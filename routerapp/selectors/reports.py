"""Dashboard and report reads: overview, savings, traffic over time (regret: selectors/regret.py).

Every aggregate reads `HourlyRollup` (a few rows per goal, path and hour; the savings report
also `RegretRollup` for shadow and judge spend), never the decision table, so pages stay fast
at millions of decisions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from django.db.models import Min, QuerySet, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from routerapp import engine
from routerapp.models import Goal, HourlyRollup, RegretRollup

Granularity = Literal["hour", "day"]
R = TypeVar("R", HourlyRollup, RegretRollup)
GRANULARITIES: tuple[Granularity, ...] = ("hour", "day")
HOURS_PER_MONTH = Decimal("730")  # 365 * 24 / 12
ZERO = Decimal(0)
_SUMS = {
    "requests": Sum("requests"),
    "failed_requests": Sum("failed_requests"),
    "outcomes": Sum("outcomes"),
    "success_sum": Sum("success_sum"),
    "spend": Sum("spend"),
    "baseline_spend": Sum("baseline_spend"),
    "classifier_spend": Sum("classifier_spend"),
    "latency_ms_sum": Sum("latency_ms_sum"),
}
# Spend on shadow calls and their judging: kept out of `spend` (it served no client) and
# netted out of the savings.
_OVERHEAD_SUMS = {"shadow_spend": Sum("shadow_spend"), "judge_spend": Sum("judge_spend")}


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _periods(start: datetime, end: datetime, granularity: Granularity) -> list[datetime]:
    """Every period start from `start` up to (not including) `end`, in UTC."""
    current = hour_floor(start.astimezone(UTC))
    step = timedelta(hours=1)
    if granularity == "day":
        current = current.replace(hour=0)
        step = timedelta(days=1)
    periods = []
    while current < end:
        periods.append(current)
        current += step
    return periods


def period_label(moment: datetime, granularity: Granularity) -> str:
    moment = moment.astimezone(UTC)
    return (
        moment.strftime("%Y-%m-%d") if granularity == "day" else moment.strftime("%Y-%m-%dT%H:00Z")
    )


def rollup_window(
    rollups: QuerySet[R],
    *,
    start: datetime,
    end: datetime,
    goal: Goal | None = None,
    goal_ids: Collection[int] | None = None,
) -> QuerySet[R]:
    """Hourly rollup rows (`HourlyRollup` or `RegretRollup`) of the window's hours, of one goal
    or of the goals in `goal_ids` (None: every goal). The hour holding `start` is included."""
    rollups = rollups.filter(hour__gte=hour_floor(start), hour__lt=end)
    if goal_ids is not None:
        rollups = rollups.filter(goal_id__in=list(goal_ids))
    return rollups.filter(goal=goal) if goal is not None else rollups


def _rollups(
    *,
    start: datetime,
    end: datetime,
    goal: Goal | None = None,
    goal_ids: Collection[int] | None = None,
) -> QuerySet[HourlyRollup]:
    return rollup_window(
        HourlyRollup.objects.all(), start=start, end=end, goal=goal, goal_ids=goal_ids
    )


def _pct(part: Decimal, whole: Decimal) -> float | None:
    return float(part / whole) if whole else None


@dataclass
class Totals:
    requests: int = 0
    failed_requests: int = 0
    outcomes: int = 0
    success_sum: float = 0.0
    spend: Decimal = ZERO
    baseline_spend: Decimal = ZERO
    classifier_spend: Decimal = ZERO
    shadow_spend: Decimal = ZERO
    judge_spend: Decimal = ZERO
    latency_ms_sum: float = 0.0

    def add(self, row: Mapping[str, Any]) -> None:
        """Adds an `HourlyRollup` sums row, or a `RegretRollup` one (only its spend keys)."""
        self.requests += row.get("requests") or 0
        self.failed_requests += row.get("failed_requests") or 0
        self.outcomes += row.get("outcomes") or 0
        self.success_sum += row.get("success_sum") or 0.0
        self.spend += row.get("spend") or ZERO
        self.baseline_spend += row.get("baseline_spend") or ZERO
        self.classifier_spend += row.get("classifier_spend") or ZERO
        self.shadow_spend += row.get("shadow_spend") or ZERO
        self.judge_spend += row.get("judge_spend") or ZERO
        self.latency_ms_sum += row.get("latency_ms_sum") or 0.0

    @property
    def success_rate(self) -> float | None:
        return self.success_sum / self.outcomes if self.outcomes else None

    @property
    def savings(self) -> Decimal:
        return self.baseline_spend - self.spend

    @property
    def savings_pct(self) -> float | None:
        return _pct(self.savings, self.baseline_spend)

    @property
    def net_savings(self) -> Decimal:
        """What routing saved after paying for its own machinery: the classifier step, the
        shadow calls to the baseline and their judging."""
        return self.savings - self.classifier_spend - self.shadow_spend - self.judge_spend

    @property
    def net_savings_pct(self) -> float | None:
        return _pct(self.net_savings, self.baseline_spend)

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "outcomes": self.outcomes,
            "success_rate": self.success_rate,
            "spend": self.spend,
            "baseline_spend": self.baseline_spend,
            "savings": self.savings,
            "savings_pct": self.savings_pct,
            "classifier_spend": self.classifier_spend,
            "shadow_spend": self.shadow_spend,
            "judge_spend": self.judge_spend,
            "net_savings": self.net_savings,
            "net_savings_pct": self.net_savings_pct,
        }


# --------------------------------------------------------------------------- overview


@dataclass
class GoalSummary:
    slug: str
    description: str
    status: str
    totals: Totals
    periods: list[str]
    requests_series: list[float]
    savings_series: list[float]


@dataclass
class OverviewReport:
    start: datetime
    end: datetime
    granularity: Granularity
    goals: list[GoalSummary]
    totals: Totals
    projected_monthly_saving: Decimal

    @property
    def has_traffic(self) -> bool:
        return self.totals.requests > 0


def overview_report(
    *, start: datetime, end: datetime, granularity: Granularity = "day"
) -> OverviewReport:
    """Per goal totals and sparkline series for the window, overall totals, and the saving a
    month at the current rate: savings per hour since the window's first hour with traffic
    (at least one hour) x 730, so a demo started ten minutes ago is not averaged over a week."""
    periods = _periods(start, end, granularity)
    labels = [period_label(p, granularity) for p in periods]
    index = {label: i for i, label in enumerate(labels)}
    summaries: dict[int, GoalSummary] = {}
    for goal in Goal.objects.order_by("slug").only("id", "slug", "description", "status"):
        summaries[goal.id] = GoalSummary(
            slug=goal.slug,
            description=goal.description,
            status=goal.status,
            totals=Totals(),
            periods=labels,
            requests_series=[0.0] * len(labels),
            savings_series=[0.0] * len(labels),
        )
    # Typed as mappings: the stubs know the .values() keys but not the sums annotated after them.
    rows: Iterable[Mapping[str, Any]] = (
        _rollups(start=start, end=end)
        .annotate(period=Trunc("hour", granularity, tzinfo=UTC))
        .values("goal_id", "period")
        .annotate(**_SUMS)
    )
    totals = Totals()
    for row in rows:
        summary = summaries.get(row["goal_id"])
        if summary is None:
            continue
        summary.totals.add(row)
        totals.add(row)
        position = index.get(period_label(row["period"], granularity))
        if position is not None:
            summary.requests_series[position] += row["requests"] or 0
            summary.savings_series[position] += float(
                (row["baseline_spend"] or ZERO) - (row["spend"] or ZERO)
            )
    first_hour = _rollups(start=start, end=end).aggregate(first=Min("hour"))["first"]
    rate_start = max(start, first_hour) if first_hour else start
    elapsed = max((min(end, timezone.now()) - rate_start).total_seconds() / 3600, 1.0)
    projected = totals.savings / Decimal(str(elapsed)) * HOURS_PER_MONTH
    return OverviewReport(
        start=start,
        end=end,
        granularity=granularity,
        goals=list(summaries.values()),
        totals=totals,
        projected_monthly_saving=projected.quantize(Decimal("0.01")),
    )


# --------------------------------------------------------------------------- savings


@dataclass(frozen=True)
class SavingsRow:
    period: str
    goal: str
    path: str
    model: str
    requests: int
    spend: Decimal
    baseline_spend: Decimal
    classifier_spend: Decimal = ZERO
    shadow_spend: Decimal = ZERO
    judge_spend: Decimal = ZERO

    @property
    def savings(self) -> Decimal:
        return self.baseline_spend - self.spend

    @property
    def savings_pct(self) -> float | None:
        return _pct(self.savings, self.baseline_spend)

    @property
    def net_savings(self) -> Decimal:
        return self.savings - self.classifier_spend - self.shadow_spend - self.judge_spend

    @property
    def net_savings_pct(self) -> float | None:
        return _pct(self.net_savings, self.baseline_spend)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "savings": self.savings,
            "savings_pct": self.savings_pct,
            "net_savings": self.net_savings,
            "net_savings_pct": self.net_savings_pct,
        }


@dataclass(frozen=True)
class PathCost:
    goal: str
    path: str
    model: str
    requests: int
    spend: Decimal
    baseline_spend: Decimal

    @property
    def cost_per_1k(self) -> Decimal | None:
        return self.spend * 1000 / self.requests if self.requests else None

    @property
    def baseline_cost_per_1k(self) -> Decimal | None:
        return self.baseline_spend * 1000 / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "cost_per_1k": self.cost_per_1k,
            "baseline_cost_per_1k": self.baseline_cost_per_1k,
        }


@dataclass
class SavingsReport:
    start: datetime
    end: datetime
    granularity: Granularity
    goal: str | None
    rows: list[SavingsRow]
    path_costs: list[PathCost]
    totals: Totals = field(default_factory=Totals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.end,
            "granularity": self.granularity,
            "goal": self.goal,
            "totals": {
                key: value
                for key, value in self.totals.as_dict().items()
                if key not in ("outcomes", "success_rate")
            },
            "rows": [row.as_dict() for row in self.rows],
            "path_costs": [cost.as_dict() for cost in self.path_costs],
        }


def savings_report(
    *,
    start: datetime,
    end: datetime,
    goal: Goal | None = None,
    granularity: Granularity = "day",
    goal_ids: Collection[int] | None = None,
) -> SavingsReport:
    """Spend vs baseline spend per period, goal and path, from the hourly rollups.

    Savings = baseline spend - actual spend: what the same tokens would have cost on the
    goal's baseline path, minus what they cost on the path that answered. Net savings also take
    off the classifier's spend and the shadow calls' and judge's spend (`RegretRollup`, per
    served path), none of which is in the actual spend. `goal_ids` limits the report to those
    goals (an API key restricted to some goals).
    """
    grouping = ("period", "goal__slug", "path__name", "path__model")
    rows: Iterable[Mapping[str, Any]] = (  # mappings: see overview_report
        _rollups(start=start, end=end, goal=goal, goal_ids=goal_ids)
        .annotate(period=Trunc("hour", granularity, tzinfo=UTC))
        .values(*grouping)
        .annotate(**_SUMS)
    )
    overheads: Iterable[Mapping[str, Any]] = (
        rollup_window(
            RegretRollup.objects.all(), start=start, end=end, goal=goal, goal_ids=goal_ids
        )
        .annotate(period=Trunc("hour", granularity, tzinfo=UTC))
        .values(*grouping)
        .annotate(**_OVERHEAD_SUMS)
    )
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in [*rows, *overheads]:
        key = (period_label(row["period"], granularity), *(row[name] for name in grouping[1:]))
        merged.setdefault(key, {}).update({k: v for k, v in row.items() if k not in grouping})
    report = SavingsReport(
        start=start,
        end=end,
        granularity=granularity,
        goal=goal.slug if goal else None,
        rows=[],
        path_costs=[],
    )
    costs: dict[tuple[str, str], PathCost] = {}
    for (period, goal_slug, path_name, model), sums in sorted(merged.items()):
        report.totals.add(sums)
        savings_row = SavingsRow(
            period=period,
            goal=goal_slug,
            path=path_name,
            model=model,
            requests=sums.get("requests") or 0,
            spend=sums.get("spend") or ZERO,
            baseline_spend=sums.get("baseline_spend") or ZERO,
            classifier_spend=sums.get("classifier_spend") or ZERO,
            shadow_spend=sums.get("shadow_spend") or ZERO,
            judge_spend=sums.get("judge_spend") or ZERO,
        )
        report.rows.append(savings_row)
        key = (savings_row.goal, savings_row.path)
        previous = costs.get(key)
        costs[key] = PathCost(
            goal=savings_row.goal,
            path=savings_row.path,
            model=savings_row.model,
            requests=savings_row.requests + (previous.requests if previous else 0),
            spend=savings_row.spend + (previous.spend if previous else ZERO),
            baseline_spend=savings_row.baseline_spend
            + (previous.baseline_spend if previous else ZERO),
        )
    report.path_costs = [costs[key] for key in sorted(costs)]
    return report


# --------------------------------------------------------------------------- goal detail


def goal_traffic_series(
    *, goal: Goal, start: datetime, end: datetime, granularity: Granularity = "hour"
) -> list[dict[str, Any]]:
    """Per period and path: requests, outcomes, success rate with its 95% interval
    (Beta(1 + successes, 1 + failures)); rate is None for a period without outcomes."""
    rows = (
        _rollups(start=start, end=end, goal=goal)
        .annotate(period=Trunc("hour", granularity, tzinfo=UTC))
        .values("period", "path__name")
        .annotate(
            requests=Sum("requests"), outcomes=Sum("outcomes"), success_sum=Sum("success_sum")
        )
        .order_by("period", "path__name")
    )
    series = []
    for row in rows:
        outcomes, success = row["outcomes"] or 0, max(row["success_sum"] or 0.0, 0.0)
        rate = low = high = None
        if outcomes:
            failures = max(outcomes - success, 0.0)
            _, low, high = engine.posterior_summary(1.0 + success, 1.0 + failures)
            rate = min(success / outcomes, 1.0)
        series.append(
            {
                "period": period_label(row["period"], granularity),
                "path": row["path__name"],
                "requests": row["requests"] or 0,
                "outcomes": outcomes,
                "success_sum": success,
                "rate": rate,
                "low": low,
                "high": high,
            }
        )
    return series
