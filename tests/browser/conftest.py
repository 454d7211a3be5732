"""Browser tests: Debian's Chromium, headless, driven by Playwright for Python, against the real console.

``chromium`` (one per session) starts ``/usr/bin/chromium`` with this machine's flags (``helpers.CHROMIUM_FLAGS``)
and a fresh, empty profile; if Chromium is missing or cannot start the fixture FAILS with the reason (``./dev
test`` installs it: ``apt-get install chromium``), never skips. At the end it checks that every process it
started (the Playwright driver and every Chromium process, recognised by a marker in their environment) has
exited, and kills and reports any that has not.

``new_page(viewport="desktop" | "laptop")`` opens a page in a new browser context (its own cookies: one per
user), closed after the test; ``page`` and ``laptop_page`` are the usual two. A page may only reach the
loopback interface: any other request is aborted and fails the test, so a console that would load a map tile
or a font from the internet is caught here. ``console_server`` runs the real console (uvicorn on 127.0.0.1, a
free port) over a temporary alert store seeded with ``helpers.SEED_ALERTS`` and one user of each role.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from lifeline.console.accounts import Accounts
from lifeline.console.app import Console
from lifeline.console.server import ConsoleServer
from lifeline.sinks.store import AlertStore
from tests.browser.helpers import (
    ACTION_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    LAUNCH_TIMEOUT_MS,
    OUTSIDE_URL,
    PASSWORD,
    ROLES,
    SEED_ALERTS,
    T0,
    TIMEZONE,
    VIEWPORTS,
    ConsoleSite,
    NewPage,
)

MARKER = "LIFELINE_BROWSER_TEST"  # in the environment of every process the session's browser started


def _marked_processes(token: str) -> list[int]:
    """Processes (other than this one) whose environment carries ``MARKER=token``: ours and only ours."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _start_playwright(workdir: Path, token: str) -> Playwright:
    """Start Playwright's driver with the marker and a TMPDIR of our own: the driver makes the browser's fresh
    profile (``--user-data-dir``) there and removes it at close, and the browser inherits both variables."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MARKER, token)
        mp.setenv("TMPDIR", str(workdir))
        return sync_playwright().start()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium (Debian's), one for the session; every process of it is gone after the session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: ./dev test installs it (apt-get install chromium) when it runs as root "
                    "or with sudo; the browser tests never download a browser", pytrace=False)
    workdir = tmp_path_factory.mktemp("chromium")
    token = secrets.token_hex(8)
    pw = _start_playwright(workdir, token)
    browser = _launch(pw)
    if isinstance(browser, str):
        pw.stop()
        _reap(token)
        pytest.fail(f"Chromium did not start ({CHROMIUM} {' '.join(CHROMIUM_FLAGS)}): {browser}", pytrace=False)
    try:
        yield browser
    finally:
        with contextlib.suppress(PlaywrightError):  # it crashed or was closed: the checks below still run
            browser.close()
        pw.stop()
        left = _reap(token)
        profiles = sorted(p.name for p in workdir.glob("playwright_chromiumdev_profile-*"))
        if left or profiles:
            pytest.fail(f"the browser did not close cleanly: processes {left} were still running (killed now), "
                        f"profiles left behind: {profiles}", pytrace=False)


def _launch(pw: Playwright) -> Browser | str:
    """The browser, or why it did not start (Playwright's message, with the command line and the browser's log)."""
    try:
        return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS),
                                  timeout=LAUNCH_TIMEOUT_MS)
    except PlaywrightError as exc:
        return exc.message


def _reap(token: str, wait_s: float = 5.0) -> list[int]:
    """Wait for the marked processes to exit; kill the ones that do not. The pids that had to be killed."""
    deadline = time.monotonic() + wait_s
    while (left := _marked_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):  # it exited after all
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.fixture()
def outside_requests() -> list[str]:
    """The URLs a page of this test tried to fetch beyond the loopback interface (each was aborted)."""
    return []


@pytest.fixture()
def new_page(chromium: Browser, outside_requests: list[str]) -> Iterator[NewPage]:
    """``new_page(viewport="desktop")``: a page in a new context (own cookies), 1920×1080 or ``"laptop"``
    1366×768, in the demo city's time zone; every context is closed after the test."""
    contexts: list[BrowserContext] = []

    def block(route: Route) -> None:
        outside_requests.append(route.request.url)
        route.abort("blockedbyclient")

    def make(viewport: str = "desktop", *, locale: str = "en-US") -> Page:
        if viewport not in VIEWPORTS:
            raise ValueError(f"viewport must be one of {', '.join(VIEWPORTS)} (got {viewport!r})")
        context = chromium.new_context(viewport=VIEWPORTS[viewport], locale=locale, timezone_id=TIMEZONE)
        contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.route(OUTSIDE_URL, block)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    if outside_requests:
        pytest.fail(f"a page tried to reach beyond 127.0.0.1 (aborted): {outside_requests}", pytrace=False)


@pytest.fixture()
def page(new_page: NewPage) -> Page:
    """A 1920×1080 page (the control room's screens) in a context of its own."""
    return new_page("desktop")


@pytest.fixture()
def laptop_page(new_page: NewPage) -> Page:
    """A 1366×768 page (a laptop) in a context of its own."""
    return new_page("laptop")


@pytest.fixture()
def console_server(tmp_path: Path) -> Iterator[ConsoleSite]:
    """The real console (``ConsoleServer(Console(db))``) on 127.0.0.1, a free port, over a fresh store seeded with
    ``SEED_ALERTS`` (A1 red ... A5 blue) and the users viewer, operator, engineer and admin (password
    ``PASSWORD``). Yields (base URL, db path, password)."""
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        store.commit_batch(SEED_ALERTS)
    accounts = Accounts(db)
    try:
        for role in ROLES:
            accounts.add_user(role, role, PASSWORD, T0)
    finally:
        accounts.close()
    server = ConsoleServer(Console(db), "127.0.0.1", 0)
    port = server.start()
    try:
        yield ConsoleSite(f"http://127.0.0.1:{port}", db, PASSWORD)
    finally:
        server.stop()
