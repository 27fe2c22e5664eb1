"""bench/replay_http.py end to end: a tiny RouteBench CSV through a live routerapp.

The bench's command line runs against the `live` server (real HTTP, the test database) and a
replay-mode simulator; the figures it prints must be what the labels say about the calls the
server recorded.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from bench import replay_http
from routerapp.models import Goal, Outcome, RoutingDecision
from routerapp.providers.simulator import serve_in_thread
from routerapp.replay.answers import ReplayAnswers
from routerapp.replay.data import Pricing, load_routebench
from routerapp.replay.simulation import replay
from routerapp.services.access import api_key_create

PRICES = {"weak": (Decimal("0.6"), Decimal("0.6")), "strong": (Decimal(10), Decimal(30))}


def run_bench(
    data: Path, base_url: str, key: str, *flags: str, capsys: pytest.CaptureFixture[str]
) -> dict:
    simulator_url, stop = serve_in_thread(replay=ReplayAnswers.load(data))
    try:
        code = replay_http.main(
            [
                str(data),
                "--base-url",
                base_url,
                "--key",
                key,
                "--simulator-url",
                simulator_url,
                "--no-progress",
                *flags,
            ]
        )
    finally:
        stop()
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]
    return json.loads(printed.out)  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)
def test_the_http_replay_reports_what_the_labels_say_of_the_calls_made(
    live: str, routebench_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, key = api_key_create(name="replay", scopes=["completions", "outcomes", "read", "admin"])
    summary = run_bench(
        routebench_csv,
        live,
        key,
        "--seed",
        "1",
        "--concurrency",
        "3",
        "--outcome-concurrency",
        "2",
        capsys=capsys,
    )
    rows = load_routebench(routebench_csv)
    goal = Goal.objects.get(slug__startswith="routebench-1-")
    assert (goal.objective, goal.quality_target, goal.prior_strength, goal.bucket_by) == (
        "cost_at_quality",
        0.95,
        2.0,
        "task_type",
    )
    decisions = list(RoutingDecision.objects.filter(goal=goal).select_related("path"))
    assert len(decisions) == len(rows) == summary["n"] == 40

    by_key = {
        (prompt, subject): index
        for index, (prompt, subject) in enumerate(zip(rows.prompts, rows.subjects, strict=True))
    }
    correct, strong_calls, cost = [], 0, Decimal(0)
    for decision in decisions:
        subject = decision.features["metadata"]["task_type"]
        assert decision.bucket == f"task_type:{subject}"
        prompt = decision.prompt_preview.removeprefix("user: ")
        row = by_key[(prompt, subject)]
        arm = decision.path.name
        label = bool((rows.strong if arm == "strong" else rows.weak)[row])
        # The simulator answered as that model did, and the outcome reported is the label.
        assert decision.response_text == ("correct" if label else "incorrect")
        assert Outcome.objects.get(decision=decision).value == float(label)
        # Usage is the row's recorded length, so the router charged the row's real cost.
        assert decision.tokens_in == math.ceil(rows.prompt_chars[row] / 4)
        price_in, price_out = PRICES[arm]
        assert decision.cost == (
            price_in * decision.tokens_in + price_out * decision.tokens_out
        ) / (Decimal(1_000_000))
        correct.append(label)
        strong_calls += arm == "strong"
        cost += decision.cost

    assert summary["accuracy"] == pytest.approx(sum(correct) / 40)
    assert summary["strong_share"] == pytest.approx(strong_calls / 40)
    assert sum(summary["reasons"].values()) == 40
    assert summary["weak_accuracy"] == pytest.approx(rows.weak.mean())
    assert summary["http"]["answer_mismatches"] == 0
    assert summary["http"]["recorded_cost"] == pytest.approx(float(cost), abs=1e-9)
    # The engine-only replay ran on the same rows and seed, and the difference is theirs.
    engine = summary["engine_only"]
    assert engine["n"] == 40
    assert summary["difference_points"]["strong_share"] == pytest.approx(
        round(100 * (summary["strong_share"] - engine["strong_share"]), 2)
    )


def test_requests_follow_the_engine_replays_order(routebench_csv: Path) -> None:
    rows = load_routebench(routebench_csv)
    options = replay_http.Settings(seed=5).replay_options(Pricing())
    same_rows, order = replay_http.rows_and_order(rows, seed=5, limit=None)
    assert same_rows.ids == rows.ids
    assert order.tolist() == replay(rows, options).order.tolist()
    # A limit keeps the first K rows of that order (in file order) and orders them as the
    # engine replay orders those K rows, so both replays see the same calls in the same order.
    subset, order = replay_http.rows_and_order(rows, seed=5, limit=12)
    first = replay(rows, options).order[:12].tolist()
    assert subset.ids == [rows.ids[i] for i in sorted(first)]
    assert order.tolist() == replay(subset, options).order.tolist()
    assert subset.weak.tolist() == [int(rows.weak[i]) for i in sorted(first)]
