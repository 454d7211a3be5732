"""Prometheus metrics of the live runner: ``lifeline run --metrics 127.0.0.1:9464`` serves ``/metrics``.

Read at scrape time from the runner's own counters (nothing is counted twice), plus two histograms the
runner observes per batch. Names and labels (docs/metrics.md):

* ``lifeline_messages_total``, ``lifeline_readings_total``: ingest (rate() gives the ingest rate);
* ``lifeline_dead_letters_total{reason}``: rejected input, by reason;
* ``lifeline_alert_events_total{kind,level,event}``: alert transitions, by level;
* ``lifeline_batch_failures_total``, ``lifeline_delivery_failures_total``;
* ``lifeline_engine_seconds``: engine evaluation time per batch; ``lifeline_batch_seconds``: a whole batch,
  decode to commit and delivery (both histograms);
* ``lifeline_watermark_lag_seconds``: wall clock minus the engine's event-time watermark (how far the
  data is behind);
* ``lifeline_source_queue``: messages received and not yet handled; ``lifeline_broker_connected``;
* ``lifeline_outbox_notifications{state}``: notifications by state (``pending`` is the backlog; sent, failed,
  expired); present only with ``--routes``;
* ``lifeline_tsdb_*``: the time-series store's points written / spooled / rejected / dropped / lost (neither
  written nor spooled: the disk refused), write errors,
  batches that could not be queued (counters) and its backlog: ``lifeline_tsdb_queued``,
  ``lifeline_tsdb_spool_batches``, ``lifeline_tsdb_spool_bytes`` (gauges); present only with ``--influxdb``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lifeline.sinks.store import outbox_counts_at

if TYPE_CHECKING:
    from lifeline.engine.runner import Runner

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_FAILURES = ("batch_failures", "delivery_failures")


class _RunnerCollector(Collector):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Metric]:
        r = self.runner
        c: Mapping[str, int] = dict(r.counts)  # one copy under the GIL: the runner's thread keeps counting
        yield _counter("lifeline_messages", "MQTT messages handled", c.get("messages", 0))
        yield _counter("lifeline_readings", "readings given to the engine", c.get("readings", 0))
        dead = CounterMetricFamily("lifeline_dead_letters", "input rejected, by reason", labels=["reason"])
        for k, v in sorted(c.items()):
            if k.startswith("dead."):
                dead.add_metric([k[5:]], v)
        yield dead
        alerts = CounterMetricFamily("lifeline_alert_events", "alert transitions", labels=["kind", "level", "event"])
        for k, v in sorted(c.items()):
            if k.startswith("alerts."):
                kind, level, event = k[7:].split(".")
                alerts.add_metric([kind, level, event], v)
        yield alerts
        for name in _FAILURES:
            yield _counter(f"lifeline_{name}", name.replace("_", " "), c.get(name, 0))
        wm = r.engine.watermark
        if wm is not None:
            yield _gauge("lifeline_watermark_lag_seconds", "wall clock minus the event-time watermark",
                         r.clock.now() - wm)
        yield _gauge("lifeline_source_queue", "messages received, not yet handled", r.source.pending())
        yield _gauge("lifeline_broker_connected", "1 while connected to the broker", 1.0 if r.source.connected else 0.0)
        if r.dispatcher is not None:
            counts = outbox_counts_at(r.config.db_path)
            out = GaugeMetricFamily("lifeline_outbox_notifications", "notifications in the outbox, by state "
                                    "(pending: the backlog)", labels=["state"])
            for state in ("pending", "sent", "failed", "expired"):
                out.add_metric([state], counts.get(state, 0))
            yield out
        if r.tsdb is not None:
            s = r.tsdb.stats()
            yield _counter("lifeline_tsdb_queue_failures", "time-series store: batches that could not be queued",
                           c.get("tsdb_failures", 0))
            for k in ("written", "spooled", "rejected", "dropped", "lost", "errors"):
                yield _counter(f"lifeline_tsdb_{k}", f"time-series store: points {k}" if k != "errors"
                               else "time-series store: failed writes", s[k])
            for k, doc in (("queued", "lines queued in memory"), ("spool_batches", "batches waiting on disk"),
                           ("spool_bytes", "bytes waiting on disk")):
                yield _gauge(f"lifeline_tsdb_{k}", f"time-series store: {doc}", s[k])


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class RunnerMetrics:
    """The registry of one runner: its collector and the per-batch histograms."""

    def __init__(self, runner: Runner) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_RunnerCollector(runner))
        self.engine_seconds = Histogram("lifeline_engine_seconds", "engine evaluation time per batch",
                                        buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram("lifeline_batch_seconds", "a batch from decode to commit and delivery",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self._stop: Callable[[], None] | None = None

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port (a thread); the port actually bound (0 picks a free one)."""
        from prometheus_client import start_http_server

        httpd, thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)

        self._stop = stop
        return int(httpd.server_address[1])

    def close(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None
