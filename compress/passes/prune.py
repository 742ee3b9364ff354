"""`type: prune`: one config class per algorithm, selected by `method` (magnitude, the default;
n:m; channel), one-shot or on a schedule over fine-tuning epochs.

This module holds the framework-neutral part: the configs, the sparsity schedule and the check
that the requested sparsity was reached. The flows that use them are `compress/passes/pruning.py`
(weights) and `compress/passes/channel_pruning.py` (channels); backends give them adapters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from compress.errors import ModelError, RecipeError
from compress.passes.backend_options import TfKerasPruneOptions
from compress.passes.base import PassConfig, PassRecord, RecipeView
from compress.passes.masks import magnitude_masks, n_m_mask
from compress.passes.targets import LayerInfo, Pattern, matches, resolve_targets
from compress.schema import StrictModel

#: A sparsity: the fraction of weights (channels) removed.
Level = Annotated[float, Field(ge=0.0, lt=1.0)]
#: A run misses its target when achieved sparsity is this far below the request (0.5 points).
SPARSITY_TOLERANCE = 0.005


class PruneSchedule(StrictModel):
    """How sparsity grows over fine-tuning: from `initial_sparsity` at the start to the pass's
    `sparsity` at the end (in epochs, or in optimizer steps), then held while training goes on."""

    kind: Literal["polynomial", "linear", "constant"] = "polynomial"
    start_epoch: int = Field(0, ge=0)
    end_epoch: int | None = Field(
        None, ge=1, description="polynomial/linear: end_epoch or end_step"
    )
    start_step: int | None = Field(None, ge=0, description="instead of start_epoch")
    end_step: int | None = Field(None, ge=1, description="instead of end_epoch")
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0)
    exponent: float = Field(3.0, gt=0.0, description="polynomial decay exponent")
    frequency: int | None = Field(
        None, ge=1, description="optimizer steps between mask updates; default ~10 per epoch"
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> PruneSchedule:
        in_steps = self.start_step is not None or self.end_step is not None
        if in_steps and (self.end_epoch is not None or self.start_epoch):
            raise ValueError("give the schedule in epochs or in steps, not both")
        if self.kind == "constant":
            return self
        start, end = (
            (self.start_step or 0, self.end_step)
            if in_steps
            else (self.start_epoch, self.end_epoch)
        )
        if end is None:
            raise ValueError(f"a {self.kind} schedule needs end_epoch (or end_step)")
        if end <= start:
            raise ValueError("the schedule must end after it starts")
        return self

    def begin_step(self, steps_per_epoch: int) -> int:
        if self.start_step is not None:
            return self.start_step
        return self.start_epoch * steps_per_epoch

    def end_step_for(self, steps_per_epoch: int) -> int:
        """The step at which the final sparsity is reached (the start for constant)."""
        if self.kind == "constant":
            return self.begin_step(steps_per_epoch)
        if self.end_step is not None:
            return self.end_step
        return (self.end_epoch or 0) * steps_per_epoch

    def sparsity_at(self, step: int, steps_per_epoch: int, final: float) -> float:
        """Sparsity to hold after `step` optimizer steps (step 0 = before training)."""
        begin = self.begin_step(steps_per_epoch)
        if step < begin:
            return 0.0
        if self.kind == "constant":
            return final
        end = self.end_step_for(steps_per_epoch)
        progress = min(1.0, (step - begin) / max(1, end - begin))
        exponent = 1.0 if self.kind == "linear" else self.exponent
        return final + (self.initial_sparsity - final) * (1.0 - progress) ** exponent

    def update_every(self, steps_per_epoch: int) -> int:
        """Steps between mask updates, derived from the epoch length unless given."""
        return self.frequency or max(1, math.ceil(steps_per_epoch / 10))


#: Per-layer levels a pass may list (a model's layer count, not a data file's worth).
MAX_OVERRIDES = 10_000


class LayerLevels(StrictModel):
    """Per-layer sparsity: `default` for every targeted layer (channel pruning: group), and
    `overrides` by layer name or `re:` regex (the first match wins)."""

    default: Level
    overrides: dict[Pattern, Level] = Field(default_factory=dict, max_length=MAX_OVERRIDES)

    def overridden(self, name: str) -> bool:
        return any(matches(pattern, name) for pattern in self.overrides)

    def of(self, name: str) -> float:
        return next(
            (value for pattern, value in self.overrides.items() if matches(pattern, name)),
            self.default,
        )


def _levels_kind(value: object) -> str:
    return "<per-layer>" if isinstance(value, dict | LayerLevels) else "<level>"


#: One level for every layer, or per-layer levels (validated by the value's shape, so that an
#: error names the one that was meant; tags in <> are left out of error locations).
Levels = Annotated[
    Annotated[float, Field(ge=0.0, lt=1.0), Tag("<level>")]
    | Annotated[LayerLevels, Tag("<per-layer>")],
    Discriminator(_levels_kind),
]


class PruneRecord(PassRecord):
    """What a prune pass did (Keras adds `engine`; training holds `steps`, `final_loss`;
    per-layer levels add `allocation` and `levels`)."""

    method: str
    scope: str
    schedule: str
    target_sparsity: float
    achieved_sparsity: float
    mask_updates: int
    layers: dict[str, float]
    training: dict | None


class PruneBase(PassConfig):
    """What every pruning algorithm shares: levels, their allocation, schedule, targets."""

    record = PruneRecord
    sparsifies = True
    selectors = ("method",)

    type: Literal["prune"] = "prune"
    sparsity: Levels = Field(
        ...,
        description="fraction of the targeted weights set to zero; or per layer: "
        "{default: 0.8, overrides: {conv1: 0.3}}",
    )
    allocation: Literal["uniform", "sensitivity"] = Field(
        "uniform",
        description="sensitivity: `sparsity` is the overall target and each layer gets its "
        "own level from a one-shot sensitivity scan on val (see compress analyze)",
    )
    scope: Literal["layer", "global"] = Field(
        "layer", description="layer: each layer reaches the sparsity; global: one threshold"
    )
    schedule: PruneSchedule | None = Field(None, description="omitted = one-shot")
    fine_tune: bool | None = Field(
        None, description="train with masks held; default: true with a schedule, else false"
    )
    targets: list[Pattern] | None = Field(
        None, description="layer names or `re:` regexes; omitted = every prunable layer"
    )
    ignore: list[Pattern] = Field(default_factory=list)

    @property
    def override_patterns(self) -> list[str]:
        """The per-layer level keys (`sparsity.overrides`): each must match a chosen layer."""
        return list(self.sparsity.overrides) if isinstance(self.sparsity, LayerLevels) else []

    def chosen_layers(self, layers: list[LayerInfo]) -> list[LayerInfo]:
        """The layers the pass works on (TargetError names the recipe field that fails)."""
        return resolve_targets(self.targets, self.ignore, layers, self.type, self.override_patterns)

    @property
    def trains(self) -> bool:
        return self.schedule is not None or bool(self.fine_tune)

    @property
    def level(self) -> float:
        """The highest per-layer level: what a schedule ramps to (every layer in proportion)
        and the only level of a uniform pass."""
        if isinstance(self.sparsity, LayerLevels):
            return max(self.sparsity.default, *self.sparsity.overrides.values())
        return self.sparsity

    @property
    def target(self) -> float:
        """The overall level asked: the sparsity, or the `default` of per-layer levels."""
        return self.sparsity.default if isinstance(self.sparsity, LayerLevels) else self.sparsity

    @property
    def per_layer(self) -> bool:
        return isinstance(self.sparsity, LayerLevels)

    def level_of(self, name: str) -> float:
        """The final sparsity of one layer (or channel group)."""
        return self.sparsity.of(name) if isinstance(self.sparsity, LayerLevels) else self.sparsity

    def default_at(self, ramp: float) -> float:
        """The default level when the schedule has ramped to `ramp` of `level`."""
        return self.target if ramp >= self.level else self.target * ramp / self.level

    def level_at(self, name: str, ramp: float) -> float:
        """A layer's sparsity when the schedule has ramped to `ramp` of `level`."""
        final = self.level_of(name)
        return final if ramp >= self.level else final * ramp / self.level

    @property
    def allocates(self) -> bool:
        """Whether the pipeline must scan sensitivity to give each layer its level first."""
        return self.allocation == "sensitivity"

    @property
    def session_refusal(self) -> str | None:
        if self.allocates:
            return "sensitivity allocation scans the exported baseline before the pass runs"
        return None

    def schedule_end(self, steps_per_epoch: int) -> int | None:
        return None if self.schedule is None else self.schedule.end_step_for(steps_per_epoch)

    def plan(self, layers: list[LayerInfo]) -> dict:
        return plan_prune(self, layers)

    def apply_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        """The built-in trainer runs train.epochs: the schedule must end within them."""
        end = self.schedule.end_epoch if self.schedule else None
        if recipe.train is None or not end or end <= recipe.train.epochs:
            return []
        return [
            recipe.error_at(
                ("passes", index, "schedule", "end_epoch"),
                f"end_epoch {end} is after the last training epoch "
                f"(train.epochs = {recipe.train.epochs})",
            )
        ]

    def check_shapes(self, shapes: Mapping[str, tuple[int, ...]], axis: Mapping[str, int]) -> None:
        """Fail before pruning when a targeted weight cannot take the algorithm."""

    def pattern(self) -> tuple[int, int] | None:
        """(n, m) when the weights keep n of every m along their inputs, else None."""
        return None

    def compute_masks(
        self, weights: Mapping[str, np.ndarray], sparsity: float, axis: Mapping[str, int]
    ) -> dict[str, np.ndarray]:
        """The masks (True keeps a weight) when the schedule stands at `sparsity`, each layer
        at its own level in proportion."""
        if self.scope == "global":
            return magnitude_masks(weights, sparsity, self.scope)
        levels = {name: self.level_at(name, sparsity) for name in weights}
        return magnitude_masks(weights, levels, self.scope)

    @model_validator(mode="after")
    def _per_layer_scope(self) -> PruneBase:
        if (self.per_layer or self.allocates) and self.scope == "global":
            raise ValueError("scope global ranks all layers together: no per-layer levels")
        return self

    @model_validator(mode="after")
    def _schedule_trains(self) -> PruneBase:
        if self.schedule is not None and self.fine_tune is False:
            raise ValueError("a schedule prunes during fine-tuning: fine_tune cannot be false")
        return self

    @model_validator(mode="after")
    def _schedule_start(self) -> PruneBase:
        if self.schedule is not None and self.schedule.initial_sparsity > self.level:
            raise ValueError("schedule.initial_sparsity cannot exceed sparsity")
        return self


