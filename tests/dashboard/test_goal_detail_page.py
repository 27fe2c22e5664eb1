from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from tests.builders import make_goal
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


def _figure(body: str, figure_id: str) -> dict:
    match = re.search(
        rf'<script id="{figure_id}" type="application/json">(.*?)</script>', body, re.S
    )
    assert match, figure_id
    return json.loads(match.group(1))


def test_goal_detail_shows_every_path_posterior_and_the_live_poller(
    viewer, client_for, traffic
) -> None:
    goal = make_goal()
    traffic(goal, n=9)
    response = client_for(viewer).get(reverse("dashboard:goal-detail", args=[goal.slug]))
    body = response.content.decode()
    rows = response.context["posteriors"]
    assert {row["path"] for row in rows} == {"gpt-4o-mini", "gpt-4o"}
    assert sum(row["observations"] for row in rows) == pytest.approx(9)
    assert all(row["low"] <= row["mean"] <= row["high"] for row in rows)
    assert f'hx-get="{reverse("dashboard:goal-live", args=[goal.slug])}"' in body
    assert 'hx-trigger="every 3s"' in body
    density = _figure(body, "fig-posterior-0")
    assert len(density["data"]) == 4  # a curve and a mean marker per path
    assert _figure(body, "fig-share")["data"]
    assert _figure(body, "fig-success")["data"]


def test_live_partial_reflects_new_outcomes(viewer, client_for) -> None:
    goal = make_goal()
    client = client_for(viewer)
    url = reverse("dashboard:goal-live", args=[goal.slug])
    before = client.get(url, HTTP_HX_REQUEST="true")
    assert before.context["observations"] == 0
    assert "<html" not in before.content.decode()  # a fragment, swapped in place
    record_decision(path=goal.paths.first(), value=1.0)
    after = client.get(url, HTTP_HX_REQUEST="true")
    assert after.context["observations"] == pytest.approx(1)
    assert 'id="goal-live"' in after.content.decode()


def test_goal_without_traffic_has_an_empty_state(viewer, client_for) -> None:
    goal = make_goal()
    body = (
        client_for(viewer).get(reverse("dashboard:goal-detail", args=[goal.slug])).content.decode()
    )
    assert "No traffic yet" in body


def test_unknown_goal_is_404(viewer, client_for) -> None:
    assert (
        client_for(viewer).get(reverse("dashboard:goal-detail", args=["nope"])).status_code == 404
    )
