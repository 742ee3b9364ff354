"""The metrics catalogue: every figure of a report that budgets, relative limits, the report's
table, Markdown and HTML cards, `compress check` and `compress compare` name, defined once.

Each consumer iterates `METRICS` (in this order) and reads a figure through its `Metric`, so a
new metric (FLOPs, say) is one entry here plus the code that measures it into the report. How a
figure of each unit is shown is in compress/units.py. This module imports no framework and no
other part of the toolkit than the strict pydantic base and the units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import create_model

from compress.schema import StrictModel
from compress.units import Unit, limit

Side = Literal["baseline", "compressed"]


class Report(Protocol):
    """What the catalogue reads of a report (compress.report.schema.Report): both sides'
    figures, the fidelity, and the recipe's evaluate metric."""

    baseline: Any
    compressed: Any
    fidelity: Any

    @property
    def evaluate_metric(self) -> str | None: ...


Reader = Callable[["Report", Side], "float | None"]

#: Latency changes smaller than this fraction are timing noise: compare calls neither report
#: faster, report.html leaves the card uncoloured, and a model is flagged SLOWER only beyond it.
LATENCY_NOISE = 0.05


@dataclass(frozen=True)
class Metric:
    """A figure of a report: how it is named, shown, judged and read."""

    name: str  # the budget key and the `metric` of check/compare results
    label: str  # as tables show it
    unit: Unit
    better: Literal["lower", "higher"]
    # (report, side) -> that side's figure, None when not measured; default: the key `name` of
    # the side's section (`compressed.size_bytes`)
    read: Reader | None = None
    decimals: int = 2  # digits of a fraction's percent and points in the report table
    budget: bool = True  # a key of `budgets:` and of a budget file's `relative:`
    table: bool = True  # a row of the report's table and Markdown
    card: bool = True  # a summary card of report.html (when it is a table row)
    paired: bool = True  # a figure of each model; False: one figure about the pair
    flag_slower: bool = False  # the table flags a compressed model slower than SLOWER_THRESHOLD
    side_label: str | None = None  # the label in report.html's exact table beside the size chart
    detail: Callable[[Report], str | None] | None = None  # shown after the label, e.g. its kind
    quality: bool = False  # compressing further makes it worse (what `compress tune` trades)
    # in the recipe's evaluate metric: a share (or points) only when that metric is one
    evaluated: bool = False

    @property
    def sized(self) -> bool:
        """A size: budgets take units ("200kB") and a baseline gates its growth by default."""
        return self.unit == "bytes"

    @property
    def noisy(self) -> bool:
        """A timing, subject to LATENCY_NOISE."""
        return self.unit == "ms"

    def figure(self, report: Report, side: Side) -> float | None:
        """The figure of one side of a report; None when it was not measured."""
        if self.read is not None:
            return self.read(report, side)
        return getattr(getattr(report, side), self.name, None)

    def value(self, report: Report) -> float | None:
        """The compressed model's figure (what budgets, check and compare judge)."""
        return self.figure(report, "compressed")

    def label_for(self, *reports: Report) -> str:
        """The label with the first report's detail, e.g. "fidelity (cosine)"."""
        details = [self.detail(r) for r in reports] if self.detail else []
        detail = next((d for d in details if d), None)
        return f"{self.label} ({detail})" if detail else self.label

    def unit_for(self, evaluate_metric: str | None) -> Unit:
        """The unit of this figure under the recipe's evaluate metric: an evaluated figure
        (accuracy, its drop) is a score unless that metric is a share of samples."""
        if self.evaluated and evaluate_metric not in SHARE_METRICS:
            return "score"
        return self.unit


def _latency(stat: str) -> Reader:
    def read(report: Report, side: Side) -> float | None:
        latency = getattr(report, side).latency_ms
        return None if latency is None else getattr(latency, stat)

    return read


#: Built-in evaluate metrics where a lower value is better; custom ones count as higher-better.
LOWER_IS_BETTER = {"mse", "perplexity"}
#: Evaluate metrics whose values are shares of the samples: shown in %, their drops in points.
SHARE_METRICS = ("accuracy", "top5")


#: Metrics whose drop is relative (0.01 = 1% worse): a perplexity's scale depends on the model.
RELATIVE_DROP = {"perplexity"}


def drop_unit(metric: str | None) -> Unit:
    """The unit of a drop in the recipe's evaluate metric `metric` (or, without labels, in the
    fidelity it implies: top-1 agreement for accuracy and top5, else cosine)."""
    if metric in RELATIVE_DROP:
        return "fraction"
    return "points" if metric in SHARE_METRICS else "score"


