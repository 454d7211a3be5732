"""Issue 4's done criterion, measured: "With the webhook receiver down for 5 minutes and the engine killed and
restarted during that time, every notification arrives after recovery exactly once (idempotency keys
checked)."

One run of this command:

1. simulates a scenario of the demo city (``demo``, 2 h of event time by default: ~74,000 payloads, some
   140 alert transitions with the shipped packs) and backtests it with the shipped packs, for the alert
   events the live engine must store;
2. starts its own Mosquitto on a free loopback port (``lifeline.testing_broker``), a webhook receiver on
   another (``tests/integration/hook_receiver.py``: one path per receiver, each with its own secret; it
   checks every signature and records every ``X-Lifeline-Key``, repeats included) - but leaves the receiver
   **down**: nothing listens on its port - and ``lifeline run --routes`` with four webhook receivers
   (control centre, gas company, water company, maintenance) in its own process, as shipped: full packs,
   demo register, journal, SQLite store, paho in a child process;
3. publishes the scenario's payloads over QoS 1 at a steady rate, so that they span the outage;
4. halfway through the outage SIGKILLs the ``lifeline run`` process (the dispatcher's threads die with it)
   and starts it again after ``--engine-down``; the broker keeps its session meanwhile;
5. once the outage has lasted ``--outage`` and the store holds every alert event of the backtest, starts the
   receiver and waits until the outbox has nothing pending; then stops the engine with SIGTERM;
6. in the same run, for reference, lets a fresh dispatcher deliver the same notifications from a new outbox
   to the receiver while it is up (what a receiver that was never down costs to serve them all at once).

Reported: notifications expected (the alert events through the routing tree and noise control, decided
again over a backtest of the same stream, plus the reminders of alerts nobody acknowledged), delivered, duplicates (keys
seen more than once; must be 0), missing (must be 0), extra (delivered but not implied; must be 0), the
time from the receiver's return to the first, median, 90th-percentile and last delivery, the drain rate
against the reference, and what lifeline sent while the receiver was down: requests per minute to the dead
receiver and attempts per notification, against the notifications per minute a receiver up the whole time
would have received (the outbox's creation times, measured in the same run).

    python -m benchmarks.delivery_outage [--outage 5m] [--engine-down 5s] [--duration 2h] [--retry-max 5m]

Writes ``benchmarks/results/delivery_outage.md``; progress goes to stderr. Exit status 1 when a
notification is missing, duplicated or extra, or the store lost an alert event.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.common import demo_registry, machine, mqtt_messages, simulated_input, write_result
from benchmarks.e2e_throughput import mosquitto_version
from lifeline import paths
from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.policy import Policy
from lifeline.alerting.routing import Routing, labels_of, load_routing, positions_of
from lifeline.codec import decode
from lifeline.engine import Engine
from lifeline.model import AlertEvent
from lifeline.notifiers.base import Notification
from lifeline.rules.loader import load_rules
from lifeline.sinks.store import AlertStore
from lifeline.testing_broker import Broker, free_port, start_broker, stop_broker
from lifeline.timefmt import parse_duration
from tests.integration.hook_receiver import Delivery, HookReceiver

PREFIX = "lifeline/readings"
CLIENT_ID = "bench-outage"
RECEIVERS = ("control_centre", "gas_company", "water_company", "maintenance")
SECRET_ENV = {r: f"BENCH_HOOK_{r.upper()}" for r in RECEIVERS}
FIRST_RETRY_S = 2.0  # the dispatcher's first wait (Dispatcher.retry_initial_s, as lifeline run uses it)


def say(text: str) -> None:
    print(f"[outage] {text}", file=sys.stderr, flush=True)


def routes_yaml(hook: HookReceiver) -> str:
    """A city's routing: departments hear their domain, the control centre what nobody takes and everything
    from orange on, the maintenance team sensor faults and silent sensors."""
    recv = "\n".join(f"  - name: {r}\n    webhook: {{url: \"{hook.url(r)}\", secret_env: {SECRET_ENV[r]}}}"
                     for r in RECEIVERS)
    return f"""\
