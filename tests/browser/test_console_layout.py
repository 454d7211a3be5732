"""The console's layout on a 1920×1080 video wall and a 1366×768 laptop, in Chinese and in English: nothing runs
off the side, the map and the board share the first screen, the detail opens beside them, a level's name never
breaks over two lines, and the wall's text is large enough to read from the back of the room."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lifeline import paths
from lifeline.console.accounts import Accounts
from lifeline.console.app import Console
from lifeline.console.server import ConsoleServer
from lifeline.registry import load_registry
from lifeline.sinks.store import AlertStore
from tests.browser.helpers import PASSWORD, ROLES, SEED_ALERTS, T0, NewPage, login, shot

pytestmark = pytest.mark.browser

# Boxes of what must be on the first screen, and the checks that need the page's own measurements.
MEASURE = """() => {
  const box = (sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                         return [r.left, r.top, r.right, r.bottom]; };
  const lineBreaks = [...document.querySelectorAll('.badge')].filter(b => b.getClientRects().length > 1 ||
                       b.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(b).fontSize)).length;
  return {w: innerWidth, h: innerHeight, scrollW: document.documentElement.scrollWidth,
          scrollH: document.documentElement.scrollHeight, font: parseFloat(getComputedStyle(document.body).fontSize),
          header: [...document.querySelectorAll('header button, #counters span')].map(e => {
            const r = e.getBoundingClientRect(); return [r.left, r.right, r.bottom]; }),
          map: document.querySelector('#map-panel').offsetParent ? box('#map') : null, board: box('#board-panel'),
          cells: [...document.querySelectorAll('#board tbody tr:first-child td')].map(td => [
            Math.round(td.getBoundingClientRect().width), td.scrollWidth > td.clientWidth + 1]),
          row: document.querySelector('#board tbody tr').getBoundingClientRect().height,
          detail: document.querySelector('#detail').hidden ? null : box('#detail'), brokenBadges: lineBreaks};
}"""


@pytest.fixture()
def city_console(tmp_path: Any) -> Iterator[str]:
    """The real console over the demo city's registry and districts, with the five seeded alerts."""
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        store.commit_batch(SEED_ALERTS)
    accounts = Accounts(db)
    for role in ROLES:
        accounts.add_user(role, role, PASSWORD, T0)
    accounts.close()
    registry = load_registry(paths.default_registry(), paths.default_districts())
    server = ConsoleServer(Console(db, registry=registry), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.start()}"
    finally:
        server.stop()


@pytest.mark.parametrize(("viewport", "locale"), [("desktop", "zh-CN"), ("desktop", "en-GB"), ("laptop", "zh-CN"),
                                                  ("laptop", "en-GB")])
def test_the_board_the_map_and_the_detail_fit_the_screen(city_console: str, new_page: NewPage, viewport: str,
                                                         locale: str) -> None:
    page = new_page(viewport, locale=locale)
    login(page, city_console, "operator")
    if locale.startswith("en"):
        page.click("#lang")
    page.wait_for_selector("#map circle.sensor")
    page.wait_for_selector('#board tbody tr[data-id="A1"]')

    def check(m: dict[str, Any], where: str) -> None:
        assert m["scrollW"] <= m["w"], f"{where}: the page is {m['scrollW']} px wide in a {m['w']} px window"
        for left, right, bottom in m["header"]:
            assert left >= 0 and right <= m["w"] and bottom <= 80, f"{where}: a header item off screen: {m['header']}"
        for name in ("map", "board", "detail"):
            if m[name] is None:
                continue
            left, top, right, bottom = m[name]
            assert 0 <= left < right <= m["w"] and top < m["h"] - 200, f"{where}: {name} at {m[name]}"
            assert right - left >= 300, f"{where}: {name} only {right - left:.0f} px wide"
        if m["map"] is not None:
            assert m["map"][3] - m["map"][1] >= 300, f"{where}: the map is {m['map'][3] - m['map'][1]:.0f} px high"
        # a board row: no cell's content runs over its edge, the alert's title has room, a row is a few lines
        assert not any(over for _, over in m["cells"]) and m["cells"][1][0] >= 150, f"{where}: cells {m['cells']}"
        assert m["row"] <= 5 * m["font"], f"{where}: a board row is {m['row']} px high"
        assert m["brokenBadges"] == 0, f"{where}: {m['brokenBadges']} level names broken over two lines"

    first = page.evaluate(MEASURE)
    check(first, f"{viewport} {locale}, board")
    if viewport == "desktop":  # the wall: text readable from the back of the room
        assert first["font"] >= 18, first["font"]
    # the board and the map side by side on both screens, each within the window's height (no page scrolling)
    assert first["map"] is not None and first["map"][2] <= first["board"][0] and first["scrollH"] <= first["h"], first

    if viewport == "desktop":  # a click on a sensor's marker filters the board to its district
        page.click('#map circle.sensor[data-sensor="XZ-DRN-U1"]')
        page.wait_for_function("() => document.querySelector('#filters select[name=district]').value === 'XZ'")
        page.wait_for_function("() => document.querySelectorAll('#board tbody tr').length === 1")
        page.click("#clear-filters")
        page.wait_for_selector('#board tbody tr[data-id="A1"]')
    page.click('#board tbody tr[data-id="A1"] td:nth-child(2)')
    page.wait_for_selector("#detail:not([hidden]) .actions")
    opened = page.evaluate(MEASURE)
    check(opened, f"{viewport} {locale}, detail open")
    assert opened["board"][2] <= opened["detail"][0], "the detail opens beside the board, not over it"
    # the wall keeps the map beside the board and the detail; a laptop gives the map's place to the detail
    assert (opened["map"] is not None) == (viewport == "desktop"), opened["map"]
    shot(page, f"console-layout-{viewport}-{locale[:2]}")
