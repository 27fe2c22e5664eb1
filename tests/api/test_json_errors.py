"""/v1 and /api/v1 answer JSON errors in every mode: no HTML debug page, no stack trace, no URL
conf, DEBUG on or off. Over real HTTP against the ASGI server."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.api.raising_urls import PLANTED

pytestmark = pytest.mark.urls("tests.api.raising_urls")

LEAKS = ("Traceback", "TOKEN-IN-TRACEBACK", "RuntimeError", "raising_urls", "<html", "<!DOCTYPE")


def assert_clean(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    for leak in LEAKS:
        assert leak not in response.text


@pytest.mark.parametrize("debug", [True, False])
def test_a_crash_under_v1_answers_openai_json_and_is_logged(
    live: str, settings: Any, caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    settings.DEBUG = debug
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = httpx.post(f"{live}/v1/crash", json={})

    assert response.status_code == 500
    assert_clean(response)
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert {"message", "param", "code"} <= set(error)
    # The details went to the server log instead.
    logged = [r for r in caplog.records if r.exc_info and PLANTED in str(r.exc_info[1])]
    assert logged


@pytest.mark.parametrize("debug", [True, False])
def test_a_crash_under_api_v1_answers_drf_json(live: str, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    response = httpx.get(f"{live}/api/v1/crash", headers={"Accept": "text/html"})

    assert response.status_code == 500
    assert_clean(response)
    assert set(response.json()) == {"detail"}


def test_unknown_urls_and_refused_methods_answer_json_under_debug(live: str, settings: Any) -> None:
    settings.DEBUG = True
    unknown_api = httpx.get(f"{live}/api/v1/no-such-thing")
    unknown_v1 = httpx.post(f"{live}/v1/no-such-thing", json={})
    wrong_method = httpx.get(f"{live}/v1/chat/completions")

    assert (unknown_api.status_code, unknown_v1.status_code) == (404, 404)
    assert wrong_method.status_code == 405
    for response in (unknown_api, unknown_v1, wrong_method):
        assert_clean(response)
        assert "urlpatterns" not in response.text
        assert "Using the URLconf" not in response.text
    assert set(unknown_api.json()) == {"detail"}
    assert unknown_v1.json()["error"]["type"] == "invalid_request_error"
    assert "POST" in wrong_method.headers["Allow"]


def test_pages_outside_the_api_keep_their_html(live: str, settings: Any) -> None:
    settings.DEBUG = False
    response = httpx.get(f"{live}/login/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
