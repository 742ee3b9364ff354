"""The metrics catalogue (compress/metrics.py) drives budgets, relative limits, the report's
table, Markdown and HTML, `compress check` and `compress compare`: a toy metric added to the
catalogue in this file alone reaches every one of them. Reports are written by hand (no model)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

import compress.check
from compress.metrics import METRICS, Metric, budget_metrics, limits_model
from compress.recipe import Budgets, Limit, SizeLimit
from compress.report.baseline import RelativeBudgets, RelativeLimit, baseline_rows, relative_limits
from compress.report.budgets import budget_rows
from compress.report.compare import compare_reports
from compress.report.gate import check_markdown
from compress.report.html import render_html
from compress.report.markdown import render_markdown
from compress.report.rows import comparison_rows
from compress.report.schema import Report

#: A new metric is one entry (read from `baseline.toy_ops` and `compressed.toy_ops`).
TOY = Metric("toy_ops", "toy ops", "count", "lower")


def model(**extra) -> dict:
    latency = {"p50": 1.0, "p90": 1.2, "mean": 1.1, "runs": 10}
    figures = {"size_bytes": 4000, "size_gzip_bytes": 3000, "params": 900, "nonzero_params": 450}
    return {**figures, "sparsity": 0.5, "latency_ms": latency, "accuracy": 0.9, **extra}


def report_dict(budgets: dict | None = None, baseline: dict | None = None, **compressed) -> dict:
    """A small valid report: `baseline` and `compressed` add figures to each model."""
    return {
        "schema_version": 1,
        "tool_version": "0",
        "recipe": {"name": "toy", "spec": {"budgets": budgets}},
        "framework": "torch",
        "baseline": model(**(baseline or {})),
        "compressed": model(**compressed),
        "fidelity": {"metric": "cosine", "value": 0.99},
        "layers": [{"name": "fc", "params": 900, "sparsity": 0.5, "dtype": "float32"}],
        "passes": [],
        "artifacts": {"onnx": "model.onnx", "report_json": "report.json"},
        "environment": {"python": "3", "onnxruntime": "1", "cpu": "cpu", "threads": 1},
    }


@pytest.fixture
def toy(monkeypatch) -> Metric:
    """TOY registered in the catalogue for one test."""
    monkeypatch.setitem(METRICS, TOY.name, TOY)
    return TOY


def test_budget_models_have_one_key_per_budget_metric():
    names = [metric.name for metric in budget_metrics()]
    assert names == [
        "size_bytes",
        "size_gzip_bytes",
        "params",
        "nonzero_params",
        "sparsity",
        "macs",
        "latency_p50_ms",
        "latency_p90_ms",
        "accuracy",
        "accuracy_drop",
        "perplexity",
        "perplexity_increase",
        "prefill_ms",
        "decode_tokens_per_s",
    ]
    assert list(Budgets.model_fields) == names
    assert list(RelativeBudgets.model_fields) == names
    sized = Budgets(size_bytes={"max": "2kB"}, params={"max": 10})
    assert sized.size_bytes.max == 2000 and isinstance(sized.size_bytes, SizeLimit)
    with pytest.raises(ValidationError, match="Extra inputs"):
        Budgets.model_validate({"fidelity": {"min": 0.9}})  # in the catalogue, not a budget


def test_a_catalogue_metric_is_a_budget_key_and_is_checked(toy, monkeypatch, tmp_path):
    toy_budgets = limits_model("Budgets", Limit, sized=SizeLimit, module=__name__)
    assert toy_budgets.model_validate({"toy_ops": {"max": 150}}).toy_ops.max == 150
    with pytest.raises(ValidationError, match="Extra inputs"):
        toy_budgets.model_validate({"toy_opz": {"max": 150}})
    # `compress check` evaluates the toy budget of the report's recipe (and the others)
    monkeypatch.setattr(compress.check, "Budgets", toy_budgets)
    budgets = {"toy_ops": {"max": 100}, "params": {"max": 1000}}
    report = tmp_path / "report.json"
    report.write_text(json.dumps(report_dict(budgets, baseline={"toy_ops": 200}, toy_ops=120)))
    result = compress.check.check(report)
    assert [(row.metric, row.status) for row in result.rows] == [
        ("params", "pass"),
        ("toy_ops", "fail"),
    ]
    assert result.rows[1].note == "20 over the limit (1.20x)" and result.exit_code == 1
    assert "| ❌ fail | budget | toy ops | max 100 (20 over the limit (1.20x)) | 120 |" in (
        check_markdown(result)
    )


def test_a_catalogue_metric_has_relative_limits(toy):
    toy_relative = limits_model("RelativeBudgets", RelativeLimit, module=__name__)
    relative = toy_relative.model_validate({"toy_ops": {"max_increase": "10%"}})
    limits = relative_limits(relative, None)
    assert list(limits) == ["size_bytes", "size_gzip_bytes", "toy_ops"]
    now = Report.model_validate(report_dict(toy_ops=120))
    before = Report.model_validate(report_dict(toy_ops=100))
    rows = {row.metric: row for row in baseline_rows(now, before, limits)}
    assert rows["toy_ops"].status == "fail" and rows["toy_ops"].change == pytest.approx(0.2)
    assert budget_rows(now, None) == []


def test_a_catalogue_metric_is_in_the_table_markdown_html_and_compare(toy):
    report = Report.model_validate(report_dict(baseline={"toy_ops": 200}, toy_ops=120))
    rows = {row.label: row for row in comparison_rows(report)}
    toy_row = rows["toy ops"]
    assert (toy_row.baseline, toy_row.compressed, toy_row.change) == ("200", "120", "0.60x")
    assert toy_row.trend == "good"
    assert list(rows)[-2:] == ["fidelity (cosine)", "toy ops"]  # catalogue order
    assert "| toy ops | 200 | 120 | 0.60x |" in render_markdown(report)
    html = render_html(report)
    assert '<div class="label">toy ops</div>' in html  # a summary card
    assert "<tr><td>toy ops</td><td class='num'>200</td>" in html  # the exact counts
    other = Report.model_validate(report_dict(toy_ops=100))
    compared = {row.metric: row for row in compare_reports(report, other).rows}
    assert compared["toy_ops"].better == "b" and compared["toy_ops"].delta == -20
    # a report without the figure has no table row, and compare shows it as unmeasured
    plain = Report.model_validate(report_dict())
    assert "toy ops" not in [row.label for row in comparison_rows(plain)]
    assert {row.metric: row for row in compare_reports(plain, plain).rows}["toy_ops"].a is None


@pytest.mark.parametrize(("metric", "drop"), [("accuracy", 0.1), ("mse", -0.1), (None, 0.1)])
def test_accuracy_drop_follows_the_metric_direction(metric, drop):
    """An mse that rises is a drop; an accuracy that falls is one (one definition, shared with
    the quantize fallback)."""
    raw = report_dict(baseline={"accuracy": 0.9}, accuracy=0.8)
    raw["recipe"]["spec"]["evaluate"] = {"metric": metric} if metric else None
    value = METRICS["accuracy_drop"].figure(Report.model_validate(raw), "compressed")
    assert value == pytest.approx(drop)


def test_a_perplexity_drop_is_relative_to_the_baseline():
    """Friction (benchmarks/int4.py): max_accuracy_drop 0.001 on perplexity compared 0.147
    perplexity points, 74x stricter than the 0.1% the docs promise."""
    from compress.metrics import drop_unit, metric_drop

    assert metric_drop("perplexity", 74.3325, 74.4796) == pytest.approx(0.00198, abs=1e-5)
    assert drop_unit("perplexity") == "fraction"
    assert metric_drop("accuracy", 0.95, 0.94) == pytest.approx(0.01)
