"""POST /api/v1/goals/{slug}/rules/test: a dry run over HTTP (nothing stored, nothing called)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from routerapp.models import Goal, HourlyRollup, RoutingDecision
from routerapp.rules import rules_check, rules_template
from tests.builders import make_api_key, make_goal

MESSAGES = [{"role": "user", "content": "Extract the date from: invoice of 3 May 2024"}]


@pytest.fixture
def goal(live: str) -> Goal:
    goal = make_goal(slug="tested")
    goal.rules = rules_check(
        rules_template(cheap="gpt-4o-mini", strong="gpt-4o"),
        paths={"gpt-4o-mini": True, "gpt-4o": True},
    )
    goal.save(update_fields=["rules"])
    return goal


def post(live: str, key: str, slug: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{live}/api/v1/goals/{slug}/rules/test",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_live_rules_match_and_the_engine_view_is_returned(live: str, goal: Goal) -> None:
    _, key = make_api_key(scopes=("read",))

    response = post(live, key, "tested", {"messages": MESSAGES})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rules_source"] == "live"
    assert [rule["name"] for rule in body["rules"]] == [
        "long-or-reasoning-to-strong",
        "short-extraction-to-cheap",
        "borderline-to-strong",
    ]
    assert [hit["rule"] for hit in body["matches"]] == ["short-extraction-to-cheap"]
    assert body["result"] == {"pinned": "gpt-4o-mini", "excluded": [], "bucket": ""}
    assert body["features"]["task_type"] == "extraction"
    assert body["features"]["classifier_label"] == ""
    assert body["engine"]["reason"] == "rule"
    assert body["engine"]["choice"] == "gpt-4o-mini"
    assert body["engine"]["order"] == ["gpt-4o-mini", "gpt-4o"]
    assert body["engine"]["probabilities"] == {"gpt-4o-mini": 1.0}
    # A dry run: nothing stored.
    assert not RoutingDecision.objects.exists()
    assert not HourlyRollup.objects.exists()


def test_a_draft_rule_set_is_tested_instead_of_the_live_one(live: str, goal: Goal) -> None:
    _, key = make_api_key(scopes=("read",))
    draft = [
        {
            "name": "free-excluded",
            "condition": "get(metadata, 'tier') == 'free'",
            "action": "exclude",
            "paths": ["gpt-4o"],
        },
        {"name": "by-tier", "condition": "True", "action": "bucket", "bucket": "tier"},
    ]

    response = post(
        live,
        key,
        "tested",
        {"messages": MESSAGES, "metadata": {"tier": "free"}, "rules": draft},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rules_source"] == "draft"
    assert body["result"] == {"pinned": None, "excluded": ["gpt-4o"], "bucket": "tier"}
    assert body["engine"]["order"] == ["gpt-4o-mini"]
    assert body["engine"]["reason"] != "rule"
    assert set(body["engine"]["probabilities"]) == {"gpt-4o-mini"}
    assert body["engine"]["probabilities"]["gpt-4o-mini"] == pytest.approx(1.0)
    goal.refresh_from_db()
    assert goal.rules[0]["name"] == "long-or-reasoning-to-strong"  # the live set is untouched


def test_the_classifier_label_comes_from_the_body(live: str, goal: Goal) -> None:
    _, key = make_api_key(scopes=("read",))

    body = post(live, key, "tested", {"messages": MESSAGES, "classifier_label": "complex"}).json()

    assert body["result"]["pinned"] == "gpt-4o"
    assert body["matches"][0]["rule"] == "long-or-reasoning-to-strong"
    assert "not called" in body["classifier_note"]


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        (
            {
                "messages": MESSAGES,
                "rules": [
                    {"name": "x", "condition": "tokens >", "action": "pin", "paths": ["gpt-4o"]}
                ],
            },
            "rules",
            "rule 1 'x' condition: syntax error",
        ),
        (
            {
                "messages": MESSAGES,
                "rules": [
                    {
                        "name": "x",
                        "condition": "True",
                        "action": "exclude",
                        "paths": ["gpt-4o", "gpt-4o-mini"],
                    }
                ],
            },
            "rules",
            "excludes every enabled path",
        ),
        ({"messages": []}, "messages", ""),
        ({"messages": [{"role": "user"}]}, "messages", "has no content"),
        ({"messages": MESSAGES, "classifier_label": "medium"}, "classifier_label", ""),
        ({"messages": MESSAGES, "rule": []}, "rule", "Unknown field"),
        ({"messages": MESSAGES, "metadata": "vip"}, "metadata", ""),
    ],
)
def test_bad_input_is_a_field_error(
    live: str, goal: Goal, body: dict[str, Any], field: str, text: str
) -> None:
    _, key = make_api_key(scopes=("read",))

    response = post(live, key, "tested", body)

    assert response.status_code == 400, response.text
    assert field in response.json()
    assert text in " ".join(response.json()[field])


def test_a_condition_error_names_its_position(live: str, goal: Goal) -> None:
    _, key = make_api_key(scopes=("read",))
    rules = [
        {"name": "x", "condition": "complexity > 3 and nope", "action": "pin", "paths": ["gpt-4o"]}
    ]

    response = post(live, key, "tested", {"messages": MESSAGES, "rules": rules})

    assert response.status_code == 400
    assert "(line 1, column 20)" in response.json()["rules"][0]


def test_permissions_and_scoping(live: str, goal: Goal) -> None:
    other = make_goal(slug="other-goal")
    _, completions_only = make_api_key(scopes=("completions",))
    _, restricted = make_api_key(scopes=("read",), goals=(other,))

    assert post(live, completions_only, "tested", {"messages": MESSAGES}).status_code == 403
    assert post(live, restricted, "tested", {"messages": MESSAGES}).status_code == 404
    assert post(live, restricted, "other-goal", {"messages": MESSAGES}).status_code == 200
    anonymous = httpx.post(f"{live}/api/v1/goals/tested/rules/test", json={"messages": MESSAGES})
    assert anonymous.status_code in (401, 403)
    _, key = make_api_key(scopes=("read",))
    got = httpx.get(
        f"{live}/api/v1/goals/tested/rules/test", headers={"Authorization": f"Bearer {key}"}
    )
    assert got.status_code == 405


def test_the_endpoint_is_in_the_openapi_schema(live: str) -> None:
    _, key = make_api_key(scopes=("read",))
    schema = httpx.get(
        f"{live}/api/schema/?format=json", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/v1/goals/{slug}/rules/test"]["post"]
    assert "requestBody" in operation
    assert "200" in operation["responses"]
