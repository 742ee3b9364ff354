"""Budgets: limits on a report's figures, checked after apply (and by `compress check`)."""

from __future__ import annotations

from compress.recipe import Budgets, Limit, SizeLimit
from compress.report.schema import BudgetResult, Report


def metric_value(report: Report, metric: str) -> float | None:
    """The compressed model's figure a budget metric refers to (None when not measured)."""
    comp, base = report.compressed, report.baseline
    if metric.startswith("latency_"):
        key = metric.removeprefix("latency_").removesuffix("_ms")
        return None if comp.latency_ms is None else getattr(comp.latency_ms, key)
    if metric == "accuracy_drop":
        if comp.accuracy is None or base.accuracy is None:
            return None
        return round(base.accuracy - comp.accuracy, 6)
    return getattr(comp, metric)


def evaluate_budgets(report: Report, budgets: Budgets | None) -> list[BudgetResult]:
    """One result per limit; a limit on something that was not measured fails."""
    results = []
    for metric in Budgets.model_fields:
        limit: Limit | None = getattr(budgets, metric, None) if budgets else None
        if limit is None:
            continue
        value = metric_value(report, metric)
        for bound in ("max", "min"):
            threshold = getattr(limit, bound)
            if threshold is None:
                continue
            ok = value is not None and (
                value <= threshold if bound == "max" else value >= threshold
            )
            results.append(
                BudgetResult(
                    metric=metric,
                    limit=f"{bound} {_show(threshold, limit)}",
                    value=value,
                    status="pass" if ok else "fail",
                )
            )
    return results


def _show(threshold: float, limit: Limit) -> str:
    return f"{int(threshold)} B" if isinstance(limit, SizeLimit) else f"{threshold:g}"
