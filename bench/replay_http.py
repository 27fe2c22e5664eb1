"""The whole system on real outcomes: RouteBench through routerapp's HTTP API.

    .venv/bin/python bench/replay_http.py ../shared/data/routebench/dev.csv \
        [--seed 0] [--limit K] [--concurrency 8] [--outcome-concurrency 4] \
        [--objective cost_at_quality] [--quality-target 0.95] [--context subject] \
        [--base-url URL --key KEY [--simulator-url URL]] [--workers 2]

`python -m routerapp.replay` replays the dataset through the engine alone; this replays it
through a running routerapp, as a client would use it:

- the simulator runs in replay mode (`ROUTERAPP_SIM_REPLAY`): the dataset's weak and strong
  models answer each prompt as they did, with the recorded token counts as usage;
- one goal with two paths (weak, strong) priced as the engine replay prices them (score.py's
  cost model), the engine replay's objective, quality target, exploration floor and prior
  strength, bucketed by task type when the context is `subject`;
- the rows go, in the engine replay's seeded order, to `POST /v1/chat/completions` (the real
  `openai` client, `--concurrency` calls in flight, the subject as `metadata.task_type`);
- each outcome (correct -> success, else failure, from the labels of the model that answered,
  which the response names) goes to `POST /api/v1/outcomes` from `--outcome-concurrency`
  reporters, so the router decides with feedback still in flight, as in production.

Prints one JSON object with the keys of `python -m routerapp.replay` (scored by its own
`summarise`), plus `http` (transport figures: wall time, feedback lag in calls, recorded cost)
and `engine_only` with `difference_points`: the engine replay on the same rows and seed.
`final_tolerance` is null: the controller's state is not exposed over HTTP.

Without `--base-url` it starts its own stack and stops it at the end: a database
(`--database-url`, default `rt_replay_http` on the local server; created and migrated if
missing, never dropped: each run makes a new goal), routerapp under gunicorn with
`--workers` uvicorn workers (the Dockerfile's server, DEBUG off) and the replay simulator.
With `--base-url`, `--key` must carry the scopes completions, outcomes and admin (the goal,
paths, provider and prices are created through /api/v1); the replay simulator is started
here unless `--simulator-url` names one that the server can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from openai import APIConnectionError, APIError, APIStatusError, AsyncOpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from routerapp.engine import ControllerState, EngineConfig  # noqa: E402
from routerapp.replay.answers import MODEL_ARMS, STRONG_MODEL, WEAK_MODEL  # noqa: E402
from routerapp.replay.data import Pricing, RouteBenchRows, load_routebench  # noqa: E402
from routerapp.replay.simulation import (  # noqa: E402
    ReplayOptions,
    ReplayResult,
    progress_bar,
    replay,
    summarise,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rt_replay_http"
CONTEXT_BUCKETS = {"subject": "task_type", "none": "none"}
ARM_MODELS = {"weak": WEAK_MODEL, "strong": STRONG_MODEL}
CALL_TIMEOUT_SECONDS = 60.0
# Server errors (a deadlock victim, a database out of connections) are retried with
# exponential backoff (0.2 s doubling, at most 10 s: ~35 s in all) and counted.
RETRIES = 8
RETRY_SECONDS = 0.2
RETRY_MAX_SECONDS = 10.0


class ReplayFailed(RuntimeError):
    """A call or report the figures cannot do without failed: the run is void."""


@dataclass(frozen=True)
class Settings:
    """The goal's settings, named as the engine replay names them."""

    objective: str = "cost_at_quality"
    quality_target: float = 0.95
    context: str = "subject"
    exploration_floor: float = EngineConfig.exploration_floor
    prior_strength: float = EngineConfig.prior_strength
    seed: int = 0

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            objective=self.objective,  # type: ignore[arg-type]
            quality_target=self.quality_target,
            exploration_floor=self.exploration_floor,
            prior_strength=self.prior_strength,
        )

    def replay_options(self, pricing: Pricing) -> ReplayOptions:
        return ReplayOptions(
            config=self.engine_config(), context=self.context, seed=self.seed, pricing=pricing
        )


