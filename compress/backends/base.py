"""What every backend provides to the framework-neutral pipeline and passes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compress.backends.native_logs import filtered_native_stderr
from compress.data import Split, Splits
from compress.errors import ModelError, UnsafeModelError, UsageError
from compress.passes import PassConfig, handler_for
from compress.passes.targets import LayerInfo
from compress.progress import Reporter
from compress.recipe import MODEL_FILE_SUFFIXES, Recipe, TrainSpec
from compress.sources import call_reference

#: The frameworks a model can come from.
FRAMEWORKS = ("torch", "keras", "tf_keras", "onnx")


@dataclass(frozen=True)
class Training:
    """What a training pass needs: the recipe's train section, the train split, the batch."""

    spec: TrainSpec
    split: Split
    batch_size: int


@dataclass
class PassContext:
    """What a pass handler may use besides the model and its config."""

    recipe: Recipe
    data: Splits
    reporter: Reporter
    original: Any = None  # the model as loaded (the default distillation teacher)
    backend: Backend | None = None  # the backend running the pass (set by apply_pass)
    #: (teacher, config) of the recovery distill pass whose loss the later training passes add
    distiller: tuple[Any, Any] | None = None
    #: What an ONNX-stage pass leaves for its generation role, by id of the pass config (the
    #: weight-only grids, so that the generation decoder gets the same blocks).
    generation_state: dict[int, Any] = field(default_factory=dict)

    def split(self, config: PassConfig) -> tuple[str, Split] | None:
        """The first of the pass's `splits` that data.source returned, with its name."""
        name = next((name for name in config.splits if name in self.data), None)
        return None if name is None else (name, self.data[name])

    def training(self, config: PassConfig) -> Training:
        """The training inputs of a pass; a clear error when the data has no train split."""
        recipe = self.recipe
        if recipe.train is None or recipe.data is None:  # rejected with the recipe already
            raise ModelError(f"{config.type}: training needs train and data sections")
        found = self.split(config)
        if found is None:
            raise ModelError(f"{config.type}: training needs a 'train' split from data.source")
        return Training(recipe.train, found[1], recipe.data.batch_size)


@dataclass
class ExportInfo:
    """How a model was exported."""

    exporter: str
    quantized: bool = False  # fake-quantized (QAT) models match their ONNX only to a step
    notes: list[str] = field(default_factory=list)


