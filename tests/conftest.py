"""Shared fixtures: the simulator and the ASGI app served over real HTTP, personas, keys."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_asgi(app: Any, *, port: int) -> Callable[[], None]:
    """Run an ASGI app with uvicorn in a daemon thread; returns a stop function."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    """The built-in simulator, over real HTTP, for the whole session."""
    from django.conf import settings

    from routerapp.providers.simulator import app

    port = free_port()
    stop = serve_asgi(app, port=port)
    url = f"http://127.0.0.1:{port}/v1"
    settings.SIMULATOR_URL = url
    yield url
    stop()


@pytest.fixture(scope="session")
def server_url(django_db_setup: Any, simulator_url: str) -> Iterator[str]:
    """routerapp's ASGI application served by uvicorn against the test database."""
    from routerapp.asgi import application

    port = free_port()
    stop = serve_asgi(application, port=port)
    yield f"http://127.0.0.1:{port}"
    stop()


@pytest.fixture
def live(server_url: str, transactional_db: None) -> Iterator[str]:
    """A test that talks to the server over HTTP: rows it creates are committed and visible."""
    from routerapp.selectors.catalog_cache import cache_reset

    yield server_url
    cache_reset()  # the server's refresher thread stops before the test's database access ends


@pytest.fixture(autouse=True)
def _routing_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[None]:
    """Every test starts and ends with empty routing caches and no refresher thread. Tests over
    HTTP (`live`) run with the production setting; the others call services in the test's own
    thread, often inside one rolled-back transaction whose rows only their own connection sees,
    so they read configuration and posteriors on every call."""
    from routerapp.selectors.catalog_cache import cache_reset

    if "live" not in request.fixturenames:
        settings.ROUTING_CACHE_SECONDS = 0
    cache_reset()
    yield
    cache_reset()


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    from routerapp.services.routing import breaker

    breaker.reset()


@pytest.fixture(autouse=True)
def _no_default_rate_limit(settings: Any) -> None:
    # Tests send bursts with one key far above any per-minute default, and the counters are
    # shared in Redis; the default limit itself is tested in tests/api/test_rate_limit.py.
    settings.DEFAULT_RATE_LIMIT_PER_MINUTE = 0


# Personas: who may do what (routerapp.roles).
@pytest.fixture
def viewer(db: None) -> Any:
    """May look at every page; may change nothing."""
    from tests.builders import make_user

    return make_user(username="vera", role="viewer")


@pytest.fixture
def operator(db: None) -> Any:
    """May edit goals and paths (on existing providers); may not manage providers, prices or
    API keys."""
    from tests.builders import make_user

    return make_user(username="otto", role="operator")


@pytest.fixture
def approver(db: None) -> Any:
    """May approve change requests; may not edit configuration."""
    from tests.builders import make_user

    return make_user(username="abby", role="approver")


@pytest.fixture
def admin_user(db: None) -> Any:
    """An `admin` group member: everything, including providers, prices and API keys."""
    from tests.builders import make_user

    return make_user(username="ada", role="admin")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Playwright's sync API keeps an event loop running in the main thread for the rest of the
    # session, which breaks later code that starts its own loop: run the browser tests last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
