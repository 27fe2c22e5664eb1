"""Projected effect of a configuration change, replayed on logged decisions. PURE (numpy, the
engine, rules, features and stats; no Django).

`project(decisions, paths=..., current=..., proposed=..., arms_builder=...)` takes a goal's
last N logged calls and two policies (the live configuration and the proposed one, each a
`Policy`: engine settings, path weights/priors/enabled, rules, bucketing, evidence) and
reports, for each policy, what it would have done on those calls:

1. **Choice distribution** pi(p | call) per call and path. The policy's rules run on the
   stored features (plus the stored `classifier_label`): a pin gives its path probability 1;
   excluded paths are removed; a bucket rule sets the context bucket (else `bucket_by` does).
   The engine then spreads the call over the remaining enabled paths with
   `engine.allocation_shares` on the goal's *current* posteriors (arms built by the caller's
   `arms_builder`, i.e. `selectors.posteriors.arms_for`, the router's own) and the policy's
   settings. The engine's answer depends only on (bucket, eligible paths, prompt tokens, which
   set the expected costs), so calls sharing those are evaluated once, with a generator seeded
   from that key: identical policies give identical numbers (a no-op projects zero change),
   and two policies that agree on a call use the same random numbers for it.
2. **Share** per path: the mean of pi over the calls. **Calls that change path**: the expected
   number of calls routed differently, sum over calls of the total variation between the two
   policies' pi (a pin that moves every call counts each; a shift of 40% of one call's
   probability counts 0.4). "Unsupported" moves are counted on the most likely path.
3. **Spend**: sum over calls and paths of pi x the call's cost on that path: the logged cost
   for the path that served it, otherwise the logged tokens (in and out) x that path's current
   price; the output length of a path that did not answer is assumed equal to the logged one.
   **Savings** = the spend of the policy's baseline path on every call minus the spend. Both
   are also scaled to 30 days by the time span of the logged calls, once it is at least a day.
4. **Success rate with a 95% interval**, one method for both policies so they compare:
   - *SNIPS* (self-normalised inverse propensity scoring) when the log supports it: over calls
     with an outcome r and a stored propensity mu > 0 of the served path a, the weight is
     w = pi(a | call) / mu and the estimate sum(w r) / sum(w). The interval is the Wilson score
     interval at Kish's effective sample size n_eff = (sum w)^2 / sum(w^2), i.e. the
     estimate treated as a rate over n_eff independent calls (wide when a few calls carry the
     weight, never outside [0, 1]). Used when at least `MIN_PROPENSITY_OUTCOMES` calls carry a
     propensity and an outcome and each policy's n_eff is at least `MIN_EFFECTIVE_SAMPLE`.
   - otherwise the *direct method*: the mean over calls of sum_p pi(p | call) x the current
     posterior mean of p in the call's bucket (the engine's own posterior, backoff included),
     labelled as such, with a normal interval from the posterior variances of the
     (path, bucket) cells weighted by the traffic they get. It trusts the posteriors; SNIPS
     trusts only the log.
5. **Unsupported**: calls whose most likely path changes to a path that has no logged outcome
   on calls of the same bucket (under the proposed policy's bucketing) in the window; the log
   cannot say how that path does there. Counted per path, and said in the notes.

Outcomes are taken as missing at random (calls without an outcome are left out of SNIPS).
"""

from __future__ import annotations

import ast
import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from routerapp import engine
from routerapp.features import MEDIUM_BELOW, SIMPLE_BELOW
from routerapp.rules import CompiledRule, RuleResult, rules_apply, rules_compile
from routerapp.stats import Z_95, wilson_interval

