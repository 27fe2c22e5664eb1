"""Celery tasks: thin wrappers that call one service each."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="routerapp.rollups_reconcile", acks_late=True)
def rollups_reconcile() -> int:
    from routerapp.services.rollups import rollups_reconcile as reconcile

    return reconcile()


@shared_task(name="routerapp.controller_advance_pending", acks_late=True)
def controller_advance_pending() -> int:
    from routerapp.services.controller import controller_advance_pending as advance

    return advance()


@shared_task(name="routerapp.suggestions_propose", acks_late=True)
def suggestions_propose() -> int:
    from routerapp.services.suggestions import suggestions_propose as propose

    return propose()


@shared_task(name="routerapp.shadow_compare", acks_late=True, ignore_result=True)
def shadow_compare(payload: dict[str, Any]) -> str:
    """One sampled call's shadow comparison (idempotent: a finished one is left as it is)."""
    from routerapp.services.shadows import shadow_compare_run

    return shadow_compare_run(payload=payload)


@shared_task(name="routerapp.shadows_maintain", acks_late=True)
def shadows_maintain() -> int:
    """Close the funnel of comparisons whose message was lost; re-check every regret alert."""
    from routerapp.services.alerts import regret_alerts_check_all
    from routerapp.services.shadows import shadows_sweep

    shadows_sweep()
    return regret_alerts_check_all()
