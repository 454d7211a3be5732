"""The browser-test chain end to end against the console as it is today (its JSON API; the board and the map
come with the web UI): Debian's Chromium opens the API's pages, logs in with the session cookie it keeps, reads
alerts with in-page ``fetch()`` as the UI's scripts will, and the server refuses a viewer's acknowledgement."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from lifeline.console.app import COOKIE, ENDPOINTS
from lifeline.sinks.store import AlertStore
from tests.browser.helpers import ROLES, SCREENSHOTS, TIMEZONE, ConsoleSite, NewPage, shot

pytestmark = pytest.mark.browser

_FETCH = """async ([method, path, body, csrf]) => {
    const headers = {};
    if (body !== null) headers['Content-Type'] = 'application/json';
    if (csrf) headers['X-CSRF-Token'] = csrf;
    const r = await fetch(path, {method, headers, body: body === null ? undefined : JSON.stringify(body)});
    return [r.status, await r.json()];
}"""


def fetch(page: Page, method: str, path: str, body: dict[str, Any] | None = None,
          csrf: str = "") -> tuple[int, dict[str, Any]]:
    """``fetch()`` inside the page, as the console's own scripts will call the API: same origin, the browser's
    cookies (HttpOnly, SameSite=Strict), the CSRF token in a header."""
    status, doc = page.evaluate(_FETCH, [method, path, body, csrf])
    return int(status), dict(doc)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_chromium_shows_the_public_api_and_its_screenshot_is_written(page: Page,
                                                                      console_server: ConsoleSite) -> None:
    """Chromium opens /api/health and /api/openapi.json; the JSON it shows is what the server sent, the OpenAPI
    document lists every endpoint, and a screenshot of it (pretty-printed by a key press) lands in the docs."""
    resp = page.goto(console_server.base + "/api/health")
    assert resp is not None and resp.status == 200 and resp.headers["content-type"] == "application/json"
    assert json.loads(page.locator("pre").inner_text()) == {"ok": True, "open_alerts": 5}

    resp = page.goto(console_server.base + "/api/openapi.json")
    assert resp is not None and resp.status == 200
    doc = json.loads(page.locator("pre").inner_text())
    assert doc == resp.json() and doc["openapi"] == "3.1.0"
    assert {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops} == {(e.path, e.method) for e in ENDPOINTS}

    page.keyboard.press("Tab")  # to Chromium's own "Pretty-print" box above a JSON document
    page.keyboard.press("Space")
    expect(page.locator("pre")).to_contain_text('{\n  "openapi": "3.1.0",')
    assert json.loads(page.locator("pre").inner_text()) == doc
    path = shot(page, "console-openapi")
    assert path == SCREENSHOTS / "console-openapi.png"
    assert _png_size(path.read_bytes()) == (1920, 1080)


def test_an_operator_reads_alerts_and_the_server_refuses_a_viewers_acknowledgement(
        page: Page, laptop_page: Page, console_server: ConsoleSite) -> None:
    """Operator (desktop) logs in through ``page.request``: the browser keeps the HttpOnly cookie and reads the
    alerts with it. Viewer (laptop) logs in with in-page ``fetch()``: acknowledging A1 with a valid CSRF token is
    refused with 403 and the reason, and A1 stays firing; the operator's same request is accepted."""
    base, db, password = console_server
    page.goto(base + "/api/health")  # an in-page fetch() is same-origin from here
    login = page.request.post(base + "/api/login", data={"user": "operator", "password": password})
    assert login.status == 200
    operator = login.json()
    assert operator["user"] == "operator" and operator["role"] == "operator" and operator["csrf"]
    (cookie,) = page.context.cookies(base)
    assert cookie["name"] == COOKIE and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert COOKIE not in page.evaluate("() => document.cookie")  # scripts on the page cannot read the session

    status, alerts = fetch(page, "GET", "/api/alerts")
    assert status == 200
    assert [a["id"] for a in alerts["alerts"]] == ["A1", "A3", "A2", "A5", "A4"]  # worst first, then newest
    assert alerts["counts"] == {"blue": 2, "yellow": 1, "orange": 1, "red": 1}
    assert fetch(page, "GET", "/api/me") == (200, {"user": "operator", "role": "operator", "csrf": operator["csrf"]})

    laptop_page.goto(base + "/api/health")
    status, viewer = fetch(laptop_page, "POST", "/api/login", {"user": "viewer", "password": password})
    assert status == 200 and viewer["role"] == "viewer"
    assert fetch(laptop_page, "GET", "/api/alerts/A1")[1]["alert"]["state"] == "firing"  # a viewer reads
    status, refused = fetch(laptop_page, "POST", "/api/alerts/A1/ack", {"reason": "seen"}, viewer["csrf"])
    assert (status, refused) == (403, {"error": "viewer is a viewer; POST /api/alerts/{id}/ack needs operator or "
                                                "above"})
    with AlertStore(db) as store:
        row = store.get("A1")
        assert row is not None and row.state == "firing" and row.acked_by is None

    status, acked = fetch(page, "POST", "/api/alerts/A1/ack", {"reason": "crew sent"}, operator["csrf"])
    assert status == 200 and acked["alert"]["state"] == "acknowledged" and acked["alert"]["acked_by"] == "operator"
    assert fetch(laptop_page, "GET", "/api/alerts/A1")[1]["alert"]["state"] == "acknowledged"


def test_every_role_logs_in_in_its_own_context(new_page: NewPage, console_server: ConsoleSite) -> None:
    """Each seeded user logs in with the one password; each context keeps its own session."""
    pages = {role: new_page() for role in ROLES}
    for role, p in pages.items():
        p.goto(console_server.base + "/api/health")
        assert fetch(p, "POST", "/api/login", {"user": role, "password": console_server.password})[0] == 200
    assert {role: fetch(p, "GET", "/api/me")[1]["role"] for role, p in pages.items()} == {r: r for r in ROLES}


def test_pages_have_the_promised_viewport_and_time_zone(page: Page, laptop_page: Page) -> None:
    """Desktop 1920×1080, laptop 1366×768, both in the demo city's time zone whatever the host's."""
    probe = "() => [innerWidth, innerHeight, Intl.DateTimeFormat().resolvedOptions().timeZone]"
    assert page.evaluate(probe) == [1920, 1080, TIMEZONE]
    assert laptop_page.evaluate(probe) == [1366, 768, TIMEZONE]


def test_a_page_cannot_reach_beyond_loopback(page: Page, console_server: ConsoleSite,
                                             outside_requests: list[str]) -> None:
    """A request to any host but 127.0.0.1 / localhost is aborted before it leaves the browser and recorded
    (the fixture then fails the test, unless the test expected it, as here)."""
    page.goto(console_server.base + "/api/health")
    error = page.evaluate("() => fetch('http://tiles.example/7/104/52.png').then(() => 'fetched', e => e.name)")
    assert error == "TypeError" and outside_requests == ["http://tiles.example/7/104/52.png"]
    outside_requests.clear()  # expected here
    assert fetch(page, "GET", "/api/health") == (200, {"ok": True, "open_alerts": 5}) and outside_requests == []
