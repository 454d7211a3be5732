"""benchmarks' simulated-input cache is keyed by what the input is made from, so it is never stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import common
from lifeline import paths


def test_fingerprint_follows_the_city_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to the demo city (here its districts file) gives another fingerprint, hence another cache file."""
    districts = tmp_path / "districts.geojson"
    shutil.copy(paths.default_districts(), districts)
    monkeypatch.setattr(common.paths, "default_districts", lambda: districts)
    before = common.inputs_fingerprint()
    assert before == common.inputs_fingerprint() and len(before) == 12
    districts.write_text(districts.read_text() + "\n")
    assert common.inputs_fingerprint() != before


def test_simulated_input_replaces_an_entry_made_from_older_inputs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached file carries the fingerprint; an entry for the same arguments from older inputs (or from
    before the fingerprint) is removed when the new one is made."""
    monkeypatch.setattr(common, "CACHE", tmp_path)
    monkeypatch.setattr(common, "inputs_fingerprint", lambda: "0123456789ab")
    stale = [tmp_path / "x-1h-7-ffffffffffff.jsonl", tmp_path / "x-1h-7.jsonl"]
    for f in stale:
        f.write_text("old\n")
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], check: bool) -> None:
        calls.append(cmd)
        Path(cmd[cmd.index("--out") + 1]).write_text("new\n")

    monkeypatch.setattr(common.subprocess, "run", fake_run)
    out = common.simulated_input("x", "1h")
    assert out == tmp_path / "x-1h-7-0123456789ab.jsonl" and out.read_text() == "new\n"
    assert not any(f.exists() for f in stale)
    assert common.simulated_input("x", "1h") == out and len(calls) == 1  # cached from now on
