"""`compress check` (budgets and baselines, the CI gate) and `compress compare`, on a real report
produced by `compress.apply` on the seed MLP; variants are derived by editing its JSON."""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import MODELS, seed_mlp_recipe

import compress
from compress.errors import EXIT_BUDGET, EXIT_READ, EXIT_USAGE
from compress.recipe import Budgets
from compress.report.budgets import budget_rows, evaluate_budgets


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> Path:
    """One real report per module: the seed MLP pruned to 50%, with recipe budgets."""
    root = tmp_path_factory.mktemp("check")
    raw = seed_mlp_recipe(budgets={"sparsity": {"min": 0.4}, "size_gzip_bytes": {"max": "100kB"}})
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    compress.apply(recipe, output_dir=root / "out", progress=False)
    return root / "out" / "report.json"


@pytest.fixture
def data(produced) -> dict:
    """A fresh copy of the real report's JSON for a test to edit."""
    return json.loads(produced.read_text())


@pytest.fixture
def save(tmp_path):
    """save(report_dict, name) -> path of a JSON report file in tmp_path."""

    def write(report: dict, name: str = "report.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(report, indent=2))
        return path

    return write


@pytest.fixture
def budget(tmp_path):
    """budget(dict or text, name) -> path of a budget file in tmp_path."""

    def write(content: dict | str, name: str = "budget.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return write


def grown(report: dict, factor: float, keys=("size_bytes", "size_gzip_bytes")) -> dict:
    changed = copy.deepcopy(report)
    for key in keys:
        changed["compressed"][key] = round(changed["compressed"][key] * factor)
    return changed


def results(out: str) -> dict[tuple[str, str], dict]:
    """--json output -> {(check, metric): result}."""
    return {(r["check"], r["metric"]): r for r in json.loads(out)["results"]}


def test_recipe_budgets_pass(run_cli, produced):
    code, out, err = run_cli("check", produced)
    assert code == 0, err
    assert "budgets from the report's recipe" in out
    assert "sparsity" in out and "size (gzip)" in out and "pass: 2 pass" in out


# metric -> (edits to the report, a passing limit, a failing limit)
BUDGET_CASES = {
    "size_bytes": ({"size_bytes": 10_000}, {"max": "10kB"}, {"max": "9.9kB"}),
    "size_gzip_bytes": ({"size_gzip_bytes": 4_000}, {"max": "4KiB"}, {"max": 3_999}),
    "params": ({"params": 652}, {"max": 652}, {"max": 651}),
    "nonzero_params": ({"nonzero_params": 352}, {"max": 400}, {"max": 300}),
    "sparsity": ({"sparsity": 0.46}, {"min": 0.45}, {"min": 0.5}),
    "latency_p50_ms": ({"latency_ms.p50": 0.5}, {"max": 1}, {"max": 0.4}),
    "latency_p90_ms": ({"latency_ms.p90": 0.8}, {"max": 0.8}, {"max": 0.5}),
    "accuracy": ({"accuracy": 0.9}, {"min": 0.85}, {"min": 0.95}),
    "accuracy_drop": ({"accuracy": 0.95, "baseline.accuracy": 0.96}, {"max": 0.01}, {"max": 0.005}),
}


def edit(report: dict, changes: dict) -> dict:
    """Set compressed figures (`key`, `latency_ms.p50`) or `baseline.key`."""
    report = copy.deepcopy(report)
    for key, value in changes.items():
        section = "compressed"
        if key.startswith("baseline."):
            section, key = "baseline", key.removeprefix("baseline.")
        target = report[section]
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return report


@pytest.mark.parametrize("metric", list(BUDGET_CASES))
def test_each_budget_kind_passes_and_fails(run_cli, data, save, budget, metric):
    changes, passing, failing = BUDGET_CASES[metric]
    report = save(edit(data, changes))
    for limit, expected_code, expected_status in (
        (passing, 0, "pass"),
        (failing, EXIT_BUDGET, "fail"),
    ):
        code, out, err = run_cli(
            "check", report, "--budget", budget({"budgets": {metric: limit}}), "--json"
        )
        assert code == expected_code, (limit, out, err)
        assert results(out)[("budget", metric)]["status"] == expected_status
        if expected_status == "fail":
            assert f"error: check failed: {metric}" in err


def test_a_budget_on_something_not_measured_fails(run_cli, data, save, budget):
    for section in ("baseline", "compressed"):
        data[section]["latency_ms"] = None
    path = budget({"budgets": {"latency_p50_ms": {"max": 10}}})
    code, out, _ = run_cli("check", save(data), "--budget", path, "--json")
    assert code == EXIT_BUDGET
    row = results(out)[("budget", "latency_p50_ms")]
    assert row["status"] == "fail" and row["note"] == "not measured in this report"


def test_budget_file_replaces_the_recipe_budgets(run_cli, produced, budget):
    code, out, _ = run_cli(
        "check", produced, "--budget", budget({"budgets": {"params": {"max": 10_000}}}), "--json"
    )
    assert code == 0
    assert list(results(out)) == [("budget", "params")]
    assert json.loads(out)["budgets_from"].endswith("budget.yaml")


def test_a_3_percent_size_increase_fails_a_2_percent_gate(run_cli, produced, data, save):
    bigger = save(grown(data, 1.03), "bigger.json")
    code, out, err = run_cli("check", bigger, "--baseline", produced, "--max-increase", "2%")
    assert code == EXIT_BUDGET
    assert "increase of 3.0" in out and "is over 2%" in out
    assert "error: check failed: size_bytes" in err
    # 2% is also the default with a baseline; 1.5% passes
    assert run_cli("check", bigger, "--baseline", produced)[0] == EXIT_BUDGET
    code, out, _ = run_cli("check", save(grown(data, 1.015), "a.json"), "--baseline", produced,
                           "--json")  # fmt: skip
    assert code == 0
    row = results(out)[("baseline", "size_bytes")]
    assert row["status"] == "pass" and row["change"] == pytest.approx(0.015, abs=1e-3)
    assert row["baseline"] == data["compressed"]["size_bytes"]
    # a looser gate on the command line accepts the 3%
    assert run_cli("check", bigger, "--baseline", produced, "--max-increase", "5%")[0] == 0


def test_only_the_size_grew_gzip_alone_is_gated_too(run_cli, produced, data, save):
    gzip_only = save(grown(data, 1.05, keys=("size_gzip_bytes",)))
    code, out, _ = run_cli("check", gzip_only, "--baseline", produced, "--json")
    assert code == EXIT_BUDGET
    found = results(out)
    assert found[("baseline", "size_gzip_bytes")]["status"] == "fail"
    assert found[("baseline", "size_bytes")]["status"] == "pass"


def test_warn_passes_unless_strict(run_cli, produced, data, save, budget):
    rules = budget({"relative": {"size_bytes": {"max_increase": "5%", "warn": "1%"}}})
    bigger = save(grown(data, 1.03, keys=("size_bytes",)))
    code, out, err = run_cli("check", bigger, "--baseline", produced, "--budget", rules, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["status"] == "warn" and answer["counts"]["warn"] == 1
    row = results(out)[("baseline", "size_bytes")]
    assert row["status"] == "warn" and "over the warning level 1%" in row["note"]
    code, out, err = run_cli("check", bigger, "--baseline", produced, "--budget", rules, "--strict")
    assert code == EXIT_BUDGET
    assert "warnings fail with --strict" in out + err


def test_warn_margin_on_absolute_limits(run_cli, data, save, budget):
    report = save(edit(data, {"size_bytes": 9_600}))
    rules = budget({"budgets": {"size_bytes": {"max": "10kB"}}, "warn_margin": "5%"})
    code, out, _ = run_cli("check", report, "--budget", rules, "--json")
    assert code == 0
    row = results(out)[("budget", "size_bytes")]
    assert row["status"] == "warn" and row["note"] == "within 5% of the limit"
    assert run_cli("check", report, "--budget", rules, "--strict")[0] == EXIT_BUDGET
    code, out, _ = run_cli("check", report, "--budget", rules, "--warn-margin", "1%", "--json")
    assert results(out)[("budget", "size_bytes")]["status"] == "pass"


def test_metric_absent_in_the_baseline_is_new(run_cli, data, save, budget):
    old = copy.deepcopy(data)
    for section in ("baseline", "compressed"):
        old[section]["accuracy"] = None
    rules = budget({"relative": {"accuracy": {"max_decrease": "1%"}}})
    code, out, _ = run_cli(
        "check", save(data), "--baseline", save(old, "old.json"), "--budget", rules, "--json"
    )
    assert code == 0
    row = results(out)[("baseline", "accuracy")]
    assert row["status"] == "new" and row["note"] == "not in the baseline report"
    assert json.loads(out)["counts"]["new"] == 1


def test_relative_decrease_of_accuracy(run_cli, produced, data, save, budget):
    worse = save(edit(data, {"accuracy": data["compressed"]["accuracy"] * 0.97}))
    rules = budget({"relative": {"accuracy": {"max_decrease": "2%"}}})
    code, out, _ = run_cli("check", worse, "--baseline", produced, "--budget", rules, "--json")
    assert code == EXIT_BUDGET
    assert "decrease of 3.00% is over 2%" in results(out)[("baseline", "accuracy")]["note"]


def test_a_baseline_figure_of_zero(run_cli, data, save, budget):
    old = copy.deepcopy(data)
    old["compressed"]["sparsity"] = 0.0
    rules = budget({"relative": {"sparsity": {"max_increase": "10%"}}})
    code, out, _ = run_cli(
        "check", save(data), "--baseline", save(old, "old.json"), "--budget", rules, "--json"
    )
    assert code == EXIT_BUDGET
    json.loads(out, parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}"))
    row = results(out)[("baseline", "sparsity")]
    assert row["status"] == "fail" and row["change"] is None and "∞" in row["note"]


def test_latency_is_compared_only_when_asked(run_cli, produced, data, save, budget):
    slower = save(edit(data, {"latency_ms.p50": data["compressed"]["latency_ms"]["p50"] * 4}))
    code, out, _ = run_cli("check", slower, "--baseline", produced, "--json")
    assert code == 0
    assert ("baseline", "latency_p50_ms") not in results(out)
    rules = budget({"relative": {"latency_p50_ms": {"max_increase": "50%"}}})
    code, out, _ = run_cli("check", slower, "--baseline", produced, "--budget", rules, "--json")
    assert code == EXIT_BUDGET
    assert results(out)[("baseline", "latency_p50_ms")]["status"] == "fail"


def test_unknown_schema_version_is_refused_with_exit_2(run_cli, produced, data, save):
    data["schema_version"] = 2
    future = save(data, "future.json")
    code, out, err = run_cli("check", future)
    assert code == EXIT_USAGE
    assert "unsupported report schema_version 2" in err and out == ""
    assert run_cli("check", produced, "--baseline", future)[0] == EXIT_USAGE
    assert run_cli("compare", produced, future)[0] == EXIT_USAGE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"tool_version": "0.1.0"}', "not a compress report"),
        ('{"schema_version": 1, "framework": "torch"}', "invalid report"),
    ],
)
def test_invalid_reports_exit_2(run_cli, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _, err = run_cli("check", path)
    assert code == EXIT_USAGE and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unreadable_files_exit_3(run_cli, produced, tmp_path):
    missing = tmp_path / "missing.json"
    code, _, err = run_cli("check", missing)
    assert code == EXIT_READ and "no such report file" in err
    code, _, err = run_cli("check", tmp_path)  # a directory cannot be read as a file
    assert code == EXIT_READ and "is a directory" in err
    assert run_cli("check", produced, "--baseline", missing)[0] == EXIT_READ
    code, _, err = run_cli("check", produced, "--budget", tmp_path / "none.yaml")
    assert code == EXIT_READ and "no such budget file" in err
    assert run_cli("compare", produced, missing)[0] == EXIT_READ


def test_invalid_budget_file_exits_2_with_a_position(run_cli, produced, budget):
    path = budget("budgets:\n  size_bytes: {max: 10kB}\n  sparsity: {min: 0.4, mx: 3}\n")
    code, _, err = run_cli("check", produced, "--budget", path)
    assert code == EXIT_USAGE
    assert f"{path}:3:24: budgets.sparsity.mx: unknown key" in err
    assert "did you mean 'max'?" in err  # a typo names the key it is closest to
    path = budget("relative:\n  size_bytes: {max_increase: two}\n", "b.yaml")
    code, _, err = run_cli("check", produced, "--budget", path, "--baseline", produced)
    assert code == EXIT_USAGE and f"{path}:2:30: relative.size_bytes.max_increase" in err
    path = budget("budgets:\n  size_bytes: {max: 10kB\n", "c.yaml")
    code, _, err = run_cli("check", produced, "--budget", path)
    assert code == EXIT_USAGE and f"{path}:3:1: invalid YAML" in err


def test_alias_bomb_in_a_budget_file_is_refused_at_once(run_cli, produced, budget):
    from test_hostile_yaml import billion_laughs, refused

    path = budget(billion_laughs(10))
    err = refused(run_cli, "check", produced, "--budget", path)
    assert f"{path}:7:" in err and "aliases expand to more than 200,000 values" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--update-baseline",), "--update-baseline needs --baseline"),
        (("--max-increase", "2%"), "--max-increase compares with a baseline"),
        (("--baseline", "{report}", "--max-increase", "lots"), "--max-increase: invalid"),
    ],
)
def test_bad_usage_exits_2(run_cli, produced, args, message):
    args = [str(produced) if a == "{report}" else a for a in args]
    code, _, err = run_cli("check", produced, *args)
    assert code == EXIT_USAGE and message in err


