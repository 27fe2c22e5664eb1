"""POST /api/v1/outcomes: idempotent, replaceable, 404 for unknown ids, 400 with field errors."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from routerapp.models import Outcome, Posterior, RoutingDecision
from tests.builders import make_api_key, make_goal


@pytest.fixture
def decision(db: None) -> RoutingDecision:
    goal = make_goal(slug="email_classification")
    path = goal.paths.first()
    return RoutingDecision.objects.create(
        goal=goal, path=path, reason="thompson", objective="cost_at_quality", ranking=[path.id]
    )


def api(scopes: tuple[str, ...] = ("outcomes",), goals: tuple = ()) -> APIClient:
    _, key = make_api_key(scopes=scopes, goals=goals)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def goal_wide(decision: RoutingDecision) -> Posterior:
    return Posterior.objects.get(path=decision.path, bucket="")


def test_reporting_success_moves_the_posterior(decision: RoutingDecision) -> None:
    response = api().post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "outcome": "success"}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {
        "request_id": decision.request_id,
        "value": 1.0,
        "source": "api",
        "changed": True,
    }
    posterior = goal_wide(decision)
    assert (posterior.successes, posterior.failures) == (1.0, 0.0)


def test_reporting_same_outcome_twice_changes_nothing(decision: RoutingDecision) -> None:
    client = api()
    body = {"request_id": decision.request_id, "outcome": "failure"}
    client.post("/api/v1/outcomes", body, format="json")
    again = client.post("/api/v1/outcomes", body, format="json")
    assert again.status_code == 200
    assert again.json()["changed"] is False
    posterior = goal_wide(decision)
    assert (posterior.successes, posterior.failures) == (0.0, 1.0)
    assert Outcome.objects.count() == 1


def test_changed_outcome_replaces_old_one_and_moves_posterior_by_difference(
    decision: RoutingDecision,
) -> None:
    client = api()
    client.post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "outcome": "failure"}, format="json"
    )
    client.post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "score": 0.75}, format="json"
    )
    posterior = goal_wide(decision)
    assert posterior.successes == pytest.approx(0.75)
    assert posterior.failures == pytest.approx(0.25)
    assert Outcome.objects.get(decision=decision).value == 0.75


def test_unknown_request_id_is_404(decision: RoutingDecision) -> None:
    response = api().post(
        "/api/v1/outcomes", {"request_id": "req_nope", "outcome": "success"}, format="json"
    )
    assert response.status_code == 404
    assert not Posterior.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "success"}, "request_id"),
        ({"request_id": "x", "outcome": "great"}, "outcome"),
        ({"request_id": "x", "score": 1.5}, "score"),
        ({"request_id": "x", "score": "high"}, "score"),
        ({"request_id": "x"}, "outcome"),
        ({"request_id": "x", "outcome": "success", "score": 1}, "outcome"),
    ],
)
def test_bad_body_is_400_with_field_errors(
    decision: RoutingDecision, body: dict, field: str
) -> None:
    response = api().post("/api/v1/outcomes", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Outcome.objects.exists()


def test_key_without_outcomes_scope_is_403(decision: RoutingDecision) -> None:
    response = api(scopes=("completions",)).post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "outcome": "success"}, format="json"
    )
    assert response.status_code == 403
    assert not Outcome.objects.exists()


def test_key_restricted_to_another_goal_finds_no_such_call(decision: RoutingDecision) -> None:
    # 404, as for an unknown id: a 403 would confirm the call exists and name its goal.
    other = make_goal(slug="other")
    response = api(goals=(other,)).post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "outcome": "success"}, format="json"
    )
    assert response.status_code == 404
    assert decision.goal.slug not in response.content.decode()
    assert not Outcome.objects.exists()


def test_missing_key_is_401(decision: RoutingDecision) -> None:
    response = APIClient().post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "outcome": "success"}, format="json"
    )
    assert response.status_code in (401, 403)
    assert not Outcome.objects.exists()


def test_outcome_for_a_failed_call_is_refused(decision: RoutingDecision) -> None:
    RoutingDecision.objects.filter(id=decision.id).update(status="failed", path=None)
    response = api().post(
        "/api/v1/outcomes", {"request_id": decision.request_id, "outcome": "success"}, format="json"
    )
    assert response.status_code == 400
    assert "request_id" in response.json()
