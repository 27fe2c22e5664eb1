"""The replay's staleness options: off, they change nothing; on, no outcome is seen early.

Seeds are fixed (data seed 7, replay seed 5). Comparisons are exact (==, no tolerance): the
counts compared are sums of 0/1 outcomes, exact in floating point.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerapp.engine import ControllerState, EngineConfig, controller_observe
from routerapp.replay import simulation
from routerapp.replay.data import RouteBenchRows
from routerapp.replay.simulation import ReplayOptions, ReplayResult, replay

REPO = Path(__file__).resolve().parents[2]


def synthetic_rows(count: int = 300, seed: int = 7) -> RouteBenchRows:
    """Three subjects with different rates and gaps; one has long answers."""
    rng = np.random.default_rng(seed)
    # subject: (weak rate, strong rate, strong answer chars; NaN = one-token answers)
    subjects = {"easy": (0.9, 0.93, np.nan), "hard": (0.45, 0.8, 400.0), "mid": (0.6, 0.7, np.nan)}
    names = list(subjects)
    picked = [names[i] for i in rng.integers(0, len(names), count)]
    weak = np.array([rng.random() < subjects[s][0] for s in picked], dtype=np.int8)
    strong = np.array([rng.random() < subjects[s][1] for s in picked], dtype=np.int8)
    chars = np.array([subjects[s][2] for s in picked])
    return RouteBenchRows(
        ids=[f"row{i:04d}" for i in range(count)],
        subjects=picked,
        prompts=[("What is 12 + 30?" if i % 3 else "Pick A or B.") for i in range(count)],
        weak=weak,
        strong=strong,
        prompt_chars=rng.integers(80, 2000, count).astype(float),
        weak_response_chars=chars * 1.5,
        strong_response_chars=chars,
    )


def fingerprint(result: ReplayResult) -> str:
    return hashlib.sha256(result.order.tobytes() + result.to_strong.tobytes()).hexdigest()[:16]


# Computed with the replay as it was before the staleness options existed (same engine; the
# engine after the issue-11 clean-up gives the same decisions; re-pinned when the controller
# started aiming at the reference estimate + 0.3 standard error). If the engine's decisions
# change on purpose, these change with them.
@pytest.mark.parametrize(
    ("options", "strong_calls", "decisions", "deficit"),
    [
        (ReplayOptions(seed=5), 198, "c9c7476e2b433a0f", 1.0716132932791989),
        (
            ReplayOptions(seed=5, context="subject+features"),
            229,
            "5b28867d8234e59c",
            2.2617462363403145,
        ),
        (
            ReplayOptions(seed=5, config=EngineConfig(half_life_seconds=50.0)),
            183,
            "f89973d198fc3593",
            4.504493724086614,
        ),
    ],
)
def test_default_replay_is_what_it_was(
    options: ReplayOptions, strong_calls: int, decisions: str, deficit: float
) -> None:
    result = replay(synthetic_rows(), options)
    assert int(result.to_strong.sum()) == strong_calls
    assert fingerprint(result) == decisions
    assert result.controller.deficit == pytest.approx(deficit, rel=1e-12)


def test_no_staleness_spelled_out_is_the_default() -> None:
    rows = synthetic_rows()
    default = replay(rows, ReplayOptions(seed=5))
    # Three processes that re-read the state before each of their decisions see what one does.
    spelled = replay(
        rows,
        ReplayOptions(
            seed=5, feedback_delay=0, snapshot_every=1, processes=3, controller_fold_every=1
        ),
    )
    assert np.array_equal(spelled.to_strong, default.to_strong)
    assert spelled.controller == default.controller
    assert spelled.reasons == default.reasons


def record_views(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each decision was shown: successes and outcomes per arm, controller outcomes."""
    seen: list[dict[str, Any]] = []
    rank_paths = simulation.rank_paths

    def recording(arms: list[Any], *, state: ControllerState, **kwargs: Any) -> Any:
        seen.append(
            {
                "successes": sum(arm.successes for arm in arms),
                "outcomes": sum(arm.successes + arm.failures for arm in arms),
                "controller": state.observations,
            }
        )
        return rank_paths(arms, state=state, **kwargs)

    monkeypatch.setattr(simulation, "rank_paths", recording)
    return seen


def outcome_values(rows: RouteBenchRows, result: ReplayResult) -> np.ndarray:
    """The value of each decision's outcome, in request order."""
    return np.where(result.to_strong, rows.strong[result.order], rows.weak[result.order])


@pytest.mark.parametrize("delay", [1, 7, 40])
def test_an_outcome_is_seen_exactly_when_its_delay_has_passed(
    monkeypatch: pytest.MonkeyPatch, delay: int
) -> None:
    rows = synthetic_rows(count=120)
    seen = record_views(monkeypatch)
    # Context "none": one bucket, so an arm's counts are every outcome learned so far.
    result = replay(rows, ReplayOptions(seed=5, context="none", feedback_delay=delay))
    values = outcome_values(rows, result)
    for step, view in enumerate(seen):
        visible = max(0, step - delay)  # the outcomes of decisions 0 .. step - delay - 1
        assert view["outcomes"] == visible, step
        assert view["successes"] == values[:visible].sum(), step
        assert view["controller"] == visible, step
    # Nothing is lost: the final controller counts every outcome.
    assert result.controller.observations == len(rows)


