"""The replay loop: shuffled order, engine decisions, bandit feedback, score.py's metrics.

Each request is routed the way the service routes a call:
- bucket from the context (`subject`, `subject+features` or `none`), evidence from the
  bucket and goal-wide counts (with an optional half-life on a synthetic clock of one request
  per `seconds_per_request`);
- expected cost per arm = prompt tokens (known from the prompt) x input price + expected
  output tokens x output price, the expected output being the running mean of the output
  lengths observed for that arm in the bucket (goal-wide while the bucket has none, and
  `default_response_tokens` before any) - never the row's own response length, which is only
  known after the call;
- only the chosen model's correctness is revealed and fed to the posteriors and controller;
- the charged cost is the row's true cost, exactly as score.py computes it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routerapp.engine import (
    Arm,
    ControllerState,
    EngineConfig,
    controller_observe,
    decay_factor,
    rank_paths,
)
from routerapp.replay.data import Pricing, RouteBenchRows, length_classes, prompt_feature

ARMS = ("weak", "strong")
LENGTH_CLASSES = 2
CONTEXTS = ("subject", "subject+length", "subject+features", "none")


@dataclass(frozen=True)
class ReplayOptions:
    config: EngineConfig = field(default_factory=EngineConfig)
    context: str = "subject"
    seed: int = 0
    pricing: Pricing = field(default_factory=Pricing)
    seconds_per_request: float = 1.0
    # Pseudo-count a feature sub-bucket borrows from its subject (subject+features only).
    subject_backoff_strength: float = 20.0
    length_classes: int = LENGTH_CLASSES


@dataclass(frozen=True)
class ReplayResult:
    order: np.ndarray  # row indices in request order
    to_strong: np.ndarray  # bool per request, aligned with `order`
    controller: ControllerState
    reasons: dict[str, int]


def _buckets(
    rows: RouteBenchRows, context: str, order: list[int], length_classes_: int = LENGTH_CLASSES
) -> tuple[list[str], list[str]]:
    """(bucket, parent) per row; the parent is the level a sub-bucket backs off to first."""
    if context == "none":
        return [""] * len(rows), [""] * len(rows)
    if context == "subject":
        return list(rows.subjects), list(rows.subjects)
    if context == "subject+length":
        classes = length_classes(rows.subjects, rows.prompt_chars, length_classes_, order)
        return (
            [f"{s}|{c}" for s, c in zip(rows.subjects, classes, strict=True)],
            list(rows.subjects),
        )
    if context == "subject+features":
        features = [prompt_feature(p) for p in rows.prompts]
        return (
            [f"{s}|{f}" for s, f in zip(rows.subjects, features, strict=True)],
            list(rows.subjects),
        )
    raise ValueError(f"unknown context {context!r}; expected one of {', '.join(CONTEXTS)}")


def replay(
    rows: RouteBenchRows,
    options: ReplayOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Route every row once in a seeded shuffled order; returns the decisions."""
    count = len(rows)
    order = np.random.default_rng(options.seed).permutation(count)
    # A separate stream for the engine, so the order does not depend on engine draws.
    rng = np.random.default_rng([options.seed, 1])
    config = options.config
    pricing = options.pricing
    buckets, parents = _buckets(rows, options.context, order.tolist(), options.length_classes)
    bucket_ids = {b: i for i, b in enumerate(sorted(set(buckets)))}
    parent_ids = {p: i for i, p in enumerate(sorted(set(parents)))}
    # evidence[level][index, arm, (successes, failures)]
    bucket_evidence = np.zeros((len(bucket_ids), 2, 2))
    parent_evidence = np.zeros((len(parent_ids), 2, 2))
    goal_evidence = np.zeros((2, 2))
    # Running output-token sums and counts per bucket and arm (and goal-wide).
    output_sum = np.zeros((len(bucket_ids), 2))
    output_count = np.zeros((len(bucket_ids), 2))
    goal_output_sum = np.zeros(2)
    goal_output_count = np.zeros(2)
    prompt_tokens = pricing.prompt_tokens(rows.prompt_chars)
    response_tokens = np.stack(
        [
            pricing.response_tokens(rows.weak_response_chars),
            pricing.response_tokens(rows.strong_response_chars),
        ],
        axis=1,
    )
    correct = np.stack([rows.weak, rows.strong], axis=1).astype(float)
    nested = options.context in ("subject+features", "subject+length")
    factor = decay_factor(
        half_life_seconds=config.half_life_seconds, elapsed_seconds=options.seconds_per_request
    )
    state = ControllerState()
    to_strong = np.zeros(count, dtype=bool)
    reasons: dict[str, int] = {}
    for step, row in enumerate(order.tolist()):
        if factor < 1.0:
            bucket_evidence *= factor
            parent_evidence *= factor
            goal_evidence *= factor
        b = bucket_ids[buckets[row]]
        p = parent_ids[parents[row]]
        own = bucket_evidence[b]
        if nested:
            # Two-level backoff through the engine's one level: the "goal-wide" numbers given
            # for a sub-bucket are its subject's, plus the goal's rate lent to the subject.
            subject = parent_evidence[p]
            other = np.maximum(goal_evidence - subject, 0.0)
            other_total = other.sum(axis=1, keepdims=True)
            lent = np.minimum(other_total, options.subject_backoff_strength) / np.maximum(
                other_total, 1e-300
            )
            upper = subject + lent * other
        else:
            upper = goal_evidence
        arms = []
        for arm_index, name in enumerate(ARMS):
            if output_count[b, arm_index] > 0:
                expected_out = output_sum[b, arm_index] / output_count[b, arm_index]
            elif goal_output_count[arm_index] > 0:
                expected_out = goal_output_sum[arm_index] / goal_output_count[arm_index]
            else:
                expected_out = pricing.default_response_tokens
            arms.append(
                Arm(
                    path_id=name,
                    expected_cost=pricing.cost(
                        strong=arm_index == 1,
                        prompt_tokens=float(prompt_tokens[row]),
                        response_tokens=float(expected_out),
                    ),
                    successes=float(own[arm_index, 0]),
                    failures=float(own[arm_index, 1]),
                    goal_successes=float(upper[arm_index, 0]),
                    goal_failures=float(upper[arm_index, 1]),
                )
            )
        ranking = rank_paths(arms, config=config, rng=rng, state=state, bucket=buckets[row] or None)
        chosen = 1 if ranking.order[0] == "strong" else 0
        to_strong[step] = chosen == 1
        reasons[ranking.reason] = reasons.get(ranking.reason, 0) + 1
        value = float(correct[row, chosen])
        delta = (value, 1.0 - value)
        bucket_evidence[b, chosen] += delta
        parent_evidence[p, chosen] += delta
        goal_evidence[chosen] += delta
        observed_out = float(response_tokens[row, chosen])
        output_sum[b, chosen] += observed_out
        output_count[b, chosen] += 1
        goal_output_sum[chosen] += observed_out
        goal_output_count[chosen] += 1
        state = controller_observe(
            state,
            config=config,
            value=value,
            reference_quality=ranking.reference_quality,
            bucket=buckets[row] or None,
            chosen_path=ARMS[chosen],
        )
        if progress is not None:
            progress(step + 1, count)
    return ReplayResult(order=order, to_strong=to_strong, controller=state, reasons=reasons)


