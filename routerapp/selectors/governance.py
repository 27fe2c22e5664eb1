"""Reads of change requests and goal versions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from routerapp.models import ApiKey, ChangeRequest, Goal, GoalVersion
from routerapp.roles import user_can
from routerapp.selectors.goals import goal_list_visible


def change_requests_visible(user: Any, *, api_key: ApiKey | None = None) -> QuerySet[ChangeRequest]:
    """The change requests a caller may read: every goal's for a user who may view, only its
    goals' for a goal-restricted API key (selectors.goals.goal_ids_visible), none otherwise."""
    requests = ChangeRequest.objects.select_related("goal", "author", "decided_by")
    if api_key is None and not user_can(user, "view"):
        return requests.none()
    return requests.filter(goal__in=goal_list_visible(api_key=api_key))


def pending_count(user: Any) -> int:
    """Pending requests awaiting someone other than `user` (the navigation's count): an
    approver is not asked to act on their own proposals."""
    pending = change_requests_visible(user).filter(status=ChangeRequest.Status.PENDING)
    if getattr(user, "pk", None) is not None:
        pending = pending.exclude(author_id=user.pk)
    return pending.count()


def goal_versions(goal: Goal) -> QuerySet[GoalVersion]:
    """The goal's history, newest first. Its current version is recorded from the live goal
    when it has no row yet (a goal never changed since it was created): the one write of this
    module, so that the history always starts somewhere and rollback has a target."""
    from routerapp.services.governance import goal_version_ensure

    goal_version_ensure(goal=goal)
    return (
        GoalVersion.objects.filter(goal=goal)
        .select_related("created_by", "change_request")
        .order_by("-version")
    )
