"""PyTorch backend: safe loading, pruning masks, and ONNX export checked in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import MODELS, seed_mlp_recipe
from safetensors.torch import load_file, save_file
from torch import nn

from compress.backends import load_model
from compress.backends.base import PassContext
from compress.backends.torch import TorchBackend
from compress.data import load_data
from compress.errors import ModelError, UnsafeModelError
from compress.progress import Reporter
from compress.recipe import load_recipe


def recipe_with(write_recipe, **model_overrides):
    raw = seed_mlp_recipe()
    raw["model"].update(model_overrides)
    raw["model"] = {k: v for k, v in raw["model"].items() if v is not None}
    return load_recipe(write_recipe(raw))


class Pickled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 2)

    def forward(self, x):
        return self.fc(x)


def test_builder_with_safetensors_weights(write_recipe):
    backend, model = load_model(recipe_with(write_recipe))
    assert backend.name == "torch"
    assert not model.training
    weights = load_file(MODELS / "seed_mlp.safetensors")
    assert torch.equal(model.state_dict()["0.weight"], weights["0.weight"])


def test_pt_state_dict_is_loaded_weights_only(write_recipe, tmp_path):
    _, model = load_model(recipe_with(write_recipe))
    path = tmp_path / "state.pt"
    torch.save(model.state_dict(), path)
    _, loaded = load_model(recipe_with(write_recipe, weights=str(path)))
    assert torch.equal(loaded.state_dict()["2.bias"], model.state_dict()["2.bias"])


def test_full_pickle_is_refused_unless_trusted(write_recipe, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Pickled(), path)
    with pytest.raises(UnsafeModelError, match=r"refused to load model\.pt: it is a pickle") as err:
        load_model(recipe_with(write_recipe, source=str(path), weights=None))
    assert err.value.exit_code == 3
    message = str(err.value)
    assert "(it imports test_torch_backend.Pickled)" in message and "state_dict()" in message
    # torch's own advice is the unsafe path: never repeated to the user
    assert "weights_only" not in message and "add_safe_globals" not in message
    _, model = load_model(recipe_with(write_recipe, source=str(path), weights=None, trust=True))
    assert isinstance(model, nn.Module)


def test_state_dict_as_source_says_what_to_do(write_recipe, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(Pickled().state_dict(), path)
    with pytest.raises(ModelError, match=r"is a state dict, not a model: set model\.source"):
        load_model(recipe_with(write_recipe, source=str(path), weights=None))


def test_weights_that_do_not_fit(write_recipe, tmp_path):
    path = tmp_path / "other.safetensors"
    save_file(Pickled().state_dict(), str(path))
    with pytest.raises(ModelError, match=r"do not fit the model: missing .*unexpected fc\.bias"):
        load_model(recipe_with(write_recipe, weights=str(path)))
    wrong = {
        k: v.clone()
        for k, v in nn.Sequential(nn.Linear(10, 40), nn.ReLU(), nn.Linear(40, 2))
        .state_dict()
        .items()
    }
    save_file(wrong, str(path))
    with pytest.raises(ModelError, match=r"shape mismatch 0\.bias \(40,\) vs model \(50,\)"):
        load_model(recipe_with(write_recipe, weights=str(path)))


def test_builder_that_raises(write_recipe, tmp_path):
    builder = tmp_path / "broken.py"
    builder.write_text("def build():\n    raise RuntimeError('no GPU here')\n")
    with pytest.raises(ModelError, match=r"broken\.py:build raised RuntimeError: no GPU here"):
        load_model(recipe_with(write_recipe, source=f"{builder}:build", weights=None))


def test_builder_that_returns_something_else(write_recipe, tmp_path):
    builder = tmp_path / "odd.py"
    builder.write_text("def build():\n    return 42\n")
    with pytest.raises(Exception, match="cannot compress a int"):
        load_model(recipe_with(write_recipe, source=f"{builder}:build", weights=None))


def prune_context(write_recipe, **pass_fields):
    recipe = load_recipe(write_recipe(seed_mlp_recipe(passes=[{"type": "prune", **pass_fields}])))
    backend, model = load_model(recipe)
    context = PassContext(recipe=recipe, data=load_data(recipe), reporter=Reporter(False))
    return backend, model, recipe.passes[0], context


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_one_shot_pruning_is_exact(write_recipe, scope):
    backend, model, config, context = prune_context(write_recipe, sparsity=0.6, scope=scope)
    model, info = backend.apply_pass(model, config, context)
    weights = [model[0].weight, model[2].weight]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == round(0.6 * 500) + round(0.6 * 100) if scope == "layer" else zeros == 360
    assert info["achieved_sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert info["training"] is None
    if scope == "layer":
        assert info["layers"] == {"0": 0.6, "2": 0.6}


def test_global_pruning_removes_the_smallest_weights_overall(write_recipe):
    backend, model, config, context = prune_context(write_recipe, sparsity=0.5, scope="global")

    def magnitudes():
        return torch.cat(
            [model[0].weight.detach().abs().flatten(), model[2].weight.detach().abs().flatten()]
        )

    threshold = magnitudes().sort().values[299]
    model, _ = backend.apply_pass(model, config, context)
    kept = magnitudes()
    assert float(kept[kept > 0].min()) >= float(threshold)


def test_gradual_pruning_reaches_the_target_and_masks_survive_training(write_recipe):
    backend, model, config, context = prune_context(
        write_recipe,
        sparsity=0.7,
        schedule={"kind": "polynomial", "start_epoch": 0, "end_epoch": 1},
    )
    model, info = backend.apply_pass(model, config, context)
    assert info["training"]["steps"] == 2 * 25  # 1600 samples / 64, two epochs
    assert info["mask_updates"] > 3
    for module in (model[0], model[2]):
        assert float((module.weight == 0).float().mean()) == pytest.approx(0.7, abs=0.002)
    assert info["achieved_sparsity"] >= 0.695


def test_fine_tuning_keeps_pruned_weights_at_zero_and_changes_the_rest(write_recipe):
    backend, model, config, context = prune_context(write_recipe, sparsity=0.5, fine_tune=True)
    before = model[0].weight.detach().clone()
    model, info = backend.apply_pass(model, config, context)
    after = model[0].weight.detach()
    pruned = after == 0
    assert float(pruned.float().mean()) == pytest.approx(0.5, abs=0.01)
    assert not torch.equal(before[~pruned], after[~pruned])  # training moved the survivors
    assert info["training"]["epochs"] == 2


def test_export_is_one_file_that_matches_torch(write_recipe, tmp_path):
    recipe = recipe_with(write_recipe)
    backend, model = load_model(recipe)
    path = tmp_path / "m.onnx"
    info = backend.export_onnx(model, recipe, path)
    assert info.exporter == "dynamo"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".onnx", ".data")) == [
        "m.onnx"
    ]
    onnx.checker.check_model(str(path))
    x = np.random.default_rng(1).standard_normal((5, 10)).astype(np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"features": x})[0]
    want = backend.predict(model, [x])[0]
    assert np.max(np.abs(got - want)) < 1e-4


def test_pruned_export_has_no_mask_tensors_and_keeps_zeros(write_recipe, tmp_path):
    backend, model, config, context = prune_context(write_recipe, sparsity=0.5)
    model, _ = backend.apply_pass(model, config, context)
    path = tmp_path / "pruned.onnx"
    backend.export_onnx(model, context.recipe, path)
    graph = onnx.load(str(path)).graph
    names = [t.name for t in graph.initializer]
    assert not any("mask" in n or "orig" in n for n in names)
    weight = next(t for t in graph.initializer if t.name == "0.weight")
    assert np.mean(onnx.numpy_helper.to_array(weight) == 0) == pytest.approx(0.5)


class DataDependent(nn.Module):
    """Data-dependent control flow: the dynamo exporter cannot export it; TorchScript traces it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


