"""PyTorch by hand, the way a user of the peers writes it: the trained digits CNN, a plain Adam
fine-tune, `torch.onnx.export`, and Torch-Pruning's documented one-shot step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch_pruning as tp
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .common import DIGITS_CNN, DIGITS_WEIGHTS, Split, load_source


def digits_cnn() -> nn.Module:
    """The trained digits CNN (models/digits_cnn.py with its safetensors weights), in eval
    mode."""
    model = load_source(DIGITS_CNN).build()
    model.load_state_dict(load_file(str(DIGITS_WEIGHTS)))
    return model.eval()


def fine_tune(
    model: nn.Module,
    train: Split,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    after_epoch: Callable[[int], None] | None = None,
) -> None:
    """Cross-entropy fine-tuning with Adam, batches shuffled by `seed`; `after_epoch(epoch)`
    runs after each epoch (a by-hand pruning schedule)."""
    torch.manual_seed(seed)
    dataset = TensorDataset(torch.from_numpy(train[0]), torch.from_numpy(train[1]))
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch(epoch)
    model.eval()


def torch_export(
    model: nn.Module, example: torch.Tensor, name: str, path: Path, exporter: str, opset: int
) -> Path:
    """torch.onnx.export of a one-input model with a dynamic batch ("torchscript":
    dynamo=False, else dynamo=True), no external data."""
    model.eval()
    examples = (torch.cat([example, example]),)  # batch 2: exporters specialise a batch of 1
    if exporter == "torchscript":
        torch.onnx.export(
            model,
            examples,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[name],
            dynamic_axes={name: {0: "batch"}},
        )
    else:
        torch.onnx.export(
            model,
            examples,
            str(path),
            dynamo=True,
            external_data=False,
            opset_version=opset,
            input_names=[name],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    return path


def tp_prune(
    model: nn.Module,
    example: torch.Tensor,
    ignored: Sequence[nn.Module],
    ratio: float,
    *,
    global_pruning: bool = False,
) -> nn.Module:
    """Torch-Pruning's documented one-shot step: `MetaPruner` with L2 group magnitude at
    `ratio` (with `global_pruning`, one threshold over all groups), `ignored` left whole."""
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio,
        global_pruning=global_pruning,
        ignored_layers=list(ignored),
    )
    pruner.step()
    return model


def count_ops(model: nn.Module, example: torch.Tensor) -> int:
    """Torch-Pruning's MAC count of one forward pass."""
    macs, _ = tp.utils.count_ops_and_params(model, example)
    return int(macs)
