"""Decision reads: the keyset-paged decision log and one decision's explanation.

The log pages with a cursor over the `created_at` index (no COUNT(*), no OFFSET), so it stays
fast at millions of decisions.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db.models import Q, QuerySet

from routerapp.models import ApiKey, Path, RoutingDecision
from routerapp.selectors.goals import goal_list_visible


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


def decision_get_visible(*, request_id: str, api_key: ApiKey | None) -> RoutingDecision | None:
    """A decision by request id, if its goal is visible to the caller: a call of another goal
    reads as unknown (no 403 that would confirm it exists, nor name its goal)."""
    return (
        RoutingDecision.objects.filter(
            request_id=request_id, goal__in=goal_list_visible(api_key=api_key)
        )
        .select_related("goal")
        .first()
    )


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
