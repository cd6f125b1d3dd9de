"""Which settings each entry point runs when nobody says: production for servers and workers (so a forgotten
variable fails closed), dev for the developer's own tools (manage.py, make run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"}}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, *args] if args else [sys.executable, "-c", code]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["aivax.asgi", "aivax.wsgi"])
def test_servers_default_to_production_and_refuse_an_unconfigured_start(module: str) -> None:
    result = _run(f"import {module}")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


def test_celery_defaults_to_production() -> None:
    result = _run("import os, aivax.celery; print(os.environ['DJANGO_SETTINGS_MODULE'])")
    assert result.stdout.strip() == "aivax.settings.production"


def test_make_run_and_manage_py_choose_dev() -> None:
    result = _run(
        "import os, aivax.celery; aivax.celery.prefer_settings('aivax.settings.dev'); "
        "print(os.environ['DJANGO_SETTINGS_MODULE'])"
    )
    assert result.stdout.strip() == "aivax.settings.dev"
    result = _run("", "manage.py", "shell", "-c", "from django.conf import settings; print(settings.SETTINGS_MODULE)")
    assert result.stdout.strip().splitlines()[-1] == "aivax.settings.dev", result.stderr


def test_a_chosen_module_is_kept() -> None:
    env_code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'aivax.settings.test'; import aivax.celery; "
        "aivax.celery.prefer_settings('aivax.settings.dev'); print(os.environ['DJANGO_SETTINGS_MODULE'])"
    )
    assert _run(env_code).stdout.strip() == "aivax.settings.test"
