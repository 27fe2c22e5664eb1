"""The pure packages import neither Django, DRF nor Celery (STYLE.md 2.2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "modules",
    [
        "routerapp.engine, routerapp.replay",
        "routerapp.expressions, routerapp.features",
        "routerapp.providers.client, routerapp.providers.simulator, routerapp.demo_data",
        "routerapp.providers.redaction, routerapp.providers.addresses",
        "routerapp.api.completion_request, routerapp.errors",
    ],
)
def test_pure_modules_import_without_django_drf_or_celery(modules: str) -> None:
    code = (
        f"import {modules}, sys; "
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('django', 'rest_framework', 'celery')); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.stdout.strip() == ""
