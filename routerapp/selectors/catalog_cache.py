"""What a completion reads before its upstream call, kept in memory per process.

Two kinds of state, both immutable snapshots replaced whole:

- the **catalog**: every goal with its enabled paths ready to call (provider address, resolved
  key, today's prices), and every API key (hashed secret, scopes, goals, revoked or not).
  It is valid for one *catalog version*, a number every configuration write changes in its own
  transaction (database triggers, migration `catalog_version`), so it is rebuilt whole when the
  version or the day (prices are by day) changes and never shows a write before its commit;
- the **learned state** of a goal: its posterior counts (every bucket) and its controller
  state, re-read every interval or after `REFRESH_AFTER_DECISIONS` decisions of this process.

`ROUTING_CACHE_SECONDS` (default 1) bounds how old either may be when a request uses it: a
background thread per process re-checks the catalog version and re-reads the learned state of
the goals in use every half of it, so requests find them fresh and run no SQL; only a request
that finds one missing or older than the bound (a cold process, a refresher that fell behind)
reads it itself. A revoked key, a disabled path or a new price is therefore in force in every
process within that bound. 0 turns the cache off: every call reads both.

Lookups that may need the database come in pairs: `catalog_get()`/`learned_get()` read in the
calling thread; `catalog_aget()`/`learned_aget()` serve from memory on the event loop and read
on the DB pool only when they must.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections, connection
from django.dispatch import receiver
from django.utils import timezone

from routerapp import engine
from routerapp.dbwork import run_db
from routerapp.errors import NotFound
from routerapp.models import ApiKey, Goal, ModelPrice, Path, Posterior, Provider
from routerapp.providers.client import ProviderConfig
from routerapp.rules import RuleError, rules_compile

logger = logging.getLogger(__name__)

# After this many decisions of one goal in this process, its learned state is re-read without
# waiting for the interval (the replay's `--snapshot-every`; docs/engine.md, "Stale evidence").
REFRESH_AFTER_DECISIONS = 50
# The refresher thread ends after this long without a lookup; the next lookup restarts it.
IDLE_SECONDS = 60.0

VERSION_SQL = "SELECT version FROM routerapp_catalog_version WHERE id = 1"


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class PathPlan:
    """One path of a goal, ready to call and to price."""

    id: int
    name: str
    model: str
    provider: ProviderConfig
    simulated: bool
    params: dict[str, Any]
    system_prompt: str
    price_in: Decimal | None
    price_out: Decimal | None
    weight: float = 1.0
    alpha0: float | None = None
    beta0: float | None = None
    expected_output_tokens: int = 200

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        if self.price_in is None or self.price_out is None:
            return Decimal(0)
        return (self.price_in * tokens_in + self.price_out * tokens_out) / Decimal(1_000_000)


@dataclass(frozen=True)
class GoalRoute:
    """A goal as routing reads it. `config` is None when the goal's own numbers are refused by
    the engine (saved before they were validated); `config_error` says why."""

    id: int
    slug: str
    active: bool
    success_when: str
    bucket_by: str
    half_life_seconds: float | None
    config: engine.EngineConfig | None
    config_error: str
    paths: tuple[PathPlan, ...]  # enabled, on an enabled provider, by id
    baseline: PathPlan | None  # the configured baseline path, enabled or not
    created_at: datetime
    version: int = 1  # the goal's configuration version (bumped by approved change requests)
    # Rules: the goal's rule set compiled once per catalog build (routerapp.rules).
    rules: tuple[Any, ...] = ()
    # Why the stored rules were refused (then `rules` is empty and the goal routes without).
    rules_error: str = ""
    # Classifier step: off when `classifier` is None.
    classifier: PathPlan | None = None
    classifier_prompt: str = ""
    classifier_timeout_seconds: float = 2.0
    # Shadow traffic (services/shadows.py).
    shadow_rate: float = 0.0


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    prefix: str
    hashed_secret: str
    scopes: frozenset[str]
    goal_ids: frozenset[int] | None  # None: every goal (selectors.goals.goal_ids_visible)
    rate_limit_per_minute: int | None
    revoked: bool
    # The key acts for its owner: a deactivated owner stops it (a key without one: True).
    owner_active: bool = True

    @property
    def is_active(self) -> bool:
        return not self.revoked

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or ApiKey.Scope.ADMIN in self.scopes

    def may_use(self, goal_id: int) -> bool:
        return self.goal_ids is None or goal_id in self.goal_ids


@dataclass(frozen=True)
class Catalog:
    version: int
    day: date  # the prices are those in force on this day (UTC)
    day_ends: float  # time.time() when that day ends

    @property
    def of_today(self) -> bool:
        return time.time() < self.day_ends

    goals: Mapping[str, GoalRoute]  # by slug
    keys: Mapping[str, ApiKeyRecord]  # by prefix

    def goal(self, slug: str) -> GoalRoute:
        route = self.goals.get(slug)
        if route is None:
            raise NotFound(f"Unknown goal '{slug}'.", param="model")
        return route

    def goals_visible(self, key: ApiKeyRecord) -> list[GoalRoute]:
        """The goals a key may call, by slug."""
        return [self.goals[slug] for slug in sorted(self.goals) if key.may_use(self.goals[slug].id)]


@dataclass(frozen=True)
class Learned:
    """A goal's posterior rows (path id, bucket) -> (successes, failures, updated_at), not yet
    decayed, and its controller state, as read at `read_at` (time.monotonic()). `controller`
    is None when the stored state is refused (`controller_error` says why)."""

    goal_id: int
    rows: Mapping[tuple[int, str], tuple[float, float, datetime]]
    controller: engine.ControllerState | None
    controller_error: str
    read_at: float

    def controller_state(self) -> engine.ControllerState:
        if self.controller is None:
            raise engine.InvalidConfig(self.controller_error)
        return self.controller


# --------------------------------------------------------------------------- reading


def provider_config(provider: Provider) -> ProviderConfig:
    return ProviderConfig(
        id=provider.id,
        name=provider.name,
        base_url=settings.SIMULATOR_URL if provider.is_simulator else provider.base_url,
        api_key=provider.resolve_api_key(),
        timeout_seconds=provider.timeout_seconds,
        max_retries=provider.max_retries,
    )


def catalog_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute(VERSION_SQL)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _prices_on(day: date) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """(provider id, model) -> the (input, output) price in force on `day`."""
    prices: dict[tuple[int, str], tuple[Decimal, Decimal]] = {}
    rows = (
        ModelPrice.objects.filter(effective_from__lte=day)
        .order_by("provider_id", "model", "effective_from")
        .values_list("provider_id", "model", "input_per_million", "output_per_million")
    )
    for provider_id, model, price_in, price_out in rows:
        prices[(provider_id, model)] = (price_in, price_out)  # the latest one wins
    return prices


def _path_plan(
    path: Path, provider: ProviderConfig, price: tuple[Decimal, Decimal] | None
) -> PathPlan:
    return PathPlan(
        id=path.id,
        name=path.name,
        model=path.model,
        provider=provider,
        simulated=path.provider.is_simulator,
        params=path.call_params(),
        system_prompt=path.system_prompt,
        price_in=price[0] if price else None,
        price_out=price[1] if price else None,
        weight=path.weight,
        alpha0=path.alpha0,
        beta0=path.beta0,
        expected_output_tokens=path.expected_output_tokens,
    )


def _goal_route(goal: Goal, paths: list[PathPlan], every_path: dict[int, PathPlan]) -> GoalRoute:
    try:
        config, error = goal.engine_config(), ""
    except engine.EngineError as refused:
        config, error = None, str(refused)
    try:
        rules, rules_error = rules_compile(goal.rules), ""
    except RuleError as refused_rules:
        # Rules stored past the checks (an edit in the database, an older version of the
        # checks): the goal routes without them and every decision says so, never a 500.
        rules, rules_error = (), f"the goal's rules were ignored: {refused_rules}"
    return GoalRoute(
        id=goal.id,
        slug=goal.slug,
        active=goal.status == Goal.Status.ACTIVE,
        success_when=goal.success_when,
        bucket_by=goal.bucket_by,
        half_life_seconds=goal.half_life_seconds,
        config=config,
        config_error=error,
        paths=tuple(paths),
        baseline=every_path.get(goal.baseline_path_id) if goal.baseline_path_id else None,
        created_at=goal.created_at,
        version=goal.version,
        rules=rules,
        rules_error=rules_error,
        classifier=every_path.get(goal.classifier_path_id) if goal.classifier_path_id else None,
        classifier_prompt=goal.classifier_prompt,
        classifier_timeout_seconds=goal.classifier_timeout_seconds,
        shadow_rate=goal.shadow_rate,
    )


def catalog_read(version: int) -> Catalog:
    """The whole catalog as stored now (the caller read `version` first: data at least as new
    as the version number, so a write in between only causes one more rebuild)."""
    day = timezone.now().date()
    prices = _prices_on(day)
    providers: dict[int, ProviderConfig] = {}
    every_path: dict[int, PathPlan] = {}
    enabled: dict[int, list[PathPlan]] = {}
    for path in Path.objects.select_related("provider").order_by("id"):
        if path.provider_id not in providers:
            providers[path.provider_id] = provider_config(path.provider)
        plan = _path_plan(
            path, providers[path.provider_id], prices.get((path.provider_id, path.model))
        )
        every_path[path.id] = plan
        if path.enabled and path.provider.enabled:
            enabled.setdefault(path.goal_id, []).append(plan)
    goals = {
        goal.slug: _goal_route(goal, enabled.get(goal.id, []), every_path)
        for goal in Goal.objects.defer("controller_state", "description")
    }
    allowed: dict[int, set[int]] = {}
    for key_id, goal_id in ApiKey.allowed_goals.through.objects.values_list("apikey_id", "goal_id"):
        allowed.setdefault(key_id, set()).add(goal_id)
    keys = {
        prefix: ApiKeyRecord(
            id=key_id,
            prefix=prefix,
            hashed_secret=hashed,
            scopes=frozenset(scopes or ()),
            goal_ids=frozenset(allowed[key_id]) if key_id in allowed else None,
            rate_limit_per_minute=limit,
            revoked=revoked_at is not None,
            owner_active=owner_active is not False,
        )
        for key_id, prefix, hashed, scopes, limit, revoked_at, owner_active in (
            ApiKey.objects.values_list(
                "id",
                "prefix",
                "hashed_secret",
                "scopes",
                "rate_limit_per_minute",
                "revoked_at",
                "created_by__is_active",
            )
        )
    }
    day_ends = datetime.combine(day + timedelta(days=1), dt_time.min, tzinfo=UTC).timestamp()
    return Catalog(version=version, day=day, day_ends=day_ends, goals=goals, keys=keys)


def learned_read(goal_ids: list[int]) -> dict[int, Learned]:
    """The learned state of these goals as stored now (two queries, whatever their number)."""
    read_at = time.monotonic()
    rows: dict[int, dict[tuple[int, str], tuple[float, float, datetime]]] = {
        goal_id: {} for goal_id in goal_ids
    }
    for goal_id, path_id, bucket, successes, failures, updated_at in Posterior.objects.filter(
        goal_id__in=goal_ids
    ).values_list("goal_id", "path_id", "bucket", "successes", "failures", "updated_at"):
        rows[goal_id][(path_id, bucket)] = (successes, failures, updated_at)
    states = dict(Goal.objects.filter(id__in=goal_ids).values_list("id", "controller_state"))
    learned = {}
    for goal_id in goal_ids:
        try:
            controller, error = engine.ControllerState.from_dict(states.get(goal_id)), ""
        except engine.EngineError as refused:  # the call answers 409 naming it (routing)
            controller, error = None, str(refused)
        learned[goal_id] = Learned(
            goal_id=goal_id,
            rows=rows[goal_id],
            controller=controller,
            controller_error=error,
            read_at=read_at,
        )
    return learned


# --------------------------------------------------------------------------- the cache


class _State:
    """This process's snapshots and the bookkeeping of its refresher."""

    def __init__(self) -> None:
        # (catalog, monotonic time the version check that confirmed it began); one reference,
        # replaced whole, so readers on any thread see a consistent pair.
        self.catalog: tuple[Catalog, float] | None = None
        self.learned: dict[int, Learned] = {}
        self.decisions: dict[int, int] = {}  # goal id -> decisions since its last read
        self.used: dict[int, float] = {}  # goal id -> last lookup (monotonic)
        self.looked_up = 0.0
        self.read_lock = threading.Lock()  # one reader of the catalog at a time
        self.lock = threading.Lock()  # the refresher's start and stop
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.refresher: threading.Thread | None = None


