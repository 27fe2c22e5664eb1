"""Template filters of the governance pages: JSON shown as text, and diff values for people."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON (autoescaped by the template like any text)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def diff_value(value: Any) -> str:
    """One side of a diff line: "—" for absent, JSON for lists and objects, text otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    """{{ mapping|lookup:key }}: a dict's value under a key held in a variable (None if absent)."""
    return mapping.get(key) if isinstance(mapping, dict) else None
