"""`compress analyze`: per-layer, per-group and per-node sensitivity, scored on val, checked
against the real pipeline; analysis.json/html; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MODELS
from test_quantize_fallback import outlier_recipe

import compress
from compress.analysis.run import analyze

DIGITS_MODEL = {
    "source": f"{MODELS}/digits_cnn.py:build",
    "weights": f"{MODELS}/digits_cnn.safetensors",
    "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
}
ALL_VAL = 10_000  # more than the digits val split: the scan scores on all of it


def digits_recipe(passes: list[dict], model: dict = DIGITS_MODEL, layout: str = "load") -> dict:
    return {
        "version": 1,
        "name": "digits-analyze",
        "model": model,
        "data": {"source": f"{MODELS}/digits.py:{layout}"},
        "evaluate": {"metric": "accuracy"},
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": None},
    }


@pytest.fixture(scope="module")
def digits_analysis(tmp_path_factory):
    """One analysis of the torch digits CNN: magnitude, channel and static INT8 passes."""
    folder = tmp_path_factory.mktemp("analysis")
    passes = [
        {"type": "prune", "sparsity": 0.8},
        {"type": "prune", "method": "channel", "sparsity": 0.5},
        {"type": "quantize", "mode": "static", "placement": "all"},
    ]
    result = analyze(
        digits_recipe(passes), folder, progress=False, samples=ALL_VAL, levels=(0.5, 0.9),
        base_dir=folder,
    )  # fmt: skip
    return result, folder


def drop_of(recipe: dict, tmp_path: Path) -> float:
    report = compress.apply(recipe, output_dir=tmp_path, progress=False, base_dir=tmp_path)
    return report.baseline.accuracy - report.compressed.accuracy


def test_the_analysis_covers_every_pass_and_is_written(digits_analysis):
    result, folder = digits_analysis
    data = json.loads((folder / "analysis.json").read_text())
    assert data["schema_version"] == 1 and data["metric"] == "accuracy"
    assert data["samples"] == 359 and data["baseline_score"] == pytest.approx(0.9777, abs=1e-3)
    weights, channels, nodes = result.passes
    assert (weights.kind, channels.kind, nodes.kind) == ("weights", "channels", "nodes")
    assert {row.name for row in weights.layers} == {"conv1", "conv2", "fc1", "fc2"}
    assert all([p.level for p in row.points] == [0.5, 0.9] for row in weights.layers)
    assert {row.name for row in channels.layers} == {"conv1", "conv2", "fc1"}  # fc2: the output
    assert {node.op for node in nodes.nodes} >= {"Conv", "Gemm"}
    # most sensitive first: fc1 holds 86% of the weights and loses least at 90%
    assert weights.layers[-1].name == "fc1"
    assert weights.layers[0].worst >= weights.layers[-1].worst
    html = (folder / "analysis.html").read_text()
    assert html.count('<img src="data:image/svg+xml;base64,') == 3
    assert "Pass 3: quantize (static)" in html and "http" not in html.split("<body>")[1]


def test_a_layer_drop_is_what_the_pipeline_measures(digits_analysis, tmp_path):
    """The scan zeroes the exported weights; `compress apply` prunes the framework model: the
    same masks, so the same accuracy on the same val split."""
    result, _ = digits_analysis
    scanned = {row.name: row for row in result.passes[0].layers}["conv2"].points[-1]
    levels = {"default": 0.0, "overrides": {"conv2": scanned.level}}
    recipe = digits_recipe([{"type": "prune", "sparsity": levels}])
    assert drop_of(recipe, tmp_path) == pytest.approx(scanned.drop, abs=1e-6)


def test_a_group_drop_is_what_the_pipeline_measures(digits_analysis, tmp_path):
    result, _ = digits_analysis
    scanned = {row.name: row for row in result.passes[1].layers}["conv2"].points[0]
    levels = {"default": 0.0, "overrides": {"conv2": scanned.level}}
    recipe = digits_recipe([{"type": "prune", "method": "channel", "sparsity": levels}])
    assert drop_of(recipe, tmp_path) == pytest.approx(scanned.drop, abs=1e-6)


def test_the_node_ranking_is_the_fallback_order(write_recipe, tmp_path):
    """One ranking for the accuracy-aware fallback and the analysis: the node the analysis
    puts first is the one the fallback reverts first."""
    report = compress.apply(write_recipe(outlier_recipe(max_accuracy_drop=0.02)), progress=False)
    result = analyze(write_recipe(outlier_recipe()), tmp_path / "a", progress=False)
    nodes = result.passes[0].nodes
    assert nodes[0].name == report.passes[0]["reverted_nodes"][0]
    assert [n.gain for n in nodes] == sorted((n.gain for n in nodes), reverse=True)
    assert nodes[0].reverted_drop < result.passes[0].full_drop
    assert nodes[0].alone_drop > 0.02  # the outlier layer alone already costs accuracy


KERAS_DIGITS = {
    "source": f"{MODELS}/keras_digits_cnn.py:build",
    "weights": f"{MODELS}/keras_digits_cnn.weights.h5",
    "inputs": [{"name": "input", "shape": ["batch", 8, 8, 1]}],
}


def test_keras_layers_are_found_in_the_export(tmp_path):
    recipe = digits_recipe([{"type": "prune", "sparsity": 0.8}], KERAS_DIGITS, "load_nhwc")
    result = analyze(recipe, tmp_path, progress=False, levels=(0.9,), base_dir=tmp_path)
    (scan,) = result.passes
    assert result.framework == "keras" and not scan.notes
    assert {row.name for row in scan.layers} == {"conv1", "conv2", "fc1", "fc2"}


def test_keras_channel_groups_are_scanned(tmp_path):
    passes = [{"type": "prune", "method": "channel", "sparsity": 0.5}]
    recipe = digits_recipe(passes, KERAS_DIGITS, "load_nhwc")
    result = analyze(recipe, tmp_path, progress=False, levels=(0.5,), base_dir=tmp_path)
    (scan,) = result.passes
    assert {row.name for row in scan.layers} == {"conv1", "conv2", "fc1"}
    assert all(len(row.points) == 1 for row in scan.layers)


def test_the_cli_prints_the_ranking_and_writes_json(write_recipe, run_cli, tmp_path):
    recipe = write_recipe(digits_recipe([{"type": "prune", "sparsity": 0.5}]))
    code, out, err = run_cli("analyze", recipe, "-o", tmp_path / "a", "--levels", "0.5,0.9")
    assert code == 0, err
    assert "pass 1: prune magnitude" in out and "fc1" in out and "90%" in out
    code, out, _ = run_cli("analyze", recipe, "-o", tmp_path / "b", "--json", "--levels", "0.9")
    assert code == 0 and json.loads(out)["passes"][0]["levels"] == [0.9]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": None, "evaluate": None}, "add a data section"),
        ({"passes": []}, None),
    ],
)
def test_recipes_that_cannot_be_scored_are_refused(change, message, write_recipe, run_cli):
    raw = {**digits_recipe([{"type": "prune", "sparsity": 0.5}]), **change}
    raw = {key: value for key, value in raw.items() if value is not None}
    code, out, err = run_cli("analyze", write_recipe(raw), "--levels", "0.9")
    if message is None:  # nothing to scan is not an error: an empty analysis
        assert code == 0 and "analysis:" in out
        return
    assert code == 2 and "compress analyze scores on the 'val' split" in err
    assert "recipe.yaml:" in err and "Traceback" not in err


def test_bad_levels_are_a_usage_error(write_recipe, run_cli):
    recipe = write_recipe(digits_recipe([{"type": "prune", "sparsity": 0.5}]))
    code, _, err = run_cli("analyze", recipe, "--levels", "0.5,1.5")
    assert code == 2 and "give levels in (0, 1)" in err


@pytest.mark.e2e
def test_the_minilm_recipe_analyzes_on_small_inputs(tmp_path):
    """recipes/minilm_sensitivity.yaml (real MiniLM weights) on a few 32-token sentences, the
    first layer's six MatMuls scanned and ranked (all 36: benchmarks/sensitivity.py)."""
    import yaml
    from conftest import RECIPES

    raw = yaml.safe_load((RECIPES / "minilm_sensitivity.yaml").read_text())
    raw["model"]["source"] = f"{MODELS}/minilm.py:build"
    raw["data"]["source"] = f"{MODELS}/minilm.py:docstrings_small"
    raw["export"]["path"] = str(tmp_path / "model.onnx")
    raw["passes"][0]["ignore"] = ["re:.*layer\\.[1-5]\\..*"]
    result = analyze(raw, tmp_path / "analysis", progress=False, base_dir=tmp_path)
    (scan,) = result.passes
    assert len(scan.nodes) == 6 and result.samples == 16
    assert all(node.op == "MatMul" for node in scan.nodes)
    assert scan.nodes[0].gain >= scan.nodes[-1].gain


