"""Replay RouteBench-shaped CSVs through the engine with bandit feedback (no Django).

`python -m routerapp.replay --data ../shared/data/routebench/dev.csv` shuffles the rows with a
seed, asks the engine to route each one to `weak` or `strong`, reveals only the chosen model's
correctness, and prints one JSON summary whose figures match RouteBench's `score.py` on the
same decisions. See docs/engine.md for the flags and measured figures.
"""

from __future__ import annotations

from routerapp.replay.data import Pricing, RouteBenchRows, load_routebench
from routerapp.replay.simulation import ReplayOptions, ReplayResult, replay, summarise

__all__ = [
    "Pricing",
    "ReplayOptions",
    "ReplayResult",
    "RouteBenchRows",
    "load_routebench",
    "replay",
    "summarise",
]
