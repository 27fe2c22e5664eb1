"""Every page needs a login; what a role may not do is neither shown nor accepted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from routerapp.models import ApiKey, Goal, ModelPrice, Provider
from tests.builders import make_api_key, make_goal
from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db

VIEW_PAGES = ["overview", "savings", "decisions", "configuration"]
OPERATE_PAGES = ["goal-create", "provider-create", "price-create", "playground"]


@pytest.mark.parametrize("name", VIEW_PAGES + OPERATE_PAGES + ["api-keys"])
def test_anonymous_users_are_sent_to_sign_in(client_for, name) -> None:
    response = client_for(None).get(reverse(f"dashboard:{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_without_any_role_gets_403(client_for, django_user_model) -> None:
    nobody = django_user_model.objects.create_user(username="nobody", password="x")
    assert client_for(nobody).get(reverse("dashboard:overview")).status_code == 403


@pytest.mark.parametrize("name", VIEW_PAGES)
def test_viewer_sees_every_report_page(viewer, client_for, name) -> None:
    assert client_for(viewer).get(reverse(f"dashboard:{name}")).status_code == 200


@pytest.mark.parametrize("name", OPERATE_PAGES + ["api-keys"])
def test_viewer_may_not_open_edit_pages(viewer, client_for, name) -> None:
    assert client_for(viewer).get(reverse(f"dashboard:{name}")).status_code == 403


def test_viewer_is_not_shown_edit_links_or_the_playground(viewer, client_for) -> None:
    make_goal()
    body = client_for(viewer).get(reverse("dashboard:configuration")).content.decode()
    assert reverse("dashboard:goal-create") not in body
    assert reverse("dashboard:goal-edit", args=["email_classification"]) not in body
    assert reverse("dashboard:playground") not in body
    assert reverse("dashboard:api-keys") not in body


def test_a_forged_goal_post_from_a_viewer_is_refused(viewer, client_for) -> None:
    response = csrf_post(
        client_for(viewer),
        reverse("dashboard:goal-create"),
        {"slug": "forged", "objective": "success"},
    )
    assert response.status_code == 403
    assert not Goal.objects.filter(slug="forged").exists()


def test_a_forged_edit_from_an_approver_is_refused(approver, client_for) -> None:
    goal = make_goal()
    response = csrf_post(
        client_for(approver),
        reverse("dashboard:goal-edit", args=[goal.slug]),
        {"slug": goal.slug, "description": "changed"},
    )
    assert response.status_code == 403
    goal.refresh_from_db()
    assert goal.description == ""


def test_viewer_may_not_report_outcomes_or_add_providers(viewer, client_for) -> None:
    client = client_for(viewer)
    assert (
        csrf_post(
            client, reverse("dashboard:provider-create"), {"name": "x", "kind": "simulator"}
        ).status_code
        == 403
    )
    assert csrf_post(client, reverse("dashboard:price-create"), {}).status_code == 403
    assert (
        csrf_post(
            client,
            reverse("dashboard:playground-outcome"),
            {"request_id": "req_x", "outcome": "success"},
        ).status_code
        == 403
    )
    assert not Provider.objects.filter(name="x").exists()
    assert ModelPrice.objects.count() == 0


def test_operator_may_not_manage_api_keys(operator, client_for) -> None:
    key, _ = make_api_key()
    client = client_for(operator)
    assert client.get(reverse("dashboard:api-keys")).status_code == 403
    assert (
        csrf_post(
            client, reverse("dashboard:api-keys"), {"name": "sneaky", "scopes": ["admin"]}
        ).status_code
        == 403
    )
    assert csrf_post(client, reverse("dashboard:api-key-revoke", args=[key.pk])).status_code == 403
    key.refresh_from_db()
    assert key.is_active
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_csrf_is_enforced_on_every_form(operator, client_for) -> None:
    response = client_for(operator).post(reverse("dashboard:goal-create"), {"slug": "no-token"})
    assert response.status_code == 403
    assert not Goal.objects.filter(slug="no-token").exists()
