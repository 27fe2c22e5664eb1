"""Sign-in throttling: failed sign-ins lock the username and the address, the right password too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import Settings

from tests.builders import make_user

LOGIN = reverse("login")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Settings) -> None:
    # Every attempt below checks a password: the production hasher would cost ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_in(client: Client, username: str, password: str, *, ip: str = "10.0.0.1") -> Any:
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
def test_the_fifth_failure_locks_the_username_and_the_right_password_is_refused() -> None:
    make_user(username="ada", role="admin")
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5  # the documented default

    for _ in range(limit - 1):
        response = sign_in(client, "ada", "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    locked = sign_in(client, "ada", "wrong")
    right = sign_in(client, "ada", "pw-ada")

    assert locked.status_code == 429
    assert right.status_code == 429
    page = right.content.decode()
    assert "Sign-in locked" in page
    assert "15 minutes" in page
    assert "<form" not in page.split("<main", 1)[1]  # a page, not a retry form
    assert not signed_in(client)
    assert client.get(reverse("dashboard:overview")).status_code == 302


@pytest.mark.django_db
def test_a_few_typos_then_the_right_password_signs_in() -> None:
    make_user(username="ada", role="admin")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "ada", "wrong")

    response = sign_in(client, "ada", "pw-ada")

    assert response.status_code == 302
    assert signed_in(client)


@pytest.mark.django_db
def test_failures_from_many_addresses_lock_the_username_everywhere() -> None:
    make_user(username="ada", role="admin")
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), "ada", "wrong", ip=f"10.0.1.{n}")

    client = Client()
    response = sign_in(client, "ada", "pw-ada", ip="10.0.2.1")

    assert response.status_code == 429
    assert not signed_in(client)


@pytest.mark.django_db
def test_guessing_many_usernames_from_one_address_locks_that_address_only() -> None:
    make_user(username="ada", role="admin")
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), f"guess{n}", "wrong", ip="10.0.3.3")

    from_attacker, from_elsewhere = Client(), Client()
    refused = sign_in(from_attacker, "ada", "pw-ada", ip="10.0.3.3")
    accepted = sign_in(from_elsewhere, "ada", "pw-ada", ip="10.0.4.4")

    assert refused.status_code == 429
    assert not signed_in(from_attacker)
    assert accepted.status_code == 302
    assert signed_in(from_elsewhere)


@pytest.mark.django_db
def test_the_lock_lifts_after_the_cool_off_without_attempts() -> None:
    make_user(username="ada", role="admin")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(settings.AXES_FAILURE_LIMIT):
            sign_in(Client(), "ada", "wrong")
        clock.shift(settings.AXES_COOLOFF_TIME - timedelta(minutes=1))
        assert sign_in(Client(), "ada", "pw-ada").status_code == 429
        # That refused attempt started the wait again.
        clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
        client = Client()
        response = sign_in(client, "ada", "pw-ada")

    assert response.status_code == 302
    assert signed_in(client)


@pytest.mark.django_db
def test_the_admin_site_sign_in_is_throttled_too() -> None:
    make_user(username="root", superuser=True)
    client = Client()
    url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.5.5")

    response = client.post(url, {"username": "root", "password": "pw-root"}, REMOTE_ADDR="10.0.5.5")

    assert response.status_code == 429
    assert "Sign-in locked" in response.content.decode()
    assert not signed_in(client)
