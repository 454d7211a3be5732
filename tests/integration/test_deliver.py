"""`lifeline deliver`'s consumer over a real Kafka-protocol broker (librdkafka's mock cluster): alert events
re-sent by a worker after a takeover are stored and notified once, an unreadable record becomes a dead-letter
count and the rest goes on, and a restart resumes from the committed offsets without storing anything twice."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from confluent_kafka import Producer

from lifeline.alerting.routing import load_routing
from lifeline.kafka.deliver import Deliverer, DeliverSettings
from lifeline.kafka.records import alert_value, watermark_record
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.sinks.store import AlertStore
from lifeline.testing import registry_of, sensors
from lifeline.testing_kafka import MockKafka
from lifeline.testing_tsdb import VictoriaMetrics
from tests.integration.helpers import city, wait_for
from tests.integration.test_influxdb_sink import _alert_samples, _settings, vm  # noqa: F401 - vm: the fixture

T0 = 1_764_403_200.0


def event(n: int, seq: int, level: Level = Level.RED) -> AlertEvent:
    return AlertEvent(id=f"A{n:03d}", seq=seq, rule="gas.methane.high", kind=AlertKind.SAFETY, subject=f"gas-{n:04d}",
                      sensor=f"gas-{n:04d}", domain="gas", district="Luyang", level=level,
                      state=AlertState.FIRING if seq == 1 else AlertState.RESOLVED,
                      event=EventKind.FIRED if seq == 1 else EventKind.RESOLVED, started=T0 + n, ts=T0 + n + seq,
                      value=60.0, message=f"alert {n}", owner="gas_company")


def produce(kafka: MockKafka, records: list[tuple[bytes | None, bytes]]) -> None:
    p = Producer({"bootstrap.servers": kafka.bootstrap, "log_level": 3})
    for key, value in records:
        p.produce("alerts", value, key)
    assert p.flush(10) == 0


def drain(d: Deliverer, records: int, timeout: float = 30.0) -> None:
    """Step until ``records`` records were read (the group join takes seconds with the mock), then until three
    polls in a row bring nothing more."""
    deadline = time.monotonic() + timeout
    while d.counts["records"] < records:
        assert time.monotonic() < deadline, f"read {d.counts['records']} of {records} records"
        d.step()
    quiet = 0
    while quiet < 3:
        quiet = quiet + 1 if d.step() == 0 else 0


def test_redelivered_events_are_stored_and_notified_once_and_bad_records_are_counted(
        kafka: MockKafka, vm: VictoriaMetrics, tmp_path: Path) -> None:  # noqa: F811 - the imported fixture
    notes = tmp_path / "notes.jsonl"
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"receivers:\n  - {{name: duty, log: {{path: {notes}}}}}\nroute:\n  receiver: duty\n")
    first = [event(n, 1) for n in range(10)]
    again = first[3:7]  # a worker took a partition over and re-sent what followed its last checkpoint
    produce(kafka, [(e.id.encode(), alert_value(e)) for e in first + again]
            + [(b"A999", b"{not json"), watermark_record(0, T0 + 100)])
    rules, _ = city()
    db = tmp_path / "lifeline.db"
    # the mock completes a rebalance only when its timeout runs out (DESIGN §4): short ones for the restart
    settings = DeliverSettings(bootstrap=kafka.bootstrap, db_path=str(db), poll_s=0.3,
                               kafka_config={"session.timeout.ms": "6000", "max.poll.interval.ms": "8000"},
                               influxdb=_settings(vm.url, tmp_path / "spool"))
    d = Deliverer(settings, rules, registry_of(sensors("gas", 10)), load_routing(routes))
    d.start()
    try:
        drain(d, 16)
        assert d.counts["events"] == 10 and d.counts["redelivered"] == 4
        assert d.counts["dead.bad_alert_record"] == 1 and d.watermark == T0 + 100
    finally:
        d.close()
    # and into the time-series store, each transition once (VictoriaMetrics, as InfluxDB's line protocol)
    wait_for(lambda: len(_alert_samples(vm, T0, T0 + 20)) >= 10, 20, "10 alert points in the time-series store")
    assert sorted(_alert_samples(vm, T0, T0 + 20)) == sorted((f"gas-{n:04d}", int((T0 + n + 1) * 1000))
                                                             for n in range(10))
    with AlertStore(db) as store:
        assert len(store.stored([(e.id, e.seq) for e in first])) == 10
        assert store.deadletter_counts() == {"bad_alert_record": 1}
    # a restart: the committed offsets hold, so only what came after is read; a late duplicate is dropped again
    produce(kafka, [(e.id.encode(), alert_value(e)) for e in [event(2, 1), event(2, 2), event(11, 1)]])
    d2 = Deliverer(settings, rules, registry_of(sensors("gas", 12)), load_routing(routes))
    d2.start()
    try:
        drain(d2, 3)
        assert d2.counts["events"] == 2 and d2.counts["redelivered"] == 1
        # the dispatcher sends what the first run stored and this one added: 11 alerts fired, each told once
        wait_for(lambda: len(fired(notes)) >= 11, 20, "11 fired notifications in the log")
    finally:
        d2.close()
    with AlertStore(db) as store:
        row = store.get("A002")
        assert row is not None and row.state == "resolved"
    assert sorted(fired(notes)) == sorted([f"A{n:03d}" for n in range(10)] + ["A011"])
    keys = [orjson.loads(x)["key"] for x in notes.read_bytes().splitlines()]
    assert len(keys) == len(set(keys))


def fired(notes: Path) -> list[str]:
    if not notes.exists():
        return []
    return [d["alert"]["id"] for d in map(orjson.loads, notes.read_bytes().splitlines())
            if d["alert"]["event"] == "fired"]
