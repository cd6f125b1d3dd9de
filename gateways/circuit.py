"""Circuit breakers, one per upstream (base URL + model) and process: fail fast while a dependency is known broken.

closed -> (UPSTREAM_CIRCUIT_FAILURES consecutive failures) -> open: calls are skipped for
UPSTREAM_CIRCUIT_OPEN_SECONDS (the request goes straight to the gateway's fallback model, or fails at once with
the last failure) -> half-open: one trial call is let through; its success closes the breaker, its failure opens
it again. State is per process on purpose: each process learns on its own in a few requests, and nothing on the
request path waits for shared state. Transitions are logged and counted (`snapshot()` for metrics).

Only failures that say something about the upstream count (connect errors, timeouts, 5xx, 429): a 4xx caused by
the request itself does not trip the breaker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from gateways.upstream import UpstreamFailure

logger = logging.getLogger(__name__)


@dataclass
class Breaker:
    name: str
    failures_to_open: int
    open_seconds: float
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False
    times_opened: int = 0
    calls_refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self.opened_at >= self.open_seconds else "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one trial call at a time."""
        with self._lock:
            state = self.state
            if state == "closed":
                return True
            if state == "half_open" and not self.trial_running:
                self.trial_running = True
                return True
            self.calls_refused += 1
            return False

    def record_success(self) -> None:
        with self._lock:
            if self.opened_at is not None:
                logger.warning("circuit %s closed again", self.name)
            self.failures = 0
            self.opened_at = None
            self.trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            was_trial, self.trial_running = self.trial_running, False
            if was_trial or (self.opened_at is None and self.failures >= self.failures_to_open):
                self.opened_at = time.monotonic()
                self.times_opened += 1
                logger.warning(
                    "circuit %s opened after %d failures: skipped for %.0fs",
                    self.name,
                    self.failures,
                    self.open_seconds,
                )


_breakers: dict[str, Breaker] = {}
_registry_lock = threading.Lock()


def breaker_for(base_url: str, model: str) -> Breaker:
    name = f"{base_url.rstrip('/')}#{model}"
    breaker = _breakers.get(name)
    if breaker is None:
        with _registry_lock:
            breaker = _breakers.setdefault(
                name,
                Breaker(
                    name=name,
                    failures_to_open=max(1, settings.UPSTREAM_CIRCUIT_FAILURES),
                    open_seconds=settings.UPSTREAM_CIRCUIT_OPEN_SECONDS,
                ),
            )
    return breaker


def snapshot() -> dict[str, dict[str, object]]:
    """Every breaker's state and counters, for metrics and /readyz-style pages."""
    return {
        name: {
            "state": b.state,
            "consecutive_failures": b.failures,
            "times_opened": b.times_opened,
            "calls_refused": b.calls_refused,
        }
        for name, b in list(_breakers.items())
    }


def reset_all() -> None:
    """Forget every breaker (tests)."""
    with _registry_lock:
        _breakers.clear()


class CircuitOpen(UpstreamFailure):
    """Every upstream of the request is skipped by its breaker: answered 503 + Retry-After, nothing is sent."""

    def __init__(self, breaker: Breaker) -> None:
        opened = breaker.opened_at or time.monotonic()
        remaining = max(1.0, breaker.open_seconds - (time.monotonic() - opened))
        super().__init__(
            "The upstream model is failing repeatedly; requests to it are paused for a moment.",
            status=503,
            retryable=False,
            retry_after=remaining,
        )


def counts_against_upstream(failure: UpstreamFailure) -> bool:
    """Connect errors, timeouts, 5xx and 429 say the upstream is in trouble; a 4xx of our request does not."""
    if not failure.retryable:
        return False
    return failure.status is None or failure.status >= 500 or failure.status == 429


def record(breaker: Breaker, failure: UpstreamFailure) -> None:
    if counts_against_upstream(failure):
        breaker.record_failure()
    else:
        breaker.record_success()  # the upstream answered: it is up, the request was wrong


class RetryBudget:
    """Total seconds one request may spend waiting between attempts (backoffs and upstream Retry-After)."""

    def __init__(self) -> None:
        self.left = float(settings.UPSTREAM_RETRY_BUDGET_SECONDS)

    def spend(self, seconds: float) -> bool:
        if seconds > self.left:
            return False
        self.left -= seconds
        return True
