"""Numbers for people ($1,234.56, 12.3%, 1,234, 850 ms) and role checks for templates."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from routerapp.roles import user_can

register = template.Library()

DASH = "—"


def _number(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def usd(value: Any, places: int = 2) -> str:
    """$1,234.56; -$3.10; small amounts keep significant digits ($0.000150)."""
    number = _number(value)
    if number is None:
        return DASH
    places = int(places)
    if number and abs(number) < Decimal("0.01") and places == 2:
        places = 6
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number):,.{places}f}"


@register.filter
def percent(value: Any, places: int = 1) -> str:
    """A ratio as a percentage: 0.123 -> 12.3%."""
    number = _number(value)
    if number is None:
        return DASH
    return f"{number * 100:,.{int(places)}f}%"


@register.filter
def count(value: Any) -> str:
    """1234 -> 1,234; 12.5 -> 12.5 (discounted counts are floats)."""
    number = _number(value)
    if number is None:
        return DASH
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.1f}"


@register.filter
def ms(value: Any) -> str:
    number = _number(value)
    if number is None:
        return DASH
    if number >= 1000:
        return f"{number / 1000:,.2f} s"
    return f"{number:,.0f} ms"


@register.filter
def decimal3(value: Any) -> str:
    number = _number(value)
    return DASH if number is None else f"{number:.3f}"


@register.filter
def can(user: Any, action: str) -> bool:
    """{% if user|can:"operate" %}: what a role may not do is not shown."""
    return user_can(user, action)


@register.filter
def outcome_label(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "no outcome"
    if number >= 1:
        return "success"
    if number <= 0:
        return "failure"
    return f"score {number:.2f}"
