"""The time-series sink against a real line-protocol server (VictoriaMetrics, DESIGN §4) over loopback:
points land and read back; with the server down they wait on disk and arrive once it is back, each
exactly once, also across a restart of the sink. A refused batch is set aside with the server's reason."""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level, Reading
from lifeline.sinks.influxdb import InfluxDBSettings, InfluxDBSink
from lifeline.sinks.store import AlertStore
from lifeline.testing_tsdb import TsdbError, VictoriaMetrics
from tests.integration.conftest import Broker
from tests.integration.helpers import WALK, Publisher, config, gas, publish_walk, start_thread_runner, wait_for

pytestmark = pytest.mark.integration

T = 1784044800.0  # 2026-07-15 00:00 +08:00


@pytest.fixture()
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    try:
        server = VictoriaMetrics(tmp_path / "vm")
        server.start()
    except TsdbError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def _settings(url: str, spool: Path, **kw: object) -> InfluxDBSettings:
    return InfluxDBSettings(url=url, token="test", spool_dir=str(spool), batch_size=50, flush_interval_s=0.05,
                            timeout_s=2.0, retry_initial_s=0.05, retry_max_s=0.2, close_timeout_s=10.0, **kw)  # type: ignore[arg-type]


def _events(n: int, t0: float = T) -> list[AlertEvent]:
    return [AlertEvent(id=f"a{i:04d}", seq=1, rule="gas.methane.high", kind=AlertKind.SAFETY, subject=f"S{i % 7}",
                       sensor=f"S{i % 7}", domain="gas", district="LY", level=Level(1 + i % 4), state=AlertState.FIRING,
                       event=EventKind.FIRED, started=t0 + i, ts=t0 + i, value=float(i), message="m")
            for i in range(n)]