receivers:
{recv}
route:
  receiver: control_centre
  routes:
    - match: {{kind: health}}
      receiver: maintenance
    - match: {{kind: nodata}}
      receiver: maintenance
    - match: {{domain: gas}}
      receiver: gas_company
      continue: true
    - match: {{domain: water}}
      receiver: water_company
      continue: true
    - match: {{domain: drainage}}
      receiver: water_company
      continue: true
    - match: {{level: ">=orange"}}
"""


# ---- input ---------------------------------------------------------------------------------------
def scenario_messages(src: Path) -> list[tuple[str, bytes]]:
    """The scenario's payloads as the sensors publish them (``benchmarks.common.mqtt_messages``)."""
    return mqtt_messages(src, PREFIX)


def backtest(msgs: list[tuple[str, bytes]]) -> tuple[list[AlertEvent], float]:
    """The alert events of exactly these payloads, decoded as the runner decodes them and fed in batches of
    whole payloads, as the runner cuts them (a payload's readings are evaluated together); and the engine's
    clock at the end (its watermark)."""
    registry = demo_registry()
    engine = Engine(load_rules([paths.default_rules()]), registry)
    events: list[AlertEvent] = []
    for i in range(0, len(msgs), 1000):
        batch = [r for topic, payload in msgs[i:i + 1000]
                 for r in decode(topic, payload, registry=registry, received_at=None, prefix=PREFIX).readings]
        events.extend(engine.process(batch).events)
    return events, float(engine.watermark or 0.0)


def decided(routing: Routing, events: list[AlertEvent], clock: float) -> list[Notification]:
    """Noise control over the backtest's events, as the runner applies it: the outbox rows it must hold."""
    registry = demo_registry()
    policy = Policy(routing, labels=labels_of(registry), position=positions_of(registry))
    return policy.process(events, 0.0).notifications + policy.advance(clock, 0.0).notifications


