"""Per-layer prune levels (`sparsity: {default, overrides}`) in every framework, the allocation
solver, and `allocation: sensitivity` on the trained digits CNN."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS, seed_mlp_recipe

from compress.analysis.allocation import allocate
from compress.analysis.schema import LayerSensitivity, Point
from compress.backends import load_model
from compress.backends.base import PassContext
from compress.data import load_data
from compress.errors import RecipeError
from compress.pipeline import apply
from compress.progress import Reporter
from compress.recipe import load_recipe

BUILDERS = f"{MODELS.parent}/tests/builders.py"
FRAMEWORKS = {"torch": "torch_mlp", "keras": "keras_mlp", "tf_keras": "tf_keras_mlp"}
LAYERS = {"torch": ("0", "2"), "keras": ("hidden", "out"), "tf_keras": ("hidden", "out")}
DIGITS = {
    "version": 1,
    "name": "digits-levels",
    "model": {
        "source": f"{MODELS}/digits_cnn.py:build",
        "weights": f"{MODELS}/digits_cnn.safetensors",
        "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
    },
    "data": {"source": f"{MODELS}/digits.py:load"},
    "evaluate": {"metric": "accuracy"},
    "measure": {"latency": None},
}


def mlp_recipe(framework: str, write_recipe, pass_: dict):
    raw = seed_mlp_recipe(passes=[pass_])
    raw["model"] = {
        "source": f"{BUILDERS}:{FRAMEWORKS[framework]}",
        "inputs": [{"name": "features", "shape": [-1, 10], "dtype": "float32"}],
    }
    return load_recipe(write_recipe(raw))


def zeros(backend, model, name: str) -> float:
    if backend.name == "torch":
        weight = dict(model.named_modules())[name].weight.detach().numpy()
    else:
        weight = next(layer for layer in model.layers if layer.name == name).kernel.numpy()
    return float(np.mean(np.asarray(weight) == 0))


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("gradual", [False, True], ids=["one-shot", "gradual"])
def test_each_layer_reaches_its_own_level(framework, gradual, write_recipe):
    first, second = LAYERS[framework]
    pass_ = {"type": "prune", "sparsity": {"default": 0.75, "overrides": {second: 0.25}}}
    if gradual:
        pass_["schedule"] = {"kind": "polynomial", "end_epoch": 2}
    recipe = mlp_recipe(framework, write_recipe, pass_)
    backend, model = load_model(recipe)
    context = PassContext(recipe=recipe, data=load_data(recipe), reporter=Reporter(False))
    model, info = backend.apply_pass(model, recipe.passes[0], context)
    assert zeros(backend, model, first) == pytest.approx(0.75, abs=0.011)
    assert zeros(backend, model, second) == pytest.approx(0.25, abs=0.011)
    assert info["allocation"] == "explicit"
    assert info["levels"] == {first: 0.75, second: 0.25}
    expected = (480 * 0.75 + 96 * 0.25) / 576  # the size-weighted target, not the default
    assert info["target_sparsity"] == pytest.approx(expected, abs=1e-4)
    assert info["achieved_sparsity"] == pytest.approx(expected, abs=0.005)


def test_overrides_take_regexes_and_the_first_match_wins(write_recipe):
    levels = {"default": 0.5, "overrides": {"re:^2$": 0.1, "re:.*": 0.9}}
    recipe = mlp_recipe("torch", write_recipe, {"type": "prune", "sparsity": levels})
    assert recipe.passes[0].level_of("2") == 0.1
    assert recipe.passes[0].level_of("0") == 0.9
    assert recipe.passes[0].level == 0.9  # what a schedule ramps to


@pytest.mark.parametrize(
    ("pass_", "message"),
    [
        ({"sparsity": {"default": 0.5, "overrides": {"0": 1.2}}}, "less than 1"),
        ({"sparsity": {"default": 0.5, "overrides": {"0": 0.2}}, "method": "n:m"}, "n:m"),
        ({"sparsity": 0.5, "allocation": "sensitivity", "scope": "global"}, "scope global"),
        ({"sparsity": {"overrides": {"0": 0.2}}}, "default"),
    ],
)
def test_bad_levels_point_at_the_recipe(pass_, message, write_recipe):
    raw = seed_mlp_recipe(passes=[{"type": "prune", **pass_}])
    with pytest.raises(RecipeError, match=message) as error:
        load_recipe(write_recipe(raw))
    assert "recipe.yaml:" in str(error.value) and "passes.0" in str(error.value)


def row(name: str, size: int, drops: list[float]) -> LayerSensitivity:
    levels = (0.5, 0.9)
    return LayerSensitivity(
        name=name,
        size=size,
        points=[Point(level=x, drop=d) for x, d in zip(levels, drops, strict=True)],
    )


def test_allocation_spends_the_target_on_the_least_sensitive_weights():
    rows = [row("big_robust", 900, [0.0, 0.01]), row("small_fragile", 100, [0.2, 0.6])]
    levels = allocate(rows, target=0.8)
    overall = (900 * levels["big_robust"] + 100 * levels["small_fragile"]) / 1000
    assert overall == pytest.approx(0.8, abs=1e-3)
    assert levels["big_robust"] > 0.8 > levels["small_fragile"]


def test_allocation_keeps_fixed_layers_and_finds_a_flat_stretch_after_a_step():
    # "step" costs 0.1 to reach 0.5 and nothing more up to 0.9: worth it per weight
    rows = [row("step", 500, [0.1, 0.1]), row("steady", 500, [0.05, 0.3])]
    levels = allocate(rows, target=0.6, fixed={"pinned": (1000, 0.6)})
    assert levels["step"] == pytest.approx(0.9, abs=0.011)
    overall = (500 * levels["step"] + 500 * levels["steady"] + 1000 * 0.6) / 2000
    assert overall == pytest.approx(0.6, abs=1e-3)


@pytest.mark.e2e
def test_sensitivity_allocation_beats_uniform_on_the_trained_digits_cnn(tmp_path):
    """What sensitivity allocation is for: one-shot 80% without fine-tuning, at least 3 points
    better than uniform levels."""
    accuracy = {}
    for allocation in ("uniform", "sensitivity"):
        recipe = {
            **DIGITS,
            "passes": [{"type": "prune", "sparsity": 0.8, "allocation": allocation}],
            "export": {"path": str(tmp_path / allocation / "model.onnx")},
        }
        report = apply(recipe, progress=False)
        record = report.passes[0]
        assert record["achieved_sparsity"] == pytest.approx(0.8, abs=0.005)
        assert report.compressed.sparsity > 0.75  # measured on the ONNX file
        accuracy[allocation] = report.compressed.accuracy
    assert record["allocation"] == "sensitivity"
    assert record["levels"]["fc1"] > 0.8 > record["levels"]["conv1"]
    spec = report.recipe["spec"]["passes"][0]["sparsity"]  # the levels are in the report
    assert spec["overrides"] == record["levels"]
    assert accuracy["sensitivity"] >= accuracy["uniform"] + 0.03


def train_only_data(folder) -> str:
    """A data source returning the digits train split only (no val)."""
    source = folder / "train_only.py"
    source.write_text(
        f"import sys\nsys.path.insert(0, {str(MODELS)!r})\nfrom digits import load\n\n\n"
        "def load_train():\n    return {'train': load()['train']}\n"
    )
    return f"{source}:load_train"


def test_sensitivity_allocation_needs_val_data(write_recipe, run_cli, tmp_path):
    raw = {**DIGITS, "passes": [{"type": "prune", "sparsity": 0.8, "allocation": "sensitivity"}]}
    raw["data"] = {"source": train_only_data(tmp_path)}
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == 2
    assert "allocation: sensitivity scores on the 'val' split" in err
    assert "Traceback" not in err


def test_a_session_refuses_sensitivity_allocation(write_recipe, run_cli):
    raw = {**DIGITS, "passes": [{"type": "prune", "sparsity": 0.8, "allocation": "sensitivity"}]}
    code, _, err = run_cli("validate", write_recipe(raw), "--usage", "session")
    assert code == 2 and "run this pass with `compress apply`" in err


@pytest.mark.e2e
def test_channel_allocation_trades_levels_for_macs(tmp_path):
    """Channel groups are weighed by the MACs they control: the allocated pass removes about as
    many MACs as the uniform one, and keeps more accuracy."""
    reports = {}
    for allocation in ("uniform", "sensitivity"):
        passes = [{"type": "prune", "method": "channel", "sparsity": 0.5, "allocation": allocation}]
        recipe = {
            **DIGITS,
            "passes": passes,
            "export": {"path": str(tmp_path / allocation / "m.onnx")},
        }
        reports[allocation] = apply(recipe, progress=False)
    uniform, allocated = reports["uniform"], reports["sensitivity"]
    levels = allocated.passes[0]["levels"]
    assert set(levels) == {"conv1", "conv2", "fc1"} and len(set(levels.values())) > 1
    assert allocated.compressed.macs <= uniform.compressed.macs * 1.1
    assert allocated.compressed.accuracy >= uniform.compressed.accuracy


def test_plan_says_the_levels_are_chosen_at_run_time(write_recipe, run_cli):
    raw = {**DIGITS, "passes": [{"type": "prune", "sparsity": 0.8, "allocation": "sensitivity"}]}
    code, out, _ = run_cli("plan", write_recipe(raw))
    assert code == 0 and "allocation: sensitivity (per-layer levels chosen" in out
