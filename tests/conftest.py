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
def live(server_url: str, transactional_db: None) -> str:
    """A test that talks to the server over HTTP: rows it creates are committed and visible."""
    return server_url


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    from routerapp.services.routing import breaker

    breaker.reset()


# Personas: who may do what (routerapp.roles).
@pytest.fixture
def viewer(db: None) -> Any:
    """May look at every page; may change nothing."""
    from tests.builders import make_user

    return make_user(username="vera", role="viewer")


@pytest.fixture
def operator(db: None) -> Any:
    """May edit goals, paths, providers and prices; may not manage API keys."""
    from tests.builders import make_user

    return make_user(username="otto", role="operator")


@pytest.fixture
def approver(db: None) -> Any:
    """May approve change requests; may not edit configuration."""
    from tests.builders import make_user

    return make_user(username="abby", role="approver")


@pytest.fixture
def admin_user(db: None) -> Any:
    """An `admin` group member: everything, including API keys."""
    from tests.builders import make_user

    return make_user(username="ada", role="admin")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Playwright's sync API keeps an event loop running in the main thread for the rest of the
    # session, which breaks later code that starts its own loop: run the browser tests last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
