from __future__ import annotations

import pytest
from django.urls import reverse

from routerapp.models import ApiKey, AuditLog
from routerapp.services.access import api_key_authenticate
from tests.builders import make_goal
from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db


def test_admin_creates_a_key_shown_once(admin_user, client_for) -> None:
    goal = make_goal()
    client = client_for(admin_user)
    response = csrf_post(
        client,
        reverse("dashboard:api-keys"),
        {
            "name": "ci",
            "scopes": ["read", "outcomes"],
            "allowed_goals": [goal.slug],
            "rate_limit_per_minute": "60",
        },
    )
    assert response.status_code == 200
    raw = response.context["created_secret"]
    key = api_key_authenticate(raw)
    assert key.scopes == ["outcomes", "read"]
    assert list(key.allowed_goals.all()) == [goal]
    assert raw in response.content.decode()
    assert raw not in client.get(reverse("dashboard:api-keys")).content.decode()


def test_admin_revokes_a_key(admin_user, client_for) -> None:
    client = client_for(admin_user)
    csrf_post(client, reverse("dashboard:api-keys"), {"name": "old", "scopes": ["read"]})
    key = ApiKey.objects.get(name="old")
    response = csrf_post(client, reverse("dashboard:api-key-revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert not key.is_active
    assert AuditLog.objects.filter(action="api_key.revoke", object_id=str(key.pk)).exists()


def test_a_key_needs_a_scope(admin_user, client_for) -> None:
    response = csrf_post(client_for(admin_user), reverse("dashboard:api-keys"), {"name": "x"})
    assert response.context["form"].errors["scopes"]
    assert not ApiKey.objects.exists()
