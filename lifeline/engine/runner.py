"""The live shell around the pure engine: MQTT in, store + journal + MQTT out.

One batch at a time, in this order (the order is the guarantee):

1. take up to N messages from the MQTT source (QoS 1, persistent session, not yet acknowledged; by
   default paho's loop runs in a child process, ``lifeline.sources.mqtt_process``, so it does not compete
   with steps 2-4 for the interpreter lock);
2. decode them (receive time from the injected Clock) and run ``Engine.process``;
3. append the accepted inputs to the journal (one unbuffered write): the journal is the write-ahead log;
4. in ONE SQLite transaction: the batch's alert events, dead-letter counts and the journal offset the
   batch reaches (the *committed offset*); at most every ``checkpoint_interval_s`` (and at a clean
   stop) the same transaction also carries the engine checkpoint (snapshot + its journal offset).
   Without a journal every batch carries the checkpoint;
5. only then publish alerts (``lifeline/alerts/<domain>/<sensor>``) and dead letters
   (``lifeline/deadletter``), and write ``--alerts-out``;
6. acknowledge the batch's messages.

A crash anywhere before 6 means the broker redelivers the batch. On start the engine is restored from
the checkpoint and the journal between the checkpoint's offset and the committed offset is replayed
through it (recomputing the state of the batches committed since the checkpoint); whatever the journal
holds past the committed offset belongs to a batch that was never committed nor acknowledged, so it is
cut off and the broker redelivers it. Events re-derived by the replay were committed with their batch:
they are not published again (``INSERT OR IGNORE`` keeps the store free of duplicates even if one were
missing). Redelivered inputs the engine had already consumed are dead-lettered (``late`` /
``duplicate_seq``) and journaled as such, so a backtest of the journal reproduces the store. Nothing in
one bad batch may stop the runner.

Why not a checkpoint per batch: serialising the full engine state cost more than everything else a
batch does (``benchmarks/e2e_throughput.py``); replaying a few seconds of journal at engine speed on
restart is cheap.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from lifeline.alerting.escalation import Escalator
from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.policy import Decisions, Policy
from lifeline.alerting.routing import Routing, labels_of, positions_of
from lifeline.clock import Clock, SystemClock
from lifeline.codec import Limits, decode, decode_line
from lifeline.console.app import Console
from lifeline.console.recent import RecentReadings
from lifeline.console.server import ConsoleServer
from lifeline.engine.processor import Engine, EngineOutput
from lifeline.metrics import RunnerMetrics
from lifeline.model import AlertEvent, DeadLetter, Reading
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet
from lifeline.sinks.downsample import Downsampler
from lifeline.sinks.influxdb import InfluxDBSettings, InfluxDBSink, district_lookup
from lifeline.sinks.jsonl import JsonlSink
from lifeline.sinks.store import AlertStore
from lifeline.sources.mqtt import ALERTS_PREFIX, DEADLETTER_TOPIC, DEFAULT_PREFIX, Message, MqttSettings, MqttSource
from lifeline.sources.mqtt_process import ProcessMqttSource
from lifeline.sources.replay import JournalWriter, reading_lines, tick_line

log = logging.getLogger(__name__)

_EXCERPT = 120


@dataclass(slots=True)
class RunConfig:
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    client_id: str = "lifeline-engine"
    prefix: str = DEFAULT_PREFIX
    rules_paths: tuple[str, ...] = ("rules",)
    registry_path: str | None = None
    districts_path: str | None = None
    db_path: str = "var/lifeline.db"
    journal_path: str | None = "var/journal.jsonl"
    alerts_out: str | None = None
    batch_size: int = 1000
    batch_linger_s: float = 0.0  # extra wait for a batch to fill (bounds the added latency)
    idle_wait_s: float = 0.2  # how long one loop turn waits for the first message
    tick_interval_s: float | None = None  # wall-clock ticks when idle (None: only data moves time)
    status_interval_s: float = 5.0
    checkpoint_interval_s: float = 5.0  # full engine snapshot at most this often (journal replay covers the rest)
    publish: bool = True  # publish alerts and dead letters over MQTT
    limits: Limits = field(default_factory=Limits)
    connect_timeout_s: float | None = None  # None: keep retrying in the background
    mqtt_process: bool = True  # paho's network loop in a child process (lifeline.sources.mqtt_process)
    influxdb: InfluxDBSettings | None = None  # the time-series store (readings and alert events), or none
    influxdb_readings: bool = True  # write the readings too, not only the alert events
    influxdb_downsample: Mapping[str, float] = field(default_factory=dict)  # lifeline/sinks/downsample.py
    metrics_addr: tuple[str, int] | None = None  # serve Prometheus /metrics here (port 0: any free one)
    console_addr: tuple[str, int] | None = None  # serve the operator console here (lifeline/console/)
    routing: Routing | None = None  # who hears which alert transition (lifeline/alerting/routing.py); None: nobody
    notify_retry_max_s: float = 300.0  # the outbox's longest wait between two attempts (Dispatcher.retry_max_s)


@dataclass(slots=True)
class _Decoded:
    msg: Message
    readings: list[Reading]
    dead: list[DeadLetter]


class Runner:
    """``start`` (restore, connect), ``run`` (loop until stopped) or ``step`` (one batch), ``close``."""

    def __init__(self, config: RunConfig, rules: RuleSet, registry: Registry, *, clock: Clock | None = None,
                 source: MqttSource | None = None, status: TextIO | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.registry = registry
        self.engine = Engine(rules, registry)
        self.rules = rules
        settings = MqttSettings(host=config.broker_host, port=config.broker_port, client_id=config.client_id,
                                prefix=config.prefix)
        self.source: MqttSource | ProcessMqttSource
        if source is not None:
            self.source = source
        elif config.mqtt_process and clock is None:  # receive times from the child's clock: the system's
            self.source = ProcessMqttSource(settings)
        else:
            self.source = MqttSource(settings, clock=self.clock)
        self.status_out = status if status is not None else sys.stderr
        self.counts: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self.store: AlertStore | None = None
        self.journal: JournalWriter | None = None
        self.alerts_out: JsonlSink | None = None
        self.tsdb: InfluxDBSink | None = None
        self.metrics: RunnerMetrics | None = None
        self.dispatcher: Dispatcher | None = None
        self._labels = labels_of(registry)
        self.policy = None if config.routing is None else Policy(
            config.routing, labels=self._labels, position=positions_of(registry))
        self._silences_version = -1
        self._downsample = Downsampler(config.influxdb_downsample) if config.influxdb_downsample else None
        self.metrics_port: int | None = None  # the port /metrics is served on, once started
        self.console: ConsoleServer | None = None
        self.recent: RecentReadings | None = None  # the console's chart data (with --console)
        self._snap: dict[str, Any] = {}  # the last stored checkpoint ...
        self._snap_offset = 0  # ... and the journal offset it reflects
        self._committed = 0  # journal offset of the last committed batch
        self._checkpoint_at = 0.0
        self._pending: list[Message] = []
        self._last_input = 0.0
        self._last_tick = 0.0
        self._status_at = 0.0
        self._status_counts: Counter[str] = Counter()

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        self.store = AlertStore(cfg.db_path)
        self.journal = JournalWriter(cfg.journal_path) if cfg.journal_path else None
        self.alerts_out = JsonlSink(cfg.alerts_out) if cfg.alerts_out else None
        if cfg.influxdb is not None:
            self.tsdb = InfluxDBSink(cfg.influxdb, district_of=district_lookup(self.registry))
        if cfg.metrics_addr is not None:
            self.metrics = RunnerMetrics(self)
            self.metrics_port = self.metrics.serve(*cfg.metrics_addr)
            log.info("metrics on http://%s:%d/metrics", cfg.metrics_addr[0], self.metrics_port)
        if cfg.console_addr is not None:
            self.recent = RecentReadings()
            self.console = ConsoleServer(Console(cfg.db_path, registry=self.registry, rules=self.rules,
                                                 recent=self.recent), *cfg.console_addr)
            port = self.console.start()
            log.info("console on http://%s:%d/", cfg.console_addr[0], port)
        self._restore()
        if self.recent is not None and self.journal is not None:  # the chart's last hours survive a restart
            threading.Thread(target=self._backfill_recent, args=(self.recent, self.journal.path, self.journal.offset),
                             name="console-backfill", daemon=True).start()
        if cfg.routing is not None:  # after the restore: a replay may have queued notifications
            escalator = Escalator(cfg.routing, labels=self._labels, clock=self.clock)
            self.dispatcher = Dispatcher(cfg.db_path, cfg.routing.notifiers(), clock=self.clock, escalator=escalator,
                                         retry_max_s=cfg.notify_retry_max_s)
            self.dispatcher.start()
        self.source.start(wait_s=cfg.connect_timeout_s)
        now = self.clock.monotonic()
        self._last_input = self._last_tick = self._status_at = now

    @staticmethod
    def _backfill_recent(recent: RecentReadings, path: Path, end: int) -> None:
        t0 = time.perf_counter()
        try:
            n = recent.backfill(path, end=end)
        except OSError as e:
            log.warning("console: could not read the journal's tail for the charts: %s", e)
            return
        log.info("console: %d readings from the journal's tail in %.1f s", n, time.perf_counter() - t0)

    def _restore(self) -> None:
        assert self.store is not None
        cp = self.store.checkpoint()
        offset = self.journal.offset if self.journal else 0
        self._checkpoint_at = self.clock.monotonic()
        if cp is None:
            # A baseline checkpoint: a crash before the first batch commits cuts the journal back here.
            self._checkpoint(offset)
            return
        self._snap, self._snap_offset = cp.snapshot, cp.journal_offset
        committed = max(self.store.committed_offset() or 0, cp.journal_offset)
        if self.journal is None:
            self._committed = committed
            self._restore_state(self._snap)
            return
        if offset > committed:
            log.info("journal %s: cutting %d bytes written after the last commit (they will be redelivered)",
                     self.journal.path, offset - committed)
            self.journal.truncate(committed)
        elif offset < committed:
            log.warning("journal %s is %d bytes, shorter than the last commit's offset %d: it lost inputs "
                        "(moved or restored from a backup?); appending from here", self.journal.path, offset,
                        committed)
            if offset < cp.journal_offset:
                self._snap_offset = offset  # the checkpoint's state, continued from the journal's end
            committed = offset
        self._committed = committed
        replayed = self._rewind()
        if replayed or committed != cp.journal_offset:
            self._checkpoint(committed)  # the next start need not replay this again

    def _rewind(self) -> int:
        """Put the engine in the state of the last commit: the checkpoint, then the journal from the
        checkpoint's offset to the committed offset replayed through it. Returns the lines replayed."""
        self._restore_state(self._snap)
        if self.journal is None or self._committed <= self._snap_offset:
            return 0
        start, end = self._snap_offset, self._committed
        with open(self.journal.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        if len(data) != end - start:
            raise OSError(f"journal {self.journal.path}: {len(data)} bytes at offset {start}, "
                          f"{end - start} expected")
        lines = events = 0
        batch: list[Reading] = []
        derived: list[AlertEvent] = []
        for line in data.splitlines():
            if not line.strip():
                continue
            lines += 1
            decoded, tick = decode_line(line, registry=self.registry, limits=self.config.limits,
                                        where=f"{self.journal.path} (replay from {start}): ")
            if decoded.dead:  # the journal holds only inputs the engine accepted before
                log.warning("journal %s: replay: %s", self.journal.path, decoded.dead[0].detail)
            if tick is not None:
                if batch:
                    derived.extend(self.engine.process(batch).events)
                    batch = []
                derived.extend(self.engine.tick(tick).events)
            else:
                batch.extend(decoded.readings)
                if len(batch) >= 5000:  # cut between lines (payloads), as the live runner does
                    derived.extend(self.engine.process(batch).events)
                    batch = []
        if batch:
            derived.extend(self.engine.process(batch).events)
        events = len(derived)
        decided = self._decide(derived)
        missing = self.store.commit_batch(derived, notifications=decided.notifications, marks=decided.marks) \
            if (derived or decided.notifications) and self.store else 0
        if missing:
            log.warning("journal replay re-derived %d alert events missing from the store; stored them now "
                        "(not published)", missing)
        log.info("journal %s: replayed %d lines (bytes %d..%d) since the checkpoint: %d alert events re-derived",
                 self.journal.path, lines, start, end, events)
        return lines

    def _checkpoint(self, offset: int) -> None:
        """Store a checkpoint of the engine's current state, which reflects the journal up to ``offset``."""
        assert self.store is not None
        snap = self._state()
        self.store.commit_batch([], snapshot=snap, journal_offset=offset, now=self.clock.now())
        self._snap, self._snap_offset, self._committed = snap, offset, offset
        self._checkpoint_at = self.clock.monotonic()

    def close(self) -> None:
        try:
            self.source.stop()
            if self.store is not None and self._committed != self._snap_offset:
                self._checkpoint(self._committed)  # a clean stop restarts without replay
        finally:
            if self.console is not None:
                self.console.stop()
            if self.dispatcher:
                self.dispatcher.stop()  # what it has not sent stays in the outbox for the next start
            if self.metrics:
                self.metrics.close()
            if self.tsdb:
                self.tsdb.close()  # what the store has not taken yet waits in its spool
            if self.alerts_out:
                self.alerts_out.close()
            if self.journal:
                self.journal.close()
            if self.store:
                self.store.close()

    def run(self, *, install_signals: bool = True) -> int:
        """Loop until SIGINT/SIGTERM (or ``stop_event``); finish the batch in hand, then disconnect."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)
        self.start()
        try:
            while not self.stop_event.is_set():
                self.step()
                self._maybe_status()
        finally:
            self._maybe_status(force=True)
            self.close()
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.info("signal %d: finishing the current batch, then stopping", signum)
        self.stop_event.set()

    # ---- one turn -------------------------------------------------------------------------
    def step(self) -> int:
        """Handle one batch (or an idle tick); return the number of messages handled."""
        cfg = self.config
        msgs = self._pending or self.source.get_batch(cfg.batch_size, cfg.idle_wait_s, cfg.batch_linger_s)
        if msgs:
            self._pending = msgs
            if self._guarded(self._handle, msgs):
                self._pending = []
                self._last_input = self.clock.monotonic()
                return len(msgs)
            self.stop_event.wait(1.0)  # the store or journal failed: retry the same batch shortly
            return 0
        if cfg.tick_interval_s is not None:
            mono = self.clock.monotonic()
            if mono - max(self._last_input, self._last_tick) >= cfg.tick_interval_s:
                self._last_tick = mono
                self._guarded(self._tick, [])
        return 0

    def _guarded(self, fn: Any, msgs: list[Message]) -> bool:
        try:
            fn(msgs)
            return True
        except Exception:
            log.exception("batch of %d messages failed before commit; will retry it", len(msgs))
            self.counts["batch_failures"] += 1
            return False

    def _handle(self, msgs: list[Message]) -> None:
        t0 = time.perf_counter()
        decoded = [self._decode(m) for m in msgs]
        t1 = time.perf_counter()
        out, fed, extra = self._process(decoded)
        t2 = time.perf_counter()
        dead = [d for x in decoded for d in x.dead] + extra + out.dead
        self._commit(out.events, dead, reading_lines(fed))
        self.counts["messages"] += len(msgs)
        self.counts["readings"] += len(fed)
        self._deliver(out.events, dead, fed)
        self.source.ack(msgs)
        if self.metrics is not None:
            self.metrics.engine_seconds.observe(t2 - t1)
            self.metrics.batch_seconds.observe(time.perf_counter() - t0)

    def _tick(self, _: list[Message]) -> None:
        now = self.clock.now()
        out = self.engine.tick(now)
        self._commit(out.events, [], tick_line(now))
        self._deliver(out.events, [])

    def _decode(self, m: Message) -> _Decoded:
        try:
            d = decode(m.topic, m.payload, registry=self.registry, received_at=m.received,
                       prefix=self.config.prefix, limits=self.config.limits)
            return _Decoded(m, d.readings, d.dead)
        except Exception as exc:  # the codec promises never to raise; if it does, the message is dead
            log.exception("decoding a message on %s failed; payload starts %r", m.topic, m.payload[:_EXCERPT])
            return _Decoded(m, [], [_internal(m, f"decoder raised {type(exc).__name__}: {exc}")])

    def _process(self, decoded: list[_Decoded]) -> tuple[EngineOutput, list[Reading], list[DeadLetter]]:
        readings = [r for x in decoded for r in x.readings]
        try:
            return self.engine.process(readings), readings, []
        except Exception:
            log.exception("engine raised on a batch of %d readings; isolating the message that did it",
                          len(readings))
        self._rewind()
        return self._isolate(decoded)

    def _isolate(self, decoded: list[_Decoded]) -> tuple[EngineOutput, list[Reading], list[DeadLetter]]:
        """Feed message by message; a message that makes the engine raise is dead-lettered
        (``internal_error``) and its partial effect undone."""
        total, fed, dead = EngineOutput(), [], []
        for x in decoded:
            if not x.readings:
                continue
            before = self.engine.snapshot()
            try:
                o = self.engine.process(x.readings)
            except Exception as exc:
                log.exception("engine raised on a message on %s; payload starts %r", x.msg.topic,
                              x.msg.payload[:_EXCERPT])
                self.engine.restore(before)
                dead.append(_internal(x.msg, f"engine raised {type(exc).__name__}: {exc}"))
                continue
            total.events.extend(o.events)
            total.dead.extend(o.dead)
            fed.extend(x.readings)
        return total, fed, dead

    def _commit(self, events: Sequence[AlertEvent], dead: Sequence[DeadLetter], journal: bytes) -> None:
        assert self.store is not None
        mono = self.clock.monotonic()
        due = self.journal is None or mono - self._checkpoint_at >= self.config.checkpoint_interval_s
        decided = self._decide(events)
        snap = self._state() if due else None
        before = self.journal.offset if self.journal else 0
        try:
            offset = self.journal.append(journal) if self.journal and journal else before
            self.store.commit_batch(events, dead_counts=Counter(d.reason for d in dead), snapshot=snap,
                                    journal_offset=offset, now=self.clock.now(), committed_offset=offset,
                                    notifications=decided.notifications, marks=decided.marks)
        except BaseException:
            # Undo: the engine and the journal go back to the last committed state.
            if self.journal:
                self.journal.truncate(before)
            self._rewind()
            raise
        self._committed = offset
        if snap is not None:
            self._snap, self._snap_offset, self._checkpoint_at = snap, offset, mono

    def _state(self) -> dict[str, Any]:
        """The checkpoint: the engine's snapshot, with the notification policy's under ``notify``."""
        snap = self.engine.snapshot()
        if self.policy is not None:
            snap["notify"] = self.policy.snapshot()
        return snap

    def _restore_state(self, snap: Mapping[str, Any]) -> None:
        self.engine.restore(snap)
        if self.policy is not None:
            self.policy.restore(snap.get("notify"))

    def _decide(self, events: Sequence[AlertEvent]) -> Decisions:
        """The outbox rows for these events (sent or, with the reason, held) and the alerts' suppression marks:
        the routing tree names the receivers, the noise policy decides (lifeline/alerting/policy.py). Then the
        engine's clock releases what waited for it (a held "resolved", the end of flapping)."""
        if self.policy is None:
            return Decisions()
        self._refresh_silences()
        return self.policy.decide(events, self.clock.now(), self.engine.watermark)

    def _refresh_silences(self) -> None:
        """Re-read the silences when one was added or ended (a cheap version check per batch)."""
        assert self.store is not None and self.policy is not None
        version = self.store.silences_version()
        if version != self._silences_version:
            self.policy.set_silences(self.store.silences(include_expired=True))
            self._silences_version = version

    def _deliver(self, events: Sequence[AlertEvent], dead: Sequence[DeadLetter],
                 readings: Sequence[Reading] = ()) -> None:
        """After the commit: counters, the time-series store, --alerts-out, MQTT. Failures here are logged,
        never retried (the store already holds everything; the notifier outbox is the reliable path; the
        time-series sink queues, retries and spools on its own)."""
        self.counts["events"] += len(events)
        for e in events:
            self.counts[f"alerts.{e.kind.value}.{e.level.colour}.{e.event.value}"] += 1
        for d in dead:
            self.counts["dead." + d.reason] += 1
        if self.recent is not None and readings:
            self.recent.add(readings)
        try:
            if self.tsdb is not None:
                if events:
                    self.tsdb.write_events(events)
                if readings and self.config.influxdb_readings:
                    kept = self._downsample.keep(readings) if self._downsample is not None else readings
                    if kept:
                        self.tsdb.write_readings(kept)
        except Exception:
            log.exception("queueing %d events / %d readings for the time-series store failed", len(events),
                          len(readings))
            self.counts["tsdb_failures"] += 1
        try:
            if self.alerts_out and events:
                self.alerts_out.write(events)
            if self.config.publish:
                pub = self.source.publish
                for e in events:
                    body = orjson.dumps(e.to_dict(), option=orjson.OPT_SORT_KEYS)
                    pub(f"{ALERTS_PREFIX}/{e.domain}/{e.sensor}", body)
                for d in dead:
                    pub(DEADLETTER_TOPIC, orjson.dumps(d.to_dict()))
        except Exception:
            log.exception("delivering %d events / %d dead letters failed (they are in the store)",
                          len(events), len(dead))
            self.counts["delivery_failures"] += 1

    # ---- progress -------------------------------------------------------------------------
    def _maybe_status(self, force: bool = False) -> None:
        now = self.clock.monotonic()
        dt = now - self._status_at
        if not force and dt < self.config.status_interval_s:
            return
        c, prev = self.counts, self._status_counts

        def rate(k: str) -> float:
            return (c[k] - prev[k]) / dt if dt > 0 else 0.0

        dead = {k[5:]: v for k, v in sorted(c.items()) if k.startswith("dead.")}
        dead_txt = ", ".join(f"{k} {v}" for k, v in dead.items()) or "none"
        link = "connected" if self.source.connected else "DISCONNECTED"
        print(f"lifeline run: {c['messages']} msgs ({rate('messages'):,.0f}/s), {c['readings']} readings "
              f"({rate('readings'):,.0f}/s), {c['events']} alert events, dead letters: {dead_txt}; "
              f"queue {self.source.pending()}, broker {link}", file=self.status_out, flush=True)
        self._status_at = now
        self._status_counts = Counter(c)


def _internal(m: Message, detail: str) -> DeadLetter:
    return DeadLetter("internal_error", detail, m.topic, m.payload[:_EXCERPT].decode("utf-8", "replace"))


def main(argv: list[str] | None = None) -> int:
    """``python -m lifeline.engine.runner`` = ``lifeline run``."""
    import argparse

    from lifeline.commands.run import add_parser

    parser = argparse.ArgumentParser(prog="python -m lifeline.engine.runner")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
