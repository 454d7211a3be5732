"""The time-series store down for minutes under a steady stream: every point arrives once it returns, and
the runner's memory stays bounded (issue 4). End to end, with real parts only.

One run of this command:

1. starts its own Mosquitto (shipped settings, ``lifeline.testing_broker``) and VictoriaMetrics
   (``lifeline.testing_tsdb``: InfluxDB line protocol at ``/api/v2/write``) on free loopback ports;
2. starts ``python -m lifeline.cli run`` (``lifeline run``) as a child process with the shipped packs and the demo city,
   ``--influxdb`` (the VictoriaMetrics URL), ``--influxdb-spool`` and ``--metrics`` (its persistent MQTT
   session is created first, so the broker queues every message for it);
3. publishes the demo city's payloads (``python -m simulators run --scenario demo``; one payload per
   message, QoS 1, every PUBACK counted) at a fixed rate: ``--warmup``, then VictoriaMetrics is stopped
   (SIGTERM) for ``--outage`` while publishing goes on, then restarted on the same port and data directory
   for ``--tail``; then publishing stops and the command waits until the runner has handled every message
   and its time-series sink has written everything (``/metrics``: nothing queued, nothing spooled, points
   written = reading points + alert events);
4. samples every second: the runner's RSS (``VmRSS`` in ``/proc/<pid>/status``) and its MQTT child's, the
   spool's bytes on disk (the files themselves), and the sink's gauges from ``/metrics``;
5. stops the runner (SIGTERM, a clean stop) and reads everything back from VictoriaMetrics' export API:
   every published payload must be there as one ``lifeline_reading`` point (one sample per metric), and
   every alert event the runner committed to its SQLite store (the system of record) as one
   ``lifeline_alert`` point (``seq``, ``level_num``, ``value``, ``alert``), each exactly once with its value
   (VictoriaMetrics keeps duplicate samples, so a point written twice shows up twice).

Memory is reported against a reference measured in the same run: the RSS at the end of the warm-up,
with the store up. The spool's peak is reported against its configured bound.

    python -m benchmarks.tsdb_outage [--rate 500] [--warmup 2m] [--outage 5m] [--tail 60s]
    python -m benchmarks.tsdb_outage --outage 20s --warmup 30s --tail 10s     # a quick check, ~1.5 min

Writes ``benchmarks/results/tsdb_outage.md`` (``--results``); progress goes to stderr. Exits 1 when a point
is missing, duplicated or wrong, or when the backlog did not drain within ``--drain-timeout``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from benchmarks.common import RESULTS, demo_registry, machine
from benchmarks.e2e_throughput import PREFIX, _client, demo_messages, fresh_session, mosquitto_version
from lifeline import _compiled, paths
from lifeline.codec import decode
from lifeline.model import AlertEvent
from lifeline.registry import Registry
from lifeline.rules.loader import load_rules
from lifeline.sinks.influxdb import InfluxDBSettings
from lifeline.sinks.store import AlertStore
from lifeline.testing_broker import Broker, free_port, start_broker, stop_broker
from lifeline.testing_tsdb import VictoriaMetrics
from lifeline.timefmt import TimeFormatError, parse_duration

RUNNER_ID = "bench-tsdb-outage"
MIB = 1024 * 1024


def say(text: str) -> None:
    print(f"[tsdb-outage] {text}", file=sys.stderr, flush=True)


# ---- what the runner's process looks like from outside --------------------------------------------
def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of a process in KiB; 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/children") as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def dir_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (the spool: batch files, a half-written one, rejected batches)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):  # drained (deleted) between the listing and the stat
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def scrape(url: str) -> dict[str, float]:
    """The runner's /metrics, each metric name summed over its labels (``..._total`` for counters)."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        out[name] = out.get(name, 0.0) + float(value)
    return out


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since publishing began
    phase: str
    published: int  # messages acknowledged by the broker so far
    rss_kib: int  # the runner's process
    child_rss_kib: int  # its MQTT child (paho's loop, lifeline/sources/mqtt_process.py)
    spool_disk: int  # bytes of the spool's files
    m: dict[str, float]  # /metrics

    def get(self, name: str) -> int:
        return int(self.m.get(name, 0.0))


