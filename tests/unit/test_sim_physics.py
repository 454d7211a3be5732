"""Physics sanity of the domain models and the built-in scenarios."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifeline.registry import Registry, load_registry
from simulators import generate, load_scenario
from simulators.domains import water

DEMO = Path(__file__).resolve().parents[2] / "lifeline" / "data" / "demo_city"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(DEMO / "sensors.csv", DEMO / "districts.geojson")


def test_water_demand_peaks_morning_troughs_before_dawn() -> None:
    """Roberts 2005 demand peaks near 09:00 and troughs around 04:00-06:00 local time."""
    midnight_local = 1784044800.0  # 2026-07-15 00:00 +08:00
    ts = midnight_local + np.arange(0, 86400, 60.0)
    d = water.demand(ts)
    hour = lambda i: (ts[i] - midnight_local) / 3600  # noqa: E731
    assert 8.5 <= hour(int(np.argmax(d))) <= 9.5
    assert 3.5 <= hour(int(np.argmin(d))) <= 6.5
    assert abs(float(d.mean()) - 1.0) < 0.05


def test_water_pressure_highest_at_night(registry: Registry) -> None:
    """Node pressure is higher at 03:00 than at 09:00 (demand low at night)."""
    run = generate(registry, load_scenario("quiet"), start=1784044800.0, duration=86400.0)
    stream = next(s for s in run.streams if s.sensor.id == "LY-WAT-M1-N1")
    hours = ((stream.ts + 8 * 3600) % 86400) / 3600
    p = stream.metrics["pressure_mpa"]
    assert p[(hours > 2.5) & (hours < 3.5)].mean() > p[(hours > 8.5) & (hours < 9.5)].mean() + 0.03


def test_drainage_ponding_rises_after_rain_and_lags(registry: Registry) -> None:
    """Underpass depth is ~0 before the storm, rises after rain starts, and peaks after the rain peak."""
    run = generate(registry, load_scenario("e2e_small"))
    by = {s.sensor.id: s for s in run.streams}
    depth, rain = by["LY-DRN-U1"], by["LY-DRN-R1"]
    start = run.scenario.incidents[1].start
    assert depth.metrics["depth_cm"][depth.ts < start].max() < 1.0
    assert depth.metrics["depth_cm"].max() > 20.0
    assert depth.ts[np.argmax(depth.metrics["depth_cm"])] > rain.ts[np.argmax(rain.metrics["rain_mm_5min"])]


def test_gas_leak_reaches_neighbour_later_and_lower(registry: Registry) -> None:
    """The neighbouring well on the same corridor rises later than the source and to a lower peak."""
    run = generate(registry, load_scenario("e2e_small"))
    by = {s.sensor.id: s for s in run.streams}
    src, nb = by["LY-GAS-C1-W04"], by["LY-GAS-C1-W05"]
    first = lambda s: float(s.ts[np.argmax(s.metrics["ch4_lel"] >= 5.0)])  # noqa: E731
    assert first(nb) > first(src) + 60
    assert nb.metrics["ch4_lel"].max() < 0.5 * src.metrics["ch4_lel"].max()


def test_demo_every_domain_has_an_incident_within_a_minute() -> None:
    """The demo scenario starts an incident in each of the six domains within 60 s."""
    from simulators.domains import MODELS

    sc = load_scenario("demo")
    early = {kind for kind, model in
             ((i.kind, m) for i in sc.incidents for m in MODELS.values() if i.kind in m.INCIDENTS)
             if any(i.kind == kind and i.start - sc.start <= 60 for i in sc.incidents)}
    domains = {d for d, m in MODELS.items() if early & set(m.INCIDENTS)}
    assert domains == set(MODELS)
