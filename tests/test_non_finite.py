"""A NaN or ±inf cannot pass a comparison: parity, the channel-cut proof and fidelity refuse
non-finite values on either side, naming where they appeared, and a model whose weights hold
them is refused at load, naming the tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import MODELS, seed_mlp_recipe
from safetensors.torch import load_file, save_file

from compress.comparison import NonFinite, max_abs_diff
from compress.errors import EXIT_MODEL
from compress.measure.accuracy import fidelity
from compress.passes.channels import agreement

GOOD = np.array([1.0, 2.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("side", [0, 1])
def test_a_non_finite_value_on_either_side_fails_the_comparison(bad, side):
    """Friction: agreement([1, 2], [nan, 2]) returned (0.0, 0.0002): max(diff, nan) is diff."""
    broken = np.array([bad, 2.0])
    pair = (GOOD, broken) if side else (broken, GOOD)
    with pytest.raises(NonFinite, match=r"(masked|pruned) model's output 0 holds (NaN|inf)"):
        agreement([pair[0]], [pair[1]])
    with pytest.raises(NonFinite, match="output 0 holds"):
        max_abs_diff([pair[0]], [pair[1]], ("torch", "ONNX"))
    with pytest.raises(NonFinite, match="ONNX model's output 0 holds"):
        fidelity("accuracy", pair[0][None], pair[1][None])


def test_finite_outputs_compare_as_before():
    assert max_abs_diff([GOOD], [GOOD + 0.5], ("a", "b")) == (0.5, 2.0)
    assert max_abs_diff([GOOD], [np.ones(3)], ("a", "b"))[0] == float("inf")


def test_nan_weights_are_refused_at_load(write_recipe, run_cli, tmp_path):
    """Friction: a safetensors file with NaN in a weight applied with exit 0, parity 0.0 and
    fidelity 1.0 (accuracy 7.8%)."""
    weights = load_file(MODELS / "seed_mlp.safetensors")
    name = next(key for key in weights if key.endswith("weight"))
    weights[name][0, 0] = torch.nan
    save_file(weights, tmp_path / "nan.safetensors")
    raw = seed_mlp_recipe()
    raw["model"]["weights"] = str(tmp_path / "nan.safetensors")
    for command in ("validate", "apply"):
        code, _, err = run_cli(command, write_recipe(raw))
        assert code == EXIT_MODEL, err
        assert f"nan.safetensors: weight {name} holds NaN" in err
    assert not any((tmp_path / "out").iterdir())  # nothing published
