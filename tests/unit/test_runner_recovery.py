"""Replay-forward recovery of the live runner: the engine checkpoint is written only every few seconds,
so a crash between checkpoints is recovered by restoring the checkpoint and replaying the journal up to
the last committed batch. The state must equal an uninterrupted run's; nothing is published twice.

The MQTT source here is an in-memory fake at the source boundary (the real one is covered by the
integration tests, SIGKILL included)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import orjson

from lifeline.clock import ManualClock
from lifeline.engine.runner import RunConfig, Runner
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet
from lifeline.sinks.store import AlertStore
from lifeline.sources.mqtt import Message, MqttSource
from lifeline.sources.replay import reading_lines
from lifeline.testing import reading, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0

PATTERN = [1, 6, 12, 25, 55, 30, 12, 6, 2, 0]
BATCH = 40


def city() -> tuple[RuleSet, Registry]:
    """10 gas sensors and a methane threshold rule (blue 5 / yellow 10 / orange 20 / red 50)."""
    return RuleSet((threshold_rule(),)), registry_of(sensors("gas", 10))


def gas(sensor: int, ts: float, value: float, seq: int) -> tuple[str, bytes]:
    return f"lifeline/readings/gas/gas-{sensor:04d}", orjson.dumps({"ts": ts, "metric": "ch4_lel", "value": value,
                                                                     "seq": seq})


class FakeSource:
    """Hands out queued messages in batches; records acks and publishes."""

    def __init__(self, msgs: list[Message]) -> None:
        self.queue = list(msgs)
        self.acked: list[int] = []
        self.published: list[tuple[str, bytes]] = []
        self.connected = True

    def start(self, wait_s: float | None = None) -> None:
        pass

    def stop(self) -> None:
        pass

    def pending(self) -> int:
        return len(self.queue)

    def get_batch(self, max_n: int, wait_s: float, linger_s: float = 0.0) -> list[Message]:
        out, self.queue = self.queue[:max_n], self.queue[max_n:]
        return out

    def ack(self, messages: list[Message]) -> None:
        self.acked.extend(m.mid for m in messages)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        self.published.append((topic, payload))
        return True


def _messages() -> list[Message]:
    out: list[Message] = []
    for i in range(60):
        for s in range(10):
            topic, payload = gas(s, T0 + i, PATTERN[(i + s) % len(PATTERN)] + s * 0.1, seq=i)
            out.append(Message(topic, payload, len(out) + 1, 1, T0 + 1000))
    return out


def _runner(tmp: Path, msgs: list[Message], clock: ManualClock, interval: float = 3600.0) -> tuple[Runner, FakeSource]:
    rules, reg = city()
    cfg = RunConfig(db_path=str(tmp / "lifeline.db"), journal_path=str(tmp / "journal.jsonl"), batch_size=BATCH,
                    checkpoint_interval_s=interval, status_interval_s=3600.0)
    src = FakeSource(msgs)
    runner = Runner(cfg, rules, reg, clock=clock, source=cast(MqttSource, src))
    runner.start()
    return runner, src


def _steps(runner: Runner, n: int) -> None:
    for _ in range(n):
        runner.step()


def _crash(runner: Runner) -> None:
    """What SIGKILL leaves: files as they are, no final checkpoint."""
    assert runner.store is not None and runner.journal is not None
    runner.store.close()
    runner.journal.close()


def _stored(tmp: Path) -> list[tuple[str, int, str, float]]:
    with AlertStore(tmp / "lifeline.db") as store:
        return [(e.id, e.seq, e.level.colour, e.ts) for e in store.events()]


def test_crash_between_checkpoints_replays_the_journal_tail(tmp_path: Path) -> None:
    msgs = _messages()
    k = 8  # batches before the crash; the only checkpoint is the baseline one
    ref_dir, live_dir = tmp_path / "ref", tmp_path / "live"

    ref, ref_src = _runner(ref_dir, msgs, ManualClock())
    _steps(ref, k)
    ref_mid_snapshot = ref.engine.snapshot()
    _steps(ref, len(msgs) // BATCH - k + 1)
    assert not ref_src.queue
    ref_final = ref.engine.snapshot()
    ref.close()
    ref_events = _stored(ref_dir)
    assert len(ref_events) > 5, "the scenario must raise alerts"

    clock = ManualClock()
    live, src = _runner(live_dir, msgs, clock)
    _steps(live, k)
    with AlertStore(live_dir / "lifeline.db") as store:
        cp = store.checkpoint()
        assert cp is not None and cp.journal_offset == 0  # nothing but the baseline checkpoint
        assert store.committed_offset() == (live_dir / "journal.jsonl").stat().st_size > 0
    published_before = len(src.published)
    assert published_before > 0
    _crash(live)
    # A batch journaled but never committed (killed between steps 3 and 4): cut on restart.
    journal = live_dir / "journal.jsonl"
    committed_size = journal.stat().st_size
    with journal.open("ab") as f:
        f.write(reading_lines([reading("gas-0000", 99.0, T0 + 10_000, seq=10_000)]))

    again, src2 = _runner(live_dir, msgs[k * BATCH:], clock)
    assert journal.stat().st_size == committed_size
    assert again.engine.snapshot() == ref_mid_snapshot
    assert src2.published == [], "replayed events were committed before the crash: not published again"
    with AlertStore(live_dir / "lifeline.db") as store:
        cp = store.checkpoint()
        assert cp is not None and cp.journal_offset == committed_size  # recovery checkpointed at once
    _steps(again, len(msgs) // BATCH)
    assert not src2.queue
    assert again.engine.snapshot() == ref_final
    again.close()
    stored = _stored(live_dir)
    assert len(stored) == len(set(stored))
    assert sorted(stored) == sorted(ref_events)
    assert len(src.published) + len(src2.published) == len(ref_src.published)


def test_checkpoint_cadence_and_clean_stop(tmp_path: Path) -> None:
    msgs = _messages()
    clock = ManualClock()
    runner, _ = _runner(tmp_path, msgs, clock, interval=5.0)
    _steps(runner, 3)
    with AlertStore(tmp_path / "lifeline.db") as store:
        assert store.checkpoint().journal_offset == 0  # type: ignore[union-attr]
    clock.advance(5.0)
    _steps(runner, 1)
    size = (tmp_path / "journal.jsonl").stat().st_size
    with AlertStore(tmp_path / "lifeline.db") as store:
        assert store.checkpoint().journal_offset == size  # type: ignore[union-attr]
    _steps(runner, 2)
    runner.close()  # a clean stop leaves a checkpoint at the end: no replay next time
    size = (tmp_path / "journal.jsonl").stat().st_size
    with AlertStore(tmp_path / "lifeline.db") as store:
        assert store.checkpoint().journal_offset == size == store.committed_offset()  # type: ignore[union-attr]


def test_engine_failure_rewinds_to_the_last_commit_not_the_last_checkpoint(tmp_path: Path) -> None:
    msgs = _messages()
    runner, _ = _runner(tmp_path, msgs, ManualClock())
    _steps(runner, 5)
    state = runner.engine.snapshot()
    assert runner._rewind() > 0
    assert runner.engine.snapshot() == state
    runner.close()


ROUTES = """\
receivers:
  - name: duty_log
    log: {path: "%s"}
  - name: gas_company
    log: {path: "%s"}
