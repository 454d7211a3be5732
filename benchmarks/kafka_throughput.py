"""Worker throughput on Kafka: records/s drained from ``readings`` by 1 and by 2 ``lifeline worker`` processes,
against the pure engine on the same records in the same run; checks the alerts; derives the sizing rule.

One run of this command:

1. takes the first N payloads of the demo city (the simulators' ``demo`` scenario, cached in
   ``benchmarks/.cache``; the generation is timed apart and not part of any figure) and, as ``lifeline
   backtest`` would see them, the same lines plus one final tick (event time 10 minutes past the last reading,
   so that silent sensors are found, as in ``tests/integration/test_kafka_workers.py``);
2. reference, in-process, ``--ref-runs`` times each (medians): (a) ``run_backtest`` over the lines (decode,
   ``Engine.process`` in batches of 2,000), (b) the worker's pure core without Kafka: one ``PartitionEngine`` per
   partition, ``apply`` per record in offset order, as the worker's agent calls it (one payload per engine
   call). (b) must give exactly the alert events of (a);
3. per worker count (1, then 2): a fresh librdkafka mock cluster (3 brokers, ``lifeline.testing_kafka``) with
   ``readings``, ``alerts``, ``deadletter`` and ``lifeline-engine-changelog`` of ``--partitions`` partitions
   each; the records loaded into ``readings`` **before** any worker starts, with a confluent-kafka ``Producer``
   (``acks=all``, idempotent), partitioned exactly as ``lifeline bridge`` does (``Sharding(shard_keys(...))``,
   key = sensor id, header ``mqtt_topic`` = ``lifeline/readings/<domain>/<sensor>``, value = the payload), then
   the end tick to every partition; then the ``lifeline worker`` processes (the command line of the integration
   test: ``--sync-grace 1s`` etc., ``--status-every 250ms``, checkpoints every 2 s as shipped), started together;
4. measures from the worker status lines (``worker: N records, ...; partitions 0@<last offset done>, ...``,
   each timestamped by this process as it arrives): the drain starts at the first moment the workers' partition
   sets are disjoint and cover every partition (the group is formed), with the records already done at that
   moment subtracted; it ends when each worker's last partition reaches its last offset. A busy worker prints a
   line every 250 ms, so a worker's end is its last busy line plus what it had left at its own rate (at most
   250 ms of extrapolation; the first line showing it done, from a 1 s timer, bounds it). Committed offsets were
   not used: the worker acknowledges (and Faust commits) only at checkpoints, every 2 s;
5. afterwards reads ``alerts`` back: the distinct (id, seq) of the alert events (watermarks left out) must be
   the backtest's, with the same rule, subject, level, state and times; repeats are counted;
6. reports records/s, the ratios worker / engine and 2 workers / 1 worker, the CPU seconds each process used
   during the drain (from ``/proc``), and the sizing rule with this machine's per-worker capacity.

    python -m benchmarks.kafka_throughput [--records 110000] [--partitions 8] [--runs 2] [--ref-runs 3] [--profile DIR]

Writes ``benchmarks/results/kafka_throughput.md`` and ``.json``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import confluent_kafka
import orjson

from benchmarks.common import CACHE, RESULTS, demo_registry, inputs_fingerprint, machine, simulated_input, write_result
from lifeline import paths
from lifeline.commands.backtest import run_backtest
from lifeline.engine import Engine
from lifeline.engine.shards import Sharding, shard_keys
from lifeline.kafka.records import TICK_TOPIC, TOPIC_HEADER, WATERMARK_KEY, tick_value
from lifeline.kafka.worker import PartitionEngine
from lifeline.model import AlertEvent
from lifeline.registry import Registry
from lifeline.rules.loader import load_rules
from lifeline.rules.model import RuleSet
from lifeline.sources.replay import tick_line
from lifeline.testing_kafka import MockKafka, read_topic, start_kafka

PREFIX = "lifeline/readings"
TOPICS = ("readings", "alerts", "deadletter", "lifeline-engine-changelog")
END_TICK_S = 600.0  # the end of the input, told to every partition (as the integration test does)
LINES_PER_HOUR = 36_000  # the demo city emits ~36.8k payloads per simulated hour
STATUS_EVERY_S = 0.25
KEY_FIELDS = ("id", "seq", "rule", "subject", "sensor", "level", "event", "state", "started", "ts")
HEFEI_SENSORS, ANHUI_SETS = 85_000, 163_000


def say(text: str) -> None:
    print(f"[kafka] {text}", file=sys.stderr, flush=True)


# ---- input ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rec:
    """One ``readings`` record as the bridge writes it."""

    sensor: str
    topic: str  # the MQTT topic: header ``mqtt_topic``
    payload: bytes  # the MQTT payload: the record's value
    ts: float


def demo_lines(n: int) -> tuple[list[bytes], float, bool]:
    """The first ``n`` reading lines of the demo scenario; the seconds the simulators took (0 when cached)."""
    hours = math.ceil(n / LINES_PER_HOUR) + 1
    cached = (CACHE / f"demo-{hours}h-7-{inputs_fingerprint()}.jsonl").exists()
    t = time.perf_counter()
    src = simulated_input("demo", f"{hours}h")
    gen_s = 0.0 if cached else time.perf_counter() - t
    out: list[bytes] = []
    with src.open("rb") as f:
        for line in f:
            if b'"tick"' in line and "tick" in orjson.loads(line):
                continue
            out.append(line.rstrip(b"\n"))
            if len(out) == n:
                return out, gen_s, cached
    raise SystemExit(f"{src}: only {len(out)} readings, {n} wanted")


def to_records(lines: Iterable[bytes]) -> list[Rec]:
    """What a sensor publishes for each line (``sensor`` and ``domain`` go into the topic), as the test's
    ``_publish`` does."""
    out = []
    for line in lines:
        obj = orjson.loads(line)
        sensor, domain = obj.pop("sensor"), obj.pop("domain")
        out.append(Rec(sensor, f"{PREFIX}/{domain}/{sensor}", orjson.dumps(obj), float(obj["ts"])))
    return out


# ---- sizing (pure) ---------------------------------------------------------------------------------
def reading_rate(registry: Registry) -> float:
    """Readings/s the register's sensors send at their nominal ``interval_s`` (one payload per interval)."""
    return sum(1.0 / s.interval_s for s in registry.sensors.values() if s.interval_s > 0)


