"""District polygons from GeoJSON: a FeatureCollection of Polygon / MultiPolygon features.

Each feature needs ``properties.id`` and ``properties.name``; other properties are kept as they
are. Every problem is collected with its JSON path (``districts.geojson: features[3].geometry.type``)
and raised once as one ``RegistryError``; a district is never returned half-checked. Holes are
ignored and nothing is reprojected: coordinates must already be [lon, lat] degrees.
Import ``load_districts_geojson`` from ``lifeline.registry``, which re-exports it.
"""

from __future__ import annotations

import json
from pathlib import Path

from lifeline.registry.core import District, RegistryError, Ring


def load_districts_geojson(path: str | Path) -> list[District]:
    """Districts from a GeoJSON FeatureCollection of Polygon / MultiPolygon features with
    ``properties.id`` and ``properties.name``; raise RegistryError listing every problem."""
    problems: list[str] = []
    districts = read_districts(Path(path), problems)
    if problems:
        raise RegistryError(problems)
    return districts


def read_districts(path: Path, problems: list[str]) -> list[District]:
    """The valid districts in ``path``; appends every problem to ``problems`` (never raises)."""
    name = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return []
    except json.JSONDecodeError as exc:
        problems.append(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}")
        return []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        problems.append(f"{name}: type: expected a GeoJSON FeatureCollection")
        return []
    features = doc.get("features")
    if not isinstance(features, list):
        problems.append(f"{name}: features: expected a list")
        return []
    out: list[District] = []
    seen: set[str] = set()
    for i, feature in enumerate(features):
        district = _district(feature, f"{name}: features[{i}]", problems)
        if district is None:
            continue
        if district.id in seen:
            problems.append(f"{name}: features[{i}].properties.id: duplicate district id {district.id!r}")
            continue
        seen.add(district.id)
        out.append(district)
    return out


def _district(feature: object, where: str, problems: list[str]) -> District | None:
    if not isinstance(feature, dict):
        problems.append(f"{where}: expected a Feature object")
        return None
    props = feature.get("properties")
    props = props if isinstance(props, dict) else {}
    ok = True
    for key in ("id", "name"):
        value = props.get(key)
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            problems.append(f"{where}.properties.{key}: required, a non-empty string (got {value!r})")
            ok = False
    rings = _rings(feature.get("geometry"), f"{where}.geometry", problems)
    if not ok or not rings:
        return None
    largest = max(rings, key=_ring_area)
    extra = {k: v for k, v in props.items() if k not in ("id", "name")}
    return District(id=str(props["id"]).strip(), name=str(props["name"]).strip(), polygon=largest,
                    properties=extra, parts=tuple(rings) if len(rings) > 1 else ())


def _rings(geometry: object, where: str, problems: list[str]) -> list[Ring]:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        got = geometry.get("type") if isinstance(geometry, dict) else geometry
        problems.append(f"{where}.type: expected 'Polygon' or 'MultiPolygon' (got {got!r})")
        return []
    coords = geometry.get("coordinates")
    polygons = [coords] if geometry["type"] == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        problems.append(f"{where}.coordinates: expected a non-empty list")
        return []
    rings: list[Ring] = []
    for j, polygon in enumerate(polygons):
        at = f"{where}.coordinates" + ("" if geometry["type"] == "Polygon" else f"[{j}]")
        ring = _ring(polygon[0] if isinstance(polygon, list) and polygon else None, f"{at}[0]", problems)
        if ring is not None:
            rings.append(ring)
    return rings


def _ring(raw: object, where: str, problems: list[str]) -> Ring | None:
    if not isinstance(raw, list) or len(raw) < 4:
        problems.append(f"{where}: expected a linear ring of at least 4 [lon, lat] positions")
        return None
    points: list[tuple[float, float]] = []
    for k, pos in enumerate(raw):
        if (not isinstance(pos, list) or len(pos) < 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos[:2])
                or not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90)):
            problems.append(f"{where}[{k}]: expected [lon, lat] in degrees (got {pos!r})")
            return None
        points.append((float(pos[0]), float(pos[1])))
    if points[0] != points[-1]:
        problems.append(f"{where}: ring is not closed (first {list(points[0])} != last {list(points[-1])})")
        return None
    return tuple(points[:-1])


def _ring_area(ring: Ring) -> float:
    n = len(ring)
    return abs(sum(ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1] for i in range(n))) / 2