_state = _State()


def max_age() -> float:
    return float(settings.ROUTING_CACHE_SECONDS)


def _catalog_current(now: float, limit: float) -> Catalog | None:
    held = _state.catalog
    if held is None or now - held[1] > limit:
        return None
    catalog = held[0]
    return catalog if catalog.of_today else None


def catalog_fresh() -> Catalog | None:
    """The catalog when it may be served as it is (no SQL), else None."""
    limit = max_age()
    if limit <= 0:
        return None
    now = time.monotonic()
    _state.looked_up = now
    _refresher_ensure()
    return _catalog_current(now, limit)


def catalog_refresh() -> Catalog:
    """Check the version (one query) and rebuild the catalog if it changed; returns it."""
    with _state.read_lock:
        began = time.monotonic()
        held = _state.catalog
        version = catalog_version()
        if held is not None and held[0].version == version and held[0].of_today:
            catalog = held[0]
        else:
            catalog = catalog_read(version)
        _state.catalog = (catalog, began)
        return catalog


def catalog_get() -> Catalog:
    """The catalog, from memory when fresh, else checked and (re)read in this thread."""
    return catalog_fresh() or catalog_refresh()


async def catalog_aget() -> Catalog:
    """`catalog_get` for the event loop: memory when fresh, else the read runs on the DB pool."""
    catalog = catalog_fresh()
    return catalog if catalog is not None else await run_db(catalog_refresh)