class Sampler(threading.Thread):
    """Every ``every`` seconds: RSS, spool on disk, /metrics; ``phase`` says what the store is doing."""

    def __init__(self, pid: int, spool: Path, metrics_url: str, acked: Callable[[], int], t0: float,
                 every: float) -> None:
        super().__init__(name="sampler", daemon=True)
        self.pid, self.spool, self.url, self.acked, self.t0, self.every = pid, spool, metrics_url, acked, t0, every
        self.phase = "warmup"
        self.samples: list[Sample] = []
        self.scrape_errors = 0
        self._stop_evt = threading.Event()
        self._lock = threading.Lock()

    def take(self) -> Sample | None:
        try:
            m = scrape(self.url)
        except OSError:
            self.scrape_errors += 1
            return None
        kids = children(self.pid)
        s = Sample(time.monotonic() - self.t0, self.phase, self.acked(), rss_kib(self.pid),
                   sum(rss_kib(k) for k in kids), dir_bytes(self.spool), m)
        with self._lock:
            self.samples.append(s)
        return s

    def last(self) -> Sample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def run(self) -> None:
        nxt = time.monotonic()
        while not self._stop_evt.is_set():
            self.take()
            nxt += self.every
            self._stop_evt.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(10)


# ---- the steady stream -----------------------------------------------------------------------------
class PacedPublisher(threading.Thread):
    """Publishes message k at ``t0 + k / rate`` (QoS 1, return codes checked, PUBACKs counted) until stopped."""

    def __init__(self, broker: Broker, msgs: list[tuple[str, bytes]], rate: float) -> None:
        super().__init__(name="publisher", daemon=True)
        self.msgs, self.rate = msgs, rate
        self.sent = 0
        self._acked = 0
        self._lock = threading.Lock()
        self._stop_evt = threading.Event()
        self.behind_max = 0  # most messages the publisher was ever behind its schedule
        self.error: str | None = None
        self.exhausted = False
        c = _client("bench-tsdb-publisher", True)
        c.max_inflight_messages_set(1000)
        c.on_publish = self._on_publish
        c.connect(broker.host, broker.port)
        c.loop_start()
        self.client = c
        self.t0 = time.monotonic()

    def _on_publish(self, *a: Any) -> None:
        with self._lock:
            self._acked += 1

    def acked(self) -> int:
        with self._lock:
            return self._acked

    def run(self) -> None:
        self.t0 = time.monotonic()
        try:
            while not self._stop_evt.is_set():
                due = int((time.monotonic() - self.t0) * self.rate) + 1
                if due > len(self.msgs):
                    self.exhausted = True
                    return
                self.behind_max = max(self.behind_max, due - self.sent)
                while self.sent < due and self.sent - self.acked() < 20_000:  # paho: at most 65,535 in flight
                    topic, payload = self.msgs[self.sent]
                    info = self.client.publish(topic, payload, qos=1)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        self.error = f"paho refused publish #{self.sent + 1}: {mqtt.error_string(info.rc)}"
                        return
                    self.sent += 1
                self._stop_evt.wait(0.005)
        except Exception as exc:  # reported by the main thread, which decides the outcome
            self.error = f"publisher: {type(exc).__name__}: {exc}"

    def stop(self, timeout: float = 120.0) -> None:
        """Stop publishing, then wait for the broker to acknowledge everything sent."""
        self._stop_evt.set()
        self.join(10)
        deadline = time.monotonic() + timeout
        while self.acked() < self.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()


# ---- counting what VictoriaMetrics holds ---------------------------------------------------------
@dataclass
class Tally:
    """Expected samples (key -> value) of one measurement, grouped into points; then what the store holds."""

    measurement: str
    expected: dict[tuple[Any, ...], float] = field(default_factory=dict)  # sample key -> value
    point_of: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)  # sample key -> point key
    found: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    wrong_keys: set[tuple[Any, ...]] = field(default_factory=set)
    merged: int = 0  # expected points that share a key with another (the store keeps them as one)

    def expect(self, point: tuple[Any, ...], samples: Iterable[tuple[tuple[Any, ...], float]]) -> None:
        for key, value in samples:
            if key in self.expected:
                self.merged += 1
            self.expected[key] = value
            self.point_of[key] = point

    def see(self, key: tuple[Any, ...], value: float) -> None:
        self.found[key] += 1
        want = self.expected.get(key)  # NaN: present, value not comparable
        if want is not None and not math.isnan(want) and not math.isclose(value, want, rel_tol=1e-12, abs_tol=1e-12):
            self.wrong_keys.add(key)

    def examples(self, k: int = 3) -> list[str]:
        """A few keys that are wrong, for the report: missing, duplicated, unexpected, wrong value."""
        out = [f"missing {key}" for key in self.expected if self.found[key] == 0][:k]
        out += [f"{n} times {key}" for key, n in self.found.items() if n > 1][:k]
        out += [f"unexpected {key}" for key in self.found if key not in self.expected][:k]
        out += [f"wrong value {key}" for key in self.wrong_keys][:k]
        return out

    def summary(self) -> dict[str, int]:
        points = set(self.point_of.values())
        bad_points = {self.point_of[k] for k in self.expected if self.found[k] != 1 or k in self.wrong_keys}
        return {
            "points_expected": len(points),
            "samples_expected": len(self.expected),
            "samples_found": sum(self.found.values()),
            "points_exactly_once": len(points - bad_points),
            "points_missing": len({self.point_of[k] for k in self.expected if self.found[k] == 0}),
            "samples_missing": sum(1 for k in self.expected if self.found[k] == 0),
            "samples_duplicated": sum(n - 1 for n in self.found.values() if n > 1),
            "samples_unexpected": sum(n for k, n in self.found.items() if k not in self.expected),
            "samples_wrong_value": len(self.wrong_keys),
            "merged": self.merged,
        }