# SNIPS needs this many logged calls with a propensity and an outcome ...
MIN_PROPENSITY_OUTCOMES = 100
# ... and this effective sample size under each policy; otherwise the direct method is used.
MIN_EFFECTIVE_SAMPLE = 30.0
# Monte Carlo decisions per engine evaluation (the router uses 64 for the propensity).
DRAWS = 256
MONTH_SECONDS = 30 * 86400.0
MIN_SPAN_FOR_MONTH = 86400.0  # seconds of logged traffic before figures are scaled to a month
DIGITS = 8  # rounding of USD (the decisions store 8 decimals) and rates in the result

# Names a rule may use that old decisions did not store, with the value routing gives a call
# without them; a stored value always wins.
NAME_DEFAULTS: Mapping[str, object] = {
    "message_count": 1,
    "task_type": "general",
    "complexity": 0.0,
    "has_json_request": False,
    "reasoning_cues": 0,
    "keywords": [],
    "metadata": {},
    "has_tools": False,
    "system_prompt_tokens": 0,
    "classifier_label": "",
}

Evidence = dict[tuple[int, str], tuple[float, float]]


class ProjectionError(ValueError):
    """The projection cannot be computed (e.g. the engine refuses a policy's numbers)."""


@dataclass(frozen=True)
class PathInfo:
    """A path of the goal as the projection prices it: today's price (USD per 1M tokens, None
    when unknown) and whether its provider can be called at all."""

    id: int
    name: str
    price_in: float | None
    price_out: float | None
    expected_output_tokens: int = 200
    available: bool = True

    def cost(self, tokens_in: float, tokens_out: float) -> float:
        if self.price_in is None or self.price_out is None:
            return 0.0
        return (self.price_in * tokens_in + self.price_out * tokens_out) / 1_000_000


@dataclass(frozen=True)
class PolicyPath:
    """A path's numbers under one policy (what `arms_for` reads: id, weight, alpha0, beta0)."""

    id: int
    name: str
    weight: float
    alpha0: float | None
    beta0: float | None
    enabled: bool


@dataclass(frozen=True)
class Policy:
    config: engine.EngineConfig
    paths: tuple[PolicyPath, ...]  # every path of the goal, by id
    rules: Sequence[Mapping[str, Any]]
    bucket_by: str  # "none" | "complexity" | "task_type"
    evidence: Evidence  # (path id, bucket) -> decayed (successes, failures)
    baseline: int | None  # the path savings are measured against
    state: engine.ControllerState = field(default_factory=engine.ControllerState)


@dataclass(frozen=True)
class LoggedDecision:
    id: int
    path: int | None  # the path that served it (None: the path is gone)
    names: Mapping[str, object]  # stored features + classifier_label
    propensity: float | None
    outcome: float | None
    tokens_in: int
    tokens_out: int
    cost: float
    at: float  # seconds since the epoch


ArmsBuilder = Callable[
    [Sequence[PolicyPath], Evidence, str, Callable[[PolicyPath], float]], list[engine.Arm]
]


def bucket_of(bucket_by: str, names: Mapping[str, object]) -> str:
    """The context bucket `bucket_by` gives a call (services.routing.bucket_for on stored
    names; features.Features.complexity_bucket's thresholds)."""
    if bucket_by == "complexity":
        complexity = _number(names.get("complexity"))
        if complexity < SIMPLE_BELOW:
            return "complexity:simple"
        if complexity < MEDIUM_BELOW:
            return "complexity:medium"
        return "complexity:complex"
    if bucket_by == "task_type":
        return f"task_type:{names.get('task_type', NAME_DEFAULTS['task_type'])}"
    return ""


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _seed(seed: int, key: tuple[object, ...]) -> np.random.Generator:
    # crc32 of the key's repr: stable across processes (hash() of a str is salted).
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])


@dataclass
class _Choices:
    matrix: NDArray[np.float64]  # calls x paths: pi(p | call)
    buckets: list[str]
    pinned: int = 0
    no_path: int = 0  # calls whose excludes left nothing: spread over every enabled path


