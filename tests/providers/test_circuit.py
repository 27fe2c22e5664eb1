from __future__ import annotations

import threading

from routerapp.providers.circuit import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_seconds=30.0, clock=clock)


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)

    for _ in range(2):
        breaker.record_failure("p1")
    assert breaker.state("p1") == "closed"
    assert breaker.allow("p1")

    breaker.record_failure("p1")
    assert breaker.state("p1") == "open"
    assert not breaker.allow("p1")
    # Other providers are unaffected.
    assert breaker.allow("p2")


def test_success_resets_the_consecutive_count() -> None:
    breaker = make_breaker(FakeClock())

    breaker.record_failure("p1")
    breaker.record_failure("p1")
    breaker.record_success("p1")
    breaker.record_failure("p1")
    breaker.record_failure("p1")

    assert breaker.state("p1") == "closed"


def test_after_cooldown_half_open_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure("p1")

    clock.now += 29.9
    assert not breaker.allow("p1")
    clock.now += 0.2
    assert breaker.state("p1") == "half_open"
    assert breaker.allow("p1")  # the trial
    assert not breaker.allow("p1")  # everyone else waits for its verdict


def test_successful_trial_closes_the_circuit() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure("p1")
    clock.now += 31
    assert breaker.allow("p1")

    breaker.record_success("p1")

    assert breaker.state("p1") == "closed"
    assert breaker.allow("p1")
    assert breaker.allow("p1")


def test_failed_trial_opens_for_another_full_cooldown() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure("p1")
    clock.now += 31
    assert breaker.allow("p1")

    breaker.record_failure("p1")

    assert breaker.state("p1") == "open"
    clock.now += 29
    assert not breaker.allow("p1")
    clock.now += 2
    assert breaker.allow("p1")


def test_a_trial_that_never_reports_is_given_up_after_a_cooldown() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.record_failure("p1")
    clock.now += 31
    assert breaker.allow("p1")  # this trial is cancelled and never reports

    clock.now += 31

    assert breaker.allow("p1")


def test_reset_forgets_history() -> None:
    breaker = make_breaker(FakeClock())
    for _ in range(3):
        breaker.record_failure("p1")
        breaker.record_failure("p2")

    breaker.reset("p1")
    assert breaker.state("p1") == "closed"
    assert breaker.state("p2") == "open"
    breaker.reset()
    assert breaker.state("p2") == "closed"


def test_concurrent_failures_are_all_counted() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=400, cooldown_seconds=30.0, clock=clock)

    def fail_many() -> None:
        for _ in range(50):
            breaker.record_failure("p1")

    threads = [threading.Thread(target=fail_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 8 x 50 = 400 failures, no lost update: exactly at the threshold.
    assert breaker.state("p1") == "open"
