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

from compress.errors import RecipeError
from compress.passes.base import PassConfig, PassRecord, RecipeView
from compress.passes.targets import LayerInfo
from compress.schema import StrictModel


class ModelRef(StrictModel):
    """Another model of the same framework: a builder or a model file, with optional weights."""

    source: str
    weights: str | None = None
    trust: bool = False


class DistillRecord(PassRecord):
    """What a distill pass did: `mode` recovery or student; trained passes add `features`,
    `student_params`, `teacher_params`, `training`."""

    mode: str
    temperature: float
    alpha: float


class DistillPass(PassConfig):
    """Train with a teacher's softened outputs mixed with the hard-label loss."""

    record = DistillRecord

    type: Literal["distill"] = "distill"
    teacher: ModelRef | None = Field(None, description="omitted = the model as loaded")
    student: ModelRef | None = Field(
        None, description="a different, smaller model to train; it becomes the model"
    )
    temperature: float = Field(4.0, gt=0, description="softens both output distributions")
    alpha: float = Field(
        0.7, ge=0, le=1, description="weight of the distillation term; 1 - alpha for labels"
    )
    output_loss: Literal["kl", "mse", "cosine"] = Field(
        "kl",
        description="how the student's outputs follow the teacher's: kl of the softened "
        "distributions (classifiers, LMs), mse or cosine of the raw outputs (embeddings)",
    )
    mask_input: str | None = Field(
        None,
        description="sequence models: the input (e.g. attention_mask) whose zeros mark output "
        "positions the teacher term leaves out (padding)",
    )
    features: dict[str, str] = Field(
        default_factory=dict, description="student layer: teacher layer, matched with MSE"
    )
    feature_weight: float = Field(1.0, ge=0, description="weight of each feature term")

    @property
    def trains(self) -> bool:
        return True

    @property
    def needs_labels(self) -> bool:
        """With alpha 1 the teacher is the only target: the train split needs no labels."""
        return self.alpha < 1

    @property
    def session_refusal(self) -> str | None:
        """A session distills into its own loop's training: recovery only, no student."""
        if self.student is None:
            return None
        return "distillation into a student replaces the model your loop trains"

    @property
    def uses_original(self) -> bool:
        return self.teacher is None

    def references(self) -> list[tuple[tuple[str, ...], str | None]]:
        return [
            ((role, key), getattr(ref, key))
            for role, ref in (("teacher", self.teacher), ("student", self.student))
            if ref is not None
            for key in ("source", "weights")
        ]

    def plan(self, layers: list[LayerInfo]) -> dict:
        return plan_distill(self, layers)

    def planned_model(self, backend: Any, model: Any, context: Any) -> tuple[Any, dict]:
        """The student (the model itself for recovery), with both models' parameters counted
        as the pass's record counts them."""
        recipe = context.recipe
        teacher = (
            model
            if self.teacher is None
            else backend.load_reference(recipe, self.teacher, "teacher")
        )
        student = (
            model
            if self.student is None
            else backend.load_reference(recipe, self.student, "student")
        )
        counts = {
            "teacher_params": backend.params(teacher),
            "student_params": backend.params(student),
        }
        return student, counts

    def recipe_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        """One recovery pass at most: training passes take one distillation loss; a mask
        input must be one of the model's inputs."""
        names = [spec.name for spec in recipe.model.inputs]
        if self.mask_input is not None and self.mask_input not in names:
            return [
                recipe.error_at(
                    ("passes", index, "mask_input"),
                    f"mask_input {self.mask_input!r} is not a model input ({', '.join(names)})",
                )
            ]
        if self.student is not None:
            return []
        first = next(
            i
            for i, other in enumerate(recipe.passes)
            if isinstance(other, DistillPass) and other.student is None
        )
        if first == index:
            return []
        return [
            recipe.error_at(
                ("passes", index),
                f"pass {first} is already a recovery distill pass (no student): training takes "
                "one distillation loss, so use one recovery distill pass",
            )
        ]


def plan_distill(config: DistillPass, layers: list[LayerInfo]) -> dict:
    """The plan names teacher and student (their sizes come from `planned_model`)."""
    return {
        "teacher": config.teacher.source if config.teacher else "the model as loaded",
        "student": config.student.source if config.student else "the model itself",
    }


def trained_by(passes: list[PassConfig], config: DistillPass) -> list[int]:
    """The numbers (from 1) of the model-stage training passes after this distill pass."""
    position = next(index for index, item in enumerate(passes) if item is config)
    return [
        index + 1
        for index, item in enumerate(passes)
        if index > position and item.trains and item.stage == "model"
    ]


def training_follows(passes: list[PassConfig], config: DistillPass) -> bool:
    """True when a model-stage training pass comes after this distill pass."""
    return bool(trained_by(passes, config))


def register_recovery(context: Any, teacher: Any, config: DistillPass) -> dict:
    """Hand a recovery distill pass to the training passes after it (`context.distiller`);
    returns what it did. Its own seconds are only this hand-over: `trained_in` names the
    passes whose training (and time) includes its loss."""
    context.distiller = (teacher, config)
    return {
        "mode": "recovery",
        "applied_to": "the training passes that follow",
        "trained_in": trained_by(context.recipe.passes, config),
        "temperature": config.temperature,
        "alpha": config.alpha,
    }


def user_loop_record(config: DistillPass) -> dict:
    """What a recovery distill pass did in a CompressionSession (the user's loop trained)."""
    return {
        "mode": "recovery",
        "loop": "user",
        "temperature": config.temperature,
        "alpha": config.alpha,
    }
