"""GET /api/v1/reports/savings: JSON or CSV, API key `read` scope or a view role (the regret
report: test_regret_api.py)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from routerapp.models import HourlyRollup, RegretRollup
from tests.builders import make_api_key, make_goal
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def goal_with_traffic():
    goal = make_goal()
    mini, big = goal.paths.order_by("id")
    record_decision(path=mini, cost="0.001", baseline_cost="0.01")
    record_decision(path=mini, cost="0.001", baseline_cost="0.01")
    record_decision(path=big, cost="0.01", baseline_cost="0.01")
    return goal


def _key_client(scopes: tuple[str, ...], **fields) -> Client:
    _, raw = make_api_key(scopes=scopes, **fields)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_savings_report_json_with_a_read_key(goal_with_traffic) -> None:
    response = _key_client(("read",)).get(reverse("report-savings"), {"granularity": "hour"})
    assert response.status_code == 200
    body = response.json()
    assert body["totals"] == {
        "requests": 3,
        "spend": 0.012,
        "baseline_spend": 0.03,
        "savings": 0.018,
        "savings_pct": 0.6,
        "classifier_spend": 0.0,
        "shadow_spend": 0.0,
        "judge_spend": 0.0,
        "net_savings": 0.018,
        "net_savings_pct": 0.6,
    }
    assert {row["path"]: row["requests"] for row in body["rows"]} == {"gpt-4o-mini": 2, "gpt-4o": 1}
    assert body["granularity"] == "hour"


@pytest.mark.parametrize("how", ["accept", "format"])
def test_savings_report_csv_has_the_same_numbers(goal_with_traffic, how) -> None:
    client = _key_client(("read",))
    json_rows = client.get(reverse("report-savings")).json()["rows"]
    if how == "accept":
        response = client.get(reverse("report-savings"), HTTP_ACCEPT="text/csv")
    else:
        response = client.get(reverse("report-savings"), {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="savings.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["path"] for row in rows] == [row["path"] for row in json_rows]
    assert [float(row["savings"]) for row in rows] == [row["savings"] for row in json_rows]


def test_reports_need_the_read_scope_or_a_view_role(goal_with_traffic, viewer) -> None:
    assert _key_client(("completions",)).get(reverse("report-savings")).status_code == 403
    assert Client().get(reverse("report-savings")).status_code in (401, 403)
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse("report-savings")).status_code == 200


def test_a_key_restricted_to_goals_sees_only_them(goal_with_traffic) -> None:
    other = make_goal(slug="other")
    record_decision(path=other.paths.first())
    client = _key_client(("read",), goals=(other,))
    assert client.get(reverse("report-savings")).json()["totals"]["requests"] == 1
    assert (
        client.get(reverse("report-savings"), {"goal": goal_with_traffic.slug}).status_code == 403
    )


def test_bad_parameters_are_field_errors(goal_with_traffic) -> None:
    client = _key_client(("read",))
    assert "granularity" in client.get(reverse("report-savings"), {"granularity": "week"}).json()
    assert (
        "to"
        in client.get(reverse("report-savings"), {"from": "2025-02-01", "to": "2025-01-01"}).json()
    )
    assert client.get(reverse("report-savings"), {"from": "yesterday"}).status_code == 400
    assert client.get(reverse("report-savings"), {"goal": "nope"}).status_code == 404


def test_window_parameters_select_the_rows(goal_with_traffic) -> None:
    client = _key_client(("read",))
    old = client.get(reverse("report-savings"), {"from": "2020-01-01", "to": "2020-02-01"}).json()
    assert old["rows"] == []
    assert old["totals"]["requests"] == 0


def test_net_savings_take_off_classifier_shadow_and_judge_spend(goal_with_traffic) -> None:
    """Shadow calls never count in the routed spend: they only lower the net savings."""
    mini, big = goal_with_traffic.paths.order_by("id")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    # One call on the big path: one rollup row, whatever the hour boundaries.
    HourlyRollup.objects.filter(goal=goal_with_traffic, path=big).update(
        classifier_spend=Decimal("0.001")
    )
    RegretRollup.objects.create(
        goal=goal_with_traffic,
        path=mini,
        hour=hour,
        sampled=1,
        judged=1,
        shadow_spend=Decimal("0.004"),
        judge_spend=Decimal("0.002"),
    )
    client = _key_client(("read",))
    totals = client.get(reverse("report-savings")).json()["totals"]
    assert totals["spend"] == 0.012  # unchanged by the shadow call
    assert totals["savings"] == 0.018
    assert totals["classifier_spend"] == 0.001
    assert totals["shadow_spend"] == 0.004
    assert totals["judge_spend"] == 0.002
    assert totals["net_savings"] == 0.011
    assert totals["net_savings_pct"] == round(0.011 / 0.03, 6)
    rows = client.get(reverse("report-savings"), {"format": "csv"}).content.decode()
    mini_row = next(r for r in csv.DictReader(io.StringIO(rows)) if r["path"] == "gpt-4o-mini")
    assert float(mini_row["shadow_spend"]) == 0.004
    assert float(mini_row["net_savings"]) == pytest.approx(0.018 - 0.004 - 0.002)
