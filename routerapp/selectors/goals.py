"""Reads about goals, paths, prices and keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, QuerySet

from routerapp.errors import NotFound
from routerapp.models import ApiKey, Goal, ModelPrice, Path, Provider


def goal_get(*, slug: str) -> Goal:
    try:
        return Goal.objects.select_related("baseline_path").get(slug=slug)
    except Goal.DoesNotExist:
        raise NotFound(f"Unknown goal '{slug}'.", param="model") from None


def goal_ids_visible(*, api_key: ApiKey | None) -> list[int] | None:
    """The one rule for which goals a caller may see: the ids of the goals an API key is
    restricted to, or None for every goal (a key with an empty goal list, or no key at all: a
    signed-in user, whose role decides what they may do). Every goal-scoped read and check
    (API, /v1, reports, outcomes) goes through this function or the two below."""
    if api_key is None:
        return None
    return list(api_key.allowed_goals.values_list("id", flat=True)) or None


def goal_list_visible(*, api_key: ApiKey | None = None) -> QuerySet[Goal]:
    goal_ids = goal_ids_visible(api_key=api_key)
    goals = Goal.objects.all()
    return goals if goal_ids is None else goals.filter(id__in=goal_ids)


def goal_is_visible(*, api_key: ApiKey | None, goal: Goal) -> bool:
    goal_ids = goal_ids_visible(api_key=api_key)
    return goal_ids is None or goal.id in goal_ids


def path_list_enabled(*, goal: Goal) -> list[Path]:
    return list(
        goal.paths.filter(enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("id")
    )


def price_get(*, provider_id: int, model: str, on: date) -> tuple[Decimal, Decimal] | None:
    """(input, output) USD per 1M tokens in force on a day, or None when no price is known."""
    price = (
        ModelPrice.objects.filter(provider_id=provider_id, model=model, effective_from__lte=on)
        .order_by("-effective_from")
        .values_list("input_per_million", "output_per_million")
        .first()
    )
    return price


def simulator_in_use() -> bool:
    return Provider.objects.filter(kind=Provider.Kind.SIMULATOR, enabled=True).exists()


@dataclass
class CatalogOverview:
    goals: Sequence[Mapping[str, Any]]
    providers: list[Provider]
    prices: list[ModelPrice]


def catalog_overview() -> CatalogOverview:
    goals = list(
        Goal.objects.annotate(path_count=Count("paths"))
        .order_by("slug")
        .values("slug", "description", "status", "objective", "path_count")
    )
    return CatalogOverview(
        goals=goals,
        providers=list(Provider.objects.order_by("name")),
        prices=list(
            ModelPrice.objects.select_related("provider").order_by(
                "provider__name", "model", "-effective_from"
            )
        ),
    )


def api_key_list() -> list[ApiKey]:
    return list(ApiKey.objects.prefetch_related("allowed_goals").select_related("created_by"))
