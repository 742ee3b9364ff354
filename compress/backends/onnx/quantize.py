"""Post-training quantization of ONNX files with onnxruntime's tools: dynamic and static INT8
(QDQ), and INT4 weight-only blocks (MatMulNBits, GatherBlockQuantized; `weight_only`) with Gemm
rewritten as MatMul + Add first.

A `Quantizer` prepares the float model and calibrates once, then writes a quantized file for any
set of nodes kept in float: the speed-aware placement and the accuracy-aware fallback try many.
Each post-training algorithm is one subclass (`DynamicQuantizer`, `StaticQuantizer`,
`WeightOnlyQuantizer`), found by its config class in `QUANTIZERS`.
"""

from __future__ import annotations

import contextlib
import io
import platform
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

import compress.interrupts as interrupts
from compress.backends.native_logs import quiet_loggers
from compress.backends.onnx.grids import prepare_grids
from compress.backends.onnx.weight_only import (
    ORT_LOGGERS,
    accuracy_level,
    gemm_to_matmul,
    quantize_blocks,
)
from compress.cpu import VNNI_FEATURES, cpu_flags
from compress.errors import ModelError, message_line
from compress.onnx.naming import layer_name
from compress.onnx.runtime import make_session, predict
from compress.onnx.tidy import drop_initializer_value_info
from compress.passes.quantize import (
    AWQQuantize,
    DynamicQuantize,
    GPTQQuantize,
    HQQQuantize,
    PostTrainingQuantize,
    StaticQuantize,
    WeightOnlyQuantize,
)
from compress.passes.targets import matches

#: Ops quantized by default: the ones with integer kernels (or QDQ fusions) in onnxruntime's CPU
#: provider; the speed-aware placement keeps in float the kinds that do not pay off on this CPU.
STATIC_OPS = [
    "Conv",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Relu",
    "Clip",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Gather",
    "Sigmoid",
    "HardSigmoid",
    "LeakyRelu",
    "Softmax",
]
#: Kept in float when they produce a graph output.
FINAL_ACTIVATIONS = {"Softmax", "Sigmoid", "HardSigmoid", "LeakyRelu"}
DYNAMIC_OPS = ["MatMul", "Gemm", "Attention", "LSTM", "Gather", "EmbedLayerNormalization"]
#: Ops whose integer replacement (dynamic, weight-only) the fallback may revert to float; static
#: QDQ nodes are found by the DequantizeLinear they read instead.
COMPUTE_OPS = {"Conv", "MatMul", "Gemm", "Attention", "LSTM", "Gather", "EmbedLayerNormalization"}
#: Calibration samples the weight width is measured on, where it is measured.
PROBE_SAMPLES = 64
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


@dataclass(frozen=True)
class Activations:
    """The static activation type chosen, with why, and whether weights use 7 bits (None: the
    quantizer measures which width is closer to float on this CPU)."""

    type: str  # "uint8" or "int8"
    reduce_range: bool | None
    why: str


def default_activations() -> Activations:
    """onnxruntime's CPU guidance, which measurement here confirms: on x86, U8S8 QDQ (uint8
    activations, int8 weights) lets the graph fuse into QLinearConv/QLinearAdd chains, where S8S8
    leaves residual adds and half the convolutions in float (ResNet-18: 3.4x vs 1.4x). Without
    VNNI the u8s8 dot product adds pairs in int16 and can saturate with full-range weights; 7-bit
    weights avoid that but double the weight step, so the weight width is measured per model
    (`StaticQuantizer.measured_width`). On ARM, S8S8."""
    if platform.machine().lower() in {"arm64", "aarch64"}:
        return Activations("int8", False, "S8S8 QDQ: ARM kernels prefer symmetric int8")
    vnni = VNNI_FEATURES & cpu_flags()
    if vnni:
        return Activations(
            "uint8", False, f"U8S8 QDQ, fused integer chain (CPU has {', '.join(sorted(vnni))})"
        )
    return Activations("uint8", None, "U8S8 QDQ (CPU has no VNNI)")


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


