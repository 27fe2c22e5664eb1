"""Writes of configuration: goals, paths, providers, prices. Validated, saved, audited.

Edits save directly and are audited; routing changes (weights, priors, rules) become change
requests once the approval workflow exists.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models, transaction

from routerapp.models import ApiKey
from routerapp.services.access import audit

M = TypeVar("M", bound=models.Model)


def _changes(instance: models.Model, data: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, value in data.items():
        old = getattr(instance, name, None)
        old = getattr(old, "pk", old)
        new = getattr(value, "pk", value)
        if old != new:
            changes[name] = {"from": _jsonable(old), "to": _jsonable(new)}
    return changes


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def catalog_save(
    *,
    instance: M,
    data: dict[str, Any],
    actor: Any = None,
    actor_key: ApiKey | None = None,
    ip: str | None = None,
    notes: dict[str, Any] | None = None,
) -> M:
    """Apply `data` to `instance` (new or existing), validate the whole model, save, audit.

    `data` holds model fields only (providers' keys go through `providers.provider_save`);
    `notes` are facts the caller adds to the audit entry. The actor is the signed-in user or
    the API key that asked."""
    if "api_key" in data:  # a secret must never reach the audit diff below
        raise ValueError("provider keys are saved by services.providers.provider_save")
    creating = instance.pk is None
    changes = {**_changes(instance, data), **(notes or {})}
    for name, value in data.items():
        setattr(instance, name, value)
    instance.full_clean()
    with transaction.atomic():
        instance.save()
        action = "create" if creating else "update"
        audit(
            action=f"{type(instance).__name__.lower()}.{action}",
            obj=instance,
            actor=actor,
            api_key=actor_key,
            changes=changes,
            ip=ip,
        )
    return instance