class MagnitudePrune(TfKerasPruneOptions, PruneBase):
    """Zero the smallest-magnitude weights of the targeted layers (unstructured: the file
    shrinks under gzip, the latency does not)."""

    method: Literal["magnitude"] = Field(
        "magnitude", description="magnitude (the default) | n:m | channel"
    )


class NMPrune(TfKerasPruneOptions, PruneBase):
    """Keep the n largest of every m consecutive input weights (2:4 by default): the pattern
    sparse tensor cores run; the sparsity is fixed at 1 - n/m."""

    no_scan = "n:m pruning has one fixed level: nothing to scan"

    method: Literal["n:m"]
    sparsity: Levels = Field(..., description="1 - n/m, filled in when omitted")
    n: int = Field(2, ge=1, description="weights kept per group")
    m: int = Field(4, ge=2, description="group size along the input channels")

    def pattern(self) -> tuple[int, int] | None:
        return (self.n, self.m)

    def check_shapes(self, shapes: Mapping[str, tuple[int, ...]], axis: Mapping[str, int]) -> None:
        """n:m groups run along the input channels, whose count must be a multiple of m."""
        for name, shape in shapes.items():
            channels = shape[axis[name]]
            if channels % self.m:
                raise ModelError(
                    f"prune: layer {name!r} has {channels} input channel(s), not a multiple of "
                    f"{self.m}: {self.n}:{self.m} pruning cannot take it (add it to ignore)"
                )

    def compute_masks(
        self, weights: Mapping[str, np.ndarray], sparsity: float, axis: Mapping[str, int]
    ) -> dict[str, np.ndarray]:
        return {name: n_m_mask(w, self.n, self.m, axis[name]) for name, w in weights.items()}

    @model_validator(mode="before")
    @classmethod
    def _fixed_sparsity(cls, data: object) -> object:
        """n:m fixes the sparsity: fill it in when omitted."""
        if isinstance(data, dict) and "sparsity" not in data:
            n, m = data.get("n", 2), data.get("m", 4)
            if isinstance(n, int) and isinstance(m, int) and m > 0:
                return {**data, "sparsity": 1 - n / m}
        return data

    @model_validator(mode="after")
    def _one_level(self) -> NMPrune:
        if self.per_layer or self.allocates:
            raise ValueError("n:m pruning has one fixed sparsity: no per-layer levels")
        if self.n >= self.m:
            raise ValueError("n:m pruning needs n < m")
        if abs(self.sparsity - (1 - self.n / self.m)) > 1e-9:
            raise ValueError(f"{self.n}:{self.m} pruning means sparsity {1 - self.n / self.m}")
        return self

    @model_validator(mode="after")
    def _constant_schedule(self) -> NMPrune:
        if self.schedule is not None and self.schedule.kind != "constant":
            raise ValueError("n:m pruning takes no gradual schedule (use kind: constant)")
        if self.scope == "global":
            raise ValueError("n:m pruning is per group of weights: scope cannot be global")
        return self


