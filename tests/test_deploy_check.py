"""Production settings come from the environment, and the documented ones pass `check --deploy`."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from pytest_django import Settings

ROOT = Path(__file__).resolve().parent.parent


def documented_environment() -> dict[str, str]:
    """Every variable of .env.example with its documented production value, and a real secret
    in place of the placeholder (as the file asks)."""
    documented = dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    documented["SECRET_KEY"] = secrets.token_urlsafe(50)
    return documented


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only the given variables (and PATH): nothing from the test run leaks into the check.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={"PATH": os.environ["PATH"], **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_prints_no_warning_with_the_documented_production_variables() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=documented_environment())

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output


def test_check_deploy_warns_without_the_https_settings() -> None:
    env = documented_environment()
    for name in (
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "CACHE_URL",
    ):
        env.pop(name)

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output
    # The rate-limit counters would be per process: routerapp's own check says so.
    assert "routerapp.W001" in output


def test_the_proxy_header_is_opt_in_and_read_from_its_name() -> None:
    show = "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    env = documented_environment()

    unset = manage("shell", "-c", show, env=env)
    named = manage("shell", "-c", show, env={**env, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})

    assert unset.stdout.strip().splitlines()[-1] == "None"
    assert named.stdout.strip().splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
def test_https_redirect_spares_the_healthcheck(settings: Settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    page = client.get("/login/")
    health = client.get("/healthz")

    assert page.status_code == 301
    assert page["Location"] == "https://testserver/login/"
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
