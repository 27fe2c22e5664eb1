"""Exactness under load from two server processes hammering one goal over real HTTP.

Two routerapp processes (uvicorn subprocesses on the test database) take completions and
racing outcome reports concurrently. Afterwards every counter must equal what the stored rows
say: posterior == prior + the sum of the stored outcomes, rollups == the raw rows, one outcome
and one controller observation per decision, and the controller state == the engine's own fold
of the observations in log order.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import httpx
import openai
import pytest
from django.conf import settings

from routerapp import engine
from routerapp.models import (
    ControllerObservation,
    Goal,
    HourlyRollup,
    Outcome,
    Posterior,
    RoutingDecision,
)
from tests.builders import controller_settle, make_api_key, make_goal
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS, UNJUDGED_COMPLETIONS = 200, 40
SCORES = (0.0, 0.25, 0.5, 0.75, 1.0)  # exact in binary: sums do not depend on their order
WORDS = ("refund", "cruise", "meeting", "password", "shipment", "invoice", "error")


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def two_servers(simulator_url: str, transactional_db: None) -> Iterator[list[str]]:
    """Two routerapp server processes on the test database."""
    env = {**os.environ, "DATABASE_URL": database_url(), "SIMULATOR_URL": simulator_url}
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "routerapp.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{url} did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def prompt(rng: random.Random) -> list[dict[str, str]]:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.choice((4, 40, 160))))
    return [{"role": "user", "content": f"Sort this message ({rng.random():.6f}): {words}"}]


def test_two_processes_hammering_one_goal_leave_every_counter_exact(
    two_servers: list[str],
) -> None:
    judged = make_goal(
        slug="judged",
        success_when="response.choices[0].finish_reason == 'stop' and "
        "len(response.choices[0].message.content) > 60",
        bucket_by=Goal.BucketBy.COMPLEXITY,
    )
    unjudged = make_goal(slug="unjudged", bucket_by=Goal.BucketBy.COMPLEXITY)
    _, key = make_api_key()
    clients = [
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)
        for url in two_servers
    ]
    http = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    rng = random.Random(7)
    reported: dict[str, list[float]] = defaultdict(list)  # request id -> values sent

    def complete(goal: Goal, server: int, messages: list[dict[str, str]]) -> str:
        raw = clients[server].chat.completions.with_raw_response.create(
            model=f"goal/{goal.slug}", messages=messages
        )
        return raw.headers["X-Router-Request-Id"]

    def report(server: int, request_id: str, value: float) -> None:
        answer = http.post(
            f"{two_servers[server]}/api/v1/outcomes",
            json={"request_id": request_id, "score": value},
        )
        assert answer.status_code in (200, 201), answer.text

    with ThreadPoolExecutor(max_workers=16) as pool:
        calls: list[tuple[Goal, Future[str]]] = []
        for n in range(COMPLETIONS + UNJUDGED_COMPLETIONS):
            goal = judged if n < COMPLETIONS else unjudged  # the two processes take turns
            calls.append((goal, pool.submit(complete, goal, n % 2, prompt(rng))))
        reports: list[Future[None]] = []
        for n, (goal, call) in enumerate(calls):
            request_id = call.result()
            # Every fourth judged call and every unjudged one: two different values reported
            # at the same moment through the two processes; some also a third time, again.
            if goal == unjudged or n % 4 == 0:
                values = rng.sample(SCORES, 2) + ([rng.choice(SCORES)] if n % 3 == 0 else [])
                for server, value in enumerate(values):
                    reported[request_id].append(value)
                    reports.append(pool.submit(report, server % 2, request_id, value))
        for future in reports:
            future.result()
    http.close()

    assert len(reported) == COMPLETIONS // 4 + UNJUDGED_COMPLETIONS
    for goal in (judged, unjudged):
        assert_posteriors_equal_the_stored_outcomes(goal)
        assert_rollups_equal_the_raw_rows(goal)
        assert_one_outcome_and_one_observation_per_decision(goal, reported)
        controller_settle(goal)
        assert_controller_equals_the_engine_fold(goal)
    automatic = Outcome.objects.filter(decision__goal=judged, source="success_when")
    assert {0.0, 1.0} <= set(automatic.values_list("value", flat=True))


def assert_posteriors_equal_the_stored_outcomes(goal: Goal) -> None:
    expected: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for outcome in Outcome.objects.filter(decision__goal=goal).select_related("decision"):
        decision = outcome.decision
        for bucket in {"", decision.bucket}:
            expected[(decision.path_id, bucket)][0] += outcome.value
            expected[(decision.path_id, bucket)][1] += 1.0 - outcome.value
    stored = {
        (row.path_id, row.bucket): (row.successes, row.failures)
        for row in Posterior.objects.filter(goal=goal)
    }
    assert len(expected) > 2  # several paths and buckets took part
    assert stored.keys() == expected.keys()
    for key, (successes, failures) in expected.items():
        assert stored[key][0] == pytest.approx(successes, abs=1e-9), key
        assert stored[key][1] == pytest.approx(failures, abs=1e-9), key


def assert_rollups_equal_the_raw_rows(goal: Goal) -> None:
    expected: dict[tuple[int, object], list] = defaultdict(
        lambda: [0, 0, 0, 0.0, Decimal(0), Decimal(0), 0.0, 0, 0]
    )
    outcomes = dict(Outcome.objects.filter(decision__goal=goal).values_list("decision", "value"))
    for decision in RoutingDecision.objects.filter(goal=goal):
        path = decision.path_id or decision.ranking[0]
        hour = decision.created_at.replace(minute=0, second=0, microsecond=0)
        row = expected[(path, hour)]
        row[0] += 1
        row[1] += int(decision.status == RoutingDecision.Status.FAILED)
        row[2] += int(decision.pk in outcomes)
        row[3] += outcomes.get(decision.pk, 0.0)
        row[4] += decision.cost
        row[5] += decision.baseline_cost
        row[6] += decision.latency_ms
        row[7] += decision.tokens_in
        row[8] += decision.tokens_out
    stored = {(r.path_id, r.hour): r for r in HourlyRollup.objects.filter(goal=goal)}
    assert stored.keys() == expected.keys()
    for key, (
        requests,
        failed,
        n,
        success,
        spend,
        baseline,
        latency,
        tin,
        tout,
    ) in expected.items():
        rollup = stored[key]
        assert (rollup.requests, rollup.failed_requests, rollup.outcomes) == (requests, failed, n)
        assert rollup.success_sum == pytest.approx(success, abs=1e-9)
        assert (rollup.spend, rollup.baseline_spend) == (spend, baseline)
        assert rollup.latency_ms_sum == pytest.approx(latency, rel=1e-9)
        assert (rollup.tokens_in, rollup.tokens_out) == (tin, tout)


def assert_one_outcome_and_one_observation_per_decision(
    goal: Goal, reported: dict[str, list[float]]
) -> None:
    decisions = {d.pk: d for d in RoutingDecision.objects.filter(goal=goal)}
    outcomes = {o.decision_id: o for o in Outcome.objects.filter(decision__goal=goal)}
    observed = {o.decision_id: o for o in ControllerObservation.objects.filter(goal=goal)}
    judged = bool(goal.success_when)
    answered = {pk for pk, d in decisions.items() if d.status == RoutingDecision.Status.OK}
    # A judged goal has an outcome for every answered call; the other one for every report.
    with_outcome = (
        answered if judged else {pk for pk, d in decisions.items() if d.request_id in reported}
    )
    assert outcomes.keys() == with_outcome
    assert observed.keys() == with_outcome
    for pk, observation in observed.items():
        sent = reported.get(decisions[pk].request_id, [])
        if judged:
            assert observation.value in (0.0, 1.0)  # the automatic outcome, never a report
            assert outcomes[pk].value in [observation.value, *sent]
            if not sent:
                assert outcomes[pk].value == observation.value
        else:
            assert observation.value in sent  # the first report that committed
            assert outcomes[pk].value in sent


def assert_controller_equals_the_engine_fold(goal: Goal) -> None:
    goal.refresh_from_db()
    state = engine.ControllerState()
    rows = ControllerObservation.objects.filter(goal=goal).order_by("xid", "id")
    for row in rows:
        state = engine.controller_observe(
            state,
            config=goal.engine_config(),
            value=row.value,
            reference_quality=row.reference_quality,
            bucket=row.bucket or None,
            chosen_path=str(row.path_id),
        )
    assert state.observations == len(rows) > 0
    assert goal.controller_state == state.to_dict()
