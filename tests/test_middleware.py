"""Static files under ASGI through the async-capable WhiteNoise wrapper."""

from __future__ import annotations

import httpx


def test_static_files_are_served_and_other_paths_pass_through(live: str) -> None:
    script = httpx.get(f"{live}/static/vendor/htmx.min.js")
    plotly = httpx.get(f"{live}/static/vendor/plotly/plotly.min.js")
    missing = httpx.get(f"{live}/static/vendor/nope.js")
    health = httpx.get(f"{live}/healthz")

    assert script.status_code == 200
    assert "htmx" in script.text[:2000]
    assert plotly.status_code == 200
    assert len(plotly.content) > 1_000_000
    assert missing.status_code == 404
    assert health.json() == {"status": "ok", "database": "ok"}