route:
  receiver: duty_log
  routes:
    - {match: {domain: gas}, receiver: gas_company, continue: true}
    - {match: {level: ">=orange"}, receiver: duty_log}
noise:
  resolve_hold: 5s
  flapping: {window: 30s, changes: 4, quiet: 20s}
"""


def _outbox(tmp: Path) -> set[tuple[str, str, str]]:
    with AlertStore(tmp / "lifeline.db") as store:  # sent or not yet is the dispatcher's timing; the rest is not
        return {(r.key, r.receiver, "queued" if r.state in ("pending", "sent") else r.state)
                for r in store.outbox_rows()}


def test_a_crash_and_replay_queue_the_same_notifications_as_an_uninterrupted_run(tmp_path: Path) -> None:
    """The noise policy's state rides in the checkpoint and the replay re-derives its decisions: bounces,
    flapping and held "resolved"s come out as the same outbox rows (keys and states) after a crash between
    checkpoints as in one uninterrupted run."""
    from lifeline.alerting.routing import load_routing

    msgs = _messages()
    dirs = {name: tmp_path / name for name in ("ref", "live")}
    for d in dirs.values():
        d.mkdir()
        (d / "routes.yaml").write_text(ROUTES % (d / "duty.jsonl", d / "gas.jsonl"))

    def runner(d: Path, queue: list[Message], clock: ManualClock) -> tuple[Runner, FakeSource]:
        rules, reg = city()
        cfg = RunConfig(db_path=str(d / "lifeline.db"), journal_path=str(d / "journal.jsonl"), batch_size=BATCH,
                        checkpoint_interval_s=3600.0, status_interval_s=3600.0,
                        routing=load_routing(d / "routes.yaml", env={}))
        src = FakeSource(queue)
        r = Runner(cfg, rules, reg, clock=clock, source=cast(MqttSource, src))
        r.start()
        return r, src

    ref, _ = runner(dirs["ref"], msgs, ManualClock())
    _steps(ref, len(msgs) // BATCH + 1)
    ref.close()
    want = _outbox(dirs["ref"])
    states = {s for _, _, s in want}
    assert {"queued", "flapping", "suppressed"} <= states, states

    clock = ManualClock()
    live, _ = runner(dirs["live"], msgs, clock)
    k = 7
    _steps(live, k)
    if live.dispatcher is not None:
        live.dispatcher.stop()
    _crash(live)
    again, _ = runner(dirs["live"], msgs[k * BATCH:], clock)
    _steps(again, len(msgs) // BATCH)
    again.close()
    assert _outbox(dirs["live"]) == want
