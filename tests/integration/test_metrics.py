"""`lifeline run --metrics`: a Prometheus scrape over a real socket shows what the runner did — messages,
dead letters by reason, alert events by level, per-batch latency — and the time-series store's backlog."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeline.engine.runner import RunConfig, Runner
from lifeline.sinks.influxdb import InfluxDBSettings
from lifeline.testing_broker import free_port
from tests.integration.conftest import Broker
from tests.integration.helpers import WALK_EVENTS, Publisher, config, publish_walk, start_thread_runner, wait_for

pytestmark = pytest.mark.integration


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _walk_and_scrape(mosquitto: Broker, cfg: RunConfig, ready: Callable[[Runner], bool], what: str, *,
                     bad_json: bool = False) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Run the runner, publish the alert walk (and one message that is not JSON), wait until ``ready``, scrape."""
    runner = start_thread_runner(cfg)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        publish_walk(pub)
        if bad_json:
            pub.publish("lifeline/readings/gas/gas-0002", b"{not json")
            pub.wait_acked()
        wait_for(lambda: ready(runner.runner), 15, what)
        port = runner.runner.metrics_port
        assert port is not None
        return _scrape(port)
    finally:
        pub.close()
        runner.stop()


def test_metrics_count_messages_dead_letters_alerts_and_latency(mosquitto: Broker, tmp_path: Path) -> None:
    cfg = config(mosquitto.port, tmp_path, client_id="it-metrics", metrics_addr=("127.0.0.1", 0))
    m = _walk_and_scrape(mosquitto, cfg, lambda r: r.counts["messages"] >= 7, "7 messages handled", bad_json=True)
    assert m[("lifeline_messages_total", ())] == 7 and m[("lifeline_readings_total", ())] == 6
    assert m[("lifeline_dead_letters_total", (("reason", "not_json"),))] == 1
    fired = {(dict(k)["event"], dict(k)["level"]): v for (n, k), v in m.items() if n == "lifeline_alert_events_total"}
    assert fired == dict.fromkeys(WALK_EVENTS, 1.0)
    assert m[("lifeline_engine_seconds_count", ())] >= 1 and m[("lifeline_batch_seconds_count", ())] >= 1
    assert 0 < m[("lifeline_engine_seconds_sum", ())] <= m[("lifeline_batch_seconds_sum", ())]
    assert 500 < m[("lifeline_watermark_lag_seconds", ())] < 3600  # the readings were ten minutes old
    assert m[("lifeline_broker_connected", ())] == 1 and m[("lifeline_batch_failures_total", ())] == 0
    assert not any(n.startswith("lifeline_tsdb") for n, _ in m)  # no --influxdb, no store metrics


def test_metrics_show_the_time_series_backlog_while_the_store_is_down(mosquitto: Broker, tmp_path: Path) -> None:
    down = InfluxDBSettings(url=f"http://127.0.0.1:{free_port()}", spool_dir=str(tmp_path / "spool"), batch_size=2,
                            flush_interval_s=0.05, timeout_s=1.0, retry_initial_s=0.05, retry_max_s=0.2,
                            close_timeout_s=1.0)
    cfg = config(mosquitto.port, tmp_path, client_id="it-metrics-tsdb", metrics_addr=("127.0.0.1", 0), influxdb=down)
    m = _walk_and_scrape(mosquitto, cfg, lambda r: r.tsdb is not None and r.tsdb.stats()["spooled"] == 6 + 5,
                         "6 readings and 5 alert events spooled")
    assert m[("lifeline_tsdb_spooled_total", ())] == 11 and m[("lifeline_tsdb_written_total", ())] == 0
    assert m[("lifeline_tsdb_errors_total", ())] >= 1
    assert m[("lifeline_tsdb_spool_batches", ())] >= 1 and m[("lifeline_tsdb_spool_bytes", ())] > 0
