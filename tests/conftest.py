"""Shared fixtures: three people (an owner, a teammate, an outsider in another organization), keys, and a live
ASGI server (uvicorn in a thread) for tests that talk HTTP like a real client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from accounts.models import Organization, Role, Scope, User
from accounts.services import CreatedKey, api_key_create, membership_set, organization_create, user_create


@dataclass
class Tenant:
    org: Organization
    owner: User
    key: CreatedKey


@pytest.fixture
def owner(db: None) -> User:
    return user_create(email="owner@acme.test", password="pw-owner-123!")


@pytest.fixture
def org(owner: User) -> Organization:
    return organization_create(name="Acme", owner=owner)


@pytest.fixture
def teammate(org: Organization) -> User:
    user = user_create(email="dev@acme.test", password="pw-dev-123!")
    membership_set(organization=org, user=user, role=Role.DEVELOPER)
    return user


@pytest.fixture
def outsider_org(db: None) -> Organization:
    outsider = user_create(email="eve@globex.test", password="pw-eve-123!")
    return organization_create(name="Globex", owner=outsider)


@pytest.fixture
def outsider(outsider_org: Organization) -> User:
    return User.objects.get(email="eve@globex.test")


@pytest.fixture
def api_key(org: Organization, owner: User) -> CreatedKey:
    return api_key_create(organization=org, name="all scopes", scopes=list(Scope.values), created_by=owner)


@pytest.fixture
def outsider_key(outsider_org: Organization) -> CreatedKey:
    return api_key_create(organization=outsider_org, name="eve", scopes=list(Scope.values))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveASGIServer:
    """Our real ASGI app under uvicorn, in a background thread with its own event loop."""

    def __init__(self) -> None:
        from aivax.asgi import application

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_asgi() -> Iterator[LiveASGIServer]:
    server = LiveASGIServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Live-server threads keep pooled connections; end them so the test database can be dropped at the end."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
