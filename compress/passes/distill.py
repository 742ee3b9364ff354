"""`type: distill`: a teacher's softened outputs (and optionally its features) train a student.

Without `student`, the model being compressed is the student and the teacher defaults to the
model as loaded: recovery distillation. Its loss is added to the training of the passes after
it (pruning, QAT) in the same epochs; with no training pass after it, it fine-tunes by itself.
With `student`, a new (smaller) model is trained from the teacher and replaces the model for
the passes that follow.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from compress.passes.targets import LayerInfo
from compress.schema import StrictModel


class ModelRef(StrictModel):
    """Another model of the same framework: a builder or a model file, with optional weights."""

    source: str
    weights: str | None = None
    trust: bool = False


class DistillPass(StrictModel):
    """Train with a teacher's softened outputs mixed with the hard-label loss."""

    type: Literal["distill"] = "distill"
    teacher: ModelRef | None = Field(None, description="omitted = the model as loaded")
    student: ModelRef | None = Field(
        None, description="a different, smaller model to train; it becomes the model"
    )
    temperature: float = Field(4.0, gt=0, description="softens both output distributions")
    alpha: float = Field(
        0.7, ge=0, le=1, description="weight of the distillation term; 1 - alpha for labels"
    )
    features: dict[str, str] = Field(
        default_factory=dict, description="student layer: teacher layer, matched with MSE"
    )
    feature_weight: float = Field(1.0, ge=0, description="weight of each feature term")

    @property
    def trains(self) -> bool:
        return True


def plan_distill(config: DistillPass, layers: list[LayerInfo]) -> dict:
    """Distillation changes weights, not structure: the plan names teacher and student."""
    return {
        "teacher": config.teacher.source if config.teacher else "the model as loaded",
        "student": config.student.source if config.student else "the model itself",
        "layers": [],
        "weights_before": sum(layer.weights for layer in layers),
        "nonzero_after": sum(layer.weights for layer in layers),
    }


def training_follows(passes: list, config: DistillPass) -> bool:
    """True when a model-stage training pass comes after this distill pass."""
    position = next(index for index, item in enumerate(passes) if item is config)
    return any(
        getattr(item, "trains", False) and not getattr(item, "on_onnx", False)
        for item in passes[position + 1 :]
    )


def register_recovery(distillers: list, teacher: Any, config: DistillPass) -> dict:
    """Hand a recovery distill pass to the training passes after it; returns its record."""
    distillers.append((teacher, config))
    return {
        "mode": "recovery",
        "applied_to": "the training passes that follow",
        "temperature": config.temperature,
        "alpha": config.alpha,
    }