@dataclass
class HttpRun:
    """What the calls did, aligned with the request order."""

    to_strong: np.ndarray
    reasons: dict[str, int] = field(default_factory=dict)
    lag_calls: list[int] = field(default_factory=list)
    recorded_cost: Decimal = Decimal(0)
    answer_mismatches: int = 0
    server_errors: int = 0
    rate_limited: int = 0
    wall_seconds: float = 0.0

    def retry_delay(self, status: int, retry_after: str | None, attempt: int) -> float | None:
        """Seconds to wait before sending again, or None when the answer stands. Server
        errors and lost connections (status 599) are retried RETRIES times; 429s as the
        server asks (Retry-After). Both are counted."""
        if status == 429:
            self.rate_limited += 1
            return float(retry_after or 1)
        if status >= 500 and attempt < RETRIES:
            self.server_errors += 1
            return min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2**attempt)
        return None


# --------------------------------------------------------------------------- rows and order


def take(rows: RouteBenchRows, indices: list[int]) -> RouteBenchRows:
    """The given rows, in the given order."""
    index = np.asarray(indices, dtype=int)
    return RouteBenchRows(
        ids=[rows.ids[i] for i in indices],
        subjects=[rows.subjects[i] for i in indices],
        prompts=[rows.prompts[i] for i in indices],
        weak=rows.weak[index],
        strong=rows.strong[index],
        prompt_chars=rows.prompt_chars[index],
        weak_response_chars=rows.weak_response_chars[index],
        strong_response_chars=rows.strong_response_chars[index],
    )


def rows_and_order(
    rows: RouteBenchRows, *, seed: int, limit: int | None
) -> tuple[RouteBenchRows, np.ndarray]:
    """The rows to replay and their request order: exactly the engine replay's.

    Without a limit, all rows in `replay`'s seeded order. With `--limit K`, the first K rows of
    that order, kept in file order, then ordered as `replay` orders those K rows with the
    same seed, so the engine-only figures of the same subset are comparable call for call.
    """
    if limit is not None and limit < len(rows):
        chosen = sorted(np.random.default_rng(seed).permutation(len(rows))[:limit].tolist())
        rows = take(rows, chosen)
    return rows, np.random.default_rng(seed).permutation(len(rows))


# --------------------------------------------------------------------------- configuration


