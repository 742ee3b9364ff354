"""The layers of a PyTorch model as the neutral passes see them."""

from __future__ import annotations

from torch import nn

from compress.passes.targets import LayerInfo

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)


def module_layers(model: nn.Module) -> list[LayerInfo]:
    """Every module that owns parameters directly, in model order."""
    layers = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not name or not own:
            continue
        layers.append(
            LayerInfo(
                name=name,
                kind=type(module).__name__,
                params=sum(p.numel() for p in own),
                weights=module.weight.numel() if isinstance(module, PRUNABLE) else 0,
                prunable=isinstance(module, PRUNABLE),
            )
        )
    return layers
