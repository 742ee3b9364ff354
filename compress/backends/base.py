"""What every backend provides to the framework-neutral pipeline and passes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compress.data import Split, Splits
from compress.errors import ModelError
from compress.passes.targets import LayerInfo
from compress.progress import Reporter
from compress.recipe import Recipe, TrainSpec


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
    distillers: list[Any] = field(default_factory=list)  # recovery distillation for later passes

    def training(self, pass_name: str) -> Training:
        """The training inputs of a pass; a clear error when the data has no train split."""
        recipe = self.recipe
        if recipe.train is None or recipe.data is None:  # rejected with the recipe already
            raise ModelError(f"{pass_name}: training needs train and data sections")
        if "train" not in self.data:
            raise ModelError(f"{pass_name}: training needs a 'train' split from data.source")
        return Training(recipe.train, self.data["train"], recipe.data.batch_size)


@dataclass
class ExportInfo:
    """How a model was exported."""

    exporter: str
    quantized: bool = False  # fake-quantized (QAT) models match their ONNX only to a step
    notes: list[str] = field(default_factory=list)


class Backend(ABC):
    """One framework: load, describe, train/compress, predict and export models."""

    name: str

    @abstractmethod
    def load(self, recipe: Recipe, built: Any = None) -> Any:
        """Load the recipe's model, or finish one its builder returned (weights, checks)."""

    @abstractmethod
    def copy(self, model: Any) -> Any:
        """An independent copy of the model (passes must not change the caller's object)."""

    @abstractmethod
    def layers(self, model: Any) -> list[LayerInfo]:
        """The model's layers in order, with their weight counts and whether they can be pruned."""

    @abstractmethod
    def apply_pass(self, model: Any, config: Any, context: PassContext) -> tuple[Any, dict]:
        """Run one model-stage pass; returns the new model and what the pass did."""

    @abstractmethod
    def predict(self, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the framework model on numpy inputs (inference mode)."""

    @abstractmethod
    def export_onnx(self, model: Any, recipe: Recipe, path: Path) -> ExportInfo:
        """Write a single self-contained ONNX file at `path`."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework versions for the report's environment section."""


def owner_module(model: Any) -> str:
    """The top-level package that defines the model's class or one of its bases."""
    for cls in type(model).__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("torch", "keras", "tf_keras", "tensorflow", "onnx"):
            return root
    return type(model).__module__.split(".")[0]
