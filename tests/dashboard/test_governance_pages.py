"""The governance pages: propose-change forms, the queue, a change request's page (diff,
projection, comments, decisions), goal history and rollback, the rule editor and its test box,
the audit log. Every refusal shows a message and changes nothing (asserted on the rows)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from routerapp.models import AuditLog, ChangeRequest, Goal, GoalVersion
from routerapp.services import governance
from tests.builders import make_goal, make_user
from tests.dashboard.conftest import csrf_post
from tests.dashboard.form_data import goal_data, path_data

pytestmark = pytest.mark.django_db


def _propose(goal: Goal, author: Any, **changes: Any) -> ChangeRequest:
    return governance.change_request_propose(
        goal=goal, changes=changes, reason="test change", actor=author
    )


def _state(goal: Goal) -> tuple[Any, ...]:
    goal.refresh_from_db()
    weights = tuple(goal.paths.order_by("id").values_list("weight", "enabled"))
    return goal.version, goal.quality_target, goal.rules, weights


# --------------------------------------------------------------------------- propose forms


def test_the_goal_form_proposes_a_routing_change_and_leaves_the_goal_alone(
    operator, client_for
) -> None:
    goal = make_goal()
    before = _state(goal)
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:goal-edit", args=[goal.slug]),
        goal_data(goal, quality_target="0.9", reason="cheaper at a small quality cost"),
    )
    change_request = ChangeRequest.objects.get(goal=goal)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "dashboard:change-request-detail", args=[change_request.pk]
    )
    assert change_request.status == "pending"
    assert change_request.author == operator
    assert change_request.reason == "cheaper at a small quality cost"
    assert {"field": "goal.quality_target", "from": 0.95, "to": 0.9} in change_request.diff
    assert _state(goal) == before  # nothing applied before an approval


def test_a_routing_change_without_a_reason_is_refused_and_nothing_changes(
    operator, client_for
) -> None:
    goal = make_goal()
    before = _state(goal)
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:goal-edit", args=[goal.slug]),
        goal_data(goal, quality_target="0.9", description="also this"),
    )
    assert response.status_code == 200
    assert "Give a reason" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    assert _state(goal) == before
    assert goal.description == ""  # all or nothing: the direct part is not saved either


def test_descriptive_fields_save_directly_without_a_change_request(operator, client_for) -> None:
    goal = make_goal()
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:goal-edit", args=[goal.slug]),
        goal_data(goal, description="new text"),
    )
    assert response.status_code == 302
    goal.refresh_from_db()
    assert goal.description == "new text"
    assert goal.version == 1
    assert not ChangeRequest.objects.exists()
    assert AuditLog.objects.filter(action="goal.update").exists()


def test_an_out_of_range_value_is_a_form_error_and_nothing_changes(operator, client_for) -> None:
    goal = make_goal()
    before = _state(goal)
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:goal-edit", args=[goal.slug]),
        goal_data(goal, quality_target="2", reason="oops"),
    )
    assert response.status_code == 200
    assert "has-error" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    assert _state(goal) == before


def test_the_path_form_proposes_weight_and_enabled(operator, client_for) -> None:
    goal = make_goal()
    path = goal.paths.order_by("id").first()
    before = _state(goal)
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:path-edit", args=[path.pk]),
        path_data(path, weight="3", reason="prefer the small model at first"),
    )
    assert response.status_code == 302
    change_request = ChangeRequest.objects.get(goal=goal)
    assert {"field": f"paths.{path.name}.weight", "from": 1.0, "to": 3.0} in change_request.diff
    assert _state(goal) == before


def test_disabling_every_path_is_refused_with_a_message(operator, client_for) -> None:
    goal = make_goal(models=("gpt-4o",))
    path = goal.paths.get()
    before = _state(goal)
    data = path_data(path, reason="switch it off")
    del data["enabled"]  # an unticked box
    response = csrf_post(client_for(operator), reverse("dashboard:path-edit", args=[path.pk]), data)
    assert response.status_code == 200
    assert "At least one path must stay enabled" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    assert _state(goal) == before


def test_an_enabled_paths_model_cannot_change_directly(operator, client_for) -> None:
    goal = make_goal()
    path = goal.paths.order_by("id").first()
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:path-edit", args=[path.pk]),
        path_data(path, model="gpt-5"),
    )
    assert response.status_code == 200
    assert "change through a change request only" in response.content.decode()
    path.refresh_from_db()
    assert path.model == "gpt-4o-mini"


# --------------------------------------------------------------------------- decisions


def test_the_change_request_page_shows_diff_projection_and_actions(
    operator, approver, client_for
) -> None:
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    url = reverse("dashboard:change-request-detail", args=[change_request.pk])
    body = client_for(approver).get(url).content.decode()
    assert "goal.quality_target" in body
    assert "0.95" in body
    assert "0.9" in body
    assert 'data-testid="projection"' in body
    assert 'data-testid="approve"' in body
    assert 'data-testid="reject"' in body
    assert 'data-testid="withdraw"' not in body
    own = client_for(operator).get(url).content.decode()
    assert 'data-testid="withdraw"' in own
    assert 'data-testid="approve"' not in own


def test_an_approver_approves_and_the_goal_moves_to_the_next_version(
    operator, approver, client_for
) -> None:
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    client = client_for(approver)
    response = csrf_post(
        client,
        reverse("dashboard:change-request-decide", args=[change_request.pk, "approve"]),
        {"comment": "fine by me"},
    )
    assert response.status_code == 302
    goal.refresh_from_db()
    assert (goal.version, goal.quality_target) == (2, 0.9)
    change_request.refresh_from_db()
    assert change_request.status == "applied"
    assert change_request.decided_by == approver
    page = client.get(response["Location"]).content.decode()
    assert "now at version 2" in page
    assert "fine by me" in page


def test_approving_your_own_request_is_refused_and_changes_nothing(client_for) -> None:
    admin = make_user(username="root", role="admin")  # may propose and approve, not both
    goal = make_goal()
    change_request = _propose(goal, admin, quality_target=0.9)
    before = _state(goal)
    response = csrf_post(
        client_for(admin),
        reverse("dashboard:change-request-decide", args=[change_request.pk, "approve"]),
    )
    assert response.status_code == 403
    assert 'data-testid="refusal"' in response.content.decode()
    change_request.refresh_from_db()
    assert change_request.status == "pending"
    assert _state(goal) == before


def test_a_viewer_posting_an_approval_gets_403_and_nothing_changes(
    operator, viewer, client_for
) -> None:
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    before = _state(goal)
    for action in ("approve", "reject", "withdraw"):
        response = csrf_post(
            client_for(viewer),
            reverse("dashboard:change-request-decide", args=[change_request.pk, action]),
        )
        assert response.status_code == 403
    change_request.refresh_from_db()
    assert change_request.status == "pending"
    assert _state(goal) == before


def test_approving_a_stale_request_is_refused_with_409(operator, approver, client_for) -> None:
    goal = make_goal()
    older = _propose(goal, operator, quality_target=0.9)
    newer = _propose(goal, operator, exploration_floor=0.05)
    client = client_for(approver)
    url = reverse("dashboard:change-request-decide", args=[newer.pk, "approve"])
    assert csrf_post(client, url).status_code == 302
    before = _state(goal)
    response = csrf_post(
        client, reverse("dashboard:change-request-decide", args=[older.pk, "approve"])
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert 'data-testid="refusal"' in body
    assert "stale" in body.lower()
    older.refresh_from_db()
    assert older.status == "stale"
    assert _state(goal) == before


def test_approving_an_applied_request_again_is_refused(operator, approver, client_for) -> None:
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    client = client_for(approver)
    url = reverse("dashboard:change-request-decide", args=[change_request.pk, "approve"])
    assert csrf_post(client, url).status_code == 302
    before = _state(goal)
    again = csrf_post(client, url)
    assert again.status_code == 409
    assert "applied" in again.content.decode()
    assert _state(goal) == before


def test_the_author_withdraws_and_others_may_not(operator, client_for) -> None:
    other = make_user(username="olga", role="operator")
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    url = reverse("dashboard:change-request-decide", args=[change_request.pk, "withdraw"])
    refused = csrf_post(client_for(other), url)
    assert refused.status_code == 403
    assert "Only the author" in refused.content.decode()
    change_request.refresh_from_db()
    assert change_request.status == "pending"
    assert csrf_post(client_for(operator), url).status_code == 302
    change_request.refresh_from_db()
    assert change_request.status == "withdrawn"
    assert _state(goal)[:2] == (1, 0.95)


def test_comments_are_added_and_a_viewer_may_not_comment(
    operator, approver, viewer, client_for
) -> None:
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    url = reverse("dashboard:change-request-comment", args=[change_request.pk])
    assert csrf_post(client_for(viewer), url, {"body": "hi"}).status_code == 403
    empty = csrf_post(client_for(approver), url, {"body": ""})
    assert empty.status_code == 400
    assert change_request.comments.count() == 0
    response = csrf_post(client_for(approver), url, {"body": "Why <b>0.9</b>?"})
    assert response.status_code == 302
    page = client_for(operator).get(
        reverse("dashboard:change-request-detail", args=[change_request.pk])
    )
    assert "Why &lt;b&gt;0.9&lt;/b&gt;?" in page.content.decode()  # escaped


# --------------------------------------------------------------------------- queue and nav


def test_the_queue_filters_and_the_navigation_counts_pending_requests(
    operator, approver, client_for
) -> None:
    goal = make_goal()
    other = make_goal(slug="other_goal")
    pending = _propose(goal, operator, quality_target=0.9)
    withdrawn = _propose(other, operator, quality_target=0.8)
    governance.change_request_withdraw(change_request=withdrawn, actor=operator)
    client = client_for(approver)
    page = client.get(reverse("dashboard:change-requests"), {"status": "pending"})
    body = page.content.decode()
    assert f"#{pending.pk}" in body
    assert f"#{withdrawn.pk}<" not in body
    assert 'data-testid="pending-count" title="1 pending' in body
    by_goal = client.get(reverse("dashboard:change-requests"), {"goal": "other_goal"})
    assert f"#{withdrawn.pk}" in by_goal.content.decode()
    assert f">#{pending.pk}<" not in by_goal.content.decode()
    # The author is not asked to act on their own request.
    own = client_for(operator).get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="pending-count"' not in own


# --------------------------------------------------------------------------- history


def test_history_lists_versions_and_proposes_a_rollback(operator, approver, client_for) -> None:
    goal = make_goal()
    change_request = _propose(goal, operator, quality_target=0.9)
    governance.change_request_approve(change_request=change_request, actor=approver)
    client = client_for(operator)
    page = client.get(reverse("dashboard:goal-history", args=[goal.slug])).content.decode()
    assert 'data-version="2"' in page
    assert 'data-version="1"' in page
    assert 'data-testid="rollback-1"' in page
    assert 'data-testid="rollback-2"' not in page
    response = csrf_post(
        client, reverse("dashboard:goal-rollback", args=[goal.slug]), {"version": 1}
    )
    rollback = ChangeRequest.objects.get(kind="rollback")
    assert response.status_code == 302
    assert rollback.rollback_of_version == 1
    assert {"field": "goal.quality_target", "from": 0.9, "to": 0.95} in rollback.diff
    goal.refresh_from_db()
    assert (goal.version, goal.quality_target) == (2, 0.9)
    missing = csrf_post(
        client, reverse("dashboard:goal-rollback", args=[goal.slug]), {"version": 9}
    )
    assert missing.status_code == 302
    assert ChangeRequest.objects.filter(kind="rollback").count() == 1
    assert "no recorded version 9" in client.get(missing["Location"]).content.decode()


def test_a_viewer_sees_history_but_gets_no_rollback_button(viewer, client_for) -> None:
    goal = make_goal()
    page = client_for(viewer).get(reverse("dashboard:goal-history", args=[goal.slug]))
    assert page.status_code == 200
    assert "Propose rollback" not in page.content.decode()
    refused = csrf_post(
        client_for(viewer), reverse("dashboard:goal-rollback", args=[goal.slug]), {"version": 1}
    )
    assert refused.status_code == 403
    assert not ChangeRequest.objects.exists()


# --------------------------------------------------------------------------- rule editor


RULES = [
    {
        "name": "short-to-mini",
        "condition": "prompt_tokens < 50",
        "action": "pin",
        "paths": ["gpt-4o-mini"],
        "bucket": "",
    }
]


def test_the_rule_editor_proposes_a_rule_set(operator, client_for) -> None:
    import json

    goal = make_goal()
    client = client_for(operator)
    page = client.get(reverse("dashboard:rule-editor", args=[goal.slug])).content.decode()
    assert 'id="rules-template"' in page
    assert "long-or-reasoning-to-strong" in page
    response = csrf_post(
        client,
        reverse("dashboard:rule-editor", args=[goal.slug]),
        {"rules": json.dumps(RULES), "reason": "short prompts are easy"},
    )
    assert response.status_code == 302
    change_request = ChangeRequest.objects.get(goal=goal)
    assert change_request.snapshot["rules"] == RULES
    goal.refresh_from_db()
    assert goal.rules == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{**RULES[0], "condition": "prompt_tokens <"}], "line 1"),
        (
            [{**RULES[0], "action": "exclude", "paths": ["gpt-4o-mini", "gpt-4o"]}],
            "excludes every enabled path",
        ),
        ([{**RULES[0], "paths": ["nope"]}], "unknown path"),
    ],
)
def test_a_bad_rule_set_is_refused_with_a_readable_message(
    operator, client_for, rules, message
) -> None:
    import json

    goal = make_goal()
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:rule-editor", args=[goal.slug]),
        {"rules": json.dumps(rules), "reason": "try"},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ChangeRequest.objects.exists()
    goal.refresh_from_db()
    assert goal.rules == []


def test_the_rule_test_box_runs_the_draft_rules_on_a_sample(operator, client_for) -> None:
    import json

    goal = make_goal()
    url = reverse("dashboard:rule-test", args=[goal.slug])
    client = client_for(operator)
    sample = json.dumps([{"role": "user", "content": "hi"}])
    hit = csrf_post(client, url, {"rules": json.dumps(RULES), "messages": sample})
    body = hit.content.decode()
    assert "Pinned to <code>gpt-4o-mini</code>" in body
    assert "short-to-mini" in body
    long_prompt = json.dumps([{"role": "user", "content": "word " * 400}])
    miss = csrf_post(client, url, {"rules": json.dumps(RULES), "messages": long_prompt})
    assert "No rule matched" in miss.content.decode()
    bad = csrf_post(
        client,
        url,
        {"rules": json.dumps([{**RULES[0], "condition": "1 +"}]), "messages": sample},
    )
    assert "The rule set is refused" in bad.content.decode()
    not_json = csrf_post(client, url, {"rules": "[", "messages": sample})
    assert "Not valid JSON" in not_json.content.decode()
    assert not ChangeRequest.objects.exists()


# --------------------------------------------------------------------------- audit log


def test_the_audit_log_filters_by_actor_action_goal_and_date(
    operator, approver, viewer, client_for
) -> None:
    goal = make_goal()
    other = make_goal(slug="other_goal")
    change_request = _propose(goal, operator, quality_target=0.9)
    governance.change_request_approve(change_request=change_request, actor=approver)
    _propose(other, operator, quality_target=0.8)
    old = AuditLog.objects.create(
        action="goal.update", object_type="Goal", object_id=str(goal.pk), changes={}
    )
    AuditLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    client = client_for(viewer)
    url = reverse("dashboard:audit-log")

    def rows(**query: Any) -> list[str]:
        body = client.get(url, query).content.decode()
        table = body.split('data-testid="audit-log"', 1)[-1] if 'audit-log"' in body else ""
        return [line for line in table.split("<tr>")[2:]]

    everything = rows()
    assert len(everything) == AuditLog.objects.count()
    by_approver = rows(actor="abby")
    assert by_approver
    assert all("abby" in row for row in by_approver)
    proposals = rows(action="change_request.propose")
    assert len(proposals) == 2
    about_other = rows(goal="other_goal")
    assert len(about_other) == 1
    recent = rows(**{"from": (timezone.now() - timedelta(days=1)).date().isoformat()})
    assert len(recent) == AuditLog.objects.count() - 1
    assert "IP</th>" not in client.get(url).content.decode()  # addresses are for admins


def test_the_audit_log_pages(viewer, client_for) -> None:
    AuditLog.objects.bulk_create(
        AuditLog(action="goal.update", object_type="Goal", object_id=str(n)) for n in range(60)
    )
    client = client_for(viewer)
    first = client.get(reverse("dashboard:audit-log")).content.decode()
    assert "Page 1 of 2" in first
    assert "page=2" in first
    second = client.get(reverse("dashboard:audit-log"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in second
    beyond = client.get(reverse("dashboard:audit-log"), {"page": "x"})
    assert beyond.status_code == 200


@pytest.mark.parametrize("name", ["change-requests", "audit-log"])
def test_governance_pages_need_a_sign_in(client_for, name) -> None:
    response = client_for(None).get(reverse(f"dashboard:{name}"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_goal_version_rows_are_created_lazily_by_the_history_page(viewer, client_for) -> None:
    goal = make_goal()
    assert not GoalVersion.objects.exists()
    client_for(viewer).get(reverse("dashboard:goal-history", args=[goal.slug]))
    assert GoalVersion.objects.filter(goal=goal, version=1).exists()
