"""What the browser tests share besides fixtures: how Chromium is started, the viewports, the seeded console
data, and ``shot()``, which writes the screenshots the README links (``docs/screenshots/``).

Chromium is Debian's (``/usr/bin/chromium``, installed by ``./dev test``), driven by Playwright for Python; the
test suite never downloads a browser (no ``playwright install``). Pages may talk to the loopback interface only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, Protocol

from playwright.sync_api import Page, ViewportSize

from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level

CHROMIUM = "/usr/bin/chromium"
# The flags this machine needs (its notes: without the background-networking ones Chromium's own connections
# to the outside are refused, many at a time, on the closed network), plus a host-resolver rule so that no page
# and no part of Chromium can resolve a name other than localhost: URLs to 127.0.0.1 are the only way out.
# Playwright adds its own defaults and a fresh, empty --user-data-dir of its own making (it refuses one in args).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
)
LAUNCH_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 10_000  # a test that waits for something that never comes fails in 10 s, not Playwright's 30
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1920, "height": 1080},  # the control room's wall and desk screens
    "laptop": {"width": 1366, "height": 768},  # the duty engineer's laptop at home
}
TIMEZONE = "Asia/Shanghai"  # the demo city's (Hefei); fixed so that times on screen do not follow the host
# Any URL but one to the loopback interface; a regular expression (not a Python callable) so that Playwright
# matches it in its driver and loopback requests never wait for a round trip to this process.
OUTSIDE_URL = re.compile(r"^(?![a-z]+://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(/|$))")



class NewPage(Protocol):
    """The ``new_page`` fixture: a page in a new browser context (its own cookies), closed after the test."""

    def __call__(self, viewport: str = "desktop", *, locale: str = "en-US") -> Page: ...


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_SHOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Write what ``page`` shows to ``docs/screenshots/<name>.png`` (committed, linked from the docs).

    ``name`` is lower-case letters, digits, ``-`` and ``_``, so that a link in Markdown never needs escaping.
    """
    if not _SHOT_NAME.match(name):
        raise ValueError(f"screenshot name must match {_SHOT_NAME.pattern} (got {name!r})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
    return path


# ---- the console's seeded store --------------------------------------------------------------------------------
T0 = 1_764_403_200.0  # 2025-11-29 08:00 UTC
PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "engineer", "admin")  # one user of each role, named after it


class ConsoleSite(NamedTuple):
    """A running console: where it answers, its SQLite store, and every seeded user's password."""

    base: str  # http://127.0.0.1:<port>
    db: Path
    password: str


def _alert(n: int, rule: str, kind: AlertKind, sensor: str, district: str, level: Level, value: float,
           message: str, owner: str) -> AlertEvent:
    return AlertEvent(id=f"A{n}", seq=1, rule=rule, kind=kind, subject=sensor, sensor=sensor,
                      domain=rule.split(".")[0], district=district, level=level, state=AlertState.FIRING,
                      event=EventKind.FIRED, started=T0 + 60 * n, ts=T0 + 60 * n, value=value, message=message,
                      title=message.split(" at ")[0], owner=owner)


# Sensors, districts, rules and owners of the demo city (lifeline/data/demo_city, rules/): one alert per level,
# three domains, one sensor-health alert, so that a board or a map has every colour to show.
SEED_ALERTS = (
    _alert(1, "gas.methane.high", AlertKind.SAFETY, "BH-GAS-C1-W02", "BH", Level.RED, 54.2,
           "Methane in adjacent underground space at BH-GAS-C1-W02", "gas_company"),
    _alert(2, "water.pressure.low", AlertKind.SAFETY, "LY-WAT-M1-N1", "LY", Level.YELLOW, 0.21,
           "Low water pressure at LY-WAT-M1-N1", "water_utility"),
    _alert(3, "drainage.ponding.depth", AlertKind.SAFETY, "XZ-DRN-U1", "XZ", Level.ORANGE, 31.0,
           "Ponding in underpass at XZ-DRN-U1", "drainage_dept"),
    _alert(4, "gas.methane.high", AlertKind.SAFETY, "BH-GAS-C1-W03", "BH", Level.BLUE, 6.1,
           "Methane in adjacent underground space at BH-GAS-C1-W03", "gas_company"),
    _alert(5, "gas.pressure.stuck", AlertKind.HEALTH, "BH-GAS-C1-P1", "BH", Level.BLUE, 0.4,
           "Pressure reading stuck at BH-GAS-C1-P1", "gas_company"),
)


def login(page: Page, base: str, user: str) -> None:
    """Log in through the console's own login form (every seeded user's password is ``PASSWORD``)."""
    page.goto(base + "/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#main-view:not([hidden])")
