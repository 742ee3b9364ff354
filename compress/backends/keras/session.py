"""The Keras side of CompressionSession: native pruning masks as `fit` callbacks, and
distillation through targets that carry the teacher's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends.keras.distillation import Distillation, teacher_logits
from compress.backends.keras.environment import keras_api
from compress.backends.keras.layers import keras_layers
from compress.backends.keras.pruning import KernelMasks
from compress.backends.keras.training import outputs_probabilities
from compress.data import Split
from compress.errors import UsageError
from compress.passes.prune import PrunePass, check_achieved, prune_record
from compress.passes.targets import TargetError, resolve_targets
from compress.recipe import Recipe


class KerasSession:
    def __init__(
        self,
        model: Any,
        recipe: Recipe,
        steps_per_epoch: int,
        epochs: int,
        teachers: dict[int, Any],
        flavor: str,
    ) -> None:
        self.model = model
        self.api = keras_api(flavor)
        self.masks: list[KernelMasks] = []
        self._callbacks = []
        self.distill: tuple[Any, Any] | None = None
        for index, config in enumerate(recipe.passes):
            if isinstance(config, PrunePass):
                try:
                    layers = resolve_targets(
                        config.targets, config.ignore, keras_layers(model), "prune"
                    )
                except TargetError as exc:
                    raise recipe.error_at(("passes", index, *exc.loc), exc.message) from None
                masks = KernelMasks(model, [layer.name for layer in layers], config)
                if config.schedule is None:
                    masks.set_sparsity(masks.stepper.record_one_shot())
                self.masks.append(masks)
                total = steps_per_epoch * epochs
                self._callbacks.append(masks.callback(self.api, steps_per_epoch, total))
            elif config.type == "distill":
                self.distill = (teachers[index], config)

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

    def finalize(self) -> tuple[Any, list[dict]]:
        records = []
        for masks in self.masks:
            masks.apply()
            achieved, per_layer = masks.achieved()
            check_achieved(masks.config, achieved)
            records.append(
                {
                    "type": "prune",
                    "engine": "native",
                    **prune_record(
                        masks.config, achieved, per_layer, masks.stepper.updates, {"loop": "user"}
                    ),
                }
            )
        if self.distill is not None:
            config = self.distill[1]
            records.append(
                {
                    "type": "distill",
                    "mode": "recovery",
                    "loop": "user",
                    "temperature": config.temperature,
                    "alpha": config.alpha,
                }
            )
        return self.model, records
