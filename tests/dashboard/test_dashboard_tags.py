"""Numbers are formatted for people by template filters."""

from __future__ import annotations

from decimal import Decimal

from dashboard.templatetags.dashboard_tags import count, ms, outcome_label, percent, usd


def test_usd_groups_thousands_and_keeps_small_amounts_readable() -> None:
    assert usd(Decimal("1234.5")) == "$1,234.50"
    assert usd(-3.1) == "-$3.10"
    assert usd(Decimal("0.00015")) == "$0.000150"
    assert usd(0) == "$0.00"
    assert usd(None) == "—"


def test_percent_counts_and_latency() -> None:
    assert percent(0.123) == "12.3%"
    assert percent(None) == "—"
    assert count(1234) == "1,234"
    assert count(12.5) == "12.5"
    assert ms(850) == "850 ms"
    assert ms(1500) == "1.50 s"


def test_outcome_label() -> None:
    assert outcome_label(1.0) == "success"
    assert outcome_label(0) == "failure"
    assert outcome_label(0.5) == "score 0.50"
    assert outcome_label(None) == "no outcome"
