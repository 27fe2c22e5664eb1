from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard import views
from tests.builders import make_goal
from tests.dashboard.conftest import record_decision

pytestmark = pytest.mark.django_db


def test_decision_log_lists_and_filters(viewer, client_for, traffic) -> None:
    goal = make_goal()
    traffic(goal, n=6)
    client = client_for(viewer)
    page = client.get(reverse("dashboard:decisions")).context["page"]
    assert len(page.rows) == 6
    assert page.older is None
    assert page.newer is None
    failures = client.get(reverse("dashboard:decisions"), {"outcome": "failure"}).context["page"]
    assert len(failures.rows) == 2
    by_path = client.get(reverse("dashboard:decisions"), {"path": "gpt-4o"}).context["page"]
    assert {row["path__name"] for row in by_path.rows} == {"gpt-4o"}
    body = client.get(reverse("dashboard:decisions"), {"reason": "rule"}).content.decode()
    assert "No decisions match" in body


def test_decision_log_pages_with_newer_and_older_cursors(viewer, client_for, monkeypatch) -> None:
    monkeypatch.setattr(views, "DECISIONS_PER_PAGE", 2)
    goal = make_goal()
    path = goal.paths.first()
    now = timezone.now()
    made = [record_decision(path=path, at=now - timedelta(minutes=i)) for i in range(5)]
    client = client_for(viewer)
    first = client.get(reverse("dashboard:decisions")).context["page"]
    assert [row["request_id"] for row in first.rows] == [d.request_id for d in made[:2]]
    second = client.get(reverse("dashboard:decisions"), {"older": first.older}).context["page"]
    assert [row["request_id"] for row in second.rows] == [d.request_id for d in made[2:4]]
    back = client.get(reverse("dashboard:decisions"), {"newer": second.newer}).context["page"]
    assert [row["request_id"] for row in back.rows] == [d.request_id for d in made[:2]]
    assert back.newer is None


def test_a_broken_cursor_shows_the_first_page(viewer, client_for, traffic) -> None:
    traffic(make_goal(), n=2)
    page = (
        client_for(viewer).get(reverse("dashboard:decisions"), {"older": "!!bad"}).context["page"]
    )
    assert len(page.rows) == 2


def test_decision_page_explains_and_escapes_user_text(viewer, client_for) -> None:
    goal = make_goal()
    decision = record_decision(
        path=goal.paths.first(),
        prompt="user: <script>alert(1)</script>",
        response="<img src=x onerror=alert(2)>",
    )
    body = (
        client_for(viewer)
        .get(reverse("dashboard:decision-detail", args=[decision.request_id]))
        .content.decode()
    )
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body
    for text in (
        "Sample of every path",
        "0.900",
        "Attempts and fallbacks",
        "prompt_tokens",
        "success_when",
        "cost_at_quality",
        "Thompson sampling",
    ):
        assert text in body
    # A viewer sees the outcome but not the buttons to change it.
    assert "Report success" not in body


def test_unknown_decision_is_404(viewer, client_for) -> None:
    assert (
        client_for(viewer).get(reverse("dashboard:decision-detail", args=["req_nope"])).status_code
        == 404
    )
