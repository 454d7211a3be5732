"""The simulators CLI: run to JSON lines with ground truth, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.cli import main


def test_cli_run_writes_jsonl_and_truth(tmp_path: Path) -> None:
    """`run --scenario e2e_small --out --truth` writes sorted JSON lines and the expected alerts."""
    out, truth = tmp_path / "r.jsonl", tmp_path / "t.json"
    assert main(["run", "--scenario", "e2e_small", "--out", str(out), "--truth", str(truth)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # 240 on the sensors' intervals, plus 7 elevator reports while its car runs (every 5 s, REFERENCE §5.6)
    assert len(rows) == 247 and set(rows[0]) == {"ts", "sensor", "domain", "seq", "metrics"}
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    doc = json.loads(truth.read_text())
    assert {"rule": "gas.methane.high", "sensor": "LY-GAS-C1-W04", "level": "red"} in doc["expect"]
    assert doc["faults"][0]["kind"] == "stuck"


def test_cli_unknown_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown scenario name is reported with the list of built-ins."""
    assert main(["run", "--scenario", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "built-ins: demo, e2e_small, faults, quiet" in capsys.readouterr().err
