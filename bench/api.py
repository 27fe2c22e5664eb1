"""Benchmark: many in-flight completions through one routerapp process (ASGI, async view).

    .venv/bin/python bench/api.py [--concurrency 300] [--requests 600] [--latency-scale 1.0]

Starts, on loopback only: the simulator (upstream latency ~0.35-0.7 s at scale 1), one uvicorn
process serving routerapp against a fresh `routerapp_bench_api` database, then sends the
requests with at most `--concurrency` in flight through httpx. If one process held one call
per thread, 300 in-flight calls of ~0.5 s would take minutes; with the async view they overlap.
Also runs the same load straight against the simulator to show the generator's own ceiling.
Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from routerapp.devstack import base_environment  # noqa: E402

MESSAGES = [{"role": "user", "content": "Classify: 'Win a free cruise now!!!' spam or not_spam?"}]


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


async def fire(url: str, headers: dict[str, str], body: dict, total: int, concurrency: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.post(url, headers=headers, json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "throughput_rps": round(total / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--latency-scale", type=float, default=1.0)
    args = parser.parse_args()

    os.environ.setdefault(
        "DATABASE_URL",
        os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/routerapp_bench_api"
        ),
    )
    env = base_environment(prefer_local=True)
    env.update(
        SIMULATOR_URL="http://127.0.0.1:18101/v1",
        SECRET_KEY="bench",
        DEBUG="false",
        ROUTERAPP_SIM_LATENCY_SCALE=str(args.latency_scale),
        LOG_LEVEL="WARNING",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.check_call([*manage, "migrate", "-v0"], env=env, cwd=ROOT)
    subprocess.check_call([*manage, "seed_demo"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    key = (
        subprocess.check_output(
            [*manage, "create_api_key", "--name", "bench", "--scopes", "completions"],
            env=env,
            cwd=ROOT,
        )
        .decode()
        .strip()
    )
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "routerapp.providers.simulator:app",
                "--port",
                "18101",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "routerapp.asgi:application",
                "--port",
                "18100",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
        ),
    ]
    try:
        wait_until_up("http://127.0.0.1:18101/healthz")
        wait_until_up("http://127.0.0.1:18100/healthz")
        headers = {"Authorization": f"Bearer {key}"}
        body = {"model": "goal/email_classification", "messages": MESSAGES}
        asyncio.run(fire("http://127.0.0.1:18100/v1/chat/completions", headers, body, 20, 10))
        routed = asyncio.run(
            fire(
                "http://127.0.0.1:18100/v1/chat/completions",
                headers,
                body,
                args.requests,
                args.concurrency,
            )
        )
        direct = asyncio.run(
            fire(
                "http://127.0.0.1:18101/v1/chat/completions",
                {},
                {"model": "gpt-4o-mini", "messages": MESSAGES},
                args.requests,
                args.concurrency,
            )
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    print(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
                "latency_scale": args.latency_scale,
                "through_routerapp": routed,
                "straight_to_simulator": direct,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
