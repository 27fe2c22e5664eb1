"""A per-process circuit breaker that skips a provider that keeps failing, for a cool-down.

States per key (normally one key per provider):

- closed: calls pass; `failure_threshold` consecutive failures open the circuit.
- open: calls are refused until `cooldown_seconds` have passed since it opened.
- half_open: the first `allow()` after the cool-down lets one trial call through and refuses
  the rest; the trial's `record_success` closes the circuit, its `record_failure` opens it for
  another cool-down. A trial that never reports (cancelled request) is given up after one more
  cool-down, so a lost trial cannot keep the circuit half-open for ever.

Callers record only failures that are the provider's fault (`ProviderError.retryable`); a bad
request says nothing about the provider's health. The state is per process on purpose: each
web worker learns on its own within a few calls, and no shared store sits on the request path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial_started_at: float | None = None


class CircuitBreaker:
    """Thread-safe: the ASGI loop and sync threads (async_to_sync, Celery) may share it."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[Hashable, _Circuit] = {}

    def _state(self, circuit: _Circuit, now: float) -> State:
        if circuit.opened_at is None:
            return "closed"
        if now - circuit.opened_at < self.cooldown_seconds:
            return "open"
        return "half_open"

    def state(self, key: Hashable) -> State:
        with self._lock:
            circuit = self._circuits.get(key)
            return "closed" if circuit is None else self._state(circuit, self._clock())

    def allow(self, key: Hashable) -> bool:
        """May a call to `key` go ahead now? In half-open state this claims the single trial."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None:
                return True
            now = self._clock()
            state = self._state(circuit, now)
            if state == "closed":
                return True
            if state == "open":
                return False
            trial_pending = (
                circuit.trial_started_at is not None
                and now - circuit.trial_started_at < self.cooldown_seconds
            )
            if trial_pending:
                return False
            circuit.trial_started_at = now
            return True

    def record_success(self, key: Hashable) -> None:
        with self._lock:
            # A success closes the circuit whatever its state: the provider answered.
            self._circuits.pop(key, None)

    def record_failure(self, key: Hashable) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            now = self._clock()
            state = self._state(circuit, now)
            if state == "half_open":
                # The trial failed: open again for a full cool-down.
                circuit.opened_at = now
                circuit.trial_started_at = None
                return
            if state == "open":
                return  # late failures of calls admitted before opening change nothing
            circuit.failures += 1
            if circuit.failures >= self.failure_threshold:
                circuit.opened_at = now
                circuit.trial_started_at = None

    def reset(self, key: Hashable | None = None) -> None:
        """Forget one key's history, or every key's (tests, admin actions)."""
        with self._lock:
            if key is None:
                self._circuits.clear()
            else:
                self._circuits.pop(key, None)


breaker = CircuitBreaker()
