"""transformers' `Conv1D` (GPT-2 and its kin: a Linear whose weight is stored (in, out)) seen as
`nn.Linear` while Torch-Pruning works, since its graph knows Linear layers and not Conv1D."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from compress.backends.torch.layers import is_transposed_linear


@contextmanager
def conv1d_as_linear(model: nn.Module) -> Iterator[None]:
    """Swap every Conv1D for an equivalent nn.Linear, and back (at the new widths) on exit."""
    swapped: dict[str, type[nn.Module]] = {}
    for name, module in list(model.named_modules()):
        if name and is_transposed_linear(module):
            model.set_submodule(name, _as_linear(module))
            swapped[name] = type(module)
    try:
        yield
    finally:
        for name, cls in swapped.items():
            model.set_submodule(name, _as_conv1d(model.get_submodule(name), cls))


@torch.no_grad()
def _as_linear(conv1d: nn.Module) -> nn.Linear:
    inputs, outputs = conv1d.weight.shape
    weight = conv1d.weight
    linear = nn.Linear(inputs, outputs, bias=conv1d.bias is not None, device=weight.device)
    linear.weight = nn.Parameter(weight.t().contiguous(), requires_grad=weight.requires_grad)
    if conv1d.bias is not None:
        linear.bias = conv1d.bias
    return linear


@torch.no_grad()
def _as_conv1d(linear: nn.Linear, cls: type[nn.Module]) -> nn.Module:
    conv1d = cls(linear.out_features, linear.in_features)  # Conv1D(nf, nx)
    weight = linear.weight
    conv1d.weight = nn.Parameter(weight.t().contiguous(), requires_grad=weight.requires_grad)
    conv1d.bias = linear.bias
    return conv1d.to(weight.device)
