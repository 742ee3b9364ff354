"""Coupled channel groups of a PyTorch model, from Torch-Pruning's dependency graph (DepGraph).

Torch-Pruning finds what is coupled (residual adds, concat/split offsets, depthwise convs, norm
layers, flatten -> Linear, attention heads) and slices the modules. This module turns its groups
into the neutral `ChannelGroup`s of the record and into the slices a *masked* copy zeroes, so
the pass can prove that the pruned model computes what the masked one does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from compress.backends.torch.layers import is_transposed_linear
from compress.passes.channels import ChannelGroup, kept_count

NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
#: Norms whose statistics span the channels (BatchNorm and InstanceNorm are per channel).
STATISTICS_NORMS = (nn.LayerNorm, nn.GroupNorm)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass(frozen=True)
class Slice:
    """Channels `index` of module `module`: its outputs (`output`) or its inputs."""

    module: str
    output: bool
    index: tuple[int, ...]


@dataclass
class Found:
    """A Torch-Pruning group, what it removes, and how to mask it (None: it cannot be)."""

    group: tp.dependency.Group
    summary: ChannelGroup
    slices: list[Slice] | None
    why: str = ""


def describe(
    group: tp.dependency.Group,
    graph: tp.DependencyGraph,
    names: dict[nn.Module, str],
    heads: dict[nn.Module, int],
) -> Found:
    """The neutral summary of a group and the slices that mask it."""
    root_dep, root_index = group[0].dep, group[0].idxs
    root = root_dep.target.module
    is_out = graph.is_out_channel_pruning_fn(root_dep.handler)
    size = graph.get_out_channels(root) if is_out else graph.get_in_channels(root)
    slices: list[Slice] = []
    why = ""
    layers: list[str] = []
    for item in group:
        module = item.dep.target.module
        if not isinstance(module, nn.Module) or not any(True for _ in module.parameters(False)):
            if item.dep.target.type == tp.ops.OPTYPE.PARAMETER:
                why = why or f"a bare parameter ({graph._param_to_name.get(module, '?')})"
            continue  # Torch-Pruning's own graph ops (add, concat, reshape): no weights
        name = names.get(module, type(module).__name__)
        if name not in layers:
            layers.append(name)
        output = graph.is_out_channel_pruning_fn(item.dep.handler)
        if isinstance(module, STATISTICS_NORMS):
            why = why or (
                f"{name} ({type(module).__name__}) normalizes over these channels: removing some "
                "changes the statistics of the others, which no masking reproduces"
            )
        if not maskable(module, output):
            why = why or f"{name} ({type(module).__name__}) cannot be masked to verify the cut"
        slices.append(Slice(name, output, tuple(int(i) for i in item.idxs)))
    size, removed = int(size or len(root_index)), sorted(int(i) for i in root_index)
    projections = [  # a head group cuts the projections' outputs (a hidden-size one, inputs)
        item.dep.target.module
        for item in group
        if item.dep.target.module in heads and graph.is_out_channel_pruning_fn(item.dep.handler)
    ]
    query = next((m for m in projections if names.get(m, "").endswith(("query", "q_proj"))), None)
    query = query or next(iter(projections), None)
    if query is not None:  # counted in heads, named after the query projection
        width = size // heads[query]
        size, removed, root = heads[query], sorted({i // width for i in removed}), query
    if query is None:  # named after its first layer in model order (the stem of a residual)
        order = {module: index for index, module in enumerate(names)}
        root = min((m for m in _modules(group) if m in order), key=order.get, default=root)
    summary = ChannelGroup(
        name=names.get(root, type(root).__name__),
        layers=layers,
        size=size,
        removed=removed,
        kind="heads" if query is not None else _kind(root),
    )
    return Found(group, summary, None if why else slices, why)


def _modules(group: tp.dependency.Group) -> list:
    return [item.dep.target.module for item in group]


def head_ratios(
    heads: dict[nn.Module, int], levels: dict[nn.Module, float]
) -> dict[nn.Module, float]:
    """Per-attention head ratios for Torch-Pruning, which removes ceil(ratio * heads): chosen
    so that floor(level * heads) go, the rounding of every other group (`levels`: each
    attention's level, by its query projection)."""
    ratios = {}
    for query, count in heads.items():
        removed = kept_removed(count, levels[query])
        ratios[query] = (removed - 0.5) / count if removed else 0.0
    return ratios


def kept_removed(size: int, sparsity: float) -> int:
    return size - kept_count(size, sparsity)


def _kind(root: nn.Module) -> str:
    return "neurons" if isinstance(root, nn.Linear) or is_transposed_linear(root) else "channels"


def maskable(module: nn.Module, output: bool) -> bool:
    """Whether `mask` knows how to zero this module's side of a group."""
    if isinstance(module, CONVS):
        return output or module.groups == 1 or module.groups == module.in_channels
    return isinstance(module, (nn.Linear, *TRANSPOSED_CONVS, *NORMS, nn.Embedding)) or (
        is_transposed_linear(module)
    )


@torch.no_grad()
def mask(model: nn.Module, slices: list[Slice]) -> None:
    """Zero the group's channels wherever they live (producers' output rows and biases, norm
    scales and shifts, consumers' input columns), so that the masked model computes what the
    model with those channels removed does."""
    modules = dict(model.named_modules())
    for part in slices:
        module, index = modules[part.module], list(part.index)
        weight = getattr(module, "weight", None)
        bias = getattr(module, "bias", None)
        axis = _weight_axis(module, part.output)
        if weight is not None and axis is not None:
            weight.index_fill_(axis, torch.tensor(index, device=weight.device), 0.0)
        if bias is not None and (part.output or (axis == 0 and not _transposed(module))):
            bias.index_fill_(0, torch.tensor(index, device=bias.device), 0.0)


def _weight_axis(module: nn.Module, output: bool) -> int | None:
    """The weight axis that holds the group's channels (None: the weight is left as it is)."""
    if isinstance(module, NORMS):
        return 0 if module.weight is not None else None
    if isinstance(module, nn.Embedding):
        return 1
    if isinstance(module, CONVS):
        if output or module.groups == module.in_channels:  # depthwise: inputs are outputs
            return 0
        return 1
    transposed = _transposed(module)
    if output:
        return 1 if transposed else 0
    return 0 if transposed else 1


def _transposed(module: nn.Module) -> bool:
    """Weights stored (in, out, ...): ConvTranspose and transformers' Conv1D."""
    return isinstance(module, TRANSPOSED_CONVS) or is_transposed_linear(module)
