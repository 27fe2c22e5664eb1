"""Reads about goals, paths, prices and keys."""

from __future__ import annotations

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


def goal_list_visible(*, api_key: ApiKey | None = None) -> QuerySet[Goal]:
    goals = Goal.objects.all()
    if api_key is not None and api_key.allowed_goals.exists():
        goals = goals.filter(id__in=api_key.allowed_goals.values("id"))
    return goals


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
    goals: list[dict[str, Any]]
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
