"""Database work from async code, on a small bounded pool of threads.

Django's ASGI handler gives every request its own thread for `sync_to_async`, so with hundreds
of upstream calls in flight a plain `sync_to_async` would hold hundreds of connections and
exhaust PostgreSQL's `max_connections`. The completion path instead runs its short DB units
here: at most `DB_THREADS` connections per process, each unit opening and closing its
connection as a request would (a close returns it to the process's connection pool).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="routerapp-db")


def _unit(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(_unit, func, *args, **kwargs))
