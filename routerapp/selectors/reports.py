"""Dashboard and report reads: overview, savings, regret, traffic over time, the decision log.

Every aggregate reads `HourlyRollup` (a few rows per goal, path and hour), never the decision
table, so pages stay fast at millions of decisions. The decision log pages with a keyset
cursor over the `created_at` index (no COUNT(*), no OFFSET).
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from routerapp import engine
from routerapp.models import ApiKey, Goal, HourlyRollup, ModelPrice, Path, Provider, RoutingDecision

Granularity = Literal["hour", "day"]
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
    "latency_ms_sum": Sum("latency_ms_sum"),
}


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _periods(start: datetime, end: datetime, granularity: Granularity) -> list[datetime]:
    """Every period start from `start` up to (not including) `end`, in UTC."""
    current = _hour_floor(start.astimezone(UTC))
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


def _rollups(
    *,
    start: datetime,
    end: datetime,
    goal: Goal | None = None,
    goal_ids: Collection[int] | None = None,
) -> QuerySet[HourlyRollup]:
    rollups = HourlyRollup.objects.filter(hour__gte=_hour_floor(start), hour__lt=end)
    if goal_ids is not None:
        rollups = rollups.filter(goal_id__in=list(goal_ids))
    return rollups.filter(goal=goal) if goal is not None else rollups


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
    latency_ms_sum: float = 0.0

    def add(self, row: dict[str, Any]) -> None:
        self.requests += row["requests"] or 0
        self.failed_requests += row["failed_requests"] or 0
        self.outcomes += row["outcomes"] or 0
        self.success_sum += row["success_sum"] or 0.0
        self.spend += row["spend"] or ZERO
        self.baseline_spend += row["baseline_spend"] or ZERO
        self.latency_ms_sum += row["latency_ms_sum"] or 0.0

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
    month at the window's rate (savings per elapsed hour x 730)."""
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
    rows = (
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
    elapsed = (min(end, timezone.now()) - start).total_seconds() / 3600
    projected = (totals.savings / Decimal(str(elapsed)) * HOURS_PER_MONTH) if elapsed > 0 else ZERO
    return OverviewReport(
        start=start,
        end=end,
        granularity=granularity,
        goals=list(summaries.values()),
        totals=totals,
        projected_monthly_saving=projected.quantize(Decimal("0.01")),
    )


# --------------------------------------------------------------------------- savings and regret


@dataclass(frozen=True)
class SavingsRow:
    period: str
    goal: str
    path: str
    model: str
    requests: int
    spend: Decimal
    baseline_spend: Decimal

    @property
    def savings(self) -> Decimal:
        return self.baseline_spend - self.spend

    @property
    def savings_pct(self) -> float | None:
        return _pct(self.savings, self.baseline_spend)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "savings": self.savings, "savings_pct": self.savings_pct}


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
                key: self.totals.as_dict()[key]
                for key in ("requests", "spend", "baseline_spend", "savings", "savings_pct")
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
    goal's baseline path, minus what they cost on the path that answered. `goal_ids` limits
    the report to those goals (an API key restricted to some goals).
    """
    rows = (
        _rollups(start=start, end=end, goal=goal, goal_ids=goal_ids)
        .annotate(period=Trunc("hour", granularity, tzinfo=UTC))
        .values("period", "goal__slug", "path__name", "path__model")
        .annotate(**_SUMS)
        .order_by("period", "goal__slug", "path__name")
    )
    report = SavingsReport(
        start=start,
        end=end,
        granularity=granularity,
        goal=goal.slug if goal else None,
        rows=[],
        path_costs=[],
    )
    costs: dict[tuple[str, str], PathCost] = {}
    for row in rows:
        report.totals.add(row)
        savings_row = SavingsRow(
            period=period_label(row["period"], granularity),
            goal=row["goal__slug"],
            path=row["path__name"],
            model=row["path__model"],
            requests=row["requests"] or 0,
            spend=row["spend"] or ZERO,
            baseline_spend=row["baseline_spend"] or ZERO,
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


def regret_report(
    *, start: datetime, end: datetime, goal: Goal | None = None, granularity: Granularity = "day"
) -> dict[str, Any]:
    """Downgrade regret from shadow comparisons. Shadow traffic is not recorded yet, so this is
    the zero structure the dashboard and clients can rely on until it is."""
    return {
        "from": start,
        "to": end,
        "granularity": granularity,
        "goal": goal.slug if goal else None,
        "totals": {"shadow_comparisons": 0, "regrets": 0, "regret_rate": None},
        "rows": [],
    }


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


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class DecisionCursor:
    """A position in the log: (created_at, id). Encoded opaque and URL-safe."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> DecisionCursor | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            moment, _, identifier = raw.partition("|")
            created_at = datetime.fromisoformat(moment)
            if created_at.tzinfo is None:
                return None
            return cls(created_at=created_at, id=int(identifier))
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class DecisionFilters:
    goal: str | None = None
    path: str | None = None
    reason: str | None = None
    outcome: Literal["success", "failure", "none"] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class DecisionPage:
    rows: list[dict[str, Any]]
    newer: str | None
    older: str | None