async def _post(api: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> None:
    response = await api.post(url, json=payload)
    if response.status_code >= 300:
        raise ReplayFailed(f"POST {url} answered {response.status_code}: {response.text}")


async def goal_create(
    api: httpx.AsyncClient, *, simulator_url: str, settings: Settings, pricing: Pricing
) -> str:
    """A provider at the replay simulator, its two prices, a goal and its two paths; returns
    the goal's slug (new every run, so earlier runs' evidence never counts)."""
    run = f"routebench-{settings.seed}-{secrets.token_hex(3)}"
    provider = run + "-replay"
    await _post(
        api,
        "/api/v1/providers",
        {"name": provider, "kind": "openai", "base_url": simulator_url, "max_retries": 0},
    )
    prices = {
        "weak": (pricing.weak_in, pricing.weak_out),
        "strong": (pricing.strong_in, pricing.strong_out),
    }
    for arm, (price_in, price_out) in prices.items():
        await _post(
            api,
            "/api/v1/prices",
            {
                "provider": provider,
                "model": ARM_MODELS[arm],
                "input_per_million": str(price_in),
                "output_per_million": str(price_out),
            },
        )
    await _post(
        api,
        "/api/v1/goals",
        {
            "slug": run,
            "description": "RouteBench replay over HTTP (bench/replay_http.py)",
            "objective": settings.objective,
            "quality_target": settings.quality_target,
            "exploration_floor": settings.exploration_floor,
            "prior_strength": settings.prior_strength,
            "bucket_by": CONTEXT_BUCKETS[settings.context],
        },
    )
    for arm, model in ARM_MODELS.items():
        await _post(
            api,
            "/api/v1/paths",
            {
                "goal": run,
                "name": arm,
                "provider": provider,
                "model": model,
                # The engine replay's expectation before it has seen an output; a path's
                # expectation is fixed in routerapp (see docs/benchmarks.md).
                "expected_output_tokens": int(pricing.default_response_tokens),
            },
        )
    return run


# --------------------------------------------------------------------------- the replay


async def replay_http(
    *,
    base_url: str,
    key: str,
    rows: RouteBenchRows,
    order: np.ndarray,
    settings: Settings,
    simulator_url: str,
    pricing: Pricing,
    concurrency: int = 8,
    outcome_concurrency: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> HttpRun:
    """Send every row in `order` through the goal and report its outcome."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency + outcome_concurrency)
    async with (
        httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=CALL_TIMEOUT_SECONDS, limits=limits
        ) as api,
        AsyncOpenAI(
            base_url=base_url.rstrip("/") + "/v1",
            api_key=key,
            max_retries=0,  # retried below, so that server errors are counted
            timeout=CALL_TIMEOUT_SECONDS,
        ) as client,
    ):
        goal = await goal_create(
            api, simulator_url=simulator_url, settings=settings, pricing=pricing
        )
        total = len(order)
        run = HttpRun(to_strong=np.zeros(total, dtype=bool))
        steps = iter(range(total))
        dispatched = 0
        done = 0
        # Bounded, so callers wait when reporters fall behind: feedback lags by about
        # `concurrency + 2 * outcome_concurrency` calls, not by an ever-growing backlog.
        outcomes: asyncio.Queue[tuple[int, str, bool] | None] = asyncio.Queue(outcome_concurrency)

        async def complete(row: int) -> Any:
            for attempt in itertools.count():
                try:
                    return await client.chat.completions.with_raw_response.create(
                        model=f"goal/{goal}",
                        messages=[{"role": "user", "content": rows.prompts[row]}],
                        metadata={"task_type": rows.subjects[row]},
                        # The row id tells apart the few prompts found under two subjects.
                        user=rows.ids[row],
                    )
                except (APIConnectionError, APIStatusError) as error:
                    if isinstance(error, APIStatusError):
                        status, retry_after = (
                            error.status_code,
                            error.response.headers.get("retry-after"),
                        )
                    else:
                        status, retry_after = 599, None
                    delay = run.retry_delay(status, retry_after, attempt)
                    if delay is None:
                        raise
                    await asyncio.sleep(delay)
            raise AssertionError("unreachable")

        async def call() -> None:
            nonlocal dispatched
            for step in steps:
                row = int(order[step])
                dispatched += 1
                raw = await complete(row)
                completion = raw.parse()
                arm = MODEL_ARMS[completion.model]
                if raw.headers.get("x-router-path") != arm:
                    path = raw.headers.get("x-router-path")
                    raise ReplayFailed(f"path {path} answered with the {arm} model")
                correct = bool((rows.strong if arm == "strong" else rows.weak)[row])
                content = completion.choices[0].message.content
                run.answer_mismatches += content != ("correct" if correct else "incorrect")
                run.to_strong[step] = arm == "strong"
                router = (completion.model_extra or {}).get("router") or {}
                reason = str(router.get("reason", "unknown"))
                run.reasons[reason] = run.reasons.get(reason, 0) + 1
                run.recorded_cost += Decimal(raw.headers.get("x-router-cost-usd", "0"))
                await outcomes.put((step, raw.headers["x-router-request-id"], correct))

        async def report() -> None:
            nonlocal done
            while (item := await outcomes.get()) is not None:
                step, request_id, correct = item
                body = {"request_id": request_id, "outcome": "success" if correct else "failure"}
                for attempt in itertools.count():
                    response = await api.post("/api/v1/outcomes", json=body)
                    delay = run.retry_delay(
                        response.status_code, response.headers.get("retry-after"), attempt
                    )
                    if delay is None:
                        break
                    await asyncio.sleep(delay)
                if response.status_code not in (200, 201):
                    status = response.status_code
                    raise ReplayFailed(f"outcome {request_id}: {status} {response.text[:500]}")
                # Calls routed after this one without its outcome.
                run.lag_calls.append(dispatched - step - 1)
                done += 1
                if progress is not None:
                    progress(done, total)

        async def calls() -> None:
            async with asyncio.TaskGroup() as callers:
                for _ in range(concurrency):
                    callers.create_task(call())
            for _ in range(outcome_concurrency):
                await outcomes.put(None)

        started = time.perf_counter()
        try:
            # One failure cancels every caller and reporter (no one waits on a dead queue).
            async with asyncio.TaskGroup() as group:
                group.create_task(calls())
                for _ in range(outcome_concurrency):
                    group.create_task(report())
        except BaseExceptionGroup as failures:
            first: BaseException = failures
            while isinstance(first, BaseExceptionGroup):  # callers form a nested group
                first = first.exceptions[0]
            raise first from None
        run.wall_seconds = time.perf_counter() - started
    return run


def figures(
    rows: RouteBenchRows,
    order: np.ndarray,
    run: HttpRun,
    settings: Settings,
    pricing: Pricing,
) -> dict[str, Any]:
    """The engine replay's JSON figures for the HTTP decisions, the transport figures, and the
    engine replay on the same rows and seed for comparison."""
    options = settings.replay_options(pricing)
    result = ReplayResult(
        order=order,
        to_strong=run.to_strong,
        controller=ControllerState(),
        reasons=run.reasons,
        shadowed=np.zeros_like(run.to_strong),
    )
    summary = summarise(rows, result, options)
    summary["final_tolerance"] = None
    summary["reference_total"] = None
    lag = np.asarray(run.lag_calls or [0])
    summary["http"] = {
        "prior_strength": settings.prior_strength,
        "wall_seconds": round(run.wall_seconds, 1),
        "calls_per_second": round(len(order) / run.wall_seconds, 1) if run.wall_seconds else None,
        "feedback_lag_calls": {
            "mean": round(float(lag.mean()), 1),
            "p95": int(np.percentile(lag, 95)),
            "max": int(lag.max()),
        },
        "recorded_cost": float(run.recorded_cost),
        "answer_mismatches": run.answer_mismatches,
        "server_errors_retried": run.server_errors,
        "rate_limited_waits": run.rate_limited,
    }
    engine_only = summarise(rows, replay(rows, options), options)
    summary["engine_only"] = engine_only
    summary["difference_points"] = {
        name: round(100 * (summary[name] - engine_only[name]), 2)
        for name in ("accuracy", "strong_share", "savings")
    }
    return summary


# --------------------------------------------------------------------------- the local stack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ReplayFailed(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ReplayFailed(f"{url} did not come up in {timeout:.0f} s")


@contextmanager
def processes(*commands: tuple[list[str], dict[str, str], str]) -> Iterator[None]:
    """Start (command, environment, health URL) servers; stop them, in reverse, on exit."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command, env, health in commands:
            process = subprocess.Popen(command, env=env, cwd=ROOT)
            started.append(process)
            wait_until_up(health, process)
        yield
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def simulator_command(data: Path, port: int) -> tuple[list[str], dict[str, str], str]:
    env = {**os.environ, "ROUTERAPP_SIM_REPLAY": str(data.resolve())}
    env.setdefault("ROUTERAPP_SIM_LATENCY_SCALE", "0")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "routerapp.providers.simulator:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return command, env, f"http://127.0.0.1:{port}/healthz"


def server_environment(database_url: str) -> dict[str, str]:
    from routerapp.devstack import base_environment

    os.environ["DATABASE_URL"] = database_url  # base_environment creates it if missing
    env = base_environment(prefer_local=True)
    env.update(
        SECRET_KEY=secrets.token_urlsafe(32),
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.check_call([*manage, "migrate", "-v0"], env=env, cwd=ROOT)
    return env


def api_key_new(env: dict[str, str]) -> str:
    output = subprocess.check_output(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "create_api_key",
            "--name",
            f"replay-http-{secrets.token_hex(3)}",
            "--scopes",
            "completions,outcomes,read,admin",
            # The bench measures routing, not the key's rate limit (10k calls/s).
            "--rate-limit",
            "600000",
        ],
        env=env,
        cwd=ROOT,
    )
    return output.decode().strip()


def server_command(
    env: dict[str, str], port: int, workers: int
) -> tuple[list[str], dict[str, str], str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "routerapp.asgi:application",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    return command, env, f"http://127.0.0.1:{port}/healthz"


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/replay_http.py",
        description="Replay a RouteBench CSV through routerapp's HTTP API with real outcomes.",
    )
    parser.add_argument("data", type=Path, help="RouteBench-shaped CSV")
    parser.add_argument(
        "--objective", default="cost_at_quality", choices=["success", "cost_at_quality", "utility"]
    )
    parser.add_argument("--quality-target", type=float, default=0.95)
    parser.add_argument("--context", default="subject", choices=sorted(CONTEXT_BUCKETS))
    parser.add_argument("--seed", type=int, default=0, help="request order, as the replay's")
    parser.add_argument("--limit", type=int, default=None, help="replay K rows (quick run)")
    parser.add_argument("--exploration-floor", type=float, default=EngineConfig.exploration_floor)
    parser.add_argument("--prior-strength", type=float, default=EngineConfig.prior_strength)
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight")
    parser.add_argument("--outcome-concurrency", type=int, default=4, help="outcome reporters")
    parser.add_argument("--base-url", help="a running routerapp (default: start one here)")
    parser.add_argument("--key", help="its API key (completions, outcomes, admin scopes)")
    parser.add_argument("--simulator-url", help="a replay simulator the server can reach")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (own stack)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.base_url and not args.key:
        parser.error("--base-url needs --key")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if min(args.concurrency, args.outcome_concurrency) < 1:
        parser.error("concurrencies must be at least 1")
    settings = Settings(
        objective=args.objective,
        quality_target=args.quality_target,
        context=args.context,
        exploration_floor=args.exploration_floor,
        prior_strength=args.prior_strength,
        seed=args.seed,
    )
    pricing = Pricing()
    rows, order = rows_and_order(load_routebench(args.data), seed=args.seed, limit=args.limit)
    servers = []
    simulator_url = args.simulator_url
    if not simulator_url:
        port = free_port()
        servers.append(simulator_command(args.data, port))
        simulator_url = f"http://127.0.0.1:{port}/v1"
    base_url, key = args.base_url, args.key
    if not base_url:
        env = server_environment(args.database_url)
        key = api_key_new(env)
        port = free_port()
        servers.append(server_command(env, port, args.workers))
        base_url = f"http://127.0.0.1:{port}"
    try:
        with processes(*servers):
            run = asyncio.run(
                replay_http(
                    base_url=base_url,
                    key=key,
                    rows=rows,
                    order=order,
                    settings=settings,
                    simulator_url=simulator_url,
                    pricing=pricing,
                    concurrency=args.concurrency,
                    outcome_concurrency=args.outcome_concurrency,
                    progress=None if args.no_progress else progress_bar(),
                )
            )
    except (ReplayFailed, APIError) as error:
        print(f"replay_http: {error}", file=sys.stderr)
        return 1
    summary = figures(rows, order, run, settings, pricing)
    summary["http"].update(
        concurrency=args.concurrency,
        outcome_concurrency=args.outcome_concurrency,
        server=args.base_url or f"own stack: gunicorn, {args.workers} uvicorn workers",
    )
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