def _wait(cond: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _alert_samples(vm: VictoriaMetrics, t0: float, t1: float) -> dict[tuple[str, int], float]:
    """(subject, ts ms) -> value of every stored lifeline_alert_value sample, asserting no duplicate."""
    out: dict[tuple[str, int], float] = {}
    for series in vm.export('{__name__="lifeline_alert_value"}', t0 - 1, t1 + 1):
        for ts, v in zip(series["timestamps"], series["values"], strict=True):
            key = (series["metric"]["subject"], int(ts))
            assert key not in out, f"duplicate sample {key}"
            out[key] = float(v)
    return out


def test_readings_and_alerts_land_and_read_back(vm: VictoriaMetrics, tmp_path: Path) -> None:
    sink = InfluxDBSink(_settings(vm.url, tmp_path / "spool"), district_of={"W1": "SS"}.get)  # type: ignore[arg-type]
    sink.write_readings([Reading("W1", "water", "flow_m3h", T, 40.5), Reading("W1", "water", "pressure_mpa", T, 0.31),
                         Reading("W1", "water", "flow_m3h", T + 60, 41.0)])
    events = _events(20)
    sink.write_events(events)
    _wait(lambda: sink.stats()["written"] == 22)
    sink.close()
    (flow,) = vm.export('{__name__="lifeline_reading_flow_m3h"}', T - 1, T + 61)
    assert flow["metric"] == {"__name__": "lifeline_reading_flow_m3h", "sensor": "W1", "domain": "water",
                              "district": "SS"}
    assert flow["values"] == [40.5, 41.0] and flow["timestamps"] == [int(T * 1000), int((T + 60) * 1000)]
    got = _alert_samples(vm, T, T + 20)
    assert got == {(e.subject, int(e.ts * 1000)): e.value for e in events}
    (lvl,) = [s for s in vm.export('{__name__="lifeline_alert_level_num", subject="S0"}', T - 1, T + 21)
              if s["metric"]["level"] == "blue"]
    assert lvl["metric"]["rule"] == "gas.methane.high" and set(lvl["values"]) == {1}
    assert sink.stats()["spool_batches"] == 0 and sink.stats()["errors"] == 0


def test_store_down_spools_then_drains_exactly_once_also_across_a_sink_restart(vm: VictoriaMetrics,
                                                                               tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first, second, third = _events(120), _events(80, T + 1000), _events(60, T + 2000)
    sink = InfluxDBSink(_settings(vm.url, spool))
    sink.write_events(first)
    _wait(lambda: sink.stats()["written"] == 120)
    vm.stop()
    sink.write_events(second)  # the store is down: to disk, in batches, without blocking the caller
    _wait(lambda: sink.stats()["spooled"] == 80)
    stats = sink.stats()
    assert stats["errors"] >= 1 and stats["spool_batches"] >= 2 and stats["spool_bytes"] > 0
    sink.close()  # stopped while the store is down: the spool stays on disk
    assert any(spool.glob("batch-*.lp"))
    vm.start()
    again = InfluxDBSink(_settings(vm.url, spool))  # a new process would find the same files
    again.write_events(third)
    _wait(lambda: again.stats()["spool_batches"] == 0 and again.stats()["written"] == 80 + 60)
    again.close()
    got = _alert_samples(vm, T, T + 2100)  # asserts each sample exactly once
    assert got == {(e.subject, int(e.ts * 1000)): e.value for e in first + second + third}
    assert not any(spool.glob("batch-*.lp"))


def test_a_full_spool_drops_the_oldest_batch_and_counts_it(tmp_path: Path) -> None:
    """No server at all (a closed loopback port): the spool is bounded, the oldest batch goes first."""
    from lifeline.testing_broker import free_port

    sink = InfluxDBSink(_settings(f"http://127.0.0.1:{free_port()}", tmp_path / "spool", max_spool_bytes=20_000))
    for i in range(6):
        sink.write_events(_events(50, T + 100 * i))
    _wait(lambda: sink.stats()["spooled"] == 300)
    sink.close()
    s = sink.stats()
    assert s["spool_bytes"] <= 20_000 and s["dropped"] > 0 and s["dropped"] % 50 == 0
    assert s["dropped"] + sum(p.read_text().count("\n") for p in (tmp_path / "spool").glob("batch-*.lp")) == 300


def test_the_writer_survives_a_disk_that_refuses_the_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is down (a closed port) and the disk refuses one spool write. A full disk cannot be made here
    on demand, so the spool's ``put`` raises ENOSPC once (a stand-in, said so): that batch is counted as lost
    with an error logged, and the writer thread goes on spooling the next ones - it must not die and leave the
    engine blocked on a full queue."""
    import errno

    from lifeline.sinks import influxdb
    from lifeline.testing_broker import free_port

    real_put = influxdb._Spool.put
    calls = {"n": 0}

    def put_once_refused(self: influxdb._Spool, lines: list[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_put(self, lines)

    monkeypatch.setattr(influxdb._Spool, "put", put_once_refused)
    sink = InfluxDBSink(_settings(f"http://127.0.0.1:{free_port()}", tmp_path / "spool"))
    sink.write_events(_events(50))
    _wait(lambda: sink.stats()["lost"] == 50)
    sink.write_events(_events(50, T + 1000))
    _wait(lambda: sink.stats()["spooled"] == 50)
    assert sink._thread.is_alive()  # the point of the test
    sink.close()
    assert sink.stats()["lost"] == 50


class _Refuse(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"code":"invalid","message":"unable to parse \'x\': missing fields"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_refused_batch_is_set_aside_with_the_reason_not_retried(tmp_path: Path) -> None:
    """InfluxDB answers 400 to a malformed line; VictoriaMetrics skips such lines silently, so a stand-in HTTP
    server on loopback gives the 400 here (a stand-in, not a mock of the client: real HTTP over a real socket)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = InfluxDBSink(_settings(f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "spool"))
        sink.write_events(_events(10))
        _wait(lambda: sink.stats()["rejected"] == 10)
        sink.close()
    finally:
        server.shutdown()
    (kept,) = (tmp_path / "spool" / "rejected").glob("rejected-*.lp")
    text = kept.read_text()
    assert text.startswith("# HTTP 400") and "missing fields" in text and text.count("\nlifeline_alert,") == 10
    assert sink.stats()["spool_batches"] == 0 and sink.stats()["errors"] == 0


def test_runner_writes_readings_and_alert_events_after_the_store(mosquitto: Broker, vm: VictoriaMetrics,
                                                                  tmp_path: Path) -> None:
    """`lifeline run --influxdb`: readings over real MQTT walk an alert through its levels; the alert store has
    every transition, and the time-series store has the same transitions (ids as fields, levels as tags) and
    every reading, each once."""
    settings = _settings(vm.url, tmp_path / "spool")
    cfg = config(mosquitto.port, tmp_path, client_id="it-influx", influxdb=settings)
    runner = start_thread_runner(cfg)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        t0 = publish_walk(pub)
        wait_for(lambda: runner.runner.tsdb is not None and runner.runner.tsdb.stats()["written"] >= 11, 20,
                 "6 readings and 5 alert events written")
    finally:
        pub.close()
        runner.stop()
    with AlertStore(tmp_path / "lifeline.db") as store:
        stored = sorted((e for e in store.events() if e.sensor == "gas-0001"), key=lambda e: e.seq)
    assert [e.event.value for e in stored] == ["fired", "escalated", "escalated", "deescalated", "resolved"]
    (reading,) = vm.export('{__name__="lifeline_reading_ch4_lel", sensor="gas-0001"}', t0 - 1, t0 + 10)
    assert reading["values"] == [float(v) for v in WALK] and reading["metric"]["domain"] == "gas"
    seen = {(s["metric"]["event"], s["metric"]["level"], int(ts)): v
            for s in vm.export('{__name__="lifeline_alert_seq", sensor="gas-0001"}', t0 - 1, t0 + 10)
            for ts, v in zip(s["timestamps"], s["values"], strict=True)}
    assert seen == {(e.event.value, e.level.colour, round(e.ts * 1000)): float(e.seq) for e in stored}


def test_runner_across_a_store_outage_writes_every_point_exactly_once(mosquitto: Broker, vm: VictoriaMetrics,
                                                                      tmp_path: Path) -> None:
    """The runner, not only the sink: the store stops mid-stream and comes back. The runner keeps handling
    messages while it is down (nothing waits on the store), the points go to the spool, and once the store is
    back every reading and every alert event of before, during and after the outage is there exactly once."""
    cfg = config(mosquitto.port, tmp_path, client_id="it-influx-outage", influxdb=_settings(vm.url, tmp_path / "spool"))
    runner = start_thread_runner(cfg)
    tsdb = runner.runner.tsdb
    assert tsdb is not None
    pub = Publisher(mosquitto.host, mosquitto.port)
    base = float(int(time.time()) - 300)
    sent: dict[tuple[str, int], float] = {}

    def quiet_readings(k0: int, n: int) -> None:
        """n readings below every threshold on gas-0002..gas-0011, one per second of event time from base + k0."""
        for k in range(k0, k0 + n):
            sensor, value = 2 + k % 10, round(1.0 + (k % 7) * 0.25, 2)
            topic, payload = gas(sensor, base + k, value)
            pub.publish(topic, payload)
            sent[(f"gas-{sensor:04d}", int((base + k) * 1000))] = value
        pub.wait_acked()

    try:
        quiet_readings(0, 40)
        wait_for(lambda: tsdb.stats()["written"] == 40, 20, "40 readings written with the store up")
        vm.stop()
        t0 = publish_walk(pub)  # 6 readings of gas-0001 and the 5 transitions of its alert, all while down
        sent.update({("gas-0001", int((t0 + i) * 1000)): float(v) for i, v in enumerate(WALK)})
        quiet_readings(40, 40)
        wait_for(lambda: runner.runner.counts["messages"] == 86 and tsdb.stats()["spooled"] == 46 + 5, 20,
                 "86 messages handled and 51 points spooled while the store is down")
        assert tsdb.stats()["written"] == 40 and tsdb.stats()["spool_batches"] >= 1
        vm.start()
        quiet_readings(80, 40)
        wait_for(lambda: tsdb.stats()["spool_batches"] == 0 and tsdb.stats()["written"] == 40 + 51 + 40, 20,
                 "the spool drained and every point written once the store is back")
    finally:
        pub.close()
        runner.stop()
    stored: dict[tuple[str, int], float] = {}
    for series in vm.export('{__name__="lifeline_reading_ch4_lel"}', base - 1000, base + 1000):
        for ts, v in zip(series["timestamps"], series["values"], strict=True):
            key = (series["metric"]["sensor"], int(ts))
            assert key not in stored, f"reading stored twice: {key}"
            stored[key] = float(v)
    assert stored == sent  # 126 readings, each exactly once, with its value
    with AlertStore(tmp_path / "lifeline.db") as store:
        events = store.events()
    assert [e.event.value for e in sorted(events, key=lambda e: e.seq)] == ["fired", "escalated", "escalated",
                                                                           "deescalated", "resolved"]
    seen = Counter((s["metric"]["event"], s["metric"]["level"], int(ts))
                   for s in vm.export('{__name__="lifeline_alert_seq", sensor="gas-0001"}', t0 - 1, t0 + 10)
                   for ts in s["timestamps"])
    assert seen == Counter((e.event.value, e.level.colour, round(e.ts * 1000)) for e in events)
