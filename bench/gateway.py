"""Side-by-side gateway benchmark: routerapp against the LiteLLM proxy, same machine, same upstream.

    make bench-gateway                                  # or:
    .venv/bin/python bench/gateway.py [--quick] [--workers 2] [--rounds 2] [--duration 10]
        [--scenarios c1,c16,c64,c256,slow500,stream16] [--profile] [--out var/bench/gateway.json]

Everything listens on 127.0.0.1 and stops when the script ends (also on Ctrl-C):

- two fake OpenAI-compatible upstreams (`bench/fake_upstream.py`): one instant (its streams send
  8 chunks 10 ms apart), one answering after 200 ms;
- routerapp the production way (the Dockerfile's gunicorn command with uvicorn workers, DEBUG off,
  `--workers` processes), on a fresh database `rt_bench_gateway`: goals `bench` and `bench-slow`
  with two paths each (gpt-4o-mini, gpt-4o) on a provider pointing at the fake upstream, list
  prices, a `success_when`, so every call writes its decision, outcome and posterior update to
  PostgreSQL (the script checks the row counts);
- the LiteLLM proxy (`litellm[proxy]` pinned below, installed once into var/bench/litellm-venv)
  with the same worker count, offline, no database, one model group per upstream holding the
  same two models;
- a closed-loop aiohttp load generator in this process (one session, `limit=concurrency`,
  connections opened ~20 ms apart so the workers' shared socket spreads them), run straight
  against the fake upstream in every round as well: that is both its own ceiling and the
  baseline for "added" latency (gateway minus direct, same concurrency, same round).

Scenarios alternate routerapp and LiteLLM (A B A B) for `--rounds` rounds. For every run: req/s,
latency percentiles, errors and timeouts, CPU ms per call of the gateway's processes, the fake
upstream, this load generator and PostgreSQL (the benchmark database's backends, and the whole
server), peak RSS per process. Prints one table of ratios (routerapp / LiteLLM, median and range
over rounds) and writes everything to a JSON file. `--profile` then samples one routerapp worker
under load with py-spy and prints where a call's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "var" / "bench"
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = OUT_DIR / "litellm-venv"
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

MESSAGES = [{"role": "user", "content": "Classify: 'Win a free cruise now!!!' spam or not_spam?"}]
MODELS = {"gpt-4o-mini": ("0.15", "0.60", 0.7), "gpt-4o": ("2.50", "10.00", 0.3)}
SLOW_DELAY_MS = 200.0
STREAM_CHUNKS, STREAM_CHUNK_INTERVAL_MS = 8, 10.0
GATEWAYS = ("routerapp", "litellm")


@dataclass(frozen=True)
class Scenario:
    name: str
    concurrency: int
    upstream: str  # "instant" or "slow"
    stream: bool = False


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("c1", 1, "instant"),
        Scenario("c16", 16, "instant"),
        Scenario("c64", 64, "instant"),
        Scenario("c256", 256, "instant"),
        Scenario("slow500", 500, "slow"),
        Scenario("stream16", 16, "instant", stream=True),
    )
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """Children started in their own process groups, so a stop ends their workers too."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "wb") as out:
            child = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children[name] = child
        return child

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise SystemExit(f"{name} exited ({child.returncode}):\n{self.tail(name)}")

    def stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=5)
        self.children.clear()


def wait_http(url: str, processes: Processes, *, timeout: float = 120.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status < 500:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


# --- /proc accounting -----------------------------------------------------------------------


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user+system CPU seconds) for every visible process."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return table


