"""What a newcomer found hard to read in the reports: figures in different units from one view to
the next, passes whose work the report hid, and timing noise called a win. Real runs of the seed
MLP (one apply, one analyze, one tune); variants edit the real report's JSON."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import seed_mlp_recipe
from rich.console import Console

import compress
from compress.analysis.run import analyze
from compress.analysis.table import print_analysis
from compress.check import check
from compress.compare import compare_files
from compress.report.gate import check_markdown
from compress.report.schema import Report
from compress.report.table import print_table
from compress.tuning.search import tune

PASSES = [
    {"type": "distill", "alpha": 0.5, "temperature": 2.0},  # recovery: trains in the prune pass
    {"type": "prune", "method": "channel", "sparsity": 0.5, "fine_tune": True},
    {"type": "quantize", "mode": "static", "calibration": {"samples": 64}, "placement": "all"},
]
#: A size and the accuracy drop that pass; a count and a latency that fail.
BUDGETS = {
    "size_gzip_bytes": {"max": "20kB"},
    "macs": {"max": 100},
    "latency_p50_ms": {"max": 0.001},
    "accuracy_drop": {"max": 0.5},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The output folder of one real apply of PASSES with BUDGETS."""
    root = tmp_path_factory.mktemp("frictions")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(seed_mlp_recipe(passes=PASSES, budgets=BUDGETS)))
    compress.apply(recipe, output_dir=root / "out", progress=False)
    return root / "out"


@pytest.fixture
def report(run) -> Report:
    return Report.read(run / "report.json")


@pytest.fixture
def data(run) -> dict:
    return json.loads((run / "report.json").read_text())


def section(html: str, start: str, end: str) -> str:
    return html[html.index(f'id="{start}"') : html.index(f'id="{end}"')]


def chart_texts(html: str, after: str) -> list[str]:
    """The texts drawn in the first chart after `after` (matplotlib writes each as a comment
    beside its glyphs)."""
    match = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', html[html.index(after) :])
    assert match, after
    return re.findall(r"<!-- (.*?) -->", base64.b64decode(match.group(1)).decode())


def terminal(printer, *args) -> str:
    console = Console(record=True, width=200)
    printer(*args, console)
    return console.export_text()


def test_units_budgets_show_limit_and_value_in_the_metric_unit(run, report):
    """Not `value 36813.0`, `1.57936e+08` or a latency limit without "ms": every view shows a
    budget's limit and value like the metric, the accuracy drop in points."""
    comp = report.compressed
    views = {
        "terminal": terminal(print_table, report),
        "report.md": (run / "report.md").read_text(),
        "report.html": section((run / "report.html").read_text(), "budgets", "charts"),
    }
    drop = next(b.value for b in report.budgets if b.metric == "accuracy_drop")
    for name, view in views.items():
        assert "max 20,000 B" in view and f"{comp.size_gzip_bytes:,} B" in view, name
        assert "max 100" in view and f"{comp.macs:,}" in view, name
        assert "max 0.001 ms" in view and f"{comp.latency_ms.p50:.3f} ms" in view, name
        assert "max 50.00 pts" in view and f"{drop * 100:.4f} pts" in view, name
        assert f"{float(comp.size_gzip_bytes)}" not in view and "e+0" not in view, name


def test_units_a_failed_limit_says_how_far_in_the_metric_unit(run, report):
    """Not `373.5% over the limit`: the excess in ms (and how many times the limit)."""
    result = check(run / "report.json")
    rows = {row.metric: row for row in result.rows}
    p50 = report.compressed.latency_ms.p50
    expected = f"{p50 - 0.001:.3f} ms over the limit ({p50 / 0.001:.2f}x)"
    assert rows["latency_p50_ms"].note == expected
    assert f"max 0.001 ms ({expected})" in check_markdown(result)
    html = section((run / "report.html").read_text(), "budgets", "charts")
    assert expected in html


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    """One real `compress analyze` of a magnitude prune and a static INT8 pass."""
    root = tmp_path_factory.mktemp("frictions-analysis")
    passes = [{"type": "prune", "sparsity": 0.5}, PASSES[2]]
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(seed_mlp_recipe(passes=passes, measure={"latency": None})))
    result = analyze(recipe, root / "analysis", progress=False, samples=128, levels=(0.5, 0.9))
    return result, (root / "analysis" / "analysis.html").read_text()