def expected_readings(msgs: list[tuple[str, bytes]], registry: Registry) -> Tally:
    """One ``lifeline_reading`` point per payload (sensor, event time), one sample per metric not of quality
    "bad" (``lifeline_reading_<metric>``), decoded by lifeline's codec as the runner decodes them."""
    t = Tally("lifeline_reading")
    for topic, payload in msgs:
        d = decode(topic, payload, registry=registry, received_at=None, prefix=PREFIX)
        if d.dead:
            raise SystemExit(f"input payload on {topic} is rejected by the codec: {d.dead[0].reason}")
        by_point: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], float]]] = {}
        for r in d.readings:
            if r.quality == "bad":
                continue
            ts = round(r.ts * 1000)
            by_point.setdefault((r.sensor, ts), []).append(((r.sensor, f"lifeline_reading_{r.metric}", ts),
                                                            float(r.value)))
        for point, samples in by_point.items():
            t.expect(point, samples)
    return t


def _alert_key(labels: dict[str, str], ts: int) -> tuple[Any, ...]:
    return (labels.get("rule", ""), labels.get("subject", ""), labels.get("sensor", ""), labels.get("kind", ""),
            labels.get("event", ""), labels.get("level", ""), labels.get("state", ""), ts)


def expected_alerts(events: list[AlertEvent]) -> Tally:
    """One ``lifeline_alert`` point per committed alert event; samples ``seq``, ``level_num``, ``value`` (when the
    rule had one) and ``alert``: the alert id is a string field, which VictoriaMetrics (1.79) keeps as a sample
    of value 0 (``lifeline_alert_alert``), so only its presence is compared."""
    t = Tally("lifeline_alert")
    for e in events:
        point = _alert_key({"rule": e.rule, "subject": e.subject, "sensor": e.sensor, "kind": e.kind.value,
                            "event": e.event.value, "level": e.level.colour, "state": e.state.value},
                           round(e.ts * 1000))
        samples: list[tuple[tuple[Any, ...], float]] = [((*point, "seq"), float(e.seq)),
                                                        ((*point, "level_num"), float(int(e.level))),
                                                        ((*point, "alert"), math.nan)]
        if e.value is not None and math.isfinite(e.value):
            samples.append(((*point, "value"), float(e.value)))
        t.expect(point, samples)
    return t


def read_back(vm: VictoriaMetrics, readings: Tally, alerts: Tally, start: float, end: float) -> None:
    """Every sample of either measurement VictoriaMetrics holds between start and end, into the tallies."""
    for series in vm.export('{__name__=~"lifeline_reading_.+"}', start, end):
        name, sensor = series["metric"]["__name__"], series["metric"].get("sensor", "")
        for ts, v in zip(series["timestamps"], series["values"], strict=True):
            readings.see((sensor, name, int(ts)), float(v))
    for series in vm.export('{__name__=~"lifeline_alert_.+"}', start, end):
        fname = series["metric"]["__name__"].removeprefix("lifeline_alert_")
        for ts, v in zip(series["timestamps"], series["values"], strict=True):
            alerts.see((*_alert_key(series["metric"], int(ts)), fname), float(v))


# ---- the run ---------------------------------------------------------------------------------------
@dataclass
class Marks:
    """Monotonic times (seconds since publishing began) of what happened."""

    store_stopped: float = math.nan
    store_restarted: float = math.nan
    publish_stopped: float = math.nan
    first_write_after: float = math.nan  # first sample after the restart with more points written
    spool_empty: float = math.nan  # first sample after the restart with nothing spooled
    drained: float = math.nan  # everything handled and written


