"""Suggestions: change requests proposed from the evidence per bucket (issue 10).

For each active goal and each of its context buckets (complexity or task type, as the goal's
`bucket_by` makes them), from the goal's posterior counts (decayed by its half-life, as the
router sees them):

- the *strongest* path is the enabled path with the highest success rate among those with at
  least `MIN_OUTCOMES` outcomes in the bucket;
- a *cheaper* path (lower cost of a typical call at today's prices, also with at least
  `MIN_OUTCOMES` outcomes there) qualifies when its rate is within the goal's quality target of
  the strongest one's (rate >= quality_target x strongest rate) **and** the difference is not
  established: the two 95% Wilson intervals overlap, or even the cheaper path's lower bound is
  within the target. Under the `success` objective the intervals must overlap.
- the cheapest qualifying path gets a suggestion: a change request appending a `pin` rule
  (`suggest-<bucket>`, condition matching the bucket, e.g. `complexity < 3.5`) to the live
  rules, authored by the system user, with the figures in its reason and the projection
  (services/projection.py) of its effect. Only proposed when the projection saves money.

Never twice: the key `route:<bucket>-><path>` is unique among pending requests (a database
constraint), no second pending suggestion is made for a bucket that has one, none is made
when the live rules already pin the bucket to that path, and none for `COOLDOWN` after one with
the same key was rejected or withdrawn.

The system user (settings.SUGGESTIONS_USERNAME) is created on demand inactive, with no
password and no role: it cannot sign in, and `roles.user_can` refuses an inactive user every
action, so it can never approve (its own requests or any other).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from routerapp.features import MEDIUM_BELOW, SIMPLE_BELOW
from routerapp.models import GOAL_WIDE, ChangeRequest, Goal, Path
from routerapp.selectors.goals import path_list_enabled
from routerapp.selectors.posteriors import evidence_for_goal, typical_cost
from routerapp.services.governance import (
    ChangeConflict,
    ChangeInvalid,
    change_request_propose,
    goal_snapshot,
)
from routerapp.services.projection import project_change
from routerapp.stats import wilson_interval

logger = logging.getLogger(__name__)

# Outcomes each of the two paths needs in the bucket before anything is suggested.
MIN_OUTCOMES = 200
# After a suggestion was rejected or withdrawn, the same one is not made again for this long.
COOLDOWN = timedelta(days=7)
RULE_PREFIX = "suggest-"
_SAFE_TASK_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


@dataclass(frozen=True)
class PathEvidence:
    path: Path
    outcomes: float
    rate: float
    low: float
    high: float
    cost: float  # USD of a typical call

    @property
    def margin(self) -> float:
        """The larger half-width of the 95% interval (what the reason shows as ±)."""
        return max(self.rate - self.low, self.high - self.rate)


@dataclass(frozen=True)
class Suggestion:
    bucket: str
    cheap: PathEvidence
    strong: PathEvidence
    rule: dict[str, Any]

    @property
    def key(self) -> str:
        return f"route:{self.bucket}->{self.cheap.path.name}"


def bucket_condition(bucket: str, bucket_by: str) -> str | None:
    """A rule condition that matches exactly the calls `bucket_by` puts in `bucket` (None for
    a bucket no feature condition describes, e.g. one a bucket rule set)."""
    if bucket_by == Goal.BucketBy.COMPLEXITY:
        return {
            "complexity:simple": f"complexity < {SIMPLE_BELOW}",
            "complexity:medium": f"complexity >= {SIMPLE_BELOW} and complexity < {MEDIUM_BELOW}",
            "complexity:complex": f"complexity >= {MEDIUM_BELOW}",
        }.get(bucket)
    if bucket_by == Goal.BucketBy.TASK_TYPE and bucket.startswith("task_type:"):
        task_type = bucket.removeprefix("task_type:")
        if _SAFE_TASK_TYPE.match(task_type):
            return f"task_type == '{task_type}'"
    return None


def _rule_name(bucket: str) -> str:
    return RULE_PREFIX + re.sub(r"[^a-z0-9]+", "-", bucket.lower()).strip("-")


def _qualifies(cheap: PathEvidence, strong: PathEvidence, goal: Goal) -> bool:
    floor = goal.quality_target * strong.rate
    overlap = cheap.high >= strong.low and strong.high >= cheap.low
    if cheap.rate < floor:
        return False
    if goal.objective == Goal.Objective.SUCCESS:
        return overlap
    return overlap or cheap.low >= floor


def _cheapest_qualifying(
    rows: list[PathEvidence], goal: Goal
) -> tuple[PathEvidence, PathEvidence] | None:
    """The cheapest path that qualifies against the strongest of the dearer paths (the one it
    would replace), and that path; None when no path qualifies."""
    for cheap in sorted(rows, key=lambda row: (row.cost, -row.rate)):
        dearer = [row for row in rows if row.cost > cheap.cost]
        if not dearer:
            return None
        strong = max(dearer, key=lambda row: (row.rate, row.cost))
        if _qualifies(cheap, strong, goal):
            return cheap, strong
    return None


def suggestions_find(*, goal: Goal) -> list[Suggestion]:
    """The suggestions the goal's current evidence supports (nothing is written)."""
    paths = path_list_enabled(goal=goal)
    if len(paths) < 2:
        return []
    costs = {path.id: typical_cost(path) for path in paths}
    evidence = evidence_for_goal(goal=goal)
    live_rules = list(goal.rules or [])
    found = []
    for bucket in sorted({name for _, name in evidence} - {GOAL_WIDE}):
        condition = bucket_condition(bucket, goal.bucket_by)
        if condition is None:
            continue
        rows = []
        for path in paths:
            successes, failures = evidence.get((path.id, bucket), (0.0, 0.0))
            outcomes = successes + failures
            if outcomes < MIN_OUTCOMES:
                continue
            low, high = wilson_interval(successes, outcomes)
            rows.append(
                PathEvidence(path, outcomes, successes / outcomes, low, high, costs[path.id])
            )
        if len(rows) < 2:
            continue
        pair = _cheapest_qualifying(rows, goal)
        if pair is None:
            continue
        cheap, strong = pair
        rule = {
            "name": _rule_name(bucket),
            "condition": condition,
            "action": "pin",
            "paths": [cheap.path.name],
            "bucket": "",
        }
        if any(_same_pin(existing, rule) for existing in live_rules):
            continue  # the live rules already do it
        found.append(Suggestion(bucket=bucket, cheap=cheap, strong=strong, rule=rule))
    return found


