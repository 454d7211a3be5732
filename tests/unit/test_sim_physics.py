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


def test_city_committed_csv_is_the_generator_output_with_twin_transmitters(registry: Registry) -> None:
    """sensors.csv is what ``python -m simulators city`` writes; every gas corridor has a far-end P2 (P1's labels
    plus the last well's chainage, at that well) and every bridge a quarter-span S2 (S1's labels plus position_m)."""
    from simulators.city import build, sensors_csv

    assert (DEMO / "sensors.csv").read_text(encoding="utf-8") == sensors_csv(build()[0])
    p1s = [s for s in registry.sensors.values() if s.id.endswith("-P1")]
    s1s = [s for s in registry.sensors.values() if s.asset_type == "bridge" and s.id.endswith("-S1")]
    assert len(p1s) == 14 and len(s1s) == 11
    for p1 in p1s:
        p2, far = registry.sensors[p1.id[:-1] + "2"], registry.sensors[p1.id[:-2] + "W08"]
        assert p2.labels == {**p1.labels, "chainage_m": far.labels["chainage_m"]} and p2.asset == p1.asset
        assert (p2.lon, p2.lat, p2.metrics) == (far.lon, far.lat, p1.metrics)
    for s1 in s1s:
        s2 = registry.sensors[s1.id[:-1] + "2"]
        assert s2.labels == {**s1.labels, "position_m": str(int(s1.labels["span_m"]) / 4)}
        assert (s2.asset, s2.metrics, s2.lat) == (s1.asset, s1.metrics, s1.lat) and s2.lon < s1.lon


@pytest.mark.parametrize("target", ["LY-GAS-C1-P1", "LY-GAS-C1-P2", "LY-GAS-C1"])
def test_gas_pressure_incident_moves_the_whole_corridor(registry: Registry, target: str) -> None:
    """A regulator failure is corridor-wide: both transmitters, the far end chainage / 400 m/s later."""
    from simulators.base import Incident
    from simulators.domains import gas

    effects = gas.expand_pressure(Incident(0, "gas_pressure", target, 1000.0, 2000.0, -0.25), registry)
    assert [(e.sensor, e.start, e.end, e.magnitude) for e in effects] == [
        ("LY-GAS-C1-P1", 1000.0, 2000.0, -0.25), ("LY-GAS-C1-P2", 1000.0 + 1050 / 400, 2000.0 + 1050 / 400, -0.25)]


def test_gas_far_end_reads_slightly_lower_with_its_own_noise(registry: Registry) -> None:
    """Over a day the far end sits 0.1-0.8 % of p_set below the regulator end, more at the demand peak than at
    night; the two noises are independent (a fault on one shows against its twin)."""
    from simulators.base import sensor_rng
    from simulators.domains import gas

    ts = 1784044800.0 + np.arange(0, 86400, 60.0)
    p1, p2 = registry.sensors["LY-GAS-C1-P1"], registry.sensors["LY-GAS-C1-P2"]
    a = gas.simulate(p1, ts, sensor_rng(1, p1.id), [])["pressure_mpa"]
    b = gas.simulate(p2, ts, sensor_rng(1, p2.id), [])["pressure_mpa"]
    p_set = float(p1.labels["p_set_mpa"])
    loss = (a - b) / p_set
    hours = ((ts + 8 * 3600) % 86400) / 3600
    assert 0.001 < loss.mean() < 0.008
    assert loss[(hours > 8.5) & (hours < 9.5)].mean() > loss[(hours > 3.0) & (hours < 5.0)].mean() + 0.003
    noise = lambda x: x - np.convolve(x, np.ones(31) / 31, mode="same")  # noqa: E731
    assert abs(np.corrcoef(noise(a)[30:-30], noise(b)[30:-30])[0, 1]) < 0.2


def test_bridge_twin_accelerometers_share_f1_and_its_loss(registry: Registry) -> None:
    """A stiffness loss named by one sensor reaches every f1 sensor of the span; S1 and S2 read the same f1
    (within the identification scatter) before and after it; quarter span has ~0.71 of the mid-span RMS."""
    from simulators.base import Incident, sensor_rng
    from simulators.domains import bridge

    inc = Incident(0, "stiffness_loss", "LY-BRG-B1-S1", 1784044800.0 + 3600, 1784044800.0 + 7200, 0.12)
    effects = bridge.expand_stiffness(inc, registry)
    assert [e.sensor for e in effects] == ["LY-BRG-B1-S1", "LY-BRG-B1-S2"]
    ts = 1784044800.0 + np.arange(0, 7200, 60.0)
    s1, s2 = (bridge.simulate(registry.sensors[e.sensor], ts, sensor_rng(1, e.sensor), [e], 1) for e in effects)
    before, during = ts < inc.start, ts >= inc.start + 120
    for mask in (before, during):
        assert abs(s1["freq1_hz"][mask].mean() / s2["freq1_hz"][mask].mean() - 1.0) < 0.003
    assert s1["freq1_hz"][during].mean() < 0.9 * s1["freq1_hz"][before].mean()
    assert s2["freq1_hz"][during].mean() < 0.9 * s2["freq1_hz"][before].mean()
    assert bridge.mode_shape(registry.sensors["LY-BRG-B1-S2"]) == pytest.approx(np.sin(np.pi / 4))
    assert bridge.mode_shape(registry.sensors["LY-BRG-B1-S1"]) == 1.0
    assert 0.6 < s2["accel_rms_mg"].mean() / s1["accel_rms_mg"].mean() < 0.8


def test_elevator_reports_every_5_s_while_running_and_every_10_s_standing(registry: Registry) -> None:
    """REFERENCE §5.6: status every 1-5 s while the car runs; standing, the registry's 10-s heartbeat."""
    run = generate(registry, load_scenario("quiet"), start=1784073600.0, duration=3 * 3600.0)  # 08:00-11:00
    stream = next(s for s in run.streams if s.sensor.id == "LY-ELV-BD1-L1")
    gaps = np.diff(stream.ts)
    moving = stream.metrics["moving"]
    assert set(np.round(gaps, 3).tolist()) <= {5.0, 10.0}
    assert np.all(gaps[moving[:-1] > 0] == 5.0)  # after a report of a running car the next one comes 5 s later
    # standing (neither end of the gap nor the report before it on a running car): the heartbeat only
    standing = (moving[2:] == 0) & (moving[1:-1] == 0) & (moving[:-2] == 0)
    assert standing.sum() > 500 and np.all(gaps[1:][standing] == 10.0)
    assert (moving > 0).sum() >= 20  # it did run in the morning peak
