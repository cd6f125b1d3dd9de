"""Browser tests: Playwright (sync API) driving Debian's Chromium, headless, against our ASGI app under uvicorn.

Playwright cannot download its own browsers here, so it launches /usr/bin/chromium (`make test` installs it).
Screenshots of the main pages go to test-artifacts/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.db import connection
from django.test import override_settings

from tests.conftest import LiveASGIServer
from tests.console.stack import live_gateway, stub, upstream_model  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"{CHROMIUM} is absent: run `make install-browser` (apt-get install chromium) to run the browser tests",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402


@pytest.fixture(scope="session")
def console_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveASGIServer]:
    """A live server whose WhiteNoise serves static files straight from the finders (no collectstatic in tests)."""
    server = LiveASGIServer()
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        server.server.config.app = ASGIHandler()
    server.start()
    yield server
    server.stop()
    # A request the browser abandoned half-way can leave its worker thread's connection open; the stopped server
    # no longer needs any, and the test database can only be dropped without them.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Playwright's sync API keeps an event loop running in this thread while it is
    open, which Django takes for async code; the ORM calls of the tests are sync, so Django's guard is lifted for
    exactly as long as the browser is open (and the loop is gone before any other test module runs)."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        # Playwright gives every launch a new, empty profile of its own.
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser, console_server: LiveASGIServer) -> Iterator[Page]:
    context = browser.new_context(base_url=console_server.url, viewport={"width": 1360, "height": 860})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")  # the sticky sidebar is drawn where the page is scrolled
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/**")


def nav(page: Page, name: str) -> None:
    """Follow a link of the sidebar navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()