def metric_drop(metric: str | None, before: float, after: float) -> float:
    """How much worse `after` is than `before` in `metric` (positive: worse); for perplexity
    relative to `before` (the `max_accuracy_drop` of an LLM is a relative increase)."""
    if metric in RELATIVE_DROP:
        return after / before - 1 if before > 0 else float("inf")
    return after - before if metric in LOWER_IS_BETTER else before - after


def _generation(figure: str) -> Reader:
    def read(report: Report, side: Side) -> float | None:
        generation = getattr(getattr(report, side), "generation", None)
        return None if generation is None else getattr(generation, figure)

    return read


def _perplexity_increase(report: Report, side: Side) -> float | None:
    base = getattr(report.baseline, "perplexity", None)
    comp = getattr(report.compressed, "perplexity", None)
    if side == "baseline" or base is None or comp is None or base <= 0:
        return None
    return round(comp / base - 1, 6)


def _accuracy_drop(report: Report, side: Side) -> float | None:
    base, comp = report.baseline.accuracy, report.compressed.accuracy
    if side == "baseline" or base is None or comp is None:
        return None
    return round(metric_drop(report.evaluate_metric, base, comp), 6)


def _fidelity(report: Report, side: Side) -> float | None:
    return report.fidelity.value if side == "compressed" and report.fidelity else None


def _fidelity_kind(report: Report) -> str | None:
    return report.fidelity.metric if report.fidelity else None


#: Every metric, in the order reports, tables and budgets show them.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("size_bytes", "size", "bytes", "lower", side_label="raw"),
        Metric("size_gzip_bytes", "size (gzip)", "bytes", "lower", side_label="gzip -6"),
        Metric("params", "params", "count", "lower"),
        Metric("nonzero_params", "nonzero params", "count", "lower"),
        Metric("sparsity", "sparsity", "fraction", "higher", decimals=1),
        Metric("macs", "MACs", "count", "lower"),  # of one sample (batch 1)
        Metric("latency_p50_ms", "latency p50", "ms", "lower", _latency("p50"), flag_slower=True),
        # no card: report.html shows p90 on the latency chart
        Metric("latency_p90_ms", "latency p90", "ms", "lower", _latency("p90"), card=False),
        Metric("accuracy", "accuracy", "fraction", "higher", quality=True, evaluated=True),
        Metric(
            "accuracy_drop",
            "accuracy drop",
            "points",
            "lower",
            _accuracy_drop,
            table=False,
            paired=False,
            quality=True,
            evaluated=True,
        ),
        Metric("perplexity", "perplexity", "score", "lower", quality=True),
        Metric(
            "perplexity_increase",
            "perplexity increase",
            "fraction",
            "lower",
            _perplexity_increase,
            table=False,
            paired=False,
            quality=True,
        ),
        Metric("prefill_ms", "prefill", "ms", "lower", _generation("prefill_ms")),
        Metric(
            "decode_tokens_per_s",
            "decode tokens/s",
            "per_s",
            "higher",
            _generation("tokens_per_s"),
            decimals=1,
        ),
        Metric(
            "generation_peak_rss_bytes",
            "peak memory (generation)",
            "bytes",
            "lower",
            _generation("peak_rss_bytes"),
            budget=False,
            card=False,
        ),
        Metric(
            "fidelity",
            "fidelity",
            "score",
            "higher",
            _fidelity,
            budget=False,
            paired=False,
            detail=_fidelity_kind,
            quality=True,
        ),
    )
}


def budget_text(name: str, bounds: dict[str, float], evaluate_metric: str | None) -> str:
    """A recipe's budget on metric `name` as people read it: "accuracy_drop max 1.00 pts"."""
    unit = METRICS[name].unit_for(evaluate_metric)
    shown = [f"{bound} {limit(unit, v)}" for bound, v in bounds.items() if v is not None]
    return f"{name} {', '.join(shown)}"


def budget_metrics() -> list[Metric]:
    """The metrics budgets and relative limits may name, in catalogue order."""
    return [m for m in METRICS.values() if m.budget]


def limits_model(
    name: str,
    limit: type[StrictModel],
    *,
    module: str,
    sized: type[StrictModel] | None = None,
    doc: str = "",
) -> type[StrictModel]:
    """A strict pydantic model with one optional `limit` field per budget metric (`sized` for
    sizes, which take units): the recipe's `budgets:` and a budget file's `relative:`. `module`
    is where the model is bound by `name` (so that it pickles)."""
    fields: dict[str, Any] = {
        m.name: ((sized if m.sized and sized else limit) | None, None) for m in budget_metrics()
    }
    return create_model(name, __base__=StrictModel, __doc__=doc, __module__=module, **fields)
