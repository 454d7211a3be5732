"""The benchmark plots: each helper writes a valid PNG of the documented size (no visual assertions).

matplotlib comes with the ``dev`` extra: without it these fail (with the install command), they do not skip."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from benchmarks import plots
from benchmarks import scenario_eval as se
from benchmarks.nab_lifeline import Outcome, write_figures

SIZE = (round(plots.WIDE[0] * plots.DPI), round(plots.WIDE[1] * plots.DPI))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_bar_chart(tmp_path: Path) -> None:
    out = plots.bar_chart(tmp_path / "sub" / "bars.png", ["lifeline ensemble", "Windowed Gaussian", "KNN CAD"],
                          [62.21, 39.65, 57.99], highlight={"lifeline ensemble"}, reference_lines={"target 62": 62.0},
                          title="t", ylabel="score", ylim=(0.0, 100.0), note="a note")
    assert out == tmp_path / "sub" / "bars.png" and png_size(out) == SIZE


def test_grouped_bar_chart(tmp_path: Path) -> None:
    out = plots.grouped_bar_chart(tmp_path / "g.png", ["a", "b"], {"standard": [1.0, 2.0], "low FP": [0.5, -1.0]},
                                  highlight={"a"}, title="t", ylabel="y")
    assert png_size(out) == SIZE


def test_box_or_strip_plot_log_with_an_empty_group_and_a_zero(tmp_path: Path) -> None:
    out = plots.box_or_strip_plot(tmp_path / "b.png", {"gas": [0.0, 0.4, 3.0, 120.0], "water": [], "crowd": [7.0]},
                                  title="t", ylabel="minutes", log=True, figsize=(6.0, 4.0))
    assert png_size(out) == (600, 400)


def test_mismatched_lengths_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        plots.bar_chart(tmp_path / "x.png", ["a", "b"], [1.0], title="t", ylabel="y")
    with pytest.raises(ValueError):
        plots.grouped_bar_chart(tmp_path / "x.png", ["a"], {"s": [1.0, 2.0]}, title="t", ylabel="y")


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(plots.PlotsUnavailableError, match=r"pip install -e '\.\[bench\]'"):
        plots.require()


def test_nab_figures(tmp_path: Path) -> None:
    outcome = Outcome({}, {"standard": (62.21, 0.5), "reward_low_FP_rate": (48.01, 0.5),
                           "reward_low_FN_rate": (69.06, 0.5)}, 1.0, 10)
    others = {"ARTime": {"standard": 74.85, "reward_low_FP_rate": 65.15, "reward_low_FN_rate": 80.36},
              "Windowed Gaussian": {"standard": 39.65, "reward_low_FP_rate": 20.87, "reward_low_FN_rate": 47.41}}
    paths = write_figures(tmp_path, "lifeline ensemble", outcome, others)
    assert [p.name for p in paths] == ["nab.png", "nab_profiles.png"]
    assert all(png_size(p) == SIZE for p in paths)


def test_scenario_eval_plots_from_figures(tmp_path: Path) -> None:
    incidents = [{"domain": d, "detected": ttd is not None, "ttd_s": ttd}
                 for d, ttd in [("gas", 130.6), ("gas", 200.0), ("water", None), ("elevator", 0.14), ("water", 81.0)]]
    fig = {"config": {"seeds": 1, "rules_sha256_16": "0" * 16, "grace_s": 900.0},
           "incidents_by_domain": {"water": {"incidents": 2, "detected": 1, "recall": 0.5},
                                   "gas": {"incidents": 2, "detected": 2, "recall": 1.0},
                                   "elevator": {"incidents": 1, "detected": 1, "recall": 1.0}},
           "incidents": incidents}
    fig = json.loads(json.dumps(fig))  # as read back from scenario_eval.json
    paths = se.write_plots(fig, tmp_path)
    assert [p.name for p in paths] == [se.PLOT_RECALL, se.PLOT_TTD]
    assert all(png_size(p) == SIZE for p in paths)
