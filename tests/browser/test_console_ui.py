"""The console in a real browser (headless Chromium, Playwright) against a running engine fed by the demo
scenario's simulators over a real Mosquitto: the alert board, the four-colour map, acknowledgement, and a
viewer refused by the server. Also the board and the map with 2,000 open alerts and 10,000 sensors, timed in
the browser. Screenshots go to docs/screenshots/ (linked from the README)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from lifeline import paths
from lifeline.console.accounts import Accounts
from lifeline.console.app import Console
from lifeline.console.server import ConsoleServer
from lifeline.engine.runner import Runner
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level, Sensor
from lifeline.registry import Registry, load_registry
from lifeline.rules.loader import load_rules
from lifeline.sinks.store import AlertStore
from lifeline.testing_broker import Broker
from tests.browser.helpers import PASSWORD, SCREENSHOTS, NewPage, login, shot
from tests.integration.conftest import mosquitto  # noqa: F401 - the fixture, shared with the integration tests
from tests.integration.helpers import REPO, ThreadRunner, config

pytestmark = pytest.mark.browser

# The demo scenario's first red: a passenger trapped between floors in Gaoxin, from the first second.
TRAPPED = "GX-ELV-BD2-L1"
DISTRICT = "GX"


class Live(NamedTuple):
    base: str
    db: Path
    runner: ThreadRunner


@pytest.fixture()
def live(mosquitto: Broker, tmp_path: Path) -> Iterator[Live]:  # noqa: F811 - the imported fixture
    """`lifeline run --console` on the demo city with the shipped packs, and the demo scenario's simulators
    publishing in real time."""
    db = tmp_path / "lifeline.db"
    AlertStore(db).close()
    accounts = Accounts(db)
    for role in ("viewer", "operator"):
        accounts.add_user(role, role, PASSWORD, time.time())
    accounts.close()
    rules = load_rules([paths.default_rules()])
    registry = load_registry(paths.default_registry(), paths.default_districts())
    cfg = config(mosquitto.port, tmp_path, client_id="browser-live", console_addr=("127.0.0.1", 0),
                 publish=False, tick_interval_s=2.0)
    runner = ThreadRunner(Runner(cfg, rules, registry))
    sim = subprocess.Popen([sys.executable, "-m", "simulators", "run", "--scenario", "demo", "--duration", "90s",
                            "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--realtime"], cwd=REPO,
                           env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        assert runner.runner.console is not None
        yield Live(f"http://127.0.0.1:{runner.runner.console.port}", db, runner)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        runner.stop()


# Each page notes when each board row first appears (the page's clock: the same machine's as the engine's).
WATCH_ROWS = """() => {
  window.__seen = {};
  const note = () => { for (const tr of document.querySelectorAll('#board tbody tr[data-id]'))
    if (!(tr.dataset.id in window.__seen)) window.__seen[tr.dataset.id] = Date.now(); };
  note();
  new MutationObserver(note).observe(document.querySelector('#board tbody'), {childList: true});
}"""


def test_an_incident_reaches_the_board_and_the_map_and_an_acknowledgement_reaches_everyone(
        live: Live, new_page: NewPage) -> None:
    operator, viewer = new_page("desktop", locale="zh-CN"), new_page("laptop")
    login(operator, live.base, "operator")
    login(viewer, live.base, "viewer")
    for p in (operator, viewer):
        p.evaluate(WATCH_ROWS)
    row = f'#board tbody tr[data-level="red"]:has-text("{TRAPPED}")'
    operator.wait_for_selector(row, timeout=60_000)  # the scenario starts it in its first seconds
    alert_id = operator.get_attribute(row, "data-id")
    assert alert_id
    with AlertStore(live.db) as store:
        alert = store.get(alert_id)
        assert alert is not None and alert.sensor == TRAPPED and alert.level == Level.RED
        fired = next(e.ts for e in store.events(alert_id) if e.event == EventKind.FIRED)
    # without a reload, within 2 s of the reading that caused it (its event time is the simulator's clock)
    seen = operator.evaluate(f"window.__seen[{alert_id!r}]") / 1000.0
    assert seen - fired < 2.0, f"the row appeared {seen - fired:.2f} s after the reading"
    # the map: the incident's district red (an elevator's red: weight 8 x criticality 1)
    operator.wait_for_selector(f'#map path[data-district="{DISTRICT}"][data-level="red"]')
    operator.wait_for_selector(f'#map circle[data-sensor="{TRAPPED}"][data-state="red"]')
    shot(operator, "console-board")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    operator.locator("#map-panel").screenshot(path=str(SCREENSHOTS / "console-map.png"))

    # the viewer sees it too, without an acknowledge button; the server refuses a viewer's acknowledgement
    viewer.wait_for_selector(f'#board tbody tr[data-id="{alert_id}"]')
    assert viewer.locator(f'#board tbody tr[data-id="{alert_id}"] button.ack').count() == 0
    refused = viewer.evaluate("""async (id) => {
      const me = await (await fetch('/api/me')).json();
      const r = await fetch(`/api/alerts/${id}/ack`, {method: 'POST', headers: {'Content-Type': 'application/json',
        'X-CSRF-Token': me.csrf}, body: JSON.stringify({reason: 'viewer tries'})});
      return [r.status, (await r.json()).error];
    }""", alert_id)
    assert refused[0] == 403 and "needs operator" in refused[1]

    # the operator acknowledges it; the state changes on both screens without a reload
    t0 = time.monotonic()
    operator.click(f'#board tbody tr[data-id="{alert_id}"] button.ack')
    for p in (operator, viewer):
        p.wait_for_selector(f'#board tbody tr[data-id="{alert_id}"][data-state="acknowledged"]', timeout=5000)
    took = time.monotonic() - t0
    assert took < 3.0, took
    with AlertStore(live.db) as store:
        assert store.get(alert_id).acked_by == "operator"  # type: ignore[union-attr]

    # a click on a district filters the board to it; another click clears it
    operator.click(f'#map path[data-district="{DISTRICT}"]')
    operator.wait_for_selector(f'#board tbody tr[data-id="{alert_id}"]')
    districts = operator.eval_on_selector_all("#board tbody tr td:nth-child(3)",
                                              "tds => tds.map(td => td.textContent.split(' / ')[0])")
    assert set(districts) == {DISTRICT}
    assert operator.input_value("#filters select[name=district]") == DISTRICT

    # the detail: its history shows who acknowledged it; the chart shows its readings
    operator.click(f'#board tbody tr[data-id="{alert_id}"] td:nth-child(2)')
    operator.wait_for_selector("#detail:not([hidden]) #chart svg, #detail:not([hidden]) #chart p")
    assert "operator" in operator.inner_text("#detail ol")
    assert operator.locator("#detail ol.nearby li").count() > 0  # the building's other lifts, within 1 km
    shot(operator, "console-detail")


def _big_city(n_sensors: int, seed: int = 7) -> Registry:
    """The demo city's districts with ``n_sensors`` sensors spread over them."""
    demo = load_registry(paths.default_registry(), paths.default_districts())
    rng = random.Random(seed)
    districts = sorted(demo.districts.values(), key=lambda d: d.id)
    domains = ("gas", "water", "drainage", "bridge", "elevator", "crowd")
    sensors = []
    for i in range(n_sensors):
        d = districts[i % len(districts)]
        xs, ys = [p[0] for p in d.polygon], [p[1] for p in d.polygon]
        while True:
            lon, lat = rng.uniform(min(xs), max(xs)), rng.uniform(min(ys), max(ys))
            if d.contains(lon, lat):
                break
        sensors.append(Sensor(f"{d.id}-S{i:05d}", domains[i % 6], d.id, lon, lat, asset_type="manhole",
                              owner="dept"))
    return Registry(sensors, districts)


