"""Quantization-aware training: torch.export capture, torchao PT2E fake quantization (X86
quantizer: uint8 per-tensor activations, int8 per-channel weights), QDQ ONNX export."""

from __future__ import annotations

import copy
import dataclasses
import types

import torch
from torch import fx, nn
from torchao.quantization.pt2e import FakeQuantize, MovingAveragePerChannelMinMaxObserver
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
from torchao.quantization.pt2e.quantizer import QuantizationConfig
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)

from compress.errors import ModelError

#: Weights in -64..63 (7 bits): x86 CPUs without VNNI (AVX2, AVX-512F) add uint8 x int8 pairs
#: in int16 (vpmaddubsw), which saturates for full-range weights; ONNX Runtime's fused integer
#: kernels then disagree with the QDQ graph. A range on the activations instead would not
#: survive export: QuantizeLinear always clamps to the full 0..255.
WEIGHT_RANGE = (-64, 63)

#: aten ops whose train/eval behaviour is a literal argument, and that argument's index.
_MODE_ARGUMENT = {
    torch.ops.aten.dropout.default: 2,
    torch.ops.aten.feature_dropout.default: 2,
    torch.ops.aten.alpha_dropout.default: 2,
    torch.ops.aten.feature_alpha_dropout.default: 2,
    torch.ops.aten.batch_norm.default: 5,
}


def prepare_qat(
    model: nn.Module, example_inputs: tuple[torch.Tensor, ...], dynamic_shapes: tuple | None
) -> nn.Module:
    """Capture with torch.export and insert fake-quant observers (torchao PT2E, X86 quantizer,
    per-channel weights). Returns a module that trains like the original (in train mode, with
    working .train()/.eval()); `model` itself is not changed.
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
    literals = {_running_mean(node): node.args[6:8] for node in _batch_norms(graph)}
    quantizer = X86InductorQuantizer().set_global(_quantization_config())
    prepared = prepare_qat_pt2e(graph, quantizer)
    for node in _batch_norms(prepared):  # the conv+batchnorm fusion resets momentum and eps
        node.args = (*node.args[:6], *literals[_running_mean(node)], *node.args[8:])
    return _allow_train_eval(prepared, training=True)


def convert_qat(prepared: nn.Module) -> nn.Module:
    """Fold observers into quantize/dequantize ops (call after training); eval mode."""
    return _allow_train_eval(convert_pt2e(prepared), training=False)


def _quantization_config() -> QuantizationConfig:
    """torchao's X86 QAT config (uint8 per-tensor activations, int8 per-channel symmetric
    weights) with weights limited to WEIGHT_RANGE and fake-quantized by the unfused module.

    The fused module's kernel picks symmetric scales as amax/63 (for -64..63) where convert
    uses the observer's amax/63.5, so the exported weights would not be the trained ones.
    """
    config = get_default_x86_inductor_quantization_config(is_qat=True)
    low, high = WEIGHT_RANGE
    weight = dataclasses.replace(
        config.weight,
        quant_min=low,
        quant_max=high,
        observer_or_fake_quant_ctr=FakeQuantize.with_args(
            observer=MovingAveragePerChannelMinMaxObserver, eps=2**-12
        ),
    )
    return dataclasses.replace(config, weight=weight)


def _allow_train_eval(graph: fx.GraphModule, training: bool) -> fx.GraphModule:
    """Make .train()/.eval() flip the mode argument of dropout and batch norm ops in place.

    PT2E forbids both methods; torchao's move_exported_model_to_train/eval re-create those ops
    from patterns with dropout p=0.5 and default batch-norm momentum and eps.
    """

    def train(self: fx.GraphModule, mode: bool = True) -> fx.GraphModule:
        for node in self.graph.nodes:
            if node.op == "call_function" and node.target in _MODE_ARGUMENT:
                node.update_arg(_MODE_ARGUMENT[node.target], mode)
        self.recompile()
        return nn.Module.train(self, mode)

    def evaluate(self: fx.GraphModule) -> fx.GraphModule:
        return self.train(False)

    graph.train = types.MethodType(train, graph)
    graph.eval = types.MethodType(evaluate, graph)
    return graph.train(training)


def _batch_norms(graph: fx.GraphModule) -> list[fx.Node]:
    """Batch-norm nodes that keep running statistics (the ones conv fusion rewrites)."""
    return [
        node
        for node in graph.graph.nodes
        if node.op == "call_function"
        and node.target == torch.ops.aten.batch_norm.default
        and isinstance(node.args[3], fx.Node)
    ]


def _running_mean(node: fx.Node) -> str:
    return node.args[3].target


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
