"""Study: how far online per-bucket learning is from the hindsight frontier, and why.

    .venv/bin/python bench/routing_frontier.py --data ../shared/data/routebench/dev.csv \
        [--seeds 0-4] [--temper 0.5] [--tau 0.12] [--gain 0.01] [--threshold hindsight] \
        [--oracle-gaps] [--oracle-reference] [--floor 0.01]

Not the engine: a small, separate two-path policy used to take the routing-quality problem
apart (docs/engine.md, "Fourth round"). Per bucket (subject) it keeps the weak and strong
records and models the strong-minus-weak gap with an empirical-Bayes normal prior fitted
across buckets (or a fixed spread `--tau`); it routes by a tempered Thompson draw of the gap
against a threshold lambda x normalised cost saved. lambda is either fixed (`--threshold`,
`hindsight` = the gap of the marginal bucket of the per-bucket hindsight split at the floor)
or the integral controller of the engine (lambda = (1 - target) - gain x deficit, the deficit
re-based whenever the estimate of the always-strong total moves).

The oracle switches replace one learned quantity by the truth (labels, for diagnosis only):
`--oracle-gaps` the per-bucket gaps, `--oracle-reference` the always-strong total. Printed per
run: accuracy / strong share, the reference error (estimated minus true always-strong total,
outcomes), and the means with the *excess* = strong share minus the share the hindsight
per-bucket split needs for the same accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routerapp.replay.data import Pricing, RouteBenchRows, load_routebench


@dataclass(frozen=True)
class Task:
    """One RouteBench CSV as arrays: bucket per row, correctness, normalised cost saved."""

    bucket: NDArray[np.int64]
    weak: NDArray[np.float64]
    strong: NDArray[np.float64]
    saved: NDArray[np.float64]  # 1 - weak cost / strong cost, per row
    gaps: NDArray[np.float64]  # true per-bucket gap (oracle, and the hindsight split)
    strong_rates: NDArray[np.float64]

    @property
    def buckets(self) -> int:
        return len(self.gaps)


def make_task(rows: RouteBenchRows, pricing: Pricing) -> Task:
    names = sorted(set(rows.subjects))
    bucket = np.array([names.index(s) for s in rows.subjects])
    tokens = pricing.prompt_tokens(rows.prompt_chars)
    weak_cost = pricing.weak_in * tokens + pricing.weak_out * pricing.response_tokens(
        rows.weak_response_chars)
    strong_cost = pricing.strong_in * tokens + pricing.strong_out * pricing.response_tokens(
        rows.strong_response_chars)
    weak, strong = rows.weak.astype(float), rows.strong.astype(float)
    count = np.bincount(bucket)
    strong_rates = np.bincount(bucket, strong) / count
    return Task(bucket=bucket, weak=weak, strong=strong, saved=1.0 - weak_cost / strong_cost,
                gaps=strong_rates - np.bincount(bucket, weak) / count,
                strong_rates=strong_rates)


def hindsight(task: Task, accuracy: float) -> tuple[float, float]:
    """(strong share, marginal gap) of the cheapest per-bucket split reaching `accuracy`:
    buckets go strong in order of falling gap, the last one partly."""
    total = len(task.bucket)
    count = np.bincount(task.bucket, minlength=task.buckets)
    current, share, marginal = task.weak.mean(), 0.0, 0.0
    for b in np.argsort(-task.gaps):
        if current >= accuracy or task.gaps[b] <= 0.0:
            break
        marginal = float(task.gaps[b])
        need = (accuracy - current) * total
        if count[b] * task.gaps[b] >= need:
            return share + need / task.gaps[b] / total, marginal
        current += count[b] * task.gaps[b] / total
        share += count[b] / total
    return share, marginal


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


class GapThompson:
    """Two-path policy: tempered Thompson draws of each bucket's gap under an EB prior."""

    def __init__(self, task: Task, rng: np.random.Generator, args: argparse.Namespace,
                 threshold: float | None) -> None:
        self.task, self.rng, self.args, self.threshold = task, rng, args, threshold
        buckets = task.buckets
        self.n = np.zeros((buckets, 2))
        self.v = np.zeros((buckets, 2))
        self.strong_sum = np.zeros(buckets)  # observed strong outcomes
        self.weak_calls = np.zeros(buckets)  # rows routed weak (their strong outcome unseen)
        self.mean = np.full(buckets, 0.1)
        self.var = np.full(buckets, (args.tau or 0.1) ** 2)
        self.tau2 = (args.tau or 0.1) ** 2
        self.deficit = 0.0
        self.reference = 0.0

    def tolerance(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return max(0.0, 1.0 - self.args.quality_target - self.args.gain * self.deficit)

    def decide(self, b: int, saved: float) -> int:
        if self.rng.random() < 2.0 * self.args.floor:
            return int(self.rng.integers(2))
        spread = self.args.temper * math.sqrt(self.var[b])
        draw = self.mean[b] + spread * self.rng.standard_normal()
        return int(draw > self.tolerance() * saved)

    def observe(self, b: int, arm: int, value: float) -> None:
        self.n[b, arm] += 1.0
        self.v[b, arm] += value
        if arm == 1:
            self.strong_sum[b] += value
        else:
            self.weak_calls[b] += 1.0
        self._refit()
        target = self.args.quality_target
        if self.args.oracle_reference:
            estimate = (self.strong_sum + self.weak_calls * self.task.strong_rates).sum()
        else:
            strong_rate = np.clip(self.weak_rate + self.mean, 0.0, 1.0)
            estimate = (self.strong_sum + self.weak_calls * strong_rate).sum()
        self.deficit += target * (estimate - self.reference) - value
        self.reference = estimate

    def _refit(self) -> None:
        n, v = self.n, self.v
        pooled_weak = (v[:, 0].sum() + 1.0) / (n[:, 0].sum() + 2.0)
        self.weak_rate = (v[:, 0] + 2.0 * pooled_weak) / (n[:, 0] + 2.0)
        if self.args.oracle_gaps:
            self.mean, self.var = self.task.gaps.copy(), np.zeros_like(self.task.gaps)
            return
        both = (n[:, 0] > 0) & (n[:, 1] > 0)
        safe = np.maximum(n, 1.0)
        raw = np.where(both, v[:, 1] / safe[:, 1] - v[:, 0] / safe[:, 0], 0.0)
        strong_rate = np.clip(self.weak_rate + self.mean, 0.01, 0.99)
        noise = (np.maximum(strong_rate * (1 - strong_rate), 0.02) / safe[:, 1]
                 + np.maximum(self.weak_rate * (1 - self.weak_rate), 0.02) / safe[:, 0])
        mu = 0.1
        if both.sum() >= 3:
            for _ in range(3):
                weights = 1.0 / (noise[both] + self.tau2)
                mu = float((weights * raw[both]).sum() / weights.sum())
                if self.args.tau is None:  # moment estimate of the spread between buckets
                    spread = float(((raw[both] - mu) ** 2 - noise[both]).mean())
                    self.tau2 = max(0.03 ** 2, spread)
        precision = 1.0 / self.tau2 + np.where(both, 1.0 / noise, 0.0)
        self.mean = (mu / self.tau2 + np.where(both, raw / noise, 0.0)) / precision
        self.var = 1.0 / precision


def run(task: Task, seed: int, args: argparse.Namespace, threshold: float | None) -> dict:
    order = np.random.default_rng(seed).permutation(len(task.bucket))
    policy = GapThompson(task, np.random.default_rng([seed, 1]), args, threshold)
    to_strong = np.zeros(len(order), dtype=bool)
    for row in order.tolist():
        b = int(task.bucket[row])
        arm = policy.decide(b, float(task.saved[row]))
        to_strong[row] = arm == 1
        policy.observe(b, arm, float(task.strong[row] if arm else task.weak[row]))
    accuracy = float(np.where(to_strong, task.strong, task.weak).mean())
    share = float(to_strong.mean())
    return {"seed": seed, "accuracy": accuracy, "strong_share": share,
            "excess": share - hindsight(task, accuracy)[0],
            "reference_error": float(policy.reference - task.strong.sum())}


def seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-4"))
    parser.add_argument("--quality-target", type=float, default=0.95)
    parser.add_argument("--temper", type=float, default=0.5)
    parser.add_argument("--tau", type=float, default=None, help="fixed prior spread (else EB)")
    parser.add_argument("--gain", type=float, default=0.01)
    parser.add_argument("--floor", type=float, default=0.01)
    parser.add_argument("--threshold", default=None,
                        help="fixed lambda, or 'hindsight'; default: the controller")
    parser.add_argument("--oracle-gaps", action="store_true")
    parser.add_argument("--oracle-reference", action="store_true")
    args = parser.parse_args(argv)
    task = make_task(load_routebench(args.data), Pricing())
    floor = args.quality_target * task.strong.mean()
    threshold = None
    if args.threshold == "hindsight":
        threshold = hindsight(task, floor)[1]
    elif args.threshold is not None:
        threshold = float(args.threshold)
    runs = [run(task, seed, args, threshold) for seed in args.seeds]
    means = {key: float(np.mean([r[key] for r in runs]))
             for key in ("accuracy", "strong_share", "excess", "reference_error")}
    summary = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("data", "seeds")},
        "seeds": f"{args.seeds[0]}-{args.seeds[-1]}", "threshold": threshold,
        "line": floor - 0.005, "hindsight_share_at_floor": hindsight(task, floor)[0],
        "per_seed": " ".join(f"{r['accuracy']:.4f}/{r['strong_share']:.3f}"
                             f"({r['reference_error']:+.0f})" for r in runs),
        "mean": means,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
