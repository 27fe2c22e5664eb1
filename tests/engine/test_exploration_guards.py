"""Opt-in guards against the collapse mode of docs/engine.md (all off by default)."""

from __future__ import annotations

import numpy as np
import pytest

from routerapp.engine import Arm, ControllerState, EngineConfig, InvalidConfig, rank_paths
from routerapp.engine.control import path_offsets
from tests.engine.test_control import BEST_MEAN, run_stream

# Easy buckets: the cheap path is right 45 times out of 50, the dear one once out of once.
EASY = {f"b{i}": {"cheap": (50.0, 45.0), "dear": (1.0, 1.0)} for i in range(6)}


def test_default_offsets_read_a_rarely_tried_path_as_worse_in_easy_buckets() -> None:
    # Smoothing towards 1/2 makes one success out of one (0.75) look worse than 0.9.
    assert path_offsets(EASY)["dear"] < 0.0


def test_offset_shrinkage_shrinks_towards_no_difference_instead() -> None:
    offsets = path_offsets(EASY, 3.0)
    assert 0.0 < offsets["dear"] < 0.5
    # With plenty of outcomes both estimators agree on the sign and roughly on the size.
    rich = {f"b{i}": {"cheap": (200.0, 120.0), "dear": (200.0, 160.0)} for i in range(3)}
    assert path_offsets(rich, 3.0)["dear"] == pytest.approx(path_offsets(rich)["dear"], abs=0.05)


def test_offset_shrinkage_holds_the_floor_on_a_seeded_stream() -> None:
    config = EngineConfig(offset_shrinkage=3.0)
    qualities = [run_stream(config, seed=seed, tell_path=True)[0] for seed in (11, 12)]
    assert np.mean(qualities) >= 0.95 * BEST_MEAN - 0.01


def _arms(dear_outcomes: float) -> list[Arm]:
    return [
        Arm(
            path_id="cheap",
            expected_cost=1.0,
            successes=40,
            failures=10,
            goal_successes=400,
            goal_failures=100,
        ),
        Arm(
            path_id="dear",
            expected_cost=10.0,
            successes=dear_outcomes,
            failures=0,
            goal_successes=300 + dear_outcomes,
            goal_failures=50,
        ),
    ]


def test_reference_min_outcomes_forces_the_reference_path_until_it_has_them() -> None:
    # A large surplus: the tolerance is at its maximum, so Thompson alone picks cheap.
    state = ControllerState(deficit=-1e6, offsets={"cheap": 0.0, "dear": 1.0})
    guarded = EngineConfig(reference_min_outcomes=5, exploration_floor=0.0)
    rng = np.random.default_rng(7)
    sparse = [
        rank_paths(_arms(3), config=guarded, rng=rng, state=state, bucket="b") for _ in range(200)
    ]
    assert all(r.order[0] == "dear" for r in sparse)
    assert {r.reason for r in sparse} == {"exploration"}
    rng = np.random.default_rng(7)
    settled = [
        rank_paths(_arms(5), config=guarded, rng=rng, state=state, bucket="b") for _ in range(200)
    ]
    assert sum(r.order[0] == "dear" for r in settled) < 10
    plain = [
        rank_paths(
            _arms(3), config=EngineConfig(), rng=np.random.default_rng(7), state=state, bucket="b"
        )
        for _ in range(50)
    ]
    assert sum(r.order[0] == "dear" for r in plain) < 10


def test_temper_after_keeps_full_thompson_draws_in_sparse_buckets() -> None:
    config = EngineConfig(sample_scale=0.0, temper_after=10)
    sparse = rank_paths(_arms(3), config=config, rng=np.random.default_rng(3), bucket="b")
    assert sparse.samples["dear"] != pytest.approx(sparse.details["means"]["dear"])
    settled = rank_paths(_arms(12), config=config, rng=np.random.default_rng(3), bucket="b")
    for path in ("cheap", "dear"):
        assert settled.samples[path] == pytest.approx(settled.details["means"][path])


@pytest.mark.parametrize("field", ["offset_shrinkage", "reference_min_outcomes", "temper_after"])
def test_guards_reject_negative_settings(field: str) -> None:
    with pytest.raises(InvalidConfig):
        EngineConfig(**{field: -1.0})