class ChannelPrune(PruneBase):
    """Remove whole channels, neurons and attention heads of the targeted layers (with every
    layer coupled to them): a smaller model, faster on any runtime."""

    method: Literal["channel"]
    sparsity: Levels = Field(
        ...,
        description="fraction of the channels/neurons/heads removed from each targeted group; "
        "or per group: {default: 0.5, overrides: {conv1: 0.3}}",
    )
    importance: Literal["l1", "l2", "bn_scale", "taylor", "activation"] | None = Field(
        None,
        description="how channels are ranked (default l2); taylor needs labelled train data, "
        "activation (mean |activation|, Minitron's) any data",
    )
    round_to: int | None = Field(
        None, ge=1, description="keep a multiple of this many channels per group"
    )

    @property
    def ranking(self) -> str:
        """The channel importance in use (l2 unless the recipe says)."""
        return self.importance or "l2"

    @property
    def splits(self) -> tuple[str, ...]:
        """Taylor importance needs gradients of the training loss, so it reads train data;
        activation importance runs the model on train (else calibration) inputs."""
        if self.trains or self.ranking == "taylor":
            return ("train",)
        return ("train", "calibration") if self.ranking == "activation" else ()

    @property
    def reshapes(self) -> bool:
        return True

    @property
    def session_refusal(self) -> str | None:
        return (
            "channel pruning replaces the model by a smaller one, which a loop holding the "
            "model and its optimizer cannot follow"
        )

    def plan(self, layers: list[LayerInfo]) -> dict:
        """The targets resolved; the cut itself is counted by `planned_model`."""
        chosen = self.chosen_layers(layers)
        return {"targets": [layer.name for layer in chosen], "importance": self.ranking}

    def planned_model(self, backend: Any, model: Any, context: Any) -> tuple[Any, dict]:
        """The cut made on a copy, one-shot and without fine-tuning: how many channels each
        group keeps depends on its size, the level and round_to, not on the ranking, so the
        copy ranks by weight magnitude (l2) and needs no data or gradients."""
        counted = self.model_copy(update={"schedule": None, "fine_tune": False, "importance": "l2"})
        return backend.apply_pass(backend.copy(model), counted, context)

    def recipe_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        """Taylor importance takes gradients of the recipe's loss on train data; activation
        importance runs the model on data."""
        if self.trains:
            return []
        if self.ranking == "taylor" and (recipe.train is None or recipe.data is None):
            message = (
                "importance taylor ranks channels by gradients of the training loss: "
                "the recipe needs train and data sections"
            )
        elif self.ranking == "activation" and recipe.data is None:
            message = "importance activation ranks channels on data: add a data section"
        else:
            return []
        return [recipe.error_at(("passes", index, "importance"), message)]