class PacedPublisher:
    """QoS 1 at a steady rate in a thread of its own; every PUBACK is counted."""

    def __init__(self, broker: Broker, msgs: list[tuple[str, bytes]], seconds: float) -> None:
        self.msgs, self.rate = msgs, len(msgs) / seconds
        self.sent = self.acked = 0
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-outage-sensors")
        c.max_inflight_messages_set(1000)
        c.on_publish = self._on_publish
        c.connect(broker.host, broker.port)
        c.loop_start()
        self.client = c
        self.thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def _on_publish(self, *a: Any) -> None:
        with self._lock:
            self.acked += 1

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            t0 = time.monotonic()
            for k, (topic, payload) in enumerate(self.msgs):
                ahead = t0 + k / self.rate - time.monotonic()
                if ahead > 0.005:
                    time.sleep(ahead)
                info = self.client.publish(topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise RuntimeError(f"paho refused publish #{k}: {mqtt.error_string(info.rc)}")
                self.sent += 1
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def close(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        self.client.disconnect()
        self.client.loop_stop()
        if self.error is not None:
            raise RuntimeError(f"publisher failed: {self.error}") from self.error
        if self.acked < self.sent:
            raise RuntimeError(f"only {self.acked} of {self.sent} PUBACKs within {timeout:g} s")


# ---- the engine process --------------------------------------------------------------------------
@dataclass
class EngineProcess:
    """``lifeline run`` as a process of its own: started, SIGKILLed, started again, stopped."""

    broker: Broker
    work: Path
    routes: Path
    retry_max: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.work / "lifeline.db"

    def log(self, n: int) -> Path:
        return self.work / f"runner-{n}.log"

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.procs) + 1
        cmd = [sys.executable, "-m", "lifeline.cli", "--log-level", "INFO", "run", "--broker", self.broker.address,
               "--client-id", CLIENT_ID, "--db", str(self.db), "--journal", str(self.work / "journal.jsonl"),
               "--routes", str(self.routes), "--notify-retry-max", self.retry_max, "--status-every", "30s"]
        env = {**os.environ, **self.env, "PYTHONPATH": str(paths.REPO)}
        with self.log(n).open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=paths.REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while "MQTT subscribed" not in self.log(n).read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lifeline run #{n} did not subscribe; its log:\n"
                                   + self.log(n).read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        return proc

    @property
    def current(self) -> subprocess.Popen[bytes]:
        return self.procs[-1]

    def kill(self) -> None:
        self.current.send_signal(signal.SIGKILL)
        self.current.wait(timeout=30)

    def stop(self) -> int:
        self.current.send_signal(signal.SIGTERM)
        return self.current.wait(timeout=120)

    def cleanup(self) -> None:
        for p in self.procs:  # only the processes this benchmark started
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """The runner's store through a read-only connection of our own (the runner keeps writing)."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        con.close()


def outbox_state(db: Path) -> tuple[Counter[str], int]:
    """Notifications by state, and attempts so far over all of them."""
    rows = query(db, "SELECT state, count(*), sum(attempts) FROM outbox GROUP BY state")
    return Counter({s: int(n) for s, n, _ in rows}), sum(int(a) for _, _, a in rows)


# ---- the reference -------------------------------------------------------------------------------
def reference_drain(db: Path, work: Path, routing: Routing, hook: HookReceiver, timeout: float) -> float:
    """A fresh outbox holding the same notifications, pending, delivered by a fresh dispatcher to the receiver
    while it is up: seconds from the dispatcher's start to the last delivery."""
    rows = query(db, "SELECT key, receiver, alert, seq, created, payload FROM outbox WHERE state = 'sent' "
                     "ORDER BY rowid")
    notes = [Notification(k, r, a, int(q), float(c), orjson.loads(p)) for k, r, a, q, c, p in rows]
    ref_db = work / "reference.db"
    with AlertStore(ref_db) as store:
        store.commit_batch([], notifications=notes)
    d = Dispatcher(ref_db, routing.notifiers())
    t0 = time.monotonic()
    d.start()
    try:
        deadline = t0 + timeout
        while len(hook.snapshot()) < len(notes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"reference: {len(hook.snapshot())} of {len(notes)} delivered in {timeout:g} s")
            time.sleep(0.01)
    finally:
        d.stop()
    got = hook.snapshot()
    if len(got) != len(notes) or {g.key for g in got} != {n.key for n in notes}:
        raise RuntimeError("reference: the receiver did not get exactly the outbox's notifications")
    return max(g.at for g in got) - t0


# ---- report --------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def documented_probes(seconds: float, retry_max: float) -> int:
    """How many attempts one notification gets in ``seconds`` on its own schedule (first retry after 2 s,
    doubling to ``retry_max``): what a receiver-wide backoff would send a dead receiver."""
    t, wait, n = 0.0, FIRST_RETRY_S, 0
    while t <= seconds:
        n += 1
        t += wait
        wait = min(wait * 2, retry_max)
    return n


def out_of_order(got: list[Delivery]) -> tuple[int, int]:
    """(receiver, alert) pairs with more than one transition, and those whose transitions arrived not in
    ``seq`` order."""
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for d in sorted(got, key=lambda d: d.at):
        seqs[(d.receiver, d.alert)].append(d.seq)
    multi = [s for s in seqs.values() if len(s) > 1]
    return len(multi), sum(1 for s in multi if s != sorted(s))


def fmt_s(x: float) -> str:
    return f"{x:.1f} s" if x < 120 else f"{x:.0f} s ({x / 60:.1f} min)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outage", default="5m", help="how long the receiver is down (default 5m)")
    ap.add_argument("--kill-at", default=None, help="when the engine is SIGKILLed, after the outage began "
                                                    "(default: halfway)")
    ap.add_argument("--engine-down", default="5s", help="how long the killed engine stays down (default 5s)")
    ap.add_argument("--scenario", default="demo", help="simulator scenario (default demo)")
    ap.add_argument("--duration", default="2h", help="its event time, played during the outage (default 2h)")
    ap.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    ap.add_argument("--retry-max", default="5m", help="lifeline run --notify-retry-max (default 5m, as shipped)")
    args = ap.parse_args(argv)
    outage, down = parse_duration(args.outage), parse_duration(args.engine_down)
    kill_at = parse_duration(args.kill_at) if args.kill_at else outage / 2
    retry_max = parse_duration(args.retry_max)
    stream_s = outage - max(10.0, 0.05 * outage)  # the stream ends shortly before the receiver returns
    if not 0 < kill_at < kill_at + down < stream_s:
        raise SystemExit("--kill-at and --engine-down must fall inside the stream (the outage less a tail)")

    src = simulated_input(args.scenario, args.duration, args.seed)
    msgs = scenario_messages(src)
    say(f"backtesting {len(msgs):,} payloads of scenario {args.scenario!r} ({args.duration}) with the shipped "
        "packs ...")
    events, clock = backtest(msgs)
    wanted = {(e.id, e.seq) for e in events}
    say(f"{len(events)} alert events expected; the stream runs {stream_s:.0f} s at {len(msgs) / stream_s:,.0f} msg/s")

    secrets = {r: f"secret-of-{r}-{os.getpid()}" for r in RECEIVERS}
    env = {SECRET_ENV[r]: s for r, s in secrets.items()}
    with tempfile.TemporaryDirectory(prefix="lifeline-outage-") as tmp:
        work = Path(tmp)
        hook = HookReceiver(free_port(), secrets)  # down: nothing listens on its port yet
        routes = work / "routes.yaml"
        routes.write_text(routes_yaml(hook))
        routing = load_routing(routes, env)
        broker = start_broker(work / "mosquitto")
        engine = EngineProcess(broker, work, routes, args.retry_max, env)
        say(f"{mosquitto_version()} on {broker.address}; receiver port {hook.port} (down)")
        try:
            r = run_outage(engine, hook, msgs, wanted, outage, kill_at, down, stream_s, retry_max)
            stored = r["stored"]
            rows = decided(routing, events, clock)
            routed = sum(len(routing.receivers_for(e, labels_of(demo_registry())(e.sensor))) for e in stored)
            outage_got = hook.snapshot()
            hook.stop()
            say("reference: the same notifications from a fresh outbox to the receiver while it is up ...")
            ref = HookReceiver(hook.port, secrets)
            ref.start()
            try:
                ref_s = reference_drain(engine.db, work, routing, ref, 600)
            finally:
                ref.stop()
        finally:
            engine.cleanup()
            hook.stop()
            stop_broker(broker.proc)
        text, ok = report(args, r, events, wanted, rows, routed, outage_got, ref_s, len(msgs), stream_s, retry_max)
    print(text)
    say(f"written to {write_result('delivery_outage', text)}")
    return 0 if ok else 1


