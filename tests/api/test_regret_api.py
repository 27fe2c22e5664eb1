"""GET /api/v1/reports/regret (JSON and CSV) and GET /api/v1/shadow-comparisons (paged), with
a `read` key or a view role, honouring a key's goal restriction; rollup and comparison rows are
inserted directly (the shadow workflow, services/shadows.py, writes them in production)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
import pytest
import schemathesis
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from routerapp.models import Goal, RegretRollup, RoutingDecision, ShadowComparison
from tests.api.test_schema_fuzz import EXCLUDED_CHECKS, served_schema
from tests.builders import make_api_key, make_goal
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


def _key_client(scopes: tuple[str, ...] = ("read",), **fields: Any) -> Client:
    _, raw = make_api_key(scopes=scopes, **fields)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _hour() -> Any:
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def make_comparison(
    *,
    goal: Goal,
    served: str = "served answer",
    baseline: str = "baseline answer",
    state: str = ShadowComparison.State.JUDGED,
    **fields: Any,
) -> ShadowComparison:
    mini, big = goal.paths.order_by("id")
    decision: RoutingDecision = record_decision(path=mini, response=served)
    values: dict[str, Any] = {
        "verdict": ShadowComparison.Verdict.BETTER if state == "judged" else "",
        "reason": "the baseline names the right label",
        "score_delta": 0.5 if state == "judged" else None,
        "baseline_shown_first": True if state == "judged" else None,
        "shadow_cost": Decimal("0.002"),
        "judge_cost": Decimal("0.0005"),
        "judge_mode": "llm",
        **fields,
    }
    return ShadowComparison.objects.create(
        decision=decision,
        goal=goal,
        served_path=mini,
        baseline_path=big,
        bucket=decision.bucket,
        state=state,
        shadow_text=baseline,
        **values,
    )


@pytest.fixture
def goal_with_shadows() -> Goal:
    goal = make_goal(regret_threshold=0.03)
    mini = goal.paths.order_by("id").first()
    RegretRollup.objects.create(
        goal=goal,
        path=mini,
        bucket="math",
        hour=_hour(),
        sampled=110,
        judged=100,
        regret=3,
        same=90,
        worse=7,
        unjudgeable=2,
        shadow_failed=1,
        over_budget=1,
        dropped=1,
        first_shown_wins=5,
        decisive=10,
        score_delta_sum=1.5,
        shadow_spend=Decimal("0.25"),
        judge_spend=Decimal("0.05"),
    )
    RegretRollup.objects.create(
        goal=goal, path=mini, bucket="chat", hour=_hour(), sampled=10, judged=10, same=10
    )
    return goal


def test_regret_report_json_has_rate_interval_funnel_and_breakdowns(goal_with_shadows) -> None:
    body = _key_client().get(reverse("report-regret"), {"granularity": "hour"}).json()
    totals = body["totals"]
    assert totals["sampled"] == 120
    assert totals["judged"] == 110
    assert totals["regret_rate"] == round(3 / 110, 6)
    assert totals["low"] < totals["regret_rate"] < totals["high"]
    assert totals["funnel"] == {
        "judged": 110,
        "unjudgeable": 2,
        "shadow_failed": 1,
        "over_budget": 1,
        "dropped": 1,
        "pending": 5,
    }
    assert sum(totals["funnel"].values()) == totals["sampled"]
    assert totals["shadow_spend"] == 0.25
    assert totals["judge_spend"] == 0.05
    assert totals["position_bias"]["rate"] == 0.5
    # The contract's names sit at the top level too.
    for name in ("sampled", "judged", "regret_rate", "low", "high", "shadow_spend", "funnel"):
        assert body[name] == totals[name]
    buckets = {row["bucket"]: row for row in body["buckets"]}
    assert buckets["math"]["regret_rate"] == 0.03
    # Wilson, z = 1.96, 3 / 100: centre 0.047387, half-width 0.037132 (worked by hand).
    assert (buckets["math"]["low"], buckets["math"]["high"]) == (0.010255, 0.084519)
    assert buckets["chat"]["regret_rate"] == 0.0
    assert [row["path"] for row in body["paths"]] == ["gpt-4o-mini"]
    assert len(body["series"]) == 1
    assert body["series"][0]["judged"] == 110
    assert {row["bucket"] for row in body["rows"]} == {"math", "chat"}
    assert body["columns"][:5] == ["period", "goal", "path", "model", "bucket"]


@pytest.mark.parametrize("how", ["accept", "format"])
def test_regret_report_csv_has_the_same_rows(goal_with_shadows, how) -> None:
    client = _key_client()
    json_body = client.get(reverse("report-regret")).json()
    if how == "accept":
        response = client.get(reverse("report-regret"), HTTP_ACCEPT="text/csv")
    else:
        response = client.get(reverse("report-regret"), {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="regret.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == json_body["columns"]
    assert [(row["bucket"], int(row["sampled"])) for row in rows] == [
        (row["bucket"], row["sampled"]) for row in json_body["rows"]
    ]
    math = next(row for row in rows if row["bucket"] == "math")
    assert float(math["regret_rate"]) == 0.03
    assert float(math["low"]) == 0.010255
    assert int(math["pending"]) == 5


def test_regret_report_without_shadows_is_empty_with_a_csv_header() -> None:
    make_goal()
    client = _key_client()
    body = client.get(reverse("report-regret")).json()
    assert body["totals"]["sampled"] == 0
    assert body["totals"]["regret_rate"] is None
    assert body["totals"]["low"] is None
    assert body["rows"] == []
    header = client.get(reverse("report-regret"), {"format": "csv"}).content.decode()
    assert header.splitlines() == [",".join(body["columns"])]


def test_regret_report_honours_a_keys_goal_restriction(goal_with_shadows) -> None:
    other = make_goal(slug="other")
    RegretRollup.objects.create(
        goal=other, path=other.paths.first(), hour=_hour(), sampled=7, judged=7, regret=7
    )
    client = _key_client(goals=(other,))
    body = client.get(reverse("report-regret")).json()
    assert body["totals"]["sampled"] == 7
    assert {row["goal"] for row in body["rows"]} == {"other"}
    assert client.get(reverse("report-regret"), {"goal": goal_with_shadows.slug}).status_code == 403
    assert client.get(reverse("report-regret"), {"goal": "nope"}).status_code == 404
    everything = _key_client().get(reverse("report-regret")).json()
    assert everything["totals"]["sampled"] == 127
    one = _key_client().get(reverse("report-regret"), {"goal": "other"}).json()
    assert one["goal"] == "other"
    assert one["totals"]["sampled"] == 7


def test_regret_report_needs_the_read_scope_and_checks_its_parameters(viewer) -> None:
    assert _key_client(("completions",)).get(reverse("report-regret")).status_code == 403
    assert Client().get(reverse("report-regret")).status_code in (401, 403)
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse("report-regret")).status_code == 200
    bad = _key_client().get(reverse("report-regret"), {"granularity": "week"})
    assert bad.status_code == 400
    assert "granularity" in bad.json()


def test_shadow_comparisons_list_both_answers_verdict_order_and_costs() -> None:
    goal = make_goal()
    comparison = make_comparison(goal=goal, served="spam", baseline="not spam")
    make_comparison(goal=goal, state=ShadowComparison.State.DROPPED, baseline="")
    response = _key_client().get(reverse("shadow-comparison-list"), {"goal": goal.slug})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    newest, oldest = body["results"]
    assert newest["state"] == "dropped"
    assert newest["verdict"] == ""
    assert newest["baseline_shown_first"] is None
    assert oldest == {
        "id": comparison.id,
        "request_id": comparison.decision.request_id,
        "goal": goal.slug,
        "bucket": "",
        "state": "judged",
        "served_path": "gpt-4o-mini",
        "served_model": "gpt-4o-mini",
        "baseline_path": "gpt-4o",
        "baseline_model": "gpt-4o",
        "prompt": "user: hello",
        "served_answer": "spam",
        "baseline_answer": "not spam",
        "judge_mode": "llm",
        "verdict": "better",
        "score_delta": 0.5,
        "reason": "the baseline names the right label",
        "baseline_shown_first": True,
        "judge_attempts": 0,
        "served_cost": "0.00010000",
        "shadow_cost": "0.00200000",
        "judge_cost": "0.00050000",
        "shadow_tokens_in": 0,
        "shadow_tokens_out": 0,
        "error": "",
        "created_at": oldest["created_at"],
        "finished_at": None,
    }


def test_shadow_comparisons_are_paged_and_filtered_by_state() -> None:
    goal = make_goal()
    for _ in range(3):
        make_comparison(goal=goal)
    make_comparison(goal=goal, state=ShadowComparison.State.SHADOW_FAILED)
    client = _key_client()
    page = client.get(reverse("shadow-comparison-list"), {"limit": 2}).json()
    assert page["count"] == 4
    assert len(page["results"]) == 2
    assert page["next"]
    rest = client.get(reverse("shadow-comparison-list"), {"limit": 2, "offset": 2}).json()
    ids = [row["id"] for row in page["results"] + rest["results"]]
    assert len(set(ids)) == 4
    failed = client.get(reverse("shadow-comparison-list"), {"state": "shadow_failed"}).json()
    assert [row["state"] for row in failed["results"]] == ["shadow_failed"]
    bad = client.get(reverse("shadow-comparison-list"), {"state": "lost"})
    assert bad.status_code == 400
    assert "state" in bad.json()
    assert client.get(reverse("shadow-comparison-list"), {"limit": "abc"}).status_code == 400


def test_shadow_comparisons_honour_a_keys_goal_restriction() -> None:
    mine = make_goal(slug="mine")
    theirs = make_goal(slug="theirs")
    make_comparison(goal=mine, baseline="mine-answer")
    make_comparison(goal=theirs, baseline="THEIR-SECRET-ANSWER")
    client = _key_client(goals=(mine,))
    response = client.get(reverse("shadow-comparison-list"))
    assert [row["goal"] for row in response.json()["results"]] == ["mine"]
    assert "THEIR-SECRET-ANSWER" not in response.content.decode()
    refused = client.get(reverse("shadow-comparison-list"), {"goal": "theirs"})
    assert refused.status_code == 403
    assert "THEIR-SECRET-ANSWER" not in refused.content.decode()
    assert client.get(reverse("shadow-comparison-list"), {"goal": "nope"}).status_code == 404
    assert _key_client(("completions",)).get(reverse("shadow-comparison-list")).status_code == 403


def test_answers_with_data_match_the_served_schema(live: str, goal_with_shadows) -> None:
    """Both operations' 2xx bodies, with real rows, validate against /api/schema/ (the fuzz in
    test_schema_fuzz.py only sees empty lists)."""
    make_comparison(goal=goal_with_shadows)
    make_comparison(goal=goal_with_shadows, state=ShadowComparison.State.PENDING)
    schema = schemathesis.openapi.from_dict(served_schema())
    _, raw = make_api_key(scopes=("read",))
    headers = {"Authorization": f"Bearer {raw}"}
    cases = [
        schema["/api/v1/reports/regret"]["GET"].Case(query={"granularity": "hour"}),
        schema["/api/v1/reports/regret"]["GET"].Case(query={"format": "csv"}),
        schema["/api/v1/shadow-comparisons"]["GET"].Case(query={"goal": goal_with_shadows.slug}),
    ]
    for case in cases:
        response = case.call_and_validate(
            base_url=live, headers=headers, excluded_checks=EXCLUDED_CHECKS
        )
        assert response.status_code == 200, response.text[:300]
    listed = httpx.get(f"{live}/api/v1/shadow-comparisons", headers=headers).json()
    assert listed["count"] == 2
