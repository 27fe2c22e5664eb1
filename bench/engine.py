"""Benchmark: median time of one `rank_paths` decision at 2, 5 and 20 paths (single process).

    .venv/bin/python bench/engine.py [--repeats 2000]

Arms carry evidence, goal-wide evidence and prices, and the objective is `cost_at_quality`
(the service's default), so every part of a decision is timed. Priors are cached after the
first call, as in a running service. Prints one line per path count and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Sequence

import numpy as np

from routerapp.engine import Arm, ControllerState, EngineConfig, rank_paths


def make_arms(count: int) -> list[Arm]:
    return [
        Arm(
            path_id=f"path-{i}",
            weight=1.0 + i % 3,
            expected_cost=0.001 * (i + 1),
            successes=40.0 + i,
            failures=10.0,
            goal_successes=400.0 + 3 * i,
            goal_failures=100.0,
        )
        for i in range(count)
    ]


def time_decisions(count: int, repeats: int) -> float:
    """Median seconds per decision over `repeats` timed batches of 50 decisions."""
    arms = make_arms(count)
    config = EngineConfig()
    # As the service passes it: a deficit and the within-bucket path offsets.
    state = ControllerState(
        deficit=-10.0, offsets={arm.path_id: 0.05 * i for i, arm in enumerate(arms)}
    )
    rng = np.random.default_rng(0)
    for _ in range(200):  # warm caches (prior solver, numpy dispatch)
        rank_paths(arms, config=config, rng=rng, state=state, bucket="b")
    batch = 50
    timings = []
    for _ in range(repeats // batch + 1):
        start = time.perf_counter()
        for _ in range(batch):
            rank_paths(arms, config=config, rng=rng, state=state, bucket="b")
        timings.append((time.perf_counter() - start) / batch)
    return statistics.median(timings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20_000)
    args = parser.parse_args(argv)
    results = {}
    for count in (2, 5, 20):
        seconds = time_decisions(count, args.repeats)
        results[count] = round(seconds * 1e6, 1)
        print(f"rank_paths, {count:2d} paths: {seconds * 1e6:6.1f} us median per decision")
    print(
        json.dumps(
            {"median_us": results, "python": platform.python_version(), "numpy": np.__version__}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
