"""`prune` with `method: channel` for Keras 3 and tf-keras: remove whole channels and neurons,
returning a physically smaller Sequential or Functional model of the same Keras kind.

Flow: trace the coupling graph (channel_trace), pick the groups the targets allow, rank them
(channel_importance) and choose the channels (the neutral `choose_removed`); one-shot: rebuild
smaller at once, then fine-tune if asked; gradual: hold channel masks during `fit`, re-chosen on
the schedule, then rebuild. Either way the smaller model is checked against the masked one
(channel_verify) before it is returned.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from compress.backends.base import PassContext
from compress.backends.keras.channel_graph import ChannelGraph, Group
from compress.backends.keras.channel_importance import group_scores, output_kernel
from compress.backends.keras.channel_trace import trace, weight_name
from compress.backends.keras.channel_verify import masked_copy, verify
from compress.backends.keras.channel_weights import Keep, layer_values, rebuild
from compress.backends.keras.distillation import objective_for
from compress.backends.keras.environment import keras_api
from compress.backends.keras.pruning import fit_pruned
from compress.errors import ModelError
from compress.passes.channels import (
    CHECK_SPLITS,
    ChannelGroup,
    channel_record,
    choose_removed,
    left_whole_note,
    nothing_to_cut,
)
from compress.passes.masks import SparsityStepper
from compress.passes.prune import PrunePass, check_schedule_fits
from compress.passes.pruning import select
from compress.passes.targets import LayerInfo
from compress.samples import parity_samples

ENGINE = "compress"


def apply_channel_prune(model: Any, config: PrunePass, context: PassContext) -> tuple[Any, dict]:
    """Prune channels of a Keras model; returns the smaller model and the pass record."""
    graph = trace(model, is_sequential(model))
    groups, left_whole = prunable_groups(model, graph, config)
    if not groups:
        raise nothing_to_cut(left_whole)
    note = left_whole_note(left_whole)
    if note:
        context.reporter.note(note)
    chooser = Chooser(model, graph, groups, config, context)
    samples = parity_samples(context.recipe, context.data, splits=CHECK_SPLITS)
    if config.schedule is None:
        keep = chooser.choose(config.level)
        pruned = rebuild(model, graph, keep)
        verification = verify(masked_copy(model, graph, keep), pruned, graph, keep, groups, samples)
        training = _fit(pruned, config, context, []) if config.fine_tune else None
    else:
        masks = ChannelMasks(model, graph, chooser)
        training = _fit(model, config, context, [mask_callback(masks, config, context)])
        keep = chooser.keep
        pruned = rebuild(model, graph, keep)
        verification = verify(model, pruned, graph, keep, groups, samples)
    record = channel_record(
        config,
        chooser.records(),
        left_whole,
        verification,
        (int(model.count_params()), int(pruned.count_params())),
        chooser.stepper.updates,
        training,
        ENGINE,
    )
    return pruned, record


def is_sequential(model: Any) -> bool:
    """True for Sequential, False for Functional models; subclassed models cannot be rebuilt."""
    names = {cls.__name__ for cls in type(model).__mro__}
    if "Sequential" in names or "Functional" in names:
        return "Sequential" in names
    raise ModelError(
        f"prune: channel pruning rebuilds the model smaller from its config, and a subclassed "
        f"{type(model).__name__} has none: build it as a Functional model "
        "(keras.Model(inputs, outputs)) or a Sequential one"
    )


def prunable_groups(model: Any, graph: ChannelGraph, config: PrunePass) -> tuple[list, list]:
    """(the groups to prune, {group, why} for the targeted groups that must stay whole)."""
    producers = set(graph.owners)
    infos = [
        LayerInfo(
            name=layer.name,
            kind=type(layer).__name__,
            params=int(layer.count_params()),
            weights=int(np.prod(output_kernel(layer)[0].shape)) if layer.name in producers else 0,
            prunable=layer.name in producers,
        )
        for layer in model.layers
        if layer.weights
    ]
    selected = set(select(config, infos))
    named = selected if config.targets is not None else set()
    chosen, left_whole = [], []
    for group in graph.groups():
        if not selected.intersection(group.producers):
            continue
        reasons = list(group.reasons)
        if group.at_output and not named.issuperset(group.producers):
            reasons.append("reaches a model output (name its layers in targets to prune it)")
        missing = [name for name in group.producers if name not in selected]
        if missing:
            reasons.append(f"is coupled with {', '.join(missing)}, which the targets leave out")
        if reasons:
            left_whole.append({"group": group.name, "why": "; ".join(reasons)})
        else:
            chosen.append(group)
    return chosen, left_whole


class Chooser:
    """Ranks the groups and keeps the latest choice of removed channels."""

    def __init__(
        self,
        model: Any,
        graph: ChannelGraph,
        groups: list[Group],
        config: PrunePass,
        context: PassContext,
    ) -> None:
        self.model, self.graph, self.groups = model, graph, groups
        self.config, self.context = config, context
        self.stepper = SparsityStepper(config)
        self.removed: dict[str, list[int]] = {group.name: [] for group in groups}
        self.keep: Keep = {}
        self.noted = False

    def choose(self, sparsity: float) -> Keep:
        """Choose the channels to remove at `sparsity` from the current weights."""
        if self.config.schedule is None:
            self.stepper.record_one_shot()
        scores, fallback = group_scores(
            self.model, self.graph, self.groups, self.config, self.context
        )
        if fallback and not self.noted:
            self.noted = True
            self.context.reporter.note(
                f"prune: importance bn_scale ranked {len(fallback)} group(s) without a "
                f"BatchNormalization by l2 instead ({', '.join(fallback)})"
            )
        config = self.config
        levels = {g.name: config.level_at(g.name, sparsity) for g in self.groups}
        chosen = levels if config.per_layer else sparsity
        self.removed = choose_removed(scores, chosen, config.scope, config.round_to)
        self.keep = {
            group.id: np.setdiff1d(np.arange(group.size), self.removed[group.name])
            for group in self.groups
            if self.removed[group.name]
        }
        return self.keep

    def records(self) -> list[ChannelGroup]:
        return [
            ChannelGroup(g.name, g.layers, g.size, list(self.removed[g.name]), g.kind)
            for g in self.groups
        ]


class ChannelMasks:
    """Channel masks held on the full-size model during `fit` (gradual schedule): re-chosen on
    the schedule's sparsity steps and re-applied after every optimizer step."""

    def __init__(self, model: Any, graph: ChannelGraph, chooser: Chooser) -> None:
        self.model, self.graph, self.chooser = model, graph, chooser
        self.masks: list[tuple[Any, np.ndarray]] = []

    def on_train_begin(self, steps_per_epoch: int, total_steps: int) -> None:
        check_schedule_fits(self.chooser.config, steps_per_epoch, total_steps)
        sparsity = self.chooser.stepper.start(steps_per_epoch)
        if sparsity is not None:
            self.update(sparsity)

    def after_step(self, step: int) -> None:
        sparsity = self.chooser.stepper.after(step)
        if sparsity is None:
            self.apply()
        else:
            self.update(sparsity)

    def update(self, sparsity: float) -> None:
        keep = self.chooser.choose(sparsity)
        self.masks = []
        for name, entry in self.graph.layers.items():
            variables = self.model.get_layer(name).weights
            ones = [(weight_name(v), np.ones(tuple(v.shape), np.float32)) for v in variables]
            for variable, mask in zip(
                variables, layer_values(self.graph, entry, ones, keep, True), strict=True
            ):
                if not mask.all():
                    self.masks.append((variable, mask.astype(bool)))
        self.apply()

    def apply(self) -> None:
        """Write +0.0 where the masks are False."""
        for variable, mask in self.masks:
            values = np.asarray(variable.numpy())
            variable.assign(np.where(mask, values, np.zeros_like(values)))


def mask_callback(masks: ChannelMasks, config: PrunePass, context: PassContext) -> Any:
    """A `fit` callback that moves the channel masks with the optimizer steps."""
    api = keras_api(context.backend.name)
    training = context.training(config)
    per_epoch = math.ceil(len(training.split) / training.batch_size)

    class ChannelMaskCallback(api.callbacks.Callback):
        step = 0

        def on_train_begin(self, logs=None):
            masks.on_train_begin(per_epoch, per_epoch * training.spec.epochs)

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            masks.after_step(self.step)

        def on_train_end(self, logs=None):
            masks.apply()

    return ChannelMaskCallback()


def _fit(model: Any, config: PrunePass, context: PassContext, callbacks: list[Any]) -> dict:
    """Fine-tune with the recipe's trainer, distilling from the earlier teacher if any."""
    api: ModuleType = keras_api(context.backend.name)
    distillation = objective_for(model, context)
    return fit_pruned(api, model, config, context, callbacks, distillation, "channel pruning")