def summarise(rows: RouteBenchRows, result: ReplayResult, options: ReplayOptions) -> dict[str, Any]:
    """score.py's figures for the replayed decisions (plus the online regret)."""
    pricing = options.pricing
    order = result.order
    to_strong = result.to_strong
    weak = rows.weak[order].astype(float)
    strong = rows.strong[order].astype(float)
    prompt_tokens = pricing.prompt_tokens(rows.prompt_chars[order])
    weak_out = pricing.response_tokens(rows.weak_response_chars[order])
    strong_out = pricing.response_tokens(rows.strong_response_chars[order])
    cost_weak = (pricing.weak_in * prompt_tokens + pricing.weak_out * weak_out) / 1e6
    cost_strong = (pricing.strong_in * prompt_tokens + pricing.strong_out * strong_out) / 1e6
    got = np.where(to_strong, strong, weak)
    cost = float(np.where(to_strong, cost_strong, cost_weak).sum())
    accuracy, weak_accuracy, strong_accuracy = got.mean(), weak.mean(), strong.mean()
    gap = strong_accuracy - weak_accuracy
    best_fixed = "strong" if strong.sum() >= weak.sum() else "weak"
    best_total = max(strong.sum(), weak.sum())
    state = result.controller
    return {
        "n": int(len(got)),
        "objective": options.config.objective,
        "context": options.context,
        "seed": options.seed,
        "accuracy": float(accuracy),
        "weak_accuracy": float(weak_accuracy),
        "strong_accuracy": float(strong_accuracy),
        "oracle_accuracy": float(np.maximum(weak, strong).mean()),
        "accuracy_vs_strong": float(accuracy / strong_accuracy) if strong_accuracy else None,
        "strong_share": float(to_strong.mean()),
        "cost": cost,
        "cost_all_strong": float(cost_strong.sum()),
        "cost_all_weak": float(cost_weak.sum()),
        "savings": float(1.0 - cost / cost_strong.sum()),
        "gap_recovered": float((accuracy - weak_accuracy) / gap) if gap else None,
        "best_fixed": best_fixed,
        "regret_vs_best_fixed": float(best_total - got.sum()),
        "final_tolerance": state.effective_tolerance(options.config),
        "reasons": result.reasons,
    }


def progress_bar(stream: Any = sys.stderr) -> Callable[[int, int], None]:
    """A dependency-free progress bar; redraws at most ~100 times."""

    def draw(done: int, total: int) -> None:
        if done != total and done % max(1, total // 100):
            return
        width = 40
        filled = int(width * done / total)
        stream.write(f"\rreplay [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return draw