def test_nothing_to_check_is_bad_usage(run_cli, data, save):
    data["recipe"]["spec"]["budgets"] = None
    code, _, err = run_cli("check", save(data))
    assert code == EXIT_USAGE and "nothing to check" in err


def test_relative_limits_need_a_baseline(run_cli, produced, budget):
    rules = budget({"relative": {"size_bytes": {"max_increase": "1%"}}})
    code, _, err = run_cli("check", produced, "--budget", rules)
    assert code == EXIT_USAGE and "relative limits need a baseline" in err


def test_step_summary_and_markdown_file(run_cli, produced, data, save, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    markdown = tmp_path / "comment" / "check.md"
    bigger = save(grown(data, 1.03))
    code, _, _ = run_cli("check", bigger, "--baseline", produced, "--markdown", markdown)
    assert code == EXIT_BUDGET
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, never replaced
    assert "compress check: fail" in text and "| ❌ fail | baseline | size |" in text
    assert markdown.read_text() in text
    assert len(markdown.read_bytes()) < 8_000
    run_cli("check", produced)
    assert text.count("compress check") == 1 and summary.read_text().count("compress check") == 2


def test_no_step_summary_without_the_variable(run_cli, produced, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_cli("check", produced)[0] == 0
    assert list(tmp_path.iterdir()) == []


def test_update_baseline_creates_then_replaces_it(run_cli, produced, data, save, tmp_path):
    baseline = tmp_path / "ci" / "baseline.json"
    code, out, err = run_cli("check", produced, "--baseline", baseline, "--update-baseline")
    assert code == 0, err
    assert "no baseline yet" in out and "updated" in out
    assert baseline.read_text() == produced.read_text()
    smaller = save(grown(data, 0.9), "smaller.json")
    code, out, _ = run_cli("check", smaller, "--baseline", baseline, "--update-baseline", "--json")
    assert code == 0 and json.loads(out)["baseline_updated"] is True
    assert baseline.read_text() == smaller.read_text()
    assert sorted(p.name for p in baseline.parent.iterdir()) == ["baseline.json"]


def test_a_failing_report_never_becomes_the_baseline(run_cli, produced, data, save, tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(produced.read_text())
    bigger = save(grown(data, 1.10), "bigger.json")
    code, out, _ = run_cli("check", bigger, "--baseline", baseline, "--update-baseline")
    assert code == EXIT_BUDGET
    assert "not updated: the check failed" in out
    assert baseline.read_text() == produced.read_text()


def test_update_baseline_is_atomic(run_cli, produced, data, save, tmp_path, monkeypatch):
    """A write that dies midway leaves the old baseline whole and no temporary file."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text(produced.read_text())
    before = baseline.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    code, _, err = run_cli(
        "check", save(grown(data, 0.9), "new.json"), "--baseline", baseline, "--update-baseline"
    )
    assert code == EXIT_USAGE and "cannot write baseline" in err
    assert baseline.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".baseline.json")]


def test_apply_and_check_share_the_budget_code(produced):
    report = compress.Report.read(produced)
    budgets = Budgets(size_bytes={"max": report.compressed.size_bytes})
    assert [b.status for b in evaluate_budgets(report, budgets)] == ["pass"]
    assert [r.status for r in budget_rows(report, budgets, warn_margin=0.05)] == ["warn"]
    # the report written by apply holds exactly what check computes from its recipe
    recipe_budgets = Budgets.model_validate(report.recipe["spec"]["budgets"])
    assert evaluate_budgets(report, recipe_budgets) == report.budgets


def test_compare_table_and_json(run_cli, produced, data, save):
    changed = copy.deepcopy(grown(data, 1.10))
    changed["compressed"]["accuracy"] = data["compressed"]["accuracy"] + 0.02
    changed["layers"][0]["dtype"] = "int8"
    changed["compressed"]["latency_ms"]["p50"] *= 1.02  # timing noise: neither is faster
    other = save(changed, "other.json")
    code, table, err = run_cli("compare", produced, other)
    assert code == 0, err
    out = table
    assert "size (gzip)" in out and "+10.0" in out and "+2.00 pts" in out
    assert "layers that differ" in out and "int8" in out
    code, out, _ = run_cli("compare", produced, other, "--json")
    answer = json.loads(out)
    rows = {row["metric"]: row for row in answer["metrics"]}
    assert rows["size_bytes"]["change"] == pytest.approx(0.10, abs=1e-3)
    assert rows["size_bytes"]["better"] == "a"
    assert rows["accuracy"]["delta"] == pytest.approx(0.02) and rows["accuracy"]["better"] == "b"
    assert rows["params"]["better"] == "same"
    assert rows["latency_p50_ms"]["better"] is None and "≈ (noise)" in table
    assert [layer["name"] for layer in answer["layers"]] == [data["layers"][0]["name"]]
    assert answer["same_layers"] == len(data["layers"]) - 1


def test_markdown_summary_never_overwrites_an_input(run_cli, produced, data, save, budget):
    """`--markdown` pointing at the report, budget file or baseline it reads is exit 2, and the
    file is left as it was."""
    report = save(data)
    limits = budget({"budgets": {"sparsity": {"min": 0.4}}})
    baseline = save(data, "baseline.json")
    for target in (report, limits, baseline):
        before = target.read_bytes()
        args = ("check", report, "--budget", limits, "--baseline", baseline, "--markdown", target)
        code, _, err = run_cli(*args)
        assert code == EXIT_USAGE and "refusing to write the Markdown summary over the" in err
        assert target.read_bytes() == before


def test_a_baseline_of_another_model_is_refused_unless_allowed(run_cli, produced, data, save):
    """Friction: a CNN's report as the baseline of an MLP's passed with "size -97.77%" and no
    warning. The other model here: the real report with its model's params and layers changed
    (as a digits CNN's report would have them)."""
    other = copy.deepcopy(data)
    other["baseline"]["params"] = 38_282
    for layer in other["layers"]:
        layer["name"] = "conv_" + layer["name"]
    baseline = save(other, "cnn.json")
    code, _, err = run_cli("check", produced, "--baseline", baseline)
    assert code == EXIT_USAGE
    assert "is a report of another model (its model has 38,282 params, this report's" in err
    assert "--allow-other-model" in err
    code, out, err = run_cli("check", produced, "--baseline", baseline, "--allow-other-model")
    assert code in (0, 1), err
    assert "warning: the baseline is a report of another model" in out + err
    other["baseline"]["params"] = data["baseline"]["params"]
    code, _, err = run_cli("check", produced, "--baseline", save(other, "renamed.json"))
    assert code == EXIT_USAGE and "its layers differ (conv_" in err


def documented_exit_codes() -> set[int]:
    """The codes of docs/cli.md's exit-code table ("| 130, 143 | ..." rows included)."""
    text = (MODELS.parent / "docs" / "cli.md").read_text()
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = set()
    for line in table.splitlines():
        cell = line.split("|")[1].strip() if line.startswith("| ") else ""
        codes |= {int(code) for code in cell.split(",") if code.strip().isdigit()}
    return codes


def test_every_documented_exit_code_has_a_case(run_cli, produced, tmp_path):
    """One real case per code of docs/cli.md's table, so the table cannot drift."""
    import signal
    import subprocess
    import sys

    seen = {}
    code, _, _ = run_cli("check", produced)
    seen[code] = "a passing check"
    tight = tmp_path / "tight.yaml"
    tight.write_text("budgets:\n  sparsity: {min: 0.99}\n")
    code, _, _ = run_cli("check", produced, "--budget", tight)
    seen[code] = "a failed budget"
    code, _, _ = run_cli("check", produced, "--max-increase", "2%")
    seen[code] = "bad usage"
    code, _, _ = run_cli("check", tmp_path / "missing.json")
    seen[code] = "an unreadable report"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(seed_mlp_recipe()))
    for signum in (signal.SIGINT, signal.SIGTERM):
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("compress")), "validate", str(recipe)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        process.send_signal(signum)
        seen[process.wait(timeout=60)] = signal.Signals(signum).name
    read, write = os.pipe()  # a reader that went away before the first line (`| head`)
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("compress")), "passes"],
        stdout=write,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    os.close(read)
    _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err and b"error" not in err
    seen[process.returncode] = "a closed pipe"
    assert set(seen) == documented_exit_codes() == {0, 1, 2, 3, 130, 141, 143}, seen
    readme = (MODELS.parent / "README.md").read_text().split("Exit codes:", 1)[1]
    summary = readme.split("Errors are", 1)[0]
    assert {int(code) for code in re.findall(r"\b(\d{1,3})\b", summary)} == set(seen)
