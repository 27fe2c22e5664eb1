from __future__ import annotations

import pytest
from django.urls import reverse

from routerapp.models import Outcome, RoutingDecision
from tests.builders import make_goal
from tests.dashboard.conftest import csrf_post

# Routing runs its database work on its own thread pool (routerapp.dbwork), on other
# connections: rows must be committed for it to see them.
pytestmark = pytest.mark.django_db(transaction=True)


def test_playground_routes_a_prompt_and_explains_the_decision(
    operator, client_for, simulator_url
) -> None:
    goal = make_goal()
    client = client_for(operator)
    response = csrf_post(
        client,
        reverse("dashboard:playground"),
        {"goal": goal.slug, "prompt": "Is <b>this</b> spam? WIN A PRIZE"},
    )
    assert response.status_code == 200
    decision = RoutingDecision.objects.get()
    body = response.content.decode()
    assert response.context["detail"].decision == decision
    assert decision.request_id in body
    assert "Sample of every path" in body
    assert "&lt;b&gt;this&lt;/b&gt;" in body
    outcome = csrf_post(
        client,
        reverse("dashboard:playground-outcome"),
        {"request_id": decision.request_id, "outcome": "failure"},
        HTTP_HX_REQUEST="true",
    )
    assert outcome.status_code == 200
    stored = Outcome.objects.get(decision=decision)
    assert (stored.value, stored.source) == (0.0, Outcome.Source.API)
    assert "playground" in stored.note
    assert "failure" in outcome.content.decode()


def test_playground_outcome_without_htmx_redirects_to_the_decision(
    operator, client_for, simulator_url
) -> None:
    goal = make_goal()
    client = client_for(operator)
    csrf_post(client, reverse("dashboard:playground"), {"goal": goal.slug, "prompt": "hello"})
    decision = RoutingDecision.objects.get()
    response = csrf_post(
        client,
        reverse("dashboard:playground-outcome"),
        {"request_id": decision.request_id, "outcome": "success"},
    )
    assert response["Location"] == reverse("dashboard:decision-detail", args=[decision.request_id])


def test_playground_shows_a_readable_error_when_routing_fails(operator, client_for) -> None:
    goal = make_goal()
    goal.paths.update(enabled=False)
    response = csrf_post(
        client_for(operator),
        reverse("dashboard:playground"),
        {"goal": goal.slug, "prompt": "hello"},
    )
    assert response.status_code == 200
    assert "has no enabled path" in response.content.decode()