def run_outage(engine: EngineProcess, hook: HookReceiver, msgs: list[tuple[str, bytes]], wanted: set[tuple[str, int]],
               outage: float, kill_at: float, down: float, stream_s: float, retry_max: float) -> dict[str, Any]:
    """Steps 2-5 of the module docstring; what happened, for the report."""
    db = engine.db
    load_start = os.getloadavg()[0]
    engine.start()
    pub = PacedPublisher(engine.broker, msgs, stream_s)
    t0 = time.monotonic()  # the outage and the stream begin (the receiver has been down since before)
    pub.start()
    r: dict[str, Any] = {}
    next_progress = 15.0

    def progress(phase: str) -> None:
        nonlocal next_progress
        now = time.monotonic() - t0
        if now < next_progress:
            return
        next_progress = now + 15.0
        states, attempts = outbox_state(db)
        n_events = query(db, "SELECT count(*) FROM alert_events")
        say(f"+{now:4.0f} s {phase}: published {pub.sent:,}/{len(msgs):,}, stored {n_events[0][0] if n_events else 0}"
            f"/{len(wanted)} alert events, outbox {dict(states)} after {attempts} attempts, "
            f"receiver {'up' if hook.up else 'down'}, deliveries {len(hook.snapshot())}")

    while time.monotonic() - t0 < kill_at:
        progress("receiver down")
        time.sleep(0.1)
    states, attempts = outbox_state(db)
    r["at_kill"] = (time.monotonic() - t0, states["pending"], sum(states.values()), attempts)
    engine.kill()
    say(f"+{time.monotonic() - t0:.0f} s: lifeline run SIGKILLed with {states['pending']} notifications pending "
        f"({attempts} attempts so far); restarting it in {down:g} s")
    time.sleep(down)
    r["restart_at"] = time.monotonic() - t0
    engine.start()
    say(f"+{time.monotonic() - t0:.0f} s: lifeline run restarted and subscribed")
    while not pub.done.is_set():
        progress("receiver down")
        time.sleep(0.1)
    pub.close()
    r["stream_end"] = time.monotonic() - t0
    while time.monotonic() - t0 < outage or set(query(db, "SELECT id, seq FROM alert_events")) != wanted:
        progress("stream done, receiver down")
        if time.monotonic() - t0 > max(outage, r["stream_end"]) + 120:
            stored = set(query(db, "SELECT id, seq FROM alert_events"))
            raise RuntimeError(f"2 min after the stream ended the store lacks {len(wanted - stored)} of the backtest's "
                               f"alert events and holds {len(stored - wanted)} others")
        time.sleep(0.2)
    now_wall = time.time()
    pending = query(db, "SELECT next_at, attempts, receiver FROM outbox WHERE state = 'pending' ORDER BY next_at")
    last = pending[-1] if pending else (now_wall, 0, "")
    # how many, how many due at once, and the one scheduled farthest: how far, after how many attempts, for whom
    r["at_return"] = (len(pending), sum(1 for n, _, _ in pending if n <= now_wall), max(last[0] - now_wall, 0.0),
                      int(last[1]), str(last[2]))
    states, attempts = outbox_state(db)
    r["attempts_down"] = attempts
    r["load"] = (load_start, os.getloadavg()[0])
    hook.start()
    t_up = time.monotonic()
    r["outage"] = t_up - t0
    say(f"+{r['outage']:.0f} s: receiver up; {states['pending']} notifications pending after {attempts} attempts")
    deadline = t_up + retry_max + 120
    while outbox_state(db)[0]["pending"]:
        progress("receiver up")
        if time.monotonic() > deadline:
            say("the outbox still has pending notifications; giving up waiting")
            break
        time.sleep(0.05)
    code = engine.stop()  # from here nothing can send: the receiver's records are final
    r["t_up"], r["exit"] = t_up, code
    say(f"+{time.monotonic() - t0:.0f} s: outbox drained, lifeline run stopped (exit {code})")
    with AlertStore(db) as store:
        r["stored"] = store.events()
        r["outbox"] = store.outbox_rows()
        r["dead"] = store.deadletter_counts()
    logs = "".join(engine.log(n).read_text(errors="replace") for n in (1, 2))
    replay = re.findall(r"replayed (\d+) lines .* (\d+) alert events re-derived", logs)
    r["replay"] = (int(replay[-1][0]), int(replay[-1][1])) if replay else (0, 0)
    r["tracebacks"] = logs.count("Traceback")
    r["t0"] = t0
    return r


