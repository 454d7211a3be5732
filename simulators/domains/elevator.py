"""Elevators: Poisson trips with a diurnal profile, door cycles, and faults (trapped passenger,
overspeed), simulated on a 1 s grid. Reported as a monitor does (REFERENCE §5.6: status every 1–5 s
while moving): every ``MOVING_REPORT_S`` (5 s) while the car runs, and at the sensor's interval (the
registry's 10-s heartbeat) while it stands (denser than §5.6's 60 s idle, so that a trapped passenger
is seen within the firmware's own 15-s and 90-s delays).

Status fields follow the supervision-platform schema (REFERENCE §5.1 [E4]): ``passenger``,
``moving``, ``door_closed``, ``door_zone`` (1 = in door zone), plus ``speed_ratio`` (speed / rated;
governor trip >= 115 % [E8]). Trips: Poisson arrivals, residential morning/evening peaks; running
speed 1.0-2.5 m/s, 3 m floors, door cycle ~6-10 s (§5.6, ⚠INF). Trapped = passenger in a closed,
stopped car (§5.3 [E6][E7]: 90 s at a floor, 15 s between floors).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from lifeline.model import Sensor
from lifeline.registry import Registry
from simulators.base import Array, Effect, Incident, Metrics, diurnal, label, local_hours, resolve

DOMAIN = "elevator"
FLOOR_M = 3.0
MOVING_REPORT_S = 5.0  # status period while the car runs (REFERENCE §5.6: 1–5 s) ⚠INF
WARMUP_S = 300.0

#: Residential lift calls by hour ending 01:00..24:00 (⚠INF: out-bound 07-09, in-bound 17-20).
CALLS: tuple[float, ...] = (
    10, 5, 3, 3, 3, 8, 40, 90, 80, 45, 35, 40, 45, 35, 30, 35, 55, 85, 90, 70, 50, 35, 25, 15,
)


class _Car:
    """The car's state on a 1 s grid starting at ``t0``; trips paint into it."""

    def __init__(self, t0: float, n: int) -> None:
        self.t0 = t0
        self.passenger = np.zeros(n)
        self.moving = np.zeros(n)
        self.door_closed = np.ones(n)
        self.door_zone = np.ones(n)
        self.speed = np.zeros(n)
        self.n = n

    def paint(self, name: str, a: int, b: int, value: float) -> None:
        arr: Array = getattr(self, name)
        arr[max(a, 0) : max(min(b, self.n), 0)] = value

    def trip(self, start: int, floors: int, speed_mps: float, rng: np.random.Generator) -> int:
        """One call: doors open, passenger boards, ride, doors open, passenger leaves. Returns the end."""
        door = int(rng.integers(6, 10))
        travel = round(4.0 + floors * FLOOR_M / speed_mps)
        ride = start + door + 2
        arrive = ride + travel
        self.paint("door_closed", start, start + door, 0.0)
        self.paint("passenger", start + 2, arrive + 3, 1.0)
        self.paint("moving", ride, arrive, 1.0)
        self.paint("door_zone", ride + 1, arrive - 1, 0.0)
        self.paint("speed", ride, arrive, 0.97)
        self.paint("speed", ride, ride + 2, 0.5)  # acceleration and deceleration
        self.paint("speed", arrive - 2, arrive, 0.5)
        self.paint("door_closed", arrive, arrive + door, 0.0)
        return arrive + door


