from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from routerapp.models import AuditLog, ChangeRequest, Goal, ModelPrice, Path, Provider
from tests.builders import make_goal, make_provider
from tests.dashboard.conftest import csrf_post
from tests.dashboard.form_data import goal_data

pytestmark = pytest.mark.django_db

GOAL_FORM = {
    "slug": "triage",
    "description": "Route tickets",
    "objective": "cost_at_quality",
    "quality_target": "0.95",
    "exploration_floor": "0.01",
    "prior_strength": "10",
    "bucket_by": "none",
    "shadow_rate": "0",
    "status": "active",
    "success_when": "response.choices[0].finish_reason == 'stop'",
}


def test_operator_creates_a_goal_through_catalog_save(operator, client_for) -> None:
    response = csrf_post(client_for(operator), reverse("dashboard:goal-create"), GOAL_FORM)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:goal-edit", args=["triage"])
    goal = Goal.objects.get(slug="triage")
    assert goal.success_when == GOAL_FORM["success_when"]
    assert AuditLog.objects.filter(action="goal.create", object_id=str(goal.pk)).exists()


def test_an_invalid_success_when_is_refused_with_its_position(operator, client_for) -> None:
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:goal-create"),
        {**GOAL_FORM, "success_when": "response.choices[0] =="},
    )
    assert response.status_code == 200
    assert "line 1" in response.content.decode()
    assert not Goal.objects.filter(slug="triage").exists()


def test_expression_check_endpoint_reports_line_and_column(operator, client_for) -> None:
    client = client_for(operator)
    url = reverse("dashboard:expression-check")
    bad = csrf_post(
        client,
        url,
        {"success_when": "(response.x and\n  __import__('os'))"},
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 200
    assert bad.context["error"].line == 2
    assert "line 2, column" in bad.content.decode()
    good = csrf_post(client, url, {"success_when": "len(response.choices) > 0"})
    assert 'data-testid="expression-ok"' in good.content.decode()
    empty = csrf_post(client, url, {"success_when": "  "})
    assert "No condition" in empty.content.decode()


def test_goal_form_wires_the_live_check(operator, client_for) -> None:
    body = client_for(operator).get(reverse("dashboard:goal-create")).content.decode()
    assert f'hx-post="{reverse("dashboard:expression-check")}"' in body
    assert 'hx-target="#success-when-check"' in body


def test_editing_a_goal_audits_the_change(operator, client_for) -> None:
    goal = make_goal()
    data = goal_data(goal, description="new text")  # a descriptive field: saved directly
    response = csrf_post(
        client_for(operator), reverse("dashboard:goal-edit", args=[goal.slug]), data
    )
    assert response.status_code == 302
    goal.refresh_from_db()
    assert goal.description == "new text"
    log = AuditLog.objects.get(action="goal.update")
    assert log.changes["description"] == {"from": "", "to": "new text"}


def test_operator_adds_and_edits_a_path(operator, client_for) -> None:
    goal = make_goal(models=("gpt-4o",))
    provider = make_provider()
    client = client_for(operator)
    data = {
        "name": "mini",
        "provider": provider.pk,
        "model": "gpt-4o-mini",
        "weight": "2",
        "extra_params": '{"top_p": 0.9}',
        "expected_output_tokens": "200",
        "enabled": "on",
    }
    response = csrf_post(client, reverse("dashboard:path-create", args=[goal.slug]), data)
    assert response.status_code == 302
    path = Path.objects.get(goal=goal, name="mini")
    assert path.extra_params == {"top_p": 0.9}
    assert not path.enabled  # the goal routes already: enabling it is a change request
    duplicate = csrf_post(client, reverse("dashboard:path-create", args=[goal.slug]), data)
    assert duplicate.status_code == 200
    assert Path.objects.filter(goal=goal, name="mini").count() == 1
    half_prior = csrf_post(
        client, reverse("dashboard:path-edit", args=[path.pk]), {**data, "alpha0": "3"}
    )
    assert "Set both alpha0 and beta0" in half_prior.content.decode()
    edited = csrf_post(
        client,
        reverse("dashboard:path-edit", args=[path.pk]),
        {**data, "alpha0": "3", "beta0": "1", "weight": "5", "reason": "a known-good model"},
    )
    assert edited.status_code == 302  # proposed, not applied: a second person approves
    change_request = ChangeRequest.objects.get(goal=goal)
    assert {"field": "paths.mini.weight", "from": 2.0, "to": 5.0} in change_request.diff
    path.refresh_from_db()
    assert (path.weight, path.alpha0, path.beta0, path.enabled) == (2.0, None, None, False)


def test_provider_api_key_is_write_only(admin_user, client_for) -> None:
    client = client_for(admin_user)
    data = {
        "name": "openai",
        "kind": "openai",
        "base_url": "https://api.example.com/v1",
        "api_key": "sk-very-secret-value",
        "timeout_seconds": "30",
        "max_retries": "0",
        "enabled": "on",
    }
    assert csrf_post(client, reverse("dashboard:provider-create"), data).status_code == 302
    provider = Provider.objects.get(name="openai")
    assert provider.resolve_api_key() == "sk-very-secret-value"
    edit_page = client.get(reverse("dashboard:provider-edit", args=[provider.pk])).content.decode()
    listing = client.get(reverse("dashboard:configuration")).content.decode()
    for body in (edit_page, listing):
        assert "sk-very-secret-value" not in body
        assert provider.api_key_encrypted not in body
    # Saving without a key keeps the stored one.
    assert (
        csrf_post(
            client,
            reverse("dashboard:provider-edit", args=[provider.pk]),
            {**data, "api_key": "", "timeout_seconds": "10"},
        ).status_code
        == 302
    )
    provider.refresh_from_db()
    assert provider.resolve_api_key() == "sk-very-secret-value"
    assert provider.timeout_seconds == 10
    assert "sk-very-secret-value" not in str(
        list(AuditLog.objects.values_list("changes", flat=True))
    )


def test_admin_adds_a_price(admin_user, client_for) -> None:
    provider = make_provider()
    response = csrf_post(
        client_for(admin_user),
        reverse("dashboard:price-create"),
        {
            "provider": provider.pk,
            "model": "gpt-4o-mini",
            "input_per_million": "0.15",
            "output_per_million": "0.60",
            "effective_from": "2025-01-01",
        },
    )
    assert response.status_code == 302
    assert ModelPrice.objects.get(model="gpt-4o-mini").output_per_million == Decimal("0.6")
    body = client_for(admin_user).get(reverse("dashboard:configuration")).content.decode()
    assert "$0.60" in body
