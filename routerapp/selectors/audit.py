"""Reads of the audit log: the filtered, paged list the audit page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet

from routerapp.models import AuditLog, ChangeRequest, Goal, GoalVersion


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None  # username
    action: str | None = None  # exact ("goal.update") or a prefix ending in "." ("change_request.")
    object_type: str | None = None  # "Goal", "Path", "ChangeRequest", ...
    goal: str | None = None  # slug: entries about the goal, its paths, requests and versions
    start: datetime | None = None
    end: datetime | None = None  # exclusive


def _about_goal(goal: Goal) -> Q:
    """The log has no goal column: an entry is about a goal when its object is the goal or
    one of the goal's paths, change requests or versions (object ids are stored as text)."""

    def ids(queryset: QuerySet) -> list[str]:
        return [str(pk) for pk in queryset.values_list("pk", flat=True)]

    return (
        Q(object_type="Goal", object_id=str(goal.pk))
        | Q(object_type="Path", object_id__in=ids(goal.paths.all()))
        | Q(object_type="ChangeRequest", object_id__in=ids(ChangeRequest.objects.filter(goal=goal)))
        | Q(object_type="GoalVersion", object_id__in=ids(GoalVersion.objects.filter(goal=goal)))
    )


def audit_log_list(*, filters: AuditFilters) -> QuerySet[AuditLog]:
    entries = AuditLog.objects.select_related("actor", "api_key").order_by("-created_at", "-id")
    if filters.actor:
        entries = entries.filter(actor__username=filters.actor)
    if filters.action:
        if filters.action.endswith("."):
            entries = entries.filter(action__startswith=filters.action)
        else:
            entries = entries.filter(action=filters.action)
    if filters.object_type:
        entries = entries.filter(object_type=filters.object_type)
    if filters.goal:
        goal = Goal.objects.filter(slug=filters.goal).first()
        if goal is None:
            return entries.none()
        entries = entries.filter(_about_goal(goal))
    if filters.start:
        entries = entries.filter(created_at__gte=filters.start)
    if filters.end:
        entries = entries.filter(created_at__lt=filters.end)
    return entries


def audit_log_page(*, filters: AuditFilters, page: int, per_page: int) -> Page:
    """One page of the filtered log (a page past the end gives the last page)."""
    return Paginator(audit_log_list(filters=filters), per_page).get_page(page)


def audit_choices() -> tuple[list[str], list[str], list[str]]:
    """(actions, object types, actor usernames) seen in the log, for the filter menus."""
    actions = list(AuditLog.objects.order_by("action").values_list("action", flat=True).distinct())
    types = list(
        AuditLog.objects.order_by("object_type").values_list("object_type", flat=True).distinct()
    )
    actors = list(
        AuditLog.objects.filter(actor__isnull=False)
        .order_by("actor__username")
        .values_list("actor__username", flat=True)
        .distinct()
    )
    return actions, types, actors