def _dur(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise SystemExit(f"{flag}: {exc}") from None


def _mib(kib: float) -> str:
    return f"{kib / 1024:,.1f} MiB"


def _slope_mib_per_min(samples: list[Sample]) -> float:
    if len(samples) < 3:
        return math.nan
    xs = [s.t / 60 for s in samples]
    ys = [s.rss_kib / 1024 for s in samples]
    return statistics.linear_regression(xs, ys).slope


def _fmt_s(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.1f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=500.0,
                    help="messages (payloads, one lifeline_reading point each) published per second (default 500)")
    ap.add_argument("--warmup", default="2m", help="publishing with the store up before the outage; its end is the "
                    "memory reference (default 2m: the runner's RSS levelled off after ~90 s here)")
    ap.add_argument("--outage", default="5m", help="how long the store is stopped (default 5m)")
    ap.add_argument("--tail", default="60s", help="publishing after the store is back (default 60s)")
    ap.add_argument("--drain-timeout", default="10m",
                    help="how long to wait for the backlog to drain after publishing stops (default 10m)")
    ap.add_argument("--sample-every", default="1s", help="RSS / spool / metrics sampling interval (default 1s)")
    ap.add_argument("--results", type=Path, default=RESULTS / "tsdb_outage.md",
                    help="where to write the results (default benchmarks/results/tsdb_outage.md)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (logs, spool, stores)")
    args = ap.parse_args(argv)
    warmup, outage, tail = _dur("--warmup", args.warmup), _dur("--outage", args.outage), _dur("--tail", args.tail)
    drain_timeout, every = _dur("--drain-timeout", args.drain_timeout), _dur("--sample-every", args.sample_every)
    if args.rate <= 0 or warmup < 5 or outage <= 0 or every <= 0:
        raise SystemExit("--rate and --outage must be positive, --warmup at least 5s")

    registry = demo_registry()
    n_rules = len(load_rules([paths.default_rules()]).rules)
    # enough input for the whole schedule plus slack for the seconds a stop / start of the store takes
    n = math.ceil(args.rate * (warmup + outage + tail + 30) * 1.05)
    msgs = demo_messages(n)
    settings = InfluxDBSettings()  # what `lifeline run --influxdb` uses: its bounds are reported
    engine, why = _compiled.state()
    say(f"{len(msgs):,} payloads of the demo city ready; {len(registry)} sensors, {n_rules} rules; engine "
        f"{engine}{f' ({why})' if why else ''}")

    work = Path(tempfile.mkdtemp(prefix="lifeline-tsdb-outage-"))
    broker = start_broker(work / "mosquitto")
    vm = VictoriaMetrics(work / "vm")
    runner: subprocess.Popen[bytes] | None = None
    pub: PacedPublisher | None = None
    sampler: Sampler | None = None
    marks = Marks()
    spool = work / "spool"
    drained = False
    ref = end_down = final = None
    try:
        vm.start()
        say(f"{mosquitto_version()} on {broker.address}; VictoriaMetrics on {vm.url}; work dir {work}")
        fresh_session(broker, RUNNER_ID)  # the broker queues for the runner from the first message on
        mport = free_port()
        cmd = [sys.executable, "-m", "lifeline.cli", "run", "--broker", broker.address, "--client-id", RUNNER_ID,
               "--db", str(work / "lifeline.db"), "--journal", str(work / "journal.jsonl"),
               "--influxdb", vm.url, "--influxdb-spool", str(spool), "--metrics", f"127.0.0.1:{mport}",
               "--status-every", "30s"]
        env = dict(os.environ, PYTHONPATH=str(paths.REPO), LIFELINE_INFLUXDB_TOKEN="bench")
        with (work / "runner.log").open("wb") as log:
            runner = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        metrics_url = f"http://127.0.0.1:{mport}/metrics"
        deadline = time.monotonic() + 60
        while True:
            if runner.poll() is not None:
                raise SystemExit(f"lifeline run exited with {runner.returncode}: "
                                 f"{(work / 'runner.log').read_text()[-3000:]}")
            try:
                if scrape(metrics_url).get("lifeline_broker_connected") == 1.0:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"lifeline run did not connect within 60 s (log {work / 'runner.log'})")
            time.sleep(0.2)
        say(f"lifeline run (pid {runner.pid}) connected; /metrics on 127.0.0.1:{mport}")

        pub = PacedPublisher(broker, msgs, args.rate)
        sampler = Sampler(runner.pid, spool, metrics_url, pub.acked, time.monotonic(), every)
        pub.start()
        sampler.t0 = pub.t0
        sampler.start()

        def since() -> float:
            return time.monotonic() - pub.t0

        def wait_until(t: float, what: str) -> None:
            """Sleep until ``t`` seconds after the start, with a progress line every 15 s."""
            while (left := t - since()) > 0:
                if pub.error or pub.exhausted:
                    raise SystemExit(pub.error or "the input ran out before the schedule did")
                if runner.poll() is not None:
                    raise SystemExit(f"lifeline run exited with {runner.returncode} during {what}")
                time.sleep(min(left, 15.0))
                s = sampler.last()
                if s is not None:
                    say(f"{s.t:6.0f} s {what:8s} published {s.published:>8,} handled "
                        f"{s.get('lifeline_messages_total'):>8,}  RSS {_mib(s.rss_kib)}  spool "
                        f"{s.spool_disk / MIB:6.1f} MB ({s.get('lifeline_tsdb_spool_batches')} batches)  queued "
                        f"{s.get('lifeline_tsdb_queued'):,}  written {s.get('lifeline_tsdb_written_total'):,}")

        say(f"publishing {args.rate:g} msg/s; warm-up {warmup:g} s with the store up")
        wait_until(warmup, "warm-up")
        ref = sampler.take()  # the reference: the end of the warm-up
        sampler.phase = "outage"
        say(f"stopping VictoriaMetrics (pid {vm.proc.pid if vm.proc else '?'}) for {outage:g} s")
        vm.stop()
        marks.store_stopped = since()
        wait_until(marks.store_stopped + outage, "outage")
        end_down = sampler.take()
        sampler.phase = "tail"
        vm.start()
        marks.store_restarted = since()
        say(f"VictoriaMetrics back (pid {vm.proc.pid if vm.proc else '?'}) after "
            f"{marks.store_restarted - marks.store_stopped:.1f} s; publishing {tail:g} s more")
        wait_until(marks.store_restarted + tail, "tail")
        pub.stop()
        if pub.error:
            raise SystemExit(pub.error)
        marks.publish_stopped = since()
        sampler.phase = "drain"
        published = pub.sent
        if pub.acked() != published:
            raise SystemExit(f"the broker acknowledged {pub.acked()} of {published} messages")
        say(f"published {published:,} messages (all acknowledged); waiting for the backlog to drain")
        del msgs[published:]
        readings = expected_readings(msgs, registry)
        points = len(set(readings.point_of.values()))

        def is_drained(s: Sample) -> bool:
            lines = points + s.get("lifeline_alert_events_total")  # what the sink must have taken
            done = s.get("lifeline_tsdb_written_total") + s.get("lifeline_tsdb_rejected_total") \
                + s.get("lifeline_tsdb_dropped_total")
            return (s.phase == "drain" and s.get("lifeline_messages_total") >= published
                    and s.get("lifeline_tsdb_queued") == 0 and s.get("lifeline_tsdb_spool_batches") == 0
                    and done >= lines)

        deadline = time.monotonic() + drain_timeout
        seen = 0
        while not drained and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(every)
            new = sampler.samples[seen:]
            seen += len(new)
            first = next((s for s in new if is_drained(s)), None)  # the first sample that shows it
            if first is not None:
                drained, marks.drained = True, first.t
        if not drained:
            say(f"NOT DRAINED within {drain_timeout:g} s")
        sampler.phase = "after"
        time.sleep(min(5.0, 5 * every))
        final = sampler.take()
        hwm = rss_kib(runner.pid, "VmHWM")
        sampler.stop()
        runner.send_signal(signal.SIGTERM)
        code = runner.wait(60)
        say(f"lifeline run stopped (exit {code})")
        with AlertStore(work / "lifeline.db") as store:
            events = store.events()
        values_per_msg = len(readings.expected) / published
        alerts = expected_alerts(events)
        ts_all = [k[2] for k in readings.expected] + [k[7] for k in alerts.expected]
        say(f"reading back {len(readings.expected):,} reading samples and {len(alerts.expected):,} alert samples")
        read_back(vm, readings, alerts, min(ts_all) / 1000 - 86400, max(ts_all) / 1000 + 86400)
    finally:
        if pub is not None and pub.is_alive():
            pub.stop(5)
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if runner is not None and runner.poll() is None:
            runner.terminate()
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait(10)
        vm.stop()
        stop_broker(broker.proc)
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if ref is None or end_down is None or final is None:
        raise SystemExit("/metrics did not answer at the end of the warm-up, the outage or the drain")
    defaults = {k: ap.get_default(k) for k in ("rate", "warmup", "outage", "tail")}
    return report(Outcome(args, defaults, sampler.samples, ref, end_down, final, marks, readings, alerts, hwm, code,
                          drained, published, pub.behind_max, settings, len(registry), n_rules, engine,
                          values_per_msg, len(events), warmup, tail))