def descendants(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return round(int(statm.read().split()[1]) * PAGE_KB / 1024, 1)
    except OSError:
        return None


class Postgres:
    """The benchmark database's backends and the whole PostgreSQL server, seen from /proc."""

    def __init__(self, url: str, db_name: str) -> None:
        import psycopg

        parts = urlsplit(url)
        self.admin = psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or None,
            dbname="postgres",
            autocommit=True,
        )
        self.db_name = db_name
        # Kept open: a busy server may refuse new connections (max_connections) mid-run.
        self.bench = psycopg.connect(self.admin.info.dsn, dbname=db_name, autocommit=True)
        self.bench_pid = int(self.bench.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        self.postmaster = self._postmaster()
        self.version = str(self.admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def _postmaster(self) -> int | None:
        backend = int(self.admin.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        table = proc_table()
        return table[backend][0] if backend in table else None  # None: not in our pid namespace

    def backends(self) -> list[int]:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            [self.db_name, self.bench_pid],
        ).fetchall()
        return [int(row[0]) for row in rows]

    def activity(self) -> tuple[int, int, int]:
        """(active, waiting on a lock, connected) backends of the benchmark database."""
        row = self.admin.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'),"
            " count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*)"
            " FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            [self.db_name, self.bench_pid],
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def count(self, table: str) -> int:
        return int(self.bench.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # type: ignore[index]

    def close(self) -> None:
        self.bench.close()
        self.admin.close()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / CLK_TCK, sum(ticks) / CLK_TCK


@dataclass
class CpuSnapshot:
    at: float
    table: dict[int, tuple[int, float]]
    backends: list[int]
    loadgen: float
    machine: tuple[float, float]


def cpu_snapshot(postgres: Postgres | None) -> CpuSnapshot:
    times = os.times()
    return CpuSnapshot(
        at=time.perf_counter(),
        table=proc_table(),
        backends=postgres.backends() if postgres else [],
        loadgen=times.user + times.system,
        machine=machine_cpu(),
    )


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot, pids: list[int]) -> float:
    """CPU seconds the given processes used between the snapshots (new processes count fully)."""
    total = 0.0
    for pid in pids:
        if pid in after.table:
            start = before.table[pid][1] if pid in before.table else 0.0
            total += max(0.0, after.table[pid][1] - start)
    return total


# --- load generator -------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    model: str
    root_pid: int | None = None  # the gateway's process tree, for CPU and RSS


@dataclass
class Sample:
    start: float
    end: float
    first_byte: float
    error: str | None


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


@dataclass
class LoadPlan:
    concurrency: int
    duration: float
    warmup: float
    max_requests: int
    timeout: float
    stream: bool
    stagger_total_cap: float = 2.0
    stagger: float = field(init=False)

    def __post_init__(self) -> None:
        # ~20 ms between new connections spreads them over the workers' shared listening socket;
        # capped so that 500 connections still open within a couple of seconds.
        self.stagger = min(0.02, self.stagger_total_cap / self.concurrency)


async def _one_call(
    session: aiohttp.ClientSession, target: Target, body: bytes, stream: bool
) -> Sample:
    start = time.perf_counter()
    first = 0.0
    error: str | None = None
    try:
        async with session.post(target.url, data=body, headers=target.headers) as response:
            if stream:
                seen = b""
                async for piece in response.content.iter_any():
                    if not first:
                        first = time.perf_counter()
                    seen = (seen + piece)[-64:]
                if response.status == 200 and b"[DONE]" not in seen:
                    error = "stream_incomplete"
            else:
                payload = await response.read()
                first = time.perf_counter()
                if response.status == 200 and b'"choices"' not in payload:
                    error = "bad_body"
            if response.status != 200:
                error = f"http_{response.status}"
    except TimeoutError:
        error = "timeout"
    except (aiohttp.ClientError, OSError) as failure:
        error = type(failure).__name__
    end = time.perf_counter()
    return Sample(start, end, first or end, error)


@dataclass
class LoadRun:
    samples: list[Sample]
    t0: float  # the measured window
    t1: float
    before: CpuSnapshot  # at t0
    after: CpuSnapshot  # once the last call is answered
    activity: list[tuple[int, int, int]]  # Postgres.activity() every 0.25 s in the window


async def closed_loop(target: Target, plan: LoadPlan, postgres: Postgres | None) -> LoadRun:
    """`plan.concurrency` clients, each sending its next call when the last one is answered."""
    payload: dict[str, Any] = {"model": target.model, "messages": MESSAGES}
    if plan.stream:
        payload.update(stream=True, stream_options={"include_usage": True})
    body = json.dumps(payload).encode()
    connector = aiohttp.TCPConnector(limit=plan.concurrency, limit_per_host=0, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=plan.timeout)
    samples: list[Sample] = []
    activity: list[tuple[int, int, int]] = []
    started = time.perf_counter()
    t0 = started + plan.stagger * plan.concurrency + plan.warmup
    window_end = [t0 + plan.duration]  # moved earlier when max_requests is reached

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        await asyncio.sleep(index * plan.stagger)
        while time.perf_counter() < window_end[0]:
            samples.append(await _one_call(session, target, body, plan.stream))
            if len(samples) >= plan.max_requests:
                window_end[0] = max(t0 + 0.001, min(window_end[0], time.perf_counter()))

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"Content-Type": "application/json"}
    ) as session:
        clients = [asyncio.create_task(client(i, session)) for i in range(plan.concurrency)]
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        before = await asyncio.to_thread(cpu_snapshot, postgres)
        watcher = asyncio.create_task(watch_postgres(postgres, window_end, activity))
        # Bounded: every call has its own timeout, so this only guards against a stuck client.
        _, stuck = await asyncio.wait(clients, timeout=plan.duration + plan.timeout + 30)
        for task in [*stuck, watcher]:
            task.cancel()
        after = await asyncio.to_thread(cpu_snapshot, postgres)
    return LoadRun(samples, t0, window_end[0], before, after, activity)


async def watch_postgres(
    postgres: Postgres | None, window_end: list[float], found: list[tuple[int, int, int]]
) -> None:
    while postgres and time.perf_counter() < window_end[0]:
        found.append(await asyncio.to_thread(postgres.activity))
        await asyncio.sleep(0.25)


