"""How PyTorch channels are ranked: Torch-Pruning's importance criteria, plus the data the
data-driven ones need (loss gradients for taylor, activations for activation)."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from compress.backends.base import PassContext
from compress.backends.torch.training import loss_function, to_tensors
from compress.errors import ModelError
from compress.passes.prune import ChannelPrune

#: Train batches whose loss gradients rank channels for `importance: taylor`.
TAYLOR_BATCHES = 4

IMPORTANCE = {
    "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
    "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
    "bn_scale": lambda: tp.importance.BNScaleImportance(),
    "taylor": lambda: tp.importance.GroupTaylorImportance(),
    "activation": lambda: tp.importance.ActivationImportance(),
}
#: Samples whose activations rank channels for `importance: activation`.
ACTIVATION_SAMPLES = 64


def taylor_gradients(model: nn.Module, config: ChannelPrune, context: PassContext) -> None:
    """Fill the weights' gradients with those of the recipe's loss over a few train batches:
    first-order Taylor importance scores |w * dL/dw|."""
    recipe, found = context.recipe, context.split(config)
    if recipe.train is None or recipe.data is None or found is None:
        raise ModelError("prune: importance taylor needs a train split and a train section")
    split = found[1]
    if split.targets is None:
        raise ModelError("prune: importance taylor needs targets in the train split")
    criterion = loss_function(recipe.train.loss)
    features = to_tensors(split.inputs, recipe.model.inputs)
    targets = torch.as_tensor(split.targets)
    batch = recipe.data.batch_size
    model.zero_grad(set_to_none=True)
    model.eval()
    for start in range(0, min(len(split), batch * TAYLOR_BATCHES), batch):
        outputs = model(*(x[start : start + batch] for x in features))
        criterion(outputs, targets[start : start + batch]).backward()


@torch.no_grad()
def record_activations(
    importance: tp.importance.ActivationImportance,
    model: nn.Module,
    config: ChannelPrune,
    context: PassContext,
) -> None:
    """Run the model once on data with the importance's hooks on: each layer keeps the summed
    |input| of its channels, which ranks the channels that feed it (Minitron's criterion)."""
    found = context.split(config)
    if found is None:
        raise ModelError("prune: importance activation needs a train or calibration split")
    inputs = to_tensors(found[1].take(ACTIVATION_SAMPLES).inputs, context.recipe.model.inputs)
    with importance.compute_importance(model):
        model(*inputs)