#: Every pruning algorithm, for the registry.
PRUNE_PASSES: tuple[type[PruneBase], ...] = (MagnitudePrune, NMPrune, ChannelPrune)


def check_schedule_fits(config: PruneBase, steps_per_epoch: int, total_steps: int) -> None:
    """Fail before training when the schedule would end after the last training step."""
    if config.schedule is None:
        return
    end = config.schedule.end_step_for(steps_per_epoch)
    if end > total_steps:
        raise ModelError(
            f"prune: the schedule reaches its final sparsity at step {end}, but training runs "
            f"{total_steps} steps ({steps_per_epoch} per epoch): raise train.epochs or end earlier"
        )


def expected_sparsity(config: PruneBase, sizes: dict[str, int]) -> float:
    """The overall sparsity the per-layer levels ask of weights of these sizes."""
    total = sum(sizes.values())
    asked = sum(config.level_of(name) * size for name, size in sizes.items())
    return config.target if total == 0 else asked / total


def check_achieved(config: PruneBase, achieved: float, expected: float | None = None) -> None:
    """Fail when the measured sparsity of the targeted weights misses the request (`expected`:
    the overall level per-layer levels ask, else the sparsity)."""
    asked = config.target if expected is None else expected
    if achieved + SPARSITY_TOLERANCE < asked:
        raise ModelError(
            f"prune: achieved sparsity {achieved:.2%} of the targeted weights is below the "
            f"requested {asked:.2%} (tolerance {SPARSITY_TOLERANCE:.1%})"
        )