def seed_recipe(model: dict, passes: list[dict], tmp_path: Path) -> dict:
    from conftest import seed_mlp_recipe

    raw = seed_mlp_recipe(passes=passes, model=model, measure={"latency": None})
    raw["export"] = {"path": str(tmp_path / "model.onnx")}
    return raw


def test_tf_keras_models_are_scanned(tmp_path):
    model = {
        "source": f"{MODELS.parent}/tests/builders.py:tf_keras_mlp",
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    raw = seed_recipe(model, [{"type": "prune", "sparsity": 0.5}], tmp_path)
    result = analyze(raw, tmp_path / "a", progress=False, levels=(0.5, 0.9), base_dir=tmp_path)
    assert result.framework == "tf_keras"
    assert {row.name for row in result.passes[0].layers} == {"hidden", "out"}


def test_an_onnx_model_gets_its_quantize_pass_scanned(tmp_path):
    model = {
        "source": f"{MODELS}/seed_mlp.py:build",
        "weights": f"{MODELS}/seed_mlp.safetensors",
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    exported = compress.apply(seed_recipe(model, [], tmp_path), progress=False)
    onnx_model = {"source": exported.artifacts.baseline_onnx, "inputs": model["inputs"]}
    raw = seed_recipe(onnx_model, [{"type": "quantize", "mode": "dynamic"}], tmp_path / "onnx")
    result = analyze(raw, tmp_path / "a", progress=False, base_dir=tmp_path)
    (scan,) = result.passes
    assert result.framework == "onnx" and scan.kind == "nodes" and len(scan.nodes) == 2
    assert scan.full_drop is not None


def test_the_default_output_is_beside_the_export(write_recipe, tmp_path):
    recipe = write_recipe(digits_recipe([{"type": "prune", "sparsity": 0.5}]))
    result = analyze(recipe, progress=False, levels=(0.9,))
    assert Path(result.directory) == tmp_path / "out" / "analysis"
    assert (tmp_path / "out" / "analysis" / "analysis.html").is_file()