@pytest.mark.e2e
def test_units_analysis_tables_show_drops_in_the_points_of_the_chart(analysis):
    """Not a chart in points (0-40) over a table of fractions (0.4023)."""
    result, html = analysis
    scan = result.passes[0]
    worst = max(point.drop for row in scan.layers for point in row.points)
    assert worst > 0
    assert f">{worst * 100:.2f}<" in html and f">{worst:.4f}<" not in html
    assert "at 90% (pts)" in html
    assert "drop (percentage points)" in chart_texts(html, 'id="pass-1"')
    printed = terminal(print_analysis, result, "out")
    assert "90% (pts)" in printed and f"{worst * 100:.2f}" in printed


@pytest.mark.e2e
def test_node_analysis_ranks_only_nodes_whose_revert_gains(analysis):
    """Not a node ranked whose revert makes things worse when quantizing costs nothing: a rank
    only where reverting gains and the full drop is positive; gains as a share of the error."""
    result, html = analysis
    scan = result.passes[1]
    ranked = [node for node in scan.nodes if node.rank is not None]
    assert all(node.gain > 0 for node in ranked) and not (ranked and scan.full_drop <= 0)
    assert [node.rank for node in ranked] == list(range(1, len(ranked) + 1))
    if scan.full_drop <= 0:  # the seed MLP on x86: INT8 loses no val sample
        assert "none is ranked" in scan.notes[0] and "none is ranked" in html
    table = html[html.index('id="pass-2"') :]
    assert "error removed (%)" in table and not re.search(r"\de-0\d", table)


@pytest.mark.e2e
def test_units_tuning_page_names_its_budgets_and_drops_in_points(tmp_path):
    """Not `accuracy_drop {'max': 0.01}`: the budget as the catalogue shows it."""
    raw = seed_mlp_recipe(budgets={"accuracy_drop": {"max": 0.01}}, measure={"latency": None})
    raw["passes"] = [{"type": "prune", "sparsity": 0.5}]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    tuning = tune(recipe, trials=1, output_dir=tmp_path / "tune", progress=False)
    html = (tmp_path / "tune" / "tuning.html").read_text()
    assert "budgets: accuracy_drop max 1.00 pts;" in html and "{'max'" not in html
    assert "accuracy drop (pts)" in html
    (trial,) = tuning.trials
    drop = trial.figures["accuracy_drop"]
    assert f">{drop * 100:.2f}<" in html
    assert "accuracy drop (percentage points)" in chart_texts(html, "<figure>")


def test_channel_pruning_charts_channels_before_and_after(run, report):
    """Not tiny sparsity bars for a channel-pruned model: its channels, before → after."""
    html = (run / "report.html").read_text()
    cut = [layer for layer in report.layers if layer.baseline_channels != layer.channels]
    assert cut
    texts = chart_texts(html, 'id="chart-channels"')
    for layer in cut:
        assert f"{layer.baseline_channels} → {layer.channels}" in texts
    assert f"{len(cut)} of {len(report.layers)} layers cut" in html
    gained = max(layer.sparsity - (layer.baseline_sparsity or 0) for layer in report.layers)
    assert ('id="chart-sparsity"' in html) == (gained >= 0.05)


def test_pass_records_are_tables_not_cut_json(run, report):
    """Not `{"max_abs_diff": …` cut with "…": channel groups, verification and the quantizer's
    choices as tables and sentences, in report.html and report.md."""
    prune = report.passes[1]
    (group,) = prune["groups"]
    html = section((run / "report.html").read_text(), "passes", "environment")
    markdown = (run / "report.md").read_text()
    markdown = markdown[markdown.index("## Passes") : markdown.index("## Layers")]
    row = f"{group['name']}</td><td>{group['kind']}</td><td>{group['before']}\u00a0→\u00a0"
    assert row in html and "<h4>channel groups</h4>" in html
    assert f"| {group['name']} | {group['kind']} | {group['before']}\u00a0→\u00a0" in markdown
    from compress.cpu import VNNI_FEATURES, cpu_flags

    measured_width = not VNNI_FEATURES & cpu_flags()  # 8 vs 7 bits is measured without VNNI
    for view in (html, markdown):
        assert "pruned model = masked model: max abs diff" in view
        assert "Pass 3: quantize (static)" in view
        assert ("weight bits error" in view) == measured_width
        assert "…" not in view and '{"' not in view and "{'" not in view


