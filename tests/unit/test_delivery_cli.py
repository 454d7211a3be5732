"""The delivery side's commands and the shipped example routing file: `lifeline silence`, the alerts
outbox, approval and response-time views, and `lifeline backtest --routes`."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from lifeline import paths
from lifeline.alerting.routing import load_routing
from lifeline.cli import main
from lifeline.errors import ConfigError
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore

EXAMPLE = paths.REPO / "deploy" / "routes.example.yaml"
T0 = 1_764_403_200.0


def _env() -> dict[str, str]:
    names = re.findall(r"(?:url|secret|username|password)_env: (\w+)", EXAMPLE.read_text())
    return {n: "https://127.0.0.1:9/x" if n.endswith("_URL") else "x" for n in names}


def _ev(domain: str, level: Level, owner: str, kind: AlertKind = AlertKind.SAFETY) -> AlertEvent:
    return AlertEvent(id="a", seq=1, rule=f"{domain}.r", kind=kind, subject="s", sensor="s", domain=domain,
                      district="BH", level=level, state=AlertState.FIRING, event=EventKind.FIRED, started=T0, ts=T0,
                      value=1.0, message="m", owner=owner)


def test_the_example_routing_file_sends_each_department_its_own(tmp_path: Path) -> None:
    r = load_routing(EXAMPLE, _env())
    assert r.receivers_for(_ev("gas", Level.YELLOW, "gas_company")) == ["gas_company"]
    assert r.receivers_for(_ev("gas", Level.RED, "gas_company")) == ["gas_company", "control_centre"]
    assert r.escalation_for(_ev("gas", Level.RED, "gas_company")) == ["duty_chief"]
    assert r.escalation_for(_ev("gas", Level.YELLOW, "gas_company")) == []
    assert r.receivers_for(_ev("crowd", Level.ORANGE, "venue_operator")) == ["venue_operator", "public_security",
                                                                             "control_centre"]
    assert r.receivers_for(_ev("drainage", Level.RED, "drainage_dept")) == ["drainage_dept", "public_warning",
                                                                            "control_centre"]
    assert r.needs_approval("public_warning", Level.RED) and not r.needs_approval("public_warning", Level.YELLOW)
    assert r.receivers_for(_ev("bridge", Level.RED, "bridge_authority", AlertKind.HEALTH)) == ["bridge_authority"]
    assert [i.name for i in r.inhibit] == ["sensor-offline", "district-comms-outage", "red-over-yellow"]
    assert r.ack_deadline[Level.RED] == 300 and r.maintenance[0].weekly is not None


def test_silence_add_list_expire_and_the_audit_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "l.db")
    AlertStore(db).close()
    poly = tmp_path / "works.geojson"
    poly.write_text(orjson.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                    "geometry": {"type": "Polygon", "coordinates": [[[117.1, 31.7], [117.3, 31.7], [117.3, 31.9],
                                                                     [117.1, 31.7]]]}}]}).decode())
    assert main(["silence", "--db", db, "add", "--match", "domain=gas", "--match", "labels.corridor=BH-GAS-C1",
                 "--polygon", str(poly), "--for", "2h", "--by", "li.wei", "--reason", "roadworks"]) == 0
    sid = capsys.readouterr().out.split()[1].rstrip(":")
    assert main(["silence", "--db", db, "list"]) == 0
    listed = capsys.readouterr().out
    assert sid in listed and "domain=gas, labels.corridor=BH-GAS-C1" in listed and "(polygon)" in listed
    assert main(["silence", "--db", db, "expire", sid, "--by", "zhang.san", "--reason", "done early"]) == 0
    assert main(["silence", "--db", db, "list"]) == 0
    assert "no silences" in capsys.readouterr().out
    assert main(["alerts", "--db", db, "audit"]) == 0
    audit = capsys.readouterr().out.splitlines()
    assert "silence.expire" in audit[0] and "zhang.san" in audit[0] and "silence.add" in audit[1]


@pytest.mark.parametrize(("args", "message"), [
    (["--match", "domain"], "expected KEY=VALUE"),
    (["--match", "colour=red"], "unknown matcher 'colour'"),
    (["--match", "level=>=purple"], "unknown level 'purple'"),
    ([], "at least one --match"),
])
def test_silence_add_rejects_bad_matchers_clearly(tmp_path: Path, args: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "l.db")
    AlertStore(db).close()
    rc = main(["silence", "--db", db, "add", *args, "--for", "1h", "--by", "x", "--reason", "y"])
    assert rc != 0 and message in capsys.readouterr().err


def test_a_polygon_that_is_not_one_is_a_clear_error(tmp_path: Path) -> None:
    from lifeline.commands.silence import read_polygon

    p = tmp_path / "p.geojson"
    p.write_text('{"type": "Point", "coordinates": [117.2, 31.8]}')
    with pytest.raises(ConfigError, match="expected a GeoJSON Polygon"):
        read_polygon(p)
    p.write_text("not json")
    with pytest.raises(ConfigError, match="cannot read GeoJSON"):
        read_polygon(p)


def test_outbox_approve_and_response_times_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "l.db")
    e = _ev("drainage", Level.RED, "drainage_dept")
    with AlertStore(db) as store:
        store.commit_batch([e], notifications=[Notification("k1", "public_warning", "a", 1, T0, e.to_dict(),
                                                            "awaiting_approval", "needs approval")])
    assert main(["alerts", "--db", db, "outbox", "--state", "awaiting_approval"]) == 0
    assert "k1" in capsys.readouterr().out
    assert main(["alerts", "--db", db, "approve", "k1", "--by", "chen.jie", "--reason", "confirmed"]) == 0
    assert "is now pending, by chen.jie" in capsys.readouterr().out
    assert main(["alerts", "--db", db, "deliveries", "a"]) == 0
    assert "approved by chen.jie: confirmed" in capsys.readouterr().out
    assert main(["alerts", "--db", db, "response-times", "--since", "100000d", "--json"]) == 0
    (row,) = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["department"] == "drainage_dept" and row["alerts"] == 1 and row["acknowledged"] == 0


UNDAMPED = """\
domain: gas
defaults: {owner: gas_company}
rules:
  - id: gas.methane.undamped
    title: Methane, no for / clear_for / hysteresis (a rule under tuning)
    match: {metric: ch4_lel, asset_types: [manhole]}
    threshold: {direction: above, levels: {orange: 20}}
    message: "methane {value} %LEL"
