"""The Content-Security-Policy in a real browser: every page works and nothing is blocked."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, expect

from routerapp.services.governance import change_request_propose
from tests.builders import make_api_key, make_goal, make_user

pytestmark = pytest.mark.browser

# Installed before any page script: collects what the policy blocked, as the page sees it.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} ${event.sample}` +
      ` at ${event.sourceFile}:${event.lineNumber}:${event.columnNumber}`
  );
});
"""


def _sign_in(page: Page, live: str, username: str) -> None:
    page.goto(f"{live}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("button[type=submit]")


def test_pages_run_under_the_policy_without_a_violation_or_a_foreign_request(
    page: Page, live: str
) -> None:
    goal = make_goal(slug="csp_goal")
    _, key = make_api_key()
    with httpx.Client(base_url=live, headers={"Authorization": f"Bearer {key}"}) as api:
        for n in range(4):  # traffic with outcomes, so every chart has something to draw
            reply = api.post(
                "/v1/chat/completions",
                json={"model": "goal/csp_goal", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
            outcome = "success" if n % 2 else "failure"
            request_id = reply.headers["X-Router-Request-Id"]
            api.post("/api/v1/outcomes", json={"request_id": request_id, "outcome": outcome})
    root = make_user(username="root", superuser=True)
    console: list[str] = []
    foreign: list[str] = []
    local = urlsplit(live).netloc

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(message.text)

    def on_request(request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https") and parts.netloc != local:
            foreign.append(request.url)

    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", on_console)
    page.on("request", on_request)

    _sign_in(page, live, "root")
    visited: list[tuple[str, str]] = []

    def visit(url: str, ready: str) -> None:
        page.goto(f"{live}{url}")
        expect(page.locator(ready).first).to_be_visible(timeout=15_000)
        visited.append((url, ready))
        violations = page.evaluate("window.__cspViolations")
        assert violations == [], f"{url}: {violations}"

    # Plotly charts (drawn by charts.js), htmx polling and htmx form checks, Swagger UI, admin.
    visit("/", "[data-figure][data-rendered]")
    visit(f"/goals/{goal.slug}", "[data-testid=posterior-chart].js-plotly-plot")
    # The live part is replaced by htmx every few seconds: its chart data must come along.
    page.evaluate("document.querySelector('[data-testid=posterior-chart]').dataset.old = '1'")
    refreshed = page.locator("[data-testid=posterior-chart][data-rendered]:not([data-old])")
    expect(refreshed).to_have_count(1, timeout=15_000)
    visit("/savings", "[data-figure][data-rendered]")
    visit("/decisions", "[data-testid=decisions]")
    visit("/configuration", "h1")
    visit("/configuration/goals/new", "#success-when-check")
    page.fill("#id_success_when", "response.choices[0] ==")
    expect(page.get_by_test_id("expression-error")).to_contain_text("line 1")
    visit("/playground", "#id_prompt")
    visit("/api-keys", "h1")
    # Governance: the queue, a request's projection charts, history, the rule editor's script
    # and htmx test box, the audit log.
    change_request = change_request_propose(
        goal=goal, changes={"quality_target": 0.9}, reason="csp", actor=root
    )
    visit("/changes", "[data-testid=change-requests]")
    visit(f"/changes/{change_request.pk}", "[data-testid=projection-chart].js-plotly-plot")
    visit(f"/goals/{goal.slug}/history", "[data-testid=versions]")
    visit(f"/goals/{goal.slug}/rules", "[data-testid=rule-editor]")
    page.get_by_test_id("load-template").click()
    expect(page.get_by_test_id("rule-row")).to_have_count(3)
    page.get_by_test_id("run-rule-test").click()
    expect(page.get_by_test_id("rule-test-outcome")).to_be_visible()
    visit("/audit", "[data-testid=audit-log]")
    visit("/api/docs/", ".swagger-ui .info .title")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    visit("/admin/", "#site-name")
    page.goto(f"{live}/admin/auth/user/")
    expect(page.locator("#result_list")).to_be_visible()

    assert page.evaluate("window.__cspViolations") == []
    assert [text for text in console if "Content Security Policy" in text] == []
    assert foreign == []
    assert len(visited) == 15