def learned_fresh(goal_id: int) -> Learned | None:
    limit = max_age()
    if limit <= 0:
        return None
    now = time.monotonic()
    _state.looked_up = _state.used[goal_id] = now
    _refresher_ensure()
    learned = _state.learned.get(goal_id)
    if learned is None or now - learned.read_at > limit:
        return None
    return learned


def learned_refresh(goal_id: int) -> Learned:
    learned = learned_read([goal_id])[goal_id]
    _store_learned(learned)
    return learned


def _store_learned(learned: Learned) -> None:
    current = _state.learned.get(learned.goal_id)
    if current is None or current.read_at <= learned.read_at:  # never replace newer by older
        _state.learned[learned.goal_id] = learned


def learned_get(goal_id: int) -> Learned:
    return learned_fresh(goal_id) or learned_refresh(goal_id)


async def learned_aget(goal_id: int) -> Learned:
    learned = learned_fresh(goal_id)
    return learned if learned is not None else await run_db(learned_refresh, goal_id)


def learned_note_decision(goal_id: int) -> None:
    """A decision of this goal was recorded by this process: past REFRESH_AFTER_DECISIONS of
    them the refresher re-reads the goal's learned state at once."""
    count = _state.decisions.get(goal_id, 0) + 1
    _state.decisions[goal_id] = count
    if count >= REFRESH_AFTER_DECISIONS:
        _state.wake.set()