def _shares(
    arms: list[engine.Arm], policy: Policy, bucket: str, key: tuple[object, ...], seed: int
) -> dict[str, float]:
    try:
        return engine.allocation_shares(
            arms,
            config=policy.config,
            rng=_seed(seed, key),
            state=policy.state,
            bucket=bucket or None,
            draws=DRAWS,
        )
    except engine.InvalidCost:
        # No prices: the router routes on success then (services.routing._rank); so does this.
        return engine.allocation_shares(
            arms,
            config=replace(policy.config, objective="success"),
            rng=_seed(seed, key),
            bucket=bucket or None,
            draws=DRAWS,
        )


def _expected_cost(
    info: Mapping[int, PathInfo], prompt_tokens: int
) -> Callable[[PolicyPath], float]:
    """What routing gives the engine: the prompt at the path's price plus its expected output."""

    def cost(path: PolicyPath) -> float:
        plan = info[path.id]
        return plan.cost(prompt_tokens, plan.expected_output_tokens)

    return cost


def prompt_tokens_rounded(tokens: int) -> int:
    """Prompt tokens to two significant figures: the expected costs the engine compares move
    by under 5% within such a band, and calls in one band share one engine evaluation."""
    if tokens < 100:
        return tokens
    scale = 10 ** (len(str(tokens)) - 2)
    return int(round(tokens / scale) * scale)


RuleCache = dict[tuple[tuple[CompiledRule, ...], frozenset[str]], list[RuleResult]]


def _referenced(compiled: Sequence[CompiledRule]) -> tuple[str, ...] | None:
    """The names the conditions read (None: not known, every name counts)."""
    names: set[str] = set()
    for rule in compiled:
        try:
            tree = ast.parse(rule.condition, mode="eval")
        except SyntaxError:
            return None
        names.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
    return tuple(sorted(names))


def _rules_applied(
    compiled: tuple[CompiledRule, ...],
    decisions: Sequence[LoggedDecision],
    available: frozenset[str],
) -> list[RuleResult]:
    """`rules_apply` per call; calls that agree on every name the conditions read get the
    same result, so each distinct combination is evaluated once."""
    if not compiled:
        return [rules_apply(compiled, {}, available=available)] * len(decisions)
    referenced = _referenced(compiled)
    results: dict[str, RuleResult] = {}
    applied = []
    for decision in decisions:
        names = {**NAME_DEFAULTS, **decision.names}
        read = (
            names
            if referenced is None
            else {name: names[name] for name in referenced if name in names}
        )
        key = json.dumps(read, sort_keys=True, default=str)
        result = results.get(key)
        if result is None:
            result = results[key] = rules_apply(compiled, names, available=available)
        applied.append(result)
    return applied


def _choices(
    decisions: Sequence[LoggedDecision],
    *,
    paths: Sequence[PathInfo],
    policy: Policy,
    arms_builder: ArmsBuilder,
    seed: int,
    rule_cache: RuleCache,
) -> _Choices:
    index = {path.id: i for i, path in enumerate(paths)}
    info = {path.id: path for path in paths}
    compiled = rules_compile(policy.rules)
    enabled = [p for p in policy.paths if p.enabled and info[p.id].available]
    if not enabled:
        raise ProjectionError("no enabled path: the goal could not route any call")
    available = frozenset(p.name for p in enabled)
    by_name = {p.name: p for p in enabled}
    result = _Choices(matrix=np.zeros((len(decisions), len(paths))), buckets=[])
    cache: dict[tuple[object, ...], dict[str, float]] = {}
    # Two policies with the same rules and paths (a weight or setting change) see the same
    # matches: evaluated once.
    applied_rules = rule_cache.get((compiled, available))
    if applied_rules is None:
        applied_rules = _rules_applied(compiled, decisions, available)
        rule_cache[(compiled, available)] = applied_rules
    for row, (decision, applied) in enumerate(zip(decisions, applied_rules, strict=True)):
        bucket = (
            applied.bucket
            if applied.bucket is not None
            else bucket_of(policy.bucket_by, decision.names)
        )
        result.buckets.append(bucket)
        if applied.pinned is not None:
            result.matrix[row, index[by_name[applied.pinned].id]] = 1.0
            result.pinned += 1
            continue
        eligible = [p for p in enabled if p.name not in applied.excluded]
        if not eligible:  # rules_check refuses this at save; an old rule set may still do it
            eligible = enabled
            result.no_path += 1
        prompt_tokens = prompt_tokens_rounded(
            int(_number(decision.names.get("prompt_tokens")) or decision.tokens_in)
        )
        key = (bucket, tuple(p.id for p in eligible), prompt_tokens)
        shares = cache.get(key)
        if shares is None:
            arms = arms_builder(
                eligible,
                policy.evidence,
                bucket,
                _expected_cost(info, prompt_tokens),
            )
            if not arms:
                raise ProjectionError(
                    "the engine refuses every eligible path's numbers (weights or priors)"
                )
            try:
                shares = _shares(arms, policy, bucket, key, seed)
            except engine.EngineError as error:
                raise ProjectionError(f"the engine refuses this configuration: {error}") from None
            cache[key] = shares
        for path_id, share in shares.items():
            result.matrix[row, index[int(path_id)]] = share
    return result