@dataclass
class Quantizer:
    """A float ONNX file prepared for quantization (onnxruntime's pre-processing), calibrated on
    the first write; `write` then quantizes it with any extra nodes kept in float."""

    config: PostTrainingQuantize
    prepared: Path
    user_excluded: list[str]
    scratch: Path
    chosen: dict = field(default_factory=dict)
    #: What the fallback does to a node it takes back (weight-only mixed precision: 8 bits).
    reverted_to: str = "float"
    #: What the pass's generation role reuses (weight-only: the grids chosen here).
    generation_state: Any = None

    @staticmethod
    def prepare(
        source: Path,
        scratch: Path,
        config: PostTrainingQuantize,
        calibration: list[np.ndarray] | None,
        calibration_batch: int,
    ) -> Quantizer:
        """The quantizer of `config`'s algorithm over a prepared copy of `source`."""
        model = onnx.load(str(source))
        excluded, unmatched = excluded_nodes(model, config.ignore)
        if unmatched:
            raise ModelError(f"quantize: ignore {unmatched[0]!r} matches no node of the ONNX graph")
        cls = QUANTIZERS[type(config)]
        excluded = cls.excluded_before(model, excluded)
        chosen: dict = {"per_channel": cls.per_channel(config)}
        copy = scratch / "source.onnx"
        drop_initializer_value_info(model)
        onnx.save(model, str(copy))
        prepared = scratch / "prepared.onnx"
        try:
            with _quiet():
                quant_pre_process(str(copy), str(prepared), skip_symbolic_shape=True)
        except Exception as exc:  # pre-processing is an optimization; quantize the export as is
            interrupts.check()
            prepared = copy
            chosen["pre_process"] = f"skipped: {message_line(exc)[:120]}"
        quantizer = cls(config, prepared, excluded, scratch, chosen)
        quantizer.setup(model, calibration, calibration_batch)
        return quantizer

    @classmethod
    def excluded_before(cls, model: onnx.ModelProto, excluded: list[str]) -> list[str]:
        """The nodes to leave float beside the recipe's `ignore`."""
        return excluded

    #: The weight-holding ops the algorithm quantizes (what `compress plan` lists).
    weight_ops: tuple[str, ...] = ("MatMul", "Gemm")

    @classmethod
    def planned_types(cls, config: PostTrainingQuantize) -> str:
        """The types the quantized nodes will hold, for `compress plan`."""
        narrow = "" if VNNI_FEATURES & cpu_flags() else " (7-bit: the CPU has no VNNI)"
        return f"int8 weights{narrow}, uint8 activations quantized at run time"

    @classmethod
    def decided_at_run(cls, config: PostTrainingQuantize) -> list[str]:
        """What the algorithm decides by measuring, which `compress plan` cannot say."""
        if config.max_accuracy_drop is None:
            return []
        return [
            f"max_accuracy_drop {config.max_accuracy_drop:g}: the most sensitive nodes return "
            "to float until the drop holds"
        ]

    @classmethod
    def per_channel(cls, config: PostTrainingQuantize) -> bool:
        """Whether weight scales are per output channel (blocks have finer scales still)."""
        return True

    def setup(
        self, model: onnx.ModelProto, calibration: list[np.ndarray] | None, batch: int
    ) -> None:
        """The algorithm's own preparation of the prepared file; says its format in `chosen`."""

    def write(self, target: Path, keep_float: Collection[str] = ()) -> None:
        """Quantize the prepared model into `target`, leaving `keep_float` nodes (and those the
        recipe ignores) in float."""
        names = {*self.user_excluded, *keep_float}
        # onnxruntime's dynamic quantizer splits Gemm into "<name>_MatMul" + Add first
        excluded = sorted(names | {f"{name}_MatMul" for name in names})
        with _quiet():
            self.quantize(target, excluded)
        onnx.checker.check_model(str(target))

    def quantize(self, target: Path, excluded: list[str]) -> None:
        raise NotImplementedError

    def revert_cost(self, name: str) -> float:
        """What reverting node `name` costs, relative to other nodes: the fallback reverts the
        most error removed per cost first (1 each: by error removed alone)."""
        return 1.0

    def node_ops(self) -> dict[str, str]:
        """The op type of each node of the prepared model, by name."""
        return {node.name: node.op_type for node in onnx.load(str(self.prepared)).graph.node}

    def quantized_nodes(self, quantized: Path) -> list[str]:
        """Names of the prepared model's nodes that `quantized` runs in integers (without the
        ones the recipe ignores): those replaced by integer ops."""
        model = onnx.load(str(quantized))
        remaining = {(node.name, node.op_type) for node in model.graph.node}
        names = [
            node.name
            for node in onnx.load(str(self.prepared)).graph.node
            if node.op_type in COMPUTE_OPS and (node.name, node.op_type) not in remaining
        ]
        return [name for name in names if name and name not in self.user_excluded]


