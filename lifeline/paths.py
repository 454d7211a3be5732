"""Where lifeline finds its shipped data when no path is given."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent
DEMO_CITY = PACKAGE / "data" / "demo_city"


def default_rules() -> Path:
    """``./rules`` when it exists (a city's own packs), else the packs shipped beside the package."""
    here = Path("rules")
    return here if here.is_dir() else REPO / "rules"


def default_registry() -> Path:
    return DEMO_CITY / "sensors.csv"


def default_districts() -> Path:
    return DEMO_CITY / "districts.geojson"
