"""Accuracy-aware quantization: `max_accuracy_drop` reverts the nodes that hurt most to float,
records what it did, and fails with the figures when the limit cannot be met."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from builders import outlier_data

import compress
from compress.backends.onnx.fallback import Scorer, revert_until_within
from compress.backends.onnx.quantize import Quantizer
from compress.errors import ModelError
from compress.passes.quantize import DynamicQuantize

BUILDERS = Path(__file__).parent / "builders.py"


def outlier_recipe(**quantize) -> dict:
    return {
        "version": 1,
        "name": "outlier-fallback",
        "model": {
            "source": f"{BUILDERS}:torch_outlier_mlp",
            "inputs": [{"name": "x", "shape": ["batch", 16]}],
        },
        "data": {"source": f"{BUILDERS}:outlier_data", "batch_size": 32},
        "evaluate": {"metric": "accuracy"},
        "passes": [{"type": "quantize", "mode": "dynamic", "per_channel": False, **quantize}],
        "measure": {"latency": {"runs": 5, "warmup": 1}},
    }


def float_matmuls(path: str) -> set[str]:
    return {n.name for n in onnx.load(path).graph.node if n.op_type in ("Gemm", "MatMul")}


def test_without_a_limit_nothing_is_reverted_and_accuracy_drops(write_recipe):
    report = compress.apply(write_recipe(outlier_recipe()), progress=False)
    assert report.passes[0]["reverted_nodes"] == []
    assert report.baseline.accuracy - report.compressed.accuracy > 0.05


def test_fallback_reverts_the_harmful_layer_until_the_limit_holds(write_recipe):
    report = compress.apply(write_recipe(outlier_recipe(max_accuracy_drop=0.02)), progress=False)
    record = report.passes[0]
    assert record["accuracy_drop_before"] > 0.02 >= record["accuracy_drop_after"]
    # the outlier layer (the Sequential's index 2) is reverted first; the others stay INT8
    assert record["reverted_nodes"][0].startswith("2.")
    assert len(record["reverted_nodes"]) < 3
    # a float MatMul of that layer (onnxruntime splits Gemm into "<node>_MatMul" + Add)
    assert any(
        n.startswith(record["reverted_nodes"][0]) for n in float_matmuls(report.artifacts.onnx)
    )
    assert set(record["fallback_latency_ms"]) == {"before", "after"}
    assert report.baseline.accuracy - report.compressed.accuracy <= 0.02
    dtypes = {layer.name: layer.dtype for layer in report.layers}
    assert dtypes["2"] == "float32" and "int8" in dtypes.values()
    html = Path(report.artifacts.report_html).read_text()
    assert "reverted nodes" in html and record["reverted_nodes"][0] in html


def test_fallback_without_labels_uses_fidelity(write_recipe):
    raw = outlier_recipe(max_accuracy_drop=0.01)
    del raw["evaluate"]
    report = compress.apply(write_recipe(raw), progress=False)
    record = report.passes[0]
    assert record["reverted_nodes"] and record["accuracy_drop_after"] <= 0.01
    assert report.fidelity.value >= 0.99


def test_a_limit_nothing_meets_is_a_model_error_with_the_figures(write_recipe, tmp_path):
    """With every node reverted the model is float again, so a recipe's limit (>= 0) is always
    met in the end; a limit below zero shows the error path (exit code 3) on real files."""
    report = compress.apply(write_recipe(outlier_recipe()), progress=False)
    baseline = Path(report.artifacts.baseline_onnx)
    config = DynamicQuantize(mode="dynamic", per_channel=False)
    quantizer = Quantizer.prepare(baseline, tmp_path, config, None, 1)
    quantizer.write(tmp_path / "int8.onnx")
    x, y = outlier_data()["val"]
    scorer = Scorer([x], y, "accuracy", tmp_path, 64).bind(baseline)
    with pytest.raises(ModelError) as error:
        revert_until_within(quantizer, tmp_path / "int8.onnx", set(), scorer, limit=-1.0)
    message = str(error.value)
    assert "not met even with all 3 quantized nodes reverted" in message
    assert "measured in the accuracy metric on val" in message
    assert error.value.exit_code == 3


def test_qat_rejects_max_accuracy_drop(write_recipe, run_cli):
    raw = outlier_recipe(max_accuracy_drop=0.01)
    raw["passes"][0] = {"type": "quantize", "mode": "qat", "max_accuracy_drop": 0.01}
    code, _, err = run_cli("validate", str(write_recipe(raw)))
    assert code == 2 and "max_accuracy_drop applies to post-training modes" in err
