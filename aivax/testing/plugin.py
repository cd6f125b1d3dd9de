"""pytest plugin: gives the test run a real PostgreSQL with pgvector and a real Redis before Django starts.

With DATABASE_URL set, that server is used (pytest-django creates its test database there). Without it, an
embedded PostgreSQL is started in a temporary folder and removed at the end. Redis: REDIS_URL, else the one on
127.0.0.1:6379, else a private redis-server. Each run gets its own key prefix so parallel runs never meet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Generator
from pathlib import Path

import pytest

from aivax import embedded

_state: dict[str, object] = {}
_PG_PREFIX = "aivax-test-pg-"


def _sweep_abandoned_servers() -> None:
    """Stop the embedded servers of earlier runs that were killed before they could stop their own."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PG_PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
            continue  # that run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        embedded.stop_postgres(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: object, args: list[str]) -> Generator:
    from aivax.celery import prefer_settings

    # Importing this plugin imported the aivax package, whose Celery module defaults the settings to production:
    # undo that default (a DJANGO_SETTINGS_MODULE the user set stays), so pytest-django takes the test settings.
    prefer_settings("aivax.settings.test")
    if not os.environ.get("DATABASE_URL"):
        _sweep_abandoned_servers()
        tmp = Path(tempfile.mkdtemp(prefix=_PG_PREFIX))
        os.chmod(tmp, 0o755)
        (tmp / "owner.pid").write_text(str(os.getpid()))
        pg = embedded.start_postgres(tmp / "data", database="aivax")
        _state["pg_dir"] = tmp
        os.environ["DATABASE_URL"] = pg.url("aivax")
    if not os.environ.get("REDIS_URL"):
        default = "redis://127.0.0.1:6379/0"
        if embedded.redis_answers(default):
            os.environ["REDIS_URL"] = default
        else:
            url, proc = embedded.start_redis(Path(tempfile.mkdtemp(prefix="aivax-test-redis-")))
            _state["redis_proc"] = proc
            os.environ["REDIS_URL"] = url
    os.environ.setdefault("AIVAX_TEST_RUN_PREFIX", f"aivax-test-{uuid.uuid4().hex[:8]}")
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _state.pop("redis_proc", None)
    if isinstance(proc, subprocess.Popen):
        proc.terminate()
    pg_dir = _state.pop("pg_dir", None)
    if isinstance(pg_dir, Path):
        embedded.stop_postgres(pg_dir / "data")
        shutil.rmtree(pg_dir, ignore_errors=True)
