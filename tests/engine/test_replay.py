"""The replay tool's figures agree with RouteBench's own score.py on the same decisions."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def routebench_folder() -> Path:
    """`ROUTEBENCH_DIR`, else `shared/data/routebench` beside the checkout or beside any of its
    parents, else the machine's own copy (a clone for CI may live anywhere)."""
    if os.environ.get("ROUTEBENCH_DIR"):
        return Path(os.environ["ROUTEBENCH_DIR"])
    candidates = [parent / "shared" / "data" / "routebench" for parent in REPO.parents]
    candidates.append(Path("/work/shared/data/routebench"))
    return next((path for path in candidates if (path / "dev.csv").exists()), candidates[0])


ROUTEBENCH = routebench_folder()
DEV = ROUTEBENCH / "dev.csv"
SCORE = ROUTEBENCH / "score.py"

pytestmark = pytest.mark.skipif(
    not (DEV.exists() and SCORE.exists()), reason="RouteBench data not available"
)


def subset_csv(tmp_path: Path, rows: int = 400) -> Path:
    """Every 15th dev row (both datasets, many subjects) into a small CSV of the same shape."""
    csv.field_size_limit(sys.maxsize)
    with open(DEV, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fieldnames = reader.fieldnames or []
        kept = [row for index, row in enumerate(reader) if index % 15 == 0][:rows]
    path = tmp_path / "subset.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    return path


def run_replay(data: Path, decisions: Path, *extra: str) -> dict[str, float]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "routerapp.replay",
            "--data",
            str(data),
            "--seed",
            "3",
            "--decisions-out",
            str(decisions),
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "replay [" in result.stderr  # the progress bar goes to stderr, not stdout
    return json.loads(result.stdout)


def run_score(data: Path, decisions: Path, *extra: str) -> str:
    return subprocess.run(
        [
            sys.executable,
            str(SCORE),
            "--data",
            str(data),
            "--decisions",
            str(decisions),
            "--online",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in score.py output:\n{text}"
    return float(match.group(1))


@pytest.mark.parametrize("extra", [(), ("--extra-prompt-tokens", "300", "--strong-out", "60")])
def test_replay_figures_agree_with_score_py(tmp_path: Path, extra: tuple[str, ...]) -> None:
    data = subset_csv(tmp_path)
    decisions = tmp_path / "decisions.csv"
    summary = run_replay(data, decisions, *extra)
    report = run_score(data, decisions, *extra)
    # score.py prints percentages with 2 decimals and dollars with 4.
    assert summary["n"] == number(r"n=(\d+)", report)
    assert 100 * summary["accuracy"] == pytest.approx(
        number(r"accuracy\s+([\d.]+)%", report), abs=0.006
    )
    assert 100 * summary["strong_share"] == pytest.approx(
        number(r"strong-call fraction\s+([\d.]+)%", report), abs=0.006
    )
    assert summary["cost"] == pytest.approx(number(r"cost \$([\d.]+)", report), abs=6e-5)
    assert 100 * summary["savings"] == pytest.approx(
        number(r"savings\s+(-?[\d.]+)%", report), abs=0.006
    )
    assert summary["cost_all_strong"] == pytest.approx(
        number(r"vs all-strong \$([\d.]+)", report), abs=6e-5
    )
    t = summary["n"]
    regret = number(rf"\n\s+{int(t)}\s+(-?[\d.]+)", report)
    assert summary["regret_vs_best_fixed"] == pytest.approx(regret, abs=0.006)


def test_decisions_file_lists_every_row_once_in_request_order(tmp_path: Path) -> None:
    data = subset_csv(tmp_path, rows=120)
    decisions = tmp_path / "decisions.csv"
    run_replay(data, decisions, "--objective", "success", "--context", "none")
    with open(decisions, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 120 == len({row["id"] for row in rows})
    assert {row["routed_to"] for row in rows} <= {"weak", "strong"}


def run_frontier_study(data: Path, *flags: str) -> dict[str, float]:
    result = subprocess.run(
        [
            sys.executable,
            "bench/routing_frontier.py",
            "--data",
            str(data),
            "--seeds",
            "0-1",
            *flags,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["mean"]


def test_frontier_study_separates_knowing_from_learning(tmp_path: Path) -> None:
    data = subset_csv(tmp_path)
    # Told the gaps, the reference and the hindsight threshold, the study policy is the
    # hindsight split (tolerance: the per-row cost factor can flip one marginal bucket).
    known = run_frontier_study(
        data, "--oracle-gaps", "--oracle-reference", "--threshold", "hindsight", "--floor", "0"
    )
    assert abs(known["excess"]) < 0.02
    # Learning the gaps online costs strong calls at the same accuracy.
    learned = run_frontier_study(data, "--oracle-reference")
    assert learned["excess"] > known["excess"] + 0.02
