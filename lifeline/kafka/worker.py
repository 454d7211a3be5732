"""``lifeline worker``: the same pure engine, one per partition of ``readings``, in a faust-streaming app.

Per partition (docs/kafka.md, "The workers"):

1. the agent takes the readings in offset order, decodes each record as ``lifeline run`` decodes an MQTT
   message (the ``mqtt_topic`` header gives the domain and the sensor; a tick moves event time) and feeds
   the partition's ``Engine``; its alert events go to ``alerts`` (key: the alert id), its dead letters to
   ``deadletter``, both handed to the producer at once (``send_soon``);
2. records are **not acknowledged** as they are processed: at each checkpoint (every ``checkpoint_every_s``,
   and when a partition is revoked) the engine's snapshot goes to the changelog-backed Faust table
   ``engine`` (``lifeline/kafka/checkpoint.py``: chunks, then a manifest naming the last offset it
   reflects), the partition's watermark to ``alerts``, and only then are the records up to that offset
   acknowledged. Faust flushes the producer before it commits offsets, so a committed offset never runs
   ahead of the checkpoint in the changelog, nor of the alerts of the records before it;
3. a worker that takes a partition over (the other died, or a rebalance) restores the engine from the table
   (Faust recovers the table partition from its changelog first) and skips the records the checkpoint
   already reflects; the records after it are processed again, which re-sends their alert events, the
   same ids and seqs (the engine is deterministic). ``lifeline deliver`` stores each (id, seq) once.

The bridge puts every sensor of a shard (``lifeline/engine/shards.py``) in one partition, so an engine per
partition gives exactly the alerts of one engine over the whole input: those of ``lifeline backtest``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson

from lifeline.codec import Limits, decode
from lifeline.engine import Engine
from lifeline.kafka import checkpoint as ckpt
from lifeline.kafka.records import (
    REASON_HEADER,
    TICK_TOPIC,
    TOPIC_HEADER,
    alert_value,
    dead_value,
    header,
    watermark_record,
)
from lifeline.model import AlertEvent, DeadLetter
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet
from lifeline.sources.mqtt import DEFAULT_PREFIX

log = logging.getLogger("lifeline.worker")


@dataclass(slots=True)
class Applied:
    """What one record did: the engine's alert events and dead letters (nothing when it was skipped)."""

    events: list[AlertEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    skipped: bool = False


class PartitionEngine:
    """One partition's engine and its place in the partition: the pure core of the worker (no Kafka here).

    ``done`` is the last offset whose record is in the engine's state; ``apply`` skips a record at or before
    it (one a restored checkpoint already reflects), so a record redelivered after a takeover changes
    nothing twice."""

    def __init__(self, partition: int, engine: Engine, *, done: int = -1, generation: int = 0,
                 prefix: str = DEFAULT_PREFIX, limits: Limits | None = None) -> None:
        self.partition = partition
        self.engine = engine
        self.done = done
        self.generation = generation
        self.prefix = prefix
        self.limits = limits or Limits()
        self.records = 0  # processed since start (not skipped)
        self.alerts = 0

    def apply(self, offset: int, topic: str, payload: bytes, received_at: float | None) -> Applied:
        if offset <= self.done:
            return Applied(skipped=True)
        self.done = offset
        self.records += 1
        if topic == TICK_TOPIC:
            ts = _tick_of(payload)
            if ts is None:
                return Applied(dead=[DeadLetter("bad_tick", f"partition {self.partition} offset {offset}: a tick "
                                                "needs {\"tick\": <epoch seconds>}", topic, payload[:200].decode(
                                                    "utf-8", "replace"))])
            out = self.engine.tick(ts)
            self.alerts += len(out.events)
            return Applied(out.events, out.dead)
        decoded = decode(topic, payload, registry=self.engine.registry, received_at=received_at, prefix=self.prefix,
                         limits=self.limits)
        if not decoded.readings:
            return Applied([], decoded.dead)
        result = self.engine.process(decoded.readings)
        self.alerts += len(result.events)
        return Applied(result.events, decoded.dead + result.dead)

    def checkpoint(self, rules: str, now_ms: int = 0) -> tuple[list[tuple[bytes, bytes]], ckpt.Manifest]:
        """The table entries of a checkpoint of the state now (chunks, then the manifest); the generation
        moves on, so the previous one's chunks can be deleted after the manifest is written. With ``now_ms``
        (the wall clock) it is at least that: two workers that restored the same checkpoint (a revoked one
        still writing, and the new owner) never write chunks under the same generation."""
        self.generation = max(self.generation + 1, now_ms)
        return ckpt.encode(self.partition, self.generation, self.done, self.engine.snapshot(), rules,
                           self.engine.watermark)

    @classmethod
    def restore(cls, partition: int, rules: RuleSet, registry: Registry, lookup: Callable[[bytes], bytes | None],
                *, fingerprint: str, prefix: str = DEFAULT_PREFIX) -> PartitionEngine:
        """From the table's checkpoint of ``partition`` (or a fresh engine when there is none)."""
        engine = Engine(rules, registry)
        raw = lookup(ckpt.manifest_key(partition))
        if raw is None:
            return cls(partition, engine, prefix=prefix)
        manifest = ckpt.Manifest.from_bytes(raw)
        if manifest.partition != partition:
            raise ckpt.CheckpointError(f"the checkpoint under partition {partition} is partition "
                                       f"{manifest.partition}'s")
        engine.restore(ckpt.decode(manifest, lookup))
        if manifest.rules != fingerprint:
            log.warning("partition %d: the checkpoint was written under rules %s, these are %s: state of removed "
                        "rules is dropped, new rules start empty", partition, manifest.rules, fingerprint)
        return cls(partition, engine, done=manifest.offset, generation=manifest.generation, prefix=prefix)


def _tick_of(payload: bytes) -> float | None:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    ts = doc.get("tick") if isinstance(doc, dict) else None
    return float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) and ts == ts else None


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap: str
    partitions: int  # of ``readings``; the engine table's changelog has as many
    app_id: str = "lifeline"
    readings_topic: str = "readings"
    alerts_topic: str = "alerts"
    deadletter_topic: str = "deadletter"
    prefix: str = DEFAULT_PREFIX
    store: str = "memory://"
    checkpoint_every_s: float = 2.0
    web_port: int | None = None
    session_timeout_s: float = 60.0
    heartbeat_s: float = 3.0
    rebalance_timeout_s: float = 60.0
    datadir: str = "var/worker"
    status_every_s: float = 10.0
    # The group leader waits this long before it sends the assignment: librdkafka's mock cluster (the tests')
    # answers a member's SyncGroup that comes after the leader's with INVALID_REQUEST, and aiokafka then never
    # joins (measured here; Kafka itself answers it with the member's assignment). 0 with a real Kafka.
    sync_grace_s: float = 0.0
    # After SIGTERM, how long a clean stop may take: with Kafka gone, aiokafka's fetcher never finishes stopping;
    # the worker then exits anyway (code 1). Nothing is lost: records are acknowledged only at checkpoints.
    stop_timeout_s: float = 30.0

    def problems(self) -> list[str]:
        out = []
        if self.partitions < 1:
            out.append(f"--partitions must be at least 1 (got {self.partitions})")
        if self.checkpoint_every_s <= 0:
            out.append("--checkpoint-every must be positive")
        if not self.store.startswith(("memory://", "rocksdb://")):
            out.append(f"--store must be memory:// or rocksdb://PATH (got {self.store!r})")
        return out


