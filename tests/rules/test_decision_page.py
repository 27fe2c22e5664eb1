"""The decision page explains a rule decision: which rule fired, its condition, the features,
the classifier's result and the propensity (escaped like every other value)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from tests.builders import make_decision, make_goal
from tests.dashboard.conftest import client_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_the_page_shows_the_rule_the_classifier_and_the_propensity(
    viewer: Any,
    client_for: Any,  # noqa: F811
) -> None:
    goal = make_goal()
    strong = goal.paths.get(name="gpt-4o")
    decision = make_decision(
        goal=goal,
        path=strong,
        reason="rule",
        propensity=1.0,
        goal_version=3,
        features={"complexity": 7.2, "task_type": "reasoning", "has_tools": False},
        rule_hits=[
            {
                "rule": "long-or-reasoning-to-strong",
                "action": "pin",
                "paths": ["gpt-4o"],
                "bucket": "",
                "condition": "reasoning_cues >= 2 and '<b>' != task_type",
                "effect": "applied",
            },
            {
                "rule": "tier",
                "action": "pin",
                "paths": ["gpt-4o-mini"],
                "bucket": "",
                "condition": "metadata.tier == 'free'",
                "effect": "error",
                "error": "value has no field 'tier' (line 1, column 10)",
            },
        ],
        classifier_label="complex",
        classifier_cost=Decimal("0.00000135"),
        classifier={
            "status": "ok",
            "label": "complex",
            "latency_ms": 12.5,
            "path": "classifier",
            "model": "gpt-4o-mini",
        },
    )

    page = client_for(viewer).get(reverse("dashboard:decision-detail", args=[decision.request_id]))

    body = page.content.decode()
    assert page.status_code == 200
    assert "Rule" in body  # the reason's label
    assert "long-or-reasoning-to-strong" in body
    assert "reasoning_cues &gt;= 2 and &#x27;&lt;b&gt;&#x27; != task_type" in body
    assert "<b>" not in body.split('data-testid="rule-hits"')[1].split("</table>")[0]
    assert "not evaluated: value has no field" in body
    assert 'data-testid="classifier"' in body
    assert "complex" in body
    assert "gpt-4o-mini (classifier)" in body
    assert "1.000" in body  # the propensity
    assert "version 3" in body
    assert "reasoning" in body  # the feature values the condition saw


def test_a_classifier_timeout_reads_as_routed_without_a_label(
    viewer: Any,
    client_for: Any,  # noqa: F811
) -> None:
    goal = make_goal()
    decision = make_decision(
        goal=goal,
        path=goal.paths.first(),
        classifier={
            "status": "timeout",
            "label": "",
            "latency_ms": 300.0,
            "path": "c",
            "model": "m",
        },
    )

    body = (
        client_for(viewer)
        .get(reverse("dashboard:decision-detail", args=[decision.request_id]))
        .content.decode()
    )

    assert "timeout" in body
    assert "routed without a label" in body
    assert "No rule matched." in body
