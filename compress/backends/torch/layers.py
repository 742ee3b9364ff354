"""The layers of a PyTorch model as the neutral passes see them."""

from __future__ import annotations

from torch import nn

from compress.passes.targets import LayerInfo

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)


def is_transposed_linear(module: nn.Module) -> bool:
    """transformers' `Conv1D` (GPT-2 and its kin): a Linear whose weight is stored (in, out)."""
    return (
        type(module).__name__ == "Conv1D"
        and type(module).__module__.startswith("transformers.")
        and isinstance(getattr(module, "weight", None), nn.Parameter)
        and module.weight.dim() == 2
    )


def is_prunable(module: nn.Module) -> bool:
    return isinstance(module, PRUNABLE) or is_transposed_linear(module)


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
                weights=module.weight.numel() if is_prunable(module) else 0,
                prunable=is_prunable(module),
            )
        )
    return layers
