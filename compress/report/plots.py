"""Charts for report.html, drawn with matplotlib (Agg, no pyplot: no global state) and returned
as SVG text. matplotlib is imported only here, and only when a chart is drawn, so that
`import compress` and `compress --help` stay light."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

import compress.units as units
from compress.report.schema import Latency, Report
from compress.units import format_size

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BASELINE_COLOR = "#8a94a6"
COMPRESSED_COLOR = "#2563eb"
DTYPE_COLORS = {
    "float32": COMPRESSED_COLOR,
    "float16": "#0891b2",
    "int8": "#9333ea",
    "int4": "#ea580c",
}
#: Above this many layers the sparsity chart drops per-layer labels (the table has them all).
LABELLED_LAYERS = 48
_LABEL_CHARS = 36


def new_figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas of its own: pyplot and the global backend are left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def style_axes(axes) -> None:
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.tick_params(labelsize=9)
    axes.grid(axis="both", color="#e5e7eb", linewidth=0.6)
    axes.set_axisbelow(True)


def to_svg(figure: Figure) -> str:
    """The figure as standalone SVG text (reproducible: fixed ids, no date)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "compress", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def short_label(name: str) -> str:
    return name if len(name) <= _LABEL_CHARS else "…" + name[-(_LABEL_CHARS - 1) :]


def _layer_bars(names: list[str], before: np.ndarray, after: np.ndarray, dtypes: list[str]):
    """Axes with a figure per layer, baseline grey and compressed coloured by dtype: labelled
    horizontal bar pairs, or above LABELLED_LAYERS compressed bars by layer index with the
    baseline as a line. Returns the axes, the layer index and whether it is labelled."""
    index = np.arange(len(names))
    labelled = len(names) <= LABELLED_LAYERS
    figure = new_figure(8.6, 1.3 + 0.32 * max(len(names), 1) if labelled else 3.4)
    axes = figure.add_subplot()
    if labelled:
        axes.barh(index + 0.2, before, height=0.4, color=BASELINE_COLOR, label="baseline")
    for dtype in dict.fromkeys(dtypes):
        chosen = np.array([d == dtype for d in dtypes])
        color = DTYPE_COLORS.get(dtype, "#0f766e")
        label = f"compressed ({dtype})"
        if labelled:
            axes.barh(index[chosen] - 0.2, after[chosen], height=0.4, color=color, label=label)
        else:
            axes.bar(index[chosen], after[chosen], width=1.0, color=color, label=label)
    if labelled:
        axes.set_yticks(index, [short_label(name) for name in names])
        axes.invert_yaxis()
        style_axes(axes)
        axes.grid(axis="y", visible=False)
    else:
        axes.plot(index, before, color="#374151", linewidth=1.0, label="baseline")
        axes.set_xlim(-0.5, len(names) - 0.5)
        axes.set_xlabel(f"layer index (0 … {len(names) - 1}; names in the layer table)")
        style_axes(axes)
    axes.legend(
        fontsize=8,
        frameon=False,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(set(dtypes)) + 1, 6),
    )
    return axes, index, labelled


def sparsity_chart(report: Report) -> str:
    """Per-layer sparsity, baseline vs compressed, compressed bars coloured by dtype."""
    layers = report.layers
    after = np.array([layer.sparsity for layer in layers], dtype=float) * 100
    before = np.array([layer.baseline_sparsity or 0.0 for layer in layers], dtype=float) * 100
    names, dtypes = [layer.name for layer in layers], [layer.dtype for layer in layers]
    axes, index, labelled = _layer_bars(names, before, after, dtypes)
    if labelled:
        for row, value in zip(index, after, strict=True):
            axes.text(min(value, 100) + 1, row - 0.2, f"{value:.1f}%", va="center", fontsize=8)
        axes.set_xlim(0, 110)
        axes.set_xticks(range(0, 101, 20))
        axes.set_xlabel("sparsity (% of weights that are zero)", fontsize=9)
    else:
        axes.set_ylim(0, 105)
        axes.set_ylabel("sparsity (%)", fontsize=9)
    return to_svg(axes.figure)


def channels_chart(report: Report) -> str | None:
    """Output channels per layer, baseline vs compressed, labelled "64 → 32"; None when no
    layer's channels changed (or the report has no channel counts)."""
    layers = [layer for layer in report.layers if layer.channels is not None]
    if not any(layer.baseline_channels not in (None, layer.channels) for layer in layers):
        return None
    after = np.array([layer.channels for layer in layers], dtype=float)
    before = np.array([layer.baseline_channels or layer.channels for layer in layers], dtype=float)
    names, dtypes = [layer.name for layer in layers], [layer.dtype for layer in layers]
    axes, index, labelled = _layer_bars(names, before, after, dtypes)
    right = float(before.max())
    if labelled:
        for row, b, a in zip(index, before, after, strict=True):
            text = f"{b:.0f} → {a:.0f}" if a != b else f"{a:.0f}"
            axes.text(max(a, b) + right * 0.01, row, text, va="center", fontsize=8)
        axes.set_xlim(0, right * 1.2)
        axes.set_xlabel("output channels (Conv filters, MatMul/Gemm features)", fontsize=9)
    else:
        axes.set_ylim(0, right * 1.05)
        axes.set_ylabel("output channels", fontsize=9)
    return to_svg(axes.figure)


