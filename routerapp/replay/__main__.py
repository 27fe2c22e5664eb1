"""CLI: python -m routerapp.replay --data ../shared/data/routebench/dev.csv [flags].

Prints one JSON object on stdout; the progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence

from routerapp.engine import DEFAULT_CONFIG, EngineConfig
from routerapp.engine.types import OBJECTIVES
from routerapp.replay.data import Pricing, load_routebench
from routerapp.replay.simulation import (
    CONTEXTS,
    ReplayOptions,
    progress_bar,
    replay,
    summarise,
)


def at_least(least: int) -> Callable[[str], int]:
    """argparse type: an integer >= least."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value

    return parse


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m routerapp.replay",
        description="Replay a RouteBench CSV through the engine with bandit feedback.",
    )
    parser.add_argument("--data", required=True, help="RouteBench-shaped CSV")
    parser.add_argument("--objective", default=DEFAULT_CONFIG.objective, choices=OBJECTIVES)
    parser.add_argument("--quality-target", type=float, default=DEFAULT_CONFIG.quality_target)
    parser.add_argument("--context", default="subject", choices=CONTEXTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--half-life",
        type=float,
        default=None,
        help="evidence half-life in seconds of the synthetic clock",
    )
    parser.add_argument("--seconds-per-request", type=float, default=1.0)
    parser.add_argument("--exploration-floor", type=float, default=DEFAULT_CONFIG.exploration_floor)
    parser.add_argument("--prior-strength", type=float, default=DEFAULT_CONFIG.prior_strength)
    parser.add_argument("--backoff-strength", type=float, default=DEFAULT_CONFIG.backoff_strength)
    parser.add_argument("--utility-lambda", type=float, default=DEFAULT_CONFIG.utility_lambda)
    parser.add_argument("--controller-gain", type=float, default=DEFAULT_CONFIG.controller_gain)
    for name, default in Pricing().__dict__.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=default)
    staleness = parser.add_argument_group(
        "staleness", "how late the router learns (defaults: every outcome seen by the next call)"
    )
    staleness.add_argument(
        "--feedback-delay",
        type=at_least(0),
        default=0,
        metavar="N",
        help="decision i sees the outcomes of decisions < i - N (calls in flight)",
    )
    staleness.add_argument(
        "--snapshot-every",
        type=at_least(1),
        default=1,
        metavar="K",
        help="each process routes from a snapshot re-read every K of its own decisions",
    )
    staleness.add_argument(
        "--processes",
        type=at_least(1),
        default=1,
        metavar="W",
        help="worker processes, dealt the decisions round-robin, each with its own snapshot",
    )
    staleness.add_argument(
        "--controller-fold-every",
        type=at_least(1),
        default=1,
        metavar="F",
        help="the quality controller folds the visible outcomes every F decisions",
    )
    shadows = parser.add_argument_group(
        "shadows", "shadow traffic to the baseline (strong) model, judged by the labels"
    )
    shadows.add_argument(
        "--shadow-rate",
        type=unit_interval,
        default=0.0,
        metavar="R",
        help="share of the weak-served calls also sent to strong (0 = off)",
    )
    shadows.add_argument(
        "--no-learn-from-shadows",
        action="store_true",
        help="measure regret only: shadows move neither posteriors nor the controller",
    )
    parser.add_argument("--decisions-out", help="write id,routed_to in request order here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pricing = Pricing(**{name: getattr(args, name) for name in Pricing().__dict__})
    config = EngineConfig(
        objective=args.objective,
        quality_target=args.quality_target,
        exploration_floor=args.exploration_floor,
        prior_strength=args.prior_strength,
        backoff_strength=args.backoff_strength,
        utility_lambda=args.utility_lambda,
        controller_gain=args.controller_gain,
        half_life_seconds=args.half_life,
    )
    options = ReplayOptions(
        config=config,
        context=args.context,
        seed=args.seed,
        pricing=pricing,
        seconds_per_request=args.seconds_per_request,
        feedback_delay=args.feedback_delay,
        snapshot_every=args.snapshot_every,
        processes=args.processes,
        controller_fold_every=args.controller_fold_every,
        shadow_rate=args.shadow_rate,
        learn_from_shadows=not args.no_learn_from_shadows,
    )
    rows = load_routebench(args.data)
    result = replay(rows, options, progress=None if args.no_progress else progress_bar())
    if args.decisions_out:
        with open(args.decisions_out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["id", "routed_to"])
            for row, strong in zip(result.order.tolist(), result.to_strong.tolist(), strict=True):
                writer.writerow([rows.ids[row], "strong" if strong else "weak"])
    json.dump(summarise(rows, result, options), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
