"""Study: how far online per-bucket learning is from the hindsight frontier, and why.

    .venv/bin/python bench/routing_frontier.py --data ../shared/data/routebench/dev.csv \
        [--seeds 0-9] [--temper 0.5] [--tau 0.12] [--tau-wide 0.2 --wide-share 0.25] \
        [--features] [--policy thompson|kg --horizon 1] [--gain 0.01] [--floor 0.01] \
        [--threshold hindsight|LAMBDA] [--oracle-gaps] [--oracle-reference] [--per-bucket]

Not the engine: a small, separate two-path policy used to take the routing-quality problem
apart (docs/engine.md, "Fourth round"; `GapPolicy` says what it models). lambda is either
fixed (`--threshold`; `hindsight` = the gap of the marginal bucket of the per-bucket hindsight
split at the floor) or the engine's integral controller (lambda = (1 - target) - gain x
deficit, the deficit re-based whenever the estimate of the always-strong total moves).

The oracle switches replace one learned quantity by the truth (labels, for diagnosis only):
`--oracle-gaps` the per-cell gaps, `--oracle-reference` the always-strong total. Printed as one
JSON object: per seed accuracy / strong share (reference error = estimated minus true
always-strong total, in outcomes), and the means with the *excess* = strong share minus the
share the hindsight per-subject split needs for the same accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routerapp.replay.data import Pricing, RouteBenchRows, load_routebench


@dataclass(frozen=True)
class Task:
    """One RouteBench CSV as arrays. Rows fall in buckets (subjects); with features, each
    bucket splits into cells (bucket x prompt class); without, a bucket is one cell."""

    names: list[str]  # bucket names
    bucket: NDArray[np.int64]  # per row
    cell: NDArray[np.int64]  # per row
    cell_bucket: NDArray[np.int64]
    cell_class: NDArray[np.int64]
    weak: NDArray[np.float64]
    strong: NDArray[np.float64]
    saved: NDArray[np.float64]  # 1 - weak cost / strong cost, per row
    gaps: NDArray[np.float64]  # true gap per bucket (the hindsight split)

    @property
    def buckets(self) -> int:
        return len(self.names)

    def per_cell(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(self.cell, values, len(self.cell_bucket)) / np.bincount(self.cell)


_DIGIT = re.compile(r"\d")


def prompt_class(prompt: str) -> str:
    """Label-free and generic: length (powers of two of 64 characters, 4 classes) x digits
    (<10, 10-19, >=20), read from the prompt as a router would at request time."""
    length = min(3, max(0, int(math.log2(max(len(prompt), 64) / 64))))
    return f"len{length}-dig{min(len(_DIGIT.findall(prompt)) // 10, 2)}"


def make_task(rows: RouteBenchRows, pricing: Pricing, features: bool = False) -> Task:
    names = sorted(set(rows.subjects))
    bucket = np.array([names.index(s) for s in rows.subjects])
    labels = [prompt_class(p) if features else "" for p in rows.prompts]
    classes = sorted(set(labels))
    keys = sorted(set(zip(bucket.tolist(), labels, strict=True)))
    index = {key: i for i, key in enumerate(keys)}
    cell = np.array([index[key] for key in zip(bucket.tolist(), labels, strict=True)])
    tokens = pricing.prompt_tokens(rows.prompt_chars)
    weak_cost = pricing.weak_in * tokens + pricing.weak_out * pricing.response_tokens(
        rows.weak_response_chars
    )
    strong_cost = pricing.strong_in * tokens + pricing.strong_out * pricing.response_tokens(
        rows.strong_response_chars
    )
    weak, strong = rows.weak.astype(float), rows.strong.astype(float)
    count = np.bincount(bucket)
    return Task(
        names=names,
        bucket=bucket,
        cell=cell,
        cell_bucket=np.array([b for b, _ in keys]),
        cell_class=np.array([classes.index(c) for _, c in keys]),
        weak=weak,
        strong=strong,
        saved=1.0 - weak_cost / strong_cost,
        gaps=(np.bincount(bucket, strong) - np.bincount(bucket, weak)) / count,
    )


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


def additive_hindsight(task: Task, rows_class: NDArray[np.int64], accuracy: float) -> float:
    """Strong share of the hindsight routing by an additive gap model, gap = subject effect +
    prompt-class effect (least squares on the labels): rows go strong in order of predicted gap
    until `accuracy` is reached, judged on the true outcomes."""
    total, buckets = len(task.bucket), task.buckets
    design = np.zeros((total, buckets + int(rows_class.max())))
    design[np.arange(total), task.bucket] = 1.0
    rest = rows_class > 0  # class 0 is the baseline
    design[np.flatnonzero(rest), buckets + rows_class[rest] - 1] = 1.0
    gain = task.strong - task.weak
    coefficients = np.linalg.lstsq(design, gain, rcond=None)[0]
    order = np.argsort(-(design @ coefficients), kind="stable")
    reached = task.weak.sum() + np.cumsum(gain[order]) >= accuracy * total
    return float((np.argmax(reached) + 1) / total)


def _expected_improvement(z: float) -> float:
    return z * 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) + math.exp(-z * z / 2.0) / math.sqrt(
        2.0 * math.pi
    )


class GapPolicy:
    """Two-path policy on the strong-minus-weak gap of each cell:

        gap[cell] = a[bucket] + delta[class]

    a[bucket] has an empirical-Bayes normal prior N(mu, tau^2) fitted across buckets (or a
    fixed `--tau`); delta[class] (features only) is fitted across all buckets, shrunk towards 0
    by `--delta-prior` pseudo-weight. Cell gaps are read from each cell's weak and strong
    records (difference of means, with their sampling variance). A call goes strong when the
    gap, drawn with `--temper` x its posterior sd (Thompson) or valued by the knowledge
    gradient (`--policy kg`), beats lambda x normalised cost saved."""

    def __init__(
        self,
        task: Task,
        rng: np.random.Generator,
        args: argparse.Namespace,
        threshold: float | None,
    ) -> None:
        self.task, self.rng, self.args, self.threshold = task, rng, args, threshold
        cells, buckets = len(task.cell_bucket), task.buckets
        self.n = np.zeros((cells, 2))
        self.v = np.zeros((cells, 2))
        self.strong_sum = np.zeros(cells)  # observed strong outcomes
        self.weak_calls = np.zeros(cells)  # rows routed weak (their strong outcome unseen)
        self.tau2 = (args.tau or 0.1) ** 2
        self.mean = np.full(buckets, 0.1)
        self.var = np.full(buckets, self.tau2)
        self.delta = np.zeros(int(task.cell_class.max()) + 1)
        self.rates = np.full((cells, 2), 0.5)
        self.precision = np.zeros(cells)  # data precision of each cell's gap
        self.oracle_gaps = task.per_cell(task.strong - task.weak)
        self.oracle_strong = task.per_cell(task.strong)
        self.deficit = 0.0
        self.reference = 0.0
        if args.tau_wide:
            self._mixture(0.1, np.zeros(buckets), np.zeros(buckets))

    def tolerance(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return max(0.0, 1.0 - self.args.quality_target - self.args.gain * self.deficit)

    def gap(self, k: int) -> float:
        return float(self.mean[self.task.cell_bucket[k]] + self.delta[self.task.cell_class[k]])

    def decide(self, k: int, saved: float) -> int:
        if self.rng.random() < 2.0 * self.args.floor:
            return int(self.rng.integers(2))
        threshold = self.tolerance() * saved
        if self.args.oracle_gaps:
            return int(self.oracle_gaps[k] > threshold)
        b = self.task.cell_bucket[k]
        if self.args.policy == "kg":
            return self._knowledge_gradient(k, b, self.gap(k) - threshold)
        centre, var = self.mean[b], self.var[b]
        if self.args.tau_wide:  # draw the component first, then the gap within it
            part = int(self.rng.random() < self.wide[b])
            centre, var = self.means[part, b], self.vars[part, b]
        draw = centre + self.args.temper * math.sqrt(var) * self.rng.standard_normal()
        return int(draw + self.delta[self.task.cell_class[k]] > threshold)

    def _knowledge_gradient(self, k: int, b: int, margin: float) -> int:
        """Immediate gain plus the value of one more observation over the cell's expected
        remaining calls (`--horizon` x the calls seen in it so far)."""
        horizon = self.args.horizon * max(1.0, self.n[k].sum())
        bucket_precision = 1.0 / self.var[b] - 1.0 / self.tau2
        values = []
        for arm in (0, 1):
            n = self.n[k].copy()
            n[arm] += 1.0
            if n.min() == 0.0:
                values.append(0.0)
                continue
            after = 1.0 / (np.maximum(self.rates[k] * (1 - self.rates[k]), 0.02) / n).sum()
            var_after = 1.0 / (1.0 / self.tau2 + bucket_precision - self.precision[k] + after)
            step = math.sqrt(max(self.var[b] - var_after, 0.0))
            values.append(
                horizon * step * _expected_improvement(-abs(margin) / step) if step > 0.0 else 0.0
            )
        return int(margin + values[1] > values[0])

    def observe(self, k: int, arm: int, value: float) -> None:
        self.n[k, arm] += 1.0
        self.v[k, arm] += value
        if arm == 1:
            self.strong_sum[k] += value
        else:
            self.weak_calls[k] += 1.0
        self._refit()
        if self.args.oracle_reference:
            strong_rate = self.oracle_strong
        else:
            gaps = self.mean[self.task.cell_bucket] + self.delta[self.task.cell_class]
            strong_rate = np.clip(self.rates[:, 0] + gaps, 0.0, 1.0)
        estimate = float((self.strong_sum + self.weak_calls * strong_rate).sum())
        self.deficit += self.args.quality_target * (estimate - self.reference) - value
        self.reference = estimate

    def _refit(self) -> None:
        task, n, v = self.task, self.n, self.v
        cb, cc, buckets = task.cell_bucket, task.cell_class, task.buckets
        pooled = (v[:, 0].sum() + 1.0) / (n[:, 0].sum() + 2.0)
        bucket_weak = (np.bincount(cb, v[:, 0], buckets) + 2.0 * pooled) / (
            np.bincount(cb, n[:, 0], buckets) + 2.0
        )
        weak_rate = (v[:, 0] + 2.0 * bucket_weak[cb]) / (n[:, 0] + 2.0)
        strong_rate = np.clip(weak_rate + self.mean[cb] + self.delta[cc], 0.01, 0.99)
        self.rates = np.column_stack((weak_rate, strong_rate))
        both = (n[:, 0] > 0) & (n[:, 1] > 0)
        safe = np.maximum(n, 1.0)
        raw = np.where(both, v[:, 1] / safe[:, 1] - v[:, 0] / safe[:, 0], 0.0)
        noise = (np.maximum(self.rates * (1 - self.rates), 0.02) / safe).sum(axis=1)
        self.precision = weight = np.where(both, 1.0 / noise, 0.0)
        delta = self.delta
        for _ in range(3 if self.args.features else 1):
            # Weighted counts are float64 (the stubs type every bincount as integers).
            data = np.asarray(np.bincount(cb, weight, buckets), dtype=np.float64)
            level = np.bincount(cb, weight * (raw - delta[cc]), buckets) / np.maximum(data, 1e-12)
            if self.args.features:
                delta = np.bincount(cc, weight * (raw - level[cb]), len(delta)) / (
                    np.bincount(cc, weight, len(delta)) + self.args.delta_prior
                )
        self.delta = delta
        seen = data > 0
        mu = 0.1
        if seen.sum() >= 3:
            noise_b = 1.0 / data[seen]
            for _ in range(3):
                weights = 1.0 / (noise_b + self.tau2)
                mu = float((weights * level[seen]).sum() / weights.sum())
                if self.args.tau is None:  # moment estimate of the spread between buckets
                    spread = float(((level[seen] - mu) ** 2 - noise_b).mean())
                    self.tau2 = max(0.03**2, spread)
        precision = 1.0 / self.tau2 + data
        self.mean = (mu / self.tau2 + data * level) / precision
        self.var = 1.0 / precision
        if self.args.tau_wide:
            self._mixture(mu, level, data)

    def _mixture(self, mu: float, level: NDArray[np.float64], data: NDArray[np.float64]) -> None:
        """Two-component prior: most buckets near mu (spread `--tau`), a share `--wide-share`
        spread `--tau-wide`, so a bucket with strong evidence escapes the shrinkage while a
        sparse one stays near mu. Posterior: per component normal, weighted by how well each
        explains the bucket's estimate."""
        spreads = np.array([self.tau2, self.args.tau_wide**2])[:, None]
        shares = np.array([1.0 - self.args.wide_share, self.args.wide_share])[:, None]
        noise = np.where(data > 0, 1.0 / np.maximum(data, 1e-12), 1e6)
        total = spreads + noise
        likelihood = shares * np.exp(-0.5 * (level - mu) ** 2 / total) / np.sqrt(total)
        self.wide = likelihood[1] / likelihood.sum(axis=0)
        precision = 1.0 / spreads + data
        self.means = (mu / spreads + data * level) / precision
        self.vars = 1.0 / precision
        weights = np.vstack((1.0 - self.wide, self.wide))
        self.mean = (weights * self.means).sum(axis=0)
        self.var = (weights * (self.vars + self.means**2)).sum(axis=0) - self.mean**2


