"""Property tests: rankings are permutations, free of NaN, for any valid evidence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerapp.engine import (
    Arm,
    ControllerState,
    EngineConfig,
    InvalidEvidence,
    rank_paths,
)

counts = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)
arm_lists = st.lists(
    st.tuples(
        counts,
        counts,
        counts,
        counts,
        st.floats(min_value=0.01, max_value=100.0),
        st.floats(min_value=0.0, max_value=10.0),
    ),
    min_size=1,
    max_size=25,
)
objectives = st.sampled_from(["success", "cost_at_quality", "utility"])


def build(rows: list[tuple[float, ...]]) -> list[Arm]:
    return [
        Arm(
            path_id=f"p{i}",
            weight=w,
            expected_cost=c + 0.001,
            successes=s,
            failures=f,
            goal_successes=s + gs,
            goal_failures=f + gf,
        )
        for i, (s, f, gs, gf, w, c) in enumerate(rows)
    ]


@settings(max_examples=150, deadline=None)
@given(
    rows=arm_lists,
    objective=objectives,
    seed=st.integers(0, 2**32 - 1),
    deficit=st.floats(-1e4, 1e4),
)
def test_ranking_is_a_nan_free_permutation_of_the_eligible_paths(
    rows: list[tuple[float, ...]], objective: str, seed: int, deficit: float
) -> None:
    arms = build(rows)
    ranking = rank_paths(
        arms,
        config=EngineConfig(objective=objective),  # type: ignore[arg-type]
        rng=np.random.default_rng(seed),
        state=ControllerState(deficit=deficit),
    )
    assert sorted(ranking.order) == sorted(arm.path_id for arm in arms)
    assert len(set(ranking.order)) == len(arms)
    assert all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in ranking.samples.values())
    assert 0.0 <= ranking.reference_quality <= 1.0
    assert all(math.isfinite(x) for x in ranking.details["means"].values())


@settings(max_examples=50, deadline=None)
@given(count=st.floats(min_value=1e10 * 1.01, max_value=1e300), index=st.integers(0, 3))
def test_counts_beyond_the_limit_are_always_rejected(count: float, index: int) -> None:
    fields = ["successes", "failures", "goal_successes", "goal_failures"]
    arm = Arm(path_id="p", **{fields[index]: count})
    with pytest.raises(InvalidEvidence):
        rank_paths([arm], config=EngineConfig(objective="success"), rng=np.random.default_rng(0))
