"""Study: what learning late costs in routing quality (docs/engine.md, "Stale evidence").

    .venv/bin/python bench/replay_staleness.py --data ../shared/data/routebench/dev.csv \
        [--seeds 0-19] [--jobs 2] [--setting N=200 --setting K=100,W=2 ...] [--markdown]

Replays the data with `routerapp.replay` (objective cost_at_quality, quality target 0.95,
context subject: the README's settings) once per seed and setting. A setting names the
replay's staleness options by their CLI letters: N = `--feedback-delay` (calls in flight),
K = `--snapshot-every` (decisions of one process between two reads of the learned state),
W = `--processes`, F = `--controller-fold-every`; the first setting is the reference (default:
immediate feedback). Prints one JSON object: per setting the mean, standard deviation, min and
max over the seeds of accuracy, strong share and savings, the same for the second half of the
run ("late_": after the learning phase), and the paired difference from the reference setting
on the same seeds with its standard error. `--markdown` prints the table instead.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from routerapp.engine import EngineConfig
from routerapp.replay.data import RouteBenchRows, load_routebench
from routerapp.replay.simulation import STALENESS_DEFAULTS, ReplayOptions, replay, summarise

LETTERS = {
    "N": "feedback_delay",
    "K": "snapshot_every",
    "W": "processes",
    "F": "controller_fold_every",
}
# Pure delay, pure snapshot (one process), snapshots of two and four processes, the controller
# fold alone, and production mixes (rate R calls/s, 1 s latency, 2 workers: N = R, K = R / 2,
# F = R), the last with the snapshot capped at 50 local decisions.
DEFAULT_SETTINGS = (
    "N=0",
    "N=10",
    "N=50",
    "N=200",
    "N=1000",
    "K=10",
    "K=50",
    "K=200",
    "K=1000",
    "K=25,W=2",
    "K=100,W=2",
    "K=250,W=2",
    "K=50,W=4",
    "F=200",
    "F=1000",
    "N=20,K=10,W=2,F=20",
    "N=100,K=50,W=2,F=100",
    "N=200,K=100,W=2,F=200",
    "N=500,K=250,W=2,F=500",
    "N=500,K=50,W=2,F=500",
)
FIGURES = ("accuracy", "strong_share", "savings", "late_accuracy", "late_strong_share")

_rows: RouteBenchRows | None = None


def seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def parse_setting(text: str) -> dict[str, int]:
    """ "N=50,K=100" -> {"feedback_delay": 50, "snapshot_every": 100}."""
    options: dict[str, int] = {}
    for part in text.split(","):
        letter, _, value = part.partition("=")
        if letter.strip() not in LETTERS or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"expected LETTER=INTEGER pairs with letters {', '.join(LETTERS)}, got {part!r}"
            )
        name = LETTERS[letter.strip()]
        if int(value) < STALENESS_DEFAULTS[name]:  # the replay's bounds: K, W, F >= 1
            raise argparse.ArgumentTypeError(f"{letter.strip()} must be >= 1, got {value}")
        options[name] = int(value)
    return options


def _load(path: str) -> None:
    global _rows
    _rows = load_routebench(path)


def run_one(setting: dict[str, int], seed: int) -> dict[str, float]:
    """One replay's figures, whole run and second half."""
    assert _rows is not None, "worker not initialised"
    config = EngineConfig(objective="cost_at_quality", quality_target=0.95)
    options = ReplayOptions(
        config=config,
        context="subject",
        seed=seed,
        feedback_delay=setting.get("feedback_delay", 0),
        snapshot_every=setting.get("snapshot_every", 1),
        processes=setting.get("processes", 1),
        controller_fold_every=setting.get("controller_fold_every", 1),
    )
    result = replay(_rows, options)
    summary = summarise(_rows, result, options)
    half = len(result.order) // 2
    late = result.order[half:]
    got = np.where(result.to_strong[half:], _rows.strong[late], _rows.weak[late])
    return {
        "seed": seed,
        "accuracy": summary["accuracy"],
        "strong_share": summary["strong_share"],
        "savings": summary["savings"],
        "late_accuracy": float(got.mean()),
        "late_strong_share": float(result.to_strong[half:].mean()),
    }


def spread(values: list[float]) -> dict[str, float]:
    array = np.array(values)
    return {
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        "min": float(array.min()),
        "max": float(array.max()),
    }


def paired(values: list[float], reference: list[float]) -> dict[str, float]:
    """Mean difference from the reference setting on the same seeds, and its standard error."""
    differences = np.array(values) - np.array(reference)
    count = len(differences)
    error = float(differences.std(ddof=1)) / math.sqrt(count) if count > 1 else 0.0
    return {"mean": float(differences.mean()), "se": error}


def markdown(study: dict[str, Any]) -> str:
    lines = [
        "| setting | accuracy | strong share | savings | late accuracy | late strong share "
        "| Δ accuracy (pt) | Δ strong share (pt) | Δ savings (pt) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in study["settings"]:
        cells = [f"`{entry['setting']}`"]
        for figure in FIGURES:
            s = entry[figure]
            cells.append(f"{100 * s['mean']:.2f} ± {100 * s['sd']:.2f}")
        for figure in ("accuracy", "strong_share", "savings"):
            d = entry["vs_reference"][figure]
            cells.append(f"{100 * d['mean']:+.2f} ± {100 * d['se']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", required=True, help="RouteBench-shaped CSV")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-4"))
    parser.add_argument(
        "--setting",
        type=parse_setting,
        action="append",
        help="LETTER=INTEGER,... (repeatable; default: the study's grid)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="replays run in parallel")
    parser.add_argument("--markdown", action="store_true", help="print the table, not JSON")
    args = parser.parse_args(argv)
    settings = args.setting or [parse_setting(text) for text in DEFAULT_SETTINGS]
    tasks = [(setting, seed) for setting in settings for seed in args.seeds]
    with ProcessPoolExecutor(
        max_workers=max(1, args.jobs), initializer=_load, initargs=(args.data,)
    ) as pool:
        runs = list(pool.map(run_one, *zip(*tasks, strict=True)))
    per_setting = [runs[i : i + len(args.seeds)] for i in range(0, len(runs), len(args.seeds))]
    reference = per_setting[0]
    study: dict[str, Any] = {"seeds": f"{args.seeds[0]}-{args.seeds[-1]}", "settings": []}
    for setting, results in zip(settings, per_setting, strict=True):
        entry: dict[str, Any] = {
            "setting": ",".join(
                f"{letter}={setting[name]}" for letter, name in LETTERS.items() if name in setting
            ),
            "options": setting,
        }
        for figure in FIGURES:
            entry[figure] = spread([r[figure] for r in results])
        entry["vs_reference"] = {
            figure: paired([r[figure] for r in results], [r[figure] for r in reference])
            for figure in FIGURES
        }
        entry["per_seed"] = " ".join(
            f"{r['accuracy']:.4f}/{r['strong_share']:.3f}" for r in results
        )
        study["settings"].append(entry)
    print(markdown(study) if args.markdown else json.dumps(study, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