def plan_prune(config: PruneBase, layers: list[LayerInfo]) -> dict:
    """What the pass will touch: the matched layers and their nonzero weights after it."""
    chosen = config.chosen_layers(layers)
    rows = [
        {
            "name": layer.name,
            "kind": layer.kind,
            "weights": layer.weights,
            "nonzero_after": layer.weights - round(config.level_of(layer.name) * layer.weights),
        }
        for layer in chosen
    ]
    plan = {
        "layers": rows,
        "weights_before": sum(row["weights"] for row in rows),
        "nonzero_after": sum(row["nonzero_after"] for row in rows),
    }
    if config.allocates:  # the levels shown are the target's: the scan picks them at run time
        plan["allocation"] = "sensitivity (per-layer levels chosen when the pass runs)"
    return plan


def levels_record(config: PruneBase, names: list[str]) -> dict:
    """How the levels were set and, when they differ by layer, each layer's level."""
    if not config.per_layer:
        return {"allocation": "uniform"}
    how = "sensitivity" if config.allocates else "explicit"
    return {"allocation": how, "levels": {name: config.level_of(name) for name in names}}


def prune_record(
    config: PruneBase,
    achieved: float,
    per_layer: dict[str, float],
    mask_updates: int,
    training: dict | None,
    target: float,
) -> dict:
    """What a prune pass did, for the report (the same keys for every backend); `target` is
    the overall level asked (`expected_sparsity`)."""
    return {
        "method": config.method,
        "scope": config.scope,
        "schedule": config.schedule.kind if config.schedule else "one-shot",
        "target_sparsity": round(target, 6),
        "achieved_sparsity": round(achieved, 6),
        "mask_updates": mask_updates,
        "layers": {name: round(value, 6) for name, value in per_layer.items()},
        "training": training,
        **levels_record(config, list(per_layer)),
    }
