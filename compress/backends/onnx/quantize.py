"""Post-training quantization of ONNX files with onnxruntime's tools: dynamic and static INT8
(QDQ), and INT4 weight-only blocks (MatMulNBits) with Gemm rewritten as MatMul + Add first."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from compress.backends.native_logs import quiet_loggers
from compress.backends.onnx.naming import layer_name
from compress.backends.onnx.tidy import drop_initializer_value_info
from compress.cpu import VNNI_FEATURES, cpu_flags
from compress.errors import ModelError, message_line
from compress.passes.quantize import QuantizePass
from compress.passes.targets import matches

#: Ops quantized by default: the ones whose int8 kernels pay off on CPU.
STATIC_OPS = [
    "Conv",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Gather",
]
DYNAMIC_OPS = ["MatMul", "Gemm", "Attention", "LSTM", "Gather", "EmbedLayerNormalization"]
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


def default_activations() -> tuple[str, str]:
    """(activation type, why): S8S8 QDQ is onnxruntime's recommended CPU format; its int8 GEMM
    kernels use VNNI where present and stay fast on AVX2."""
    vnni = VNNI_FEATURES & cpu_flags()
    reason = f"CPU has {', '.join(sorted(vnni))}" if vnni else "CPU has no VNNI"
    return "int8", f"S8S8 QDQ, onnxruntime's recommended CPU format ({reason})"


def excluded_nodes(model: onnx.ModelProto, ignore: list[str]) -> tuple[list[str], list[str]]:
    """Node names matched by ignore patterns, and unmatched patterns (an error for the caller).

    A pattern (a name, a `re:` regex, or `op:Type`) matches a node by its name or by the layer
    of a weight it reads (the names the report uses: "conv1", "features.0").
    """
    initializers = {tensor.name for tensor in model.graph.initializer}

    def names_of(node: onnx.NodeProto) -> list[str]:
        return [node.name] + [layer_name(n) for n in node.input if n in initializers]

    names, unmatched = [], []
    for pattern in ignore:
        if pattern.startswith("op:"):
            hits = [n.name for n in model.graph.node if n.op_type == pattern[3:]]
        else:
            hits = [
                n.name
                for n in model.graph.node
                if any(matches(pattern, name) for name in names_of(n))
            ]
        if not hits:
            unmatched.append(pattern)
        names.extend(hits)
    return sorted(set(names)), unmatched


class ArrayReader(CalibrationDataReader):
    """Feeds calibration samples to onnxruntime's calibrator, in small batches."""

    def __init__(self, names: list[str], arrays: list[np.ndarray], batch: int) -> None:
        count = len(arrays[0])
        self._feeds = iter(
            [
                {
                    n: np.ascontiguousarray(a[i : i + batch])
                    for n, a in zip(names, arrays, strict=True)
                }
                for i in range(0, count, batch)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize(
    source: Path,
    target: Path,
    config: QuantizePass,
    calibration: list[np.ndarray] | None,
    calibration_batch: int,
) -> dict:
    """Write the quantized model to `target`; returns what was chosen and done."""
    model = onnx.load(str(source))
    excluded, unmatched = excluded_nodes(model, config.ignore)
    if unmatched:
        raise ModelError(f"quantize: ignore {unmatched[0]!r} matches no node of the ONNX graph")
    chosen: dict = {"per_channel": config.per_channel}
    with tempfile.TemporaryDirectory() as scratch, _quiet():
        source = Path(scratch) / "source.onnx"
        drop_initializer_value_info(model)
        onnx.save(model, str(source))
        prepared = Path(scratch) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception as exc:  # pre-processing is an optimization; quantize the export as is
            prepared = source
            chosen["pre_process"] = f"skipped: {message_line(exc)[:120]}"
        if config.mode == "dynamic":
            quantize_dynamic(
                str(prepared),
                str(target),
                per_channel=config.per_channel,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                op_types_to_quantize=DYNAMIC_OPS,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            chosen["format"] = "dynamic (integer ops, activations quantized at run time)"
        elif config.mode == "static":
            if calibration is None:
                raise ModelError("quantize: static mode needs calibration samples")
            activations = config.activations
            if activations == "auto":
                activations, chosen["why"] = default_activations()
            inputs = [
                i.name
                for i in onnx.load(str(prepared)).graph.input
                if i.name not in {t.name for t in model.graph.initializer}
            ]
            quantize_static(
                str(prepared),
                str(target),
                calibration_data_reader=ArrayReader(inputs, calibration, calibration_batch),
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                op_types_to_quantize=STATIC_OPS,
                calibrate_method=CALIBRATION_METHODS[config.calibration.method],
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            chosen["format"] = f"QDQ, {'S8' if activations == 'int8' else 'U8'}S8"
            chosen["calibration_samples"] = len(calibration[0])
        else:
            _weight_only(prepared, target, config, excluded)
            chosen["format"] = f"MatMulNBits int4, block {config.block_size}"
    onnx.checker.check_model(str(target))
    return {**chosen, "excluded_nodes": excluded}


def _weight_only(source: Path, target: Path, config: QuantizePass, excluded: list[str]) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = gemm_to_matmul(onnx.load(str(source)))
    # Gather too: embedding tables are often the largest weights of a Linear-heavy model
    algorithm = DefaultWeightOnlyQuantConfig(
        block_size=config.block_size,
        is_symmetric=config.symmetric,
        bits=4,
        op_types_to_quantize=("MatMul", "Gather"),
        quant_axes=(("MatMul", 0), ("Gather", 1)),
    )
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=4,
        block_size=config.block_size,
        is_symmetric=config.symmetric,
        nodes_to_exclude=excluded,
        algo_config=algorithm,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)


def gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite Gemm (alpha=beta=1, A not transposed) with a constant B as MatMul + Add, so that
    int4 MatMulNBits can take it: exporters emit Gemm for Linear layers."""
    initializers = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if (
            node.op_type != "Gemm"
            or node.input[1] not in initializers
            or attributes.get("transA", 0)
            or attributes.get("alpha", 1.0) != 1.0
            or attributes.get("beta", 1.0) != 1.0
        ):
            nodes.append(node)
            continue
        weight = initializers[node.input[1]]
        if attributes.get("transB", 0):
            array = onnx.numpy_helper.to_array(weight).T
            weight.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(array), weight.name))
        product = f"{node.output[0]}_matmul" if len(node.input) > 2 else node.output[0]
        nodes.append(
            onnx.helper.make_node(
                "MatMul", [node.input[0], node.input[1]], [product], name=f"{node.name}_MatMul"
            )
        )
        if len(node.input) > 2 and node.input[2]:
            nodes.append(
                onnx.helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"
                )
            )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantizer logs every decision at INFO/WARNING, partly on its own loggers."""
    names = ["", "onnxruntime.quantization.matmul_nbits_quantizer", "onnxruntime.quantization"]
    with quiet_loggers(*names), contextlib.redirect_stdout(io.StringIO()):
        yield
