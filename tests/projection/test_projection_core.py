"""The pure projection core on hand-made logs (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from routerapp import engine
from routerapp.projection import (
    LoggedDecision,
    PathInfo,
    Policy,
    PolicyPath,
    ProjectionError,
    project,
    prompt_tokens_rounded,
)
from routerapp.selectors.posteriors import arms_for

PATHS = [
    PathInfo(id=1, name="mini", price_in=0.15, price_out=0.60),
    PathInfo(id=2, name="big", price_in=2.50, price_out=10.0),
]


def _arms(paths: Any, evidence: Any, bucket: str, expected_cost: Any) -> list[engine.Arm]:
    return arms_for(paths=paths, evidence=evidence, bucket=bucket, expected_cost=expected_cost)


def _policy(*, rules: list[dict[str, Any]] | None = None, big_enabled: bool = True) -> Policy:
    return Policy(
        config=engine.EngineConfig(),
        paths=(
            PolicyPath(id=1, name="mini", weight=1.0, alpha0=None, beta0=None, enabled=True),
            PolicyPath(id=2, name="big", weight=1.0, alpha0=None, beta0=None, enabled=big_enabled),
        ),
        rules=rules or [],
        bucket_by="complexity",
        evidence={(1, ""): (90.0, 10.0), (2, ""): (95.0, 5.0)},
        baseline=2,
    )


def _log(count: int, *, complexity: float = 1.0) -> list[LoggedDecision]:
    """Alternating paths, each logged with propensity 1/2; mini succeeds on 3 of 4 of its
    calls, big on all of its."""
    decisions = []
    for index in range(count):
        path = 1 if index % 2 == 0 else 2
        outcome = 0.0 if path == 1 and index % 8 == 0 else 1.0
        decisions.append(
            LoggedDecision(
                id=index,
                path=path,
                names={"prompt_tokens": 200, "complexity": complexity},
                propensity=0.5,
                outcome=outcome,
                tokens_in=200,
                tokens_out=100,
                cost=(0.15 * 200 + 0.60 * 100) / 1e6 if path == 1 else (2.5 * 200 + 10 * 100) / 1e6,
                at=1_700_000_000.0 + 60 * index,
            )
        )
    return decisions


PIN_MINI = {"name": "all-mini", "condition": "True", "action": "pin", "paths": ["mini"]}


def test_prompt_tokens_keep_two_significant_figures() -> None:
    assert [prompt_tokens_rounded(t) for t in (7, 99, 123, 987, 1049, 25_449)] == [
        7,
        99,
        120,
        990,
        1000,
        25_000,
    ]


def test_snips_of_a_pin_is_the_pinned_paths_logged_mean() -> None:
    result = project(
        _log(400),
        paths=PATHS,
        current=_policy(),
        proposed=_policy(rules=[PIN_MINI]),
        arms_builder=_arms,
    )

    assert result["method"] == "snips"
    success = result["proposed"]["success"]
    # Equal weights 1 / 0.5 on the 200 mini calls, 0 on the others: the plain mean, 0.75.
    assert success["rate"] == pytest.approx(0.75)
    assert success["effective_sample_size"] == pytest.approx(200.0)
    assert success["low"] < 0.75 < success["high"]
    # Spend: every call at mini's price; savings against big on every call.
    assert result["proposed"]["spend"] == pytest.approx(400 * 90 / 1e6)
    assert result["proposed"]["savings"] == pytest.approx(400 * 1500 / 1e6 - 400 * 90 / 1e6)


def test_an_exclude_rule_takes_the_path_out_and_a_disabled_path_gets_nothing() -> None:
    exclude = {
        "name": "no-big",
        "condition": "complexity < 3.5",
        "action": "exclude",
        "paths": ["big"],
    }

    by_rule = project(
        _log(200),
        paths=PATHS,
        current=_policy(),
        proposed=_policy(rules=[exclude]),
        arms_builder=_arms,
    )
    disabled = project(
        _log(200),
        paths=PATHS,
        current=_policy(),
        proposed=_policy(big_enabled=False),
        arms_builder=_arms,
    )

    assert by_rule["proposed"]["shares"] == {"mini": 1.0, "big": 0.0}
    assert disabled["proposed"]["shares"] == {"mini": 1.0, "big": 0.0}
    assert by_rule["proposed"]["pinned_calls"] == 0


def test_a_condition_that_does_not_match_changes_nothing() -> None:
    never = {**PIN_MINI, "condition": "complexity > 9"}

    result = project(
        _log(200),
        paths=PATHS,
        current=_policy(),
        proposed=_policy(rules=[never]),
        arms_builder=_arms,
    )

    assert result["changed_path"] == 0
    assert result["delta"]["spend"] == 0.0
    assert result["current"]["shares"] == result["proposed"]["shares"]


def test_a_policy_without_an_enabled_path_is_refused() -> None:
    nothing = Policy(
        config=engine.EngineConfig(),
        paths=(PolicyPath(id=1, name="mini", weight=1.0, alpha0=None, beta0=None, enabled=False),),
        rules=[],
        bucket_by="none",
        evidence={},
        baseline=None,
    )

    with pytest.raises(ProjectionError, match="no enabled path"):
        project(_log(10), paths=PATHS[:1], current=nothing, proposed=nothing, arms_builder=_arms)
