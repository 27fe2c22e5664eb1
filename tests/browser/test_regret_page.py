"""The Regret page in a real browser: the regret chart draws (rate, interval band, threshold
line) under the Content-Security-Policy with no violation, an answer holding a script stays
text, and the alert banner links to the page."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from routerapp.models import Goal, ShadowComparison
from tests.api.test_regret_api import make_comparison
from tests.browser.test_content_security_policy import RECORD_VIOLATIONS, _sign_in
from tests.builders import make_goal, make_user
from tests.selectors.test_regret import make_regret_rollup

pytestmark = pytest.mark.browser


def test_regret_page_draws_its_charts_under_the_policy(
    page: Page, live: str, screenshot_dir: Path
) -> None:
    goal = make_goal(slug="regret_goal", regret_threshold=0.03)
    mini = goal.paths.order_by("id").first()
    for hours_ago, regret in ((0, 6), (1, 2), (2, 0)):
        make_regret_rollup(
            path=mini,
            bucket="math",
            hours_ago=hours_ago,
            sampled=45,
            judged=40,
            regret=regret,
            same=40 - regret,
            unjudgeable=2,
            dropped=1,
            shadow_spend=Decimal("0.02"),
            judge_spend=Decimal("0.004"),
        )
    make_comparison(
        goal=goal,
        served="<script>alert('served')</script>",
        baseline="<img src=x onerror=\"alert('baseline')\">",
    )
    make_comparison(goal=goal, state=ShadowComparison.State.SHADOW_FAILED, baseline="")
    Goal.objects.filter(pk=goal.pk).update(
        regret_alert={"active": True, "rate": 0.15, "low": 0.07, "high": 0.29, "judged": 40}
    )
    make_user(username="root", superuser=True)
    console: list[str] = []
    dialogs: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", on_console)
    page.on("dialog", on_dialog)
    _sign_in(page, live, "root")

    # The banner is on every page and leads to the goal's regret page.
    banner = page.get_by_test_id("regret-alert")
    expect(banner).to_contain_text("regret_goal")
    banner.get_by_role("link").click()
    page.wait_for_url("**/regret?goal=regret_goal")
    page.goto(f"{live}/regret?goal=regret_goal&window=24h&granularity=hour")

    rate_chart = page.locator("[data-figure=fig-regret-rate][data-rendered].js-plotly-plot")
    expect(rate_chart).to_be_visible(timeout=15_000)
    expect(page.locator("[data-figure=fig-regret-funnel][data-rendered]")).to_be_visible()
    # One threshold line (a layout shape), the band and the rate trace were drawn.
    expect(rate_chart.locator(".shapelayer path")).to_have_count(1)
    expect(rate_chart.locator(".scatterlayer .trace")).to_have_count(2)
    expect(rate_chart.locator(".scatterlayer .points path")).to_have_count(3)
    expect(rate_chart).to_contain_text("threshold 3.0%")

    comparisons = page.get_by_test_id("comparisons")
    expect(comparisons).to_contain_text("<script>alert('served')</script>")
    expect(comparisons).to_contain_text("<img src=x onerror=")
    expect(comparisons.locator("img")).to_have_count(0)
    expect(page.get_by_test_id("regret-by-bucket")).to_contain_text("math")
    page.screenshot(path=screenshot_dir / "regret.png", full_page=True)

    assert dialogs == []
    assert page.evaluate("window.__cspViolations") == []
    assert [text for text in console if "Content Security Policy" in text] == []
