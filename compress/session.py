"""CompressionSession: a recipe's training-time passes inside your own training loop.

PyTorch: call `session.step()` after each optimizer step and train on `session.loss(...)`.
Keras: pass `session.callbacks()` to `fit` and compile with `session.compile_loss(...)`.
Then `session.finalize()` returns the model and `session.export(dir)` measures it against the
model as it was when the session started, exactly as `compress apply` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress.errors import UsageError
from compress.passes import PassRecord
from compress.recipe import Recipe, as_recipe, check_usage
from compress.report.schema import Report


class CompressionSession:
    def __init__(
        self,
        model: Any,
        recipe: Recipe | str | Path | Mapping[str, Any],
        steps_per_epoch: int,
        epochs: int | None = None,
    ) -> None:
        """`epochs` (the loop's length, checked against the pruning schedules) defaults to the
        recipe's train.epochs, else to where the last schedule ends; finalize() fails if the loop
        stopped before. The recipe needs no train or data section: your loop trains, and data
        serves only accuracy and calibration at export."""
        from compress.backends import backend_named, framework_of
        from compress.backends.base import PassContext
        from compress.progress import Reporter

        self.recipe = as_recipe(recipe)
        if steps_per_epoch < 1:
            raise UsageError("CompressionSession needs steps_per_epoch >= 1")
        check_usage(self.recipe, "session")
        epochs = epochs or _default_epochs(self.recipe, steps_per_epoch)
        inner = getattr(model, "module", model)  # DistributedDataParallel wraps the model
        self.backend = backend_named(framework_of(inner))
        self.original = self.backend.copy(inner)
        context = PassContext(
            recipe=self.recipe,
            data={},
            reporter=Reporter(False),
            original=self.original,
            backend=self.backend,
        )
        self._impl: Any = self.backend.session(model, context, steps_per_epoch, epochs)
        self._result: tuple[Any, list[PassRecord]] | None = None

    # PyTorch
    def step(self) -> None:
        """Call after every optimizer step: advances pruning schedules and re-applies masks."""
        self._torch("step").step()

    def loss(self, outputs: Any, targets: Any, inputs: Any = None) -> Any:
        """The training loss: the recipe's loss, with distillation terms when the recipe asks."""
        return self._torch("loss").loss(outputs, targets, inputs)

    def parameters(self) -> list[Any]:
        """Extra trainable parameters (distillation projections): add them to your optimizer."""
        return self._torch("parameters").parameters()

    # Keras
    def callbacks(self) -> list[Any]:
        """Callbacks for `model.fit` that prune on the recipe's schedule."""
        return self._keras("callbacks").callbacks()

    def compile_loss(self, loss: Any) -> Any:
        """The loss to compile with: `loss`, or the distillation loss when the recipe asks."""
        return self._keras("compile_loss").compile_loss(loss)

    def distill_targets(self, inputs: Any, targets: Any) -> Any:
        """Targets for `fit` with distillation: labels plus the teacher's outputs on `inputs`."""
        return self._keras("distill_targets").distill_targets(inputs, targets)

    # Both
    def finalize(self) -> Any:
        """Check the achieved sparsity, remove hooks, and return the model ready for export."""
        if self._result is None:
            self._result = self._impl.finalize()
        return self._result[0]

    def export(self, output_dir: str | Path | None = None, progress: bool | None = False) -> Report:
        """Export, run the recipe's post-training passes, and measure against the original."""
        from compress.pipeline import Trained, run

        model = self.finalize()
        assert self._result is not None
        trained = Trained(self.backend, model, self._result[1])
        return run(self.recipe, self.original, output_dir, progress, trained)

    def _torch(self, method: str) -> Any:
        if self.backend.name != "torch":
            raise UsageError(f"session.{method}() is for PyTorch models; see callbacks()")
        return self._impl

    def _keras(self, method: str) -> Any:
        if self.backend.name not in ("keras", "tf_keras"):
            raise UsageError(f"session.{method}() is for Keras models; see step() and loss()")
        return self._impl


def _default_epochs(recipe: Recipe, steps_per_epoch: int) -> int:
    """The loop's length when the caller gives none: train.epochs, else the epoch in which the
    last pruning schedule ends (at least 1)."""
    if recipe.train is not None:
        return recipe.train.epochs
    ends = [
        end for config in recipe.passes if (end := config.schedule_end(steps_per_epoch)) is not None
    ]
    return max([1, *(math.ceil(end / steps_per_epoch) for end in ends)])