@dataclass(frozen=True)
class Sizing:
    rate: float  # records/s to handle
    capacity: float  # records/s one worker handles (measured)
    headroom: float  # the share of a worker's capacity planned for the live rate
    workers: int
    partitions: int
    largest_shard_rate: float  # records/s of the busiest shard: one worker must carry it whole
    fits: bool  # the busiest shard fits in one worker's planned load


def size(rate: float, capacity: float, *, headroom: float = 0.5, largest_share: float = 0.0,
         shards: int | None = None, partitions_per_worker: int = 2, plan_workers: int | None = None) -> Sizing:
    """Workers and partitions for ``rate`` records/s when one worker handles ``capacity`` records/s.

    workers = ceil(rate / (capacity × headroom)); partitions = partitions_per_worker × the most workers planned
    (``plan_workers``, at least ``workers``): partitions cannot be added later without moving shards away from
    their checkpoints, and two or more per worker let a worker join or leave with the load still spread; never
    more than there are shards (a partition holds whole shards: more would stay empty). The busiest shard
    (``largest_share`` of the rate) cannot be split, so it must fit in one worker's planned load."""
    if rate < 0 or capacity <= 0 or not 0 < headroom <= 1:
        raise ValueError(f"size: rate {rate} must be >= 0, capacity {capacity} > 0, headroom {headroom} in (0, 1]")
    workers = max(1, math.ceil(rate / (capacity * headroom)))
    planned = max(workers, plan_workers or 0)
    partitions = partitions_per_worker * planned
    if shards is not None:
        partitions = max(1, min(partitions, shards))
    largest = rate * largest_share
    return Sizing(rate, capacity, headroom, workers, partitions, largest, largest <= capacity * headroom)


# ---- the drain, from the workers' status lines (pure) ------------------------------------------------
STATUS = re.compile(r"worker: (\d+) records, .*?; partitions (none|(?:\d+@(?:-?\d+|\?)(?:, )?)+)\s*$")


@dataclass(frozen=True)
class Status:
    t: float  # when this process read the line (perf_counter)
    worker: int
    records: int  # processed by that worker since its start
    offsets: Mapping[int, int | None]  # partition -> last offset done (None: owned, no record yet)


def parse_status(t: float, worker: int, line: str) -> Status | None:
    m = STATUS.search(line)
    if m is None:
        return None
    offsets: dict[int, int | None] = {}
    if m.group(2) != "none":
        for part in m.group(2).split(", "):
            p, _, o = part.partition("@")
            offsets[int(p)] = None if o == "?" else int(o)
    return Status(t, worker, int(m.group(1)), offsets)


@dataclass
class Drain:
    start: float | None = None  # the group formed: disjoint partition sets covering all
    end: float | None = None  # the last worker's last partition at its last offset (estimated, see module doc)
    end_bound: float | None = None  # the first status line showing everything done
    done_at_start: int = 0  # records done when the drain started (excluded from the rate)
    total: int = 0
    owners: dict[int, list[int]] = field(default_factory=dict)  # worker -> its partitions
    worker_rate: dict[int, float] = field(default_factory=dict)  # records/s of each worker while busy
    worker_end: dict[int, float] = field(default_factory=dict)
    moved: bool = False  # a partition changed owner after the start (a rebalance during the drain)

    @property
    def finished(self) -> bool:
        return self.end is not None

    @property
    def rate(self) -> float:
        assert self.start is not None and self.end is not None
        return (self.total - self.done_at_start) / (self.end - self.start)


