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

Staleness (all off by default: every outcome is seen by the next decision). A served router
learns late: an outcome exists only once its call has returned (`feedback_delay` decisions
later), each worker process routes from its own snapshot of the learned state, re-read every
`snapshot_every` of its own decisions (`processes` workers, decisions dealt round-robin), and
the quality controller folds the visible outcomes in batches (`controller_fold_every`). The
learned state (posterior counts, output-length means, controller) is one object, `Learned`;
decisions read a snapshot of it and outcomes wait in a queue until they are due.

Shadow traffic (`shadow_rate`, issue 11; judge mode "labels"): a call served by the weak model
is, with probability `shadow_rate` (its own seeded stream, drawn on every call), also sent to the
baseline (strong) model, whose correctness on the same prompt the labels reveal. The shadow is
charged at the strong model's true cost, reported apart from the served cost, and - with
`learn_from_shadows`, on by default as for a new goal - is paired evidence: it adds to the strong
model's posterior counts and output lengths, and reaches the controller as an unbiased
observation of the reference (`engine.controller_observe_reference`) when its outcome does.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routerapp.engine import (
    Arm,
    ControllerState,
    EngineConfig,
    controller_observe,
    controller_observe_reference,
    decay_factor,
    rank_paths,
)
from routerapp.engine.control import reference_estimate
from routerapp.replay.data import Pricing, RouteBenchRows, length_classes, prompt_feature
from routerapp.stats import wilson_interval

ARMS = ("weak", "strong")
BASELINE = 1  # index in ARMS of the baseline path: shadows go there
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
    # Staleness (module docstring); the defaults are the immediate feedback of a single process.
    feedback_delay: int = 0  # decision i sees the outcomes of decisions < i - feedback_delay
    snapshot_every: int = 1  # a process re-reads the learned state every K of its decisions
    processes: int = 1  # decisions are dealt round-robin to this many processes
    controller_fold_every: int = 1  # visible outcomes reach the controller every F decisions
    # Shadow traffic (module docstring): share of the weak-served calls also sent to strong.
    shadow_rate: float = 0.0
    learn_from_shadows: bool = True

    def __post_init__(self) -> None:
        for name, least in STALENESS_DEFAULTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        rate = self.shadow_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"shadow_rate must be a number in [0, 1], got {rate!r}")

    @property
    def staleness(self) -> dict[str, int]:
        """The staleness settings that differ from immediate feedback (empty by default)."""
        return {
            name: getattr(self, name)
            for name, default in STALENESS_DEFAULTS.items()
            if getattr(self, name) != default
        }


# Immediate feedback; each default is also the least value allowed.
STALENESS_DEFAULTS = {
    "feedback_delay": 0,
    "snapshot_every": 1,
    "processes": 1,
    "controller_fold_every": 1,
}


@dataclass(frozen=True)
class ReplayResult:
    order: np.ndarray  # row indices in request order
    to_strong: np.ndarray  # bool per request, aligned with `order`
    controller: ControllerState
    reasons: dict[str, int]
    shadowed: np.ndarray  # bool per request, aligned with `order`: a shadow call to strong


@dataclass(frozen=True)
class Outcome:
    """One decision's outcome, waiting in the queue until it is due."""

    step: int  # the decision's position in request order
    bucket: int
    parent: int
    arm: int  # index in ARMS
    value: float
    output_tokens: float
    reference_quality: float  # `Ranking.reference_quality` at decision time
    bucket_name: str
    # The baseline's correctness and output length when the call was shadowed (and shadows
    # are learned from); None otherwise.
    shadow_value: float | None = None
    shadow_output_tokens: float = 0.0


