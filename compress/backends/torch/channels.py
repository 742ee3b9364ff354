"""`prune` with `method: channel` for PyTorch: remove whole channels, neurons and attention heads.

Torch-Pruning's dependency graph finds the coupled groups and slices the modules; this module
decides what may be cut (targets, never the layers that produce the model's outputs), holds
channel masks during gradual pruning, and proves the cut: a masked copy (channels zeroed) and
the pruned model must agree on real samples, group by group, before the smaller model is kept.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from compress.backends.base import PassContext
from compress.backends.torch.attention_heads import attention_heads, fix_attention, fused_attention
from compress.backends.torch.channel_groups import Found, describe, head_ratios, mask
from compress.backends.torch.channel_importance import (
    IMPORTANCE,
    record_activations,
    taylor_gradients,
)
from compress.backends.torch.layers import module_layers
from compress.backends.torch.pruning import fine_tune
from compress.backends.torch.training import to_tensors
from compress.backends.torch.transposed_linear import conv1d_as_linear
from compress.errors import ModelError
from compress.passes.channel_pruning import Cut, run_channel_prune
from compress.passes.channels import CHECK_SPLITS, ChannelGroup, check_agreement
from compress.passes.lifecycle import TrainingHook
from compress.passes.prune import ChannelPrune
from compress.passes.pruning import select
from compress.samples import parity_samples

ROOTS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
#: Samples the masked and the pruned model are compared on (and the graph is traced with).
CHECK_SAMPLES = 4


class TorchChannels:
    """The channel groups of one model at a given sparsity, and the cut."""

    def __init__(self, model: nn.Module, config: ChannelPrune, context: PassContext) -> None:
        self.model = model
        self.config = config
        self.context = context
        samples = parity_samples(context.recipe, context.data, CHECK_SAMPLES, CHECK_SPLITS)
        self.examples = to_tensors(samples.arrays, context.recipe.model.inputs)
        self.origin = samples.origin
        self.targets = set(select(config, module_layers(model)))
        self.heads = attention_heads(model)
        self.left_whole: dict[str, str] = {}

    def ignored(self) -> list[nn.Module]:
        """Layers whose output channels stay: those not targeted, and the ones that produce
        the model's outputs (a classifier's classes) unless the recipe names them."""
        named = set(self.config.targets or ())
        names = self.names()
        outputs = [m for m in output_modules(self.model, self.examples) if names[m] not in named]
        others = [
            module
            for name, module in self.model.named_modules()
            if isinstance(module, ROOTS) and name not in self.targets
        ]
        for name, projection in fused_attention(self.model):
            self.left_whole[name] = (
                "a fused Q/K/V projection (GPT-2 style attention): its heads are not cut"
            )
            others.append(projection)
        return outputs + others

    def ratios(self, ramp: float) -> dict[nn.Module, float]:
        """The targeted layers whose level differs from the default (per-layer levels), at
        the schedule's `ramp`: the groups they produce are cut at that level."""
        default = self.config.default_at(ramp)
        return {
            module: level
            for name, module in self.model.named_modules()
            if name in self.targets and (level := self.config.level_at(name, ramp)) != default
        }

    def head_levels(self, ramp: float) -> dict[nn.Module, float]:
        """Each attention's level at the schedule's `ramp`, by its query projection's name."""
        names = self.names()
        return {query: self.config.level_at(names[query], ramp) for query in self.heads}

    def names(self) -> dict[nn.Module, str]:
        return {module: name for name, module in self.model.named_modules()}

    def walk(self, sparsity: float) -> Iterator[Found]:
        """The groups Torch-Pruning cuts at `sparsity`, one at a time. It computes a group's
        indices when it is reached, after the groups before it were cut (concat offsets and
        flattened inputs shift): cut each before asking for the next, or cut none."""
        if self.config.ranking == "taylor":
            taylor_gradients(self.model, self.config, self.context)
        was_training = self.model.training
        self.model.eval()
        with warnings.catch_warnings():  # its note on bare parameters: they are left whole
            warnings.filterwarnings("ignore", "Unwrapped parameters", UserWarning)
            pruner = tp.pruner.MetaPruner(
                self.model,
                tuple(self.examples),
                importance=IMPORTANCE[self.config.ranking](),
                global_pruning=self.config.scope == "global",
                pruning_ratio=self.config.default_at(sparsity),
                pruning_ratio_dict=self.ratios(sparsity),
                ignored_layers=self.ignored(),
                round_to=self.config.round_to,
                num_heads=dict(self.heads),
                prune_num_heads=bool(self.heads),
                prune_head_dims=False,
                head_pruning_ratio=self.config.default_at(sparsity),
                head_pruning_ratio_dict=head_ratios(self.heads, self.head_levels(sparsity)),
            )
        if self.config.ranking == "activation":
            record_activations(pruner.importance, self.model, self.config, self.context)
        names = self.names()
        try:
            for group in pruner.step(interactive=True):
                item = describe(group, pruner.DG, names, self.heads)
                if item.slices is None:
                    self.left_whole[item.summary.name] = item.why
                elif item.summary.removed:
                    yield item
        finally:
            self.model.train(was_training)
            self.model.zero_grad(set_to_none=True)

    def mask_at(self, sparsity: float) -> list[Found]:
        """Zero the channels the groups would remove at `sparsity` (gradual pruning)."""
        with conv1d_as_linear(self.model):
            found = list(self.walk(sparsity))
        for item in found:
            mask(self.model, item.slices or [])
        return found

    def cut(self, sparsity: float) -> tuple[list[ChannelGroup], dict]:
        """Remove the groups' channels one group at a time, each checked against a copy of the
        model with that group's channels zeroed; returns the groups cut and the verification
        figures (the worst group's)."""
        with conv1d_as_linear(self.model):
            return self._cut(sparsity)

    def _cut(self, sparsity: float) -> tuple[list[ChannelGroup], dict]:
        worst = {"max_abs_diff": 0.0, "tolerance": 0.0}
        cut = []
        for item in self.walk(sparsity):
            # the group's indices are those of the model as cut so far: mask a copy of it
            masked = copy.deepcopy(self.model).eval()
            mask(masked, item.slices or [])
            item.group.prune()
            fix_attention(self.model)
            self.model.eval()
            what = _group_name(item.summary)
            try:
                expected = outputs_of(masked, self.examples)
                actual = outputs_of(self.model, self.examples)
            except Exception as exc:  # a shape the graph mis-sliced fails here
                raise ModelError(
                    f"prune: the model fails to run after removing the channels of {what}: "
                    f"{type(exc).__name__}: {str(exc)[:160]}; leave the layer out with `ignore:`"
                ) from exc
            figures = check_agreement(expected, actual, what)
            worst = max(worst, figures, key=lambda f: f["max_abs_diff"])
            cut.append(item.summary)
        return cut, {**worst, "samples": self.origin}


