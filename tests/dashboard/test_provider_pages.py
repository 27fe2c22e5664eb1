"""Provider pages: admin-only edits, the key bound to its base URL, allowed key variables, and
private/loopback base URLs shown as such."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from routerapp.models import AuditLog, Provider
from tests.builders import make_provider
from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db

KEY = "sk-stored-key-0123456789"


def stored_provider(base_url: str = "https://api.example.com/v1") -> Provider:
    provider = make_provider(
        name="upstream", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=base_url
    )
    provider.set_api_key(KEY)
    provider.save()
    return provider


def form_data(provider: Provider, **changes: str) -> dict[str, str]:
    data = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "api_key": "",
        "api_key_env": "",
        "timeout_seconds": str(provider.timeout_seconds),
        "max_retries": str(provider.max_retries),
        "enabled": "on",
    }
    return {**data, **changes}


@pytest.mark.parametrize("name", ["provider-create", "price-create"])
def test_operators_may_not_open_provider_or_price_forms(
    operator: Any, client_for: Any, name: str
) -> None:
    assert client_for(operator).get(reverse(f"dashboard:{name}")).status_code == 403


def test_a_forged_provider_edit_from_an_operator_is_refused(operator: Any, client_for: Any) -> None:
    provider = stored_provider()
    client = client_for(operator)
    url = reverse("dashboard:provider-edit", args=[provider.pk])

    assert client.get(url).status_code == 403
    response = csrf_post(client, url, form_data(provider, base_url="http://elsewhere.example/v1"))

    assert response.status_code == 403
    provider.refresh_from_db()
    assert provider.base_url == "https://api.example.com/v1"
    assert provider.resolve_api_key() == KEY


def test_operators_see_providers_but_no_edit_links(operator: Any, client_for: Any) -> None:
    provider = stored_provider()
    body = client_for(operator).get(reverse("dashboard:configuration")).content.decode()
    assert provider.base_url in body
    assert reverse("dashboard:provider-edit", args=[provider.pk]) not in body
    assert reverse("dashboard:provider-create") not in body
    assert reverse("dashboard:price-create") not in body


def test_a_new_base_url_without_a_key_clears_the_stored_key(
    admin_user: Any, client_for: Any
) -> None:
    provider = stored_provider()
    client = client_for(admin_user)
    url = reverse("dashboard:provider-edit", args=[provider.pk])

    response = csrf_post(
        client, url, form_data(provider, base_url="https://proxy.example.com/v1"), follow=True
    )

    assert response.status_code == 200
    assert "The API key was cleared" in response.content.decode()
    provider.refresh_from_db()
    assert provider.base_url == "https://proxy.example.com/v1"
    assert not provider.has_api_key
    entry = AuditLog.objects.get(action="provider.update")
    assert entry.actor == admin_user
    assert entry.changes["api_key_cleared"] is True


def test_a_new_base_url_saved_with_its_key_keeps_that_key(admin_user: Any, client_for: Any) -> None:
    provider = stored_provider()
    url = reverse("dashboard:provider-edit", args=[provider.pk])

    response = csrf_post(
        client_for(admin_user),
        url,
        form_data(provider, base_url="https://proxy.example.com/v1", api_key="sk-proxy-key-98765"),
    )

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.resolve_api_key() == "sk-proxy-key-98765"


def test_other_edits_keep_the_key(admin_user: Any, client_for: Any) -> None:
    provider = stored_provider()
    url = reverse("dashboard:provider-edit", args=[provider.pk])
    response = csrf_post(client_for(admin_user), url, form_data(provider, timeout_seconds="9"))
    assert response.status_code == 302
    provider.refresh_from_db()
    assert (provider.timeout_seconds, provider.resolve_api_key()) == (9.0, KEY)


def test_a_key_variable_outside_the_allow_list_is_a_form_error(
    admin_user: Any, client_for: Any
) -> None:
    provider = stored_provider()
    url = reverse("dashboard:provider-edit", args=[provider.pk])

    response = csrf_post(client_for(admin_user), url, form_data(provider, api_key_env="SECRET_KEY"))

    assert response.status_code == 200
    assert "ROUTERAPP_PROVIDER_KEY_" in str(response.context["form"].errors["api_key_env"])
    provider.refresh_from_db()
    assert (provider.api_key_env, provider.resolve_api_key()) == ("", KEY)


def test_private_base_urls_are_marked_on_the_list_and_the_edit_page(
    admin_user: Any, client_for: Any
) -> None:
    local = make_provider(
        name="ollama", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url="http://127.0.0.1:11434/v1"
    )
    make_provider(
        name="public", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url="https://api.openai.com/v1"
    )
    client = client_for(admin_user)

    listing = client.get(reverse("dashboard:configuration")).content.decode()
    edit = client.get(reverse("dashboard:provider-edit", args=[local.pk])).content.decode()

    assert listing.count("private/loopback address") == 1
    assert "http://127.0.0.1:11434/v1" in listing
    assert "private/loopback address" in edit


def test_a_stored_variable_that_is_not_allowed_is_flagged(viewer: Any, client_for: Any) -> None:
    make_provider(
        name="legacy",
        kind=Provider.Kind.OPENAI_COMPATIBLE,
        base_url="https://api.example.com/v1",
        api_key_env="DATABASE_URL",
    )
    body = client_for(viewer).get(reverse("dashboard:configuration")).content.decode()
    assert "$DATABASE_URL is not an allowed key variable: no key is sent" in body
