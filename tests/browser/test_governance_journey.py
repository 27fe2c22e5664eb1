"""Four eyes in a real browser: an operator proposes a routing change, another person approves
it, the goal moves to the next version and the next calls (the openai client over real HTTP,
the simulator upstream) follow it. And the rule editor's script: template, reorder, test box."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from routerapp.models import ChangeRequest, Goal
from tests.builders import make_api_key, make_goal, make_user

pytestmark = pytest.mark.browser

GOAL = "journey_goal"


def _sign_in(page: Page, live: str, username: str) -> None:
    page.goto(f"{live}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")


def _sign_out(page: Page) -> None:
    page.click("button:has-text('Sign out')")
    expect(page.locator("#id_username")).to_be_visible()


def _served_paths(live: str, key: str, calls: int) -> list[str]:
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0, timeout=30)
    served = []
    for n in range(calls):
        raw = client.chat.completions.with_raw_response.create(
            model=f"goal/{GOAL}", messages=[{"role": "user", "content": f"Is this spam? #{n}"}]
        )
        served.append(raw.headers["X-Router-Path"])
    return served


def test_operator_proposes_approver_approves_and_the_next_calls_follow(
    page: Page, live: str, screenshot_dir: Path
) -> None:
    goal = make_goal(slug=GOAL)  # paths gpt-4o-mini and gpt-4o (the baseline)
    strong = goal.paths.get(name="gpt-4o")
    make_user(username="otto", role="operator")
    make_user(username="abby", role="approver")
    _, key = make_api_key(scopes=("completions",))
    page.set_viewport_size({"width": 1280, "height": 900})

    # Some traffic first, so the change can be projected on logged calls.
    _served_paths(live, key, 6)
    # The operator proposes: gpt-4o's weight down and the path off, with a reason.
    _sign_in(page, live, "otto")
    page.goto(f"{live}/configuration/paths/{strong.pk}")
    page.fill("#id_weight", "0.5")
    page.uncheck("#id_enabled")
    page.click("button:has-text('Save / propose change')")
    expect(page.locator(".has-error")).to_contain_text("Give a reason")  # refused, nothing sent
    assert not ChangeRequest.objects.exists()
    page.uncheck("#id_enabled")
    page.fill("#id_weight", "0.5")
    page.fill("#id_reason", "gpt-4o-mini is good enough for spam checks")
    page.click("button:has-text('Save / propose change')")
    expect(page.locator("h1")).to_contain_text("Change request #")
    expect(page.get_by_test_id("cr-status")).to_have_text("Pending")
    expect(page.get_by_test_id("cr-diff")).to_contain_text("paths.gpt-4o.enabled")
    expect(page.get_by_test_id("cr-diff")).to_contain_text("paths.gpt-4o.weight")
    expect(page.get_by_test_id("approve")).to_have_count(0)  # not for the author
    expect(page.get_by_test_id("withdraw")).to_be_visible()
    strong.refresh_from_db()
    assert strong.enabled  # nothing applied yet
    _sign_out(page)

    # The approver finds it in the queue (counted in the navigation) and approves it.
    _sign_in(page, live, "abby")
    expect(page.get_by_test_id("pending-count")).to_have_text("1")
    page.get_by_test_id("nav-change-requests").click()
    page.get_by_test_id("change-requests").locator("a[href^='/changes/']").first.click()
    expect(page.get_by_test_id("projection")).to_contain_text("Replayed the goal's last 6")
    expect(page.locator("[data-testid=projection-chart].js-plotly-plot")).to_have_count(2)
    page.fill("#id_approve_comment", "agreed")
    page.screenshot(path=screenshot_dir / "change_request.png", full_page=True)
    page.get_by_test_id("approve").click()
    expect(page.locator(".message")).to_contain_text(f"{GOAL} is now at version 2")
    expect(page.get_by_test_id("cr-status")).to_have_text("Applied")
    approved_at = time.monotonic()

    page.goto(f"{live}/goals/{GOAL}")
    expect(page.get_by_test_id("goal-version")).to_have_text("2")
    page.goto(f"{live}/goals/{GOAL}/history")
    expect(page.get_by_test_id("versions").locator("tbody tr")).to_have_count(2)
    page.screenshot(path=screenshot_dir / "goal_history.png", full_page=True)

    # Every call that starts after the approval plus the catalog cache's staleness follows it.
    time.sleep(max(0.0, settings.ROUTING_CACHE_SECONDS + 0.2 - (time.monotonic() - approved_at)))
    assert _served_paths(live, key, 8) == ["gpt-4o-mini"] * 8
    goal.refresh_from_db()
    assert goal.version == 2


def test_the_rule_editor_loads_the_template_reorders_tests_and_proposes(
    page: Page, live: str, screenshot_dir: Path
) -> None:
    make_goal(slug=GOAL)
    make_user(username="otto", role="operator")
    page.set_viewport_size({"width": 1280, "height": 900})
    _sign_in(page, live, "otto")
    page.goto(f"{live}/goals/{GOAL}/rules")
    rows = page.get_by_test_id("rule-row")
    expect(rows).to_have_count(0)

    page.get_by_test_id("load-template").click()
    expect(rows).to_have_count(3)
    names = [rows.nth(i).locator("[data-rule-field=name]").input_value() for i in range(3)]
    assert names[0] == "long-or-reasoning-to-strong"
    # Move the cheap rule to the top, remove the last one, add a bucket rule.
    rows.nth(1).locator("[data-rule-move='-1']").click()
    rows.nth(2).locator("[data-rule-remove]").click()
    page.get_by_test_id("add-rule").click()
    expect(rows).to_have_count(3)
    last = rows.nth(2)
    last.locator("[data-rule-field=name]").fill("json-bucket")
    last.locator("[data-rule-field=condition]").fill("has_json_request")
    last.locator("[data-rule-field=action]").select_option("bucket")
    last.locator("[data-rule-field=bucket]").fill("json")

    # The test box runs what is on the screen (not saved) on a sample request.
    page.fill(
        "#id_test_messages",
        json.dumps([{"role": "user", "content": "Classify this ticket: refund please"}]),
    )
    page.fill("#id_test_metadata", '{"task_type": "classification"}')
    page.get_by_test_id("run-rule-test").click()
    outcome = page.get_by_test_id("rule-test-outcome")
    expect(outcome).to_contain_text("Pinned to gpt-4o-mini")
    # A broken condition on the screen is reported with its position, nothing stored.
    last.locator("[data-rule-field=condition]").fill("has_json_request and")
    page.get_by_test_id("run-rule-test").click()
    expect(page.get_by_test_id("rule-test-error")).to_contain_text("json-bucket")
    last.locator("[data-rule-field=condition]").fill("has_json_request")
    page.screenshot(path=screenshot_dir / "rule_editor.png", full_page=True)

    page.fill("#id_reason", "the article's router, cheap rule first")
    page.get_by_test_id("propose-rules").click()
    expect(page.get_by_test_id("cr-status")).to_have_text("Pending")
    proposed: list[dict[str, Any]] = ChangeRequest.objects.get().snapshot["rules"]
    assert [rule["name"] for rule in proposed] == [
        "short-extraction-to-cheap",
        "long-or-reasoning-to-strong",
        "json-bucket",
    ]
    assert proposed[2]["bucket"] == "json"
    assert Goal.objects.get(slug=GOAL).rules == []  # live rules untouched until approved