class Worker:
    """The Faust app around the partition engines. ``app`` is built on construction; ``run`` starts it."""

    def __init__(self, settings: WorkerSettings, rules: RuleSet, registry: Registry, fingerprint: str) -> None:
        import faust

        self.s = s = settings
        self.rules, self.registry, self.fingerprint = rules, registry, fingerprint
        self.engines: dict[int, PartitionEngine] = {}
        self.held: dict[int, list[Any]] = {}  # partition -> events processed, not yet acknowledged
        self.last_checkpoint: dict[int, float] = {}
        self.counts = {"records": 0, "skipped": 0, "alerts": 0, "dead": 0, "checkpoints": 0}
        self._status_at = time.monotonic()
        self.app = app = faust.App(
            s.app_id, broker=f"kafka://{s.bootstrap}", store=s.store, datadir=s.datadir,
            topic_allow_declare=False, topic_disable_leader=True, topic_partitions=s.partitions,
            consumer_auto_offset_reset="earliest", web_enabled=s.web_port is not None,
            web_port=s.web_port or 6066, web_host="127.0.0.1", web_bind="127.0.0.1",
            broker_session_timeout=s.session_timeout_s, broker_heartbeat_interval=s.heartbeat_s,
            broker_rebalance_timeout=s.rebalance_timeout_s, producer_acks=-1, stream_wait_empty=False,
            key_serializer="raw", value_serializer="raw",  # records are bytes: the MQTT payload, JSON alerts
            PartitionAssignor=_assignor_class(s.sync_grace_s),
        )
        raw: Any = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.readings = app.topic(s.readings_topic, partitions=s.partitions, **raw)
        self.alerts = app.topic(s.alerts_topic, **raw)
        self.dead = app.topic(s.deadletter_topic, **raw)
        self.table: Any = app.tables.add(_table_class()(app, name="engine", default=None, beacon=app.tables.beacon,
                                                     partitions=s.partitions, key_type=bytes, value_type=bytes,
                                                     help="each partition's engine checkpoint"))
        app.agent(self.readings, name="lifeline.judge")(self._agent)
        app.timer(interval=min(1.0, s.checkpoint_every_s))(self._on_timer)
        signal: Any = app.on_partitions_revoked
        signal.connect(self._on_revoked)
        stopping: Any = app.on_before_shutdown
        stopping.connect(self._on_stopping)

    # ---- the agent ------------------------------------------------------------------------
    async def _agent(self, stream: Any) -> None:
        # one record at a time (the engine gives the same alerts whatever the batching); acknowledged only at
        # the partition's next checkpoint (Faust's take_events would acknowledge each batch as it is handed out)
        async for event in stream.noack().events():
            self.handle((event,))

    def handle(self, batch: Sequence[Any]) -> None:
        """Process a batch of events (synchronously: nothing else runs in between), then checkpoint and
        acknowledge the partitions that are due."""
        touched: set[int] = set()
        for ev in batch:
            msg = ev.message
            p = msg.partition
            pe = self.engines.get(p)
            if pe is None:
                pe = self.engines[p] = self._restore(p)
                self.last_checkpoint[p] = time.monotonic()
            topic = header(msg.headers, TOPIC_HEADER)
            ts = msg.timestamp
            applied = pe.apply(msg.offset, topic.decode("utf-8", "replace") if topic is not None else "",
                               bytes(msg.value) if msg.value is not None else b"",
                               float(ts) if ts else None)
            self._send(applied)
            self.held.setdefault(p, []).append(ev)
            touched.add(p)
        now = time.monotonic()
        for p in touched:
            if now - self.last_checkpoint.get(p, 0.0) >= self.s.checkpoint_every_s:
                self.checkpoint(p)
        self._maybe_status(now)

    def _send(self, applied: Applied) -> None:
        c = self.counts
        if applied.skipped:
            c["skipped"] += 1
            return
        c["records"] += 1
        for e in applied.events:
            self.alerts.send_soon(key=e.id.encode(), value=alert_value(e))
        for d in applied.dead:
            self.dead.send_soon(key=None, value=dead_value(d), headers={REASON_HEADER: d.reason.encode()})
        c["alerts"] += len(applied.events)
        c["dead"] += len(applied.dead)

    def _restore(self, p: int) -> PartitionEngine:
        pe = PartitionEngine.restore(p, self.rules, self.registry, self.table.get, fingerprint=self.fingerprint,
                                     prefix=self.s.prefix)
        log.info("partition %d: engine %s (offsets up to %d in it)", p,
                 "restored from its checkpoint" if pe.done >= 0 else "started empty", pe.done)
        return pe

    # ---- checkpoints ------------------------------------------------------------------------
    def checkpoint(self, p: int) -> None:
        """Snapshot partition ``p`` into the table, send its watermark, then acknowledge what it covers."""
        pe = self.engines[p]
        held = self.held.pop(p, [])
        self.last_checkpoint[p] = time.monotonic()
        if not held:
            return
        old = pe.generation
        chunks, manifest = pe.checkpoint(self.fingerprint, int(time.time() * 1000))
        with _in_partition(p, self.s.readings_topic):
            for k, v in chunks:
                self.table[k] = v
            self.table[ckpt.manifest_key(p)] = manifest.to_bytes()
            i = 0
            while (key := ckpt.chunk_key(p, old, i)) in self.table:  # the previous generation's chunks
                del self.table[key]
                i += 1
        if pe.engine.watermark is not None:
            k, v = watermark_record(p, pe.engine.watermark)
            self.alerts.send_soon(key=k, value=v)
        for ev in held:
            ev.ack()
        self.counts["checkpoints"] += 1

    async def _on_timer(self) -> None:
        now = time.monotonic()
        for p in list(self.held):
            if now - self.last_checkpoint.get(p, 0.0) >= self.s.checkpoint_every_s:
                self.checkpoint(p)
        self._maybe_status(now)

    async def _on_revoked(self, sender: Any, revoked: Iterable[Any], **_: Any) -> None:
        """A partition leaves this worker: checkpoint what it did, then forget its engine (if it comes back,
        another worker may have moved it on: it is restored from the table again)."""
        for tp in revoked:
            if tp.topic != self.s.readings_topic:
                continue
            p = tp.partition
            if p in self.engines:
                try:
                    self.checkpoint(p)
                except Exception as exc:  # the table may be gone with the partition: the next owner replays
                    log.warning("partition %d: no checkpoint at revocation (%s): its next owner replays from the "
                                "last one", p, exc)
                self.engines.pop(p, None)
                self.held.pop(p, None)
        # out before this worker rejoins: the partition's next owner restores from what is in the changelog
        await self.app.producer.flush()

    def _maybe_status(self, now: float) -> None:
        if now - self._status_at < self.s.status_every_s:
            return
        self._status_at = now
        c = self.counts
        owned = ", ".join(f"{p}@{self.engines[p].done if p in self.engines else '?'}"
                          for p in self._assigned()) or "none"
        log.warning("worker: %d records, %d alert events, %d dead letters, %d skipped (replayed), %d checkpoints; "
                    "partitions %s", c["records"], c["alerts"], c["dead"], c["skipped"], c["checkpoints"], owned)

    def _on_stopping(self, sender: Any = None, **_: Any) -> None:
        """The app begins to stop: if it has not exited within ``stop_timeout_s``, exit anyway."""
        limit = self.s.stop_timeout_s

        def watchdog() -> None:
            time.sleep(limit)
            log.error("worker: could not stop cleanly within %g s (is Kafka reachable?); exiting. Nothing is lost: "
                      "the partitions' next owners start from their last checkpoints", limit)
            logging.shutdown()
            os._exit(1)

        threading.Thread(target=watchdog, name="stop-watchdog", daemon=True).start()

    def _assigned(self) -> list[int]:
        """The readings partitions this worker owns now (an engine is made at a partition's first record)."""
        try:
            tps = self.app.consumer.assignment()
        except Exception:  # not started yet, or between generations
            return sorted(self.engines)
        return sorted({tp.partition for tp in tps if tp.topic == self.s.readings_topic} | set(self.engines))

    def run(self, loglevel: str = "warn") -> int:
        from faust.worker import Worker as FaustWorker

        worker: Any = FaustWorker(self.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()  # returns only through SystemExit
        return 0


@contextlib.contextmanager
def _in_partition(partition: int, topic: str) -> Iterator[None]:
    """Table writes as if processing a record of ``partition``: Faust's RocksDB store picks its database by the
    current event's partition, and a checkpoint is also written from a timer and at revocation, outside any
    event (the changelog partition comes from the key: ``CheckpointTable``)."""
    from faust.streams import _current_event

    stand_in = _StandIn(partition, topic)
    token = _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


class _StandIn:
    """The part of a Faust event the table and its stores read: ``message.partition`` and ``message.topic``."""

    def __init__(self, partition: int, topic: str) -> None:
        self.message = SimpleNamespace(partition=partition, topic=topic)


def _assignor_class(grace_s: float) -> type:
    from faust.assignor import PartitionAssignor

    class Assignor(PartitionAssignor):
        """Faust's assignor, which lets the other members send their SyncGroup first (``sync_grace_s``)."""

        def assign(self, cluster: Any, member_metadata: Any) -> Any:
            if grace_s > 0 and len(member_metadata) > 1:
                time.sleep(grace_s)  # the consumer thread's loop; this member's heartbeats wait as long
            return super().assign(cluster, member_metadata)

    return Assignor


def _table_class() -> type:
    import faust

    class CheckpointTable(faust.Table):  # type: ignore[type-arg]
        """Keys are ``<partition>`` or ``<partition>/<generation>/<chunk>``: the changelog partition is the
        one in the key, so a checkpoint lives with its ``readings`` partition, whoever writes it, and a
        timer or a revocation handler can write it (Faust's own tables take the current event's)."""

        def partition_for_key(self, key: Any) -> int | None:
            return int(bytes(key).split(b"/", 1)[0])

    return CheckpointTable

