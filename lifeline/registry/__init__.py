"""The sensor registry: which sensors exist, where, what they measure, who owns them.

``core`` holds the in-memory model (never reads files); ``files`` loads the CSV / YAML asset register a
city exports, ``geojson`` the district polygons. Everything public is importable from here.
"""

from lifeline.registry.core import District, Registry, RegistryError, Ring
from lifeline.registry.files import COLUMNS, load_registry, load_sensors_csv, load_sensors_yaml
from lifeline.registry.geojson import load_districts_geojson

__all__ = [
    "COLUMNS",
    "District",
    "Registry",
    "RegistryError",
    "Ring",
    "load_districts_geojson",
    "load_registry",
    "load_sensors_csv",
    "load_sensors_yaml",
]
