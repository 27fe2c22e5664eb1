"""The operator's day in a real browser: sign in, configure, try, watch it learn, export."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from routerapp.models import RoutingDecision
from tests.builders import PRICES, make_api_key, make_price, make_provider, make_user

pytestmark = pytest.mark.browser

GOAL = "browser_goal"


def _sign_in(page: Page, live: str, username: str) -> None:
    page.goto(f"{live}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")


def _add_path(page: Page, live: str, *, name: str, model: str, weight: str) -> None:
    page.goto(f"{live}/configuration/goals/{GOAL}/paths/new")
    page.fill("#id_name", name)
    page.select_option("#id_provider", label="simulator")
    page.fill("#id_model", model)
    page.fill("#id_weight", weight)
    page.click("text=Save path")
    expect(page.locator(".message")).to_contain_text(f"Path {name} added")


def test_operator_configures_tries_watches_and_exports(
    page: Page, live: str, screenshot_dir: Path
) -> None:
    provider = make_provider()
    for model, (price_in, price_out) in PRICES.items():
        make_price(provider=provider, model=model, price_in=price_in, price_out=price_out)
    make_user(username="ada", role="admin")
    page.set_viewport_size({"width": 1280, "height": 900})

    _sign_in(page, live, "ada")
    expect(page.locator(".banner-simulator")).to_be_visible()
    expect(page.locator(".empty-state")).to_contain_text("No goals yet")

    # A goal: the success condition is checked live, with the error position.
    page.goto(f"{live}/configuration/goals/new")
    page.fill("#id_slug", GOAL)
    page.fill("#id_success_when", "response.choices[0] ==")
    expect(page.get_by_test_id("expression-error")).to_contain_text("line 1")
    page.fill("#id_success_when", "")  # learn from reported outcomes only
    expect(page.locator("#success-when-check")).to_contain_text("No condition")
    page.click("text=Save goal")
    expect(page.locator(".message")).to_contain_text(f"Goal {GOAL} created")
    _add_path(page, live, name="mini", model="gpt-4o-mini", weight="0.7")
    _add_path(page, live, name="big", model="gpt-4o", weight="0.3")
    page.screenshot(path=screenshot_dir / "configuration.png", full_page=True)

    # The playground routes a prompt for real and explains the decision.
    page.goto(f"{live}/playground")
    page.select_option("#id_goal", GOAL)
    page.fill("#id_prompt", "Is this spam? <b>WIN A FREE PRIZE</b>")
    page.click("button:has-text('Send')")
    expect(page.get_by_test_id("playground-answer")).not_to_be_empty(timeout=30_000)
    expect(page.get_by_test_id("decision-explanation")).to_contain_text("Sample of every path")
    expect(page.get_by_test_id("prompt")).to_contain_text("<b>WIN A FREE PRIZE</b>")  # as text
    page.screenshot(path=screenshot_dir / "playground.png", full_page=True)
    page.get_by_test_id("decision-link").click()
    expect(page.locator("h1")).to_contain_text("Decision")
    page.click("text=Report success")
    expect(page.get_by_test_id("outcome")).to_contain_text("recorded")
    page.screenshot(path=screenshot_dir / "decision_detail.png", full_page=True)

    # The goal page refreshes itself while outcomes arrive through the API.
    page.goto(f"{live}/goals/{GOAL}")
    observations = page.get_by_test_id("observations")
    expect(observations).to_have_text("1")
    expect(page.locator("[data-testid=posterior-chart].js-plotly-plot")).to_have_count(1)
    before = page.locator("#fig-posterior-0").text_content()
    _, raw = make_api_key(scopes=("completions", "outcomes"))
    headers = {"Authorization": f"Bearer {raw}"}
    with httpx.Client(base_url=live, headers=headers, timeout=30) as api:
        for index in range(3):
            reply = api.post(
                "/v1/chat/completions",
                json={
                    "model": f"goal/{GOAL}",
                    "messages": [{"role": "user", "content": f"hi {index}"}],
                },
            )
            assert reply.status_code == 200, reply.text
            request_id = reply.headers["X-Router-Request-Id"]
            outcome = api.post(
                "/api/v1/outcomes", json={"request_id": request_id, "outcome": "failure"}
            )
            assert outcome.status_code == 201, outcome.text
    expect(observations).to_have_text("4", timeout=15_000)  # no reload: htmx polling
    assert page.locator("#fig-posterior-0").text_content() != before
    expect(page.locator("[data-testid=posterior-chart].js-plotly-plot")).to_have_count(1)
    page.screenshot(path=screenshot_dir / "goal_detail.png", full_page=True)

    page.goto(f"{live}/")
    expect(page.locator("[data-stat=requests]")).to_have_text("4")
    page.screenshot(path=screenshot_dir / "overview.png", full_page=True)
    page.goto(f"{live}/decisions")
    expect(page.get_by_test_id("decisions").locator("tbody tr")).to_have_count(4)
    page.screenshot(path=screenshot_dir / "decisions.png", full_page=True)

    # Savings, exported as CSV with the API's numbers.
    page.goto(f"{live}/savings")
    expect(page.locator("#fig-spend-cumulative")).to_have_count(1)
    page.screenshot(path=screenshot_dir / "savings.png", full_page=True)
    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert sum(int(row["requests"]) for row in rows) == RoutingDecision.objects.count() == 4
    assert {row["goal"] for row in rows} == {GOAL}

    page.goto(f"{live}/api-keys")
    page.screenshot(path=screenshot_dir / "api_keys.png", full_page=True)


def test_pages_fit_a_phone_screen(
    page: Page, live: str, screenshot_dir: Path, django_user_model: Any
) -> None:
    make_provider()
    make_user(username="vera", role="viewer")
    page.set_viewport_size({"width": 390, "height": 844})
    _sign_in(page, live, "vera")
    for name, url in (
        ("overview", "/"),
        ("savings", "/savings"),
        ("configuration", "/configuration"),
    ):
        page.goto(f"{live}{url}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} scrolls sideways ({width}px)"
        page.screenshot(path=screenshot_dir / f"{name}_phone.png", full_page=True)
    # The menu collapses behind a toggle; the viewer's menu has no edit entries.
    expect(page.locator(".nav")).to_be_hidden()
    page.click("label.nav-toggle-label")
    expect(page.locator(".nav")).to_be_visible()
    expect(page.locator(".nav")).not_to_contain_text("Playground")