@dataclass(frozen=True)
class _Log:
    """The logged calls as arrays (one row per call)."""

    served: NDArray[np.int64]  # column of the serving path, -1 when unknown
    propensity: NDArray[np.float64]  # nan when not stored
    outcome: NDArray[np.float64]  # nan when none
    costs: NDArray[np.float64]  # calls x paths: the call's cost on each path
    logged_cost: NDArray[np.float64]  # what each call cost as served


def _log(decisions: Sequence[LoggedDecision], paths: Sequence[PathInfo]) -> _Log:
    index = {path.id: i for i, path in enumerate(paths)}
    served = np.array(
        [index.get(d.path, -1) if d.path is not None else -1 for d in decisions], dtype=np.int64
    )
    propensity = np.array(
        [d.propensity if d.propensity is not None else math.nan for d in decisions], dtype=float
    )
    outcome = np.array(
        [d.outcome if d.outcome is not None else math.nan for d in decisions], dtype=float
    )
    tokens_in = np.array([d.tokens_in for d in decisions], dtype=float)
    tokens_out = np.array([d.tokens_out for d in decisions], dtype=float)
    price_in = np.array([p.price_in or 0.0 for p in paths]) / 1_000_000
    price_out = np.array([p.price_out or 0.0 for p in paths]) / 1_000_000
    priced = np.array([p.price_in is not None and p.price_out is not None for p in paths])
    costs = (np.outer(tokens_in, price_in) + np.outer(tokens_out, price_out)) * priced
    logged_cost = np.array([d.cost for d in decisions], dtype=float)
    rows = np.flatnonzero(served >= 0)
    costs[rows, served[rows]] = logged_cost[rows]
    return _Log(
        served=served,
        propensity=propensity,
        outcome=outcome,
        costs=costs,
        logged_cost=logged_cost,
    )


@dataclass(frozen=True)
class _Estimate:
    rate: float
    low: float
    high: float
    effective: float

    def as_dict(self, method: str, calls: int) -> dict[str, Any]:
        return {
            "rate": round(self.rate, DIGITS),
            "low": round(self.low, DIGITS),
            "high": round(self.high, DIGITS),
            "method": method,
            "effective_sample_size": round(self.effective, 1),
            "calls": calls,
        }


def _snips(matrix: NDArray[np.float64], log: _Log, usable: NDArray[np.bool_]) -> _Estimate:
    rows = np.flatnonzero(usable)
    weights = matrix[rows, log.served[rows]] / log.propensity[rows]
    total = float(weights.sum())
    if total <= 0.0:
        return _Estimate(0.0, 0.0, 1.0, 0.0)
    rate = float((weights * log.outcome[rows]).sum() / total)
    effective = total * total / float((weights * weights).sum())
    rate = min(max(rate, 0.0), 1.0)
    low, high = wilson_interval(rate * effective, effective)
    return _Estimate(rate, low, high, effective)