def run(task: Task, seed: int, args: argparse.Namespace, threshold: float | None) -> dict:
    order = np.random.default_rng(seed).permutation(len(task.bucket))
    policy = GapPolicy(task, np.random.default_rng([seed, 1]), args, threshold)
    to_strong = np.zeros(len(order), dtype=bool)
    for row in order.tolist():
        k = int(task.cell[row])
        arm = policy.decide(k, float(task.saved[row]))
        to_strong[row] = arm == 1
        policy.observe(k, arm, float(task.strong[row] if arm else task.weak[row]))
    accuracy = float(np.where(to_strong, task.strong, task.weak).mean())
    share = float(to_strong.mean())
    return {
        "seed": seed,
        "accuracy": accuracy,
        "strong_share": share,
        "excess": share - hindsight(task, accuracy)[0],
        "reference_error": float(policy.reference - task.strong.sum()),
        "bucket_share": (
            np.bincount(task.bucket, to_strong, task.buckets)
            / np.bincount(task.bucket, minlength=task.buckets)
        ),
    }


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
    parser.add_argument(
        "--tau-wide",
        type=float,
        default=None,
        help="two-component prior: spread of the wide component",
    )
    parser.add_argument("--wide-share", type=float, default=0.25)
    parser.add_argument("--gain", type=float, default=0.01)
    parser.add_argument("--floor", type=float, default=0.01)
    parser.add_argument(
        "--threshold", default=None, help="fixed lambda, or 'hindsight'; default: the controller"
    )
    parser.add_argument(
        "--features",
        action="store_true",
        help="cells = subject x prompt class, class effects pooled",
    )
    parser.add_argument("--delta-prior", type=float, default=50.0)
    parser.add_argument("--policy", choices=["thompson", "kg"], default="thompson")
    parser.add_argument(
        "--horizon",
        type=float,
        default=1.0,
        help="kg: expected remaining calls per call seen in the bucket",
    )
    parser.add_argument("--per-bucket", action="store_true", help="mean share per bucket")
    parser.add_argument("--oracle-gaps", action="store_true")
    parser.add_argument("--oracle-reference", action="store_true")
    args = parser.parse_args(argv)
    task = make_task(load_routebench(args.data), Pricing(), args.features)
    floor = args.quality_target * task.strong.mean()
    threshold = None
    if args.threshold == "hindsight":
        threshold = hindsight(task, floor)[1]
    elif args.threshold is not None:
        threshold = float(args.threshold)
    runs = [run(task, seed, args, threshold) for seed in args.seeds]
    means = {
        key: float(np.mean([r[key] for r in runs]))
        for key in ("accuracy", "strong_share", "excess", "reference_error")
    }
    summary = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("data", "seeds")},
        "seeds": f"{args.seeds[0]}-{args.seeds[-1]}",
        "threshold": threshold,
        "line": floor - 0.005,
        "hindsight_share_at_floor": hindsight(task, floor)[0],
        "per_seed": " ".join(
            f"{r['accuracy']:.4f}/{r['strong_share']:.3f}({r['reference_error']:+.0f})"
            for r in runs
        ),
        "mean": means,
    }
    if args.features:
        summary["additive_hindsight_share_at_floor"] = additive_hindsight(
            task, task.cell_class[task.cell], floor
        )
        summary["subject_hindsight_share_at_floor_by_rows"] = additive_hindsight(
            task, np.zeros_like(task.cell), floor
        )
    if args.per_bucket:
        share = np.mean([r["bucket_share"] for r in runs], axis=0)
        count = np.bincount(task.bucket, minlength=task.buckets)
        summary["per_bucket"] = [
            {
                "bucket": name,
                "calls": int(count[b]),
                "gap": round(float(task.gaps[b]), 3),
                "strong_share": round(float(share[b]), 3),
            }
            for b, name in sorted(enumerate(task.names), key=lambda x: -task.gaps[x[0]])
        ]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
