"""The Regret page (view role): figures from RegretRollup rows and ShadowComparison rows inserted
directly, the charts, the paged comparisons with both answers escaped, and the alert banner on
every page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from dashboard import charts
from routerapp.models import Goal
from tests.api.test_regret_api import make_comparison
from tests.builders import make_goal
from tests.selectors.test_regret import make_regret_rollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def goal_with_shadows() -> Goal:
    goal = make_goal(regret_threshold=0.03)
    mini = goal.paths.order_by("id").first()
    make_regret_rollup(
        path=mini,
        bucket="math",
        sampled=60,
        judged=50,
        regret=10,
        same=38,
        worse=2,
        unjudgeable=3,
        shadow_failed=2,
        over_budget=1,
        dropped=1,
        first_shown_wins=7,
        decisive=12,
        shadow_spend=Decimal("0.125"),
        judge_spend=Decimal("0.0375"),
    )
    make_regret_rollup(path=mini, bucket="chat", hours_ago=2, sampled=40, judged=40, same=40)
    return goal


def test_page_shows_rate_interval_breakdowns_funnel_spend_and_charts(
    viewer, client_for, goal_with_shadows
) -> None:
    make_comparison(goal=goal_with_shadows, served="cheap says A", baseline="strong says B")
    response = client_for(viewer).get(reverse("dashboard:regret"), {"window": "24h"})
    assert response.status_code == 200
    body = response.content.decode()
    report = response.context["report"]
    assert report.totals.sampled == 100
    assert report.totals.regret_rate == pytest.approx(10 / 90)
    assert 'data-stat="regret-rate">11.1%' in body
    assert 'id="fig-regret-rate"' in body
    assert 'id="fig-regret-funnel"' in body
    assert 'data-testid="regret-by-path"' in body
    assert "(no bucket)" not in body
    assert "<td>math</td>" in body
    assert "<td>chat</td>" in body
    assert 'data-funnel="pending">3<' in body
    assert 'data-funnel="judged">90<' in body
    assert "$0.1250" in body  # shadow spend
    assert "$0.0375" in body  # judge spend
    assert "cheap says A" in body
    assert "strong says B" in body
    assert "the baseline names the right label" in body
    assert "baseline shown first" in body
    export = response.context["export_url"]
    assert export.startswith(reverse("report-regret") + "?")
    assert "format=csv" in export


def test_page_without_shadows_has_an_empty_state(viewer, client_for) -> None:
    make_goal()
    response = client_for(viewer).get(reverse("dashboard:regret"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="regret-empty"' in body
    assert "No comparisons in this window." in body
    assert 'id="fig-regret-rate"' not in body


def test_page_filters_by_goal(viewer, client_for, goal_with_shadows) -> None:
    other = make_goal(slug="other")
    make_regret_rollup(path=other.paths.first(), sampled=5, judged=5, regret=5)
    make_comparison(goal=other, baseline="OTHER-GOAL-ANSWER")
    client = client_for(viewer)
    mine = client.get(reverse("dashboard:regret"), {"goal": goal_with_shadows.slug})
    assert mine.context["report"].totals.sampled == 100
    assert "OTHER-GOAL-ANSWER" not in mine.content.decode()
    theirs = client.get(reverse("dashboard:regret"), {"goal": "other"})
    assert theirs.context["report"].totals.sampled == 5
    assert "OTHER-GOAL-ANSWER" in theirs.content.decode()


def test_answers_and_reasons_are_escaped(viewer, client_for) -> None:
    goal = make_goal()
    make_comparison(
        goal=goal,
        served="<script>alert('served')</script>",
        baseline='<img src=x onerror="alert(1)">',
        reason="<b>bold</b> reason",
    )
    body = client_for(viewer).get(reverse("dashboard:regret")).content.decode()
    assert "<script>alert(" not in body
    assert "&lt;script&gt;alert(&#x27;served&#x27;)&lt;/script&gt;" in body
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body
    assert "<b>bold</b>" not in body


def test_comparisons_are_paged(viewer, client_for) -> None:
    goal = make_goal()
    for n in range(23):
        make_comparison(goal=goal, baseline=f"answer-{n:02d}")
    client = client_for(viewer)
    first = client.get(reverse("dashboard:regret"), {"goal": goal.slug})
    assert len(first.context["comparisons"].object_list) == 20
    assert "answer-22" in first.content.decode()  # newest first
    assert 'data-testid="older"' in first.content.decode()
    second = client.get(reverse("dashboard:regret"), {"goal": goal.slug, "page": 2})
    assert len(second.context["comparisons"].object_list) == 3
    assert "answer-00" in second.content.decode()
    assert client.get(reverse("dashboard:regret"), {"page": "zzz"}).status_code == 200


def test_bad_filters_fall_back_instead_of_failing(viewer, client_for) -> None:
    client = client_for(viewer)
    for params in (
        {"goal": "no such goal"},
        {"granularity": "week"},
        {"window": "custom", "from": "not a date"},
    ):
        assert client.get(reverse("dashboard:regret"), params).status_code == 200


def test_page_needs_a_sign_in_and_the_view_role(client_for, django_user_model) -> None:
    response = client_for(None).get(reverse("dashboard:regret"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    nobody = django_user_model.objects.create_user(username="nobody", password="x")
    assert client_for(nobody).get(reverse("dashboard:regret")).status_code == 403


def test_an_active_alert_is_a_banner_on_every_page(viewer, client_for) -> None:
    goal = make_goal(slug="loud", regret_threshold=0.03)
    make_goal(slug="quiet")
    Goal.objects.filter(pk=goal.pk).update(
        regret_alert={"active": True, "rate": 0.12, "low": 0.061, "high": 0.2, "judged": 100}
    )
    client = client_for(viewer)
    for name in ("overview", "savings", "decisions", "configuration", "regret"):
        body = client.get(reverse(f"dashboard:{name}")).content.decode()
        assert body.count('data-testid="regret-alert"') == 1, name
        assert "Regret alert on <strong>loud</strong>" in body
        assert "6.1%" in body
        assert f"{reverse('dashboard:regret')}?goal=loud" in body
    Goal.objects.filter(pk=goal.pk).update(regret_alert={"active": False})
    body = client.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="regret-alert"' not in body


def test_nav_links_the_regret_page(viewer, client_for) -> None:
    body = client_for(viewer).get(reverse("dashboard:overview")).content.decode()
    assert f'href="{reverse("dashboard:regret")}"' in body


def test_regret_chart_has_band_rate_and_threshold_line() -> None:
    rows: list[dict[str, Any]] = [
        {
            "period": "2025-01-01",
            "goal": "g",
            "judged": 10,
            "regret_rate": 0.1,
            "low": 0.02,
            "high": 0.4,
        },
        {
            "period": "2025-01-02",
            "goal": "g",
            "judged": 0,
            "regret_rate": None,
            "low": None,
            "high": None,
        },
        {
            "period": "2025-01-03",
            "goal": "g",
            "judged": 20,
            "regret_rate": 0.05,
            "low": 0.01,
            "high": 0.24,
        },
    ]
    figure = charts.regret_rate_figure(rows, thresholds={"g": 0.03})
    band, rate = figure["data"]
    assert band["fill"] == "toself"
    assert band["x"] == ["2025-01-01", "2025-01-03", "2025-01-03", "2025-01-01"]
    assert band["y"] == [0.4, 0.24, 0.01, 0.02]
    assert rate["x"] == ["2025-01-01", "2025-01-03"]  # the unjudged day is a gap
    assert rate["y"] == [0.1, 0.05]
    (line,) = figure["layout"]["shapes"]
    assert (line["y0"], line["y1"], line["line"]["dash"]) == (0.03, 0.03, "dash")
    assert figure["layout"]["yaxis"]["range"][1] == pytest.approx(0.4 * 1.15)


def test_funnel_chart_keeps_the_funnel_order() -> None:
    funnel = {
        "judged": 5,
        "unjudgeable": 1,
        "shadow_failed": 0,
        "over_budget": 2,
        "dropped": 0,
        "pending": 3,
    }
    (bars,) = charts.regret_funnel_figure(funnel)["data"]
    assert bars["x"] == [5, 1, 0, 2, 0, 3]
    assert bars["y"][2] == "shadow failed"
