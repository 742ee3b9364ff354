"""The Keras side of CompressionSession: the neutral pruner's masks moved by `fit` callbacks, and
distillation through targets that carry the teacher's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends import distill_models
from compress.backends.base import PassContext
from compress.backends.keras.distillation import Distillation, teacher_logits
from compress.backends.keras.environment import keras_api
from compress.backends.keras.layers import keras_layers
from compress.backends.keras.pruning import KerasKernels, mask_callback
from compress.backends.keras.training import outputs_probabilities
from compress.data import Split
from compress.errors import UsageError
from compress.passes import PassRecord
from compress.passes.distill import DistillPass, user_loop_record
from compress.passes.prune import PrunePass
from compress.passes.pruning import Pruner, pruner_for, select
from compress.passes.targets import TargetError


class KerasSession:
    """Prune masks as `fit` callbacks, and the recovery distillation through targets that
    carry the teacher's outputs; the ONNX passes run at export."""

    def __init__(self, model: Any, context: PassContext, steps_per_epoch: int, epochs: int) -> None:
        recipe = context.recipe
        self.model = model
        self.api = keras_api(context.backend.name)
        self.pruners: list[Pruner] = []
        self._callbacks = []
        self.distill: tuple[Any, Any] | None = None
        for index, config in enumerate(recipe.passes):
            if isinstance(config, PrunePass):
                try:
                    names = select(config, keras_layers(model))
                except TargetError as exc:
                    raise recipe.error_at(("passes", index, *exc.loc), exc.message) from None
                pruner = pruner_for(config, KerasKernels(model, names))
                self.pruners.append(pruner)
                total = steps_per_epoch * epochs
                self._callbacks.append(mask_callback(self.api, pruner, steps_per_epoch, total))
            elif isinstance(config, DistillPass):
                self.distill = (distill_models(context.backend, config, context)[0], config)
            elif config.stage == "model":
                raise UsageError(f"a Keras session cannot run pass {config.type!r}")

    def callbacks(self) -> list[Any]:
        return list(self._callbacks)

    def compile_loss(self, loss: Any) -> Any:
        if self.distill is None:
            return loss
        return self._distillation(np.zeros((0, 0), np.float32)).loss()

    def distill_targets(self, inputs: Any, targets: Any) -> Any:
        if self.distill is None:
            raise UsageError("the recipe has no distill pass: fit on your own targets")
        arrays = [np.asarray(x) for x in (inputs if isinstance(inputs, list | tuple) else [inputs])]
        split = Split(arrays, np.asarray(targets))
        distillation = self._distillation(teacher_logits(self.distill[0], split, 256))
        return distillation.targets(np.asarray(targets))

    def _distillation(self, logits: np.ndarray) -> Distillation:
        assert self.distill is not None
        return Distillation(self.distill[1], logits, outputs_probabilities(self.model))

    def finalize(self) -> tuple[Any, list[PassRecord]]:
        records = []
        for pruner in self.pruners:
            info = pruner.finish({"loop": "user"})
            records.append(pruner.config.record_of({**info, "engine": "native"}, seconds=None))
        if self.distill is not None:
            config = self.distill[1]
            records.append(config.record_of(user_loop_record(config), seconds=None))
        return self.model, records