# --------------------------------------------------------------------------- the refresher


def _refresh_round(period: float) -> None:
    catalog_refresh()
    now = time.monotonic()
    due = [
        goal_id
        for goal_id, used_at in list(_state.used.items())
        if now - used_at <= IDLE_SECONDS
        and (
            goal_id not in _state.learned
            # Not `>= period`: a read a hair under one period old would wait another period
            # and reach the bound, where requests read for themselves.
            or now - _state.learned[goal_id].read_at >= period / 2
            or _state.decisions.get(goal_id, 0) >= REFRESH_AFTER_DECISIONS
        )
    ]
    if due:
        for goal_id in due:
            _state.decisions[goal_id] = 0  # counted from the read below
        for learned in learned_read(due).values():
            _store_learned(learned)


def _refresher_run(stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            period = max_age() / 2
            if period <= 0 or time.monotonic() - _state.looked_up > IDLE_SECONDS:
                return
            try:
                _refresh_round(period)
                close_old_connections()
            except Exception:  # the next round retries; requests read for themselves meanwhile
                logger.exception("routing cache: refresh failed")
            _state.wake.wait(timeout=period)
            _state.wake.clear()
    finally:
        with _state.lock:
            if _state.refresher is threading.current_thread():
                _state.refresher = None
        connection.close()  # this thread's own connection


def _refresher_ensure() -> None:
    if _state.refresher is not None:
        return
    with _state.lock:
        if _state.refresher is None and not _state.stop.is_set():
            _state.refresher = threading.Thread(
                target=_refresher_run, args=(_state.stop,), name="routing-cache", daemon=True
            )
            _state.refresher.start()


def cache_reset() -> None:
    """Forget every snapshot and stop the refresher (tests; a changed setting)."""
    with _state.lock:
        thread = _state.refresher
        _state.stop.set()
        _state.wake.set()
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=10)
    with _state.lock:
        _state.refresher = None
        _state.stop = threading.Event()
        _state.wake.clear()
        _state.catalog = None
        _state.learned.clear()
        _state.decisions.clear()
        _state.used.clear()


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    # A snapshot holds values derived from settings (SIMULATOR_URL, allowed key variables).
    cache_reset()
