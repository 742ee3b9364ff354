"""Options that one backend reads and every other backend ignores. They are declared here, as
mixins of the pass configs that take them, so that a recipe validates without importing any
backend; the neutral pass code never reads them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.errors import ModelError
from compress.schema import StrictModel

#: Keras flavours: tf-keras (Keras 2), which tfmot prunes, and Keras 3, which it refuses.
TF_KERAS = "tf_keras"


class TfKerasPruneOptions(StrictModel):
    """tf-keras: who prunes, tfmot's prune_low_magnitude or the toolkit's own masks."""

    engine: Literal["auto", "native", "tfmot"] = Field(
        "auto", description="tf-keras only: auto/tfmot prune with tfmot, native with own masks"
    )

    def engine_for(self, backend: str, trains: bool, global_scope: bool) -> str:
        """`tfmot` or `native` for a pass that runs on `backend`: auto takes tfmot where it can
        prune (a tf-keras model being trained, per-layer scope); an explicit tfmot that cannot
        is an error saying why."""
        if self.engine == "native":
            return "native"
        refusal = _tfmot_refusal(backend, trains, global_scope)
        if refusal is None:
            return "tfmot"
        if self.engine == "tfmot":
            raise ModelError(f"prune: {refusal}")
        return "native"


def _tfmot_refusal(backend: str, trains: bool, global_scope: bool) -> str | None:
    if backend == "torch":
        return "engine tfmot is for tf-keras models; PyTorch uses native masks"
    if backend != TF_KERAS:
        return (
            "engine tfmot needs a tf-keras (Keras 2) model; this is a Keras 3 model, which "
            "tfmot refuses. Use engine: native (the default for Keras 3)"
        )
    if not trains:
        return "tfmot prunes during training: add a schedule or fine_tune"
    if global_scope:
        return "tfmot prunes each layer separately: scope global needs engine: native"
    return None
