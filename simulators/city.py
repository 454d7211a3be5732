"""The demo city: seven Hefei districts and 345 sensors across the six lifeline domains,
generated deterministically and committed as data (``lifeline/data/demo_city``).

Gas corridors and bridges carry twin sensors, so a rule can tell one sensor disagreeing with its twin
(a sensor fault) from both moving (an incident): pressure transmitters P1 at the regulator end and P2
at the far end (the last well's chainage), accelerometers S1 at mid-span and S2 at quarter span. The
twins are derived from values already drawn: adding them consumed no draw, so every other sensor is
placed and labelled as before.

Reporting intervals are demo intervals, much faster than the field norms, so a demo shows data
within a minute (REFERENCE real-world figures in brackets):

====================  =======  ===========================================================
domain                demo     real world
====================  =======  ===========================================================
gas (methane, pipe)   60 s     collect/report in minutes, report 15-60 min, alarms at once [G12]
water (pressure/flow) 60 s     15 min logging (UK norm) [W6]
drainage              60 s     rain <= 5 min, flow <= 15 min [D8]; 1 min while wet (⚠INF)
bridge (summaries)    60 s     50 Hz raw accel, modes identified hourly [B2]
elevator (status)     10 s     heartbeat 1-5 s moving, 60 s idle (§5.6); the model adds 5-s reports while moving
crowd                 30 s     10-60 s (§6.1 ⚠INF)
====================  =======  ===========================================================
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lifeline.model import Sensor
from simulators.base import sensor_rng

DEMO_DIR = Path(__file__).resolve().parent.parent / "lifeline" / "data" / "demo_city"
COLUMNS = ("id", "domain", "district", "lon", "lat", "asset", "asset_type", "owner", "interval_s", "metrics",
           "labels")
M_PER_DEG_LAT = 111_000.0


@dataclass(frozen=True, slots=True)
class Area:
    code: str
    name: str
    west: float
    south: float
    east: float
    north: float

    def ring(self) -> list[list[float]]:
        w, s, e, n = self.west, self.south, self.east, self.north
        mx, my = round((w + e) / 2, 4), round((s + n) / 2, 4)
        # an octagon-ish outline rather than a bare box: boundary roads are never straight
        return [[w, s], [mx, s - 0.004], [e, s], [e + 0.003, my], [e, n], [mx, n + 0.003], [w, n],
                [w - 0.003, my], [w, s]]


#: Hefei districts (approximate, around lon 117.2 / lat 31.8; not survey boundaries).
DISTRICTS: tuple[Area, ...] = (
    Area("LY", "Luyang", 117.26, 31.86, 117.32, 31.94),
    Area("YH", "Yaohai", 117.32, 31.84, 117.40, 31.92),
    Area("SS", "Shushan", 117.18, 31.80, 117.26, 31.88),
    Area("BH", "Baohe", 117.26, 31.74, 117.36, 31.84),
    Area("JK", "Jingkai", 117.14, 31.72, 117.26, 31.80),
    Area("GX", "Gaoxin", 117.06, 31.80, 117.18, 31.88),
    Area("XZ", "Xinzhan", 117.32, 31.92, 117.42, 32.00),
)
OWNERS = {"gas": "gas_company", "water": "water_utility", "drainage": "drainage_dept",
          "bridge": "bridge_authority", "elevator": "elevator_maintenance", "crowd": "venue_operator"}
INTERVALS = {"gas": 60.0, "water": 60.0, "drainage": 60.0, "bridge": 60.0, "elevator": 10.0, "crowd": 30.0}
VENUES = {"LY": ("Sipailou Station", "Hefei Grand Theatre"), "YH": ("Dadongmen Station", "Yaohai Stadium"),
          "SS": ("Sanxiaokou Station", "Tianehu Park"), "BH": ("Baohe Park Station", "Binhu Convention Center"),
          "JK": ("Jinzhai Road Station", "Sports Center Stadium"), "GX": ("Science Ave Station", "Innovation Mall"),
          "XZ": ("Hefei Railway Station", "Xinzhan Expo Hall")}


class _Builder:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.sensors: list[Sensor] = []

    def add(self, area: Area, sid: str, domain: str, lon: float, lat: float, asset: str, asset_type: str,
            metrics: dict[str, str], labels: dict[str, Any]) -> None:
        self.sensors.append(Sensor(
            id=sid, domain=domain, district=area.code, lon=round(lon, 6), lat=round(lat, 6), asset=asset,
            asset_type=asset_type, owner=OWNERS[domain], interval_s=INTERVALS[domain], metrics=metrics,
            labels={k: str(v) for k, v in labels.items()},
        ))

    def district(self, area: Area) -> None:
        rng = sensor_rng(self.seed, area.code, "city")
        self.gas(area, rng)
        self.water(area, rng)
        self.drainage(area, rng)
        self.bridges(area, rng)
        self.elevators(area, rng)
        self.crowd(area, rng)

    def point(self, area: Area, rng: np.random.Generator, margin: float = 0.15) -> tuple[float, float]:
        fx, fy = rng.uniform(margin, 1 - margin, 2)
        return area.west + fx * (area.east - area.west), area.south + fy * (area.north - area.south)

    def gas(self, area: Area, rng: np.random.Generator) -> None:
        for c in (1, 2):
            corridor = f"{area.code}-GAS-C{c}"
            lon0, lat0 = self.point(area, rng, 0.25)
            heading = rng.uniform(0, math.pi)
            spacing = 150.0  # m between wells along the corridor (⚠INF)
            for w in range(1, 9):
                d = (w - 1) * spacing
                lat = lat0 + d * math.sin(heading) / M_PER_DEG_LAT
                lon = lon0 + d * math.cos(heading) / (M_PER_DEG_LAT * math.cos(math.radians(lat0)))
                well_type = str(rng.choice(["sewer", "sewer", "sewer", "valve", "telecom"]))
                self.add(area, f"{corridor}-W{w:02d}", "gas", lon, lat, f"{corridor}-MH{w:02d}", "manhole",
                         {"ch4_lel": "%LEL"}, {"well_type": well_type, "corridor": corridor, "chainage_m": d})
            p_set = float(rng.choice([0.2, 0.3, 0.4]))  # medium-pressure A, GB 50028 classes [G8]
            pipe = {"p_set_mpa": p_set, "corridor": corridor, "pressure_class": "medium_A"}
            self.add(area, f"{corridor}-P1", "gas", lon0, lat0, corridor, "gas_pipe", {"pressure_mpa": "MPa"}, pipe)
            # a second transmitter at the far end (the last well's chainage), so a rule can tell one transmitter
            # disagreeing with its twin (a sensor fault) from both moving (the pipe); no extra rng draw
            self.add(area, f"{corridor}-P2", "gas", lon, lat, corridor, "gas_pipe", {"pressure_mpa": "MPa"},
                     {**pipe, "chainage_m": d})

    def water(self, area: Area, rng: np.random.Generator) -> None:
        for m in (1, 2):
            main = f"{area.code}-WAT-M{m}"
            lon0, lat0 = self.point(area, rng, 0.2)
            p_normal = round(float(rng.uniform(0.28, 0.38)), 3)
            dn = int(rng.choice([300, 400, 600]))
            for n in range(1, 5):
                self.add(area, f"{main}-N{n}", "water", lon0 + 0.004 * n, lat0 - 0.002 * n, main, "water_main",
                         {"pressure_mpa": "MPa", "flow_m3h": "m3/h"},
                         {"p_normal_mpa": round(p_normal - 0.005 * n, 3), "q_normal_m3h": round(dn * 0.12, 1),
                          "node": n, "dn_mm": dn})

    def drainage(self, area: Area, rng: np.random.Generator) -> None:
        for u in (1, 2):
            lon, lat = self.point(area, rng)
            self.add(area, f"{area.code}-DRN-U{u}", "drainage", lon, lat, f"{area.code}-UP{u}", "underpass",
                     {"depth_cm": "cm"}, {"capacity_mm_h": int(rng.choice([30, 35, 40])), "max_depth_cm": 60,
                                           "storage_mm": 12})
        for s in (1, 2):
            lon, lat = self.point(area, rng)
            self.add(area, f"{area.code}-DRN-S{s}", "drainage", lon, lat, f"{area.code}-SW{s}", "sewer",
                     {"fill_ratio": "h/D"}, {"base_fill": round(float(rng.uniform(0.25, 0.45)), 2),
                                             "dn_mm": int(rng.choice([600, 800, 1000]))})
        lon, lat = self.point(area, rng)
        self.add(area, f"{area.code}-DRN-R1", "drainage", lon, lat, f"{area.code}-RG1", "rain_gauge",
                 {"rain_mm_5min": "mm"}, {})

    def bridges(self, area: Area, rng: np.random.Generator) -> None:
        for b in range(1, 1 + int(rng.choice([1, 2]))):
            bridge = f"{area.code}-BRG-B{b}"
            lon, lat = self.point(area, rng)
            span = int(rng.choice([20, 25, 30, 40]))
            f1 = round(float(rng.uniform(3.0, 6.0)), 3)  # 20-30 m girders: f1 ~3-6 Hz (REFERENCE §4.3)
            common = {"f1_ref_hz": f1, "span_m": span}
            self.add(area, f"{bridge}-S1", "bridge", lon, lat, bridge, "bridge",
                     {"freq1_hz": "Hz", "temp_c": "degC", "accel_rms_mg": "mg"}, common)
            self.add(area, f"{bridge}-C1", "bridge", lon + 0.0002, lat, bridge, "bridge",
                     {"crack_mm": "mm", "temp_c": "degC"},
                     {**common, "crack_w0_mm": round(float(rng.uniform(0.08, 0.14)), 3)})
            # the gauge's thermal coefficient, from a season's regression of deflection on deck temperature (⚠INF)
            self.add(area, f"{bridge}-D1", "bridge", lon + 0.0001, lat, bridge, "bridge",
                     {"deflection_mm": "mm", "temp_c": "degC"}, {**common, "thermal_mm_per_degc": -0.15})
            # a second accelerometer at quarter span (S1 is at mid-span), west along the deck; no extra rng draw
            quarter = span / 4
            self.add(area, f"{bridge}-S2", "bridge", lon - quarter / (M_PER_DEG_LAT * math.cos(math.radians(lat))),
                     lat, bridge, "bridge", {"freq1_hz": "Hz", "temp_c": "degC", "accel_rms_mg": "mg"},
                     {**common, "position_m": quarter})

    def elevators(self, area: Area, rng: np.random.Generator) -> None:
        metrics = {"passenger": "bool", "moving": "bool", "door_closed": "bool", "door_zone": "bool",
                   "speed_ratio": "1"}
        for b in range(1, 4):
            lon, lat = self.point(area, rng)
            floors = int(rng.choice([6, 11, 18, 26, 33]))
            for lift in (1, 2):
                self.add(area, f"{area.code}-ELV-BD{b}-L{lift}", "elevator", lon, lat, f"{area.code}-BD{b}-L{lift}",
                         "elevator", metrics,
                         {"building": f"{area.code}-BD{b}", "floors": floors,
                          "rated_speed_mps": 1.0 if floors <= 11 else (1.75 if floors <= 26 else 2.5),
                          "trips_per_h": int(rng.integers(20, 40))})

    def crowd(self, area: Area, rng: np.random.Generator) -> None:
        for v, (kind, name) in enumerate(zip(("metro", "venue"), VENUES[area.code], strict=True), start=1):
            lon, lat = self.point(area, rng)
            for z in (1, 2):
                area_m2 = int(rng.choice([400, 600, 800, 1200]))
                # rated capacity 2 p/m2: 100 % occupancy = density yellow (⚠INF, GB 50157 platform design)
                self.add(area, f"{area.code}-CRD-V{v}-Z{z}", "crowd", lon + 0.0003 * z, lat, f"{area.code}-V{v}",
                         "venue", {"density_ppm2": "p/m2", "occupancy_pct": "%"},
                         {"kind": kind, "name": name, "zone": "platform" if kind == "metro" and z == 1 else
                          ("concourse" if kind == "metro" else f"gate{z}"),
                          "area_m2": area_m2, "capacity": 2 * area_m2})


def build(seed: int = 2026) -> tuple[list[Sensor], dict[str, Any]]:
    """The sensors (sorted by id) and the districts FeatureCollection."""
    builder = _Builder(seed)
    for area in DISTRICTS:
        builder.district(area)
    features = [{"type": "Feature", "properties": {"id": a.code, "name": a.name, "city": "Hefei"},
                 "geometry": {"type": "Polygon", "coordinates": [a.ring()]}} for a in DISTRICTS]
    return sorted(builder.sensors, key=lambda s: s.id), {"type": "FeatureCollection", "features": features}


def sensors_csv(sensors: list[Sensor]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in sensors:
        writer.writerow([s.id, s.domain, s.district, f"{s.lon:.6f}", f"{s.lat:.6f}", s.asset, s.asset_type,
                         s.owner, f"{s.interval_s:g}", ";".join(f"{k}:{v}" for k, v in s.metrics.items()),
                         ";".join(f"{k}={v}" for k, v in s.labels.items())])
    return buf.getvalue()


def write(out_dir: Path = DEMO_DIR, seed: int = 2026) -> tuple[Path, Path, int]:
    sensors, districts = build(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, geo_path = out_dir / "sensors.csv", out_dir / "districts.geojson"
    csv_path.write_text(sensors_csv(sensors), encoding="utf-8")
    geo_path.write_text(json.dumps(districts, indent=1) + "\n", encoding="utf-8")
    return csv_path, geo_path, len(sensors)