def simulate(
    sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect], seed: int = 0
) -> Metrics:
    if ts.size == 0:
        return {m: np.zeros(0) for m in ("passenger", "moving", "door_closed", "door_zone", "speed_ratio")}
    t0 = float(np.floor(ts[0] - WARMUP_S))
    car = _Car(t0, int(np.ceil(ts[-1] - t0)) + 2)
    floors = int(label(sensor, "floors", 18))
    speed_mps = label(sensor, "rated_speed_mps", 1.75)
    blocked = [(int(e.start - t0) - 60, int(e.end - t0) + 20) for e in effects if e.kind == "trapped"]
    forced = sorted(int(e.start - t0) for e in effects if e.kind == "overspeed")
    busy = -1
    for call in _calls(sensor, t0, car.n, rng):
        if any(a <= call < b for a, b in blocked):
            continue
        while forced and forced[0] <= call:
            busy = car.trip(max(forced.pop(0), busy + 1), floors - 1, speed_mps, rng)
        if call > busy:
            busy = car.trip(call, int(rng.integers(1, floors)), speed_mps, rng)
    for start in forced:
        car.trip(max(start, busy + 1), floors - 1, speed_mps, rng)
    _faults(car, effects)
    speed = car.speed * (1.0 + rng.normal(0.0, 0.01, car.n)) * (car.speed > 0)
    idx = np.clip(np.round(ts - t0).astype(np.int64), 0, car.n - 1)
    return {
        "passenger": car.passenger[idx], "moving": car.moving[idx], "door_closed": car.door_closed[idx],
        "door_zone": car.door_zone[idx], "speed_ratio": speed[idx],
    }


def report_step(sensor: Sensor) -> float:
    """The grid the car is sampled on: the moving report period (a divisor of the idle heartbeat)."""
    k = max(1, round(sensor.interval_s / MOVING_REPORT_S))
    return sensor.interval_s / k


def report(sensor: Sensor, ts: Array, metrics: Metrics) -> NDArray[np.bool_]:
    """The instants sent: every grid point while the car runs (and the first one after it stops), and every
    heartbeat (each ``interval_s``) while it stands."""
    k = max(1, round(sensor.interval_s / MOVING_REPORT_S))
    moving = metrics["moving"] > 0
    ran = np.concatenate(([False], moving[:-1])) if moving.size else moving
    sent: NDArray[np.bool_] = (np.arange(ts.size) % k == 0) | moving | ran
    return sent


def _calls(sensor: Sensor, t0: float, n: int, rng: np.random.Generator) -> list[int]:
    """Call times (grid offsets): a thinned Poisson process, ``trips_per_h`` at the busiest hour."""
    peak = label(sensor, "trips_per_h", 30.0)
    profile_max = 2.6  # upper bound of diurnal(CALLS) (mean-normalised peak ~2.5)
    count = int(rng.poisson(peak / 3600.0 * n))
    times = np.sort(rng.uniform(0.0, float(n), count))
    rate = diurnal(local_hours(t0 + times), CALLS) / profile_max
    keep = rng.random(count) < rate
    return [int(t) for t in times[keep]]


def _faults(car: _Car, effects: Sequence[Effect]) -> None:
    for e in effects:
        a, b = int(e.start - car.t0), int(e.end - car.t0)
        if e.kind == "trapped":
            # riding, then stuck: closed car, not moving, passenger inside; released at the end
            dz = 1.0 if e.param("door_zone", 1.0) >= 1 else 0.0
            car.paint("moving", a - 20, a, 1.0)
            car.paint("speed", a - 20, a, 0.97)
            car.paint("door_zone", a - 20, a, 0.0)
            car.paint("passenger", a - 30, b + 3, 1.0)
            car.paint("door_closed", a - 22, b, 1.0)
            car.paint("moving", a, b, 0.0)
            car.paint("speed", a, b, 0.0)
            car.paint("door_zone", a, b + 10, dz)
            car.paint("door_closed", b, b + 10, 0.0)
            car.paint("door_zone", b, b + 10, 1.0)
            car.paint("passenger", b + 3, b + 10, 0.0)
        elif e.kind == "overspeed":
            inside = np.zeros(car.n, dtype=bool)
            inside[max(a, 0) : max(min(b, car.n), 0)] = True
            fast = inside & (car.moving > 0)
            car.speed[fast] = e.magnitude


def expand_trapped(incident: Incident, registry: Registry) -> list[Effect]:
    """A passenger trapped in the car for the incident's duration; ``door_zone: 0`` = between floors."""
    return [Effect(kind="trapped", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN)]


def expand_overspeed(incident: Incident, registry: Registry) -> list[Effect]:
    """Runs at ``magnitude`` x rated speed (1.2 = 120 %) during the window; a long trip is forced."""
    return [Effect(kind="overspeed", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN)]


INCIDENTS = {"trapped": expand_trapped, "overspeed": expand_overspeed}
