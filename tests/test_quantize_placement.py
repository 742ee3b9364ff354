"""Speed-aware INT8 placement and the exporter choice: what was searched, kept in float, and
exported is recorded, and the files agree with the record."""

from __future__ import annotations

from pathlib import Path

import onnx

import compress
from compress.backends.onnx.placement import node_groups

BUILDERS = Path(__file__).parent / "builders.py"


def block_recipe(passes: list[dict], **export) -> dict:
    return {
        "version": 1,
        "name": "depthwise-block",
        "model": {
            "source": f"{BUILDERS}:torch_depthwise_block",
            "inputs": [{"name": "x", "shape": ["batch", 3, 16, 16]}],
        },
        "data": {"source": f"{BUILDERS}:images_3x16", "batch_size": 16},
        "passes": passes,
        "export": export,
        "measure": {"latency": {"runs": 10, "warmup": 2}},
    }


def reads_dequantized(path: str) -> set[str]:
    """Nodes that take an input from a DequantizeLinear (run in INT8 once fused)."""
    graph = onnx.load(path).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.name for n in graph.node if set(n.input) & dequantized and "Linear" not in n.op_type}


def test_groups_split_depthwise_convolutions_and_skip_pass_through_ops(tmp_path, write_recipe):
    raw = block_recipe([{"type": "quantize", "mode": "static"}])
    report = compress.apply(write_recipe(raw), progress=False)
    model = onnx.load(report.artifacts.baseline_onnx)
    names = [node.name for node in model.graph.node]
    groups = node_groups(model, names)
    modules = {group: sorted(n.split(".")[0] for n in nodes) for group, nodes in groups.items()}
    assert modules["Conv (depthwise)"] == ["depthwise"]
    assert modules["Conv"] == ["pointwise", "stem"]
    assert "Add" in groups and "Relu" not in groups


def test_speed_placement_records_its_search_and_the_file_follows_it(write_recipe):
    raw = block_recipe([{"type": "quantize", "mode": "static"}])
    report = compress.apply(write_recipe(raw), progress=False)
    record = report.passes[0]
    assert 1 <= record["placement_trials"] <= 16
    int8 = reads_dequantized(report.artifacts.onnx)
    model = onnx.load(report.artifacts.baseline_onnx)
    groups = node_groups(model, [node.name for node in model.graph.node])
    for kept in record["kept_float_for_speed"]:
        assert kept["speedup"] >= 1.04 and kept["nodes"] == len(groups[kept["group"]])
        assert not set(groups[kept["group"]]) & int8  # kept in float in the file
    quantizable = ("Conv", "Conv (depthwise)", "Gemm", "Add")
    searched = {n for group in quantizable for n in groups.get(group, [])}
    kept_names = {n for kept in record["kept_float_for_speed"] for n in groups[kept["group"]]}
    assert searched - kept_names <= int8  # everything else is INT8


def test_placement_all_quantizes_every_group(write_recipe):
    raw = block_recipe([{"type": "quantize", "mode": "static", "placement": "all"}])
    report = compress.apply(write_recipe(raw), progress=False)
    record = report.passes[0]
    assert "placement_trials" not in record and "kept_float_for_speed" not in record
    int8_modules = {name.split(".")[0] for name in reads_dequantized(report.artifacts.onnx)}
    assert {"stem", "depthwise", "pointwise", "head"} <= int8_modules


def test_torchscript_exporter_names_layers_like_dynamo(write_recipe):
    raw = block_recipe([{"type": "quantize", "mode": "dynamic"}], exporter="torchscript")
    report = compress.apply(write_recipe(raw), progress=False)
    assert report.baseline.export.exporter == report.compressed.export.exporter == "torchscript"
    names = {layer.name for layer in report.layers}
    assert names == {"stem", "depthwise", "pointwise", "head"}


def test_auto_exporter_uses_one_exporter_for_both_models(write_recipe):
    raw = block_recipe([{"type": "quantize", "mode": "dynamic"}])
    report = compress.apply(write_recipe(raw), progress=False)
    exporter = report.baseline.export.exporter
    assert exporter in ("dynamo", "torchscript") and report.compressed.export.exporter == exporter
    chose_torchscript = any("TorchScript exporter's graph ran" in note for note in report.notes)
    assert chose_torchscript == (exporter == "torchscript")
