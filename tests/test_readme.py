"""The README works as written: its commands, run against a demo started as `make run` starts it.

The demo runs in a subprocess (`python -m routerapp.devstack run`, the Makefile's `run` recipe)
on free ports, with its own fresh database and its state (embedded Redis, `local.env`) in a
temporary ROUTERAPP_VAR_DIR, so a developer's own `make run` is left alone. Every command of
the README's bash blocks and its python example then runs as a user would type it in a second
terminal: from the repository root, with none of the stack's settings in the environment. Only
the placeholders are filled in: the port, the printed keys (`rk_...`, `rk_admin...`) and the
request id (`req_...`). A command the test does not know fails it, so a new README command gets
a check here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from routerapp.devstack import LOCAL_ENV_NAMES
from tests.conftest import free_port
from tests.engine.test_replay import ROUTEBENCH

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_BASE_URL = "http://127.0.0.1:8000"
PYTHON = str(ROOT / ".venv/bin/python")  # the README's interpreter
KEY = re.compile(r"^rk_[0-9a-f]+_[\w-]+$")
# What a second terminal does not have: everything the stack configures itself.
STACK_VARIABLES = (*LOCAL_ENV_NAMES, "DJANGO_SETTINGS_MODULE", "ROUTERAPP_VAR_DIR")


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block, in document order."""
    return re.findall(r"^```(\w+)\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def shell_commands(block: str) -> list[str]:
    """The commands of a bash block: a command goes on over a trailing backslash or an open
    quote; comment lines are not commands."""
    commands: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.rstrip().endswith("\\"):
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote
            continue
        if words:
            commands.append(pending)
        pending = ""
    assert not pending, f"unterminated command in the README: {pending!r}"
    return commands


@contextmanager
def running_demo(var_dir: Path) -> Iterator[Demo]:
    """The whole demo as `make run` starts it (without the traffic generator), on a fresh
    database named after the test session's (`<name>_readme_demo`); stopped with Ctrl-C."""
    recipe = re.search(r"^run:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe is not None
    assert recipe.group(1) == "$(BIN)/python -m routerapp.devstack run"
    session_url = os.environ["DATABASE_URL"]
    server, session_name = session_url.rsplit("/", 1)
    name = f"{session_name}_readme_demo"
    _drop_database(server, name)
    terminal = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
    terminal["ROUTERAPP_VAR_DIR"] = str(var_dir)
    port, sim_port = free_port(), free_port()
    log = var_dir / "demo.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [PYTHON, "-m", "routerapp.devstack", "run", "--no-traffic"]
            + ["--port", str(port), "--simulator-port", str(sim_port)],
            # Only the database is given; the rest is what `make run` finds or starts itself.
            env={**terminal, "DATABASE_URL": f"{server}/{name}"},
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a busy 2-core machine
        while True:
            assert process.poll() is None, f"the demo exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no /healthz:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield Demo(base_url=base_url, terminal=terminal, var_dir=var_dir)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _drop_database(server, name)


def _drop_database(server: str, name: str) -> None:
    # The same server's maintenance database; libpq reads postgres:// URLs, sockets too.
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass
class Demo:
    base_url: str
    terminal: dict[str, str]
    var_dir: Path
    keys: dict[str, str] = field(default_factory=dict)  # placeholder -> printed key
    request_ids: list[str] = field(default_factory=list)
    change_requests: list[int] = field(default_factory=list)

    def fill_in(self, text: str) -> str:
        """The README's text with its placeholders replaced by this demo's values."""
        text = text.replace(README_BASE_URL, self.base_url)
        # The README names the data where it sits beside a checkout; a clone elsewhere (or
        # ROUTEBENCH_DIR) reads it where the replay tests found it.
        text = text.replace("../shared/data/routebench/", f"{ROUTEBENCH}/")
        if "/change-requests/ID/" in text:
            assert self.change_requests, "change-requests/ID is used before one was proposed"
            text = text.replace(
                "/change-requests/ID/", f"/change-requests/{self.change_requests[-1]}/"
            )
        # Keys for a user are `rk_<user>...`; the longer placeholders first.
        # (a key used before its create_api_key line stays a placeholder and the call fails)
        for placeholder in sorted(self.keys, key=len, reverse=True):
            text = text.replace(placeholder, self.keys[placeholder])
        if "req_..." in text:
            assert self.request_ids, "req_... is used before any completion"
            text = text.replace("req_...", self.request_ids[-1])
        return text

    def run(self, argv: list[str], what: str) -> str:
        """Run from the repository root in a second terminal; returns stdout."""
        result = subprocess.run(
            argv, cwd=ROOT, env=self.terminal, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{what}\nexited {result.returncode}:\n{result.stderr}"
        return result.stdout


def _json(stdout: str, command: str) -> Any:
    try:
        return json.loads(stdout)
    except ValueError:
        pytest.fail(f"{command}\ndid not answer JSON: {stdout[:500]!r}")


def _check_curl(demo: Demo, command: str, body: Any) -> None:
    """What the README says each call returns."""
    assert isinstance(body, dict), body
    assert "error" not in body, f"{command}\n{body}"
    url = next(word for word in shlex.split(command) if word.startswith("http"))
    path = urlsplit(url).path
    if path == "/v1/chat/completions":
        assert body["choices"][0]["message"]["content"]
        assert body["router"]["request_id"].startswith("req_")
        assert body["router"]["goal"] == json.loads(_data(command))["model"].removeprefix("goal/")
        demo.request_ids.append(body["router"]["request_id"])
    elif path == "/api/v1/outcomes":
        sent = json.loads(_data(command))
        assert body["request_id"] == sent["request_id"] == demo.request_ids[-1]
        assert body["value"] == (1.0 if sent.get("outcome") == "success" else sent.get("score"))
    elif path in ("/api/v1/providers", "/api/v1/prices"):
        # Created as sent (prices come back with more decimals); a provider key is never shown.
        assert isinstance(body["id"], int)
        for name, value in json.loads(_data(command)).items():
            if name.endswith("_per_million"):
                assert Decimal(body[name]) == Decimal(value)
            else:
                assert body[name] == value
        assert "api_key" not in body
    elif path == "/api/v1/change-requests":
        sent = json.loads(_data(command))
        assert body["status"] == "pending"
        assert {change["field"] for change in body["diff"]} == {
            f"goal.{name}" for name in sent["changes"]
        }
        assert "decisions" in body["projection"], body["projection"]
        demo.change_requests.append(body["id"])
    elif path.endswith("/approve"):
        assert body["status"] == "applied"
        assert body["applied_version"] == body["base_version"] + 1
    elif path == "/api/v1/reports/regret":
        assert body["goal"] == "email_classification"
        assert body["sampled"] == sum(body["funnel"].values())
    else:
        pytest.fail(f"the test does not know what {path} should return; add it here")


def _data(command: str) -> str:
    words = shlex.split(command)
    return words[words.index("-d") + 1]


def test_every_readme_command_works_as_written_on_a_running_demo(tmp_path: Path) -> None:
    local_env = tmp_path / "local.env"
    with running_demo(tmp_path) as demo:
        assert local_env.exists(), "make run leaves its settings for manage.py in var/local.env"
        run_the_readme(demo)
    assert not local_env.exists(), "the settings name sockets that stop with the demo"


def run_the_readme(demo: Demo) -> None:
    blocks = readme_blocks()
    assert any(language == "python" for language, _ in blocks)
    for language, block in blocks:
        if language == "python":
            script = demo.var_dir / "readme_example.py"
            script.write_text(demo.fill_in(block))
            lines = demo.run([PYTHON, str(script)], f"the README's python example:\n{block}")
            *answer, headers = lines.strip().splitlines()
            request_id, path_name, cost = headers.split()
            assert answer, "the example prints the answer"
            assert request_id.startswith("req_")
            assert path_name
            assert float(cost) >= 0
            demo.request_ids.append(request_id)
            continue
        if language != "bash":
            continue
        for command in shell_commands(block):
            words = shlex.split(command, comments=True)
            if words[0] == "make":
                # `make run` is the demo this test started; `make test` is what runs this test.
                assert words[1:] in (["run"], ["test"]), command
                continue
            filled = demo.fill_in(command)
            stdout = demo.run(["bash", "-c", filled], command)
            if words[:3] == [".venv/bin/python", "manage.py", "create_api_key"]:
                key = stdout.strip().splitlines()[-1]
                assert KEY.match(key), stdout
                scopes = words[words.index("--scopes") + 1].split(",")
                if "--user" in words:
                    demo.keys[f"rk_{words[words.index('--user') + 1]}..."] = key
                else:
                    demo.keys["rk_admin..." if "admin" in scopes else "rk_..."] = key
            elif words[0] == "curl":
                _check_curl(demo, filled, _json(stdout, command))
            elif words[:3] == [".venv/bin/python", "-m", "routerapp.replay"]:
                summary = _json(stdout.strip().splitlines()[-1], command)
                assert 0.5 < summary["accuracy"] <= 1.0
            elif words[:2] == [".venv/bin/python", "bench/engine.py"]:
                summary = _json(stdout.strip().splitlines()[-1], command)
                assert set(summary["median_us"]) == {"2", "5", "20"}
            else:
                pytest.fail(f"the test does not know this README command; add it:\n{command}")
    assert set(demo.keys) == {"rk_...", "rk_admin...", "rk_operator...", "rk_approver..."}
    assert len(demo.change_requests) == 1
    assert len(demo.request_ids) >= 2  # the python example and the curl call
