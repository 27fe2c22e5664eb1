"""Deployment files say what the code reads: every setting documented, compose complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_every_environment_variable_read_by_settings_is_documented() -> None:
    settings = (ROOT / "routerapp" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings))
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern must find the settings"
    assert read - documented == set()


def test_the_image_runs_gunicorn_with_uvicorn_workers_counted_by_web_concurrency() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    command = json.loads(cmd[len("CMD ") :])

    assert command[:2] == ["gunicorn", "routerapp.asgi:application"]
    assert command[command.index("-k") + 1] == "uvicorn.workers.UvicornWorker"
    # No worker count on the command line: gunicorn reads WEB_CONCURRENCY.
    assert not any(arg in ("-w", "--workers") or arg.startswith("--workers=") for arg in command)
    assert re.search(r"^ENV WEB_CONCURRENCY=\d+$", dockerfile, re.M)


def test_compose_runs_postgres_with_pgvector_redis_web_worker_and_beat() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector")
    assert "celery" in services["worker"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    assert "uvicorn.workers.UvicornWorker" in (ROOT / "Dockerfile").read_text()
    # Configuration by environment only: every app service reads the same env file.
    for name in ("web", "worker", "beat"):
        assert services[name]["env_file"] == ".env"