@dataclass(frozen=True)
class Outcome:
    args: argparse.Namespace
    defaults: dict[str, Any]  # of the options that shape the run, to print the command as given
    samples: list[Sample]
    ref: Sample  # the end of the warm-up: the reference
    end_down: Sample  # the end of the outage
    final: Sample  # a few seconds after the drain
    marks: Marks
    readings: Tally
    alerts: Tally
    hwm: int  # the runner's VmHWM, KiB
    code: int  # the runner's exit code
    drained: bool
    published: int
    behind_max: int
    settings: InfluxDBSettings
    sensors: int
    n_rules: int
    engine: str
    values_per_msg: float
    n_events: int
    warmup: float
    tail: float


def report(o: Outcome) -> int:
    args, samples, marks, settings, ref, end_down = o.args, o.samples, o.marks, o.settings, o.ref, o.end_down
    readings, alerts, published, every = o.readings, o.alerts, o.published, every_of(o.samples)

    def phase(*names: str) -> list[Sample]:
        return [s for s in samples if s.phase in names]

    warm, down, back = phase("warmup"), phase("outage"), phase("tail", "drain")
    peak_down = max(down, key=lambda s: s.rss_kib)
    peak_back = max(back, key=lambda s: s.rss_kib)
    after_rss = o.final.rss_kib
    spool_peak = max(s.spool_disk for s in samples)
    gauge_peak = max(s.get("lifeline_tsdb_spool_bytes") for s in samples)
    batches_peak = max(s.get("lifeline_tsdb_spool_batches") for s in samples)
    queued_peak = max(s.get("lifeline_tsdb_queued") for s in samples)
    lag_peak = max(s.published - s.get("lifeline_messages_total") for s in samples)
    child_ref, child_peak = ref.child_rss_kib, max(s.child_rss_kib for s in samples)
    last = samples[-1]
    for s in samples:
        if math.isnan(marks.first_write_after) and s.t > marks.store_restarted \
                and s.get("lifeline_tsdb_written_total") > end_down.get("lifeline_tsdb_written_total"):
            marks.first_write_after = s.t
        if math.isnan(marks.spool_empty) and s.t > marks.store_restarted and s.get("lifeline_tsdb_spool_batches") == 0:
            marks.spool_empty = s.t
    spooled_during = end_down.get("lifeline_tsdb_spool_bytes") - ref.get("lifeline_tsdb_spool_bytes")
    down_s = end_down.t - ref.t
    rate_mb_min = spooled_during / MIB / (down_s / 60) if down_s > 0 else math.nan
    to_bound = settings.max_spool_bytes / MIB / rate_mb_min if rate_mb_min > 0 else math.nan
    slope_down = _slope_mib_per_min(down)
    second_half = [s for s in down if s.t >= ref.t + down_s / 2]
    slope_down_2 = _slope_mib_per_min(second_half)
    slope_warm = _slope_mib_per_min([s for s in warm if s.t >= ref.t / 2])
    r, a = readings.summary(), alerts.summary()
    exact = all(x["points_exactly_once"] == x["points_expected"] and x["samples_unexpected"] == 0 for x in (r, a))
    ok = exact and o.drained and o.code == 0 and last.get("lifeline_tsdb_dropped_total") == 0
    pub_s = marks.publish_stopped
    rate = published / pub_s if pub_s > 0 else math.nan
    dead = last.get("lifeline_dead_letters_total")
    quick = "".join(f" --{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f" --{k.replace('_', '-')} {v}"
                    for k, v in vars(args).items() if k in o.defaults and v != o.defaults[k])

    def ratio(kib: float) -> str:
        return f"{kib / ref.rss_kib:.3f}"

    def row(name: str, x: dict[str, int]) -> str:
        return (f"| `{name}` | {x['points_expected']:,} | {x['points_exactly_once']:,} | {x['points_missing']:,} | "
                f"{x['samples_expected']:,} | {x['samples_found']:,} | {x['samples_duplicated']:,} | "
                f"{x['samples_unexpected']:,} | {x['samples_wrong_value']:,} |")

    step = max(every, round((last.t - samples[0].t) / 24 / 5) * 5 or 5)
    timeline, nxt = [], 0.0
    for s in samples:
        marked = s is ref or s is end_down or s is last
        if marked or (s.t + 1e-9 >= nxt and min(abs(s.t - ref.t), abs(s.t - end_down.t)) > every / 2):
            timeline.append(s)
            nxt = (s.t // step + 1) * step
    label = {id(ref): "end of warm-up (reference)", id(end_down): "end of outage", id(last): "after the drain"}
    tl = "\n".join(
        f"| {s.t:,.0f} | {label.get(id(s), s.phase)} | {s.published:,} | {s.get('lifeline_messages_total'):,} | "
        f"{_mib(s.rss_kib)} | "
        f"{ratio(s.rss_kib)} | {s.spool_disk / MIB:,.2f} | {s.get('lifeline_tsdb_spool_batches'):,} | "
        f"{s.get('lifeline_tsdb_queued'):,} | {s.get('lifeline_tsdb_written_total'):,} | "
        f"{s.get('lifeline_tsdb_errors_total'):,} |" for s in timeline)
    verdict = "**every point exactly once**" if exact else "**POINTS MISSING, DUPLICATED OR WRONG**: " + "; ".join(
        f"`{x}`" for x in readings.examples() + alerts.examples())
    text = (
        "# Time-series store outage under a steady stream\n\n"
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- machine: {machine()}, {os.cpu_count()} cores\n"
        f"- command: `python -m benchmarks.tsdb_outage{quick}`\n"
        f"- broker: {mosquitto_version()}, settings of `deploy/mosquitto.conf`, loopback\n"
        f"- store: VictoriaMetrics (Debian `victoria-metrics`), line protocol at `/api/v2/write`, loopback; "
        f"stopped (SIGTERM) after {o.warmup:g} s for {marks.store_restarted - marks.store_stopped:,.1f} s "
        f"(`--outage {args.outage}`), restarted on the same port and data, then {o.tail:g} s more publishing\n"
        f"- runner: `python -m lifeline.cli run --influxdb URL --influxdb-spool DIR --metrics HOST:PORT` in a child "
        f"process; {o.n_rules} rules (shipped packs), {o.sensors} sensors (demo city); engine: {o.engine}; "
        f"sink defaults: batches of {settings.batch_size:,} lines or {settings.flush_interval_s:g} s, queue "
        f"{settings.queue_lines:,} lines, spool bound {settings.max_spool_bytes / MIB:,.0f} MiB, retry "
        f"{settings.retry_initial_s:g} s doubling to {settings.retry_max_s:g} s\n"
        f"- input: the first {published:,} payloads of the demo city (scenario `demo`), one per MQTT message, QoS 1, "
        f"published at {rate:,.1f} msg/s (target {args.rate:g}; {o.values_per_msg:.2f} metric values per message, "
        f"{rate * o.values_per_msg:,.0f} values/s), every PUBACK received; publisher at most "
        f"{o.behind_max:,} messages behind its schedule\n\n"
        f"## Points: published / committed vs stored\n\n"
        "Read back through VictoriaMetrics' export API after the runner stopped. Expected: one `lifeline_reading` "
        "point per published payload (one sample per metric, `lifeline_reading_<metric>`), and one `lifeline_alert` "
        "point per alert event in the runner's SQLite store (samples `seq`, `level_num`, `value` when the rule had "
        "one, and `alert`: VictoriaMetrics stores the alert id, a string field, as a sample of value 0). "
        "VictoriaMetrics keeps duplicate samples, so a point written twice would count twice.\n\n"
        "| measurement | points expected | points found exactly once | points missing | samples expected | "
        "samples found | duplicated | unexpected | wrong value |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"{row('lifeline_reading', r)}\n{row('lifeline_alert', a)}\n\n"
        f"Result: {verdict}. Runner: {last.get('lifeline_messages_total'):,} messages handled of {published:,} "
        f"published, {dead:,} dead letters, {o.n_events:,} alert events committed; sink: "
        f"{last.get('lifeline_tsdb_written_total'):,} points written, {last.get('lifeline_tsdb_spooled_total'):,} "
        f"went through the spool, {last.get('lifeline_tsdb_dropped_total'):,} dropped, "
        f"{last.get('lifeline_tsdb_rejected_total'):,} rejected, {last.get('lifeline_tsdb_errors_total'):,} failed "
        f"write attempts; runner exit code {o.code}."
        + "".join(f" {x['merged']:,} expected {name} samples share their key with another (stored as one)."
                  for name, x in (("reading", r), ("alert", a)) if x["merged"])
        + "\n\n"
        "## Memory and backlog\n\n"
        "Reference: the runner's RSS at the end of the warm-up (store up), same run.\n\n"
        "| figure | value | vs reference / bound |\n|---|---:|---:|\n"
        f"| runner RSS at the end of the warm-up (**reference**) | {_mib(ref.rss_kib)} | 1.000 |\n"
        f"| peak RSS during the outage (at {peak_down.t - ref.t:,.0f} s of {down_s:,.0f} s) | "
        f"{_mib(peak_down.rss_kib)} | **{ratio(peak_down.rss_kib)}** |\n"
        f"| RSS at the end of the outage | {_mib(end_down.rss_kib)} | {ratio(end_down.rss_kib)} |\n"
        f"| peak RSS from the restart until drained | {_mib(peak_back.rss_kib)} | {ratio(peak_back.rss_kib)} |\n"
        f"| RSS after the drain | {_mib(after_rss)} | **{ratio(after_rss)}** |\n"
        f"| RSS trend during the outage (least squares; second half) | {slope_down:+.2f} MiB/min; "
        f"{slope_down_2:+.2f} MiB/min | warm-up's second half {slope_warm:+.2f} MiB/min |\n"
        f"| kernel's RSS high-water mark of the runner (`VmHWM`, whole run) | {_mib(o.hwm)} | {ratio(o.hwm)} |\n"
        f"| its MQTT child's RSS: reference / peak | {_mib(child_ref)} / {_mib(child_peak)} | "
        f"{child_peak / child_ref if child_ref else math.nan:.3f} |\n"
        f"| spool peak on disk (files) | {spool_peak / MIB:,.2f} MiB | **{spool_peak / settings.max_spool_bytes:.4f}** "
        f"of the {settings.max_spool_bytes / MIB:,.0f} MiB bound |\n"
        f"| spool peak per `/metrics` (`lifeline_tsdb_spool_bytes`, batches) | {gauge_peak / MIB:,.2f} MiB, "
        f"{batches_peak:,} batches | |\n"
        f"| spool growth during the outage | {rate_mb_min:,.2f} MiB/min | bound reached after ~{to_bound:,.0f} "
        f"min of outage at this rate |\n"
        f"| sink queue in memory, peak (`lifeline_tsdb_queued`) | {queued_peak:,} lines | "
        f"{queued_peak / settings.queue_lines:.4f} of {settings.queue_lines:,} |\n"
        f"| runner behind the publisher, peak (messages published, not yet handled) | {lag_peak:,} | |\n\n"
        "## Drain\n\n"
        "| from | to | time |\n|---|---|---:|\n"
        f"| store restarted | first point written again | {_fmt_s(marks.first_write_after - marks.store_restarted)} |\n"
        f"| store restarted | spool empty | {_fmt_s(marks.spool_empty - marks.store_restarted)} |\n"
        f"| publishing stopped | every message handled and every point written | "
        f"{_fmt_s(marks.drained - marks.publish_stopped)} |\n\n"
        f"(sampled every {every:g} s; the writer retries a dead store after a backoff of up to "
        f"{settings.retry_max_s:g} s, so the first write after the restart waits for the current backoff)\n\n"
        "## Timeline\n\n"
        "| t (s) | phase | published | handled | runner RSS | / ref | spool (MiB) | spool batches | queued lines "
        "| points written | failed writes |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"{tl}\n"
    )
    print(text)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    say(f"written to {args.results}")
    say(f"points: readings {r['points_exactly_once']:,}/{r['points_expected']:,}, alerts "
        f"{a['points_exactly_once']:,}/{a['points_expected']:,} exactly once; RSS ref {_mib(ref.rss_kib)}, outage peak "
        f"{ratio(peak_down.rss_kib)}, after drain {ratio(after_rss)}; spool peak {spool_peak / MIB:.1f} MiB of "
        f"{settings.max_spool_bytes / MIB:.0f}; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def every_of(samples: list[Sample]) -> float:
    gaps = [b.t - a.t for a, b in itertools.pairwise(samples) if b.phase == a.phase]
    return round(statistics.median(gaps), 1) if gaps else 1.0


if __name__ == "__main__":
    sys.exit(main())