def summarise(
    samples: list[Sample], t0: float, t1: float, plan: LoadPlan
) -> tuple[dict[str, Any], int]:
    # Calls that overlap the window: those begun during the warm-up and answered after t0 count
    # too, or a gateway slower than the window would have no latencies at all.
    window = [s for s in samples if s.end >= t0 and s.start < t1]
    ok = [s for s in window if s.error is None]
    latencies = sorted(s.end - s.start for s in ok)
    firsts = sorted(s.first_byte - s.start for s in ok)
    errors: dict[str, int] = {}
    for sample in window:
        if sample.error:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    # Closed loop in steady state: every call answered inside the window counts, whenever it began.
    completed = sum(1 for s in samples if t0 <= s.end <= t1 and s.error is None)
    result: dict[str, Any] = {
        "concurrency": plan.concurrency,
        "window_s": round(t1 - t0, 3),
        "requests": len(window),
        "ok": len(ok),
        "errors": errors,
        "timeouts": errors.get("timeout", 0),
        "rps": round(completed / (t1 - t0), 1),
        "p50_ms": ms(percentile(latencies, 0.5)),
        "p90_ms": ms(percentile(latencies, 0.9)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "mean_ms": ms(statistics.fmean(latencies) if latencies else None),
    }
    if plan.stream:
        result["ttfb_p50_ms"] = ms(percentile(firsts, 0.5))
        result["ttfb_p99_ms"] = ms(percentile(firsts, 0.99))
    result["warmup_errors"] = sum(1 for s in samples if s.start < t0 and s.error)
    # The CPU snapshots bracket every call answered after t0 (the last one included).
    return result, sum(1 for s in samples if s.end >= t0 and s.error is None)


# --- the stack ------------------------------------------------------------------------------


SETUP_CODE = """
import json, os
from datetime import date
from decimal import Decimal
from routerapp.models import Goal, ModelPrice, Outcome, Path, Provider, RoutingDecision
from routerapp.services.access import api_key_create
spec = json.loads(os.environ["BENCH_SETUP"])
for goal_spec in spec["goals"]:
    provider = Provider.objects.create(
        name=goal_spec["provider"], kind=Provider.Kind.OPENAI_COMPATIBLE,
        base_url=goal_spec["base_url"], timeout_seconds=60.0, max_retries=0,
    )
    goal = Goal.objects.create(
        slug=goal_spec["slug"], description="gateway benchmark",
        success_when=spec["success_when"],
    )
    for model, (price_in, price_out, weight) in spec["models"].items():
        ModelPrice.objects.create(
            provider=provider, model=model, effective_from=date(2024, 1, 1),
            input_per_million=Decimal(price_in), output_per_million=Decimal(price_out),
        )
        Path.objects.create(goal=goal, name=model, provider=provider, model=model, weight=weight)
    goal.baseline_path = goal.paths.get(name="gpt-4o")
    goal.save(update_fields=["baseline_path"])
_, raw = api_key_create(
    name="gateway-bench", scopes=["completions"], rate_limit_per_minute=2_000_000_000
)
print("BENCH_SETUP_RESULT " + json.dumps({
    "key": raw,
    "decisions": RoutingDecision._meta.db_table,
    "outcomes": Outcome._meta.db_table,
}))
"""


def dockerfile_command(port: int, workers: int) -> list[str]:
    """The Dockerfile's CMD (exec form), bound to loopback and with `workers` workers."""
    command = [
        "gunicorn",
        "routerapp.asgi:application",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-b",
        "0.0.0.0:8000",
    ]
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD [") and "gunicorn" in line:
            command = json.loads(line[len("CMD ") :])
    command = list(command)
    for flags, value in ((("-b", "--bind"), f"127.0.0.1:{port}"), (("-w", "--workers"), None)):
        for index, arg in enumerate(command):
            if arg in flags and index + 1 < len(command):
                command[index + 1] = value or str(workers)
            elif any(arg.startswith(f"{flag}=") for flag in flags if flag.startswith("--")):
                command[index] = f"{arg.split('=', 1)[0]}={value or workers}"
    if not any(arg in ("-b", "--bind") or arg.startswith("--bind=") for arg in command):
        command += ["-b", f"127.0.0.1:{port}"]
    command[0] = str(BIN / command[0]) if (BIN / command[0]).exists() else command[0]
    return command


def ensure_litellm() -> Path:
    litellm = LITELLM_VENV / "bin" / "litellm"
    python = LITELLM_VENV / "bin" / "python"
    if litellm.exists() and installed_version(python, "litellm") == LITELLM_VERSION:
        return litellm
    log(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once, ~2 min)")
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(LITELLM_VENV)])
    subprocess.check_call(
        [str(python), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"],
        timeout=1800,
    )
    return litellm


def installed_version(python: Path | str, package: str) -> str | None:
    try:
        return subprocess.check_output(
            [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
            text=True,
            stderr=subprocess.DEVNULL,
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@dataclass
class Stack:
    processes: Processes
    upstream_ports: dict[str, int]
    targets: dict[tuple[str, str], Target]  # (gateway or "direct", upstream kind) -> target
    postgres: Postgres | None
    tables: dict[str, str]
    roots: dict[str, int]  # role -> root pid of its process tree
    commands: dict[str, str]


def setup_database(url: str, env: dict[str, str], upstream_ports: dict[str, int]) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        # A fresh database every run: the same table sizes and no learned state carried over.
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    manage = [sys.executable, str(ROOT / "manage.py")]
    log(f"migrating {name}")
    migrated = subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, cwd=ROOT)
    if migrated.returncode:
        raise SystemExit("manage.py migrate failed (output above)")
    spec = {
        "goals": [
            {
                "slug": "bench",
                "provider": "fake-instant",
                "base_url": f"http://127.0.0.1:{upstream_ports['instant']}/v1",
            },
            {
                "slug": "bench-slow",
                "provider": "fake-slow",
                "base_url": f"http://127.0.0.1:{upstream_ports['slow']}/v1",
            },
        ],
        "models": MODELS,
        "success_when": "response.choices[0].finish_reason == 'stop' and "
        "len(response.choices[0].message.content) > 0",
    }
    done = subprocess.run(
        [*manage, "shell", "-c", SETUP_CODE],
        env={**env, "BENCH_SETUP": json.dumps(spec)},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    found = [line for line in done.stdout.splitlines() if line.startswith("BENCH_SETUP_RESULT ")]
    if done.returncode or not found:
        raise SystemExit(f"setting up the benchmark goals failed:\n{done.stderr[-3000:]}")
    line = found[0]
    return json.loads(line.split(" ", 1)[1])


def litellm_config(path: Path, upstream_ports: dict[str, int], master_key: str) -> None:
    entries = []
    for group, kind in (("bench", "instant"), ("bench-slow", "slow")):
        for model in MODELS:
            entries.append(
                {
                    "model_name": group,
                    "litellm_params": {
                        "model": f"openai/{model}",
                        "api_base": f"http://127.0.0.1:{upstream_ports[kind]}/v1",
                        "api_key": "dummy",
                    },
                }
            )
    config = {
        "model_list": entries,
        "litellm_settings": {"callbacks": [], "success_callback": [], "failure_callback": []},
        "general_settings": {"master_key": master_key},
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML


def start_stack(args: argparse.Namespace, processes: Processes) -> Stack:
    upstream_ports = {"instant": free_port(), "slow": free_port()}
    upstream = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--host", "127.0.0.1"]
    roots: dict[str, int] = {}
    for kind, extra in (
        (
            "instant",
            ["--chunks", str(STREAM_CHUNKS), "--chunk-interval-ms", str(STREAM_CHUNK_INTERVAL_MS)],
        ),
        ("slow", ["--delay-ms", str(SLOW_DELAY_MS)]),
    ):
        child = processes.start(
            f"upstream-{kind}",
            [*upstream, "--port", str(upstream_ports[kind]), *extra],
            dict(os.environ),
        )
        roots[f"upstream-{kind}"] = child.pid
    for port in upstream_ports.values():
        wait_http(f"http://127.0.0.1:{port}/healthz", processes, timeout=30)
    targets: dict[tuple[str, str], Target] = {}
    for kind, port in upstream_ports.items():
        targets[("direct", kind)] = Target(
            "direct", f"http://127.0.0.1:{port}/v1/chat/completions", {}, "gpt-4o-mini"
        )

    postgres: Postgres | None = None
    tables: dict[str, str] = {}
    if "routerapp" in args.gateways:
        db_name = urlsplit(args.database_url).path.lstrip("/")
        env = dict(os.environ)
        env.update(
            DATABASE_URL=args.database_url,
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(32),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            WEB_CONCURRENCY=str(args.workers),
            DJANGO_SETTINGS_MODULE="routerapp.settings",
        )
        # Production-like defaults (.env.example); an exported value wins, to compare settings.
        env.setdefault("CACHE_URL", "redis://127.0.0.1:6379/6")
        env.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/6")
        env.setdefault("LOG_LEVEL", "WARNING")
        setup = setup_database(args.database_url, env, upstream_ports)
        tables = {"decisions": setup["decisions"], "outcomes": setup["outcomes"]}
        postgres = Postgres(args.database_url, db_name)
        port = free_port()
        command = dockerfile_command(port, args.workers)
        log(f"routerapp: {' '.join(command)}")
        roots["routerapp"] = processes.start("routerapp", command, env).pid
        wait_http(f"http://127.0.0.1:{port}/healthz", processes, timeout=300)
        headers = {"Authorization": f"Bearer {setup['key']}"}
        for kind, slug in (("instant", "bench"), ("slow", "bench-slow")):
            targets[("routerapp", kind)] = Target(
                "routerapp",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers,
                f"goal/{slug}",
                roots["routerapp"],
            )

    if "litellm" in args.gateways:
        litellm = ensure_litellm()
        master_key = f"sk-bench-{secrets.token_urlsafe(24)}"
        config = OUT_DIR / "litellm-config.yaml"
        litellm_config(config, upstream_ports, master_key)
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        # Offline: local price map and presets; no database (it looks for prisma when
        # DATABASE_URL is set); per-request logs off.
        env.update(
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS="True",
            LITELLM_LOCAL_BLOG_POSTS="True",
            LITELLM_LOCAL_AUTOROUTER_PRESETS="True",
            LITELLM_LOCAL_POLICY_TEMPLATES="True",
            LITELLM_LOG="ERROR",
            PYTHONUNBUFFERED="1",
        )
        port = free_port()
        command = [str(litellm), "--config", str(config), "--host", "127.0.0.1"]
        command += ["--port", str(port), "--num_workers", str(args.workers)]
        # uvicorn kills a worker that does not answer its supervisor within 5 s, which a
        # worker still importing LiteLLM on a loaded machine cannot: it would restart forever.
        command += ["--timeout_worker_healthcheck", "180"]
        log(f"litellm: {' '.join(command)}")
        roots["litellm"] = processes.start("litellm", command, env).pid
        # Its start-up imports take ~20 s of CPU per process: minutes on a loaded machine.
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", processes, timeout=600)
        headers = {"Authorization": f"Bearer {master_key}"}
        for kind, group in (("instant", "bench"), ("slow", "bench-slow")):
            targets[("litellm", kind)] = Target(
                "litellm",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers,
                group,
                roots["litellm"],
            )
    commands = {
        name: " ".join(str(a) for a in child.args)  # type: ignore[union-attr]
        for name, child in processes.children.items()
    }
    return Stack(processes, upstream_ports, targets, postgres, tables, roots, commands)


# --- one run --------------------------------------------------------------------------------


def run_once(
    stack: Stack, target: Target, scenario: Scenario, args: argparse.Namespace
) -> dict[str, Any]:
    plan = LoadPlan(
        concurrency=scenario.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        max_requests=args.max_requests,
        timeout=args.timeout,
        stream=scenario.stream,
    )
    postgres = stack.postgres if target.name == "routerapp" else None
    counts_before = (
        {name: postgres.count(table) for name, table in stack.tables.items()} if postgres else {}
    )
    run: LoadRun = run_async(closed_loop(target, plan, postgres))
    samples, before, after = run.samples, run.before, run.after
    result, calls = summarise(samples, run.t0, run.t1, plan)
    # CPU per call: all calls answered after the window opened (the tail after t1 included,
    # since the snapshot is taken once the last call is answered).
    table = after.table
    per_call = 1000 / calls if calls else 0.0
    cpu: dict[str, Any] = {
        "loadgen_ms_per_call": round((after.loadgen - before.loadgen) * per_call, 3)
    }
    upstream_pids = [
        pid
        for role, root in stack.roots.items()
        if role.startswith("upstream")
        for pid in descendants(table, root)
    ]
    cpu["upstream_ms_per_call"] = round(cpu_delta(before, after, upstream_pids) * per_call, 3)
    for role in GATEWAYS:
        if role not in stack.roots:
            continue
        pids = descendants(table, stack.roots[role])
        used = cpu_delta(before, after, pids)
        if role == target.name:
            cpu["gateway_ms_per_call"] = round(used * per_call, 3)
            cpu["gateway_cores"] = round(used / (after.at - before.at), 2)
            cpu["per_process_s"] = {
                str(pid): round(cpu_delta(before, after, [pid]), 3) for pid in pids
            }
        else:
            cpu[f"idle_{role}_cores"] = round(used / (after.at - before.at), 3)
    if postgres:
        backends = sorted(set(before.backends) | set(after.backends))
        cpu["postgres_ms_per_call"] = round(cpu_delta(before, after, backends) * per_call, 3)
        if postgres.postmaster:
            server = descendants(table, postgres.postmaster)
            cpu["postgres_server_ms_per_call"] = round(
                cpu_delta(before, after, server) * per_call, 3
            )
        result["postgres_backends"] = len(after.backends)
        if run.activity:
            result["postgres_activity"] = {
                "active_mean": round(statistics.fmean(a for a, _, _ in run.activity), 1),
                "lock_waiting_mean": round(statistics.fmean(w for _, w, _ in run.activity), 1),
                "lock_waiting_max": max(w for _, w, _ in run.activity),
                "connections_max": max(c for _, _, c in run.activity),
            }
    result["cpu"] = cpu
    busy = after.machine[0] - before.machine[0]
    result["machine_busy_percent"] = round(100 * busy / (after.machine[1] - before.machine[1]), 1)
    if target.root_pid:
        result["rss_mb"] = {
            str(pid): rss_mb(pid) for pid in descendants(proc_table(), target.root_pid)
        }
    if postgres:
        # Every answered call must have written its decision and its outcome (allowing a
        # moment for writes that finish after the response).
        answered = sum(1 for s in samples if s.error is None)
        for _ in range(10):
            written = {
                name: postgres.count(table) - counts_before[name]
                for name, table in stack.tables.items()
            }
            if min(written.values()) >= answered:
                break
            time.sleep(0.3)
        result["written"] = {"answered": answered, **written}
        if min(written.values()) < answered:
            log(f"WARNING: {answered} calls answered but only {written} rows written")
    return result


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def warm_up(stack: Stack, args: argparse.Namespace) -> None:
    """A few calls through every gateway so imports, connections and caches are warm."""
    for (name, kind), target in stack.targets.items():
        if name == "direct":
            continue
        plan = LoadPlan(
            concurrency=2 * args.workers,
            duration=1.0 if kind == "instant" else 0.5,
            warmup=0.5,
            max_requests=400,
            timeout=args.timeout,
            stream=False,
        )
        samples = run_async(closed_loop(target, plan, None)).samples
        failed = [s.error for s in samples if s.error]
        if failed or not samples:
            raise SystemExit(
                f"warm-up through {name}/{kind} failed: {failed[:5]}\n{stack.processes.tail(name)}"
            )


# --- profile --------------------------------------------------------------------------------

# Where a call's time goes. A sample (one stack of the thread holding the GIL) belongs to the
# first category any of its frames matches; py-spy names files relative to their package root.
ROUTING = ("routerapp/engine/", "routerapp/features", "routerapp/expressions/", "simpleeval")
UPSTREAM_SDK = (
    "openai/",
    "httpx",
    "httpcore",
    "anyio/",
    "h11/",
    "pydantic",
    "jiter",
    # The SDK's aiohttp transport: its socket callbacks run straight from the event loop.
    "aiohttp/",
    "multidict/",
    "yarl/",
)
DB_FILES = ("django/db/", "psycopg")
HOPS = ("asgiref/", "concurrent/futures/", "routerapp/dbwork.py")
# asyncio's side of a hop to a thread: the future wrapping and its callbacks on the loop.
HOP_FUNCTIONS = ("wrap_future ", "_chain_future", "_copy_future_state ", "_call_set_state ")
# (name, file prefixes, function-name prefixes)
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("routing (engine, features, success_when)", ROUTING, ()),
    ("openai SDK + httpx (upstream call)", UPSTREAM_SDK, ()),
    ("DB", DB_FILES, ()),  # split below by its innermost database frame
    ("cache (rate limit)", ("redis/", "django/core/cache/"), ()),
    ("sync_to_async / thread hops", HOPS, HOP_FUNCTIONS),
    ("JSON", ("json/", "orjson"), ()),
    ("Django request/response", ("django/",), ()),
    ("routerapp other", ("routerapp/",), ()),
    ("server + event loop", ("uvicorn/", "gunicorn/", "asyncio/", "uvloop", "httptools"), ()),
)


def frame_file(frame: str) -> str:
    """`func (path/file.py:123)` -> `path/file.py`."""
    inside = frame[frame.rfind("(") + 1 :]
    return inside.rsplit(":", 1)[0]


# Leaves of threads that wait for work: py-spy's idle detection misses some of them here.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "Condition.wait (threading.py")


def sample_category(frames: list[str]) -> str | None:
    """The category of one stack, or None for a thread that only waits for work."""
    if not frames or frames[-1].startswith(IDLE_LEAVES):
        return None
    files = [frame_file(frame) for frame in frames]
    for name, prefixes, functions in PROFILE_CATEGORIES:
        if not any(file.startswith(prefixes) for file in files) and not any(
            frame.startswith(functions) for frame in frames if functions
        ):
            continue
        if name != "DB":
            return name
        index = max(i for i, file in enumerate(files) if file.startswith(DB_FILES))
        innermost = files[index]
        if innermost.startswith("psycopg") and frames[index].startswith(
            ("Connection.wait ", "wait_", "Cursor._conn.wait")
        ):
            return "DB: waiting for PostgreSQL"
        if innermost.startswith(("psycopg", "django/db/backends/")):
            return "DB: driver (psycopg, cursor, connection)"
        if innermost.startswith("django/db/models/sql/"):
            return "DB: SQL compilation (Django ORM)"
        return "DB: ORM other (models, querysets, transactions)"
    return "other"


def thread_group(thread: str) -> str:
    """`thread (123): routerapp-db_3` -> `routerapp-db`; unnamed threads -> `unnamed`."""
    name = thread.split(":", 1)[1].strip() if ":" in thread else ""
    return re.sub(r"[-_ ]\d+.*$", "", name) or "unnamed"


def categorise_profile(raw: str) -> dict[str, Any]:
    counts: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        count = int(number)
        thread, *frames = stack.split(";")
        category = sample_category(frames)
        if category is None:
            continue
        total += count
        group = thread_group(thread)
        threads[group] = threads.get(group, 0) + count
        counts[category] = counts.get(category, 0) + count

    def percent(table: dict[str, int]) -> dict[str, float]:
        ordered = sorted(table.items(), key=lambda item: -item[1])
        return {name: round(100 * n / max(1, total), 1) for name, n in ordered}

    return {"samples": total, "percent": percent(counts), "threads_percent": percent(threads)}


PROFILE_RATE_HZ = 250


def profile_routerapp(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """py-spy on one routerapp worker under a closed-loop load on the instant upstream.

    `--gil` keeps only the stack of the thread holding the GIL: the shares are of the worker's
    Python CPU time, and samples x period / calls comes out close to the CPU per call measured
    from /proc (without it, py-spy counted threads waiting for work or for PostgreSQL as busy)."""
    target = stack.targets[("routerapp", "instant")]
    root = target.root_pid or 0
    workers = [pid for pid in descendants(proc_table(), root) if pid != root]
    if not workers:
        raise SystemExit("no routerapp worker to profile")
    py_spy = BIN / "py-spy" if (BIN / "py-spy").exists() else shutil.which("py-spy")
    if not py_spy:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy (dev extra)")
    worker = workers[0]
    duration = max(3, int(args.profile_duration))
    plan = LoadPlan(
        concurrency=args.profile_concurrency,
        duration=duration + 2,
        warmup=1.0,
        max_requests=args.max_requests,
        timeout=args.timeout,
        stream=False,
    )
    raw_path = OUT_DIR / "profile-routerapp.txt"
    command = [str(py_spy), "record", "--pid", str(worker), "--duration", str(duration), "--gil"]
    command += ["--rate", str(PROFILE_RATE_HZ), "--format", "raw", "--threads"]
    command += ["-o", str(raw_path)]
    log(f"profiling routerapp worker {worker} for {duration} s at c={plan.concurrency}")

    async def load_and_record() -> tuple[Any, float, float]:
        load = asyncio.create_task(closed_loop(target, plan, None))
        await asyncio.sleep(plan.stagger * plan.concurrency + plan.warmup)
        started = time.perf_counter()
        spy = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await spy.communicate()
        ended = time.perf_counter()
        outcome = await load
        if spy.returncode:
            raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")
        return outcome, started, ended

    run, started, ended = run_async(load_and_record())
    samples, before, after = run.samples, run.before, run.after
    result, answered = summarise(samples, run.t0, run.t1, plan)
    pids = [pid for pid in descendants(after.table, root) if pid != root]
    all_workers = cpu_delta(before, after, pids)
    share = cpu_delta(before, after, [worker]) / all_workers if all_workers else 0.0
    # Calls this worker answered while py-spy watched: the calls answered in that window times
    # the worker's share of the workers' CPU.
    calls = share * sum(1 for s in samples if started <= s.end <= ended and s.error is None)
    found = categorise_profile(raw_path.read_text())
    sampled_ms = 1000 * found["samples"] / PROFILE_RATE_HZ
    found.update(
        worker_pid=worker,
        rate_hz=PROFILE_RATE_HZ,
        seconds=round(ended - started, 1),
        load=result,
        worker_cpu_share=round(share, 3),
        workers_cpu_ms_per_call=round(1000 * all_workers / answered, 2) if answered else None,
        calls=round(calls),
        ms_per_call=round(sampled_ms / calls, 2) if calls else None,
        category_ms_per_call={
            name: round(sampled_ms * pct / 100 / calls, 2) if calls else None
            for name, pct in found["percent"].items()
        },
        raw=str(raw_path.relative_to(ROOT)),
    )
    return found


# --- report ---------------------------------------------------------------------------------


def median_range(values: list[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {
        "median": round(statistics.median(present), 3),
        "min": round(min(present), 3),
        "max": round(max(present), 3),
    }


def added_ms(
    by: dict[tuple[str, int], dict[str, Any]], name: str, round_number: int, metric: str
) -> float | None:
    mine, direct = by.get((name, round_number)), by.get(("direct", round_number))
    if not mine or not direct or mine[metric] is None or direct[metric] is None:
        return None
    return float(mine[metric] - direct[metric])


def compare(runs: list[dict[str, Any]], scenarios: list[Scenario]) -> list[dict[str, Any]]:
    """Per scenario: medians and ranges over rounds, and routerapp / LiteLLM ratios per round."""
    rows = []
    for scenario in scenarios:
        by: dict[tuple[str, int], dict[str, Any]] = {
            (r["target"], r["round"]): r for r in runs if r["scenario"] == scenario.name
        }
        rounds = sorted({r for (_, r) in by})
        # Added latency: the gateway's p50 (TTFB for streams) minus the direct p50, same round.
        metric = "ttfb_p50_ms" if scenario.stream else "p50_ms"

        row: dict[str, Any] = {"scenario": scenario.name, "concurrency": scenario.concurrency}
        for name in ("direct", *GATEWAYS):
            mine = [by[(name, r)] for r in rounds if (name, r) in by]
            if not mine:
                continue
            row[name] = {
                "rps": median_range([m["rps"] for m in mine]),
                "p50_ms": median_range([m["p50_ms"] for m in mine]),
                "p99_ms": median_range([m["p99_ms"] for m in mine]),
                "errors": sum(sum(m["errors"].values()) for m in mine),
                "timeouts": sum(m["timeouts"] for m in mine),
                "cpu_ms_per_call": median_range(
                    [m["cpu"].get("gateway_ms_per_call") for m in mine]
                ),
                "cpu_cores": median_range([m["cpu"].get("gateway_cores") for m in mine]),
                "postgres_ms_per_call": median_range(
                    [m["cpu"].get("postgres_ms_per_call") for m in mine]
                ),
                "postgres_lock_waiting_mean": median_range(
                    [m.get("postgres_activity", {}).get("lock_waiting_mean") for m in mine]
                ),
            }
            if scenario.stream:
                row[name]["ttfb_p50_ms"] = median_range([m["ttfb_p50_ms"] for m in mine])
            if name != "direct":
                row[name]["added_ms"] = median_range(
                    [added_ms(by, name, r, metric) for r in rounds]
                )
        both = [r for r in rounds if ("routerapp", r) in by and ("litellm", r) in by]
        rps_ratios: list[float | None] = []
        added_ratios: list[float | None] = []
        for r in both:
            ours, theirs = by[("routerapp", r)]["rps"], by[("litellm", r)]["rps"]
            if theirs:
                rps_ratios.append(ours / theirs)
            ours_added = added_ms(by, "routerapp", r, metric)
            theirs_added = added_ms(by, "litellm", r, metric)
            if ours_added is not None and theirs_added:
                added_ratios.append(ours_added / theirs_added)
        row["ratio_rps"] = median_range(rps_ratios)
        row["ratio_added"] = median_range(added_ratios)
        rows.append(row)
    return rows


def fmt(value: dict[str, float] | None, digits: int = 0, spread: bool = False) -> str:
    if not value:
        return "-"
    text = f"{value['median']:,.{digits}f}"
    if spread and value["min"] != value["max"]:
        text += f" ({value['min']:,.{digits}f}-{value['max']:,.{digits}f})"
    return text


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        "| scenario | direct req/s | routerapp req/s | LiteLLM req/s | ratio req/s (range) "
        "| routerapp added p50 ms | LiteLLM added p50 ms | ratio added (range) "
        "| routerapp p99 ms | LiteLLM p99 ms | errors r/L | CPU ms/call r/L | PG ms/call r |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        r, lite, direct = row.get("routerapp", {}), row.get("litellm", {}), row.get("direct", {})
        name = f"{row['scenario']} (c={row['concurrency']})"
        if row["scenario"].startswith("stream"):
            name += " TTFB"
        print(
            f"| {name} | {fmt(direct.get('rps'))} | {fmt(r.get('rps'), 1)} | "
            f"{fmt(lite.get('rps'), 1)} | {fmt(row.get('ratio_rps'), 2, True)} | "
            f"{fmt(r.get('added_ms'), 1)} | {fmt(lite.get('added_ms'), 1)} | "
            f"{fmt(row.get('ratio_added'), 2, True)} | {fmt(r.get('p99_ms'))} | "
            f"{fmt(lite.get('p99_ms'))} | {r.get('errors', '-')}/{lite.get('errors', '-')} | "
            f"{fmt(r.get('cpu_ms_per_call'), 1)}/{fmt(lite.get('cpu_ms_per_call'), 1)} | "
            f"{fmt(r.get('postgres_ms_per_call'), 1)} |"
        )


def print_profile(profile: dict[str, Any]) -> None:
    print(
        f"\nprofile of routerapp worker {profile['worker_pid']} at c="
        f"{profile['load']['concurrency']} ({profile['load']['rps']} req/s): "
        f"{profile['samples']} samples holding the GIL, {profile['ms_per_call']} ms per call "
        f"(all workers used {profile['workers_cpu_ms_per_call']} ms CPU per call)"
    )
    for name, pct in profile["percent"].items():
        per_call = profile["category_ms_per_call"][name] or 0.0
        print(f"  {pct:5.1f}%  {per_call:6.2f} ms/call  {name}")
    print(f"  threads: {profile['threads_percent']}")


def environment_facts(postgres: Postgres | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        for line in subprocess.check_output(["lscpu"], text=True).splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    versions = {
        "python": platform.python_version(),
        **{
            name: installed_version(sys.executable, name)
            for name in ("django", "gunicorn", "uvicorn", "openai", "psycopg", "aiohttp")
        },
        "litellm": installed_version(LITELLM_VENV / "bin" / "python", "litellm"),
        "postgresql": postgres.version if postgres else None,
    }
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": commit,
        "git_uncommitted_files": len(dirty.splitlines()),
        "versions": versions,
    }


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the `finally` that stops the children always runs."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/gateway.py", description="routerapp against LiteLLM, side by side."
    )
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
        help="worker processes of each gateway (default $WEB_CONCURRENCY or 2)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per run")
    parser.add_argument("--timeout", type=float, default=60.0, help="per call, seconds")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {','.join(SCENARIOS)}; empty for none",
    )
    parser.add_argument("--gateways", default=",".join(GATEWAYS))
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rt_bench_gateway"
        ),
        help="dropped and recreated on every run",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy one routerapp worker")
    parser.add_argument("--profile-duration", type=float, default=None)
    parser.add_argument("--profile-concurrency", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=40.0, help="stop after this long")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "gateway.json")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    args.profile_duration = args.profile_duration or (4.0 if args.quick else 10.0)
    args.gateways = [g for g in args.gateways.split(",") if g]
    unknown = set(args.gateways) - set(GATEWAYS)
    names = [s for s in args.scenarios.split(",") if s]
    unknown |= set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    if args.profile and "routerapp" not in args.gateways:
        parser.error("--profile needs the routerapp gateway")
    args.scenario_list = [SCENARIOS[n] for n in names]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + 60 * args.max_minutes
    processes = Processes(OUT_DIR / "logs")
    report: dict[str, Any] = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            "workers": args.workers,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "slow_upstream_delay_ms": SLOW_DELAY_MS,
            "stream": {"chunks": STREAM_CHUNKS, "chunk_interval_ms": STREAM_CHUNK_INTERVAL_MS},
            "litellm_database": None,
            "routerapp_database": "PostgreSQL: every decision, outcome and posterior update",
            "routerapp_env": {
                k: os.environ.get(k, default)
                for k, default in (
                    ("DB_POOL_MAX_SIZE", "20 (settings default)"),
                    ("DB_THREADS", "8 (settings default)"),
                    ("CACHE_URL", "redis://127.0.0.1:6379/6"),
                )
            },
        },
    }
    stack: Stack | None = None
    runs: list[dict[str, Any]] = []
    report["runs"] = runs
    report["complete"] = False
    try:
        with stop_on_signals():
            stack = start_stack(args, processes)
            report["environment"] = environment_facts(stack.postgres)
            report["commands"] = stack.commands
            warm_up(stack, args)
            for round_number in range(1, args.rounds + 1):
                for scenario in args.scenario_list:
                    for name in ("direct", *[g for g in GATEWAYS if g in args.gateways]):
                        if time.monotonic() > deadline:
                            raise SystemExit(f"stopped after --max-minutes {args.max_minutes}")
                        processes.check_alive()
                        target = stack.targets[(name, scenario.upstream)]
                        result = run_once(stack, target, scenario, args)
                        result.update(target=name, scenario=scenario.name, round=round_number)
                        runs.append(result)
                        extra = f" ttfb p50 {result['ttfb_p50_ms']} ms" if scenario.stream else ""
                        log(
                            f"round {round_number} {scenario.name:8} {name:9} "
                            f"{result['rps']:8.1f} req/s  p50 {result['p50_ms']} ms  "
                            f"p99 {result['p99_ms']} ms{extra}  errors {result['errors']}  "
                            f"cpu {result['cpu'].get('gateway_ms_per_call', '-')} ms/call"
                        )
            report["comparison"] = compare(runs, args.scenario_list)
            table = proc_table()
            report["peak_rss_mb"] = {
                role: [
                    {"pid": pid, "cmd": command_line(pid)[:100], "peak_rss_mb": peak_rss_mb(pid)}
                    for pid in descendants(table, root)
                ]
                for role, root in stack.roots.items()
            }
            if args.profile:
                report["profile"] = profile_routerapp(stack, args)
            report["complete"] = True
    except KeyboardInterrupt:
        log("interrupted; stopping")
        return 130
    finally:
        processes.stop_all()
        if stack and stack.postgres:
            stack.postgres.close()
        # Written even when a run failed or was interrupted: the runs done so far are kept.
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    print()
    print(
        f"{args.workers} workers each; routerapp writes every decision and outcome to PostgreSQL, "
        "LiteLLM runs without a database. Medians over rounds; ratios are routerapp / LiteLLM."
    )
    print_table(report.get("comparison", []))
    if "profile" in report:
        print_profile(report["profile"])
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