"""


def test_backtest_reports_what_noise_control_would_send(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ops engineer tries an undamped rule on a demo-city manhole whose methane hovers at the orange bound
    for an hour: the backtest says how many notifications each receiver would get with noise control
    (flapping held), beside the routing tree alone."""
    lines = [orjson.dumps({"sensor": "BH-GAS-C1-W01", "ts": T0 + 20 * i, "metric": "ch4_lel",
                           "value": 21.0 if i % 2 == 0 and i < 180 else 1.0}) for i in range(270)]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    rules = tmp_path / "undamped.yaml"
    rules.write_text(UNDAMPED)
    out = tmp_path / "n.jsonl"
    assert main(["backtest", "-q", "-i", str(src), "-o", str(tmp_path / "a.jsonl"), "--rules", str(rules),
                 "--routes", str(EXAMPLE), "--notifications", str(out)]) == 0
    err = capsys.readouterr().err
    m = re.search(r"notifications to gas_company: (\d+) to send .*held: (.*); the routing tree alone: (\d+)", err)
    assert m is not None, err
    assert (int(m.group(1)), int(m.group(3))) == (3, 180)
    assert "flapping" in m.group(2)
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    sent = [(r["event"], r["receiver"]) for r in rows if r["state"] == "pending" and r["receiver"] == "gas_company"]
    assert sent == [("fired", "gas_company"), ("flapping", "gas_company"), ("resolved", "gas_company")]
