from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from routerapp.models import RegretRollup
from tests.builders import make_goal
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


def test_savings_page_charts_costs_per_1k_and_links_the_csv(viewer, client_for) -> None:
    goal = make_goal()
    mini, big = goal.paths.order_by("id")
    record_decision(path=mini, cost="0.001", baseline_cost="0.01")
    record_decision(path=big, cost="0.01", baseline_cost="0.01")
    response = client_for(viewer).get(reverse("dashboard:savings"), {"window": "7d"})
    body = response.content.decode()
    assert response.status_code == 200
    for figure_id in (
        "fig-spend-cumulative",
        "fig-spend-period",
        "fig-spend-goal",
        "fig-spend-model",
        "fig-cost-per-1k",
    ):
        assert f'id="{figure_id}"' in body
    costs = {cost.path: cost.cost_per_1k for cost in response.context["report"].path_costs}
    assert costs == {"gpt-4o-mini": Decimal("1"), "gpt-4o": Decimal("10")}
    assert "$0.009000" in body  # saved on the one cheap call
    export = urlsplit(response.context["export_url"])
    assert export.path == reverse("report-savings")
    assert parse_qs(export.query)["format"] == ["csv"]


def test_savings_page_filters_by_goal_and_has_an_empty_state(viewer, client_for) -> None:
    make_goal(slug="a")
    other = make_goal(slug="b")
    record_decision(path=other.paths.first())
    client = client_for(viewer)
    assert client.get(reverse("dashboard:savings"), {"goal": "a"}).context["report"].rows == []
    assert (
        "No traffic yet" in client.get(reverse("dashboard:savings"), {"goal": "a"}).content.decode()
    )
    assert len(client.get(reverse("dashboard:savings"), {"goal": "b"}).context["report"].rows) == 1


def test_savings_page_shows_overhead_spend_and_net_savings(viewer, client_for) -> None:
    goal = make_goal()
    mini = goal.paths.order_by("id").first()
    record_decision(path=mini, cost="0.001", baseline_cost="0.01")
    RegretRollup.objects.create(
        goal=goal,
        path=mini,
        hour=timezone.now().replace(minute=0, second=0, microsecond=0),
        sampled=1,
        judged=1,
        shadow_spend=Decimal("0.002"),
        judge_spend=Decimal("0.0005"),
    )
    response = client_for(viewer).get(reverse("dashboard:savings"), {"window": "7d"})
    totals = response.context["report"].totals
    assert totals.spend == Decimal("0.001")  # the shadow call is not routed spend
    assert totals.net_savings == Decimal("0.0065")
    body = response.content.decode()
    assert 'data-stat="shadow-spend">$0.002000<' in body
    assert 'data-stat="judge-spend">$0.000500<' in body
    assert 'data-stat="net-savings">$0.006500' in body
