"""`type: quantize`: one config class per algorithm, selected by `mode` (and, for weight-only,
by `algorithm`). Post-training modes run on the exported ONNX file (one implementation for every
framework); quantization-aware training (`mode: qat`) runs in the model's framework."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from compress.errors import RecipeError
from compress.passes.base import PassConfig, PassRecord, RecipeView, Stage
from compress.passes.targets import LayerInfo, Pattern
from compress.schema import StrictModel


class Calibration(StrictModel):
    samples: int = Field(256, ge=1, description="samples of the calibration split to use")
    method: Literal["minmax", "entropy", "percentile"] = "minmax"


class QuantizeRecord(PassRecord):
    """What a quantize pass did: post-training modes add `format`, `why`, `per_channel`,
    `calibration_samples`, `excluded_nodes`; weight_only adds `block_size`, `accuracy_level`,
    `embeddings`, `lm_head` (widths), `lm_head_node`, `embedding_nodes`, `tied_embeddings` and
    `tied_storage` (what one copy of a tied table is); static adds `activations`, `reduce_range`,
    `kept_float_for_speed` and `placement_trials`; every post-training mode `reverted_nodes` (what
    the accuracy-aware fallback put back in float, empty without `max_accuracy_drop`) and with it
    `accuracy_drop_before`/`_after` and `fallback_latency_ms`; QAT adds `engine` and `training`.
    """

    mode: str
    weights: str


MODE_DESCRIPTION = (
    "dynamic: int8 weights, activations at run time; static: calibrated QDQ; "
    "weight_only: int4 blocks for MatMul/Gemm; qat: trained with fake quantization"
)


class QuantizeBase(PassConfig):
    """What every quantization algorithm shares: its weight type and the nodes left alone."""

    record = QuantizeRecord
    selectors = ("mode",)

    type: Literal["quantize"] = "quantize"
    mode: str = Field(..., description=MODE_DESCRIPTION)
    weights: Literal["int8", "int4"] = "int8"
    ignore: list[Pattern] = Field(
        default_factory=list, description="node names, `re:` regexes or `op:Type` to leave in float"
    )

    def plan(self, layers: list[LayerInfo]) -> dict:
        return plan_quantize(self, layers)

    @model_validator(mode="after")
    def _weights(self) -> QuantizeBase:
        if self.weights == "int4":
            raise ValueError(
                f"int4 weights need mode weight_only (mode {self.mode} quantizes activations, "
                "which int4 kernels do not support)"
            )
        return self


class PostTrainingQuantize(QuantizeBase):
    """Quantization of the exported ONNX file, with the accuracy-aware fallback."""

    family: ClassVar[str] = "post-training modes (dynamic, static, weight_only)"

    max_accuracy_drop: float | None = Field(
        None,
        ge=0,
        description="largest allowed drop in the evaluate metric on val (or in fidelity "
        "without labels); the nodes that hurt most go back to float until it holds",
    )

    @property
    def stage(self) -> Stage:
        """Post-training modes run on the exported ONNX file, after every model-stage pass."""
        return "onnx"

    @property
    def keeps_nodes_float(self) -> bool:
        return True

    @property
    def searches_placement(self) -> bool:
        """Whether the node kinds kept in float are chosen by timing them on this CPU."""
        return False

    def recipe_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        if recipe.data is None and self.max_accuracy_drop is not None:
            message = "max_accuracy_drop is measured on the val split: add a data section"
            return [recipe.error_at(("passes", index, "max_accuracy_drop"), message)]
        return []


class DynamicQuantize(PostTrainingQuantize):
    """INT8 weights, activations quantized at run time (transformers, RNNs)."""

    mode: Literal["dynamic"] = Field(..., description=MODE_DESCRIPTION)
    per_channel: bool = True


class StaticQuantize(PostTrainingQuantize):
    """Calibrated INT8 QDQ: weights and activations (CNNs); by default the kinds of nodes that
    are slower in INT8 on this CPU stay float."""

    mode: Literal["static"] = Field(..., description=MODE_DESCRIPTION)
    per_channel: bool = True
    activations: Literal["auto", "int8", "uint8"] = Field(
        "auto",
        description="int8 = S8S8 QDQ, uint8 = U8S8 QDQ; auto = uint8 (U8S8) on x86, int8 "
        "(S8S8) on ARM, as onnxruntime's CPU guidance says (the record says why; on x86 "
        "without VNNI it also measures 8- against 7-bit weights)",
    )
    calibration: Calibration = Field(default_factory=Calibration)
    placement: Literal["speed", "all"] = Field(
        "speed",
        description="speed keeps in float the kinds of nodes whose INT8 kernels are "
        "slower than float on this CPU (timed while quantizing); all quantizes every one",
    )

    @property
    def splits(self) -> tuple[str, ...]:
        return ("calibration", "train")

    @property
    def searches_placement(self) -> bool:
        return self.placement == "speed"

    def recipe_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        if recipe.data is None:
            message = "static quantization calibrates on data: add a data section"
            return [recipe.error_at(("passes", index, "mode"), message)]
        return super().recipe_problems(recipe, index)


#: A weight-only width: 4- or 8-bit blocks, or left in float.
BlockWidth = Literal["int4", "int8", "float"]


def block_size_problem(size: int) -> str | None:
    """Why `size` cannot be a weight-only block size (None when it can)."""
    if size >= 16 and not size & (size - 1):
        return None
    return (
        f"{size} is not a power of two of at least 16 (16, 32, 64, 128...), which MatMulNBits "
        "and GatherBlockQuantized need"
    )


class WeightOnlyQuantize(PostTrainingQuantize):
    """Weights in blocks (MatMulNBits), activations in float: round to nearest (`rtn`; the
    other algorithms are gptq, awq and hqq); embedding tables as GatherBlockQuantized, the
    final projection at its own width, and a table tied to it stored once."""

    selectors = ("mode", "algorithm")

    mode: Literal["weight_only"] = Field(..., description=MODE_DESCRIPTION)
    algorithm: Literal["rtn"] = Field(
        "rtn", description="rtn: round each block to nearest; gptq, hqq: see their pages"
    )
    weights: Literal["int4", "int8"] = Field(
        "int4", description="the width of the MatMul blocks (int8: near-lossless, 2x larger)"
    )
    block_size: int = Field(32, ge=16, description="weights per quantization block")
    symmetric: bool = Field(True, description="symmetric blocks (no zero points stored)")
    accuracy_level: Annotated[int, Field(ge=0, le=4)] | Literal["auto"] = Field(
        "auto",
        description="MatMulNBits compute type, as onnxruntime defines it: 0 unset (float), "
        "1 fp32, 2 fp16, 3 bf16, 4 int8; auto = 4 (int8 compute, the fast CPU kernels)",
    )
    embeddings: BlockWidth = Field(
        "int4", description="embedding tables (Gather) as GatherBlockQuantized blocks, or float"
    )
    lm_head: BlockWidth = Field(
        "int4", description="the final projection (the MatMul producing the logits)"
    )
    sensitive: Literal["int8", "float"] = Field(
        "int8",
        description="what max_accuracy_drop puts the most sensitive layers at: 8-bit blocks "
        "(mixed precision) or float",
    )
    int8_nodes: list[Pattern] = Field(
        default_factory=list,
        description="node names, `re:` regexes or `op:Type` quantized in 8-bit blocks (mixed "
        "precision by hand; `compress tune` writes the ones it chose here)",
    )

    @property
    def calibrated(self) -> bool:
        """Whether the algorithm reads calibration samples."""
        return False

    @property
    def searches_widths(self) -> bool:
        return self.weights == "int4"

    @model_validator(mode="after")
    def _block_size(self) -> WeightOnlyQuantize:
        problem = block_size_problem(self.block_size)
        if problem:
            raise ValueError(f"block_size {problem}")
        return self

    @model_validator(mode="after")
    def _weights(self) -> WeightOnlyQuantize:
        return self  # every width of `weights` has blocks


class CalibratedWeightOnly(WeightOnlyQuantize):
    """What the calibrated weight-only algorithms (gptq, awq) share: calibration samples from
    the `calibration` split (else `train`), and a data section to draw them from."""

    calibration: Calibration = Field(default_factory=lambda: Calibration(samples=128))

    @property
    def calibrated(self) -> bool:
        return True

    @property
    def splits(self) -> tuple[str, ...]:
        return ("calibration", "train")

    def recipe_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        if recipe.data is None:
            message = (
                f"{self.algorithm} calibrates on data: add a data section (data.text or "
                "data.source)"
            )
            return [recipe.error_at(("passes", index, "algorithm"), message)]
        return super().recipe_problems(recipe, index)


class GPTQQuantize(CalibratedWeightOnly):
    """GPTQ: each MatMul's blocks chosen to keep its output on calibration inputs, the
    rounding error of every column spread over the columns not yet rounded; sequential (each
    layer sees the inputs the already-quantized layers before it produce)."""

    algorithm: Literal["gptq"] = Field(..., description="gptq: Hessian-aware, calibrated")
    damping: float = Field(
        0.01, gt=0, le=1, description="added to the Hessian diagonal, times its mean"
    )
    act_order: bool = Field(
        True, description="round the columns with the largest inputs first (static blocks)"
    )


class AWQQuantize(CalibratedWeightOnly):
    """AWQ: activation-aware per-channel scales (mean |x|^alpha, alpha searched on calibration
    inputs) folded into the op before each MatMul group, then round to nearest."""

    algorithm: Literal["awq"] = Field(..., description="awq: activation-aware scales, calibrated")


class HQQQuantize(WeightOnlyQuantize):
    """HQQ: calibration-free block ranges by half-quadratic optimisation of the zero points
    (rounded to integers, so the fast kernels run it), scales refitted by least squares."""

    algorithm: Literal["hqq"] = Field(..., description="hqq: calibration-free, asymmetric")
    symmetric: bool = Field(False, description="hqq fits zero points: asymmetric blocks")
    iterations: int = Field(20, ge=1, le=200, description="half-quadratic steps per weight")

    @model_validator(mode="after")
    def _asymmetric(self) -> HQQQuantize:
        if self.symmetric:
            raise ValueError("hqq fits each block's zero point: leave symmetric false")
        return self


class QATQuantize(QuantizeBase):
    """Quantization-aware training: fake-quantized INT8 while fine-tuning, in the model's
    framework; the export carries the learned ranges."""

    no_scan = "quantization-aware training has no per-node scan (scan a post-training mode)"

    mode: Literal["qat"] = Field(..., description=MODE_DESCRIPTION)
    per_channel: bool = True

    @property
    def trains(self) -> bool:
        return True

    @property
    def session_refusal(self) -> str | None:
        return "quantization-aware training needs the built-in trainer"


#: The weight-only algorithms (their roles are registered for all of them alike).
WEIGHT_ONLY_PASSES: tuple[type[WeightOnlyQuantize], ...] = (
    WeightOnlyQuantize,
    GPTQQuantize,
    AWQQuantize,
    HQQQuantize,
)
#: The algorithms that quantize the exported ONNX file.
POST_TRAINING_PASSES: tuple[type[PostTrainingQuantize], ...] = (
    DynamicQuantize,
    StaticQuantize,
    *WEIGHT_ONLY_PASSES,
)
#: Every quantization algorithm, for the registry.
QUANTIZE_PASSES: tuple[type[QuantizeBase], ...] = (*POST_TRAINING_PASSES, QATQuantize)


def plan_quantize(config: QuantizeBase, layers: list[LayerInfo]) -> dict:
    """Post-training quantization acts on the exported graph (its nodes are planned there, by
    the `plan` role); QAT trains the framework model with fake quantization."""
    return {"mode": config.mode, "stage": "onnx" if config.stage == "onnx" else "training"}
