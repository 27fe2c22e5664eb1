"""An API key acts for its owner: its rights are its scopes intersected with the owner's role."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from routerapp.models import ApiKey, Provider
from tests.builders import make_api_key, make_goal, make_user

pytestmark = pytest.mark.django_db


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_create_api_key_ties_the_key_to_a_user() -> None:
    user = make_user(username="otto", role="operator")
    out = StringIO()
    call_command("create_api_key", name="ci", scopes="read,config", user="otto", stdout=out)
    key = ApiKey.objects.get(name="ci")
    assert key.created_by == user
    assert key.scopes == ["config", "read"]
    assert out.getvalue().strip().startswith(f"rk_{key.prefix}_")

    with pytest.raises(CommandError, match="Unknown or inactive user"):
        call_command("create_api_key", name="x", scopes="read", user="nobody", stdout=StringIO())
    assert not ApiKey.objects.filter(name="x").exists()


def test_an_admin_scoped_key_of_an_operator_cannot_manage_providers() -> None:
    make_goal(slug="email_classification")
    _, raw = make_api_key(scopes=("admin",), created_by=make_user(username="o", role="operator"))
    client = key_client(raw)

    refused = client.post("/api/v1/providers", {"name": "mine", "kind": "simulator"}, format="json")
    assert refused.status_code == 403
    assert "role may not admin" in refused.json()["detail"]
    assert not Provider.objects.filter(name="mine").exists()
    # Within the operator's role the admin scope still works.
    assert client.get("/api/v1/goals").status_code == 200
    created = client.post("/api/v1/goals", {"slug": "summaries"}, format="json")
    assert created.status_code == 201


@pytest.mark.parametrize(
    ("role", "active", "read", "outcome"),
    [
        ("viewer", True, 200, 404),  # outcomes: an active owner is enough (404: no such call)
        (None, True, 403, 404),  # a user with no role reads nothing
        ("admin", False, 403, 403),  # a deactivated owner stops the key
    ],
)
def test_traffic_scopes_need_an_active_owner_and_read_needs_view(
    role: str | None, active: bool, read: int, outcome: int
) -> None:
    owner = make_user(username="owner", role=role)
    owner.is_active = active
    owner.save(update_fields=["is_active"])
    _, raw = make_api_key(scopes=("read", "outcomes"), created_by=owner)
    client = key_client(raw)
    assert client.get("/api/v1/goals").status_code == read
    response = client.post(
        "/api/v1/outcomes", {"request_id": "req_unknown", "outcome": "success"}, format="json"
    )
    assert response.status_code == outcome


def test_a_key_without_an_owner_keeps_its_scopes_but_cannot_propose() -> None:
    goal = make_goal(slug="email_classification")
    _, raw = make_api_key(scopes=("admin",))
    client = key_client(raw)
    assert client.get("/api/v1/goals").status_code == 200
    response = client.post(
        "/api/v1/change-requests",
        {"goal": goal.slug, "reason": "r", "changes": {"quality_target": 0.9}},
        format="json",
    )
    assert response.status_code == 403
    assert "owner" in response.json()["detail"]


def test_keys_made_by_a_user_or_a_key_belong_to_that_user(admin_user: Any) -> None:
    client = APIClient()
    client.force_authenticate(admin_user)
    made = client.post("/api/v1/api-keys", {"name": "by ada", "scopes": ["config"]}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["owner"] == "ada"
    by_key = key_client(made.json()["key"]).post(
        "/api/v1/api-keys", {"name": "by ada's key", "scopes": ["read"]}, format="json"
    )
    # A config key is not an admin key: it cannot make keys.
    assert by_key.status_code == 403
    _, admin_raw = make_api_key(scopes=("admin",), created_by=admin_user)
    by_admin_key = key_client(admin_raw).post(
        "/api/v1/api-keys", {"name": "second", "scopes": ["read"]}, format="json"
    )
    assert by_admin_key.status_code == 201
    assert ApiKey.objects.get(name="second").created_by == admin_user