_DECISION_COLUMNS = (
    "id",
    "request_id",
    "created_at",
    "goal__slug",
    "path__name",
    "path__model",
    "reason",
    "status",
    "cost",
    "baseline_cost",
    "latency_ms",
    "outcome__value",
    "outcome__source",
)


def _filtered_decisions(filters: DecisionFilters) -> QuerySet[RoutingDecision]:
    decisions = RoutingDecision.objects.all()
    if filters.goal:
        decisions = decisions.filter(goal__slug=filters.goal)
    if filters.path:
        decisions = decisions.filter(path__name=filters.path)
    if filters.reason:
        decisions = decisions.filter(reason=filters.reason)
    if filters.outcome == "success":
        decisions = decisions.filter(outcome__value__gte=0.5)
    elif filters.outcome == "failure":
        decisions = decisions.filter(outcome__value__lt=0.5)
    elif filters.outcome == "none":
        decisions = decisions.filter(outcome__isnull=True)
    if filters.since:
        decisions = decisions.filter(created_at__gte=filters.since)
    if filters.until:
        decisions = decisions.filter(created_at__lt=filters.until)
    return decisions


def decision_list(
    *,
    filters: DecisionFilters,
    older_than: DecisionCursor | None = None,
    newer_than: DecisionCursor | None = None,
    limit: int = 50,
) -> DecisionPage:
    """One page of the log, newest first, from a cursor in either direction.

    Keyset pagination on (created_at, id): each page is an index range scan of `limit + 1`
    rows whatever the table size; there is no total count on purpose.
    """
    decisions = _filtered_decisions(filters)
    if newer_than is not None:
        # Walk forwards from the cursor, then show the page newest first.
        decisions = decisions.filter(created_at__gte=newer_than.created_at).exclude(
            Q(created_at=newer_than.created_at) & Q(id__lte=newer_than.id)
        )
        found = list(decisions.order_by("created_at", "id").values(*_DECISION_COLUMNS)[: limit + 1])
        more = len(found) > limit
        rows = list(reversed(found[:limit]))
        has_newer, has_older = more, True
    else:
        if older_than is not None:
            decisions = decisions.filter(created_at__lte=older_than.created_at).exclude(
                Q(created_at=older_than.created_at) & Q(id__gte=older_than.id)
            )
        found = list(
            decisions.order_by("-created_at", "-id").values(*_DECISION_COLUMNS)[: limit + 1]
        )
        rows = found[:limit]
        has_newer, has_older = older_than is not None, len(found) > limit
    newer = (
        DecisionCursor(rows[0]["created_at"], rows[0]["id"]).encode()
        if rows and has_newer
        else None
    )
    older = (
        DecisionCursor(rows[-1]["created_at"], rows[-1]["id"]).encode()
        if rows and has_older
        else None
    )
    return DecisionPage(rows=rows, newer=newer, older=older)


@dataclass
class DecisionDetail:
    decision: RoutingDecision
    samples: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    features: list[tuple[str, Any]]
    outcome: dict[str, Any] | None


def decision_get_detail(*, request_id: str) -> DecisionDetail | None:
    """Everything a decision's page explains: the sample of every path in ranking order."""
    decision = (
        RoutingDecision.objects.select_related("goal", "path", "path__provider")
        .filter(request_id=request_id)
        .first()
    )
    if decision is None:
        return None
    ranking = [int(path_id) for path_id in decision.ranking or []]
    sample_ids = {int(path_id) for path_id in (decision.samples or {})}
    names = {
        path.id: path
        for path in Path.objects.filter(id__in=sample_ids | set(ranking)).only(
            "id", "name", "model"
        )
    }
    order = ranking + sorted(sample_ids - set(ranking))
    samples = []
    for rank, path_id in enumerate(order, start=1):
        path = names.get(path_id)
        sample = (decision.samples or {}).get(str(path_id))
        samples.append(
            {
                "rank": rank,
                "path_id": path_id,
                "path": path.name if path else f"#{path_id} (deleted)",
                "model": path.model if path else "",
                "sample": sample,
                "chosen": path_id == decision.path_id,
            }
        )
    outcome = None
    if hasattr(decision, "outcome"):
        current = decision.outcome
        outcome = {
            "value": current.value,
            "source": current.source,
            "source_label": current.get_source_display(),
            "note": current.note,
            "reported_at": current.reported_at,
        }
    return DecisionDetail(
        decision=decision,
        samples=samples,
        attempts=list(decision.attempts or []),
        features=sorted((decision.features or {}).items()),
        outcome=outcome,
    )


# --------------------------------------------------------------------------- catalog pages


@dataclass
class CatalogOverview:
    goals: list[dict[str, Any]]
    providers: list[Provider]
    prices: list[ModelPrice]


def catalog_overview() -> CatalogOverview:
    goals = list(
        Goal.objects.annotate(path_count=Count("paths"))
        .order_by("slug")
        .values("slug", "description", "status", "objective", "path_count")
    )
    return CatalogOverview(
        goals=goals,
        providers=list(Provider.objects.order_by("name")),
        prices=list(
            ModelPrice.objects.select_related("provider").order_by(
                "provider__name", "model", "-effective_from"
            )
        ),
    )


def api_key_list() -> list[ApiKey]:
    return list(ApiKey.objects.prefetch_related("allowed_goals").select_related("created_by"))
