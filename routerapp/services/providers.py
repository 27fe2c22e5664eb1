"""Writes of providers: the one place their key rules live (used by the API and the web form).

- A key has one source: a new `api_key` drops `api_key_env`, a new `api_key_env` drops the
  stored key.
- A key is bound to where it is sent: changing `base_url` or `kind` clears the stored key and
  the variable name unless the same request gives a new one, so nobody can redirect a key they
  cannot read to an address of their choosing.
- `api_key_env` must be on the allow-list (`Provider.clean`, checked by `catalog_save`).
- The audit entry never holds the key; it says whether one was set, removed or cleared, and
  whether the base URL is a loopback/private address.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from routerapp.models import ApiKey, Provider
from routerapp.providers.addresses import is_private_base_url
from routerapp.services.catalog import catalog_save

KEY_BOUND_TO = ("base_url", "kind")


def provider_save(
    *,
    provider: Provider,
    data: dict[str, Any],
    actor: Any = None,
    actor_key: ApiKey | None = None,
    ip: str | None = None,
) -> Provider:
    """Create or update `provider` from `data` (model fields plus a write-only `api_key`)."""
    data = dict(data)
    raw_key = data.pop("api_key", None)
    env_name = data.get("api_key_env")
    if raw_key and env_name:
        raise ValidationError({"api_key": "Give either api_key or api_key_env, not both."})
    creating = provider.pk is None
    moved = [
        name
        for name in KEY_BOUND_TO
        if not creating and name in data and data[name] != getattr(provider, name)
    ]
    notes: dict[str, Any] = {}
    cleared = bool(moved) and not (raw_key or env_name) and provider.has_api_key
    if raw_key:
        data["api_key_env"] = ""
    elif env_name:
        raw_key = ""
    elif cleared:
        raw_key, data["api_key_env"] = "", ""
    if moved:
        notes["api_key_cleared"] = cleared
    if raw_key is not None:
        if raw_key:
            notes["api_key"] = "(set)"
        elif provider.api_key_encrypted:
            notes["api_key"] = "(removed)"
        provider.set_api_key(raw_key)
    kind = data.get("kind", provider.kind)
    base_url = data.get("base_url", provider.base_url)
    if (creating or moved) and kind != Provider.Kind.SIMULATOR and is_private_base_url(base_url):
        notes["private_address"] = f"{base_url} is a loopback/private address"
    return catalog_save(
        instance=provider, data=data, actor=actor, actor_key=actor_key, ip=ip, notes=notes
    )
