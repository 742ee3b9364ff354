"""The neutral pruner's n:m groups run along the input channels, whichever axis a backend
stores them on: ConvTranspose weights keep their input channels where a Conv keeps its outputs
(torch: (in, out/groups, *k); Keras: (*k, out, in))."""

from __future__ import annotations

import numpy as np
import pytest

from compress.passes.prune import NMPrune
from compress.passes.pruning import IN, OUT, Pruner, input_axis, layout

N_M = NMPrune(method="n:m", n=2, m=4)


def kept_per_group(weight: np.ndarray, axis: int) -> np.ndarray:
    """Nonzero weights in every group of 4 consecutive input channels."""
    moved = np.moveaxis(weight, axis, -1)
    return (moved.reshape(-1, 4) != 0).sum(axis=1)


def test_layout_names_the_input_channel_axis():
    assert input_axis(layout(OUT, IN, kernel_dims=2)) == 1  # torch Conv2d
    assert input_axis(layout(IN, OUT)) == 0  # transformers Conv1D
    assert input_axis(layout(IN, OUT, kernel_dims=2)) == 0  # torch ConvTranspose2d
    assert input_axis(layout(IN, OUT, kernel_dims=2, kernel_first=True)) == 2  # Keras Conv2D
    assert input_axis(layout(OUT, IN, kernel_dims=2, kernel_first=True)) == 3  # Keras transpose


@pytest.mark.parametrize("groups", [1, 3])
def test_torch_conv_transpose_n_m_runs_along_input_channels(groups):
    torch = pytest.importorskip("torch")
    from compress.backends.torch.pruning import TorchWeights

    torch.manual_seed(0)
    # 12 input channels (a multiple of 4), 3 output channels (not): axis 1 would be refused
    model = torch.nn.Sequential(torch.nn.ConvTranspose2d(12, 3, 3, groups=groups))
    pruner = Pruner(N_M, TorchWeights(model, ["0"]))
    assert pruner.axis == {"0": 0}
    pruner.initialize()
    weight = model[0].weight.detach().numpy()  # (in, out/groups, kh, kw)
    assert weight.shape == (12, 3 // groups, 3, 3)
    assert np.all(kept_per_group(weight, 0) == 2)
    assert not np.any(np.signbit(weight[weight == 0]))
    assert pruner.finalize(None)["achieved_sparsity"] == pytest.approx(0.5)


def test_keras_conv_transpose_n_m_runs_along_input_channels():
    keras = pytest.importorskip("keras")
    from compress.backends.keras.pruning import KerasKernels

    inputs = keras.Input((5, 5, 8))
    outputs = keras.layers.Conv2DTranspose(3, 3, name="up")(inputs)
    model = keras.Model(inputs, outputs)
    pruner = Pruner(N_M, KerasKernels(model, ["up"]))
    assert pruner.axis == {"up": 3}
    pruner.initialize()
    kernel = np.asarray(model.get_layer("up").kernel.numpy())  # (kh, kw, out, in)
    assert kernel.shape == (3, 3, 3, 8)
    assert np.all(kept_per_group(kernel, 3) == 2)
    assert not np.any(np.signbit(kernel[kernel == 0]))
    assert pruner.finalize(None)["achieved_sparsity"] == pytest.approx(0.5)
