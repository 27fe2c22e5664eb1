"""Goal and path fields on /api/v1: every setting is shown, a misspelt one is refused rather than
dropped, and a governed one changes only through a change request."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from routerapp.models import Goal, Path
from tests.builders import make_api_key, make_goal, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    _, raw = make_api_key(scopes=("admin",), created_by=make_user(username="a", role="admin"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_goal_shows_its_shadow_judge_and_classifier_settings(client: APIClient) -> None:
    make_goal(slug="g")
    body = client.get("/api/v1/goals/g").json()
    for name in (*Goal.SETTINGS_FIELDS, "shadow_rate", "rules", "version", "regret_alert"):
        assert name in body, name


def test_a_misspelt_field_is_refused_and_nothing_changes(client: APIClient) -> None:
    goal = make_goal(slug="g")
    response = client.patch("/api/v1/goals/g", {"descripton": "typo"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"descripton": ["Unknown field."]}
    path = goal.paths.first()
    assert path is not None
    response = client.patch(f"/api/v1/paths/{path.id}", {"wieght": 3}, format="json")
    assert response.status_code == 400
    assert Path.objects.get(id=path.id).weight == path.weight
    created = client.post("/api/v1/goals", {"slug": "new", "judge_modle": "x"}, format="json")
    assert created.status_code == 400
    assert not Goal.objects.filter(slug="new").exists()


def test_a_governed_setting_answers_409_and_a_new_goal_may_set_it(client: APIClient) -> None:
    make_goal(slug="g")
    response = client.patch("/api/v1/goals/g", {"judge_model": "judge-x"}, format="json")
    assert response.status_code == 409
    assert "change-requests" in response.json()["detail"]
    assert Goal.objects.get(slug="g").judge_model == ""

    created = client.post(
        "/api/v1/goals",
        {"slug": "new", "judge_model": "judge-x", "regret_threshold": 0.05},
        format="json",
    )
    assert created.status_code == 201, created.json()
    goal = Goal.objects.get(slug="new")
    assert (goal.judge_model, goal.regret_threshold) == ("judge-x", 0.05)