@pytest.mark.parametrize(("every", "processes", "delay"), [(5, 1, 0), (4, 3, 0), (6, 2, 3)])
def test_a_process_sees_the_state_of_its_last_refresh(
    monkeypatch: pytest.MonkeyPatch, every: int, processes: int, delay: int
) -> None:
    rows = synthetic_rows(count=120)
    seen = record_views(monkeypatch)
    result = replay(
        rows,
        ReplayOptions(
            seed=5,
            context="none",
            feedback_delay=delay,
            snapshot_every=every,
            processes=processes,
        ),
    )
    values = outcome_values(rows, result)
    for step, view in enumerate(seen):
        process, local = step % processes, step // processes
        # Process p re-reads before its first decision and then whenever its decision count
        # plus its phase p * K // W is a multiple of K.
        phase = process * every // processes
        refreshed = max(c for c in range(local + 1) if c == 0 or (c + phase) % every == 0)
        visible = max(0, refreshed * processes + process - delay)
        assert view["outcomes"] == visible, step
        assert view["successes"] == values[:visible].sum(), step
    assert result.controller.observations == len(rows)


def test_the_controller_folds_visible_outcomes_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = synthetic_rows(count=120)
    seen = record_views(monkeypatch)
    result = replay(
        rows, ReplayOptions(seed=5, context="none", feedback_delay=2, controller_fold_every=10)
    )
    for step, view in enumerate(seen):
        assert view["outcomes"] == max(0, step - 2)  # posteriors: every decision
        assert view["controller"] == max(0, step // 10 * 10 - 2), step  # at steps 0, 10, 20 ...
    assert result.controller.observations == len(rows)


def test_a_stale_controller_folds_every_outcome_in_decision_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Delayed and batched, the controller still ends as the fold of every outcome in decision
    # order (the fold is not commutative: anti-windup clip, re-based reference).
    rows = synthetic_rows()
    references: list[tuple[float, str | None]] = []
    rank_paths = simulation.rank_paths

    def recording(arms: list[Any], **kwargs: Any) -> Any:
        ranking = rank_paths(arms, **kwargs)
        references.append((ranking.reference_quality, kwargs["bucket"]))
        return ranking

    monkeypatch.setattr(simulation, "rank_paths", recording)
    options = ReplayOptions(
        seed=5,
        feedback_delay=30,
        controller_fold_every=7,
    )
    stale = replay(rows, options)
    state = ControllerState()
    for value, strong, (reference, bucket) in zip(
        outcome_values(rows, stale), stale.to_strong, references, strict=True
    ):
        state = controller_observe(
            state,
            config=options.config,
            value=float(value),
            reference_quality=reference,
            bucket=bucket,
            chosen_path="strong" if strong else "weak",
        )
    assert stale.controller == state
    assert stale.controller.observations == len(rows)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("feedback_delay", -1),
        ("snapshot_every", 0),
        ("processes", 0),
        ("controller_fold_every", 0),
        ("snapshot_every", 2.5),
    ],
)
def test_bad_staleness_options_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ReplayOptions(**{field: value})


def write_csv(rows: RouteBenchRows, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "id",
                "subject",
                "prompt",
                "weak_correct",
                "strong_correct",
                "prompt_chars",
                "weak_response_chars",
                "strong_response_chars",
            ]
        )
        for i in range(len(rows)):
            writer.writerow(
                [
                    rows.ids[i],
                    rows.subjects[i],
                    rows.prompts[i],
                    int(rows.weak[i]),
                    int(rows.strong[i]),
                    rows.prompt_chars[i],
                    "" if np.isnan(rows.weak_response_chars[i]) else rows.weak_response_chars[i],
                    ""
                    if np.isnan(rows.strong_response_chars[i])
                    else rows.strong_response_chars[i],
                ]
            )


def run_cli(data: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routerapp.replay", "--data", str(data), "--seed", "5", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_cli_flags(tmp_path: Path) -> None:
    data = tmp_path / "synthetic.csv"
    write_csv(synthetic_rows(), data)
    default = run_cli(data, "--no-progress")
    assert default.returncode == 0, default.stderr
    # The default summary is unchanged: same bytes, no staleness key.
    zeros = run_cli(
        data,
        "--no-progress",
        *("--feedback-delay", "0", "--snapshot-every", "1"),
        *("--processes", "1", "--controller-fold-every", "1"),
    )
    assert zeros.stdout == default.stdout
    assert "staleness" not in json.loads(default.stdout)
    stale = run_cli(data, "--no-progress", "--feedback-delay", "50", "--snapshot-every", "20")
    assert json.loads(stale.stdout)["staleness"] == {"feedback_delay": 50, "snapshot_every": 20}
    refused = run_cli(data, "--snapshot-every", "0")
    assert refused.returncode == 2
    assert "--snapshot-every: must be >= 1, got 0" in refused.stderr
    assert refused.stdout == ""