class DynamicQuantizer(Quantizer):
    """INT8 weights, activations quantized at run time (onnxruntime's quantize_dynamic)."""

    config: DynamicQuantize
    reduce_range: bool = False

    @classmethod
    def per_channel(cls, config: PostTrainingQuantize) -> bool:
        return config.per_channel

    def setup(
        self, model: onnx.ModelProto, calibration: list[np.ndarray] | None, batch: int
    ) -> None:
        self.chosen["format"] = "dynamic (integer ops, activations quantized at run time)"
        self.chosen["reduce_range"] = self.reduce_range = not (VNNI_FEATURES & cpu_flags())
        if self.reduce_range:
            self.chosen["why"] = "7-bit weights: the CPU has no VNNI (avoids u8s8 saturation)"

    def quantize(self, target: Path, excluded: list[str]) -> None:
        quantize_dynamic(
            str(self.prepared),
            str(target),
            per_channel=self.config.per_channel,
            reduce_range=self.reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            op_types_to_quantize=DYNAMIC_OPS,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@dataclass
class StaticQuantizer(Quantizer):
    """Calibrated QDQ; the calibration ranges are cached by the first write."""

    config: StaticQuantize
    activations: Activations | None = None
    #: the calibration samples, read by the first write only (the ranges are cached)
    reader: ArrayReader | None = None
    #: a few calibration samples, fed to both weight widths when the width is measured
    probe: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def per_channel(cls, config: PostTrainingQuantize) -> bool:
        return config.per_channel

    @classmethod
    def excluded_before(cls, model: onnx.ModelProto, excluded: list[str]) -> list[str]:
        """Probabilities keep their float resolution."""
        return sorted({*excluded, *_final_activations(model)})

    weight_ops = ("Conv", "MatMul", "Gemm")

    @classmethod
    def planned_types(cls, config: StaticQuantize) -> str:
        if config.activations != "auto":
            return f"int8 weights, {config.activations} activations (QDQ)"
        chosen = default_activations()
        return f"int8 weights, {chosen.type} activations: {chosen.why}"

    @classmethod
    def decided_at_run(cls, config: StaticQuantize) -> list[str]:
        found = []
        if config.placement == "speed":
            found.append(
                "placement speed: kinds of node whose INT8 is not faster on this CPU stay float"
            )
        if not VNNI_FEATURES & cpu_flags():
            found.append("the weight width (8 or 7 bits) is measured against float")
        return found + super().decided_at_run(config)

    def setup(
        self, model: onnx.ModelProto, calibration: list[np.ndarray] | None, batch: int
    ) -> None:
        if calibration is None:
            raise ModelError("quantize: static mode needs calibration samples")
        initializers = {t.name for t in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in initializers]
        self.reader = ArrayReader(inputs, calibration, batch)
        self.probe = [array[:PROBE_SAMPLES] for array in calibration]
        self.activations = _activations(self.config)
        self.chosen.update(
            format=f"QDQ, {'U8' if self.activations.type == 'uint8' else 'S8'}S8",
            activations=self.activations.type,
            reduce_range=self.activations.reduce_range,
            calibration_samples=len(calibration[0]),
        )
        if self.activations.why:
            self.chosen["why"] = self.activations.why

    def quantize(self, target: Path, excluded: list[str]) -> None:
        assert self.activations is not None
        if self.activations.reduce_range is None:
            self.activations = self.measured_width(target, excluded)
            self.chosen.update(reduce_range=self.activations.reduce_range, why=self.activations.why)
            return
        self._quantize_static(target, excluded, self.activations.reduce_range)

    def measured_width(self, target: Path, excluded: list[str]) -> Activations:
        """8- or 7-bit weights, whichever runs closer to the float model on the probe samples;
        `target` is left holding the winner. Measured, because neither is better everywhere:
        saturation costs some models far more than the coarser 7-bit step (and others not)."""
        assert self.activations is not None
        candidates = {False: self.scratch / "weights8.onnx", True: self.scratch / "weights7.onnx"}
        for reduce_range, path in candidates.items():
            self._quantize_static(path, excluded, reduce_range)
        reference = predict(make_session(self.prepared), self.probe, PROBE_SAMPLES)
        error = {
            reduce_range: relative_error(
                predict(make_session(path), self.probe, PROBE_SAMPLES), reference
            )
            for reduce_range, path in candidates.items()
        }
        reduce_range = error[True] < error[False]
        candidates[reduce_range].replace(target)
        self.chosen["weight_bits_error"] = {"8": error[False], "7": error[True]}
        why = (
            f"{self.activations.why}: {7 if reduce_range else 8}-bit weights, measured closer to "
            f"float on {len(self.probe[0])} calibration samples (relative error 8-bit "
            f"{error[False]:.2g}, 7-bit {error[True]:.2g}; u8s8 kernels without VNNI can saturate)"
        )
        return Activations(self.activations.type, reduce_range, why)

    def _quantize_static(self, target: Path, excluded: list[str], reduce_range: bool) -> None:
        assert self.reader is not None and self.activations is not None
        cache = self.scratch / "calibration.json"
        quantize_static(
            str(self.prepared),
            str(target),
            calibration_data_reader=None if cache.is_file() else self.reader,
            quant_format=QuantFormat.QDQ,
            per_channel=self.config.per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8
            if self.activations.type == "uint8"
            else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            op_types_to_quantize=STATIC_OPS,
            calibrate_method=CALIBRATION_METHODS[self.config.calibration.method],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            calibration_cache_path=cache,
        )

    def quantized_nodes(self, quantized: Path) -> list[str]:
        """The nodes that read a DequantizeLinear (QDQ keeps the float op between them)."""
        model = onnx.load(str(quantized))
        producers = {out: node.op_type for node in model.graph.node for out in node.output}
        names = [
            node.name
            for node in model.graph.node
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear")
            and any(producers.get(name) == "DequantizeLinear" for name in node.input)
        ]
        return [name for name in names if name and name not in self.user_excluded]


class WeightOnlyQuantizer(Quantizer):
    """Weight blocks (MatMulNBits) chosen by the pass's algorithm; Gemm rewritten as MatMul +
    Add first; embeddings as GatherBlockQuantized and the lm_head at their own widths."""

    config: WeightOnlyQuantize
    weight_ops = ("MatMul", "Gemm", "Gather")
    _weight_counts: dict[str, int] | None = None
    #: the nodes the recipe's `int8_nodes` puts at 8 bits
    user_wider: tuple[str, ...] = ()

    @classmethod
    def planned_types(cls, config: WeightOnlyQuantize) -> str:
        kind = "symmetric" if config.symmetric else "asymmetric"
        level, _ = accuracy_level(config)
        return (
            f"int4 weights in {kind} blocks of {config.block_size} (MatMulNBits, accuracy_level "
            f"{level}), embeddings {config.embeddings} (GatherBlockQuantized), lm_head "
            f"{config.lm_head}, float activations"
        )

    @classmethod
    def decided_at_run(cls, config: WeightOnlyQuantize) -> list[str]:
        tied = "a table tied to the lm_head is stored once, at the wider of the two widths"
        return [tied, *super().decided_at_run(config)]

    def setup(
        self, model: onnx.ModelProto, calibration: list[np.ndarray] | None, batch: int
    ) -> None:
        rewritten, self.user_excluded = matmul_form(
            onnx.load(str(self.prepared)), self.user_excluded
        )
        self.user_wider = tuple(_int8_nodes(rewritten, self.config, self.user_excluded))
        level, _ = accuracy_level(self.config)
        self.chosen["format"] = (
            f"MatMulNBits {self.config.weights}, block {self.config.block_size}, "
            f"accuracy_level {level}"
        )
        self.grids = prepare_grids(rewritten, self.config, calibration, batch, self.user_excluded)
        onnx.save(rewritten, str(self.prepared))  # smoothed by awq (the same float function)
        self.chosen.update(self.grids.record)
        self.generation_state = self.grids
        if self.config.sensitive == "int8":
            self.reverted_to = "8-bit blocks"

    def revert_cost(self, name: str) -> float:
        """The weights the node holds: widening a large embedding table costs more bytes than
        widening a small MatMul, so the fallback widens the most error removed per weight."""
        if self._weight_counts is None:
            model = onnx.load(str(self.prepared))
            sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
            self._weight_counts = {
                node.name: max((sizes.get(i, 0) for i in node.input), default=0)
                for node in model.graph.node
            }
        return float(max(self._weight_counts.get(name, 1), 1))

    def write(self, target: Path, keep_float: Collection[str] = ()) -> None:
        """Quantize into `target`; `keep_float` nodes (the fallback's) go to 8-bit blocks when
        `sensitive: int8` (mixed precision), else to float like the ignored ones."""
        reverted = set(keep_float) if self.config.sensitive == "int8" else set()
        excluded = sorted({*self.user_excluded, *keep_float} - reverted)
        wider = (reverted | set(self.user_wider)) - set(excluded)
        model = onnx.load(str(self.prepared))
        self.grids.begin_write(model, set(keep_float) - reverted)
        self.chosen.update(
            quantize_blocks(model, self.config, excluded, self.grids.choose, sorted(wider))
        )
        onnx.save(model, str(target))
        onnx.checker.check_model(str(target))


def _int8_nodes(
    model: onnx.ModelProto, config: WeightOnlyQuantize, excluded: list[str]
) -> list[str]:
    """The nodes `int8_nodes` names (after the Gemm rewrite), less those left in float."""
    names, unmatched = excluded_nodes(model, config.int8_nodes)
    if unmatched:
        raise ModelError(f"quantize: int8_nodes {unmatched[0]!r} matches no node of the ONNX graph")
    return [name for name in names if name not in excluded]


def matmul_form(model: onnx.ModelProto, excluded: list[str]) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with Gemm rewritten as MatMul (+ Add), and the excluded node names following
    the rewrite (a Gemm "fc" becomes "fc_MatMul")."""
    rewritten = gemm_to_matmul(model)
    names = {node.name for node in rewritten.graph.node}
    return rewritten, [name if name in names else f"{name}_MatMul" for name in excluded]


#: The quantizer of each post-training algorithm, by config class.
QUANTIZERS: dict[type[PostTrainingQuantize], type[Quantizer]] = {
    DynamicQuantize: DynamicQuantizer,
    StaticQuantize: StaticQuantizer,
    WeightOnlyQuantize: WeightOnlyQuantizer,
    GPTQQuantize: WeightOnlyQuantizer,
    AWQQuantize: WeightOnlyQuantizer,
    HQQQuantize: WeightOnlyQuantizer,
}


def _final_activations(model: onnx.ModelProto) -> list[str]:
    """Activation nodes that produce a graph output (a classifier's softmax): quantized, their
    outputs would come in steps of 1/255."""
    outputs = {output.name for output in model.graph.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type in FINAL_ACTIVATIONS and set(node.output) & outputs
    ]


def relative_error(outputs: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Squared error of `outputs` against `reference`, relative to the reference's energy and
    summed over the model's outputs."""
    return float(
        sum(
            np.mean((out - ref) ** 2) / max(float(np.mean(ref**2)), 1e-12)
            for out, ref in zip(outputs, reference, strict=True)
        )
    )


def _activations(config: StaticQuantize) -> Activations:
    if config.activations == "auto":
        return default_activations()
    return Activations(config.activations, False, "")


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantizer logs every decision at INFO/WARNING, partly on its own loggers."""
    with quiet_loggers(*ORT_LOGGERS), contextlib.redirect_stdout(io.StringIO()):
        yield
