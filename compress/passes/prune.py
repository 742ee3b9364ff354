"""`type: prune`: magnitude pruning, one-shot or on a schedule over fine-tuning epochs.

This module holds the framework-neutral part: the config, the sparsity schedule and the check
that the requested sparsity was reached. Backends apply the masks.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from compress.errors import ModelError
from compress.passes.targets import LayerInfo, resolve_targets
from compress.schema import StrictModel

#: A run misses its target when achieved sparsity is this far below the request (0.5 points).
SPARSITY_TOLERANCE = 0.005


class PruneSchedule(StrictModel):
    """How sparsity grows over fine-tuning: from `initial_sparsity` at `start_epoch` to the
    pass's `sparsity` at `end_epoch`, then held while training continues."""

    kind: Literal["polynomial", "linear", "constant"] = "polynomial"
    start_epoch: int = Field(0, ge=0)
    end_epoch: int | None = Field(None, ge=1, description="required for polynomial and linear")
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0)
    exponent: float = Field(3.0, gt=0.0, description="polynomial decay exponent")
    frequency: int | None = Field(
        None, ge=1, description="optimizer steps between mask updates; default ~10 per epoch"
    )

    @model_validator(mode="after")
    def _check_epochs(self) -> PruneSchedule:
        if self.kind != "constant":
            if self.end_epoch is None:
                raise ValueError(f"a {self.kind} schedule needs end_epoch")
            if self.end_epoch <= self.start_epoch:
                raise ValueError("end_epoch must be greater than start_epoch")
        return self

    def sparsity_at(self, step: int, steps_per_epoch: int, final: float) -> float:
        """Sparsity to hold after `step` optimizer steps (step 0 = before training)."""
        begin = self.start_epoch * steps_per_epoch
        if step < begin:
            return 0.0
        if self.kind == "constant":
            return final
        end = (self.end_epoch or 0) * steps_per_epoch
        progress = min(1.0, (step - begin) / max(1, end - begin))
        exponent = 1.0 if self.kind == "linear" else self.exponent
        return final + (self.initial_sparsity - final) * (1.0 - progress) ** exponent

    def update_every(self, steps_per_epoch: int) -> int:
        """Steps between mask updates, derived from the epoch length unless given."""
        return self.frequency or max(1, math.ceil(steps_per_epoch / 10))


class PrunePass(StrictModel):
    """Zero the smallest-magnitude weights of the targeted layers."""

    type: Literal["prune"] = "prune"
    method: Literal["magnitude"] = "magnitude"
    sparsity: float = Field(..., ge=0.0, lt=1.0, description="fraction of weights set to zero")
    scope: Literal["layer", "global"] = Field(
        "layer", description="layer: each layer reaches the sparsity; global: one threshold"
    )
    schedule: PruneSchedule | None = Field(None, description="omitted = one-shot")
    fine_tune: bool | None = Field(
        None, description="train with masks held; default: true with a schedule, else false"
    )
    targets: list[str] | None = Field(
        None, description="layer names or `re:` regexes; omitted = every prunable layer"
    )
    ignore: list[str] = Field(default_factory=list)

    @property
    def trains(self) -> bool:
        """Whether the pass runs the trainer."""
        return self.schedule is not None or bool(self.fine_tune)

    @model_validator(mode="after")
    def _check_fine_tune(self) -> PrunePass:
        if self.schedule is not None and self.fine_tune is False:
            raise ValueError("a schedule prunes during fine-tuning: fine_tune cannot be false")
        if self.schedule is not None and self.schedule.initial_sparsity > self.sparsity:
            raise ValueError("schedule.initial_sparsity cannot exceed sparsity")
        return self


def check_achieved(config: PrunePass, achieved: float) -> None:
    """Fail when the measured sparsity of the targeted weights misses the request."""
    if achieved + SPARSITY_TOLERANCE < config.sparsity:
        raise ModelError(
            f"prune: achieved sparsity {achieved:.2%} of the targeted weights is below the "
            f"requested {config.sparsity:.2%} (tolerance {SPARSITY_TOLERANCE:.1%})"
        )


def plan_prune(config: PrunePass, layers: list[LayerInfo]) -> dict:
    """What the pass will touch: the matched layers and their nonzero weights after it."""
    chosen = resolve_targets(config.targets, config.ignore, layers, "prune")
    rows = [
        {
            "name": layer.name,
            "kind": layer.kind,
            "weights": layer.weights,
            "nonzero_after": layer.weights - round(config.sparsity * layer.weights),
        }
        for layer in chosen
    ]
    return {
        "layers": rows,
        "weights_before": sum(row["weights"] for row in rows),
        "nonzero_after": sum(row["nonzero_after"] for row in rows),
    }
