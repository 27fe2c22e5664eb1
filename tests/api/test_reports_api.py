"""GET /api/v1/reports/savings and /regret: JSON or CSV, API key `read` scope or a view role."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

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


def test_regret_report_is_a_zero_structure_until_shadow_traffic_exists(goal_with_traffic) -> None:
    client = _key_client(("read",))
    body = client.get(reverse("report-regret"), {"goal": goal_with_traffic.slug}).json()
    assert body["totals"] == {"shadow_comparisons": 0, "regrets": 0, "regret_rate": None}
    assert body["rows"] == []
    csv_body = client.get(reverse("report-regret"), {"format": "csv"}).content.decode()
    assert csv_body.splitlines()[0] == "period,goal,path,shadow_comparisons,regrets,regret_rate"