class Backend(ABC):
    """One framework: load, describe, train/compress, predict and export models. Passes run
    through the handlers registered for (pass class, backend name)."""

    name: str
    #: Said when a pass has no handler here: what this backend takes instead.
    pass_hint: str = ""

    @abstractmethod
    def load(self, recipe: Recipe, built: Any = None) -> Any:
        """Load the recipe's model, or finish one its builder returned (weights, checks)."""

    #: The model files this backend loads itself.
    file_suffixes: tuple[str, ...] = ()

    def load_reference(self, recipe: Recipe, ref: Any, role: str) -> Any:
        """Another model of this framework named in a pass as its `role` ("teacher",
        "student"): a model file or a builder, with optional weights; another framework's
        model is refused, and a refusal names the role's own `trust` field."""
        spec = recipe.model.model_copy(
            update={"source": ref.source, "weights": ref.weights, "trust": ref.trust}
        )
        derived = recipe.model_copy(update={"model": spec})
        try:
            if recipe.resolve(ref.source).is_dir():  # a Hugging Face folder
                with filtered_native_stderr():
                    return self.load(derived)
            if ref.source.endswith(MODEL_FILE_SUFFIXES):
                if not ref.source.endswith(self.file_suffixes):
                    raise _other_framework(ref.source, "another framework's model file", self.name)
                return self.load(derived)
            with filtered_native_stderr():
                built = call_reference(ref.source, recipe.base_dir)
            other = framework_of(built)
            if other != self.name:
                raise _other_framework(ref.source, f"a {other} model", self.name)
            return self.load(derived, built)
        except UnsafeModelError as exc:
            raise UnsafeModelError(
                f"{role}: {str(exc).replace('model.trust', f'{role}.trust')}"
            ) from None

    @abstractmethod
    def copy(self, model: Any) -> Any:
        """An independent copy of the model (passes must not change the caller's object)."""

    @abstractmethod
    def layers(self, model: Any) -> list[LayerInfo]:
        """The model's layers in order, with their weight counts and whether they can be pruned."""

    def params(self, model: Any) -> int:
        """Every parameter of the framework model (what the distill record counts)."""
        return sum(layer.params for layer in self.layers(model))

    def apply_pass(self, model: Any, config: PassConfig, context: PassContext) -> tuple[Any, dict]:
        """Run one model-stage pass with its registered handler; returns the new model and
        what the pass did."""
        handler = handler_for(config, self.name, self.pass_hint)
        context.backend = self
        return handler(model, config, context)

    def session(self, model: Any, context: PassContext, steps_per_epoch: int, epochs: int) -> Any:
        """The CompressionSession implementation for this framework's training loops."""
        raise UsageError(f"no training session for {self.name} models")

    #: The suffix of a saved framework model (a pruned model users keep training).
    model_suffix: str = ""

    def save_model(self, model: Any, path: Path) -> None:
        """Write the framework model to `path` in a form `compress.load_pruned` reads."""
        raise UsageError(f"{self.name} models cannot be saved by compress")

    def save_folder(self, model: Any, source: Path, target: Path) -> None:
        """Write a model loaded from the model folder `source` as a model folder `target`
        (weights, config, the tokenizer files), for the library that reads `source`."""
        raise UsageError(f"{self.name} models cannot be saved as a model folder by compress")

    @abstractmethod
    def predict(self, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the framework model on numpy inputs (inference mode)."""

    def check_loss(
        self, model: Any, loss: str, outputs: list[np.ndarray], targets: np.ndarray
    ) -> None:
        """Raise a ModelError naming both shapes when the recipe's `train.loss` cannot take the
        model's `outputs` and these `targets` (the dry run of `compress validate`)."""
        raise UsageError(f"{self.name} models are not trained by compress")

    @abstractmethod
    def export_onnx(
        self, model: Any, recipe: Recipe, path: Path, exporter: str | None = None
    ) -> ExportInfo:
        """Write a single self-contained ONNX file at `path`; `exporter` is the one the
        baseline used (so both models come from the same exporter), where there is a choice."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework versions for the report's environment section."""


def _other_framework(source: str, what: str, backend: str) -> ModelError:
    return ModelError(
        f"{source} is {what}, but the model being compressed is {backend}: teacher and "
        "student must use the same framework"
    )


def distill_models(backend: Backend, config: Any, context: PassContext) -> tuple[Any, Any]:
    """(teacher, student) of a distill pass: the named models, or the model as loaded as the
    teacher and None (the model itself) as the student."""
    teacher = (
        backend.load_reference(context.recipe, config.teacher, "teacher")
        if config.teacher is not None
        else context.original
    )
    if teacher is None:
        raise ModelError("distill: no teacher: name one, or let the pipeline keep the original")
    student = (
        backend.load_reference(context.recipe, config.student, "student")
        if config.student is not None
        else None
    )
    return teacher, student


def framework_of(model: Any) -> str:
    """The framework an in-memory model belongs to, from its class hierarchy."""
    if isinstance(model, Path) and model.suffix == ".onnx":
        return "onnx"
    owner = owner_module(model)
    if owner in FRAMEWORKS:
        return owner
    raise UsageError(
        f"cannot compress a {type(model).__name__} from {owner!r}: expected a torch.nn.Module, "
        "a Keras 3 model or a tf-keras model"
    )


def owner_module(model: Any) -> str:
    """The top-level package that defines the model's class or one of its bases."""
    for cls in type(model).__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("torch", "keras", "tf_keras", "tensorflow", "onnx"):
            return root
    return type(model).__module__.split(".")[0]