def _group_name(group: ChannelGroup) -> str:
    return (
        f"the group of {group.name!r} ({len(group.layers)} layers: {', '.join(group.layers[:6])})"
    )


def output_modules(model: nn.Module, examples: list[torch.Tensor]) -> list[nn.Module]:
    """The modules whose output tensor is one of the model's outputs (a classifier's head,
    the last norm of an encoder); else the last module with weights that ran."""
    produced: dict[int, nn.Module] = {}
    order: list[nn.Module] = []

    def record(module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            produced[id(output)] = module
        if any(True for _ in module.parameters(recurse=False)):
            order.append(module)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            outputs = model(*examples)
    finally:
        for handle in handles:
            handle.remove()
    found = [produced[id(t)] for t in _tensors(outputs) if id(t) in produced]
    return found or order[-1:]


def _tensors(outputs: object) -> Iterator[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        yield outputs
    elif isinstance(outputs, dict):
        for value in outputs.values():
            yield from _tensors(value)
    elif isinstance(outputs, (list, tuple)):
        for value in outputs:
            yield from _tensors(value)


@torch.no_grad()
def outputs_of(model: nn.Module, examples: list[torch.Tensor]) -> list[np.ndarray]:
    return [t.detach().cpu().numpy() for t in _tensors(model(*examples))]


class TorchChannelAdapter:
    """The channel pruner's adapter (compress/passes/channel_pruning.py) over one torch model:
    Torch-Pruning's groups, zeroed or cut."""

    engine = f"torch-pruning {tp.__version__}"

    def __init__(self, model: nn.Module, config: ChannelPrune, context: PassContext) -> None:
        self.model, self.config, self.context = model, config, context
        self.channels = TorchChannels(model, config, context)
        self.found: list[Found] = []

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def left_whole(self) -> list[dict]:
        return [{"group": name, "why": why} for name, why in self.channels.left_whole.items()]

    def mask_at(self, sparsity: float) -> None:
        self.found = self.channels.mask_at(sparsity)

    def remask(self) -> None:
        for item in self.found:
            mask(self.model, item.slices or [])

    def cut(self, sparsity: float) -> Cut:
        groups, verification = self.channels.cut(sparsity)
        return Cut(groups, verification, chose=True)

    def fine_tune(self, hooks: list[TrainingHook]) -> dict:
        return fine_tune(self.model, self.config, self.context, hooks)


def apply_channel_prune(
    model: nn.Module, config: ChannelPrune, context: PassContext
) -> tuple[nn.Module, dict]:
    """Run a channel prune pass on a torch model (pruned in place); returns it and the record."""
    adapter = TorchChannelAdapter(model, config, context)
    return model, run_channel_prune(config, adapter, context.reporter.note)
