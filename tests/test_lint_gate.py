"""`make test` (CI's command) runs the linter, the format check and the type checker first."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_test_runs_ruff_the_format_check_and_mypy_before_the_suite() -> None:
    # -n prints the recipe lines in the order make would run them, without running them.
    result = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        "DEBUG=true .venv/bin/mypy",
    ]
    positions = [lines.index(step) for step in steps]
    suite = next(i for i, line in enumerate(lines) if "-m routerapp.devstack test" in line)
    assert positions == sorted(positions)
    assert positions[-1] < suite
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_mypy_checks_the_application_strictly() -> None:
    """The settings the checked code is held to (pyproject.toml), so they are not loosened
    by accident."""
    import tomllib

    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert set(mypy["files"]) >= {"routerapp", "dashboard"}
    assert "mypy_django_plugin.main" in mypy["plugins"]
    for option in ("disallow_untyped_defs", "check_untyped_defs", "warn_unused_ignores"):
        assert mypy[option] is True, option
    assert "ignore-without-code" in mypy["enable_error_code"]
