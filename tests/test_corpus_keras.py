"""Public Keras architectures (random weights, no downloads) through `compress apply`: export,
parity, one pass, report. Plus the two things such models broke: constants that Keras 3's
exporter turns into extra graph inputs (EfficientNet's Normalization), and weight names that
are TF op paths once TF folds a BatchNorm into a kernel (ResNet50's `conv1_conv`)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import corpus_keras_models as corpus
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress.onnx.tidy import fold_extra_inputs, name_initializers, scope_layer

CORPUS = Path(__file__).parent / "corpus_keras_models.py"
# placement `all`: the test asserts every kernel int8, which the speed search (tested in
# test_quantize_placement.py) may decide otherwise on a given CPU; it would also time 8 variants
QUANTIZE = {"type": "quantize", "mode": "static", "placement": "all", "calibration": {"samples": 8}}
PRUNE = {"type": "prune", "sparsity": 0.5}
#: builder -> (input size, passes, a layer the report must name)
ARCHITECTURES = {
    "mobilenet_v2": (64, [QUANTIZE], "Conv1"),
    "resnet50": (96, [PRUNE], "conv1_conv"),
    "efficientnet_b0": (96, [QUANTIZE], "stem_conv"),
    "tf_keras_mobilenet": (64, [QUANTIZE], "conv_pw_1"),
}


def corpus_recipe(builder: str, size: int, passes: list[dict]) -> dict:
    return {
        "version": 1,
        "name": f"corpus-{builder}",
        "model": {
            "source": f"{CORPUS}:{builder}",
            "inputs": [{"name": "input", "shape": [-1, size, size, 3], "dtype": "float32"}],
        },
        "data": {"source": f"{CORPUS}:load_{size}", "batch_size": 8},
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": {"warmup": 1, "runs": 3}},
    }


def apply(run_cli, write_recipe, builder: str, size: int, passes: list[dict]) -> dict:
    code, out, err = run_cli("apply", write_recipe(corpus_recipe(builder, size, passes)), "--json")
    assert code == 0, err
    return json.loads(out)


def keras_layer_names(builder: str) -> set[str]:
    """The builder's layer names as the run saw them: a fresh Keras session, or automatic
    names ("normalization") would get a counter ("normalization_1") the second time."""
    keras = importlib.import_module("tf_keras" if builder.startswith("tf_keras") else "keras")
    keras.backend.clear_session()
    return {layer.name for layer in getattr(corpus, builder)().layers}


def float_kernel_names(path: Path) -> list[str]:
    return [
        t.name
        for t in onnx.load(str(path)).graph.initializer
        if len(t.dims) >= 2 and t.data_type == TensorProto.FLOAT
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("builder", list(ARCHITECTURES))
def test_public_architecture_through_apply(builder, run_cli, write_recipe, tmp_path):
    size, passes, first_layer = ARCHITECTURES[builder]
    report = apply(run_cli, write_recipe, builder, size, passes)
    out = tmp_path / "out"
    assert (out / "report.json").is_file() and (out / "report.html").is_file()
    for side in ("baseline", "compressed"):
        assert report[side]["export"]["parity_max_abs_diff"] < 1e-4

    onnx_path = out / report["artifacts"]["onnx"]
    inputs = onnx.load(str(onnx_path)).graph.input
    assert [(i.name, len(i.type.tensor_type.shape.dim)) for i in inputs] == [("input", 4)]
    images = corpus.load_64()["val"] if size == 64 else corpus.load_96()["val"]
    probabilities = ort.InferenceSession(str(onnx_path)).run(None, {"input": images})[0]
    assert probabilities.shape == (len(images), corpus.CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert np.ptp(probabilities, axis=0).max() > 1e-3  # outputs depend on the input

    names = keras_layer_names(builder)
    baseline_kernels = float_kernel_names(out / report["artifacts"]["baseline_onnx"])
    assert {name.split("/")[0] for name in baseline_kernels} <= names
    rows = {row["name"]: row for row in report["layers"]}
    assert first_layer in rows
    # every row is a Keras layer, also after onnxruntime's pre-quantization optimizer fused a
    # depthwise Conv with the BatchNorm Mul after it ("ConvMulFusion_W_<weight>")
    assert set(rows) <= names
    if passes == [QUANTIZE]:
        # kernels are int8; constants of element-wise ops (a BatchNorm left as Mul/Add) take
        # the uint8 activation type of U8S8
        assert {row["dtype"] for row in rows.values()} <= {"int8", "uint8"}
        assert rows[first_layer]["dtype"] == "int8"
        assert report["fidelity"]["value"] > 0.8
    else:
        assert report["passes"][0]["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
        assert rows[first_layer]["sparsity"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.e2e
@pytest.mark.parametrize("builder", ["normalized_cnn", "tf_keras_normalized_cnn"])
def test_normalization_constants_are_not_graph_inputs(builder, run_cli, write_recipe, tmp_path):
    """Keras 3 exports an adapted Normalization's mean as a graph input that the graph reads;
    it is folded back with the layer's value (parity proves it), and tf2onnx (tf-keras) never
    had the problem."""
    report = apply(run_cli, write_recipe, builder, 16, [QUANTIZE])
    assert report["baseline"]["export"]["parity_max_abs_diff"] < 1e-5
    for artifact in ("baseline_onnx", "onnx"):
        graph = onnx.load(str(tmp_path / "out" / report["artifacts"][artifact])).graph
        assert [i.name for i in graph.input] == ["input"]
    assert {"conv", "fc"} <= {row["name"] for row in report["layers"]}


@pytest.mark.e2e
def test_a_constant_input_without_a_known_value_names_layer_and_input(run_cli, write_recipe):
    code, _, err = run_cli("apply", write_recipe(corpus_recipe("opaque_offset_cnn", 16, passes=[])))
    assert code == 3
    assert "Keras layer 'offset' (Offset)" in err
    assert re.search(r"extra ONNX input '\S*offset_1/sub/y:0'", err)
    assert "Traceback" not in err and "ValueError" not in err


def test_scope_layer_strips_the_suffix_tf_adds_and_prefers_exact_names():
    path = "resnet50_1/conv1_conv_1/convolution/merged_input:0"
    assert scope_layer(path, {"conv1_conv", "resnet"}) == (
        "conv1_conv",
        "convolution/merged_input:0",
    )
    assert scope_layer("model/conv2d_1/Conv2D:0", {"conv2d", "conv2d_1"})[0] == "conv2d_1"
    assert scope_layer("model_1/dense_1/MatMul:0", {"conv"}) is None


def graph_file(
    path: Path, initializers: dict[str, np.ndarray], extra_inputs=(), readers=None
) -> Path:
    """An ONNX file with input "x" and one node per initializer and extra input, so that every
    tensor is read: an Identity, or the (op, node name) that `readers` gives for it."""
    nodes = []
    for i, name in enumerate([*initializers, *extra_inputs]):
        op, node = (readers or {}).get(name, ("Identity", f"read{i}"))
        inputs = [name] if op == "Identity" else ["x", name]
        nodes.append(helper.make_node(op, inputs, [f"out{i}"], name=node))
    graph = helper.make_graph(
        nodes,
        "g",
        [float_info("x", [1]), *(float_info(name, [1, 3]) for name in extra_inputs)],
        [float_info(node.output[0], None) for node in nodes],
        [numpy_helper.from_array(array, name) for name, array in initializers.items()],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def float_info(name: str, shape: list[int] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_weights_whose_values_changed_are_named_after_the_layer_in_their_path(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.random((3, 3, 3, 8), dtype=np.float32)
    folded = (kernel * 0.5).transpose(3, 2, 0, 1)  # a BatchNorm folded in, then OIHW
    path = graph_file(
        tmp_path / "m.onnx",
        {
            "model_1/conv_1/convolution/merged_input:0": folded,
            "model_1/conv_bn_1/batchnorm/sub:0": rng.random(8, dtype=np.float32),
            "model_1/dense_1/MatMul/ReadVariableOp:0": np.ones((8, 2), np.float32),
            "model_1/pool_1/Shape:0": np.ones((2, 2), np.float32),
        },
    )
    weights = {
        "conv/kernel": kernel,
        "conv_bn/gamma": np.ones(8, np.float32),
        "conv_bn/beta": np.zeros(8, np.float32),
        "dense/kernel": np.ones((8, 2), np.float32),
    }
    name_initializers(path, weights)
    names = [t.name for t in onnx.load(str(path)).graph.initializer]
    assert names == ["conv/kernel", "conv_bn/bias", "dense/kernel", "model_1/pool_1/Shape:0"]


def test_folded_constants_without_a_path_take_the_layer_of_their_readers(tmp_path):
    """A depthwise conv's BatchNorm stays a Mul (scale) and an Add (shift) of (1, C, 1, 1)
    constants; tf2onnx calls the shift "const_fold_opt__N"."""
    rng = np.random.default_rng(0)
    path = graph_file(
        tmp_path / "m.onnx",
        {
            "m_1/dw_bn_1/batchnorm/mul:0": rng.random((1, 4, 1, 1), dtype=np.float32),
            "const_fold_opt__7": rng.random((1, 4, 1, 1), dtype=np.float32),
            "const_fold_opt__8": rng.random((1, 4, 1, 1), dtype=np.float32),
        },
        readers={
            "m_1/dw_bn_1/batchnorm/mul:0": ("Mul", "m_1/dw_bn_1/batchnorm/mul_1"),
            "const_fold_opt__7": ("Add", "m_1/dw_bn_1/batchnorm/add_1"),
            "const_fold_opt__8": ("Mul", "m_1/unknown_1/mul"),
        },
    )
    name_initializers(path, {"dw_bn/gamma": np.ones(4, np.float32)})
    names = [t.name for t in onnx.load(str(path)).graph.initializer]
    assert names == ["dw_bn/kernel", "dw_bn/bias", "const_fold_opt__8"]


def test_two_tensors_that_would_get_one_name_keep_theirs(tmp_path):
    tensors = {
        "m/conv_1/a:0": np.full((2, 2), 2.0, np.float32),
        "m/conv_1/b:0": np.full((2, 2), 3.0, np.float32),
    }
    path = graph_file(tmp_path / "m.onnx", tensors)
    name_initializers(path, {"conv/kernel": np.ones((2, 2), np.float32)})
    assert [t.name for t in onnx.load(str(path)).graph.initializer] == list(tensors)


def test_fold_extra_inputs_keeps_the_model_inputs_only(tmp_path):
    path = graph_file(tmp_path / "m.onnx", {}, extra_inputs=["norm/Sub/y:0"])
    model = onnx.load(str(path))
    model.graph.input.append(float_info("norm/Sqrt/x:0", [1, 3]))
    onnx.save(model, str(path))
    asked = []

    def resolve(name, shape, dtype):
        asked.append((name, shape, dtype))
        return np.array([[1.0, 2.0, 3.0]])

    fold_extra_inputs(path, 1, resolve)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["x"]
    assert asked == [("norm/Sub/y:0", (1, 3), np.dtype(np.float32))]
    folded = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    np.testing.assert_array_equal(folded["norm/Sub/y:0"], [[1.0, 2.0, 3.0]])
    assert folded["norm/Sub/y:0"].dtype == np.float32
