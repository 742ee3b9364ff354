"""`compress tune`: real trials of the pipeline, a tuned.yaml that `compress apply` reproduces,
the trial log, the search's directions, Ctrl-C, and clear refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import MODELS, RECIPES
from test_quantize_fallback import outlier_recipe

import compress
from compress.recipe import load_recipe
from compress.tuning.search import tune

TUNE_RECIPE = RECIPES / "digits_tune.yaml"


def digits_tune(tmp_path: Path, **changes) -> Path:
    """recipes/digits_tune.yaml with sections replaced, written beside the models."""
    data = yaml.safe_load(TUNE_RECIPE.read_text())
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    for section, key in (("model", "source"), ("model", "weights"), ("data", "source")):
        if section in data:
            data[section][key] = str((RECIPES / data[section][key]).resolve())
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.e2e
def test_tune_finds_a_passing_level_and_tuned_yaml_reproduces_it(run_cli, tmp_path):
    out = tmp_path / "tune"
    code, stdout, err = run_cli("tune", digits_tune(tmp_path), "--trials", "3", "-o", out)
    assert code == 0, err
    log = json.loads((out / "tuning.json").read_text())
    assert log["schema_version"] == 1 and 1 <= len(log["trials"]) <= 3
    best = log["trials"][log["best"] - 1]
    assert best["status"] == "pass" and best["figures"]["accuracy_drop"] <= 0.01
    assert all(t["achieved"] <= best["achieved"] for t in log["trials"] if t["status"] == "pass")
    assert best["why"] != "" and (out / "trials" / "01" / "report.json").is_file()
    assert "best: trial" in stdout and (out / "tuning.html").read_text().count("<tr>") >= 2
    tuned = load_recipe(out / "tuned.yaml")  # a plain, valid recipe
    assert tuned.passes[0].allocation == "uniform" and tuned.passes[0].per_layer
    report = compress.apply(out / "tuned.yaml", progress=False)
    assert Path(report.artifacts.onnx).parent == out / "tuned"
    assert report.compressed.accuracy == best["figures"]["accuracy"]
    assert report.compressed.size_gzip_bytes == best["figures"]["size_gzip_bytes"]
    assert report.passes[0]["achieved_sparsity"] == best["achieved"]


@pytest.mark.e2e
def test_a_compression_budget_alone_pushes_the_level_up(tmp_path):
    """No accuracy budget: the first guess is the recipe's level; a gzip budget it misses is
    'not far enough', so the next trial goes higher."""
    path = digits_tune(tmp_path, budgets={"size_gzip_bytes": {"max": "80kB"}})
    raw = yaml.safe_load(path.read_text())
    raw["passes"][0]["sparsity"] = 0.2
    path.write_text(yaml.safe_dump(raw))
    result = tune(path, trials=2, output_dir=tmp_path / "t", progress=False)
    first, second = result.trials
    assert first.level == 0.2 and first.status == "fail" and not first.too_far
    assert second.level > first.level and second.status == "pass"
    assert result.best == 2


@pytest.mark.e2e
def test_no_passing_trial_is_exit_1_without_tuned_yaml(run_cli, tmp_path):
    path = digits_tune(tmp_path, budgets={"accuracy": {"min": 0.999}})
    code, _, err = run_cli("tune", path, "--trials", "1", "-o", tmp_path / "t")
    assert code == 1 and "no trial met every budget" in err
    assert not (tmp_path / "t" / "tuned.yaml").exists()
    trials = json.loads((tmp_path / "t" / "tuning.json").read_text())["trials"]
    assert trials and all(t["status"] == "fail" and t["too_far"] for t in trials)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budgets": None}, "compress tune meets the recipe's budgets"),
        ({"passes": [{"type": "quantize", "mode": "dynamic"}]}, "has neither"),
        (
            {
                "data": {"source": "VAL_LESS"},
                "train": None,
                "passes": [{"type": "prune", "sparsity": 0.5}],
            },
            "returned none",
        ),
    ],
)
def test_recipes_tune_cannot_run_are_refused(changes, message, run_cli, tmp_path):
    if changes.get("data"):
        source = tmp_path / "train_only.py"
        source.write_text(
            f"import sys\nsys.path.insert(0, {str(MODELS)!r})\nfrom digits import load\n\n\n"
            "def load_train():\n    return {'train': load()['train']}\n"
        )
        changes = {**changes, "data": {"source": f"{source}:load_train"}}
    path = digits_tune(tmp_path, **changes)
    if changes.get("data"):  # digits_tune made the source absolute against recipes/: undo
        raw = yaml.safe_load(path.read_text())
        raw["data"]["source"] = changes["data"]["source"]
        path.write_text(yaml.safe_dump(raw))
    code, _, err = run_cli("tune", path, "-o", tmp_path / "t")
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.e2e
def test_channel_pruning_is_tuned_too(tmp_path):
    passes = [{"type": "prune", "method": "channel", "sparsity": 0.3, "fine_tune": True}]
    path = digits_tune(tmp_path, passes=passes, budgets={"accuracy_drop": {"max": 0.02}})
    result = tune(path, trials=1, output_dir=tmp_path / "t", progress=False)
    assert result.method == "channel" and len(result.trials) == 1
    assert {"conv1", "conv2", "fc1"} <= set(result.trials[0].levels)
    assert all(t.figures["macs"] for t in result.trials if t.status != "error")


@pytest.mark.e2e
def test_ctrl_c_keeps_the_best_trial_so_far(tmp_path):
    out = tmp_path / "t"
    command = [sys.executable, "-m", "compress", "tune", str(digits_tune(tmp_path)), "-o", str(out)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "CI": "true"}
    )
    deadline = time.monotonic() + 300
    while not (out / "trials" / "02").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)  # trial 1 is done once trial 2's folder appears
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    log = json.loads((out / "tuning.json").read_text())
    assert log["interrupted"] and log["best"] == 1
    assert load_recipe(out / "tuned.yaml").passes[0].per_layer


@pytest.mark.e2e
def test_quantized_nodes_that_hurt_are_kept_float_to_pass(tmp_path):
    """A layer with outlier inputs loses accuracy in dynamic INT8 whatever the prune level: the
    search keeps the node the fallback's ranking puts first in float, and goes on from there."""
    raw = outlier_recipe()
    raw["passes"] = [{"type": "prune", "sparsity": 0.5}, *raw["passes"]]
    raw["budgets"] = {"accuracy_drop": {"max": 0.02}}
    raw["export"] = {"path": str(tmp_path / "model.onnx")}
    result = tune(raw, trials=4, output_dir=tmp_path / "t", progress=False, base_dir=tmp_path)
    best = result.best_trial
    assert best is not None and best.keep_float and best.keep_float[0].startswith("2.")
    assert all(t.status == "fail" for t in result.trials if not t.keep_float)
    tuned = load_recipe(tmp_path / "t" / "tuned.yaml")
    assert tuned.passes[1].ignore == best.keep_float


