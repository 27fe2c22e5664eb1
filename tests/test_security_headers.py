"""Content-Security-Policy on every page with no inline script, and /api/docs/ served locally."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.builders import make_goal, make_user

ROOT = Path(__file__).resolve().parent.parent
# An inline event handler attribute (onclick=, onload= ...), which a CSP without
# 'unsafe-inline' would refuse to run.
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)


def policy(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


class Assets(HTMLParser):
    """Collects the scripts (with or without src) and stylesheets of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_styles = 0
        self._script_type: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.sources.append(found["src"] or "")
            else:
                self._script_type = found.get("type") or "text/javascript"
        elif tag == "link" and found.get("href"):
            self.sources.append(found["href"] or "")
        elif tag == "img" and found.get("src"):
            self.sources.append(found["src"] or "")
        elif tag == "style":
            self.inline_styles += 1
        if "style" in found:
            self.inline_styles += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_type = None

    def handle_data(self, data: str) -> None:
        # json_script data blocks are not executed, so the CSP does not apply to them.
        if self._script_type is not None and self._script_type != "application/json":
            self.inline_scripts.append(data)


def assets_of(html: str) -> Assets:
    parser = Assets()
    parser.feed(html)
    return parser


@pytest.fixture
def signed_in_admin(db: None) -> Client:
    client = Client()
    client.force_login(make_user(username="ada", role="admin"))
    return client


def page_urls() -> list[str]:
    return [
        reverse("dashboard:overview"),
        reverse("dashboard:goal-detail", args=["email_classification"]),
        reverse("dashboard:savings"),
        reverse("dashboard:decisions"),
        reverse("dashboard:configuration"),
        reverse("dashboard:goal-create"),
        reverse("dashboard:playground"),
        reverse("dashboard:api-keys"),
        reverse("api-docs"),
    ]


def anonymous_pages() -> list[Any]:
    return [Client().get(reverse("login")), Client().get(reverse("admin:login"))]


@pytest.mark.django_db
def test_every_page_sends_a_policy_that_allows_only_own_scripts(signed_in_admin: Client) -> None:
    make_goal(slug="email_classification")
    responses = anonymous_pages() + [signed_in_admin.get(url) for url in page_urls()]

    for response in responses:
        assert response.status_code == 200, response.wsgi_request.path
        directives = policy(response)
        assert directives["default-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
        assert directives["object-src"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in directives.get("style-src", [])


@pytest.mark.django_db
def test_pages_have_no_inline_script_or_event_handler(signed_in_admin: Client) -> None:
    make_goal(slug="email_classification")
    pages = anonymous_pages() + [signed_in_admin.get(url) for url in page_urls()]

    for response in pages:
        html = response.content.decode()
        assets = assets_of(html)
        where = response.wsgi_request.path
        assert assets.inline_scripts == [], where
        assert assets.inline_styles == 0, where
        assert not EVENT_HANDLER.search(html), where


def test_templates_have_no_inline_script_or_event_handler() -> None:
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"{template}: inline script {tag}"
        assert not EVENT_HANDLER.search(text), template
        assert not re.search(r"\sstyle\s*=", text), template


@pytest.mark.django_db
def test_api_docs_load_every_asset_from_this_server(signed_in_admin: Client) -> None:
    response = signed_in_admin.get(reverse("api-docs"))
    assets = assets_of(response.content.decode())

    assert len(assets.sources) >= 4  # Swagger UI's css, two bundles, the start-up script
    for source in assets.sources:
        assert source.startswith("/"), f"{source} is not served by routerapp"
        assert not source.startswith("//")
    assert any("drf_spectacular_sidecar/swagger-ui-dist" in src for src in assets.sources)
    for source in assets.sources:
        served = signed_in_admin.get(source)
        assert served.status_code == 200, source
    start_up = next(src for src in assets.sources if "script" in src.split("?", 1)[-1])
    script = signed_in_admin.get(start_up)
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
    assert '"validatorUrl": null' in script.content.decode()
