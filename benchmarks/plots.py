"""Figures for the benchmarks: small helpers that write labelled PNGs with matplotlib.

matplotlib is an optional dependency (``pip install -e '.[bench]'``; the ``dev`` extra includes it) and is
imported only when a figure is drawn, so the benchmark modules import without it. The non-interactive Agg
backend is used and only matplotlib's bundled DejaVu fonts; nothing touches the network. Every figure has a
title, labelled axes and its values written on it; the PNGs carry no version metadata, so the same numbers
give the same bytes on the same matplotlib.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MISSING = "the benchmark plots need matplotlib: pip install -e '.[bench]' (or '.[dev]')"
#: A figure is ``figsize * DPI`` pixels (default ``WIDE``: 1000 x 550); the PNGs are not cropped.
DPI = 100
WIDE = (10.0, 5.5)
HIGHLIGHT = "#1f77b4"
MUTED = "#a6a6a6"
SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
REFERENCE = "#d62728"
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}


class PlotsUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> ModuleType:
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotsUnavailableError(MISSING) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def require() -> None:
    """Raise :class:`PlotsUnavailableError` (with the install command) now rather than after a long run."""
    _pyplot()


def _wrap(label: str, width: int = 14) -> str:
    return textwrap.fill(label, width) if " " in label else label


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def _reference_lines(ax: Axes, lines: Mapping[str, float] | None) -> None:
    for i, (label, y) in enumerate((lines or {}).items()):
        ax.axhline(y, color=REFERENCE, linestyle=("--", ":", "-.")[i % 3], linewidth=1.4, label=label, zorder=3)


def bar_chart(path: Path, labels: Sequence[str], values: Sequence[float], *, title: str, ylabel: str,
              highlight: Collection[str] = (), reference_lines: Mapping[str, float] | None = None,
              value_labels: Sequence[str] | None = None, value_format: str = "{:.2f}",
              ylim: tuple[float, float] | None = None, xlabel: str | None = None, note: str | None = None,
              figsize: tuple[float, float] = WIDE) -> Path:
    """One bar per label, its value written above it; bars named in ``highlight`` in colour, the others grey
    (all in colour when nothing is highlighted); ``reference_lines`` (legend label -> y) drawn dashed."""
    if len(labels) != len(values) or (value_labels is not None and len(value_labels) != len(values)):
        raise ValueError("labels, values and value_labels must have the same length")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    colours = [HIGHLIGHT if not highlight or label in highlight else MUTED for label in labels]
    xs = list(range(len(labels)))
    bars = ax.bar(xs, values, color=colours, edgecolor="black", linewidth=0.6, width=0.65, zorder=2)
    texts = list(value_labels) if value_labels is not None else [value_format.format(v) for v in values]
    for text in ax.bar_label(bars, labels=texts, padding=3, fontsize=9):
        text.set(bbox=_LABEL_BOX, zorder=4)
    ax.set_xticks(xs, [_wrap(label) for label in labels])
    for tick, label in zip(ax.get_xticklabels(), labels, strict=True):
        if label in highlight:
            tick.set_fontweight("bold")
    _finish(ax, title=title, ylabel=ylabel, xlabel=xlabel, ylim=ylim, values=values, reference_lines=reference_lines,
            note=note)
    return _save(fig, path)


def grouped_bar_chart(path: Path, labels: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str,
                      ylabel: str, highlight: Collection[str] = (),
                      reference_lines: Mapping[str, float] | None = None, value_format: str = "{:.1f}",
                      ylim: tuple[float, float] | None = None, xlabel: str | None = None, note: str | None = None,
                      figsize: tuple[float, float] = WIDE) -> Path:
    """Per label a group of bars, one per series (legend = series names), values written above the bars;
    labels named in ``highlight`` get a bold tick label and a shaded band behind their group."""
    if any(len(v) != len(labels) for v in series.values()):
        raise ValueError("every series needs one value per label")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    n = max(len(series), 1)
    width = 0.8 / n
    for j, (name, vals) in enumerate(series.items()):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(labels))]
        bars = ax.bar(xs, vals, width=width * 0.95, color=SERIES[j % len(SERIES)], edgecolor="black", linewidth=0.5,
                      label=name, zorder=2)
        for text in ax.bar_label(bars, labels=[value_format.format(v) for v in vals], padding=2, fontsize=7):
            text.set(bbox=_LABEL_BOX, zorder=4)
    ax.set_xticks(range(len(labels)), [_wrap(label) for label in labels])
    for i, (tick, label) in enumerate(zip(ax.get_xticklabels(), labels, strict=True)):
        if label in highlight:
            tick.set_fontweight("bold")
            ax.axvspan(i - 0.48, i + 0.48, color=HIGHLIGHT, alpha=0.08, zorder=0)
    _finish(ax, title=title, ylabel=ylabel, xlabel=xlabel, ylim=ylim, values=[v for s in series.values() for v in s],
            reference_lines=reference_lines, note=note)
    return _save(fig, path)


def box_or_strip_plot(path: Path, groups: Mapping[str, Sequence[float]], *, title: str, ylabel: str,
                      log: bool = False, floor: float | None = None, reference_lines: Mapping[str, float] | None = None,
                      value_format: str = "{:.3g}", xlabel: str | None = None, note: str | None = None,
                      figsize: tuple[float, float] = WIDE) -> Path:
    """Per group (in the mapping's order) every value as a point (deterministic jitter) over a box plot
    (quartiles, whiskers at 1.5 IQR, no separate outliers: the points show them); the median is written beside
    each box and the tick label gives n. With ``log`` (plain-number tick labels), values <= 0 are drawn at
    ``floor`` (default: half the smallest positive value)."""
    plt = _pyplot()
    import numpy as np
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    rng = np.random.default_rng(0)
    names = list(groups)
    data = [np.asarray(groups[g], dtype=float) for g in names]
    if log:
        positive = [float(d[d > 0].min()) for d in data if (d > 0).any()]
        low = floor if floor is not None else (min(positive) / 2 if positive else 1.0)
        data = [np.where(d > 0, d, low) for d in data]
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    filled = [i for i, d in enumerate(data) if d.size]
    if filled:
        ax.boxplot([data[i] for i in filled], positions=filled, widths=0.55, showfliers=False, zorder=2,
                   medianprops={"color": REFERENCE, "linewidth": 1.6})
    for i, d in enumerate(data):
        if not d.size:
            ax.text(i, 0.5, "no values", transform=ax.get_xaxis_transform(), ha="center", va="center",
                    fontsize=9, color="0.4")
            continue
        ax.scatter(i + rng.uniform(-0.18, 0.18, d.size), d, s=14, color=HIGHLIGHT, alpha=0.55, edgecolors="none",
                   zorder=3)
        median = float(np.median(d))
        ax.annotate("median " + value_format.format(median), (i + 0.3, median), xytext=(2, 0),
                    textcoords="offset points", va="center", fontsize=8.5, zorder=4)
    ax.set_xticks(range(len(names)), [f"{_wrap(g)}\nn={d.size}" for g, d in zip(names, data, strict=True)])
    ax.set_xlim(-0.6, len(names) - 0.4 + 0.35)
    _finish(ax, title=title, ylabel=ylabel, xlabel=xlabel, ylim=None, values=None, reference_lines=reference_lines,
            note=note)
    return _save(fig, path)


def _finish(ax: Axes, *, title: str, ylabel: str, xlabel: str | None, ylim: tuple[float, float] | None,
            values: Sequence[float] | None, reference_lines: Mapping[str, float] | None, note: str | None) -> None:
    _reference_lines(ax, reference_lines)
    ax.set_title(title, fontsize=12)
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    elif values:
        lo, hi = min(0.0, *values), max(0.0, *values)
        ax.set_ylim(lo * 1.12 if lo < 0 else 0.0, (hi or 1.0) * 1.12)
    ax.grid(axis="y", color="0.88", zorder=0)
    ax.set_axisbelow(True)
    if reference_lines or len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False)
    if note:
        ax.figure.supxlabel(textwrap.fill(note, 150), fontsize=8, color="0.35")
