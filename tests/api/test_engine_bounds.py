"""Engine-facing numbers: refused at save with the engine's own bounds (API and form), and a row
saved before those checks existed degrades routing instead of answering 500."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from django.test import Client
from rest_framework.test import APIClient

from dashboard.forms import GoalForm, PathForm
from routerapp import engine
from routerapp.models import Goal, Path, RoutingDecision
from tests.builders import make_api_key, make_goal

MESSAGES = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]


def admin_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(scopes=('admin',))[1]}")
    return client


def path_body(**fields: Any) -> dict[str, Any]:
    return {
        "goal": "g1",
        "name": "mini",
        "provider": "simulator",
        "model": "gpt-4o-mini",
        **fields,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"alpha0": 1e23, "beta0": 1.0}, "alpha0"),
        ({"alpha0": 1.0, "beta0": 1e11}, "beta0"),
        ({"weight": 1e7}, "weight"),
    ],
)
def test_path_numbers_the_engine_refuses_are_refused_at_save_by_the_api(
    fields: dict[str, Any], field: str
) -> None:
    make_goal(slug="g1", models=("gpt-4o",))
    response = admin_client().post("/api/v1/paths", path_body(**fields), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Path.objects.filter(name="mini").exists()


@pytest.mark.django_db
def test_patching_a_path_to_1e23_is_refused_and_changes_nothing() -> None:
    goal = make_goal(slug="g1")
    path = goal.paths.first()
    response = admin_client().patch(
        f"/api/v1/paths/{path.id}", {"alpha0": 1e23, "beta0": 1.0}, format="json"
    )
    assert response.status_code == 400
    assert "alpha0" in response.json()
    path.refresh_from_db()
    assert path.alpha0 is None


@pytest.mark.django_db
def test_the_largest_values_the_engine_accepts_can_be_saved() -> None:
    make_goal(slug="g1", models=("gpt-4o",))
    response = admin_client().post(
        "/api/v1/paths",
        path_body(alpha0=engine.MAX_EVIDENCE, beta0=engine.PRIOR_BOUNDS.low, weight=1e6),
        format="json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [({"prior_strength": 1e7}, "prior_strength"), ({"prior_strength": 1e300}, "prior_strength")],
)
def test_goal_numbers_the_engine_refuses_are_refused_at_save_by_the_api(
    fields: dict[str, Any], field: str
) -> None:
    response = admin_client().post("/api/v1/goals", {"slug": "g2", **fields}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Goal.objects.filter(slug="g2").exists()


@pytest.mark.django_db
def test_the_path_form_refuses_1e23_on_the_field() -> None:
    goal = make_goal(slug="g1", models=("gpt-4o",))
    data = {
        "name": "mini",
        "provider": goal.paths.first().provider_id,
        "model": "gpt-4o-mini",
        "weight": "1",
        "alpha0": "1e23",
        "beta0": "1",
        "expected_output_tokens": "200",
        "enabled": "on",
    }
    form = PathForm(data=data, instance=Path(goal=goal))
    assert not form.is_valid()
    assert "alpha0" in form.errors
    assert PathForm(data={**data, "alpha0": "90"}, instance=Path(goal=goal)).is_valid()


@pytest.mark.django_db
def test_the_goal_form_refuses_a_prior_strength_the_engine_refuses() -> None:
    data = {
        "slug": "g3",
        "objective": "success",
        "quality_target": "0.95",
        "exploration_floor": "0.01",
        "prior_strength": "1e7",
        "bucket_by": "none",
        "shadow_rate": "0",
        "status": "active",
    }
    form = GoalForm(data=data)
    assert not form.is_valid()
    assert "prior_strength" in form.errors
    assert GoalForm(data={**data, "prior_strength": "10"}).is_valid()


def test_model_validators_are_the_engine_bounds() -> None:
    """One definition: the saved range is exactly the engine's (narrower only by choice)."""

    def limits(model: type[Goal | Path], name: str) -> list[float]:
        field = model._meta.get_field(name)
        return sorted(getattr(v, "limit_value", 0.0) for v in getattr(field, "validators", []))

    assert limits(Path, "alpha0") == [engine.PRIOR_BOUNDS.low, engine.PRIOR_BOUNDS.high]
    assert limits(Path, "weight") == [engine.WEIGHT_BOUNDS.low, engine.WEIGHT_BOUNDS.high]
    assert limits(Goal, "prior_strength") == [0.01, engine.CONFIG_BOUNDS["prior_strength"].high]


# --------------------------------------------------------------------------- bad stored rows


def test_a_stored_1e23_path_is_skipped_and_the_decision_says_why(live: str) -> None:
    goal = make_goal(slug="g1", weights=(0.9, 0.1))
    bad, good = goal.paths.order_by("id")
    # Written the way a row saved before the validators existed looks: no validation.
    Path.objects.filter(id=bad.id).update(alpha0=1e23, beta0=1.0)
    _, key = make_api_key()
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0)

    for _ in range(3):
        client.chat.completions.create(model="goal/g1", messages=MESSAGES)

    decisions = RoutingDecision.objects.filter(goal=goal)
    assert decisions.count() == 3
    for decision in decisions:
        assert decision.path_id == good.id
        assert decision.ranking == [good.id]
        assert "alpha0" in decision.explanation["refused_paths"][str(bad.id)]
        assert "1e+23" in decision.explanation["refused_paths"][str(bad.id)]


def test_a_goal_with_no_usable_path_answers_409_and_stores_nothing(live: str) -> None:
    goal = make_goal(slug="g1")
    goal.paths.update(weight=1e12)
    _, key = make_api_key()
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.ConflictError) as caught:
        client.chat.completions.create(model="goal/g1", messages=MESSAGES)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "configuration_error"
    assert "weight" in error["message"]
    assert not RoutingDecision.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_goal_whose_own_numbers_the_engine_refuses_answers_409() -> None:
    goal = make_goal(slug="g1", priced=False)
    Goal.objects.filter(id=goal.id).update(prior_strength=1e9)
    _, key = make_api_key()
    response = Client().post(
        "/v1/chat/completions",
        data={"model": "goal/g1", "messages": MESSAGES},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 409
    assert "prior_strength" in response.json()["error"]["message"]
    assert not RoutingDecision.objects.exists()


@pytest.mark.django_db
def test_posteriors_leave_out_a_stored_bad_path_instead_of_failing() -> None:
    goal = make_goal(slug="g1")
    bad, good = goal.paths.order_by("id")
    Path.objects.filter(id=bad.id).update(alpha0=1e23, beta0=1.0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(scopes=('read',))[1]}")
    response = client.get("/api/v1/goals/g1/posteriors")
    assert response.status_code == 200, response.content
    assert [row["path_id"] for row in response.json()["posteriors"]] == [good.id]
