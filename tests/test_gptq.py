"""Weight-only algorithms on real ONNX graphs run in onnxruntime: the MatMulNBits writer (bit-
equal to onnxruntime's own quantizer for round to nearest), GPTQ (calibrated, sequential),
HQQ (integer zero points, so the fast kernels run it), blocks found again by value for the
generation decoder (fused q/k/v), and mixed precision from max_accuracy_drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress.backends.onnx.blocks import GridMemo, matmul_nbits, rtn_grid
from compress.backends.onnx.fallback import Scorer, revert_until_within
from compress.backends.onnx.grids import prepare_grids
from compress.backends.onnx.hqq import hqq_grid
from compress.backends.onnx.quantize import Quantizer, matmul_form
from compress.backends.onnx.sequential import SequentialRunner
from compress.backends.onnx.weight_only import quantize_blocks
from compress.passes.quantize import GPTQQuantize, HQQQuantize, WeightOnlyQuantize

WIDTH = 96


def _mlp(seed: int = 0, layers: int = 3) -> onnx.ModelProto:
    """x -> (MatMul -> Relu) x layers: weights with a few large rows, as trained layers have."""
    rng = np.random.default_rng(seed)
    nodes, initializers, current = [], [], "x"
    for index in range(layers):
        weight = rng.normal(0, 0.1, (WIDTH, WIDTH)).astype(np.float32)
        weight[rng.random(WIDTH) < 0.05] *= 8
        initializers.append(numpy_helper.from_array(weight, f"w{index}"))
        nodes.append(
            helper.make_node("MatMul", [current, f"w{index}"], [f"m{index}"], f"mm{index}")
        )
        last = index == layers - 1
        out = "y" if last else f"h{index}"
        nodes.append(helper.make_node("Identity" if last else "Relu", [f"m{index}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, WIDTH])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _inputs(count: int, seed: int = 1) -> np.ndarray:
    """Samples of one distribution of correlated inputs with a few loud features (what makes
    GPTQ pay off); `seed` draws the samples."""
    shape = np.random.default_rng(0)
    mixing = np.eye(WIDTH) + shape.normal(0, 0.2, (WIDTH, WIDTH))
    loud = 1 + 4 * (shape.random(WIDTH) < 0.1)
    samples = np.random.default_rng(seed).normal(size=(count, WIDTH))
    return (samples @ mixing * loud).astype(np.float32)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _quantized(config: WeightOnlyQuantize, calibration: np.ndarray | None) -> onnx.ModelProto:
    model, excluded = matmul_form(_mlp(), [])
    grids = prepare_grids(model, config, None if calibration is None else [calibration], 64, [])
    quantize_blocks(model, config, excluded, grids.choose)
    return model


def _dequantized(model: onnx.ModelProto, weight: str) -> np.ndarray:
    """The float weight a MatMulNBits of `model` stands for (the input x = identity)."""
    node = next(n for n in model.graph.node if n.op_type == "MatMulNBits" and weight in n.input[1])
    single = helper.make_model(
        helper.make_graph(
            [helper.make_node(**{**_fields(node), "inputs": ["x", *node.input[1:]]})],
            "one",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, WIDTH])],
            [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
            [t for t in model.graph.initializer if t.name in node.input],
        ),
        opset_imports=list(model.opset_import),
    )
    session = ort.InferenceSession(single.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.eye(WIDTH, dtype=np.float32)})[0]


def _fields(node: onnx.NodeProto) -> dict:
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {
        "op_type": node.op_type,
        "outputs": list(node.output),
        "domain": node.domain,
        **attributes,
    }


def _error(model: onnx.ModelProto, x: np.ndarray) -> float:
    reference = _run(_mlp(), x)
    return float(np.mean((_run(model, x) - reference) ** 2) / np.mean(reference**2))


@pytest.mark.parametrize(("bits", "symmetric"), [(4, True), (4, False), (8, True), (8, False)])
def test_round_to_nearest_writes_what_onnxruntimes_quantizer_writes(bits, symmetric):
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        DefaultWeightOnlyQuantizer,
    )

    theirs = _mlp(layers=1)
    quantizer = DefaultWeightOnlyQuantizer(
        DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=symmetric, bits=bits)
    )
    nodes = quantizer.quantize_matmul(theirs.graph.node[0], [theirs.graph])
    ours = _mlp(layers=1)
    weight = numpy_helper.to_array(ours.graph.initializer[0])
    node = matmul_nbits(ours.graph, ours.graph.node[0], rtn_grid(weight, bits, 32, symmetric), "w0")
    arrays = [
        {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name in n.input}
        for model, n in ((theirs, nodes[0]), (ours, node))
    ]
    assert arrays[0].keys() == arrays[1].keys()
    for name, array in arrays[0].items():
        assert arrays[1][name].shape == array.shape and arrays[1][name].dtype == array.dtype
        if name.endswith("_scales") or name.endswith("_zero_points"):
            np.testing.assert_array_equal(arrays[1][name], array, err_msg=name)
        else:  # codes: a value on a rounding tie may land on the other side (1 in 10^4)
            differ = arrays[1][name] != array
            assert differ.mean() < 1e-3, name


def test_gptq_keeps_the_outputs_far_closer_than_round_to_nearest():
    calibration, held_out = _inputs(512), _inputs(256, seed=7)
    rtn = _error(_quantized(WeightOnlyQuantize(mode="weight_only"), None), held_out)
    gptq_config = GPTQQuantize(mode="weight_only", algorithm="gptq")
    gptq = _error(_quantized(gptq_config, calibration), held_out)
    assert gptq < 0.5 * rtn, (gptq, rtn)
    plain = GPTQQuantize(mode="weight_only", algorithm="gptq", act_order=False, block_size=64)
    assert _error(_quantized(plain, calibration), held_out) < rtn


def test_gptq_calibrates_each_layer_on_what_the_quantized_layers_before_it_produce():
    """Sequential: the runner computes a later tensor with the weights as changed so far, and
    runs every node once."""
    model = _mlp()
    x = _inputs(64)
    runner = SequentialRunner(model, [{"x": x[:32]}, {"x": x[32:]}])
    first = np.concatenate(runner.tensor("h0"))
    np.testing.assert_allclose(
        first,
        np.maximum(x @ numpy_helper.to_array(model.graph.initializer[0]), 0),
        rtol=1e-5,
        atol=1e-5,
    )
    runner.set_weight("w1", np.zeros((WIDTH, WIDTH), np.float32))
    assert not np.concatenate(runner.tensor("h1")).any()  # computed with the changed w1
    assert runner.done == {0, 1, 2, 3} and "h0" not in runner.values  # h0: nothing reads it now


def test_hqq_has_integer_zero_points_and_closer_weights_than_round_to_nearest():
    hqq = _quantized(HQQQuantize(mode="weight_only", algorithm="hqq"), None)
    asymmetric = _quantized(WeightOnlyQuantize(mode="weight_only", symmetric=False), None)
    zero_points = [
        t for t in hqq.graph.initializer if t.name.endswith("_zero_points")
    ]  # the fast kernels read uint8 zero points; float ones fall off them
    assert len(zero_points) == 3 and {t.data_type for t in zero_points} == {TensorProto.UINT8}
    weights = [numpy_helper.to_array(t) for t in _mlp().graph.initializer]
    for name, weight in zip(("w0", "w1", "w2"), weights, strict=True):
        errors = [np.mean((_dequantized(model, name) - weight) ** 2) for model in (hqq, asymmetric)]
        assert errors[0] < errors[1], (name, errors)
    with pytest.raises(ValueError, match="symmetric"):
        HQQQuantize(mode="weight_only", algorithm="hqq", symmetric=True)


def test_a_fused_weight_gets_the_blocks_chosen_for_its_parts():
    """The generation decoder holds q, k and v side by side in one MatMul."""
    rng = np.random.default_rng(3)
    q, k = (
        rng.normal(size=(64, 32)).astype(np.float32),
        rng.normal(size=(64, 16)).astype(np.float32),
    )
    memo = GridMemo.empty()
    grids = [hqq_grid(q, 4, 32, 5), hqq_grid(k, 4, 32, 5)]
    memo.remember(q, grids[0])
    memo.remember(k, grids[1])
    fused = memo.recall(np.concatenate([q, k], axis=1), 4)
    assert fused is not None
    np.testing.assert_array_equal(
        fused.dequantized(), np.concatenate([g.dequantized() for g in grids], axis=1)
    )
    assert memo.recall(np.concatenate([q, k], axis=1), 8) is None  # not chosen at 8 bits
    assert memo.recall(q + 1, 4) is None


def test_max_accuracy_drop_puts_the_most_sensitive_layers_at_8_bits(tmp_path: Path):
    source = tmp_path / "float.onnx"
    onnx.save(_mlp(), str(source))
    config = WeightOnlyQuantize(mode="weight_only", max_accuracy_drop=0.02)
    quantizer = Quantizer.prepare(source, tmp_path, config, None, 1)
    start = tmp_path / "int4.onnx"
    quantizer.write(start)
    scorer = Scorer([_inputs(128, seed=5)], None, None, tmp_path, 64).bind(source)
    fallback = revert_until_within(quantizer, start, set(), scorer, config.max_accuracy_drop)
    assert fallback.reverted and fallback.drop_after <= 0.02 < fallback.drop_before
    model = onnx.load(str(fallback.path))
    bits = sorted(
        a.i
        for n in model.graph.node
        if n.op_type == "MatMulNBits"
        for a in n.attribute
        if a.name == "bits"
    )
    assert bits.count(8) == len(fallback.reverted) and 4 in bits  # mixed, nothing in float
    assert not any(n.op_type == "MatMul" for n in model.graph.node)
    widths = quantizer.chosen["node_widths"]
    assert {widths[name] for name in fallback.reverted} == {"int8"}
    assert quantizer.revert_cost("mm0") == WIDTH * WIDTH  # ranked by error removed per weight
    # the generation decoder, found by the weights' values, gets the same widths
    floats, wider = quantizer.generation_state.decoder_widths(_mlp())
    assert sorted(wider) == sorted(fallback.reverted) and not floats


def _block_model(fused: bool = False) -> onnx.ModelProto:
    """A transformer block's weight layout: x * gamma feeds q and k (side by side in one MatMul
    when `fused`, as the generation decoder has them), x * gamma2 feeds gate and up, and
    sigmoid(gate) * up feeds down. Inputs have a few loud channels."""
    rng = np.random.default_rng(11)
    q, k, gate, up = (rng.normal(0, 0.1, (WIDTH, WIDTH)).astype(np.float32) for _ in range(4))
    down = rng.normal(0, 0.1, (WIDTH, WIDTH)).astype(np.float32)
    gammas = [(1 + rng.random(WIDTH)).astype(np.float32) for _ in range(2)]
    initializers = [
        numpy_helper.from_array(gammas[0], "gamma"),
        numpy_helper.from_array(gammas[1], "gamma2"),
        *(numpy_helper.from_array(w, n) for w, n in ((gate, "gate"), (up, "up"), (down, "down"))),
    ]
    nodes = [helper.make_node("Mul", ["x", "gamma"], ["normed"], "norm")]
    if fused:
        initializers.append(numpy_helper.from_array(np.concatenate([q, k], axis=1), "qk"))
        initializers.append(numpy_helper.from_array(np.array([WIDTH, WIDTH], np.int64), "halves"))
        nodes += [
            helper.make_node("MatMul", ["normed", "qk"], ["qk_out"], "qk_proj"),
            helper.make_node("Split", ["qk_out", "halves"], ["q_out", "k_out"], "split", axis=-1),
        ]
    else:
        initializers += [numpy_helper.from_array(q, "q"), numpy_helper.from_array(k, "k")]
        nodes += [
            helper.make_node("MatMul", ["normed", "q"], ["q_out"], "q_proj"),
            helper.make_node("MatMul", ["normed", "k"], ["k_out"], "k_proj"),
        ]
    nodes += [
        helper.make_node("Add", ["q_out", "k_out"], ["attn"], "attn"),
        helper.make_node("Mul", ["attn", "gamma2"], ["normed2"], "norm2"),
        helper.make_node("MatMul", ["normed2", "gate"], ["gate_out"], "gate_proj"),
        helper.make_node("MatMul", ["normed2", "up"], ["up_out"], "up_proj"),
        helper.make_node("Sigmoid", ["gate_out"], ["act"], "act"),
        helper.make_node("Mul", ["act", "up_out"], ["gated"], "gated"),
        helper.make_node("MatMul", ["gated", "down"], ["y"], "down_proj"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, WIDTH])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_awq_folds_its_scales_and_the_decoder_gets_the_same_function():
    from compress.backends.onnx.awq import apply_smoothing, awq_smooth

    calibration, held_out = _inputs(512), _inputs(128, seed=7)
    reference = _run(_block_model(), held_out)
    smoothed = _block_model()
    smoothing = awq_smooth(smoothed, [calibration], 64, 4, 32, True, [])
    assert set(smoothing.alphas) == {"q_proj", "gate_proj", "down_proj"}  # one per group
    assert any(alpha > 0 for alpha in smoothing.alphas.values())
    assert [n.op_type for n in smoothed.graph.node] == [
        n.op_type for n in _block_model().graph.node
    ]
    np.testing.assert_allclose(_run(smoothed, held_out), reference, rtol=1e-4, atol=1e-4)
    fused = _block_model(fused=True)  # q and k side by side: found by their columns' values
    assert apply_smoothing(fused, smoothing) >= 3
    np.testing.assert_allclose(_run(fused, held_out), reference, rtol=1e-4, atol=1e-4)
    weights = {t.name: numpy_helper.to_array(t) for t in smoothed.graph.initializer}
    fused_weights = {t.name: numpy_helper.to_array(t) for t in fused.graph.initializer}
    np.testing.assert_array_equal(fused_weights["qk"][:, :WIDTH], weights["q"])
    np.testing.assert_array_equal(fused_weights["gamma"], weights["gamma"])


def test_analyze_scores_each_matmul_at_4_bits_with_gptq(tmp_path):
    """`compress analyze` on a weight-only pass: every MatMul scored alone (GPTQ run once)."""
    from conftest import seed_mlp_recipe

    import compress

    raw = seed_mlp_recipe(
        passes=[{"type": "quantize", "mode": "weight_only", "algorithm": "gptq", "block_size": 16}]
    )
    raw["export"] = {"path": str(tmp_path / "out" / "model.onnx")}
    analysis = compress.analyze(raw, output_dir=tmp_path / "analysis", samples=64, progress=False)
    (scanned,) = analysis.passes
    assert scanned.kind == "nodes" and scanned.method == "weight_only"
    assert len(scanned.nodes) >= 2 and {node.op for node in scanned.nodes} == {"MatMul"}
    assert scanned.full_drop is not None


@pytest.mark.parametrize("algorithm", ["gptq", "awq"])
def test_a_calibrated_algorithm_without_data_is_refused_at_its_line(write_recipe, algorithm):
    from conftest import seed_mlp_recipe

    from compress.errors import RecipeError
    from compress.recipe import load_recipe

    raw = seed_mlp_recipe(
        passes=[{"type": "quantize", "mode": "weight_only", "algorithm": algorithm}]
    )
    for section in ("data", "train", "evaluate"):
        del raw[section]
    with pytest.raises(RecipeError, match=f"{algorithm} calibrates on data") as refused:
        load_recipe(write_recipe(raw))
    assert "recipe.yaml:" in str(refused.value)  # file:line:col
