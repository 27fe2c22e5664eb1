"""One set of defaults (issue 11): the replay runs what a new goal runs."""

from __future__ import annotations

from routerapp import engine
from routerapp.models import Goal
from routerapp.replay.__main__ import build_parser


def test_a_new_goal_and_the_replay_share_the_engine_defaults() -> None:
    goal = Goal(slug="defaults")
    config = goal.engine_config()
    assert config == engine.DEFAULT_CONFIG
    assert goal.prior_strength == engine.DEFAULT_PRIOR_STRENGTH == 2.0
    args = build_parser().parse_args(["--data", "x.csv"])
    assert args.prior_strength == config.prior_strength
    assert args.exploration_floor == config.exploration_floor
    assert args.quality_target == config.quality_target
    assert args.objective == config.objective
    assert args.backoff_strength == config.backoff_strength
    assert args.controller_gain == config.controller_gain
