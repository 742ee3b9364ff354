"""The Keras side of CompressionSession: each pass's session part (its `session` role in
compress/backends/handlers.py) — the neutral pruner's masks moved by one `fit` callback, and
distillation through targets that carry the teacher's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends.base import PassContext, distill_models
from compress.backends.keras.distillation import Distillation, teacher_logits
from compress.backends.keras.environment import keras_api
from compress.backends.keras.layers import keras_layers
from compress.backends.keras.pruning import KerasKernels
from compress.backends.keras.training import lifecycle_callback, outputs_probabilities
from compress.data import Split
from compress.errors import UsageError
from compress.passes import PassRecord
from compress.passes.distill import DistillPass, user_loop_record
from compress.passes.prune import PruneBase
from compress.passes.pruning import pruner_for, select
from compress.passes.session_parts import PrunePart, SessionPart, session_parts


class KerasSession:
    """The passes' parts as one `fit` callback, and the recovery distillation through targets
    that carry the teacher's outputs; the ONNX passes run at export."""

    def __init__(self, model: Any, context: PassContext, steps_per_epoch: int, epochs: int) -> None:
        self.model = model
        self.context = context
        self.api = keras_api(context.backend.name)
        self.distill: tuple[Any, DistillPass] | None = None
        self.pruners: list[Any] = []
        self.parts: list[SessionPart] = session_parts(self, context.backend.name, "a Keras session")
        total = steps_per_epoch * epochs
        self._callbacks = (
            [lifecycle_callback(self.api, self.pruners, steps_per_epoch, total)]
            if self.pruners
            else []
        )

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
        return self.model, [part.finalize({"loop": "user"}) for part in self.parts]


def prune_part(session: KerasSession, config: PruneBase) -> PrunePart:
    """The pruner over the targeted kernels, moved by the session's `fit` callback."""
    names = select(config, keras_layers(session.model))
    pruner = pruner_for(config, KerasKernels(session.model, names))
    session.pruners.append(pruner)
    return PrunePart(config, pruner, {"engine": "native"})


class DistillPart:
    """A recovery distill pass in the user's `fit`: its loss and targets come from the session."""

    def __init__(self, config: DistillPass) -> None:
        self.config = config

    def on_update(self, step: int) -> None:
        """The targets carry the distillation: nothing moves with the steps."""

    def finalize(self, training: dict) -> PassRecord:
        return self.config.record_of(user_loop_record(self.config), seconds=None)


def distill_part(session: KerasSession, config: DistillPass) -> DistillPart:
    """The teacher whose outputs `distill_targets` adds to the user's targets."""
    session.distill = (distill_models(session.context.backend, config, session.context)[0], config)
    return DistillPart(config)