def _direct(
    matrix: NDArray[np.float64], buckets: Sequence[str], cells: Mapping[str, NDArray[np.float64]]
) -> _Estimate:
    """Posterior-mean estimate; `cells[bucket]` is a (2, paths) array of means and variances."""
    count = len(buckets)
    means = np.array([cells[bucket][0] for bucket in buckets])
    rate = float((matrix * means).sum() / count)
    # Each (path, bucket) cell's posterior error is shared by every call that lands in it.
    variance = 0.0
    for bucket in set(buckets):
        rows = np.array([b == bucket for b in buckets])
        mass = matrix[rows].sum(axis=0) / count
        variance += float((mass * mass * cells[bucket][1]).sum())
    half = Z_95 * math.sqrt(variance)
    effective = rate * (1 - rate) / variance if variance > 0 else float(count)
    return _Estimate(rate, max(rate - half, 0.0), min(rate + half, 1.0), effective)


def _money(value: float) -> float:
    return round(value, DIGITS)


def _figures(
    choices: _Choices,
    log: _Log,
    policy: Policy,
    paths: Sequence[PathInfo],
    month_factor: float | None,
) -> dict[str, Any]:
    matrix = choices.matrix
    spend = float((matrix * log.costs).sum())
    columns = {path.id: i for i, path in enumerate(paths)}
    baseline_spend = (
        float(log.costs[:, columns[policy.baseline]].sum()) if policy.baseline in columns else None
    )
    savings = None if baseline_spend is None else baseline_spend - spend
    figures: dict[str, Any] = {
        "shares": {
            path.name: round(float(share), DIGITS)
            for path, share in zip(paths, matrix.mean(axis=0), strict=True)
        },
        "spend": _money(spend),
        "baseline": next((p.name for p in paths if p.id == policy.baseline), None),
        "baseline_spend": None if baseline_spend is None else _money(baseline_spend),
        "savings": None if savings is None else _money(savings),
        "spend_per_month": None if month_factor is None else _money(spend * month_factor),
        "savings_per_month": (
            None if month_factor is None or savings is None else _money(savings * month_factor)
        ),
        "pinned_calls": choices.pinned,
    }
    return figures


def _empty(current: Policy, proposed: Policy, paths: Sequence[PathInfo]) -> dict[str, Any]:
    def side(policy: Policy) -> dict[str, Any]:
        return {
            "shares": {path.name: 0.0 for path in paths},
            "spend": 0.0,
            "baseline": next((p.name for p in paths if p.id == policy.baseline), None),
            "baseline_spend": 0.0,
            "savings": 0.0,
            "spend_per_month": None,
            "savings_per_month": None,
            "pinned_calls": 0,
            "success": None,
        }

    return {
        "decisions": 0,
        "window": None,
        "current": side(current),
        "proposed": side(proposed),
        "delta": {
            "spend": 0.0,
            "savings": 0.0,
            "spend_per_month": None,
            "savings_per_month": None,
            "success": None,
        },
        "changed_path": 0,
        "paths": {path.name: {"current": 0.0, "proposed": 0.0, "outcomes": 0} for path in paths},
        "unsupported": {},
        "method": "none",
        "notes": ["No logged calls to replay yet: nothing can be projected."],
    }


