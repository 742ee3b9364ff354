"""`type: prune`: magnitude pruning, one-shot or on a schedule over fine-tuning epochs.

This module holds the framework-neutral part: the config, the sparsity schedule and the check
that the requested sparsity was reached. The flow that uses them is `compress/passes/pruning.py`;
backends give it only adapters.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from compress.errors import ModelError
from compress.passes.base import PassConfig, PassRecord
from compress.passes.targets import LayerInfo, matches, resolve_targets
from compress.schema import StrictModel

if TYPE_CHECKING:
    from compress.errors import RecipeError
    from compress.recipe import Recipe

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


class LayerLevels(StrictModel):
    """Per-layer sparsity: `default` for every targeted layer (channel pruning: group), and
    `overrides` by layer name or `re:` regex (the first match wins)."""

    default: Level
    overrides: dict[str, Level] = Field(default_factory=dict)

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


class PrunePass(PassConfig):
    """Zero the smallest-magnitude weights of the targeted layers."""

    record = PruneRecord
    sparsifies = True

    type: Literal["prune"] = "prune"
    method: Literal["magnitude", "n:m", "channel"] = Field(
        "magnitude",
        description="magnitude: unstructured; n:m: keep n of every m input weights; "
        "channel: remove whole channels, neurons and attention heads (a smaller, faster model)",
    )
    sparsity: Levels = Field(
        ...,
        description="fraction of weights set to zero (n:m: 1 - n/m); channel: fraction of the "
        "channels/neurons/heads removed from each targeted group; or per layer: "
        "{default: 0.8, overrides: {conv1: 0.3}}",
    )
    allocation: Literal["uniform", "sensitivity"] = Field(
        "uniform",
        description="sensitivity: `sparsity` is the overall target and each layer gets its "
        "own level from a one-shot sensitivity scan on val (see compress analyze)",
    )
    importance: Literal["l1", "l2", "bn_scale", "taylor", "activation"] | None = Field(
        None,
        description="channel only: how channels are ranked (default l2); taylor needs "
        "labelled train data, activation (mean |activation|, Minitron's) any data",
    )
    round_to: int | None = Field(
        None, ge=1, description="channel only: keep a multiple of this many channels per group"
    )
    n: int = Field(2, ge=1, description="n:m only: weights kept per group")
    m: int = Field(4, ge=2, description="n:m only: group size along the input channels")
    scope: Literal["layer", "global"] = Field(
        "layer", description="layer: each layer reaches the sparsity; global: one threshold"
    )
    schedule: PruneSchedule | None = Field(None, description="omitted = one-shot")
    engine: Literal["auto", "native", "tfmot"] = Field(
        "auto", description="tf-keras only: auto/tfmot prune with tfmot, native with own masks"
    )
    fine_tune: bool | None = Field(
        None, description="train with masks held; default: true with a schedule, else false"
    )
    targets: list[str] | None = Field(
        None, description="layer names or `re:` regexes; omitted = every prunable layer"
    )
    ignore: list[str] = Field(default_factory=list)

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
    def splits(self) -> tuple[str, ...]:
        """Taylor importance needs gradients of the training loss, so it reads train data;
        activation importance runs the model on train (else calibration) inputs."""
        if self.trains or self.ranking == "taylor":
            return ("train",)
        return ("train", "calibration") if self.ranking == "activation" else ()

    @property
    def reshapes(self) -> bool:
        return self.method == "channel"

    @property
    def ranking(self) -> str:
        """The channel importance in use (l2 unless the recipe says)."""
        return self.importance or "l2"

    @property
    def in_session(self) -> bool:
        """Channel pruning replaces the model by a smaller one: a user's loop holding the
        model and its optimizer cannot follow, so it runs with `compress apply` only; so does
        sensitivity allocation, which scans the exported baseline."""
        return self.method != "channel" and self.allocation == "uniform"

    @property
    def allocates(self) -> bool:
        """Whether the pipeline must scan sensitivity to give each layer its level first."""
        return self.allocation == "sensitivity"

    def plan(self, layers: list[LayerInfo]) -> dict:
        return plan_prune(self, layers)

    def recipe_problems(self, recipe: Recipe, index: int) -> list[RecipeError]:
        """Taylor importance takes gradients of the recipe's loss on train data; activation
        importance runs the model on data."""
        if self.method != "channel" or self.trains:
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

    def apply_problems(self, recipe: Recipe, index: int) -> list[RecipeError]:
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

    @model_validator(mode="before")
    @classmethod
    def _n_m_sparsity(cls, data: object) -> object:
        """n:m fixes the sparsity: fill it in when omitted."""
        if isinstance(data, dict) and data.get("method") == "n:m" and "sparsity" not in data:
            n, m = data.get("n", 2), data.get("m", 4)
            if isinstance(n, int) and isinstance(m, int) and m > 0:
                return {**data, "sparsity": 1 - n / m}
        return data

    @model_validator(mode="after")
    def _check_fine_tune(self) -> PrunePass:
        if self.per_layer or self.allocation == "sensitivity":
            if self.method == "n:m":
                raise ValueError("n:m pruning has one fixed sparsity: no per-layer levels")
            if self.scope == "global":
                raise ValueError("scope global ranks all layers together: no per-layer levels")
        if self.method == "n:m":
            if self.n >= self.m:
                raise ValueError("n:m pruning needs n < m")
            if abs(self.sparsity - (1 - self.n / self.m)) > 1e-9:
                raise ValueError(f"{self.n}:{self.m} pruning means sparsity {1 - self.n / self.m}")
            if self.schedule is not None and self.schedule.kind != "constant":
                raise ValueError("n:m pruning takes no gradual schedule (use kind: constant)")
            if self.scope == "global":
                raise ValueError("n:m pruning is per group of weights: scope cannot be global")
        if self.method != "channel":
            for name in ("importance", "round_to"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to method: channel only")
        elif self.engine == "tfmot":
            raise ValueError("tfmot has no channel pruning: use engine auto or native")
        if self.schedule is not None and self.fine_tune is False:
            raise ValueError("a schedule prunes during fine-tuning: fine_tune cannot be false")
        if self.schedule is not None and self.schedule.initial_sparsity > self.level:
            raise ValueError("schedule.initial_sparsity cannot exceed sparsity")
        return self


def check_schedule_fits(config: PrunePass, steps_per_epoch: int, total_steps: int) -> None:
    """Fail before training when the schedule would end after the last training step."""
    if config.schedule is None:
        return
    end = config.schedule.end_step_for(steps_per_epoch)
    if end > total_steps:
        raise ModelError(
            f"prune: the schedule reaches its final sparsity at step {end}, but training runs "
            f"{total_steps} steps ({steps_per_epoch} per epoch): raise train.epochs or end earlier"
        )


def expected_sparsity(config: PrunePass, sizes: dict[str, int]) -> float:
    """The overall sparsity the per-layer levels ask of weights of these sizes."""
    total = sum(sizes.values())
    asked = sum(config.level_of(name) * size for name, size in sizes.items())
    return config.target if total == 0 else asked / total


def check_achieved(config: PrunePass, achieved: float, expected: float | None = None) -> None:
    """Fail when the measured sparsity of the targeted weights misses the request (`expected`:
    the overall level per-layer levels ask, else the sparsity)."""
    asked = config.target if expected is None else expected
    if achieved + SPARSITY_TOLERANCE < asked:
        raise ModelError(
            f"prune: achieved sparsity {achieved:.2%} of the targeted weights is below the "
            f"requested {asked:.2%} (tolerance {SPARSITY_TOLERANCE:.1%})"
        )


def plan_prune(config: PrunePass, layers: list[LayerInfo]) -> dict:
    """What the pass will touch: the matched layers and their nonzero weights after it. For
    channel pruning an estimate: each layer's own output channels cut by `sparsity` (the
    coupled groups, known only when the pass runs, also cut inputs and leave some whole)."""
    chosen = resolve_targets(config.targets, config.ignore, layers, config.type)
    rows = [
        {
            "name": layer.name,
            "kind": layer.kind,
            "weights": layer.weights,
            "nonzero_after": layer.weights - round(config.level_of(layer.name) * layer.weights),
            **({"estimate": True} if config.method == "channel" else {}),
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


def levels_record(config: PrunePass, names: list[str]) -> dict:
    """How the levels were set and, when they differ by layer, each layer's level."""
    if not config.per_layer:
        return {"allocation": "uniform"}
    how = "sensitivity" if config.allocates else "explicit"
    return {"allocation": how, "levels": {name: config.level_of(name) for name in names}}


def prune_record(
    config: PrunePass,
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
