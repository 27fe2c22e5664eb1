"""Provider-layer fixtures: the simulator over real HTTP and a provider config pointing at it.

These tests need no database and no Django (`pytest -p no:django tests/providers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from routerapp.providers.client import ProviderConfig, aclose_clients
from routerapp.providers.simulator import serve_in_thread

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    """Overrides the project-wide autouse fixture of the same name, which imports the Django
    routing service: the provider layer is tested without Django and owns no shared breaker."""


@pytest.fixture(scope="session")
def simulator_base_url() -> Iterator[str]:
    """The simulator on a free port, zero latency, for the whole session."""
    base_url, stop = serve_in_thread(port=0)
    yield base_url
    stop()


@pytest.fixture
def provider(simulator_base_url: str) -> ProviderConfig:
    return ProviderConfig(
        id="sim", name="simulator", base_url=simulator_base_url, api_key="", timeout_seconds=5.0
    )


def _run(coroutine_function: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        try:
            return await coroutine_function()
        finally:
            await aclose_clients()

    return asyncio.run(main())


@pytest.fixture
def run() -> Callable[[Callable[[], Coroutine[Any, Any, T]]], T]:
    """`run(lambda: chat(...))`: a fresh event loop per call, as sync code (async_to_sync)
    gets, with that loop's cached clients closed at the end."""
    return _run
