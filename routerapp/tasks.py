"""Celery tasks: thin wrappers that call one service each."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="routerapp.rollups_reconcile", acks_late=True)
def rollups_reconcile() -> int:
    from routerapp.services.rollups import rollups_reconcile as reconcile

    return reconcile()


@shared_task(name="routerapp.controller_advance_pending", acks_late=True)
def controller_advance_pending() -> int:
    from routerapp.services.controller import controller_advance_pending as advance

    return advance()
