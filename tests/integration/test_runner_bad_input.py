"""Every kind of bad input is dead-lettered on lifeline/deadletter with its reason, counted in the
store, and never stops the valid stream flowing beside it."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from lifeline.sinks.store import AlertStore
from tests.integration.conftest import Broker
from tests.integration.helpers import Collector, Publisher, config, gas, start_thread_runner, wait_for

pytestmark = pytest.mark.integration

GAS = "lifeline/readings/gas/gas-0004"


def _bad_inputs(now: float) -> list[tuple[str, str, bytes]]:
    """(expected reason, topic, payload)."""
    ok = {"ts": now - 60, "metric": "ch4_lel"}
    reading = orjson.dumps({"ts": now - 60, "metric": "ch4_lel", "value": 1.0})
    return [
        ("not_json", GAS, b"{not json"),
        ("not_utf8", GAS, b'{"ts": 1, "metric": "ch4_lel", "value": 1, "unit": "\xff\xfe"}'),
        ("empty", GAS, b""),
        ("bad_shape", GAS, b'{"hello": "world"}'),
        ("bad_shape", GAS, b'"just a string"'),
        ("bad_type", GAS, orjson.dumps({**ok, "value": [1, 2]})),
        ("bad_type", GAS, orjson.dumps({**ok, "value": "12.5"})),
        ("bad_type", GAS, orjson.dumps({**ok, "value": 1, "seq": 1.5})),
        ("bad_ts", GAS, orjson.dumps({**ok, "value": 1, "ts": "yesterday"})),
        ("non_finite", GAS, b'{"ts": %d, "metric": "ch4_lel", "value": NaN}' % int(now)),
        ("non_finite", GAS, b'{"ts": %d, "metric": "ch4_lel", "value": Infinity}' % int(now)),
        ("non_finite", GAS, b'{"ts": %d, "metric": "ch4_lel", "value": -Infinity}' % int(now)),
        ("oversize", GAS, b'{"pad": "' + b"x" * (1 << 20) + b'"}'),
        ("oversize", GAS, b"[" + b",".join([reading] * 100_000) + b"]"),
        ("batch_too_large", GAS, b"[" + b",".join([b"0"] * 100_000) + b"]"),
        ("unknown_sensor", "lifeline/readings/gas/gas-9999", reading),
        ("future_ts", GAS, orjson.dumps({**ok, "value": 1, "ts": now + 365 * 86400})),
        ("unknown_domain", "lifeline/readings/sewage/gas-0004", reading),
        ("bad_topic", "lifeline/readings/gas/gas-0004/extra", reading),
        ("domain_mismatch", "lifeline/readings/water/gas-0004", reading),
    ]


def test_runner_dead_letters_every_bad_input_and_keeps_going(mosquitto: Broker, tmp_path: Path) -> None:
    """Each bad input yields one dead letter with its reason (published and counted), while a valid
    stream interleaved with them still walks its alert through every level."""
    cfg = config(mosquitto.port, tmp_path, client_id="it-bad")
    collector = Collector(mosquitto.host, mosquitto.port, ["lifeline/alerts/#", "lifeline/deadletter"])
    runner = start_thread_runner(cfg)
    pub = Publisher(mosquitto.host, mosquitto.port)
    now = time.time()
    bad = _bad_inputs(now)
    series = [1, 6, 12, 55, 25, 3]
    t0 = now - 3600
    try:
        # duplicate seq: the second reading is newer but repeats seq 7
        pub.publish(*gas(5, t0, 1.0, seq=7))
        pub.publish(*gas(5, t0 + 1, 1.0, seq=7))
        for i, (_, topic, payload) in enumerate(bad):
            pub.publish(*gas(10, t0 + i, series[i % len(series)]))
            pub.publish(topic, payload)
        for j, v in enumerate(series):
            pub.publish(*gas(11, t0 + j, v))
        pub.wait_acked()
        expected = Counter(reason for reason, _, _ in bad) + Counter({"duplicate_seq": 1})
        total = sum(expected.values())
        wait_for(lambda: len(collector.on("lifeline/deadletter")) >= total, 20, f"{total} dead letters {expected}")
        wait_for(lambda: len(collector.on("lifeline/alerts/gas/gas-0011")) >= 5, 20, "alerts of the valid stream")
        assert runner.thread.is_alive()
    finally:
        pub.close()
        runner.stop()
        collector.close()
    dead = [p for _, p in collector.on("lifeline/deadletter")]
    assert Counter(d["reason"] for d in dead) == expected
    for d in dead:
        assert d["detail"], d
        assert set(d) >= {"reason", "detail", "topic", "excerpt"}
        assert len(d["excerpt"]) <= 200
    with AlertStore(tmp_path / "lifeline.db") as store:
        assert store.deadletter_counts() == dict(expected)
        events = [(e.event.value, e.level.colour) for e in store.events() if e.sensor == "gas-0011"]
    assert sorted(events) == sorted([("fired", "blue"), ("escalated", "yellow"), ("escalated", "red"),
                                     ("deescalated", "orange"), ("resolved", "orange")])
    assert runner.runner.counts["messages"] == len(bad) * 2 + 2 + len(series)
