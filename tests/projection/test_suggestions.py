"""Suggestions from the evidence per bucket, on PostgreSQL with real rows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from routerapp.models import ChangeRequest, Goal, GoalVersion
from routerapp.roles import user_can
from routerapp.services.governance import (
    ChangeNotAllowed,
    change_request_approve,
    change_request_reject,
)
from routerapp.services.suggestions import (
    bucket_condition,
    suggestions_propose,
    suggestions_propose_for_goal,
    suggestions_user,
)
from tests.builders import make_goal
from tests.projection.traffic import generate

SIMPLE_RULE = {
    "name": "suggest-complexity-simple",
    "condition": "complexity < 3.5",
    "action": "pin",
    "paths": ["gpt-4o-mini"],
    "bucket": "",
}


def _goal(**fields: Any) -> Goal:
    goal = make_goal(slug="triage", bucket_by=Goal.BucketBy.COMPLEXITY, **fields)
    # Simple calls: gpt-4o-mini 96% vs gpt-4o 97%; complex: 70% vs 92%. About 550 outcomes
    # per path on simple calls, 360 on complex ones.
    generate(goal, count=1800, seed=11, simple_share=0.6)
    return goal


def test_bucket_conditions_match_the_buckets_features_make() -> None:
    assert bucket_condition("complexity:simple", "complexity") == "complexity < 3.5"
    assert (
        bucket_condition("complexity:medium", "complexity")
        == "complexity >= 3.5 and complexity < 6.5"
    )
    assert bucket_condition("task_type:extraction", "task_type") == "task_type == 'extraction'"
    assert bucket_condition("task_type:it's", "task_type") is None  # not quotable: skipped
    assert bucket_condition("vip", "complexity") is None  # a bucket rule's bucket


@pytest.mark.django_db
def test_a_cheaper_path_as_good_in_a_bucket_is_suggested_with_checkable_figures() -> None:
    goal = _goal()

    created = suggestions_propose_for_goal(goal=goal)

    assert len(created) == 1  # complexity:simple only: on complex calls mini is far worse
    suggestion = created[0]
    suggestion.refresh_from_db()
    assert suggestion.kind == ChangeRequest.Kind.SUGGESTION
    assert suggestion.status == ChangeRequest.Status.PENDING
    assert suggestion.suggestion_key == "route:complexity:simple->gpt-4o-mini"
    assert suggestion.snapshot["rules"] == [SIMPLE_RULE]
    assert suggestion.author.username == "routerapp-suggestions"
    reason = suggestion.reason
    assert re.match(
        r"`complexity:simple`: gpt-4o-mini \d+\.\d% ± \d\.\d% vs gpt-4o \d+\.\d% ± \d\.\d% "
        r"on [\d,]+ calls → route to gpt-4o-mini; projected saving \$[\d,]+\.\d\d / month",
        reason,
    ), reason
    saving = float(re.search(r"saving \$([\d,.]+) /", reason).group(1).replace(",", ""))
    projection = suggestion.projection
    assert saving == pytest.approx(-projection["delta"]["spend_per_month"], abs=0.01)
    assert saving > 0
    assert projection["proposed"]["pinned_calls"] > 0
    # Nothing live changed: it waits for approval.
    goal.refresh_from_db()
    assert goal.rules == []
    assert goal.version == 1


@pytest.mark.django_db
def test_running_twice_leaves_one_open_suggestion() -> None:
    goal = _goal()

    first = suggestions_propose()
    second = suggestions_propose()

    assert (first, second) == (1, 0)
    assert ChangeRequest.objects.filter(goal=goal, status="pending").count() == 1


@pytest.mark.django_db
def test_nothing_is_suggested_when_the_live_rules_already_do_it(approver: Any) -> None:
    goal = _goal()
    suggestion = suggestions_propose_for_goal(goal=goal)[0]
    change_request_approve(change_request=suggestion, actor=approver)
    goal.refresh_from_db()
    assert goal.rules == [SIMPLE_RULE]

    assert suggestions_propose_for_goal(goal=goal) == []
    assert ChangeRequest.objects.filter(goal=goal).count() == 1


@pytest.mark.django_db
def test_a_rejected_suggestion_is_not_made_again_during_the_cooldown(approver: Any) -> None:
    goal = _goal()
    suggestion = suggestions_propose_for_goal(goal=goal)[0]
    change_request_reject(change_request=suggestion, actor=approver, comment="not yet")

    assert suggestions_propose_for_goal(goal=goal) == []


@pytest.mark.django_db
def test_too_few_outcomes_or_a_worse_cheap_path_suggest_nothing() -> None:
    few = make_goal(slug="few", bucket_by=Goal.BucketBy.COMPLEXITY)
    generate(few, count=500, seed=12)  # ~150 outcomes per path on simple calls: under 200
    worse = make_goal(slug="worse", bucket_by=Goal.BucketBy.COMPLEXITY)
    rates = {
        "gpt-4o-mini": {"complexity:simple": 0.80, "complexity:complex": 0.6},
        "gpt-4o": {"complexity:simple": 0.97, "complexity:complex": 0.9},
    }
    generate(worse, count=2000, seed=13, rates=rates)

    assert suggestions_propose_for_goal(goal=few) == []
    assert suggestions_propose_for_goal(goal=worse) == []


@pytest.mark.django_db
def test_the_system_user_cannot_sign_in_or_approve() -> None:
    goal = _goal()
    suggestion = suggestions_propose_for_goal(goal=goal)[0]
    system = suggestions_user()

    assert system == User.objects.get(username="routerapp-suggestions")
    assert not system.is_active
    assert not system.has_usable_password()
    assert not system.is_superuser
    assert not system.groups.exists()
    assert not user_can(system, "approve")
    with pytest.raises(ChangeNotAllowed):
        change_request_approve(change_request=suggestion, actor=system)
    suggestion.refresh_from_db()
    assert suggestion.status == ChangeRequest.Status.PENDING
    assert not GoalVersion.objects.filter(goal=goal, version=2).exists()