def size_chart(report: Report) -> str:
    """Raw and gzip file size, baseline vs compressed."""
    base, comp = report.baseline, report.compressed
    groups = ["raw", "gzip"]
    before = [base.size_bytes, base.size_gzip_bytes]
    after = [comp.size_bytes, comp.size_gzip_bytes]
    figure = new_figure(5.2, 3.0)
    axes = figure.add_subplot()
    x = np.arange(len(groups))
    bars_before = axes.bar(x - 0.2, before, width=0.38, color=BASELINE_COLOR, label="baseline")
    bars_after = axes.bar(x + 0.2, after, width=0.38, color=COMPRESSED_COLOR, label="compressed")
    for bars in (bars_before, bars_after):
        for bar in bars:
            axes.annotate(
                format_size(bar.get_height()),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
    for position, b, a in zip(x, before, after, strict=True):
        if b:
            axes.annotate(
                f"{a / b:.2f}x",
                (position + 0.2, 0),
                ha="center",
                va="bottom",
                fontsize=8,
                color="white",
                xytext=(0, 3),
                textcoords="offset points",
                fontweight="bold",
            )
    axes.set_xticks(x, ["file size (raw)", "file size (gzip -6)"])
    axes.set_ylim(0, max(before + after) * 1.18 or 1)
    axes.yaxis.set_major_formatter(lambda value, _: format_size(value))
    style_axes(axes)
    axes.grid(axis="x", visible=False)
    axes.legend(fontsize=8, frameon=False, loc="upper right")
    return to_svg(figure)


def latency_chart(report: Report) -> str | None:
    """The latency distribution of both models: empirical CDF of every timed run, with p50 and
    p90 marked. Reports without per-run samples get p50/p90 markers only. None: no latency."""
    pairs = [
        ("baseline", report.baseline.latency_ms, BASELINE_COLOR),
        ("compressed", report.compressed.latency_ms, COMPRESSED_COLOR),
    ]
    pairs = [(label, stats, color) for label, stats, color in pairs if stats is not None]
    if not pairs:
        return None
    left, right = latency_range([stats for _, stats, _ in pairs])
    figure = new_figure(8.6, 3.4)
    axes = figure.add_subplot()
    for label, stats, color in pairs:
        _draw_latency(axes, label, stats, color, right)
    axes.set_xlabel("latency per run (ms)", fontsize=9)
    axes.set_ylabel("fraction of runs ≤ x", fontsize=9)
    axes.set_ylim(0, 1.04)
    axes.set_xlim(left, right)
    axes.set_yticks([0, 0.25, 0.5, 0.75, 0.9, 1.0])
    style_axes(axes)
    axes.legend(fontsize=8, frameon=False, loc="lower right")
    return to_svg(figure)


def latency_range(stats: list[Latency]) -> tuple[float, float]:
    """The x range that shows the body of the distributions: from a little below the fastest
    run to the 97th percentile or, if further, half the fastest-to-p90 spread beyond the slowest
    p90 (slower outliers are counted in the legend, not drawn)."""
    p90 = max(s.p90 for s in stats)
    samples = np.concatenate([np.asarray(s.samples or [], dtype=float) for s in stats])
    if samples.size == 0:
        low = min(s.p50 for s in stats)
        return low * 0.8, p90 * 1.2 or 1.0
    low, high = float(samples.min()), float(samples.max())
    right = min(high, max(p90 + 0.5 * (p90 - low), float(np.percentile(samples, 97))))
    right = max(right, p90) * 1.04
    left = max(0.0, low - 0.08 * (right - low))
    return left, right if right > left else left + 1.0


def _draw_latency(axes, label: str, stats: Latency, color: str, right: float) -> None:
    """One model's CDF, its p50/p90 markers and a legend entry that carries the figures."""
    samples = np.sort(np.asarray(stats.samples or [], dtype=float))
    figures = f"p50 {units.shown('ms', stats.p50)}, p90 {units.shown('ms', stats.p90)}"
    if samples.size:
        levels = np.arange(1, samples.size + 1) / samples.size
        beyond = int(np.sum(samples > right))
        tail = f"; {beyond} slower run(s) off the axis" if beyond else ""
        axes.step(
            np.concatenate([[samples[0]], samples]),
            np.concatenate([[0.0], levels]),
            where="post",
            color=color,
            linewidth=1.8,
            label=f"{label}: {figures} ({stats.runs} runs{tail})",
        )
    else:
        axes.plot([], [], color=color, label=f"{label}: {figures} (no per-run samples)")
    for value, level in ((stats.p50, 0.5), (stats.p90, 0.9)):
        axes.axvline(value, color=color, linestyle="--", linewidth=0.9, alpha=0.7)
        axes.plot([value], [level], marker="o", color=color, markersize=5)
