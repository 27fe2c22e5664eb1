"""The projected effect of a change on logged traffic, on PostgreSQL with real rows."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path as FilePath
from typing import Any

import pytest

from routerapp.models import ChangeRequest, Goal
from routerapp.services.governance import change_request_propose, goal_snapshot
from routerapp.services.projection import project_change
from tests.builders import make_goal
from tests.projection.traffic import RATES, generate

REPO = FilePath(__file__).resolve().parents[2]
PIN_COMPLEX_TO_MINI = {
    "name": "complex-to-mini",
    "condition": "complexity >= 6.5",
    "action": "pin",
    "paths": ["gpt-4o-mini"],
    "bucket": "",
}
PIN_ALL_TO_MINI = {**PIN_COMPLEX_TO_MINI, "name": "all-to-mini", "condition": "True"}


def _goal(**fields: Any) -> Goal:
    return make_goal(slug="triage", bucket_by=Goal.BucketBy.COMPLEXITY, **fields)


def _with_rules(snapshot: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    proposed = copy.deepcopy(snapshot)
    proposed["rules"] = [*proposed["rules"], *rules]
    return proposed


def test_the_projection_module_is_pure() -> None:
    code = (
        "import routerapp.projection, sys; "
        "print(','.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('django', 'rest_framework', 'celery'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.stdout.strip() == ""


@pytest.mark.django_db
def test_a_no_op_projects_exactly_zero_change() -> None:
    goal = _goal()
    generate(goal, count=600, seed=1)
    current = goal_snapshot(goal)

    projection = project_change(goal, current=current, proposed=copy.deepcopy(current))

    assert projection["decisions"] == 600
    assert projection["changed_path"] == 0
    assert projection["unsupported"] == {}
    assert projection["delta"]["spend"] == 0.0
    assert projection["delta"]["savings"] == 0.0
    assert projection["delta"]["success"] == 0.0
    assert projection["current"]["shares"] == projection["proposed"]["shares"]
    assert projection["current"]["success"] == projection["proposed"]["success"]
    for row in projection["paths"].values():
        assert row["current"] == row["proposed"]


@pytest.mark.django_db
def test_pinning_everything_to_the_cheap_path_snips_recovers_its_true_rate() -> None:
    goal = _goal()
    generate(goal, count=2000, seed=2, simple_share=0.6)
    current = goal_snapshot(goal)

    projection = project_change(
        goal, current=current, proposed=_with_rules(current, PIN_ALL_TO_MINI)
    )

    assert projection["method"] == "snips"
    proposed = projection["proposed"]
    assert proposed["shares"] == {"gpt-4o-mini": 1.0, "gpt-4o": 0.0}
    assert proposed["pinned_calls"] == 2000
    # The true rate of gpt-4o-mini on this mix: 60% simple at 0.96, 40% complex at 0.70.
    truth = (
        0.6 * RATES["gpt-4o-mini"]["complexity:simple"]
        + 0.4 * RATES["gpt-4o-mini"]["complexity:complex"]
    )
    success = proposed["success"]
    assert success["low"] <= truth <= success["high"]
    assert abs(success["rate"] - truth) < 0.03  # ~1000 weighted outcomes: SE about 0.014
    # Half the calls were logged on gpt-4o-mini with propensity 0.5: n_eff about 1000.
    assert 800 < success["effective_sample_size"] < 1200
    # The proposed spend is every call at gpt-4o-mini's price; savings against gpt-4o.
    assert proposed["baseline"] == "gpt-4o"
    assert proposed["spend"] < projection["current"]["spend"]
    assert projection["delta"]["savings"] == pytest.approx(-projection["delta"]["spend"], abs=1e-6)
    assert proposed["spend_per_month"] == pytest.approx(
        proposed["spend"] * 30 / projection["window"]["days"], rel=0.01
    )


@pytest.mark.django_db
def test_spend_prices_other_paths_by_the_logged_tokens() -> None:
    goal = _goal()
    traffic = generate(goal, count=300, seed=3, cheap_share=0.0)  # all logged on gpt-4o
    current = goal_snapshot(goal)

    projection = project_change(
        goal, current=current, proposed=_with_rules(current, PIN_ALL_TO_MINI)
    )

    assert projection["logged"]["spend"] == pytest.approx(float(traffic.spend), abs=1e-6)
    # gpt-4o-mini's prices are 0.06 of gpt-4o's for both input and output tokens.
    assert projection["proposed"]["spend"] == pytest.approx(float(traffic.spend) * 0.06, rel=1e-6)
    assert projection["proposed"]["savings"] == pytest.approx(float(traffic.spend) * 0.94, rel=1e-6)


@pytest.mark.django_db
def test_moves_to_a_path_without_outcomes_there_are_called_unsupported() -> None:
    goal = _goal()
    generate(goal, count=800, seed=4, only_strong_in="complexity:complex")
    current = goal_snapshot(goal)

    projection = project_change(
        goal, current=current, proposed=_with_rules(current, PIN_COMPLEX_TO_MINI)
    )

    assert projection["paths"]["gpt-4o-mini"]["outcomes"] > 0  # on simple calls only
    moved = projection["unsupported"].get("gpt-4o-mini", 0)
    assert moved > 0
    # Every move goes where the log is blind; the expected count of changed calls is at most
    # the calls whose most likely path moves (the current policy gives gpt-4o-mini a little).
    assert 0 < projection["changed_path"] <= moved
    assert any("no logged outcome" in note for note in projection["notes"])


@pytest.mark.django_db
def test_without_propensities_the_estimate_is_the_direct_method_and_says_so() -> None:
    goal = _goal()
    generate(goal, count=500, seed=5, propensity=False)
    current = goal_snapshot(goal)

    projection = project_change(
        goal, current=current, proposed=_with_rules(current, PIN_ALL_TO_MINI)
    )

    assert projection["method"] == "direct"
    assert projection["proposed"]["success"]["method"] == "direct"
    assert any("direct-method" in note for note in projection["notes"])
    truth = (
        0.6 * RATES["gpt-4o-mini"]["complexity:simple"]
        + 0.4 * RATES["gpt-4o-mini"]["complexity:complex"]
    )
    success = projection["proposed"]["success"]
    assert abs(success["rate"] - truth) < 0.05  # posterior means with a weak prior


@pytest.mark.django_db
def test_disabling_a_path_moves_its_share_and_limit_bounds_the_replay() -> None:
    goal = _goal()
    generate(goal, count=400, seed=6)
    current = goal_snapshot(goal)
    proposed = copy.deepcopy(current)
    proposed["paths"]["gpt-4o"]["enabled"] = False

    projection = project_change(goal, current=current, proposed=proposed, limit=150)

    assert projection["decisions"] == 150
    assert projection["proposed"]["shares"]["gpt-4o"] == 0.0
    assert projection["proposed"]["shares"]["gpt-4o-mini"] == 1.0
    assert projection["changed_path"] > 0


@pytest.mark.django_db
def test_no_decisions_projects_nothing_and_says_so() -> None:
    goal = _goal()
    current = goal_snapshot(goal)

    projection = project_change(
        goal, current=current, proposed=_with_rules(current, PIN_ALL_TO_MINI)
    )

    assert projection["decisions"] == 0
    assert projection["changed_path"] == 0
    assert projection["notes"]


@pytest.mark.django_db
def test_two_thousand_decisions_project_in_well_under_two_seconds(capsys: Any) -> None:
    goal = _goal()
    generate(goal, count=2000, seed=7)
    current = goal_snapshot(goal)
    proposed = _with_rules(current, PIN_COMPLEX_TO_MINI)
    proposed["goal"]["quality_target"] = 0.9

    project_change(goal, current=current, proposed=proposed)  # warm caches (priors, rules)
    started = time.perf_counter()
    projection = project_change(goal, current=current, proposed=proposed)
    elapsed = time.perf_counter() - started

    assert projection["decisions"] == 2000
    with capsys.disabled():
        print(f"\nprojection of 2000 decisions: {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0


@pytest.mark.django_db
def test_a_proposal_stores_its_projection(operator: Any) -> None:
    goal = _goal()
    generate(goal, count=300, seed=8)

    change_request = change_request_propose(
        goal=goal,
        changes={"rules": [PIN_COMPLEX_TO_MINI]},
        reason="complex calls to mini",
        actor=operator,
    )

    change_request.refresh_from_db()
    assert change_request.status == ChangeRequest.Status.PENDING
    projection = change_request.projection
    assert "error" not in projection
    assert projection["decisions"] == 300
    assert projection["proposed"]["pinned_calls"] > 0
    assert Decimal(str(projection["proposed"]["spend"])) < Decimal(
        str(projection["current"]["spend"])
    )
