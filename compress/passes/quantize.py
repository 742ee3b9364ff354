"""`type: quantize`: post-training quantization on the exported ONNX file (one implementation
for every framework), or quantization-aware training (`mode: qat`) in the model's framework."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from compress.passes.base import PassConfig, PassRecord, Stage
from compress.passes.targets import LayerInfo
from compress.schema import StrictModel

if TYPE_CHECKING:
    from compress.errors import RecipeError
    from compress.recipe import Recipe


class Calibration(StrictModel):
    samples: int = Field(256, ge=1, description="samples of the calibration split to use")
    method: Literal["minmax", "entropy", "percentile"] = "minmax"


class QuantizeRecord(PassRecord):
    """What a quantize pass did: post-training modes add `format`, `why`, `per_channel`,
    `calibration_samples`, `excluded_nodes`; static adds `activations`, `reduce_range`,
    `kept_float_for_speed` and `placement_trials`; every post-training mode `reverted_nodes` (what
    the accuracy-aware fallback put back in float, empty without `max_accuracy_drop`) and with it
    `accuracy_drop_before`/`_after` and `fallback_latency_ms`; QAT adds `engine` and `training`.
    """

    mode: str
    weights: str


class QuantizePass(PassConfig):
    """Quantize weights (and activations) to integers."""

    record = QuantizeRecord

    type: Literal["quantize"] = "quantize"
    mode: Literal["dynamic", "static", "weight_only", "qat"] = Field(
        ...,
        description="dynamic: int8 weights, activations at run time; static: calibrated QDQ; "
        "weight_only: int4 blocks for MatMul/Gemm; qat: trained with fake quantization",
    )
    weights: Literal["int8", "int4"] = "int8"
    activations: Literal["auto", "int8", "uint8"] = Field(
        "auto",
        description="static: activation type; auto = int8 (S8S8 QDQ, onnxruntime's "
        "recommended CPU format; the report says why and whether the CPU has VNNI)",
    )
    per_channel: bool = True
    block_size: int = Field(32, ge=16, description="weight_only: weights per quantization block")
    symmetric: bool = Field(True, description="weight_only: symmetric int4 blocks")
    calibration: Calibration = Field(default_factory=Calibration)
    placement: Literal["speed", "all"] = Field(
        "speed",
        description="static: speed keeps in float the kinds of nodes whose INT8 kernels are "
        "slower than float on this CPU (timed while quantizing); all quantizes every one",
    )
    max_accuracy_drop: float | None = Field(
        None,
        ge=0,
        description="largest allowed drop in the evaluate metric on val (or in fidelity "
        "without labels); the nodes that hurt most go back to float until it holds",
    )
    ignore: list[str] = Field(
        default_factory=list, description="node names, `re:` regexes or `op:Type` to leave in float"
    )

    @property
    def stage(self) -> Stage:
        """Post-training modes run on the exported ONNX file, after every model-stage pass."""
        return "model" if self.mode == "qat" else "onnx"

    @property
    def trains(self) -> bool:
        return self.mode == "qat"

    @property
    def splits(self) -> tuple[str, ...]:
        if self.mode == "static":
            return ("calibration", "train")
        return super().splits

    def plan(self, layers: list[LayerInfo]) -> dict:
        return plan_quantize(self, layers)

    def recipe_problems(self, recipe: Recipe, index: int) -> list[RecipeError]:
        if recipe.data is not None:
            return []
        if self.mode == "static":
            message = "static quantization calibrates on data: add a data section"
            return [recipe.error_at(("passes", index, "mode"), message)]
        if self.max_accuracy_drop is not None:
            message = "max_accuracy_drop is measured on the val split: add a data section"
            return [recipe.error_at(("passes", index, "max_accuracy_drop"), message)]
        return []

    @model_validator(mode="after")
    def _combinations(self) -> QuantizePass:
        if self.weights == "int4" and self.mode != "weight_only":
            raise ValueError(
                f"int4 weights need mode weight_only (mode {self.mode} quantizes activations, "
                "which int4 kernels do not support)"
            )
        if self.mode == "weight_only" and self.weights != "int4":
            raise ValueError("mode weight_only quantizes to int4: set weights: int4")
        if self.activations != "auto" and self.mode != "static":
            raise ValueError("activations is only used by mode static")
        if self.max_accuracy_drop is not None and self.mode == "qat":
            raise ValueError(
                "max_accuracy_drop applies to post-training modes (dynamic, static, "
                "weight_only); QAT trains the accuracy back instead"
            )
        return self


def plan_quantize(config: QuantizePass, layers: list[LayerInfo]) -> dict:
    """Quantization acts on the exported graph: the plan lists the weights it may take."""
    rows = [
        {
            "name": layer.name,
            "kind": layer.kind,
            "weights": layer.weights,
            "nonzero_after": layer.weights,
        }
        for layer in layers
        if layer.prunable
    ]
    return {
        "mode": config.mode,
        "stage": "onnx" if config.stage == "onnx" else "training",
        "layers": rows,
        "weights_before": sum(row["weights"] for row in rows),
        "nonzero_after": sum(row["weights"] for row in rows),
    }
