"""`type: quantize, mode: qat` for PyTorch: torchao PT2E fake quantization trained by the
built-in trainer, then converted to quantize/dequantize ops (exported as QDQ ONNX)."""

from __future__ import annotations

import torch
from torch import nn

from compress.backends.base import PassContext
from compress.backends.torch.distillation import objective_for
from compress.backends.torch.export import dynamic_shapes_for, example_inputs, quiet_exporter
from compress.backends.torch.training import train
from compress.errors import ModelError
from compress.passes.quantize import QATQuantize

#: Set on converted modules so the exporter takes the QDQ path.
QAT_MARK = "compress_qat_converted"


def apply_qat(
    model: nn.Module, config: QATQuantize, context: PassContext
) -> tuple[nn.Module, dict]:
    """Prepare with fake quantization, fine-tune with the recipe's train section, convert."""
    if config.ignore:
        raise ModelError("quantize: ignore is not supported with PyTorch QAT (it quantizes all)")
    with quiet_exporter():  # torchao logs deprecation warnings when first imported
        from compress.backends.torch.qat import WEIGHT_RANGE, convert_qat, prepare_qat

    inputs = context.training(config)
    specs = context.recipe.model.inputs
    prepared = prepare_qat(model, example_inputs(specs), dynamic_shapes_for(specs))
    zeros = KeepZeros(prepared)
    with objective_for(prepared, context) as objective:
        training = train(
            prepared,
            inputs.spec,
            inputs.split,
            specs,
            inputs.batch_size,
            hooks=[zeros],
            reporter=context.reporter,
            description="quantization-aware training",
            objective=objective,
        )
    converted = convert_qat(prepared)
    setattr(converted, QAT_MARK, True)
    low, high = WEIGHT_RANGE
    return converted, {
        "mode": "qat",
        "weights": "int8",
        "engine": "torchao pt2e (X86 quantizer)",
        "weight_range": [low, high],
        "kept_zeros": zeros.count,
        "training": training,
    }


class KeepZeros:
    """Training hook: weights that are exactly zero stay zero (prune -> QAT keeps sparsity)."""

    def __init__(self, model: nn.Module) -> None:
        self.masks = {
            name: parameter == 0
            for name, parameter in model.named_parameters()
            if parameter.dim() >= 2 and bool((parameter == 0).any())
        }
        self.parameters = dict(model.named_parameters())
        self.count = int(sum(int(mask.sum()) for mask in self.masks.values()))

    def on_start(self, steps_per_epoch: int, total_steps: int) -> None:
        """Nothing to set up: the masks were taken from the weights as they came in."""

    @torch.no_grad()
    def on_update(self, step: int) -> None:
        for name, mask in self.masks.items():
            self.parameters[name].masked_fill_(mask, 0.0)

    def on_end(self) -> None:
        self.on_update(0)
