"""Configuration under /api/v1: permissions, validation, audit, posteriors, schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from routerapp.models import AuditLog, Goal, Path, Posterior, Provider
from tests.builders import make_api_key, make_goal


def key_client(*scopes: str) -> APIClient:
    _, key = make_api_key(scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def user_client(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_admin_key_creates_goal_and_path_and_the_change_is_audited() -> None:
    make_goal(slug="existing")
    client = key_client("admin")
    created = client.post(
        "/api/v1/goals",
        {"slug": "summaries", "objective": "success", "success_when": "len(response.choices) > 0"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    path = client.post(
        "/api/v1/paths",
        {
            "goal": "summaries",
            "name": "mini",
            "provider": "simulator",
            "model": "gpt-4o-mini",
            "weight": 0.7,
        },
        format="json",
    )
    assert path.status_code == 201, path.json()
    assert Path.objects.get(goal__slug="summaries").weight == 0.7
    assert AuditLog.objects.filter(action="goal.create").exists()
    assert AuditLog.objects.filter(action="path.create").exists()


@pytest.mark.django_db
def test_invalid_success_when_is_refused_with_the_error_position() -> None:
    response = key_client("admin").post(
        "/api/v1/goals", {"slug": "bad", "success_when": "response.choices[0] =="}, format="json"
    )
    assert response.status_code == 400
    assert "column" in " ".join(response.json()["success_when"])
    assert not Goal.objects.filter(slug="bad").exists()


@pytest.mark.django_db
def test_dunder_access_in_success_when_is_refused() -> None:
    response = key_client("admin").post(
        "/api/v1/goals", {"slug": "evil", "success_when": "response.__class__"}, format="json"
    )
    assert response.status_code == 400
    assert not Goal.objects.filter(slug="evil").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"goal": "g", "name": "p", "provider": "simulator", "model": "m", "weight": -1}, "weight"),
        ({"goal": "g", "name": "p", "provider": "nope", "model": "m"}, "provider"),
        ({"goal": "nope", "name": "p", "provider": "simulator", "model": "m"}, "goal"),
        ({"goal": "g", "name": "p", "provider": "simulator", "model": "m", "alpha0": 2}, "__all__"),
    ],
)
def test_bad_path_is_refused_with_field_errors(body: dict, field: str) -> None:
    make_goal(slug="g")
    before = Path.objects.count()
    response = key_client("admin").post("/api/v1/paths", body, format="json")
    assert response.status_code == 400
    assert field in response.json() or "non_field_errors" in response.json()
    assert Path.objects.count() == before


@pytest.mark.django_db
def test_read_key_may_list_but_not_write() -> None:
    make_goal(slug="g")
    client = key_client("read")
    assert client.get("/api/v1/goals").status_code == 200
    assert client.post("/api/v1/goals", {"slug": "x"}, format="json").status_code == 403
    assert not Goal.objects.filter(slug="x").exists()


@pytest.mark.django_db
def test_viewer_reads_operator_writes(viewer, operator) -> None:  # noqa: ANN001
    make_goal(slug="g")
    assert user_client(viewer).get("/api/v1/goals").status_code == 200
    assert (
        user_client(viewer).post("/api/v1/goals", {"slug": "v"}, format="json").status_code == 403
    )
    assert (
        user_client(operator).post("/api/v1/goals", {"slug": "o"}, format="json").status_code == 201
    )
    assert user_client(operator).get("/api/v1/api-keys").status_code == 403


@pytest.mark.django_db
def test_provider_api_key_is_write_only() -> None:
    client = key_client("admin")
    response = client.post(
        "/api/v1/providers",
        {"name": "openai", "base_url": "https://api.openai.com/v1", "api_key": "sk-very-secret"},
        format="json",
    )
    assert response.status_code == 201
    assert "sk-very-secret" not in response.content.decode()
    provider = Provider.objects.get(name="openai")
    assert provider.resolve_api_key() == "sk-very-secret"
    assert "sk-very-secret" not in provider.api_key_encrypted
    audit = AuditLog.objects.get(action="provider.create")
    assert "sk-very-secret" not in str(audit.changes)


@pytest.mark.django_db
def test_posteriors_endpoint_reports_interval_and_share() -> None:
    goal = make_goal(slug="g", weights=(0.7, 0.3), objective="success")
    cheap = goal.paths.order_by("id").first()
    Posterior.objects.create(
        goal=goal,
        path=cheap,
        bucket="",
        successes=40,
        failures=10,
        updated_at="2026-01-01T00:00:00Z",
    )
    response = key_client("read").get("/api/v1/goals/g/posteriors")
    assert response.status_code == 200
    rows = {row["path"]: row for row in response.json()["posteriors"]}
    assert set(rows) == {p.name for p in goal.paths.all()}
    row = rows[cheap.name]
    assert row["low"] < row["mean"] < row["high"]
    assert row["successes"] == 40
    assert row["failures"] == 10
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.django_db
def test_posteriors_of_unknown_goal_is_404() -> None:
    assert key_client("read").get("/api/v1/goals/nope/posteriors").status_code == 404


@pytest.mark.django_db
def test_api_key_created_through_api_is_shown_once_and_can_be_revoked() -> None:
    client = key_client("admin")
    created = client.post("/api/v1/api-keys", {"name": "ci", "scopes": ["read"]}, format="json")
    assert created.status_code == 201
    raw = created.json()["key"]
    listing = client.get(f"/api/v1/api-keys/{created.json()['id']}")
    assert "key" not in listing.json()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert other.get("/api/v1/goals").status_code == 200
    assert client.delete(f"/api/v1/api-keys/{created.json()['id']}").status_code == 204
    assert other.get("/api/v1/goals").status_code == 401


@pytest.mark.django_db
def test_schema_and_docs_are_served(admin_user) -> None:  # noqa: ANN001
    client = user_client(admin_user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/outcomes" in schema.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_healthz_reports_database(client) -> None:  # noqa: ANN001
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
