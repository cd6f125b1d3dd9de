"""One fault stack (real PostgreSQL, Redis, stub upstream, web process) for the whole fault suite. Each test that
breaks a part restores it; after every fault the ledger must be exact (no reservation held, zero drift)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aivax import embedded
from tests.faults.stack import FaultStack


@pytest.fixture(scope="session")
def stack() -> Iterator[FaultStack]:
    fault_stack = FaultStack()
    try:
        fault_stack.start()
        yield fault_stack
    finally:
        fault_stack.stop()


def _restore(stack: FaultStack) -> None:
    if stack.redis_proc is None or stack.redis_proc.poll() is not None:
        stack.start_redis()
    if not stack.stub.server.started or stack.stub.server.should_exit:
        stack.start_stub()
    if not embedded.postgres_running(stack.pg_data):
        stack.start_postgres()
    if stack.web is None or stack.web.poll() is not None:
        stack.start_web()


@pytest.fixture
def healthy(stack: FaultStack) -> Iterator[FaultStack]:
    """The stack as a test found it: every part running again afterwards, and the ledger checked."""
    yield stack
    _restore(stack)
    stack.assert_ledger_exact()


@pytest.fixture(scope="module")
def ledger_checked_at_end(stack: FaultStack) -> Iterator[FaultStack]:
    yield stack
    _restore(stack)
    stack.assert_ledger_exact()


@pytest.fixture
def restored(ledger_checked_at_end: FaultStack) -> Iterator[FaultStack]:
    """For quick tests of one module: every part running again afterwards; the ledger is checked once, at the
    module's end (each check starts Django in a subprocess: seconds)."""
    yield ledger_checked_at_end
    _restore(ledger_checked_at_end)
