"""Writes of configuration: goals, paths, providers, prices. Validated, saved, audited.

Edits save directly and are audited; routing changes (weights, priors, rules) become change
requests once the approval workflow exists.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models, transaction

from routerapp.models import Provider
from routerapp.services.access import audit

M = TypeVar("M", bound=models.Model)


def _changes(instance: models.Model, data: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "api_key":
            changes[name] = "(changed)"  # never write a secret into the audit log
            continue
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
    *, instance: M, data: dict[str, Any], actor: Any = None, ip: str | None = None
) -> M:
    """Apply `data` to `instance` (new or existing), validate the whole model, save, audit."""
    creating = instance.pk is None
    changes = _changes(instance, data)
    api_key = data.pop("api_key", None)
    for name, value in data.items():
        setattr(instance, name, value)
    if isinstance(instance, Provider) and api_key is not None:
        instance.set_api_key(api_key)
    instance.full_clean()
    with transaction.atomic():
        instance.save()
        action = "create" if creating else "update"
        audit(
            action=f"{type(instance).__name__.lower()}.{action}",
            obj=instance,
            actor=actor,
            changes=changes,
            ip=ip,
        )
    return instance