def _same_pin(existing: object, rule: dict[str, Any]) -> bool:
    if not isinstance(existing, dict) or existing.get("action") != "pin":
        return False
    same_condition = " ".join(str(existing.get("condition", "")).split()) == rule["condition"]
    return list(existing.get("paths") or []) == rule["paths"] and (
        same_condition or existing.get("name") == rule["name"]
    )


def suggestions_user() -> User:
    """The author of suggestions: created on demand, inactive, no password, no role."""
    username = settings.SUGGESTIONS_USERNAME
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            user = User(username=username, is_active=False, first_name="routerapp suggestions")
            user.set_unusable_password()
            user.save()
    except IntegrityError:  # another worker created it first
        user = User.objects.get(username=username)
    return user


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _reason(suggestion: Suggestion, projection: dict[str, Any]) -> str:
    cheap, strong = suggestion.cheap, suggestion.strong
    calls = round(cheap.outcomes + strong.outcomes)
    reason = (
        f"`{suggestion.bucket}`: {cheap.path.name} {_percent(cheap.rate)} ± "
        f"{_percent(cheap.margin)} vs {strong.path.name} {_percent(strong.rate)} ± "
        f"{_percent(strong.margin)} on {calls:,} calls → route to {cheap.path.name}"
    )
    delta = projection.get("delta") or {}
    monthly = delta.get("spend_per_month")
    if monthly is not None:
        reason += f"; projected saving ${-monthly:,.2f} / month"
    else:
        reason += f"; projected saving ${-(delta.get('spend') or 0.0):,.2f} on the replayed calls"
    current, proposed = projection.get("current", {}), projection.get("proposed", {})
    before, after = current.get("success") or {}, proposed.get("success") or {}
    if before and after:
        reason += (
            f". Replayed on the last {projection['decisions']:,} calls: success "
            f"{_percent(before['rate'])} → {_percent(after['rate'])} "
            f"({after['method']} estimate), {projection['changed_path']:,} calls change path."
        )
    return reason


def _blocked(goal: Goal, suggestion: Suggestion) -> bool:
    """A pending suggestion for the bucket, or a recent refusal of this one."""
    pending = ChangeRequest.objects.filter(
        goal=goal,
        status=ChangeRequest.Status.PENDING,
        suggestion_key__startswith=f"route:{suggestion.bucket}->",
    )
    refused = ChangeRequest.objects.filter(
        Q(decided_at__gte=timezone.now() - COOLDOWN),
        goal=goal,
        suggestion_key=suggestion.key,
        status__in=[ChangeRequest.Status.REJECTED, ChangeRequest.Status.WITHDRAWN],
    )
    return pending.exists() or refused.exists()


def suggestions_propose_for_goal(*, goal: Goal, user: User | None = None) -> list[ChangeRequest]:
    """Propose what the goal's evidence supports; returns the change requests created."""
    user = user or suggestions_user()
    created = []
    for suggestion in suggestions_find(goal=goal):
        if _blocked(goal, suggestion):
            continue
        current = goal_snapshot(goal)
        rules = [rule for rule in current["rules"] if rule.get("name") != suggestion.rule["name"]]
        rules.append(suggestion.rule)
        proposed = {**current, "rules": rules}
        projection = project_change(goal, current=current, proposed=proposed)
        if (projection.get("delta") or {}).get("spend", 0.0) >= 0.0:
            continue  # the engine already routes this bucket as cheaply: nothing to gain
        try:
            created.append(
                change_request_propose(
                    goal=goal,
                    changes={"rules": rules},
                    reason=_reason(suggestion, projection),
                    actor=user,
                    kind=ChangeRequest.Kind.SUGGESTION,
                    suggestion_key=suggestion.key,
                )
            )
        except ChangeConflict:
            continue  # proposed by a concurrent run a moment ago
        except ChangeInvalid as error:  # e.g. the suggested rule no longer fits the goal
            logger.warning("suggestion %s for goal %s refused: %s", suggestion.key, goal, error)
    return created


def suggestions_propose() -> int:
    """Every active goal's suggestions (the periodic task); the number created."""
    user = suggestions_user()
    count = 0
    for goal in Goal.objects.filter(status=Goal.Status.ACTIVE).order_by("id"):
        count += len(suggestions_propose_for_goal(goal=goal, user=user))
    return count
