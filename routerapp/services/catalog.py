"""Writes of configuration: goals, paths, providers, prices. Validated, saved, audited.

Descriptions, status, providers, prices and new goals save directly (audited). A goal's routing
configuration (services/governance.py: its governed fields and rules, its paths' weights, priors
and enabled flags, an enabled path's call settings) changes through change requests only:
a direct save of those is refused (`DirectEditRefused`, 409 on the API).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models, transaction

from routerapp.models import ApiKey, Path, Provider
from routerapp.services.access import audit
from routerapp.services.governance import direct_edit_check

M = TypeVar("M", bound=models.Model)

# Columns a service sets on the instance itself before calling catalog_save, so they are not in
# `data`: provider_save encrypts the key onto the row. Written with every update of the row.
SET_BY_SERVICES: dict[type[models.Model], tuple[str, ...]] = {Provider: ("api_key_encrypted",)}


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
    the API key that asked.

    An update writes exactly the changed columns (`update_fields`): a whole-row save would put
    back values other writers changed since the row was read, such as the controller state
    that outcomes update concurrently. Raises DirectEditRefused for governed fields."""
    if "api_key" in data:  # a secret must never reach the audit diff below
        raise ValueError("provider keys are saved by services.providers.provider_save")
    creating = instance.pk is None
    direct_edit_check(instance, data)
    data = dict(data)
    notes = dict(notes or {})
    if creating and isinstance(instance, Path) and data.get("enabled", True):
        goal = data.get("goal") or (instance.goal if instance.goal_id else None)
        if goal is not None and goal.paths.filter(enabled=True).exists():
            # Enabling a path on a live goal changes its routing: that is a change request.
            data["enabled"] = False
            notes["enabled"] = "created disabled: enable it with a change request"
    changes = {**_changes(instance, data), **notes}
    for name, value in data.items():
        setattr(instance, name, value)
    instance.full_clean()
    with transaction.atomic():
        if creating:
            instance.save()
        else:
            fields = [name for name in data if name in changes]
            fields += SET_BY_SERVICES.get(type(instance), ())
            if any(field.name == "updated_at" for field in instance._meta.concrete_fields):
                fields.append("updated_at")  # auto_now: written only when named
            if fields:
                instance.save(update_fields=fields)
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