def report(args: argparse.Namespace, r: dict[str, Any], events: list[AlertEvent], wanted: set[tuple[str, int]],
           rows: list[Notification], routed: int, got: list[Delivery], ref_s: float,
           n_msgs: int, stream_s: float, retry_max: float) -> tuple[str, bool]:
    stored: list[AlertEvent] = r["stored"]
    outbox = r["outbox"]
    t_up, outage = r["t_up"], r["outage"]
    keys = Counter(d.key for d in got)
    # what must arrive: every row noise control lets through, and the reminders of alerts nobody acknowledged
    # (escalation runs on the wall clock, so those are taken from the outbox)
    reminders = {o.key for o in outbox if o.note.startswith("reminder")}
    expected = {n.key for n in rows if n.state == "pending"} | reminders
    held = Counter(n.state for n in rows if n.state != "pending")
    delivered = {d.key for d in got if d.signed and d.consistent}
    dups = sum(1 for n in keys.values() if n > 1)
    missing, extra = expected - delivered, delivered - expected
    store_ok = {(e.id, e.seq) for e in stored} == wanted and len(stored) == len(wanted)
    bad = sum(1 for d in got if not (d.signed and d.consistent))
    outbox_ok = ({o.key for o in outbox} == {n.key for n in rows} | reminders
                 and Counter(o.state for o in outbox if o.state != "sent") == held)
    ok = (not dups and not missing and not extra and store_ok and not bad and outbox_ok and r["exit"] == 0)
    after = sorted(d.at - t_up for d in got) or [math.nan]
    drain_s = after[-1]
    n = len(expected)
    per_rcv: dict[str, list[Any]] = defaultdict(list)
    for o in outbox:
        if o.state == "sent":  # the held ones were never meant to go out
            per_rcv[o.receiver].append(o)
    first_by = {rcv: min((d.at - t_up for d in got if d.receiver == rcv), default=math.nan) for rcv in per_rcv}
    last_by = {rcv: max((d.at - t_up for d in got if d.receiver == rcv), default=math.nan) for rcv in per_rcv}
    created = sorted(o.created for o in outbox if o.state == "sent")
    span_min = max(created[-1] - created[0], 1.0) / 60 if created else 1.0
    multi, disordered = out_of_order(got)
    kill_t, pending_kill, total_kill, attempts_kill = r["at_kill"]
    n_pending, n_due, farthest, far_attempts, far_rcv = r["at_return"]
    far_first = min((d.at - t_up for d in got if d.receiver == far_rcv), default=math.nan)
    failed = {rcv: sum(o.attempts - 1 for o in rows) for rcv, rows in per_rcv.items()}
    probes_doc = documented_probes(outage, retry_max)
    rows_rcv = "\n".join(
        f"| {rcv} | {len(rows)} | {len(rows) / span_min:.1f} | {failed[rcv]} | {failed[rcv] / (outage / 60):.1f} "
        f"| {statistics.mean(o.attempts for o in rows):.2f} / {max(o.attempts for o in rows)} "
        f"| {fmt_s(first_by[rcv])} / {fmt_s(last_by[rcv])} |"
        for rcv, rows in sorted(per_rcv.items()))
    all_att = [o.attempts for o in outbox if o.state == "sent"]
    kinds = Counter(e.event.value for e in stored)
    status = "**met**" if ok else "**NOT met**"
    verdict = ("after the receiver's return every notification arrived, each key once, signed." if ok else
               "see the table for what went wrong.")
    text = (
        "# Delivery through a receiver outage with the engine killed\n\n"
        f"- machine: {machine()}; 1-min load average {r['load'][0]:.1f} at the start, {r['load'][1]:.1f} at the "
        f"receiver's return (other work on the host counts)\n"
        f"- broker: {mosquitto_version()}, settings of `deploy/mosquitto.conf`, loopback\n"
        f"- input: scenario `{args.scenario}`, {args.duration} of event time (seed {args.seed}): {n_msgs:,} payloads "
        f"published with QoS 1 at a steady {n_msgs / stream_s:,.0f} msg/s over {stream_s:.0f} s; "
        f"{len(events)} alert events in the backtest with the shipped packs "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})\n"
        f"- engine: `lifeline run --routes` (shipped packs, demo register, journal, SQLite store, paho in a child "
        f"process), `--notify-retry-max {args.retry_max}`; four webhook receivers on one loopback HTTP server, one "
        f"path and secret each\n"
        f"- command: `python -m benchmarks.delivery_outage --outage {args.outage} --engine-down {args.engine_down} "
        f"--duration {args.duration} --retry-max {args.retry_max}`\n\n"
        f"Criterion {status}: receiver down {fmt_s(outage)}; `lifeline run` SIGKILLed at +{kill_t:.0f} s with "
        f"{pending_kill} of {total_kill} notifications pending ({attempts_kill} failed attempts so far), restarted "
        f"at +{r['restart_at']:.0f} s (it replayed the {r['replay'][0]:,} journal lines committed since the last "
        f"checkpoint and re-derived {r['replay'][1]} alert event(s) from them); {r['attempts_down']} failed "
        f"attempts in all while the receiver was down; "
        f"{verdict}\n\n"
        "| what | figure |\n|---|---:|\n"
        f"| transitions × the receivers the routing tree names | {routed} |\n"
        f"| notifications expected (through noise control; held: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(held.items())) or 'none'}; {len(reminders)} reminders) | {n} |\n"
        f"| outbox = noise control's decisions over a backtest of the same stream | "
        f"{'yes' if outbox_ok else 'NO'} |\n"
        f"| delivered (distinct keys, signature and key checked) | {len(delivered)} |\n"
        f"| duplicates (keys that arrived more than once) | **{dups}** |\n"
        f"| missing | **{len(missing)}** |\n"
        f"| extra (delivered, not implied by the store) / refused by the receiver (bad signature) | {len(extra)} / "
        f"{bad} |\n"
        f"| alert events stored = backtest (none lost by the kill, none twice) | {'yes' if store_ok else 'NO'} "
        f"({len(stored)}) |\n"
        f"| redelivered readings the restarted engine dead-lettered | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(r['dead'].items())) or 'none'} |\n"
        f"| time from the receiver's return to the first / median / 90th pct / last delivery | "
        f"{after[0]:.1f} s / {pct(after, 0.5):.1f} s / {pct(after, 0.9):.1f} s / **{fmt_s(drain_s)}** |\n"
        f"| pending at the return / due at once / farthest scheduled retry (its failed attempts) | {n_pending} / "
        f"{n_due} / {fmt_s(farthest)} ({far_attempts}) |\n"
        f"| reference: the same {n} notifications, fresh outbox, receiver up | {ref_s:.2f} s "
        f"({n / ref_s:,.0f} notifications/s) |\n"
        f"| drain after the return vs the reference | {drain_s:.1f} s vs {ref_s:.2f} s: **{drain_s / ref_s:.0f}×** |\n"
        f"| attempts per notification, mean / max (1 = no retry) | {statistics.mean(all_att):.2f} / "
        f"{max(all_att)} |\n"
        f"| (receiver, alert) pairs with several transitions / delivered out of `seq` order | {multi} / "
        f"{disordered} |\n\n"
        "Per receiver — what a receiver up the whole time would have received (notifications per minute, from "
        "the outbox's creation times) against what lifeline sent the dead one (failed attempts, per minute of "
        "outage):\n\n"
        "| receiver | notifications | per min, created | failed attempts while down | per min of outage "
        "| attempts per notification, mean / max | first / last delivery after the return |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        f"{rows_rcv}\n\n"
        f"For comparison (computed, not measured): one notification on its own schedule (retry after "
        f"{FIRST_RETRY_S:g} s, doubling to {fmt_s(retry_max)}) is tried {probes_doc} times in {fmt_s(outage)}.\n\n"
        f"Why the drain takes {fmt_s(drain_s)} when the same notifications take {ref_s:.2f} s to a receiver that is "
        f"up: nothing tells the dispatcher that the receiver is back; it finds out at its next probe. A failing "
        f"receiver rests between attempts (2 s doubling to 30 s over its consecutive failures; with nothing due "
        f"it is probed with its oldest notification), so a receiver that returns waits at most 30 s; the first "
        f"accepted notification makes its whole backlog due at once, instead of each on its own retry timer. At "
        f"the return {n_pending} notifications were pending, {n_due} of them due at once; the farthest was "
        f"scheduled {fmt_s(farthest)} later (to {far_rcv or '-'}, after {far_attempts} failed attempts), and "
        f"{far_rcv or '-'}'s first delivery came {far_first:.1f} s after the return. An alert's transitions can "
        f"reach a receiver out of order after an outage ({disordered} of {multi} (receiver, alert) pairs with "
        f"several transitions here): the backlog is sent oldest retry time first. The payload's `seq` orders "
        f"them.\n"
    )
    return text, ok


if __name__ == "__main__":
    sys.exit(main())