class Learned:
    """Everything outcomes teach the router: evidence per level (bucket, parent, goal) as
    [index, arm, (successes, failures)], running output-token sums and counts per bucket and
    arm (and goal-wide), and the controller state. A process routes from a `copy()` of it."""

    def __init__(self, buckets: int, parents: int) -> None:
        self.bucket_evidence = np.zeros((buckets, 2, 2))
        self.parent_evidence = np.zeros((parents, 2, 2))
        self.goal_evidence = np.zeros((2, 2))
        self.output_sum = np.zeros((buckets, 2))
        self.output_count = np.zeros((buckets, 2))
        self.goal_output_sum = np.zeros(2)
        self.goal_output_count = np.zeros(2)
        self.controller = ControllerState()

    def copy(self) -> Learned:
        snapshot = Learned.__new__(Learned)
        for name, value in vars(self).items():
            # ControllerState is immutable: sharing it is a copy.
            setattr(snapshot, name, value.copy() if isinstance(value, np.ndarray) else value)
        return snapshot

    def decay(self, factor: float) -> None:
        self.bucket_evidence *= factor
        self.parent_evidence *= factor
        self.goal_evidence *= factor

    def learn(self, outcome: Outcome) -> None:
        """The posterior counts and output lengths of one outcome (not the controller)."""
        self._learn_one(
            outcome.bucket, outcome.parent, outcome.arm, outcome.value, outcome.output_tokens
        )
        if outcome.shadow_value is not None:
            # Paired evidence: the baseline's answer to the same prompt.
            self._learn_one(
                outcome.bucket,
                outcome.parent,
                BASELINE,
                outcome.shadow_value,
                outcome.shadow_output_tokens,
            )

    def _learn_one(self, b: int, parent: int, arm: int, value: float, output_tokens: float) -> None:
        delta = (value, 1.0 - value)
        self.bucket_evidence[b, arm] += delta
        self.parent_evidence[parent, arm] += delta
        self.goal_evidence[arm] += delta
        self.output_sum[b, arm] += output_tokens
        self.output_count[b, arm] += 1
        self.goal_output_sum[arm] += output_tokens
        self.goal_output_count[arm] += 1

    def fold(self, outcomes: list[Outcome], config: EngineConfig) -> None:
        """The controller after the outcomes, in decision order."""
        for outcome in outcomes:
            self.controller = controller_observe(
                self.controller,
                config=config,
                value=outcome.value,
                reference_quality=outcome.reference_quality,
                bucket=outcome.bucket_name or None,
                chosen_path=ARMS[outcome.arm],
            )
            if outcome.shadow_value is not None:
                self.controller = controller_observe_reference(
                    self.controller,
                    value=outcome.shadow_value,
                    config=config,
                    bucket=outcome.bucket_name or None,
                )


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
    """Route every row once in a seeded shuffled order; returns the decisions. With the
    default options each decision sees every earlier outcome; see the module docstring for
    the staleness options."""
    count = len(rows)
    order = np.random.default_rng(options.seed).permutation(count)
    # A separate stream for the engine, so the order does not depend on engine draws.
    rng = np.random.default_rng([options.seed, 1])
    # And one for the shadow coin, drawn on every call, so shadows do not move the decisions'
    # stream and a rate of 0 is exactly the replay without shadows.
    shadow_rng = np.random.default_rng([options.seed, 2])
    learn_shadows = options.learn_from_shadows
    config = options.config
    pricing = options.pricing
    buckets, parents = _buckets(rows, options.context, order.tolist(), options.length_classes)
    bucket_ids = {b: i for i, b in enumerate(sorted(set(buckets)))}
    parent_ids = {p: i for i, p in enumerate(sorted(set(parents)))}
    live = Learned(len(bucket_ids), len(parent_ids))
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
    delay, every = options.feedback_delay, options.snapshot_every
    processes = options.processes
    # Worker processes start at different moments: their refreshes are spread over the interval.
    phase = [(process * every) // processes for process in range(processes)]
    local = [0] * processes  # decisions routed by each process so far
    snapshots = [live] * processes  # each replaced by a copy before its process's first decision
    pending: deque[Outcome] = deque()  # outcomes not yet visible, in decision order
    unfolded: list[Outcome] = []  # visible outcomes the controller has not folded yet
    to_strong = np.zeros(count, dtype=bool)
    shadowed = np.zeros(count, dtype=bool)
    reasons: dict[str, int] = {}
    for step, row in enumerate(order.tolist()):
        # Outcomes are learned when they become visible, so decay applies from then on.
        while pending and pending[0].step < step - delay:
            outcome = pending.popleft()
            live.learn(outcome)
            unfolded.append(outcome)
        if unfolded and step % options.controller_fold_every == 0:
            live.fold(unfolded, config)
            unfolded.clear()
        if factor < 1.0:
            live.decay(factor)
        process = step % processes
        if local[process] == 0 or (local[process] + phase[process]) % every == 0:
            snapshots[process] = live.copy()
        local[process] += 1
        seen = snapshots[process]
        b = bucket_ids[buckets[row]]
        p = parent_ids[parents[row]]
        own = seen.bucket_evidence[b]
        if nested:
            # Two-level backoff through the engine's one level: the "goal-wide" numbers given
            # for a sub-bucket are its subject's, plus the goal's rate lent to the subject.
            subject = seen.parent_evidence[p]
            other = np.maximum(seen.goal_evidence - subject, 0.0)
            other_total = other.sum(axis=1, keepdims=True)
            lent = np.minimum(other_total, options.subject_backoff_strength) / np.maximum(
                other_total, 1e-300
            )
            upper = subject + lent * other
        else:
            upper = seen.goal_evidence
        arms = []
        for arm_index, name in enumerate(ARMS):
            if seen.output_count[b, arm_index] > 0:
                expected_out = seen.output_sum[b, arm_index] / seen.output_count[b, arm_index]
            elif seen.goal_output_count[arm_index] > 0:
                expected_out = seen.goal_output_sum[arm_index] / seen.goal_output_count[arm_index]
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
        ranking = rank_paths(
            arms, config=config, rng=rng, state=seen.controller, bucket=buckets[row] or None
        )
        chosen = 1 if ranking.order[0] == "strong" else 0
        to_strong[step] = chosen == 1
        reasons[ranking.reason] = reasons.get(ranking.reason, 0) + 1
        shadowed[step] = shadow_rng.random() < options.shadow_rate and chosen != BASELINE
        learned_shadow = bool(shadowed[step]) and learn_shadows
        pending.append(
            Outcome(
                step=step,
                bucket=b,
                parent=p,
                arm=chosen,
                value=float(correct[row, chosen]),
                output_tokens=float(response_tokens[row, chosen]),
                reference_quality=ranking.reference_quality,
                bucket_name=buckets[row],
                shadow_value=float(correct[row, BASELINE]) if learned_shadow else None,
                shadow_output_tokens=float(response_tokens[row, BASELINE]),
            )
        )
        if progress is not None:
            progress(step + 1, count)
    # Every outcome eventually arrives: the final controller state counts them all.
    for outcome in pending:
        live.learn(outcome)
    live.fold([*unfolded, *pending], config)
    return ReplayResult(
        order=order,
        to_strong=to_strong,
        controller=live.controller,
        reasons=reasons,
        shadowed=shadowed,
    )


def summarise(rows: RouteBenchRows, result: ReplayResult, options: ReplayOptions) -> dict[str, Any]:
    """score.py's figures for the replayed decisions (plus the online regret), and the
    staleness settings when any differs from immediate feedback."""
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
    reference_inputs = (
        state.buckets,
        state.evidence,
        state.offsets,
        options.config.backoff_strength,
        state.reference,
    )
    summary = {
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
        # The controller's final estimate of the best fixed path's total (model-based
        # reference), to compare with the labels' always-strong total, and the total it held
        # the floor against (the estimate plus its margin, `engine.control.reference_aim`).
        "reference_total": reference_estimate(*reference_inputs)[0],
        "reference_aim": state.reference_total,
        "reasons": result.reasons,
    }
    if options.staleness:
        # Only when set, so the default summary stays what it always was.
        summary["staleness"] = options.staleness
    if options.shadow_rate > 0.0:
        summary["shadow"] = shadow_summary(
            weak=weak,
            strong=strong,
            to_strong=to_strong,
            shadowed=result.shadowed,
            cost=cost,
            cost_strong=cost_strong,
            options=options,
        )
    return summary


def shadow_summary(
    *,
    weak: np.ndarray,
    strong: np.ndarray,
    to_strong: np.ndarray,
    shadowed: np.ndarray,
    cost: float,
    cost_strong: np.ndarray,
    options: ReplayOptions,
) -> dict[str, Any]:
    """Shadow traffic in request order: its share and cost (the strong model's true cost of
    each shadowed row), cost and savings net of it, and the downgrade regret - the share of
    weak-served calls where strong was right and weak wrong - as the shadows measured it (with
    its 95% Wilson interval) next to the truth over every weak-served call."""
    downgraded = ~to_strong
    regret = (strong > weak) & downgraded
    sampled = int(shadowed.sum())
    regrets = int((regret & shadowed).sum())
    low, high = wilson_interval(regrets, sampled)
    true_rate = float(regret.sum() / downgraded.sum()) if downgraded.any() else 0.0
    shadow_cost = float(cost_strong[shadowed].sum())
    return {
        "rate": options.shadow_rate,
        "judge": "labels",
        "learn_from_shadows": options.learn_from_shadows,
        "calls": sampled,
        "share": float(shadowed.mean()),
        "cost": shadow_cost,
        "cost_with_shadows": cost + shadow_cost,
        "savings_net": float(1.0 - (cost + shadow_cost) / cost_strong.sum()),
        "regret_measured": regrets / sampled if sampled else None,
        "regret_low": low,
        "regret_high": high,
        "regret_true": true_rate,
        "regret_true_in_interval": low <= true_rate <= high,
        "downgraded": int(downgraded.sum()),
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
