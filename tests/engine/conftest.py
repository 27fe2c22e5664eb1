"""Engine tests run without Django: shadow the project-wide autouse fixtures that touch it."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    # The root conftest resets the provider circuit breaker (a Django-side service) before
    # every test; the engine never calls providers, and must stay importable without Django.
    return None