def test_tuned_yaml_never_replaces_the_recipe(run_cli, tmp_path):
    path = digits_tune(tmp_path)
    tuned = path.with_name("tuned.yaml")
    path.rename(tuned)
    before = tuned.read_text()
    code, _, err = run_cli("tune", tuned, "-o", tmp_path)
    assert code == 2 and "compress tune writes tuned.yaml there, over the input file" in err
    assert tuned.read_text() == before and not (tmp_path / "tuning.json").exists()


def test_trial_folders_never_replace_an_input(run_cli, tmp_path):
    """A recipe kept where a trial would write (trials/01/recipe.yaml of the -o folder) is an
    input: exit 2 before any trial runs, the file untouched."""
    path = digits_tune(tmp_path)
    inside = tmp_path / "trials" / "01" / "recipe.yaml"
    inside.parent.mkdir(parents=True)
    path.rename(inside)
    before = inside.read_text()
    code, _, err = run_cli("tune", inside, "-o", tmp_path)
    assert code == 2 and "compress tune writes trials/ there, over the input file" in err
    assert inside.read_text() == before


def pydoc_width_recipe(tmp_path: Path) -> Path:
    """The trained LM of models/ at 4 bits, its text split written beside the recipe (the trial
    recipes read it through relative paths), budget +0.9% perplexity."""
    from test_llm import pydoc_lm_documents

    documents = pydoc_lm_documents()
    (tmp_path / "train.txt").write_text("\n\n".join(documents["train"])[:100_000])
    (tmp_path / "val.txt").write_text("\n\n".join(documents["val"])[:30_000])
    recipe = {
        "version": 1,
        "name": "pydoc-widths",
        "model": {"source": str(MODELS / "pydoc_lm")},
        "data": {"text": {"train": "train.txt", "val": "val.txt"}, "seq_len": 64},
        "evaluate": {"metric": "perplexity"},
        "passes": [{"type": "quantize", "mode": "weight_only", "weights": "int4"}],
        "budgets": {"perplexity_increase": {"max": 0.009}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.mark.e2e
def test_width_search_orders_blocks_by_file_size_and_widens_the_best_buy_nodes(run_cli, tmp_path):
    """hidden 192 pads to 256 at block 128, so block 64 is tried first; neither algorithm
    passes at a block size alone, so the search puts the best-buy node(s) at 8 bits."""
    out = tmp_path / "tune"
    code, stdout, err = run_cli(
        "tune", pydoc_width_recipe(tmp_path), "--trials", "4", "--algorithms", "rtn,hqq",
        "--block-sizes", "32,64", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    log = json.loads((out / "tuning.json").read_text())
    assert log["search"] == "widths"
    asked = [(t["widths"]["algorithm"], t["widths"]["block_size"]) for t in log["trials"]]
    assert asked[:3] == [("rtn", 64), ("hqq", 64), ("hqq", 32)]  # hqq lost least at block 64
    rises = [t["figures"]["perplexity_increase"] for t in log["trials"]]
    assert rises[1] < rises[0] and [t["status"] for t in log["trials"][:3]] == ["fail"] * 3
    best = log["trials"][log["best"] - 1]
    assert best["status"] == "pass" and best["widths"]["int8_nodes"]
    assert best["figures"]["perplexity_increase"] <= 0.009
    assert best["figures"]["size_bytes"] < log["trials"][2]["figures"]["size_bytes"]
    report = json.loads((Path(best["recipe"]).parent / "report.json").read_text())
    assert report["compressed"]["size_bytes"] == best["figures"]["size_bytes"]
    tuned = yaml.safe_load((out / "tuned.yaml").read_text())["passes"][0]
    trial = yaml.safe_load(Path(best["recipe"]).read_text())["passes"][0]
    assert tuned == trial and tuned["algorithm"] == "hqq" and tuned["block_size"] == 64
    assert tuned["int8_nodes"] == best["widths"]["int8_nodes"] and "symmetric" not in tuned
    text = load_recipe(out / "tuned.yaml").data.text  # relative to tuned.yaml's folder
    assert (out / text.train).resolve() == (tmp_path / "train.txt").resolve()
    assert "8-bit nodes" in stdout and "best: trial" in stdout


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--algorithms", "rtn,nope"), "no weight-only algorithm 'nope'"),
        (("--block-sizes", "48"), "48 is not a power of two of at least 16"),
        (("--block-sizes", "64,x"), "is not a list of whole numbers"),
        (("--algorithms", "gptq"), "algorithm gptq calibrates on data: add a data section"),
    ],
)
def test_width_search_flags_are_checked_before_any_trial(flags, said, run_cli, tmp_path):
    path = pydoc_width_recipe(tmp_path)
    if "gptq" in flags:
        raw = yaml.safe_load(path.read_text())
        del raw["data"], raw["evaluate"], raw["budgets"]["perplexity_increase"]
        raw["budgets"] = {"size_bytes": {"max": "2MB"}}
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, _, err = run_cli("tune", path, *flags, "-o", tmp_path / "t")
    assert code == 2 and said in err and "Traceback" not in err
    assert not (tmp_path / "t" / "trials").exists()
    if "gptq" in flags:
        assert "recipe.yaml:" in err  # at the pass's line
