"""The per-process routing cache: the catalog version every configuration write changes, the
catalog snapshot built from it, and the learned-state snapshot's refresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from routerapp.models import GOAL_WIDE, ApiKey, Goal, ModelPrice, Path, Posterior, Provider
from routerapp.selectors import catalog_cache
from routerapp.selectors.catalog_cache import (
    catalog_get,
    catalog_version,
    learned_fresh,
    learned_get,
    learned_note_decision,
)
from routerapp.services.access import api_key_revoke, api_key_touch
from routerapp.services.catalog import catalog_save
from routerapp.services.governance import change_request_approve, change_request_propose
from tests.builders import make_api_key, make_goal, make_price, make_provider, make_user


def approved(goal: Goal, changes: dict[str, Any]) -> None:
    """A change applied the only way routing changes: proposed, then approved by another."""
    change = change_request_propose(
        goal=goal,
        changes=changes,
        reason="test",
        actor=make_user(username="proposer", role="operator"),
    )
    change_request_approve(
        change_request=change, actor=make_user(username="approver", role="approver")
    )


def configuration_writes(goal: Goal, key: ApiKey) -> dict[str, Callable[[], Any]]:
    path = goal.paths.first()
    assert path is not None
    provider = path.provider
    return {
        "path changed by a change request": lambda: approved(
            goal, {"paths": {path.name: {"weight": 3.0}}}
        ),
        "path updated in bulk": lambda: Path.objects.filter(goal=goal).update(enabled=False),
        "goal paused by QuerySet.update": lambda: Goal.objects.filter(id=goal.id).update(
            status=Goal.Status.PAUSED
        ),
        "goal saved": lambda: catalog_save(instance=goal, data={"description": "saved"}),
        "provider timeout": lambda: Provider.objects.filter(id=provider.id).update(
            timeout_seconds=5.0
        ),
        "new price": lambda: make_price(
            provider=provider,
            model="gpt-4o",
            price_in="1",
            price_out="2",
            effective_from=date(2025, 1, 1),
        ),
        "price deleted": lambda: ModelPrice.objects.filter(provider=provider).delete(),
        "key limited to a goal": lambda: key.allowed_goals.set([goal]),
        "key revoked": lambda: api_key_revoke(key=key),
        "new key": lambda: make_api_key(name="another"),
        "path deleted": lambda: Path.objects.filter(goal=goal).delete(),
        "goal deleted": lambda: Goal.objects.filter(id=goal.id).delete(),
    }


@pytest.mark.django_db
def test_every_configuration_write_changes_the_catalog_version() -> None:
    goal = make_goal(slug="versioned")
    key, _ = make_api_key()

    for name, write in configuration_writes(goal, key).items():
        before = catalog_version()
        write()
        assert catalog_version() != before, name


@pytest.mark.django_db
def test_writes_of_the_request_path_leave_the_catalog_version_alone() -> None:
    goal = make_goal(slug="busy")
    key, _ = make_api_key()
    before = catalog_version()

    # The controller's fold, a key's last use, and what a call teaches.
    Goal.objects.filter(id=goal.id).update(controller_state={"version": 3}, controller_cursor=12345)
    api_key_touch(key_id=key.id)
    path = goal.paths.first()
    Posterior.objects.create(
        goal=goal, path=path, bucket=GOAL_WIDE, successes=3, failures=1, updated_at=timezone.now()
    )

    key.refresh_from_db()
    assert key.last_used_at is not None
    assert catalog_version() == before


@pytest.mark.django_db
def test_the_catalog_holds_what_routing_needs_and_a_rebuild_follows_each_write(
    settings: Any,
) -> None:
    settings.ROUTING_CACHE_SECONDS = 0  # every lookup checks the version (the test's own rows)
    provider = make_provider(
        name="upstream", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url="http://upstream.local/v1"
    )
    provider.set_api_key("sk-upstream-secret")
    provider.save()
    goal = make_goal(slug="cached", provider=provider)
    key, _ = make_api_key(scopes=("completions",), goals=(goal,))

    catalog = catalog_get()
    route = catalog.goal("cached")
    assert [plan.model for plan in route.paths] == ["gpt-4o-mini", "gpt-4o"]
    assert route.paths[0].provider.api_key == "sk-upstream-secret"  # decrypted once, here
    assert route.paths[0].price_in == Decimal("0.15")
    assert route.baseline is not None
    assert route.baseline.model == "gpt-4o"
    assert catalog.keys[key.prefix].goal_ids == frozenset({goal.id})
    assert catalog.keys[key.prefix].scopes == frozenset({"completions"})
    assert catalog_get() is catalog  # same version: no rebuild

    Path.objects.filter(goal=goal, model="gpt-4o").update(enabled=False)
    api_key_revoke(key=key)

    rebuilt = catalog_get()
    assert rebuilt is not catalog
    assert [plan.model for plan in rebuilt.goal("cached").paths] == ["gpt-4o-mini"]
    # A disabled baseline still prices the baseline cost.
    assert rebuilt.goal("cached").baseline == route.baseline
    assert rebuilt.keys[key.prefix].revoked


@pytest.mark.django_db(transaction=True)
def test_a_warm_catalog_is_served_without_sql_and_prices_follow_the_day(settings: Any) -> None:
    settings.ROUTING_CACHE_SECONDS = 30
    goal = make_goal(slug="daily")
    path = goal.paths.get(model="gpt-4o-mini")
    tomorrow = timezone.now().date() + timedelta(days=1)
    make_price(
        provider=path.provider,
        model="gpt-4o-mini",
        price_in="9",
        price_out="9",
        effective_from=tomorrow,
    )
    first = catalog_get()

    with CaptureQueriesContext(connection) as queries:
        again = catalog_get()
    assert again is first
    assert len(queries) == 0
    assert first.goal("daily").paths[0].price_in == Decimal("0.15")

    with time_machine.travel(timezone.now() + timedelta(days=1)):
        next_day = catalog_get()
    assert next_day.goal("daily").paths[0].price_in == Decimal("9")


@pytest.mark.django_db(transaction=True)
def test_the_learned_snapshot_reflects_new_outcomes_within_the_refresh_interval(
    settings: Any,
) -> None:
    settings.ROUTING_CACHE_SECONDS = 1.0
    goal = make_goal(slug="learning")
    path = goal.paths.first()
    assert path is not None
    assert learned_get(goal.id).rows == {}

    Posterior.objects.create(
        goal=goal, path=path, bucket=GOAL_WIDE, successes=4, failures=1, updated_at=timezone.now()
    )
    deadline = time.monotonic() + settings.ROUTING_CACHE_SECONDS
    seen = None
    while seen is None and time.monotonic() < deadline:
        # What a request would route on now, without reading anything itself.
        learned = learned_fresh(goal.id)
        if learned is not None and learned.rows:
            seen = learned
        time.sleep(0.02)
    assert seen is not None, "the snapshot did not show the outcome within the interval"
    assert seen.rows[(path.id, GOAL_WIDE)][:2] == (4.0, 1.0)


@pytest.mark.django_db(transaction=True)
def test_local_decisions_refresh_the_learned_snapshot_before_the_interval(settings: Any) -> None:
    settings.ROUTING_CACHE_SECONDS = 30.0  # the interval alone would take 15 s
    goal = make_goal(slug="busy-learning")
    path = goal.paths.first()
    assert path is not None
    first = learned_get(goal.id)
    Goal.objects.filter(id=goal.id).update(controller_state={"version": 3, "deficit": 0.25})

    for _ in range(catalog_cache.REFRESH_AFTER_DECISIONS):
        learned_note_decision(goal.id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        learned = learned_fresh(goal.id)
        if learned is not None and learned.read_at > first.read_at:
            break
        time.sleep(0.02)
    learned = learned_fresh(goal.id)
    assert learned is not None
    assert learned.read_at > first.read_at
    assert learned.controller_state().deficit == 0.25
    assert first.controller_state().deficit == 0.0
