"""The PyTorch backend (imports torch; loaded only when a torch model is used)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.backends.base import Backend, ExportInfo, PassContext
from compress.backends.torch.export import dynamo_export, export_module
from compress.backends.torch.layers import module_layers
from compress.backends.torch.loading import load_module
from compress.backends.torch.quantization import QAT_MARK
from compress.comparison import check_finite
from compress.errors import ModelError, message_line
from compress.passes.targets import LayerInfo
from compress.recipe import TORCH_FILE_SUFFIXES, Recipe


def _source(recipe: Recipe) -> str:
    return recipe.model.weights or recipe.model.source or "the given model"


class TorchBackend(Backend):
    name = "torch"
    file_suffixes = TORCH_FILE_SUFFIXES

    def load(self, recipe: Recipe, built: Any = None) -> nn.Module:
        """The model with its weights; NaN or ±inf in any of them is an error naming it."""
        model = load_module(recipe, built)
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                check_finite(
                    [tensor.detach().cpu().numpy()], f"{_source(recipe)}:", [f"weight {name}"]
                )
        return model

    def copy(self, model: nn.Module) -> nn.Module:
        """A deep copy, so passes never change the caller's model object."""
        return copy.deepcopy(model)

    def layers(self, model: nn.Module) -> list[LayerInfo]:
        return module_layers(model)

    def params(self, model: nn.Module) -> int:
        return sum(parameter.numel() for parameter in model.parameters())

    def session(
        self, model: nn.Module, context: PassContext, steps_per_epoch: int, epochs: int
    ) -> Any:
        from compress.backends.torch.session import TorchSession

        return TorchSession(model, context, steps_per_epoch, epochs)

    model_suffix = ".safetensors"

    def save_model(self, model: nn.Module, path: Path) -> None:
        from compress.backends.torch.pruned_state import save_pruned

        save_pruned(model, path)

    def save_folder(self, model: nn.Module, source: Path, target: Path) -> None:
        from compress.backends.torch.hf_folder import save_folder

        save_folder(model, source, target)

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
        model.eval()
        outputs = model(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return [o.detach().cpu().numpy() for o in outputs]

    def check_loss(
        self, model: nn.Module, loss: str, outputs: list[np.ndarray], targets: np.ndarray
    ) -> None:
        from compress.backends.torch.training import loss_function

        loss_function(loss)(torch.from_numpy(outputs[0]), torch.from_numpy(np.asarray(targets)))

    def export_onnx(
        self, model: nn.Module, recipe: Recipe, path: Path, exporter: str | None = None
    ) -> ExportInfo:
        if getattr(model, QAT_MARK, False):
            try:  # no TorchScript fallback: it cannot export the converted graph
                dynamo_export(model, recipe, path)
            except Exception as exc:
                first = message_line(exc)[:200]
                raise ModelError(f"QDQ ONNX export failed: {first or type(exc).__name__}") from exc
            return ExportInfo(exporter="dynamo (QDQ)", quantized=True)
        return export_module(model, recipe, path, exporter)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}