def _posterior_cells(
    buckets: set[str],
    *,
    policy: Policy,
    arms_builder: ArmsBuilder,
    paths: Sequence[PathInfo],
) -> dict[str, NDArray[np.float64]]:
    """Per bucket: the current posterior mean and variance of every path (the current
    policy's priors; a path the engine refuses is taken as unknown, mean 1/2)."""
    cells: dict[str, NDArray[np.float64]] = {}
    columns = {path.id: i for i, path in enumerate(paths)}
    config = replace(policy.config, objective="success")
    for bucket in buckets:
        cell = np.vstack([np.full(len(paths), 0.5), np.full(len(paths), 1 / 12)])
        arms = arms_builder(policy.paths, policy.evidence, bucket, lambda p: 0.0)
        try:
            parameters = engine.posterior_parameters(arms, config=config) if arms else {}
        except engine.EngineError:
            parameters = {}
        for path_id, (alpha, beta) in parameters.items():
            total = alpha + beta
            column = columns[int(path_id)]
            cell[0, column] = alpha / total
            cell[1, column] = alpha * beta / (total * total * (total + 1))
        cells[bucket] = cell
    return cells


def project(
    decisions: Sequence[LoggedDecision],
    *,
    paths: Sequence[PathInfo],
    current: Policy,
    proposed: Policy,
    arms_builder: ArmsBuilder,
    seed: int = 0,
) -> dict[str, Any]:
    """The projected effect of moving from `current` to `proposed` on these logged calls
    (newest first or any order); a JSON-able dict (see the module docstring)."""
    if not decisions:
        return _empty(current, proposed, paths)
    count = len(decisions)
    log = _log(decisions, paths)
    rule_cache: RuleCache = {}
    before = _choices(
        decisions,
        paths=paths,
        policy=current,
        arms_builder=arms_builder,
        seed=seed,
        rule_cache=rule_cache,
    )
    after = _choices(
        decisions,
        paths=paths,
        policy=proposed,
        arms_builder=arms_builder,
        seed=seed,
        rule_cache=rule_cache,
    )
    times = [decision.at for decision in decisions]
    span = max(times) - min(times)
    # Scaling minutes of traffic to a month multiplies their noise ~10^4 times: only from a day.
    month_factor = MONTH_SECONDS / span if span >= MIN_SPAN_FOR_MONTH else None
    notes: list[str] = []

    # Success: one method for both sides.
    has_outcome = ~np.isnan(log.outcome)
    usable = has_outcome & (log.served >= 0) & (np.nan_to_num(log.propensity, nan=0.0) > 0)
    logged_with_propensity = int(usable.sum())
    method = "direct"
    estimates: tuple[_Estimate, _Estimate] | None = None
    if logged_with_propensity >= MIN_PROPENSITY_OUTCOMES:
        snips = (_snips(before.matrix, log, usable), _snips(after.matrix, log, usable))
        if min(estimate.effective for estimate in snips) >= MIN_EFFECTIVE_SAMPLE:
            method, estimates = "snips", snips
            notes.append(
                f"Success rates: self-normalised inverse-propensity estimate over "
                f"{logged_with_propensity} logged calls with an outcome and a propensity "
                f"(effective sample size {snips[0].effective:.0f} current, "
                f"{snips[1].effective:.0f} proposed)."
            )
        else:
            notes.append(
                f"The proposed routing differs too much from what was logged (effective sample "
                f"size {min(e.effective for e in snips):.0f} < {MIN_EFFECTIVE_SAMPLE:.0f}): "
                "success rates are a direct-method estimate from the current posteriors."
            )
    else:
        notes.append(
            f"Only {logged_with_propensity} of {count} logged calls carry a propensity and an "
            f"outcome (at least {MIN_PROPENSITY_OUTCOMES} needed): success rates are a "
            "direct-method estimate from the current posteriors, which it takes as right."
        )
    if estimates is None:
        cells = _posterior_cells(
            set(before.buckets) | set(after.buckets),
            policy=current,
            arms_builder=arms_builder,
            paths=paths,
        )
        estimates = (
            _direct(before.matrix, before.buckets, cells),
            _direct(after.matrix, after.buckets, cells),
        )
    calls = logged_with_propensity if method == "snips" else count

    first_before = before.matrix.argmax(axis=1)
    first_after = after.matrix.argmax(axis=1)
    moved = first_before != first_after
    # Expected calls routed differently: the share of each call's probability that moves
    # (total variation), so a policy that keeps the same favourite but moves 40% of the traffic
    # counts 40% of the calls, and a no-op counts exactly 0.
    changed = 0.5 * float(np.abs(after.matrix - before.matrix).sum())
    # Where the log has outcomes: (path column, bucket under the proposed bucketing).
    observed = {
        (int(log.served[i]), after.buckets[i])
        for i in np.flatnonzero(has_outcome & (log.served >= 0))
    }
    unsupported: dict[str, int] = {}
    for i in np.flatnonzero(moved):
        target = int(first_after[i])
        if (target, after.buckets[i]) not in observed:
            name = paths[target].name
            unsupported[name] = unsupported.get(name, 0) + 1
    if unsupported:
        listed = ", ".join(f"{n} to {name}" for name, n in sorted(unsupported.items()))
        notes.append(
            f"{sum(unsupported.values())} calls would move to a path with no logged outcome on "
            f"calls of their bucket ({listed}): the log cannot support their estimate."
        )

    current_figures = _figures(before, log, current, paths, month_factor)
    proposed_figures = _figures(after, log, proposed, paths, month_factor)
    current_figures["success"] = estimates[0].as_dict(method, calls)
    proposed_figures["success"] = estimates[1].as_dict(method, calls)

    def difference(key: str) -> float | None:
        a, b = current_figures[key], proposed_figures[key]
        return None if a is None or b is None else _money(b - a)

    outcomes_per_path = np.bincount(
        log.served[has_outcome & (log.served >= 0)], minlength=len(paths)
    )
    success_sum = np.bincount(
        log.served[has_outcome & (log.served >= 0)],
        weights=log.outcome[has_outcome & (log.served >= 0)],
        minlength=len(paths),
    )
    path_rows = {
        path.name: {
            "current": current_figures["shares"][path.name],
            "proposed": proposed_figures["shares"][path.name],
            "outcomes": int(outcomes_per_path[i]),
            "logged_success": (
                round(float(success_sum[i] / outcomes_per_path[i]), DIGITS)
                if outcomes_per_path[i]
                else None
            ),
            "price_in": path.price_in,
            "price_out": path.price_out,
        }
        for i, path in enumerate(paths)
    }
    if current.baseline != proposed.baseline:
        notes.append("The baseline path changes: each side's savings are against its own baseline.")
    if month_factor is None:
        notes.append("The logged calls span less than a day: figures are not scaled to a month.")
    if after.no_path or before.no_path:
        notes.append(
            f"{max(after.no_path, before.no_path)} calls matched exclude rules that leave no "
            "enabled path; they are spread over every enabled path."
        )
    notes.append(
        "Costs on paths that did not serve a call use its logged token counts at today's prices."
    )
    return {
        "decisions": count,
        "window": {
            "from": datetime.fromtimestamp(min(times), UTC).isoformat(),
            "to": datetime.fromtimestamp(max(times), UTC).isoformat(),
            "days": round(span / 86400, 3),
        },
        "current": current_figures,
        "proposed": proposed_figures,
        "delta": {
            "spend": difference("spend"),
            "savings": difference("savings"),
            "spend_per_month": difference("spend_per_month"),
            "savings_per_month": difference("savings_per_month"),
            "success": round(estimates[1].rate - estimates[0].rate, DIGITS),
        },
        "changed_path": int(round(changed)),
        "paths": path_rows,
        "unsupported": unsupported,
        "method": method,
        "notes": notes,
        "logged": {
            "spend": _money(float(log.logged_cost.sum())),
            "outcomes": int(has_outcome.sum()),
            "with_propensity": logged_with_propensity,
            "success": (
                round(float(np.nanmean(log.outcome)), DIGITS) if has_outcome.any() else None
            ),
        },
    }
