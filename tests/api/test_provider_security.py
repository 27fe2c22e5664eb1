"""Provider keys go only where an admin meant them to: admin-only writes, keys bound to their
base URL, an allow-list of key variables, audited changes, and redacted upstream errors.

The upstream is a capture server on 127.0.0.1 that records the Authorization header it gets;
completions go through the real server over HTTP with the real openai client."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from routerapp.models import AuditLog, ModelPrice, Provider, RoutingDecision
from tests.builders import make_api_key, make_goal, make_provider
from tests.capture import CaptureUpstream, capture_upstream

MESSAGES: Any = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]
PLANTED_KEY = "sk-PLANTED-SECRET-123456"


@pytest.fixture
def upstream() -> Iterator[CaptureUpstream]:
    with capture_upstream() as server:
        yield server


@pytest.fixture
def other_upstream() -> Iterator[CaptureUpstream]:
    with capture_upstream() as server:
        yield server


def user_client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def admin_key_client() -> APIClient:
    _, key = make_api_key(scopes=("admin",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def openai_provider(base_url: str, **fields: Any) -> Provider:
    return make_provider(
        name="upstream", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=base_url, **fields
    )


def complete(live: str, goal: str = "guarded") -> Any:
    _, key = make_api_key()
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0, timeout=30)
    return client.chat.completions.create(model=f"goal/{goal}", messages=MESSAGES)


# --------------------------------------------------------------------------- who may


@pytest.mark.django_db
def test_an_operator_may_neither_create_nor_change_a_provider_or_a_price(operator: Any) -> None:
    provider = openai_provider("https://api.example.com/v1")
    provider.set_api_key(PLANTED_KEY)
    provider.save()
    client = user_client(operator)

    created = client.post(
        "/api/v1/providers",
        {"name": "evil", "base_url": "http://127.0.0.1:18099/v1", "api_key_env": "DATABASE_URL"},
        format="json",
    )
    moved = client.patch(
        f"/api/v1/providers/{provider.pk}", {"base_url": "http://elsewhere/v1"}, format="json"
    )
    env = client.patch(
        f"/api/v1/providers/{provider.pk}", {"api_key_env": "OPENAI_API_KEY"}, format="json"
    )
    price = client.post(
        "/api/v1/prices",
        {"provider": "upstream", "model": "m", "input_per_million": 1, "output_per_million": 1},
        format="json",
    )

    assert [r.status_code for r in (created, moved, env, price)] == [403, 403, 403, 403]
    provider.refresh_from_db()
    assert provider.base_url == "https://api.example.com/v1"
    assert provider.api_key_env == ""
    assert provider.resolve_api_key() == PLANTED_KEY
    assert not Provider.objects.filter(name="evil").exists()
    assert ModelPrice.objects.count() == 0
    assert not AuditLog.objects.filter(object_type="Provider").exists()
    # Operators still see providers, to pick them for paths.
    assert client.get("/api/v1/providers").status_code == 200


@pytest.mark.django_db
def test_an_admin_manages_providers_and_prices(admin_user: Any) -> None:
    client = user_client(admin_user)
    created = client.post(
        "/api/v1/providers",
        {"name": "openai", "base_url": "https://api.openai.com/v1", "api_key": PLANTED_KEY},
        format="json",
    )
    price = client.post(
        "/api/v1/prices",
        {"provider": "openai", "model": "m", "input_per_million": 1, "output_per_million": 2},
        format="json",
    )
    assert (created.status_code, price.status_code) == (201, 201)
    assert PLANTED_KEY not in created.content.decode()


# --------------------------------------------------------------------------- key variables


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL", "ROUTERAPP_PROVIDER_KEY_"]
)
def test_a_key_variable_outside_the_allow_list_is_refused(name: str) -> None:
    client = admin_key_client()
    provider = openai_provider("https://api.example.com/v1")

    created = client.post(
        "/api/v1/providers",
        {"name": "evil", "base_url": "https://api.example.com/v1", "api_key_env": name},
        format="json",
    )
    patched = client.patch(f"/api/v1/providers/{provider.pk}", {"api_key_env": name}, format="json")

    for response in (created, patched):
        assert response.status_code == 400
        assert "ROUTERAPP_PROVIDER_KEY_" in " ".join(response.json()["api_key_env"])
        assert os.environ.get(name, "\0") not in response.content.decode()
    assert not Provider.objects.filter(name="evil").exists()
    provider.refresh_from_db()
    assert provider.api_key_env == ""


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "ROUTERAPP_PROVIDER_KEY_VLLM"])
def test_allowed_key_variables_are_accepted(name: str) -> None:
    response = admin_key_client().post(
        "/api/v1/providers",
        {"name": "ok", "base_url": "https://api.example.com/v1", "api_key_env": name},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Provider.objects.get(name="ok").api_key_env == name


@pytest.mark.django_db
def test_the_allow_list_is_a_setting(settings: Any) -> None:
    settings.PROVIDER_KEY_ENV_ALLOWED = ["AZURE_OPENAI_API_KEY"]
    client = admin_key_client()
    body = {"base_url": "https://api.example.com/v1"}
    azure = client.post(
        "/api/v1/providers",
        {**body, "name": "azure", "api_key_env": "AZURE_OPENAI_API_KEY"},
        format="json",
    )
    openai_env = client.post(
        "/api/v1/providers", {**body, "name": "oai", "api_key_env": "OPENAI_API_KEY"}, format="json"
    )
    assert (azure.status_code, openai_env.status_code) == (201, 400)


def test_a_stored_forbidden_variable_is_never_sent_upstream(
    live: str,
    upstream: CaptureUpstream,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "DATABASE_URL" not in os.environ:  # settings fell back to their default
        monkeypatch.setenv("DATABASE_URL", "postgres://planted:secret@db/x")
    secret = os.environ["DATABASE_URL"]
    # A row written before the allow-list existed (or by hand): the rule holds at call time too.
    provider = openai_provider(upstream.url, api_key_env="DATABASE_URL")
    make_goal(slug="guarded", models=("gpt-4o-mini",), provider=provider)

    with caplog.at_level(logging.WARNING, logger="routerapp.models.catalog"):
        completion = complete(live)

    assert completion.choices[0].message.content == "ok"
    assert upstream.authorizations, "the capture server must have been called"
    assert all(secret not in header for header in upstream.authorizations)
    assert upstream.authorizations == ["Bearer no-key"]
    why = " ".join(record.getMessage() for record in caplog.records)
    assert "DATABASE_URL is not allowed" in why
    assert secret not in why


# --------------------------------------------------------------------------- key bound to URL


def test_changing_the_base_url_clears_the_stored_key(
    live: str, upstream: CaptureUpstream, other_upstream: CaptureUpstream
) -> None:
    provider = openai_provider(upstream.url)
    provider.set_api_key(PLANTED_KEY)
    provider.save()
    make_goal(slug="guarded", models=("gpt-4o-mini",), provider=provider)
    complete(live)
    assert upstream.authorizations == [f"Bearer {PLANTED_KEY}"]

    response = admin_key_client().patch(
        f"/api/v1/providers/{provider.pk}", {"base_url": other_upstream.url}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["has_api_key"] is False
    provider.refresh_from_db()
    assert (provider.api_key_encrypted, provider.api_key_env) == ("", "")

    complete(live)
    assert other_upstream.authorizations == ["Bearer no-key"]
    assert upstream.authorizations == [f"Bearer {PLANTED_KEY}"]


def test_a_new_base_url_with_a_new_key_uses_the_new_key(
    live: str, upstream: CaptureUpstream, other_upstream: CaptureUpstream
) -> None:
    provider = openai_provider(upstream.url)
    provider.set_api_key(PLANTED_KEY)
    provider.save()
    make_goal(slug="guarded", models=("gpt-4o-mini",), provider=provider)

    response = admin_key_client().patch(
        f"/api/v1/providers/{provider.pk}",
        {"base_url": other_upstream.url, "api_key": "sk-second-key-for-new-url"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    complete(live)

    assert other_upstream.authorizations == ["Bearer sk-second-key-for-new-url"]
    assert upstream.authorizations == []


@pytest.mark.django_db
def test_changing_the_kind_clears_the_key_and_a_new_variable_keeps_one() -> None:
    provider = openai_provider("https://api.example.com/v1", api_key_env="OPENAI_API_KEY")
    client = admin_key_client()

    moved = client.patch(
        f"/api/v1/providers/{provider.pk}",
        {"base_url": "https://proxy.example.com/v1", "api_key_env": "ROUTERAPP_PROVIDER_KEY_PROXY"},
        format="json",
    )
    assert moved.status_code == 200
    provider.refresh_from_db()
    assert provider.api_key_env == "ROUTERAPP_PROVIDER_KEY_PROXY"

    to_simulator = client.patch(
        f"/api/v1/providers/{provider.pk}", {"kind": "simulator"}, format="json"
    )
    assert to_simulator.status_code == 200
    provider.refresh_from_db()
    assert not provider.has_api_key


@pytest.mark.django_db
def test_a_key_and_a_variable_in_one_request_are_refused() -> None:
    response = admin_key_client().post(
        "/api/v1/providers",
        {
            "name": "both",
            "base_url": "https://api.example.com/v1",
            "api_key": PLANTED_KEY,
            "api_key_env": "OPENAI_API_KEY",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "api_key" in response.json()
    assert not Provider.objects.filter(name="both").exists()


# --------------------------------------------------------------------------- audit


@pytest.mark.django_db
def test_provider_changes_are_audited_with_the_actor_and_the_url_change(admin_user: Any) -> None:
    user = user_client(admin_user)
    created = user.post(
        "/api/v1/providers",
        {"name": "vllm", "base_url": "http://127.0.0.1:8000/v1", "api_key": PLANTED_KEY},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["base_url_is_private"] is True
    pk = created.json()["id"]
    key, raw = make_api_key(scopes=("admin",), name="deploy bot")
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    encrypted = Provider.objects.get(pk=pk).api_key_encrypted
    moved = by_key.patch(
        f"/api/v1/providers/{pk}", {"base_url": "http://10.0.0.7:8000/v1"}, format="json"
    )
    assert moved.status_code == 200

    create_entry = AuditLog.objects.get(action="provider.create")
    update_entry = AuditLog.objects.get(action="provider.update")
    assert create_entry.actor == admin_user
    assert create_entry.changes["api_key"] == "(set)"
    assert "loopback/private" in create_entry.changes["private_address"]
    assert update_entry.api_key == key
    assert update_entry.changes["base_url"] == {
        "from": "http://127.0.0.1:8000/v1",
        "to": "http://10.0.0.7:8000/v1",
    }
    assert update_entry.changes["api_key_cleared"] is True
    assert update_entry.changes["api_key"] == "(removed)"
    assert "10.0.0.7" in update_entry.changes["private_address"]
    every_entry = str(list(AuditLog.objects.values_list("changes", flat=True)))
    assert PLANTED_KEY not in every_entry
    assert encrypted not in every_entry


# --------------------------------------------------------------------------- redaction


def test_an_upstream_error_echoing_the_key_is_redacted_everywhere(
    live: str, upstream: CaptureUpstream, viewer: Any
) -> None:
    upstream.status = 401  # answers "Incorrect API key provided: <the Authorization header>"
    provider = openai_provider(upstream.url)
    provider.set_api_key(PLANTED_KEY)
    provider.save()
    make_goal(slug="guarded", models=("gpt-4o-mini",), provider=provider)

    with pytest.raises(openai.APIStatusError) as caught:
        complete(live)

    assert upstream.authorizations == [f"Bearer {PLANTED_KEY}"]  # it did echo the key
    assert caught.value.status_code == 502
    body = caught.value.response.text
    message = caught.value.response.json()["error"]["attempts"][0]["error"]["message"]
    assert "Incorrect API key provided: Bearer [redacted]" in message
    decision = RoutingDecision.objects.get()
    page = Client()
    page.force_login(viewer)
    decision_page = page.get(reverse("dashboard:decision-detail", args=[decision.request_id]))
    assert decision_page.status_code == 200
    for text in (body, str(decision.attempts), decision_page.content.decode()):
        assert "PLANTED-SECRET" not in text
    assert "[redacted]" in decision_page.content.decode()
