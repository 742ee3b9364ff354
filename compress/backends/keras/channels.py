"""`prune` with `method: channel` for Keras 3 and tf-keras: remove whole channels and neurons,
returning a physically smaller Sequential or Functional model of the same Keras kind.

The flow is the neutral channel pruner's (compress/passes/channel_pruning.py); this module is
its Keras adapter: trace the coupling graph (channel_trace), pick the groups the targets allow,
rank them (channel_importance) and choose the channels (the neutral `choose_removed`), hold
channel masks during `fit`, and rebuild the model smaller, checked against the masked one
(channel_verify) before it is returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends.base import PassContext
from compress.backends.keras.channel_graph import ChannelGraph, Group
from compress.backends.keras.channel_importance import group_scores, output_kernel
from compress.backends.keras.channel_trace import trace, weight_name
from compress.backends.keras.channel_verify import masked_copy, verify
from compress.backends.keras.channel_weights import Keep, layer_values, rebuild
from compress.backends.keras.pruning import fit_pruned
from compress.errors import ModelError
from compress.passes.channel_pruning import Cut, run_channel_prune
from compress.passes.channels import CHECK_SPLITS, ChannelGroup, choose_removed, nothing_to_cut
from compress.passes.lifecycle import TrainingHook
from compress.passes.prune import ChannelPrune
from compress.passes.pruning import select
from compress.passes.targets import LayerInfo
from compress.samples import parity_samples

ENGINE = "compress"


def apply_channel_prune(model: Any, config: ChannelPrune, context: PassContext) -> tuple[Any, dict]:
    """Prune channels of a Keras model; returns the smaller model and the pass record."""
    adapter = KerasChannelAdapter(model, config, context)
    record = run_channel_prune(config, adapter, context.reporter.note)
    return adapter.model, record


class KerasChannelAdapter:
    """The channel pruner's adapter over one Keras model: the toolkit's own coupling graph,
    masks on the full-size model, and a smaller rebuilt model as the cut."""

    engine = ENGINE

    def __init__(self, model: Any, config: ChannelPrune, context: PassContext) -> None:
        self.model, self.config, self.context = model, config, context
        self.graph = trace(model, is_sequential(model))
        self.groups, self._left_whole = prunable_groups(model, self.graph, config)
        if not self.groups:
            raise nothing_to_cut(self._left_whole)
        self.chooser = Chooser(model, self.graph, self.groups, config, context)
        self.masks = ChannelMasks(model, self.graph, self.chooser)
        self.samples = parity_samples(context.recipe, context.data, splits=CHECK_SPLITS)

    def params(self) -> int:
        return int(self.model.count_params())

    def left_whole(self) -> list[dict]:
        return list(self._left_whole)

    def mask_at(self, sparsity: float) -> None:
        self.masks.update(sparsity)

    def remask(self) -> None:
        self.masks.apply()

    def cut(self, sparsity: float) -> Cut:
        """Rebuild smaller; the reference is the model as masked by the schedule's last choice
        when it stands at `sparsity`, else a masked copy at a fresh choice."""
        chose = self.chooser.chosen_at != sparsity
        if chose:
            keep = self.chooser.choose(sparsity)
            reference = masked_copy(self.model, self.graph, keep)
        else:
            keep, reference = self.chooser.keep, self.model
        pruned = rebuild(self.model, self.graph, keep)
        verification = verify(reference, pruned, self.graph, keep, self.groups, self.samples)
        self.model = pruned
        return Cut(self.chooser.records(), verification, chose)

    def fine_tune(self, hooks: list[TrainingHook]) -> dict:
        return fit_pruned(self.model, self.config, self.context, [], hooks, "channel pruning")


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


def prunable_groups(model: Any, graph: ChannelGraph, config: ChannelPrune) -> tuple[list, list]:
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
        config: ChannelPrune,
        context: PassContext,
    ) -> None:
        self.model, self.graph, self.groups = model, graph, groups
        self.config, self.context = config, context
        self.removed: dict[str, list[int]] = {group.name: [] for group in groups}
        self.keep: Keep = {}
        self.chosen_at: float | None = None
        self.noted = False

    def choose(self, sparsity: float) -> Keep:
        """Choose the channels to remove at `sparsity` from the current weights."""
        self.chosen_at = sparsity
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
