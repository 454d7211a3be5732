"""``lifeline deliver``: the alert events from Kafka into the alert store, the time-series store, the
notification outbox and the console: what ``lifeline run`` does after its engine, for the Kafka workers.

A Kafka consumer (group ``--group``, offsets committed by hand) takes batches of ``alerts`` records:

1. records it cannot read become dead-letter counts in the store (with a log line), never a crash;
2. an alert event the store already holds, the same (id, seq), is dropped: a worker that took a partition
   over re-sends the events since that partition's last checkpoint, and each transition is stored once;
3. the new events go through noise control (routing, flapping, bounces, inhibition, silences: the runner's
   ``Policy``), then, in ONE SQLite transaction, into the store with their notifications (the outbox) and the
   policy's state; only then are the Kafka offsets committed, and only then are the events written to the
   time-series store. The dispatcher sends the outbox; every alert is stored before it is notified.

The policy's clock is the highest watermark the workers report (``lifeline/kafka/records.py``), so a held
"resolved" is released even when no alert changes. Order across the workers' partitions is Kafka's, so
noise control's decisions may differ in detail from ``lifeline backtest --routes`` over the same input (the
alerts themselves do not).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from lifeline.alerting.escalation import Escalator
from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.policy import Decisions, Policy
from lifeline.alerting.routing import Routing, labels_of, positions_of
from lifeline.clock import Clock, SystemClock
from lifeline.console.app import Console
from lifeline.console.server import ConsoleServer
from lifeline.errors import LifelineError
from lifeline.kafka.records import parse_alert_record
from lifeline.model import AlertEvent
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet
from lifeline.sinks.influxdb import InfluxDBSettings, InfluxDBSink, district_lookup
from lifeline.sinks.store import AlertStore

log = logging.getLogger("lifeline.deliver")


class DeliverError(LifelineError):
    """Kafka unreachable at start, or it failed for good."""


@dataclass(frozen=True)
class DeliverSettings:
    bootstrap: str
    db_path: str = "var/lifeline.db"
    group: str = "lifeline-deliver"
    alerts_topic: str = "alerts"
    batch: int = 1000
    poll_s: float = 0.5
    connect_timeout_s: float = 10.0
    status_interval_s: float = 5.0
    notify_retry_max_s: float = 30.0
    console_addr: tuple[str, int] | None = None
    influxdb: InfluxDBSettings | None = None
    kafka_config: Mapping[str, str] = field(default_factory=dict)  # more librdkafka consumer settings


class Deliverer:
    def __init__(self, settings: DeliverSettings, rules: RuleSet, registry: Registry, routing: Routing | None,
                 *, clock: Clock | None = None, status: TextIO | None = None) -> None:
        self.s = settings
        self.rules, self.registry, self.routing = rules, registry, routing
        self.clock = clock or SystemClock()
        self.status_out = status if status is not None else sys.stderr
        self.stop_event = threading.Event()
        self.counts: Counter[str] = Counter()
        self._status_at = 0.0
        self._status_counts: Counter[str] = Counter()
        self.watermark: float | None = None
        labels = labels_of(registry)
        self.policy = None if routing is None else Policy(routing, labels=labels, position=positions_of(registry))
        self._labels = labels
        self._silences_version = -1
        self.store: AlertStore | None = None
        self.dispatcher: Dispatcher | None = None
        self.console: ConsoleServer | None = None
        self.tsdb: InfluxDBSink | None = None
        self.consumer: Any = None

    # ---- start / stop -----------------------------------------------------------------------
    def start(self) -> None:
        from confluent_kafka import Consumer, KafkaException

        s = self.s
        self.store = AlertStore(s.db_path)
        cp = self.store.checkpoint()
        if self.policy is not None and cp is not None:
            self.policy.restore(cp.snapshot.get("notify"))
            wm = cp.snapshot.get("watermark")
            self.watermark = float(wm) if isinstance(wm, int | float) else None
        if s.influxdb is not None:
            self.tsdb = InfluxDBSink(s.influxdb, district_of=district_lookup(self.registry))
        if s.console_addr is not None:
            self.console = ConsoleServer(Console(s.db_path, registry=self.registry, rules=self.rules),
                                         *s.console_addr)
            port = self.console.start()
            log.info("console on http://%s:%d/", s.console_addr[0], port)
        self.consumer = Consumer({
            "bootstrap.servers": s.bootstrap, "group.id": s.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "client.id": "lifeline-deliver",
            "logger": logging.getLogger("lifeline.kafka.librdkafka"), **s.kafka_config})
        try:
            meta = self.consumer.list_topics(s.alerts_topic, timeout=s.connect_timeout_s)
        except KafkaException as exc:
            raise DeliverError(f"cannot reach Kafka at {s.bootstrap} within {s.connect_timeout_s:g} s: "
                               f"{exc.args[0].str()}") from None
        err = meta.topics[s.alerts_topic].error if s.alerts_topic in meta.topics else None
        if err is not None:
            raise DeliverError(f"Kafka at {s.bootstrap}: topic {s.alerts_topic!r}: {err.str()}")
        self.consumer.subscribe([s.alerts_topic])
        if self.routing is not None:
            escalator = Escalator(self.routing, labels=self._labels, clock=self.clock)
            self.dispatcher = Dispatcher(s.db_path, self.routing.notifiers(), clock=self.clock, escalator=escalator,
                                         retry_max_s=s.notify_retry_max_s)
            self.dispatcher.start()

    def close(self) -> None:
        try:
            if self.consumer is not None:
                self.consumer.close()
        finally:
            if self.console is not None:
                self.console.stop()
            if self.dispatcher is not None:
                self.dispatcher.stop()
            if self.tsdb is not None:
                self.tsdb.close()
            if self.store is not None:
                self.store.close()
            self._maybe_status(force=True)

    def run(self, *, install_signals: bool = True) -> int:
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        self._status_at = self.clock.monotonic()
        try:
            while not self.stop_event.is_set():
                self.step()
                self._maybe_status()
        finally:
            self.close()
        return 0

    # ---- one batch ------------------------------------------------------------------------------
    def step(self) -> int:
        """Take one batch from Kafka and store it; returns how many new alert events it stored."""
        msgs = self.consumer.consume(self.s.batch, self.s.poll_s)
        if not msgs:
            return 0
        events: list[AlertEvent] = []
        bad: Counter[str] = Counter()
        self.counts["records"] += len(msgs)
        for m in msgs:
            if m.error() is not None:
                log.warning("Kafka: %s", m.error().str())
                continue
            try:
                got = parse_alert_record(m.key(), m.value() or b"")
            except ValueError as exc:
                bad["bad_alert_record"] += 1
                log.warning("alerts topic partition %s offset %s: %s; counted as a dead letter", m.partition(),
                            m.offset(), exc)
                continue
            if isinstance(got, float):
                self.watermark = got if self.watermark is None else max(self.watermark, got)
            else:
                events.append(got)
        new = self._new(events)
        self._commit(new, bad)
        self.consumer.commit(asynchronous=False)  # after the store: a crash before it redelivers, never loses
        self._after(new)
        return len(new)

    def _new(self, events: Sequence[AlertEvent]) -> list[AlertEvent]:
        """The events the store does not hold yet, each once, in the order they came."""
        assert self.store is not None
        seen = self.store.stored([(e.id, e.seq) for e in events])
        out = []
        for e in events:
            k = (e.id, e.seq)
            if k in seen:
                self.counts["redelivered"] += 1
                continue
            seen.add(k)
            out.append(e)
        return out

    def _commit(self, events: Sequence[AlertEvent], bad: Counter[str]) -> None:
        assert self.store is not None
        decided = self._decide(events)
        snap: dict[str, Any] | None = None
        if self.policy is not None:
            snap = {"notify": self.policy.snapshot(), "watermark": self.watermark}
        self.store.commit_batch(events, dead_counts=bad, snapshot=snap, now=self.clock.now(),
                                notifications=decided.notifications, marks=decided.marks)
        self.counts["events"] += len(events)
        for reason, n in bad.items():
            self.counts["dead." + reason] += n

    def _decide(self, events: Sequence[AlertEvent]) -> Decisions:
        if self.policy is None:
            return Decisions()
        assert self.store is not None
        now = self.clock.now()
        version = self.store.silences_version()
        if version != self._silences_version:
            self.policy.set_silences(self.store.silences(include_expired=True))
            self._silences_version = version
        return self.policy.decide(events, now, self.watermark)

    def _after(self, events: Sequence[AlertEvent]) -> None:
        if self.tsdb is not None and events:
            try:
                self.tsdb.write_events(events)
            except Exception:
                log.exception("queueing %d events for the time-series store failed (they are in the store)",
                              len(events))
                self.counts["tsdb_failures"] += 1

    def _maybe_status(self, force: bool = False) -> None:
        now = self.clock.monotonic()
        dt = now - self._status_at
        if not force and dt < self.s.status_interval_s:
            return
        c, prev = self.counts, self._status_counts
        rate = (c["events"] - prev["events"]) / dt if dt > 0 else 0.0
        dead = ", ".join(f"{k[5:]} {v}" for k, v in sorted(c.items()) if k.startswith("dead.")) or "none"
        print(f"lifeline deliver: {c['events']} alert events stored ({rate:,.1f}/s), {c['redelivered']} "
              f"redelivered dropped, dead letters: {dead}", file=self.status_out, flush=True)
        self._status_at = now
        self._status_counts = Counter(c)

