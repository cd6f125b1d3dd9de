"""The deployment files: the compose file validates against the Compose Specification's JSON schema (vendored,
deploy/compose-spec.json), runs production settings with health checks and required secrets, and the image's
entrypoint and the production settings refuse to start without secrets."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "worker", "beat")


def _schema() -> dict[str, Any]:
    return json.loads((ROOT / "deploy" / "compose-spec.json").read_text())


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification():
    assert _errors(_compose()) == []


def test_the_validation_can_fail():
    broken = copy.deepcopy(_compose())
    broken["services"]["web"]["healthcheck"]["interval"] = 10  # must be a duration string
    broken["services"]["web"]["replicas_typo"] = 2
    assert len(_errors(broken)) >= 2


def test_services_run_production_settings_with_required_secrets():
    services = _compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "aivax.settings.production", name
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), name  # compose refuses to start without it
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"], name
        assert env["PROMETHEUS_MULTIPROC_DIR"], name
    assert "${POSTGRES_PASSWORD:?" in services["db"]["environment"]["POSTGRES_PASSWORD"]
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "--workers" not in services["web"]["command"]  # uvicorn takes WEB_CONCURRENCY (default: cores)
    assert "WEB_CONCURRENCY" in services["web"]["environment"]


def test_dockerfile_defaults_to_production_behind_the_entrypoint():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DJANGO_SETTINGS_MODULE=aivax.settings.production" in dockerfile
    assert 'ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]' in dockerfile
    assert "PROMETHEUS_MULTIPROC_DIR=" in dockerfile


def _entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ROOT / "deploy" / "docker-entrypoint.sh"), *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=10,
    )


def test_entrypoint_refuses_to_start_without_secrets(tmp_path):
    full = {"SECRET_KEY": "x" * 40, "DATABASE_URL": "postgresql://a@b/c", "REDIS_URL": "redis://r:6379/0"}
    for missing in full:
        env = {k: v for k, v in full.items() if k != missing}
        result = _entrypoint(env, "echo", "started")
        assert result.returncode != 0 and "started" not in result.stdout
        assert f"{missing} is not set" in result.stderr
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_123.db").write_text("stale")
    started = _entrypoint({**full, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, "sh", "-c", "echo $WEB_CONCURRENCY")
    assert started.returncode == 0, started.stderr
    assert int(started.stdout.strip()) == len(os.sched_getaffinity(0))  # what nproc counts
    assert list(metrics_dir.iterdir()) == []
    chosen = _entrypoint({**full, "WEB_CONCURRENCY": "3"}, "sh", "-c", "echo $WEB_CONCURRENCY")
    assert chosen.stdout.strip() == "3"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgresql://a@b/c"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short", "DATABASE_URL": "postgresql://a@b/c"}, "SECRET_KEY"),
        ({"SECRET_KEY": "s" * 40}, "DATABASE_URL"),
    ],
)
def test_production_settings_refuse_to_start_without_secrets(env, message):
    code = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "aivax.settings.production", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