def test_distill_recovery_says_its_time_is_counted_in_the_training_pass(run, report):
    """Not `seconds 0` for a distill pass: its loss trains in the prune pass, which is timed."""
    distill, prune = report.passes[0], report.passes[1]
    assert distill["trained_in"] == [2] and prune["seconds"] > distill["seconds"]
    said = "its loss trains in pass 2 (prune), and the time is counted there"
    assert said in (run / "report.html").read_text() and said in (run / "report.md").read_text()


def scaled(data: dict, sides: tuple[str, ...], factor: float) -> dict:
    """The report with the latency of `sides` multiplied by `factor`."""
    moved = copy.deepcopy(data)
    for side in sides:
        latency = moved[side]["latency_ms"]
        for stat in ("p50", "p90", "mean"):
            latency[stat] *= factor
        latency["samples"] = [value * factor for value in latency["samples"]]
    return moved


def test_compare_calls_a_latency_that_moved_with_its_baseline_noise(data, tmp_path, run_cli):
    """Not "B better" for -34% when both runs' baselines moved the same way."""
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps(data))
    b.write_text(json.dumps(scaled(data, ("baseline", "compressed"), 0.66)))
    row = {r.metric: r for r in compare_files(a, b).rows}["latency_p50_ms"]
    assert row.change == pytest.approx(-0.34) and row.better is None
    assert "baseline, which moved -34%" in row.note
    code, out, _ = run_cli("compare", a, b)
    assert code == 0 and "≈ (noise)" in out and "moved -34%" in out
    # the same baseline and half the time, both runs without spread: a real difference
    quicker = scaled(data, ("compressed",), 0.5)
    for report in (data, quicker):
        report["compressed"]["latency_ms"]["p90"] = report["compressed"]["latency_ms"]["p50"]
    a.write_text(json.dumps(data))
    c.write_text(json.dumps(quicker))
    assert {r.metric: r for r in compare_files(a, c).rows}["latency_p50_ms"].better == "b"


def test_compare_calls_a_latency_within_the_runs_spread_noise(data, tmp_path):
    """A p50 20% slower but inside the p50-p90 spread that run measured is not a difference."""
    p50 = data["compressed"]["latency_ms"]["p50"]
    slower = copy.deepcopy(data)
    slower["compressed"]["latency_ms"].update(p50=p50 * 1.2, p90=p50 * 1.5)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(data))
    b.write_text(json.dumps(slower))
    row = {r.metric: r for r in compare_files(a, b).rows}["latency_p50_ms"]
    assert row.better is None and "within the spread the runs measured" in row.note


def test_check_passes_a_latency_change_that_is_timing_noise(data, tmp_path):
    """`check --baseline` with a 5% latency limit: +50% that both baselines share passes, and
    says why; the same +50% on the compressed model alone fails."""
    baseline, current = tmp_path / "baseline.json", tmp_path / "report.json"
    budget = tmp_path / "budget.yaml"
    budget.write_text(yaml.safe_dump({"relative": {"latency_p50_ms": {"max_increase": "5%"}}}))
    baseline.write_text(json.dumps(data))
    current.write_text(json.dumps(scaled(data, ("baseline", "compressed"), 1.5)))
    result = check(current, budget_path=budget, baseline_path=baseline)
    row = next(r for r in result.rows if r.metric == "latency_p50_ms")
    assert row.status == "pass" and row.change == pytest.approx(0.5)
    assert "timing noise" in row.note and "timing noise" in check_markdown(result)
    alone = scaled(data, ("compressed",), 1.5)
    for report in (data, alone):
        report["compressed"]["latency_ms"]["p90"] = report["compressed"]["latency_ms"]["p50"]
    baseline.write_text(json.dumps(data))
    current.write_text(json.dumps(alone))
    result = check(current, budget_path=budget, baseline_path=baseline)
    assert next(r for r in result.rows if r.metric == "latency_p50_ms").status == "fail"