def test_two_thousand_open_alerts_and_ten_thousand_sensors_stay_responsive(tmp_path: Path, new_page: NewPage) -> None:
    """First render (login to a board of 2,000 rows and a map of 10,000 markers) and a filter change, timed in
    the browser; the figures go to the test log and docs/console.md."""
    reg = _big_city(10_000)
    ids = sorted(reg.sensors)
    now = time.time()
    events = [AlertEvent(id=f"B{i:04d}", seq=1, rule="gas.methane.high", kind=AlertKind.SAFETY, subject=ids[i * 5],
                         sensor=ids[i * 5], domain=reg.sensors[ids[i * 5]].domain,
                         district=reg.sensors[ids[i * 5]].district, level=Level(1 + i % 4), state=AlertState.FIRING,
                         event=EventKind.FIRED, started=now - i, ts=now - i, value=float(i), message=f"alert {i}",
                         owner="dept") for i in range(2000)]
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        store.commit_batch(events)
    accounts = Accounts(db)
    accounts.add_user("viewer", "viewer", PASSWORD, now)
    accounts.close()
    server = ConsoleServer(Console(db, registry=reg), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.start()}"
    try:
        page = new_page("desktop")
        page.goto(base + "/")
        page.fill("input[name=user]", "viewer")
        page.fill("input[name=password]", PASSWORD)
        t0 = time.monotonic()
        page.click("#login-form button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('#board tbody tr').length === 400 && "
                               "document.querySelector('#board-more').textContent.includes('400 / 2000') && "
                               "document.querySelectorAll('#map circle.sensor').length === 10000", timeout=30_000)
        first = time.monotonic() - t0
        assert page.inner_text("#counters").split() == ["红色", "Ⅰ级", "500", "橙色", "Ⅱ级", "500",
                                                        "黄色", "Ⅲ级", "500", "蓝色", "Ⅳ级", "500"]
        t2 = time.monotonic()
        page.click("#board-more button")  # every one of the 2,000 rows
        page.wait_for_function("() => document.querySelectorAll('#board tbody tr').length === 2000", timeout=30_000)
        every = time.monotonic() - t2
        t1 = time.monotonic()
        page.select_option("#filters select[name=district]", "LY")
        page.wait_for_function("() => [...document.querySelectorAll('#board tbody tr')].length > 0 && "
                               "[...document.querySelectorAll('#board tbody tr td:nth-child(3)')]"
                               ".every(td => td.textContent.startsWith('LY'))", timeout=30_000)
        change = time.monotonic() - t1
        shown: Any = page.evaluate("document.querySelectorAll('#board tbody tr').length")
    finally:
        server.stop()
    print(f"\n2,000 open alerts, 10,000 sensors: first render {first:.2f} s (the worst 400 rows), all 2,000 rows "
          f"{every:.2f} s more, filter change {change:.2f} s ({shown} rows after the filter)")
    assert 0 < shown < 2000
    assert first < 10.0 and change < 5.0 and every < 5.0, (first, every, change)