def analyse(events: Sequence[Status], workers: int, last: Mapping[int, int]) -> Drain:
    """The drain of ``workers`` workers over partitions whose last offsets are ``last``, from their status
    lines in arrival order (see the module doc)."""
    d = Drain(total=sum(o + 1 for o in last.values()))
    latest: dict[int, Status] = {}
    known: dict[int, int] = {}  # partition -> the highest offset reported done

    def progress(parts: Iterable[int]) -> int:
        return sum(known.get(p, -1) + 1 for p in parts)

    first: dict[int, tuple[float, int]] = {}  # worker -> (t, progress) at the start
    busy: dict[int, tuple[float, int]] = {}  # worker -> its last line while it still had records to do
    done: dict[int, float] = {}
    for ev in sorted(events, key=lambda e: e.t):
        latest[ev.worker] = ev
        for p, o in ev.offsets.items():
            if o is not None and o > known.get(p, -1):
                known[p] = o
        if d.start is None:
            sets = [set(s.offsets) for s in latest.values()]
            if (len(latest) == workers and all(sets) and sum(map(len, sets)) == len(set().union(*sets))
                    and set().union(*sets) == set(last)):
                d.start = ev.t
                d.done_at_start = progress(last)
                d.owners = {w: sorted(s.offsets) for w, s in latest.items()}
                first = {w: (ev.t, progress(ps)) for w, ps in d.owners.items()}
            continue
        mine = d.owners.get(ev.worker, [])
        if sorted(ev.offsets) != mine:
            d.moved = True
        if ev.worker in done:
            continue
        prog, target = progress(mine), sum(last[p] + 1 for p in mine)
        if prog < target:
            busy[ev.worker] = (ev.t, prog)
        else:
            done[ev.worker] = ev.t
    if d.start is None or set(done) != set(d.owners):
        return d
    for w, (t0, p0) in first.items():
        t1, p1 = busy.get(w, (t0, p0))
        target = sum(last[p] + 1 for p in d.owners[w])
        rate = (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0
        d.worker_rate[w] = rate
        d.worker_end[w] = min(done[w], t1 + (target - p1) / rate) if rate > 0 else done[w]
    d.end = max(d.worker_end.values())
    d.end_bound = max(done.values())
    return d


# ---- processes -------------------------------------------------------------------------------------
def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (``/proc/stat``: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerProc:
    """``python -m lifeline.cli worker`` (the integration test's command line); its output read by a thread
    that timestamps every status line as it arrives."""

    def __init__(self, i: int, kafka: MockKafka, partitions: int, tmp: Path) -> None:
        self.i = i
        self.log = tmp / f"worker{i}.log"
        self.statuses: list[Status] = []
        self.tail: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lifeline.cli", "worker", "--kafka", kafka.bootstrap, "--partitions",
             str(partitions), "--data-dir", str(tmp / f"worker{i}"), "--session-timeout", "6s",
             "--rebalance-timeout", "8s", "--checkpoint-every", "2s", "--status-every", f"{STATUS_EVERY_S * 1000:g}ms",
             "--sync-grace", "1s"],
            cwd=tmp, env={**os.environ, "PYTHONPATH": str(paths.REPO)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.spy: subprocess.Popen[bytes] | None = None

    def profile(self, out: Path) -> None:
        """Attach py-spy from outside (sampling at 100 Hz, the worker is not paused) until ``unprofile``."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.spy = subprocess.Popen([spy, "record", "--nonblocking", "--rate", "100", "--format", "raw", "--pid",
                                     str(self.proc.pid), "--output", str(out)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)

    def unprofile(self) -> None:
        """Stop py-spy (SIGINT: it writes its samples and exits)."""
        if self.spy is not None and self.spy.poll() is None:
            self.spy.send_signal(signal.SIGINT)
            try:
                self.spy.wait(30)
            except subprocess.TimeoutExpired:
                self.spy.kill()
                self.spy.wait()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w") as out:
            for line in self.proc.stdout:
                t = time.perf_counter()
                out.write(line)
                self.tail = [*self.tail[-30:], line.rstrip()]
                s = parse_status(t, self.i, line)
                if s is not None:
                    self.statuses.append(s)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM exactly this process (SIGKILL after 30 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self.unprofile()


def produce_all(bootstrap: str, recs: Sequence[Rec], sharding: Sharding, end: float) -> tuple[float, dict[int, int]]:
    """Write every record to ``readings`` as the bridge would, then the end tick to every partition; return the
    seconds it took and the last offset of each partition (from the delivery reports)."""
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                 "linger.ms": 20, "queue.buffering.max.messages": 200_000, "log_level": 3})
    last: dict[int, int] = {}
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            last[msg.partition()] = max(last.get(msg.partition(), -1), msg.offset())

    t = time.perf_counter()
    for r in recs:
        while True:
            try:
                p.produce("readings", r.payload, r.sensor.encode(), sharding.partition(r.sensor),
                          headers=[(TOPIC_HEADER, r.topic.encode())], on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    for part in range(sharding.partitions):
        p.produce("readings", tick_value(end), None, part, headers=[(TOPIC_HEADER, TICK_TOPIC.encode())],
                  on_delivery=delivered)
    left = p.flush(120)
    took = time.perf_counter() - t
    assert not errors and not left, f"producing to readings: {len(errors)} errors ({errors[:3]}), {left} unsent"
    n = sum(o + 1 for o in last.values())
    assert n == len(recs) + sharding.partitions, f"readings holds {n} records, {len(recs)} + ticks were written"
    return took, last


@dataclass
class WorkerRun:
    workers: int
    load_s: float
    records: int
    rate: float
    drain_s: float
    done_at_start: int
    per_worker_rate: dict[int, float]
    partitions: dict[int, list[int]]
    end_uncertainty_s: float  # first line showing it done minus the estimated end
    rebalanced_during_drain: bool
    processed: int  # records the workers processed in all (more than ``records``: some processed twice)
    cpu_s: dict[str, float]  # during the drain: each worker, the mock cluster, every other process of the machine
    cpu_window_s: float  # the window they were sampled over: from the group forming to the line showing it done
    start_to_group_s: float  # worker processes started -> the group formed
    alerts: dict[str, Any]

    @property
    def per_cpu_s(self) -> float:
        """Records drained per CPU second the workers used: the cost of a record, whatever the cores left."""
        return (self.records - self.done_at_start) / sum(v for k, v in self.cpu_s.items() if k.startswith("worker"))


def alerts_check(bootstrap: str, expected: Mapping[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    """The ``alerts`` topic against the backtest's events: distinct (id, seq), their fields, repeats."""
    seen: Counter[tuple[str, int]] = Counter()
    fields: dict[tuple[str, int], dict[str, Any]] = {}
    watermarks = 0
    for r in read_topic(bootstrap, "alerts", len(expected), timeout=120, idle_s=3.0):
        if r.key is not None and r.key.startswith(WATERMARK_KEY):
            watermarks += 1
            continue
        doc = orjson.loads(r.value)
        k = (doc["id"], doc["seq"])
        seen[k] += 1
        fields[k] = {f: doc[f] for f in KEY_FIELDS}
    missing = sorted(set(expected) - set(seen))
    extra = sorted(set(seen) - set(expected))
    differ = sorted(k for k in set(seen) & set(expected) if fields[k] != expected[k])
    return {"expected": len(expected), "distinct": len(seen), "missing": len(missing), "extra": len(extra),
            "differ": len(differ), "repeats": sum(n - 1 for n in seen.values()), "watermarks": watermarks,
            "equal": not missing and not extra and not differ,
            "examples": [list(k) for k in (missing + extra + differ)[:5]]}


def run_workers(n: int, recs: Sequence[Rec], sharding: Sharding, end: float,
                expected: Mapping[tuple[str, int], dict[str, Any]], timeout: float,
                profile: Path | None = None, tag: str = "") -> WorkerRun:
    label = f"{n} worker{'s' if n > 1 else ''}"
    partitions = sharding.partitions
    with tempfile.TemporaryDirectory(prefix="lifeline-kafka-bench-") as tmpdir:
        tmp = Path(tmpdir)
        kafka = start_kafka(topics=[(t, partitions) for t in TOPICS])
        procs: list[WorkerProc] = []
        try:
            say(f"{label}: mock Kafka (3 brokers) on {kafka.bootstrap}; loading {len(recs):,} records + "
                f"{partitions} ticks into readings ({partitions} partitions) ...")
            load_s, last = produce_all(kafka.bootstrap, recs, sharding, end)
            say(f"{label}: loaded in {load_s:.1f} s ({len(recs) / load_s:,.0f} records/s); starting the workers")
            started = time.perf_counter()
            procs = [WorkerProc(i, kafka, partitions, tmp) for i in range(n)]
            profiling = False
            cpu: list[tuple[float, dict[str, float]]] = []
            deadline = time.monotonic() + timeout
            next_say = time.monotonic() + 3
            while True:
                pids = {f"worker{p.i}": p.proc.pid for p in procs} | {"mock cluster": kafka.proc.pid}
                cpu.append((time.perf_counter(), {k: cpu_seconds(v) for k, v in pids.items()}
                            | {"machine": machine_busy_seconds()}))
                events = [s for p in procs for s in list(p.statuses)]
                drain = analyse(events, n, last)
                if profile is not None and drain.start is not None and not profiling:
                    profiling = True
                    for p in procs:
                        p.profile(profile / f"{n}w-worker{p.i}-{tag}.txt")
                if drain.finished:
                    for p in procs:
                        p.unprofile()
                    break
                for p in procs:
                    assert p.alive(), f"worker{p.i} exited ({p.proc.returncode}):\n" + "\n".join(p.tail)
                assert time.monotonic() < deadline, (f"{label}: not drained within {timeout:g} s:\n"
                                                     + "\n\n".join("\n".join(p.tail[-5:]) for p in procs))
                if time.monotonic() >= next_say:
                    next_say += 3
                    done = _done(events, last)
                    state = "draining" if drain.start is not None else "forming the group"
                    say(f"{label}: {state}, {done:,} of {drain.total:,} records done")
                time.sleep(0.1)
            assert drain.start is not None and drain.end is not None and drain.end_bound is not None
            say(f"{label}: drained {drain.total - drain.done_at_start:,} records in {drain.end - drain.start:.1f} s "
                f"= {drain.rate:,.0f} records/s; checking the alerts topic ...")

            def at(t: float) -> dict[str, float]:
                return min(cpu, key=lambda c: abs(c[0] - t))[1]

            c0, c1 = at(drain.start), at(drain.end_bound)
            used = {k: c1[k] - c0[k] for k in c0}
            used["others"] = used.pop("machine") - sum(used.values())  # processes not of this run
            alerts = alerts_check(kafka.bootstrap, expected)
            processed = sum(max((s.records for s in p.statuses), default=0) for p in procs)
            say(f"{label}: alerts: {alerts['distinct']} distinct (id, seq) of {alerts['expected']} expected, "
                f"{'equal to' if alerts['equal'] else 'NOT equal to'} the backtest's; {alerts['repeats']} repeats")
            return WorkerRun(
                n, load_s, drain.total, drain.rate, drain.end - drain.start, drain.done_at_start, drain.worker_rate,
                drain.owners, drain.end_bound - drain.end, drain.moved, processed,
                used, drain.end_bound - drain.start, drain.start - started, alerts)
        finally:
            for p in procs:
                p.stop()
            kafka.stop()


def _done(events: Sequence[Status], last: Mapping[int, int]) -> int:
    known: dict[int, int] = {}
    for s in events:
        for p, o in s.offsets.items():
            if o is not None:
                known[p] = max(known.get(p, -1), o)
    return sum(known.get(p, -1) + 1 for p in last)


# ---- the reference -----------------------------------------------------------------------------------
def ref_backtest(rules: RuleSet, registry: Registry, lines: Sequence[bytes],
                 end: float) -> tuple[float, list[AlertEvent]]:
    engine = Engine(rules, registry)
    t = time.perf_counter()
    events, dead = run_backtest(engine, iter([*lines, tick_line(end)]))
    took = time.perf_counter() - t
    assert not dead, dead
    return took, events


def ref_partitions(rules: RuleSet, registry: Registry, recs: Sequence[Rec], sharding: Sharding,
                   end: float) -> tuple[float, list[AlertEvent]]:
    """The worker's pure core: a PartitionEngine per partition, one record per ``apply``, offsets as in Kafka."""
    engines = [PartitionEngine(p, Engine(rules, registry)) for p in range(sharding.partitions)]
    offset = [0] * sharding.partitions
    events: list[AlertEvent] = []
    tick = tick_value(end)
    t = time.perf_counter()
    for r in recs:
        p = sharding.partition(r.sensor)
        a = engines[p].apply(offset[p], r.topic, r.payload, None)
        offset[p] += 1
        events.extend(a.events)
        assert not a.dead, a.dead
    for pe in engines:
        events.extend(pe.apply(offset[pe.partition], TICK_TOPIC, tick, None).events)
    return time.perf_counter() - t, events


def key_fields(events: Iterable[AlertEvent]) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for e in events:
        d = e.to_dict()
        out[(e.id, e.seq)] = {k: d[k] for k in KEY_FIELDS}
    return out


def profile_summary(raw: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """From py-spy's collapsed stacks (``--format raw``): the share of samples by the package of the innermost
    Python frame (where the time is spent itself; lifeline's compiled engine shows as its caller in
    ``lifeline``), and the share with each of lifeline's functions on the stack (inclusive)."""
    leaf: Counter[str] = Counter()
    mine: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf[_package(frames[-1])] += n
        for f in {f.split(" (")[0] for f in frames if "(lifeline/" in f}:
            mine[f] += n
    if not total:
        return {"by_package": [], "lifeline_inclusive": []}
    return {"by_package": [(k, v / total) for k, v in leaf.most_common(top)],
            "lifeline_inclusive": [(k, v / total) for k, v in mine.most_common(top)]}


def _package(frame: str) -> str:
    """``name (path/to/file.py:12)`` -> the path's first part (``faust``, ``asyncio``, ``lifeline``, ...)."""
    m = re.search(r"\(([^:)]*)", frame)
    path = m.group(1) if m else frame
    if path.startswith("<"):
        return path
    return path.split("/")[0].removesuffix(".py")


# ---- report -----------------------------------------------------------------------------------------
def fmt(x: float) -> str:
    return f"{x:,.0f}"


def median_run(runs: Sequence[WorkerRun]) -> WorkerRun:
    """The run with the median rate (the lower of the middle two for an even count)."""
    return sorted(runs, key=lambda r: r.rate)[(len(runs) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=110_000,
                    help="demo-city payloads loaded (default 110000: drains of at least 20 s with 2 workers here)")
    ap.add_argument("--partitions", type=int, default=8, help="partitions of every topic (default 8)")
    ap.add_argument("--runs", type=int, default=2, help="drains per worker count, 1 and 2 alternating first; "
                    "medians are reported (default 2)")
    ap.add_argument("--ref-runs", type=int, default=3, help="runs of each in-process reference (default 3)")
    ap.add_argument("--headroom", type=float, default=0.5, help="share of a worker's capacity planned for the live "
                    "rate in the sizing rule (default 0.5)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds one drain may take (default 900)")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR", help="attach py-spy to every worker during "
                    "its drain and write its samples (collapsed stacks) here, with a summary; no result files are "
                    "written (the sampling costs CPU on the same cores)")
    args = ap.parse_args(argv)
    n, parts = args.records, args.partitions
    load_avg = os.getloadavg()

    registry = demo_registry()
    rules = load_rules([paths.default_rules()])
    lines, gen_s, cached = demo_lines(n)
    recs = to_records(lines)
    span_s = recs[-1].ts - recs[0].ts
    end = max(r.ts for r in recs) + END_TICK_S
    keys = shard_keys(rules, registry)
    sharding = Sharding(keys, parts)
    per_part = Counter(sharding.partition(r.sensor) for r in recs)
    per_shard = Counter(keys.get(r.sensor, r.sensor) for r in recs)
    largest_shard, largest_n = per_shard.most_common(1)[0]
    say(f"{n:,} payloads ({span_s / 3600:.2f} h of event time) from {len({r.sensor for r in recs})} sensors; "
        f"{'cached' if cached else f'generated in {gen_s:.1f} s (not measured)'}; {len(rules.rules)} rules; "
        f"{len(set(keys.values()))} shards, the largest {largest_shard} with {largest_n / n:.1%} of the readings; "
        f"records per partition {min(per_part.values()):,}..{max(per_part.values()):,}")

    bt_times: list[float] = []
    pe_times: list[float] = []
    expected: dict[tuple[str, int], dict[str, Any]] = {}
    for i in range(args.ref_runs):
        took, events = ref_backtest(rules, registry, lines, end)
        bt_times.append(took)
        expected = key_fields(events)
        took, pe_events = ref_partitions(rules, registry, recs, sharding, end)
        pe_times.append(took)
        assert key_fields(pe_events) == expected, "the per-partition engines differ from the backtest"
        say(f"reference {i + 1}/{args.ref_runs}: backtest {n / bt_times[-1]:,.0f} records/s, partition engines "
            f"{n / pe_times[-1]:,.0f} records/s; {len(expected)} alert events, the same in both")
    total = n + parts
    bt_rate = total / statistics.median(bt_times)
    pe_rate = total / statistics.median(pe_times)

    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs: dict[int, list[WorkerRun]] = {1: [], 2: []}
    for r in range(1, args.runs + 1):
        for w in (1, 2) if r % 2 else (2, 1):
            say(f"run {r}/{args.runs}, {w} worker{'s' if w > 1 else ''}")
            runs[w].append(run_workers(w, recs, sharding, end, expected, args.timeout, args.profile, f"run{r}"))
    rate1 = statistics.median(x.rate for x in runs[1])
    rate2 = statistics.median(x.rate for x in runs[2])

    # ---- the sizing rule
    nominal = reading_rate(registry)
    observed = n / span_s
    per_sensor = max(nominal, observed) / len(registry.sensors)
    largest_share = largest_n / n
    demo = size(max(nominal, observed), rate1, headroom=args.headroom, largest_share=largest_share,
                shards=len(set(keys.values())))
    hefei = size(HEFEI_SENSORS * per_sensor, rate1, headroom=args.headroom, largest_share=largest_share)
    anhui = size(ANHUI_SETS * per_sensor, rate1, headroom=args.headroom, largest_share=largest_share)
    intervals = Counter((s.domain, s.interval_s) for s in registry.sensors.values())

    result: dict[str, Any] = {
        "machine": machine(), "cpus": os.cpu_count(), "load_avg_at_start": load_avg,
        "kafka": f"librdkafka {confluent_kafka.libversion()[0]} mock cluster, 3 brokers",
        "faust": _version("faust-streaming"), "aiokafka": _version("aiokafka"),
        "records": n, "records_with_ticks": total, "partitions": parts, "event_time_h": span_s / 3600,
        "generation_s": gen_s, "generation_cached": cached, "rules": len(rules.rules),
        "shards": len(set(keys.values())), "largest_shard": largest_shard, "largest_shard_share": largest_share,
        "records_per_partition": dict(sorted(per_part.items())),
        "backtest_records_s": bt_rate, "backtest_s": bt_times, "partition_engines_records_s": pe_rate,
        "partition_engines_s": pe_times, "alert_events": len(expected),
        "worker_runs": {str(w): [asdict(x) | {"records_per_worker_cpu_s": x.per_cpu_s} for x in rs]
                        for w, rs in runs.items()},
        "one_worker_records_s": rate1, "two_workers_records_s": rate2,
        "ratios": {"1_worker_vs_partition_engines": rate1 / pe_rate, "1_worker_vs_backtest": rate1 / bt_rate,
                   "2_workers_vs_1": rate2 / rate1, "2_workers_vs_partition_engines": rate2 / pe_rate},
        "rate": {"nominal_demo_records_s": nominal, "observed_demo_records_s": observed,
                 "per_sensor_records_s": per_sensor, "intervals": {f"{d} {i:g}s": c for (d, i), c in
                                                                   sorted(intervals.items())}},
        "sizing": {"demo": asdict(demo), "hefei": asdict(hefei), "anhui": asdict(anhui)},
        "alerts_equal": all(x.alerts["equal"] for rs in runs.values() for x in rs),
    }
    if args.profile:
        for f in sorted(args.profile.glob("*w-worker*-run*.txt")):
            summary = profile_summary(f)
            say(f"{f.name}: samples by package (innermost frame): "
                + ", ".join(f"{k} {v:.0%}" for k, v in summary["by_package"])
                + "\n  lifeline functions on the stack: "
                + ", ".join(f"{k} {v:.0%}" for k, v in summary["lifeline_inclusive"]))
        say(f"profiled (rates {fmt(rate1)} and {fmt(rate2)} records/s with py-spy attached): no result files written")
        return 0 if result["alerts_equal"] else 1
    text = report(result, runs, args)
    print(text)
    say(f"written to {write_result('kafka_throughput', text)}")
    (RESULTS / "kafka_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["alerts_equal"] else 1


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def report(r: dict[str, Any], runs: Mapping[int, Sequence[WorkerRun]], args: argparse.Namespace) -> str:
    n, parts = r["records"], r["partitions"]
    rt, sz = r["rate"], r["sizing"]
    ratios = r["ratios"]
    one, two = median_run(runs[1]), median_run(runs[2])
    rate1, rate2 = r["one_worker_records_s"], r["two_workers_records_s"]

    def wrow(i: int, w: WorkerRun) -> str:
        per = " / ".join(fmt(x) for x in w.per_worker_rate.values())
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in w.cpu_s.items())
        return (f"| {w.workers} × `lifeline worker`, run {i} | {fmt(w.rate)} | {w.drain_s:.1f} s "
                f"(+≤{w.end_uncertainty_s:.2f}) | {per} | {cpu} (of {w.cpu_window_s * (os.cpu_count() or 1):.0f}) "
                f"| {fmt(w.per_cpu_s)} |\n")

    def alerts(w: WorkerRun, i: int) -> str:
        a = w.alerts
        verdict = "**equal** to the backtest's" if a["equal"] else (
            f"**NOT equal**: {a['missing']} missing, {a['extra']} extra, {a['differ']} with other fields "
            f"(e.g. {a['examples']})")
        return (f"{w.workers} worker{'s' if w.workers > 1 else ''}, run {i}: {a['distinct']} distinct (id, seq) of "
                f"{a['expected']}, {verdict}; {a['repeats']} repeated, {a['watermarks']} watermark records")

    d, h, a = sz["demo"], sz["hefei"], sz["anhui"]
    gen = "from the cache" if r["generation_cached"] else f"generated in {r['generation_s']:.1f} s"
    loads = ", ".join(f"{x.load_s:.1f}" for rs in runs.values() for x in rs)
    rows = "".join(wrow(i, x) for w in (1, 2) for i, x in enumerate(runs[w], 1))
    cpu1, cpu2 = (fmt(statistics.median(x.per_cpu_s for x in runs[w])) for w in (1, 2))
    rebalanced = any(x.rebalanced_during_drain for rs in runs.values() for x in rs)
    processed = ", ".join(f"{x.processed:,}" for rs in runs.values() for x in rs)
    before = ", ".join(f"{x.done_at_start:,}" for rs in runs.values() for x in rs)
    formed = ", ".join(f"{x.start_to_group_s:.1f}" for rs in runs.values() for x in rs)
    return (
        "# Worker throughput on Kafka: 1 and 2 `lifeline worker` processes\n\n"
        f"- machine: {r['machine']}, {r['cpus']} cores, shared (load average {r['load_avg_at_start'][0]:.2f} at the "
        "start; `others` below is the CPU every process not of this run used meanwhile); the mock cluster is a "
        "process on the same cores\n"
        f"- Kafka: {r['kafka']} (`lifeline/testing_kafka.py`), loopback; faust-streaming {r['faust']}, aiokafka "
        f"{r['aiokafka']}; `readings`, `alerts`, `deadletter`, `lifeline-engine-changelog` of {parts} partitions "
        "each, a fresh cluster per drain\n"
        f"- input: the first {n:,} payloads of the demo city (scenario `demo`, {r['event_time_h']:.2f} h of event "
        f"time, {r['rules']} rules), partitioned by shard as `lifeline bridge` does, loaded before the workers start, "
        f"plus one end tick per partition: {r['records_with_ticks']:,} records; per partition "
        f"{min(r['records_per_partition'].values()):,} to {max(r['records_per_partition'].values()):,}\n"
        f"- simulated input {gen} and loading Kafka ({loads} s) are in no figure\n"
        f"- workers: the integration test's command line, `--checkpoint-every 2s` (the default), `--status-every "
        f"{STATUS_EVERY_S * 1000:g}ms`; the engine as built (mypyc when `./dev setup` compiled it)\n"
        f"- command: `python -m benchmarks.kafka_throughput --records {n} --partitions {parts} --runs {args.runs} "
        f"--ref-runs {args.ref_runs}`\n\n"
        "| what | records/s | drain | per worker, records/s | CPU s during the drain (of the cores' total) "
        "| records per worker CPU s |\n|---|---:|---|---|---|---:|\n"
        f"| engine, `run_backtest` (decode + `Engine.process` in batches of 2,000), in-process, median of "
        f"{args.ref_runs} | {fmt(r['backtest_records_s'])} | | | | |\n"
        f"| worker core without Kafka (`PartitionEngine.apply` per record, {parts} partitions), in-process, median "
        f"of {args.ref_runs} | {fmt(r['partition_engines_records_s'])} | | | | |\n"
        + rows +
        f"\nMedians: 1 worker **{fmt(rate1)}**, 2 workers **{fmt(rate2)}** records/s. "
        f"**1 worker / worker core = {ratios['1_worker_vs_partition_engines']:.2f}**, 1 worker / backtest = "
        f"{ratios['1_worker_vs_backtest']:.2f}; **2 workers / 1 worker = {ratios['2_workers_vs_1']:.2f}**. "
        f"Records per worker CPU second: {cpu1} with 1 worker, {cpu2} with 2 (about the same cost per record, "
        "within the spread between runs: what 2 workers gain is bounded by the cores they get, and two workers, the "
        "mock cluster and `others` share 2).\n\n"
        "Timing: from the moment the workers' partition sets are disjoint and cover all partitions (records done "
        f"by then: {before}; left out) to each worker's last partition at its last offset; workers print a status "
        f"line every {STATUS_EVERY_S * 1000:g} ms while busy (the end is the last busy line plus what was left at "
        "the worker's own rate; `+≤` is how much later the first line showing it done came, from the worker's 1 s "
        f"timer). The group formed {formed} s after the processes started (not counted). With 2 workers: "
        f"partitions {two.partitions}. A rebalance during a drain: {'yes' if rebalanced else 'no'}. Records "
        f"processed in all (per drain): {processed}, of {one.records:,}.\n\n"
        "## Correctness\n\n"
        "The alert events in `alerts` against `lifeline backtest` on the same lines and end tick "
        f"({r['alert_events']} transitions; the in-process partition engines gave exactly the same):\n\n"
        + "".join(f"- {alerts(x, i)}\n" for w in (1, 2) for i, x in enumerate(runs[w], 1)) +
        "\n## Sizing\n\n"
        f"Rate: the demo city's register ({', '.join(f'{c} {k}' for k, c in rt['intervals'].items())}) sends "
        f"{rt['nominal_demo_records_s']:.2f} payloads/s at the nominal intervals; the simulated demo sent "
        f"{rt['observed_demo_records_s']:.2f}/s (elevators report every 5 s while running), i.e. "
        f"{rt['per_sensor_records_s']:.4f}/s per sensor (one every {1 / rt['per_sensor_records_s']:.0f} s). "
        "A rate R is the sum over the sensors of 1 / reporting interval (plus bursts: a running elevator, a sensor "
        f"reporting on change). At the demo's mix, Hefei's ~{HEFEI_SENSORS:,} sensors send R ≈ {fmt(h['rate'])}/s "
        f"and Anhui's ~{ANHUI_SETS:,} sets R ≈ {fmt(a['rate'])}/s.\n\n"
        f"Per-worker capacity measured here: **C ≈ {fmt(rate1)} records/s** (one worker process, one payload per "
        f"record, median; 2 workers on these 2 shared cores gave {fmt(rate2)} together). Rule: **workers = ceil(R / "
        f"(C × h))** with headroom h = {args.headroom:g} (the live load at most half a worker, so a backlog after "
        "an outage or a restart drains at least as fast as it builds up, and a noisy neighbour does not make it fall "
        "behind); **partitions ≥ max(2 × workers, 2 × the most workers planned)**, fixed up front (a shard's "
        "partition is CRC-32 of its key mod the partition count, and each partition's checkpoint is its engines' "
        "state: a new count moves shards away from their state), and **≤ the number of shards** (a partition holds "
        "whole shards; more partitions than shards stay empty). The busiest shard cannot be split: R × its share "
        "of the readings must stay under C × h. One worker process keeps about one core busy (one event loop and "
        "the GIL); give each its own core.\n\n"
        f"Demo city: {r['shards']} shards; the largest, `{r['largest_shard']}`, has "
        f"{r['largest_shard_share']:.1%} of the readings (a district's gas wells, joined by the corridor and "
        f"district neighbourhood rules); R ≈ {d['rate']:.1f}/s → {d['workers']} worker, {d['partitions']} partitions. "
        f"Hefei at the demo's mix: R ≈ {fmt(h['rate'])}/s → **{h['workers']} workers, {h['partitions']} partitions** "
        f"(the largest shard ≈ {h['largest_shard_rate']:.0f}/s if a district's share stayed the demo's: "
        f"{'fits' if h['fits'] else 'does NOT fit'}). Anhui: R ≈ {fmt(a['rate'])}/s → **{a['workers']} workers, "
        f"{a['partitions']} partitions** (largest shard ≈ {a['largest_shard_rate']:.0f}/s, "
        f"{'fits' if a['fits'] else 'does NOT fit'}). Shards grouped by district grow with the city unless its "
        "districts are finer than the demo's seven: count the shards of the real register "
        "(`lifeline.engine.shards.shard_keys`) and their share of the readings before choosing the partitions.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
