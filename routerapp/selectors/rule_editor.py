"""Reads for the rule editor page: the article's rule template filled in with a goal's paths.
(The editor's test box runs selectors/rules_test.py::rules_dry_run, as the API does.)"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from routerapp.models import Goal, Path
from routerapp.rules import rules_template
from routerapp.selectors.goals import price_get


def _unit_price(path: Path) -> Decimal:
    price = price_get(provider_id=path.provider_id, model=path.model, on=timezone.now().date())
    return sum(price, Decimal(0)) if price else Decimal(0)


def rule_template_for(goal: Goal) -> list[dict[str, Any]]:
    """The article's heuristic router over this goal's paths: the baseline (or the dearest
    path) is the strong one, the cheapest other enabled path the cheap one. Empty when the
    goal has fewer than two enabled paths (there is nothing to choose between)."""
    enabled = list(goal.paths.filter(enabled=True).select_related("provider").order_by("id"))
    if len(enabled) < 2:
        return []
    by_price = sorted(enabled, key=lambda path: (_unit_price(path), path.id))
    baseline = next((path for path in enabled if path.id == goal.baseline_path_id), None)
    strong = baseline or by_price[-1]
    cheap = next(path for path in by_price if path.id != strong.id)
    return rules_template(cheap=cheap.name, strong=strong.name)
