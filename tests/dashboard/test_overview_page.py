from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from tests.builders import make_goal, make_provider
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


def test_overview_without_goals_has_a_clear_empty_state(viewer, client_for) -> None:
    body = client_for(viewer).get(reverse("dashboard:overview")).content.decode()
    assert "No goals yet" in body
    assert "make run" in body


def test_overview_without_traffic_says_so(viewer, client_for) -> None:
    make_goal()
    body = client_for(viewer).get(reverse("dashboard:overview")).content.decode()
    assert "No traffic yet" in body
    assert "email_classification" in body


def test_overview_shows_per_goal_numbers_for_people(viewer, client_for) -> None:
    goal = make_goal()
    mini = goal.paths.get(name="gpt-4o-mini")
    for value in (1.0, 1.0, 1.0, 0.0):
        record_decision(path=mini, value=value, cost="250", baseline_cost="1000")
    response = client_for(viewer).get(reverse("dashboard:overview"), {"window": "24h"})
    body = response.content.decode()
    summary = response.context["report"].goals[0]
    assert summary.totals.requests == 4
    assert summary.totals.success_rate == 0.75
    assert "$1,000.00" in body  # spend
    assert "$4,000.00" in body  # baseline
    assert "$3,000.00" in body  # savings
    assert "75.0%" in body
    assert 'data-figure="fig-spark-0"' in body
    assert response.context["report"].projected_monthly_saving > 0


def test_overview_window_excludes_older_traffic(viewer, client_for) -> None:
    goal = make_goal()
    path = goal.paths.first()
    from django.utils import timezone

    record_decision(path=path, at=timezone.now() - timedelta(days=3))
    record_decision(path=path)
    client = client_for(viewer)
    assert (
        client.get(reverse("dashboard:overview"), {"window": "24h"})
        .context["report"]
        .totals.requests
        == 1
    )
    assert (
        client.get(reverse("dashboard:overview"), {"window": "7d"})
        .context["report"]
        .totals.requests
        == 2
    )
    custom = client.get(
        reverse("dashboard:overview"),
        {"window": "custom", "from": (timezone.now() - timedelta(days=4)).date().isoformat()},
    )
    assert custom.context["window"] == "custom"
    assert custom.context["report"].totals.requests == 2


def test_simulator_banner_is_shown_when_the_simulator_is_enabled(viewer, client_for) -> None:
    client = client_for(viewer)
    assert (
        "Simulated provider in use"
        not in client.get(reverse("dashboard:overview")).content.decode()
    )
    make_provider()
    assert "Simulated provider in use" in client.get(reverse("dashboard:overview")).content.decode()
