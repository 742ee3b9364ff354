"""Quantization-aware training: torch.export capture, torchao PT2E fake quantization (X86
quantizer: uint8 per-tensor activations, int8 per-channel weights), QDQ ONNX export."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from torchao.quantization.pt2e import (
    allow_exported_model_train_eval,
    move_exported_model_to_eval,
    move_exported_model_to_train,
)
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)

from compress.backends.onnx.tidy import strip_debug_metadata
from compress.backends.torch.export import _quiet
from compress.errors import ModelError


def prepare_qat(
    model: nn.Module, example_inputs: tuple[torch.Tensor, ...], dynamic_shapes: tuple | None
) -> nn.Module:
    """Capture with torch.export and insert fake-quant observers (torchao PT2E, X86 quantizer,
    per-channel weights). Returns a module that trains like the original; `model` is unchanged.
    """
    model = copy.deepcopy(model).train()  # conv+batchnorm fusion matches training batch norm
    try:
        # strict (dynamo) capture records one source per call; non-strict groups nodes by
        # module, so a module called twice (a shared ReLU) becomes one partition with several
        # outputs, which the X86 quantizer rejects.
        graph = torch.export.export(
            model, example_inputs, dynamic_shapes=dynamic_shapes, strict=True
        ).module()
    except Exception as exc:
        raise ModelError(f"torch.export could not capture the model: {_first_line(exc)}") from exc
    quantizer = X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config(is_qat=True)
    )
    prepared = prepare_qat_pt2e(graph, quantizer)
    allow_exported_model_train_eval(prepared)  # .train()/.eval() switch dropout and batch norm
    return move_exported_model_to_train(prepared)


def convert_qat(prepared: nn.Module) -> nn.Module:
    """Fold observers into quantize/dequantize ops (call after training); eval mode."""
    converted = convert_pt2e(prepared)
    move_exported_model_to_eval(converted)
    allow_exported_model_train_eval(converted)
    nn.Module.train(converted, False)  # the flag exporters check; .eval() only rewrites ops
    return converted


def export_qat_onnx(
    converted: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    opset: int,
    input_names: list[str],
    dynamic_shapes: tuple | None,
) -> None:
    """Export the converted model to one QDQ ONNX file (no external data)."""
    try:
        with _quiet():
            torch.onnx.export(
                converted,
                example_inputs,
                str(path),
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=input_names,
                dynamic_shapes=dynamic_shapes,
            )
    except Exception as exc:
        raise ModelError(f"QDQ ONNX export failed: {_first_line(exc)}") from exc
    strip_debug_metadata(path)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