def test_exporter_falls_back_to_torchscript_and_says_so(write_recipe, tmp_path):
    recipe = recipe_with(write_recipe)
    path = tmp_path / "fallback.onnx"
    info = TorchBackend().export_onnx(DataDependent().eval(), recipe, path)
    assert info.exporter == "torchscript"
    assert "dynamo ONNX exporter failed" in info.notes[0]
    onnx.checker.check_model(str(path))


def test_export_carries_no_local_paths(write_recipe, tmp_path):
    recipe = recipe_with(write_recipe)
    backend, model = load_model(recipe)
    path = tmp_path / "clean.onnx"
    backend.export_onnx(model, recipe, path)
    assert str(MODELS) not in path.read_bytes().decode("latin-1")
    assert b"stack_trace" not in path.read_bytes()


def test_builder_from_an_importable_module(write_recipe, tmp_path, monkeypatch):
    package = tmp_path / "zoo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        "from torch import nn\n\ndef tiny():\n    return nn.Sequential(nn.Linear(10, 2))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    backend, model = load_model(recipe_with(write_recipe, source="zoo.nets:tiny", weights=None))
    assert backend.name == "torch" and model[0].out_features == 2


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_trainer_optimizers_reduce_the_loss(write_recipe, optimizer):
    raw = seed_mlp_recipe(
        train={
            "epochs": 3,
            "optimizer": {"type": optimizer, "lr": 0.05, "momentum": 0.9}
            if optimizer == "sgd"
            else {"type": optimizer, "lr": 0.01},
        },
        passes=[{"type": "prune", "sparsity": 0.3, "fine_tune": True}],
    )
    raw["model"].pop("weights")  # start from random weights: the loss must fall
    recipe = load_recipe(write_recipe(raw))
    backend, model = load_model(recipe)
    context = PassContext(recipe=recipe, data=load_data(recipe), reporter=Reporter(False))
    x, y = context.data["val"].inputs[0], context.data["val"].targets

    def val_loss() -> float:
        with torch.no_grad():
            outputs = model(torch.from_numpy(x))
        return float(torch.nn.functional.cross_entropy(outputs, torch.from_numpy(y)))

    before = val_loss()
    model, _ = backend.apply_pass(model, recipe.passes[0], context)
    assert val_loss() < before * 0.8
