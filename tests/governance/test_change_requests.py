"""Change requests on PostgreSQL: propose, validate, four eyes, apply, stale, tamper, rollback.

Every refusal asserts the state after it: nothing changed (the goal, its paths, its requests).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from routerapp.models import (
    AuditLog,
    ChangeRequest,
    ChangeRequestComment,
    Goal,
    GoalVersion,
    Path,
)
from routerapp.services.catalog import catalog_save
from routerapp.services.governance import (
    ChangeConflict,
    ChangeInvalid,
    ChangeNotAllowed,
    DirectEditRefused,
    change_request_approve,
    change_request_comment,
    change_request_propose,
    change_request_reject,
    change_request_withdraw,
    goal_snapshot,
    rollback_propose,
    snapshot_hash,
)
from tests.builders import make_goal, make_provider, make_user

pytestmark = pytest.mark.django_db


def state(goal: Goal) -> list[Any]:
    """Everything a refused change could have touched."""
    goal.refresh_from_db()
    return [
        goal_snapshot(goal),
        goal.version,
        list(ChangeRequest.objects.filter(goal=goal).values_list("id", "status")),
        GoalVersion.objects.filter(goal=goal).count(),
    ]


@pytest.fixture
def goal() -> Goal:
    return make_goal(slug="email_classification")


def propose(goal: Goal, actor: Any, changes: dict[str, Any], **kwargs: Any) -> ChangeRequest:
    return change_request_propose(
        goal=goal, changes=changes, reason="cheaper", actor=actor, **kwargs
    )


def test_a_proposal_holds_snapshot_hash_diff_and_base_version(goal: Goal, operator: Any) -> None:
    before = goal_snapshot(goal)
    change = propose(
        goal,
        operator,
        {"quality_target": 0.9, "paths": {"gpt-4o-mini": {"weight": 3}}},
    )

    assert change.status == ChangeRequest.Status.PENDING
    assert change.base_version == 1
    assert change.author == operator
    assert change.snapshot_hash == snapshot_hash(change.snapshot)
    assert change.snapshot["goal"]["quality_target"] == 0.9
    assert change.snapshot["paths"]["gpt-4o-mini"]["weight"] == 3.0
    assert change.diff == [
        {"field": "goal.quality_target", "from": 0.95, "to": 0.9},
        {"field": "paths.gpt-4o-mini.weight", "from": 1.0, "to": 3.0},
    ]
    assert isinstance(change.projection, dict)
    assert change.projection
    # Proposing changes nothing live.
    assert goal_snapshot(goal) == before
    assert AuditLog.objects.filter(action="change_request.propose", object_id=str(change.pk))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quality_tagret": 0.9}, "changes.quality_tagret"),
        ({"paths": {"gpt-4o-mini": {"wieght": 2}}}, "changes.paths.gpt-4o-mini.wieght"),
        ({"paths": {"no-such-path": {"weight": 2}}}, "changes.paths.no-such-path"),
        ({"description": "direct field"}, "changes.description"),
        ({"quality_target": 2.0}, "changes.quality_target"),
        ({"quality_target": "high"}, "changes.quality_target"),
        ({"quality_target": True}, "changes.quality_target"),
        ({"objective": "cheapest"}, "changes.objective"),
        ({"success_when": "response.choices[0] =="}, "changes.success_when"),
        ({"paths": {"gpt-4o-mini": {"weight": 0}, "gpt-4o": {"weight": 0}}}, "changes.paths"),
        ({"paths": {"gpt-4o-mini": {"weight": -1}}}, "changes.paths.gpt-4o-mini.weight"),
        ({"paths": {"gpt-4o-mini": {"alpha0": 2}}}, "changes.paths.gpt-4o-mini.alpha0"),
        ({"paths": {"gpt-4o-mini": {"enabled": "yes"}}}, "changes.paths.gpt-4o-mini.enabled"),
        (
            {"paths": {"gpt-4o-mini": {"enabled": False}, "gpt-4o": {"enabled": False}}},
            "changes.paths",
        ),
        ({"baseline_path": "missing"}, "changes.baseline_path"),
        ({"judge_provider": "missing"}, "changes.judge_provider"),
        ({"rules": "pin everything"}, "changes.rules"),
        ({"quality_target": 0.95}, "changes"),  # the live value: no change
        ([1, 2], "changes"),
    ],
)
def test_bad_changes_are_refused_naming_the_field_and_nothing_is_stored(
    goal: Goal, operator: Any, changes: Any, field: str
) -> None:
    before = state(goal)
    with pytest.raises(ChangeInvalid) as refused:
        propose(goal, operator, changes)
    assert field in refused.value.errors, refused.value.errors
    assert all(refused.value.errors[field])
    assert state(goal) == before


def test_a_misspelt_field_gets_a_suggestion(goal: Goal, operator: Any) -> None:
    with pytest.raises(ChangeInvalid) as refused:
        propose(goal, operator, {"exploration_flor": 0.1})
    assert "exploration_floor" in refused.value.errors["changes.exploration_flor"][0]


def test_rules_are_checked_with_the_goal_paths(goal: Goal, operator: Any) -> None:
    pytest.importorskip("routerapp.rules")
    before = state(goal)
    bad_rules = [
        [{"name": "r", "condition": "prompt_tokens >", "action": "pin", "paths": ["gpt-4o"]}],
        [
            {
                "name": "r",
                "condition": "True",
                "action": "exclude",
                "paths": ["gpt-4o-mini", "gpt-4o"],
            }
        ],
        [{"name": "r", "condition": "True", "action": "pin", "paths": ["nope"]}],
        [{"name": "r", "condition": "True", "action": "pin", "paths": ["gpt-4o"], "colour": 1}],
    ]
    for rules in bad_rules:
        with pytest.raises(ChangeInvalid) as refused:
            propose(goal, operator, {"rules": rules})
        assert "changes.rules" in refused.value.errors
    assert state(goal) == before

    rule = {
        "name": "long",
        "condition": "prompt_tokens > 2000",
        "action": "pin",
        "paths": ["gpt-4o"],
    }
    change = propose(goal, operator, {"rules": [rule]})
    assert change.diff[0]["field"] == "rules"
    assert change.diff[0]["change"] == "added"
    assert change.snapshot["rules"][0]["name"] == "long"


def test_a_judge_that_is_one_of_the_compared_models_is_refused(goal: Goal, operator: Any) -> None:
    make_provider(name="judges")
    before = state(goal)
    with pytest.raises(ChangeInvalid) as same_model:
        propose(goal, operator, {"judge_provider": "judges", "judge_model": "gpt-4o"})
    assert "compare" in same_model.value.errors["changes.judge_model"][0]
    with pytest.raises(ChangeInvalid) as no_judge:
        propose(goal, operator, {"shadow_rate": 0.1})
    assert "judge_provider" in no_judge.value.errors["changes.judge_model"][0]
    assert state(goal) == before

    change = propose(
        goal,
        operator,
        {"shadow_rate": 0.1, "judge_provider": "judges", "judge_model": "judge-large"},
    )
    assert change.snapshot["goal"]["judge_provider"] == "judges"


@pytest.mark.parametrize("who", ["viewer", "approver"])
def test_only_operators_and_admins_propose(goal: Goal, who: str, request: Any) -> None:
    before = state(goal)
    with pytest.raises(ChangeNotAllowed):
        propose(goal, request.getfixturevalue(who), {"quality_target": 0.9})
    with pytest.raises(ChangeNotAllowed):
        propose(goal, None, {"quality_target": 0.9})  # a key without an owner
    assert state(goal) == before


def test_approving_applies_the_snapshot_and_bumps_the_version(
    goal: Goal, operator: Any, approver: Any
) -> None:
    change = propose(goal, operator, {"quality_target": 0.9, "paths": {"gpt-4o": {"weight": 2}}})
    other = propose(goal, operator, {"exploration_floor": 0.05})

    applied = change_request_approve(change_request=change, actor=approver, comment="ok")

    goal.refresh_from_db()
    assert applied.status == ChangeRequest.Status.APPLIED
    assert applied.applied_version == goal.version == 2
    assert applied.decided_by == approver
    assert goal.quality_target == 0.9
    assert goal.paths.get(name="gpt-4o").weight == 2.0
    assert goal_snapshot(goal) == change.snapshot
    versions = {v.version: v for v in GoalVersion.objects.filter(goal=goal)}
    assert set(versions) == {1, 2}
    assert versions[2].change_request_id == change.pk
    assert versions[2].snapshot_hash == change.snapshot_hash
    assert versions[1].snapshot["goal"]["quality_target"] == 0.95
    # The other pending request was made against version 1.
    other.refresh_from_db()
    assert other.status == ChangeRequest.Status.STALE
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"change_request.propose", "change_request.approve", "goal.apply"} <= actions
    assert ChangeRequestComment.objects.get(change_request=change).body == "ok"


def test_applying_writes_only_the_changed_columns(goal: Goal, operator: Any, approver: Any) -> None:
    change = propose(goal, operator, {"quality_target": 0.9})
    with CaptureQueriesContext(connection) as queries:
        change_request_approve(change_request=change, actor=approver)
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "routerapp_goal"')]
    assert len(updates) == 1
    assert '"quality_target"' in updates[0]
    assert '"version"' in updates[0]
    assert "controller_state" not in updates[0]
    assert not [q for q in queries if q["sql"].startswith('UPDATE "routerapp_path"')]


@pytest.mark.parametrize("who", ["author", "viewer", "operator_two"])
def test_four_eyes_and_roles_refuse_an_approval(
    goal: Goal, admin_user: Any, viewer: Any, who: str
) -> None:
    change = propose(goal, admin_user, {"quality_target": 0.9})
    actors = {
        "author": admin_user,  # an admin may approve, but not their own request
        "viewer": viewer,
        "operator_two": make_user(username="olga", role="operator"),
    }
    before = state(goal)
    with pytest.raises(ChangeNotAllowed):
        change_request_approve(change_request=change, actor=actors[who])
    assert state(goal) == before


@pytest.mark.parametrize(
    "finish",
    ["applied", "rejected", "withdrawn"],
)
def test_a_decided_request_cannot_be_approved(
    goal: Goal, operator: Any, approver: Any, finish: str
) -> None:
    change = propose(goal, operator, {"quality_target": 0.9})
    if finish == "applied":
        change_request_approve(change_request=change, actor=approver)
    elif finish == "rejected":
        change_request_reject(change_request=change, actor=approver, comment="no")
    else:
        change_request_withdraw(change_request=change, actor=operator)
    before = state(goal)
    other_approver = make_user(username="alex", role="approver")
    with pytest.raises(ChangeConflict) as conflict:
        change_request_approve(change_request=change, actor=other_approver)
    assert finish in str(conflict.value)
    assert state(goal) == before


def test_a_stale_request_is_marked_stale_and_refused(
    goal: Goal, operator: Any, approver: Any
) -> None:
    change = propose(goal, operator, {"quality_target": 0.9})
    # The goal moved on under it (as another applied request would move it).
    Goal.objects.filter(pk=goal.pk).update(version=2)
    with pytest.raises(ChangeConflict) as conflict:
        change_request_approve(change_request=change, actor=approver)
    assert "stale" in str(conflict.value)
    change.refresh_from_db()
    goal.refresh_from_db()
    assert change.status == ChangeRequest.Status.STALE
    assert goal.quality_target == 0.95
    assert goal.version == 2


def test_a_tampered_snapshot_is_refused(goal: Goal, operator: Any, approver: Any) -> None:
    change = propose(goal, operator, {"quality_target": 0.9})
    tampered = {**change.snapshot, "goal": {**change.snapshot["goal"], "quality_target": 0.1}}
    ChangeRequest.objects.filter(pk=change.pk).update(snapshot=tampered)
    before = state(goal)
    with pytest.raises(ChangeConflict) as conflict:
        change_request_approve(change_request=change, actor=approver)
    assert "hash" in str(conflict.value)
    assert state(goal) == before


def test_withdraw_reject_and_comment_follow_their_rules(
    goal: Goal, operator: Any, approver: Any, viewer: Any
) -> None:
    change = propose(goal, operator, {"quality_target": 0.9})
    with pytest.raises(ChangeNotAllowed):
        change_request_withdraw(change_request=change, actor=approver)
    with pytest.raises(ChangeNotAllowed):
        change_request_reject(change_request=change, actor=operator)
    with pytest.raises(ChangeNotAllowed):
        change_request_comment(change_request=change, actor=viewer, body="looks fine")
    with pytest.raises(ChangeInvalid):
        change_request_comment(change_request=change, actor=approver, body="  ")
    change.refresh_from_db()
    assert change.status == ChangeRequest.Status.PENDING
    assert not ChangeRequestComment.objects.exists()

    change_request_comment(change_request=change, actor=approver, body="why 0.9?")
    rejected = change_request_reject(change_request=change, actor=approver, comment="too low")
    assert rejected.status == ChangeRequest.Status.REJECTED
    assert list(
        ChangeRequestComment.objects.filter(change_request=change).values_list("action", "body")
    ) == [("comment", "why 0.9?"), ("reject", "too low")]
    assert AuditLog.objects.filter(action="change_request.reject").exists()
    assert AuditLog.objects.filter(action="change_request.comment").exists()


def test_rollback_proposes_an_earlier_version_again(
    goal: Goal, operator: Any, approver: Any
) -> None:
    version_one = goal_snapshot(goal)
    change = propose(goal, operator, {"quality_target": 0.9, "paths": {"gpt-4o": {"weight": 4}}})
    change_request_approve(change_request=change, actor=approver)

    rollback = rollback_propose(goal=goal, version=1, actor=operator)
    assert rollback.kind == ChangeRequest.Kind.ROLLBACK
    assert rollback.rollback_of_version == 1
    assert rollback.base_version == 2
    assert rollback.snapshot == version_one
    change_request_approve(change_request=rollback, actor=approver)
    goal.refresh_from_db()
    assert goal.version == 3
    assert goal_snapshot(goal) == version_one
    assert GoalVersion.objects.get(goal=goal, version=3).snapshot_hash == snapshot_hash(version_one)

    with pytest.raises(ChangeInvalid) as no_change:  # version 3 is version 1 again
        rollback_propose(goal=goal, version=1, actor=operator)
    assert "changes" in no_change.value.errors
    with pytest.raises(ChangeInvalid):
        rollback_propose(goal=goal, version=9, actor=operator)


def test_paths_added_after_a_version_are_disabled_by_its_rollback(
    goal: Goal, operator: Any, approver: Any
) -> None:
    from routerapp.services.governance import goal_version_ensure

    goal_version_ensure(goal=goal)
    extra = catalog_save(
        instance=Path(goal=goal),
        data={"name": "extra", "provider": make_provider(), "model": "gpt-4o-mini"},
        actor=operator,
    )
    assert extra.enabled is False  # a new path on a live goal starts disabled
    change_request_approve(
        change_request=propose(goal, operator, {"paths": {"extra": {"enabled": True}}}),
        actor=approver,
    )
    assert Path.objects.get(pk=extra.pk).enabled

    rollback = rollback_propose(goal=goal, version=1, actor=operator)
    assert rollback.snapshot["paths"]["extra"]["enabled"] is False
    change_request_approve(change_request=rollback, actor=approver)
    assert not Path.objects.get(pk=extra.pk).enabled


def test_direct_saves_of_governed_fields_are_refused(goal: Goal, operator: Any) -> None:
    path = goal.paths.get(name="gpt-4o")
    before = state(goal)
    with pytest.raises(DirectEditRefused) as goal_edit:
        catalog_save(instance=goal, data={"quality_target": 0.5, "description": "x"})
    assert goal_edit.value.fields == ["quality_target"]
    assert "POST /api/v1/change-requests" in str(goal_edit.value.message)
    with pytest.raises(DirectEditRefused):
        catalog_save(instance=path, data={"weight": 2.0})
    with pytest.raises(DirectEditRefused) as call_edit:  # a live path's call settings
        catalog_save(instance=path, data={"model": "gpt-4.1"})
    assert call_edit.value.fields == ["model"]
    assert state(goal) == before

    # Unchanged values pass (a PUT of the whole object), and so do non-governed fields.
    catalog_save(instance=goal, data={"quality_target": 0.95, "description": "triage"})
    goal.refresh_from_db()
    assert goal.description == "triage"
    # A disabled path's call settings are edited directly.
    Path.objects.filter(pk=path.pk).update(enabled=False)
    path.refresh_from_db()
    catalog_save(instance=path, data={"model": "gpt-4.1"})
    assert Path.objects.get(pk=path.pk).model == "gpt-4.1"


def test_a_description_save_keeps_a_concurrently_updated_controller_state(goal: Goal) -> None:
    loaded = Goal.objects.get(pk=goal.pk)  # a form opened now
    # Meanwhile the controller's fold writes what it learned.
    Goal.objects.filter(pk=goal.pk).update(controller_state={"learned": 42}, controller_cursor=7)
    catalog_save(instance=loaded, data={"description": "edited in a form"})
    goal.refresh_from_db()
    assert goal.description == "edited in a form"
    assert goal.controller_state == {"learned": 42}
    assert goal.controller_cursor == 7


def test_an_approval_keeps_a_concurrently_updated_controller_state(
    goal: Goal, operator: Any, approver: Any
) -> None:
    change = propose(goal, operator, {"quality_target": 0.9})
    Goal.objects.filter(pk=goal.pk).update(controller_state={"learned": 1}, controller_cursor=3)
    change_request_approve(change_request=change, actor=approver)
    goal.refresh_from_db()
    assert goal.quality_target == 0.9
    assert goal.controller_state == {"learned": 1}
    assert goal.controller_cursor == 3


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_apply_once() -> None:
    goal = make_goal(slug="email_classification")
    operator = make_user(username="otto", role="operator")
    approvers = [make_user(username=f"approver{i}", role="approver") for i in range(2)]
    change = propose(goal, operator, {"paths": {"gpt-4o": {"weight": 5}}})
    barrier = threading.Barrier(2)
    results: list[str] = []

    def approve(user: Any) -> None:
        try:
            barrier.wait(timeout=10)
            change_request_approve(change_request=change, actor=user)
            results.append("applied")
        except ChangeConflict:
            results.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["applied", "conflict"]
    goal.refresh_from_db()
    assert goal.version == 2
    assert GoalVersion.objects.filter(goal=goal, version=2).count() == 1
    assert AuditLog.objects.filter(action="goal.apply").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_rule_change_is_seen_by_lookups_after_its_commit_within_a_second(settings: Any) -> None:
    """Lookups of the routing catalog that end before the approval starts show the old rules;
    every lookup that starts more than ROUTING_CACHE_SECONDS after the commit shows the new."""
    import time

    from routerapp.selectors.catalog_cache import cache_reset, catalog_get

    settings.ROUTING_CACHE_SECONDS = 1.0
    goal = make_goal(slug="email_classification")
    operator = make_user(username="otto", role="operator")
    approver = make_user(username="abby", role="approver")
    rule = {"name": "long", "condition": "prompt_tokens > 10", "action": "pin", "paths": ["gpt-4o"]}
    change = propose(goal, operator, {"rules": [rule]})
    seen: list[tuple[float, float, int, int]] = []  # (started, ended, version, rules)
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                route = catalog_get().goal(goal.slug)
                seen.append((started, time.monotonic(), route.version, len(route.rules)))
                time.sleep(0.005)
        finally:
            connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        time.sleep(0.5)
        approving = time.monotonic()
        change_request_approve(change_request=change, actor=approver)
        committed = time.monotonic()
        time.sleep(settings.ROUTING_CACHE_SECONDS + 0.5)
    finally:
        stop.set()
        watcher.join(timeout=10)
        cache_reset()

    before = [(version, rules) for _, ended, version, rules in seen if ended < approving]
    after = [
        (version, rules)
        for started, _, version, rules in seen
        if started > committed + settings.ROUTING_CACHE_SECONDS
    ]
    assert before
    assert set(before) == {(1, 0)}
    assert after
    assert set(after) == {(2, 1)}
