"""One template for every backend (torch, Keras 3, tf-keras): load, prune one-shot and gradual,
export, parity in onnxruntime, report keys. Then each backend's own bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import MODELS, seed_mlp_recipe

import compress
from compress.backends import load_model
from compress.backends.base import PassContext
from compress.data import load_data
from compress.errors import ModelError, UnsafeModelError
from compress.progress import Reporter
from compress.recipe import load_recipe

BUILDERS = Path(__file__).parent / "builders.py"
FRAMEWORKS = {"torch": "torch_mlp", "keras": "keras_mlp", "tf_keras": "tf_keras_mlp"}
LAYERS = {"torch": ("0", "2"), "keras": ("hidden", "out"), "tf_keras": ("hidden", "out")}


def recipe_for(framework: str, write_recipe, builder: str | None = None, **overrides):
    raw = seed_mlp_recipe(**overrides)
    raw["model"] = {
        "source": f"{BUILDERS}:{builder or FRAMEWORKS[framework]}",
        "inputs": [{"name": "features", "shape": [-1, 10], "dtype": "float32"}],
    }
    return load_recipe(write_recipe(raw))


def run_pass(recipe):
    backend, model = load_model(recipe)
    context = PassContext(recipe=recipe, data=load_data(recipe), reporter=Reporter(False))
    model, info = backend.apply_pass(model, recipe.passes[0], context)
    return backend, model, info


def kernel(backend, model, name: str) -> np.ndarray:
    """A layer's weight in (in, out) orientation, whatever the framework."""
    if backend.name == "torch":
        return dict(model.named_modules())[name].weight.detach().numpy().T
    return np.asarray(next(layer for layer in model.layers if layer.name == name).kernel.numpy())


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request):
    return request.param


def test_load_describes_the_layers(framework, write_recipe):
    backend, model = load_model(recipe_for(framework, write_recipe))
    assert backend.name == framework
    layers = backend.layers(model)
    assert [layer.name for layer in layers] == list(LAYERS[framework])
    assert [layer.weights for layer in layers] == [480, 96]
    assert all(layer.prunable for layer in layers)
    (output,) = backend.predict(model, [np.zeros((3, 10), np.float32)])
    assert output.shape == (3, 2)


def test_one_shot_pruning(framework, write_recipe):
    recipe = recipe_for(framework, write_recipe, passes=[{"type": "prune", "sparsity": 0.5}])
    backend, model, info = run_pass(recipe)
    for name in LAYERS[framework]:
        assert np.mean(kernel(backend, model, name) == 0) == pytest.approx(0.5, abs=0.011)
    assert info["achieved_sparsity"] == pytest.approx(0.5, abs=0.005)
    assert info["schedule"] == "one-shot" and info["training"] is None


def test_gradual_pruning_reaches_the_target_in_a_short_run(framework, write_recipe):
    """2 epochs of 25 steps: tfmot's default frequency (100) would end at 0% sparsity."""
    recipe = recipe_for(
        framework,
        write_recipe,
        passes=[
            {"type": "prune", "sparsity": 0.7, "schedule": {"kind": "polynomial", "end_epoch": 1}}
        ],
    )
    backend, model, info = run_pass(recipe)
    assert info["training"]["steps"] == 50
    assert info["achieved_sparsity"] == pytest.approx(0.7, abs=0.005)
    assert info["mask_updates"] >= 5
    assert info.get("engine", "native") == ("tfmot" if framework == "tf_keras" else "native")
    for name in LAYERS[framework]:
        weights = kernel(backend, model, name)
        assert np.mean(weights == 0) == pytest.approx(0.7, abs=0.011)
        assert not np.any(np.signbit(weights[weights == 0]))


def test_n_m_pruning_keeps_n_of_every_m_inputs(framework, write_recipe):
    out = LAYERS[framework][1]
    recipe = recipe_for(
        framework,
        write_recipe,
        passes=[
            {"type": "prune", "method": "n:m", "n": 2, "m": 4, "targets": [out], "fine_tune": True}
        ],
    )
    backend, model, info = run_pass(recipe)
    weights = kernel(backend, model, out)  # (48 inputs, 2 outputs)
    kept_per_group = (weights.reshape(12, 4, 2) != 0).sum(axis=1)
    assert np.all(kept_per_group <= 2)
    assert info["achieved_sparsity"] >= 0.5


def test_export_matches_the_framework(framework, write_recipe, tmp_path):
    recipe = recipe_for(framework, write_recipe)
    backend, model = load_model(recipe)
    path = tmp_path / "model.onnx"
    backend.export_onnx(model, recipe, path)
    assert [p.name for p in tmp_path.glob("model.onnx*")] == ["model.onnx"]
    onnx.checker.check_model(str(path))
    x = np.random.default_rng(3).standard_normal((7, 10)).astype(np.float32)
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].name == "features"
    got = session.run(None, {"features": x})[0]
    assert np.max(np.abs(got - backend.predict(model, [x])[0])) < 1e-4
    names = {tensor.name for tensor in onnx.load(str(path)).graph.initializer}
    assert all(any(name.startswith(layer) for name in names) for layer in LAYERS[framework])


@pytest.mark.e2e
def test_report_has_the_same_keys_for_every_backend(framework, write_recipe, tmp_path):
    recipe = recipe_for(framework, write_recipe, passes=[{"type": "prune", "sparsity": 0.6}])
    report = compress.apply(recipe, output_dir=tmp_path, progress=False)
    assert report.framework == framework
    assert report.compressed.sparsity > 0.5
    assert report.compressed.export.parity_max_abs_diff < 1e-4
    assert {layer.name for layer in report.layers} == set(LAYERS[framework])
    assert all(layer.sparsity == pytest.approx(0.6, abs=0.011) for layer in report.layers)
    assert report.passes[0]["achieved_sparsity"] == pytest.approx(0.6, abs=0.005)


# --- Keras bad input -------------------------------------------------------------------------


def test_keras3_model_with_a_tfmot_only_option(write_recipe):
    recipe = recipe_for(
        "keras",
        write_recipe,
        passes=[{"type": "prune", "sparsity": 0.5, "engine": "tfmot", "fine_tune": True}],
    )
    with pytest.raises(ModelError, match=r"engine tfmot needs a tf-keras .* Keras 3 model"):
        run_pass(recipe)


def test_unprunable_keras_layer_is_named(write_recipe, run_cli):
    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5, "targets": ["bn"]}])
    raw["model"] = {
        "source": f"{BUILDERS}:keras_with_batchnorm",
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == 2
    assert "passes.0.targets.0: prune: layer 'bn' (BatchNormalization) has no weight" in err


def test_keras_file_with_a_lambda_layer_is_refused_unless_trusted(write_recipe, tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Dense(2, name="out"),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    raw = seed_mlp_recipe(passes=[])
    raw["model"] = {"source": str(path), "inputs": [{"name": "features", "shape": [-1, 10]}]}
    with pytest.raises(UnsafeModelError, match=r"refused to load lambda\.keras: it holds code"):
        load_model(load_recipe(write_recipe(raw)))
    raw["model"]["trust"] = True
    backend, loaded = load_model(load_recipe(write_recipe(raw)))
    assert backend.name == "keras" and len(loaded.layers) == 2


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_h5_model_file_needs_trust(write_recipe, tmp_path):
    import tf_keras
    from builders import tf_keras_mlp

    path = tmp_path / "model.h5"
    tf_keras_mlp().save(path)
    raw = seed_mlp_recipe(passes=[])
    raw["model"] = {"source": str(path), "inputs": [{"name": "features", "shape": [-1, 10]}]}
    with pytest.raises(UnsafeModelError, match=r"\.h5 model files ignore Keras safe mode"):
        load_model(load_recipe(write_recipe(raw)))
    raw["model"]["trust"] = True
    backend, model = load_model(load_recipe(write_recipe(raw)))
    assert backend.name == "tf_keras" and isinstance(model, tf_keras.Model)


def test_subclassed_tf_keras_model_cannot_be_wrapped_by_tfmot(write_recipe):
    recipe = recipe_for(
        "tf_keras",
        write_recipe,
        builder="tf_keras_subclassed",
        passes=[{"type": "prune", "sparsity": 0.5, "fine_tune": True}],
    )
    with pytest.raises(ModelError, match=r"tfmot cannot wrap this TwoLayers.*engine: native"):
        run_pass(recipe)


def test_subclassed_tf_keras_model_prunes_with_native_masks(write_recipe):
    recipe = recipe_for(
        "tf_keras",
        write_recipe,
        builder="tf_keras_subclassed",
        passes=[{"type": "prune", "sparsity": 0.5, "fine_tune": True, "engine": "native"}],
    )
    _, _, info = run_pass(recipe)
    assert info["engine"] == "native" and info["achieved_sparsity"] == pytest.approx(0.5, 0.01)


def test_keras_weights_that_do_not_fit(write_recipe):
    raw = seed_mlp_recipe(passes=[])
    raw["model"] = {
        "source": f"{BUILDERS}:keras_mlp",
        "weights": str(MODELS / "keras_digits_cnn.weights.h5"),
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    with pytest.raises(ModelError, match="do not fit the model"):
        load_model(load_recipe(write_recipe(raw)))


@pytest.mark.e2e
def test_tensorflow_imported_without_the_legacy_switch_gives_a_clear_error(tmp_path):
    """tfmot needs tf.keras = tf-keras; if a script imported TensorFlow first, say how to fix it."""
    import os
    import subprocess
    import sys

    script = (
        "import tensorflow, compress\n"
        f"compress.apply({str(MODELS.parent / 'recipes' / 'seed_keras_prune.yaml')!r}, "
        f"output_dir={str(tmp_path)!r}, progress=False)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode != 0
    assert "TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set" in result.stderr
    assert not (tmp_path / "model.onnx").exists()


def test_tfmot_default_frequency_leaves_a_short_run_unpruned_and_the_check_catches_it():
    """The pitfall the toolkit avoids: by hand, tfmot's frequency=100 never fires in 50 steps."""
    from compress.backends.keras.environment import keras_api

    keras_api("tf_keras")
    import tensorflow_model_optimization as tfmot
    from builders import tf_keras_mlp

    from compress.passes.prune import MagnitudePrune, check_achieved

    model = tf_keras_mlp()
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.7, begin_step=0, end_step=25)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).standard_normal((1600, 10)).astype(np.float32)
    pruned.fit(
        x,
        x[:, :2],
        batch_size=64,
        epochs=2,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    kernel = stripped.get_layer("hidden").kernel.numpy()
    achieved = float(np.mean(kernel == 0))
    assert achieved < 0.1
    with pytest.raises(ModelError, match=r"achieved sparsity .* is below the requested 70\.00%"):
        check_achieved(MagnitudePrune(sparsity=0.7), achieved)


def test_keras3_flatten_exports_as_one_static_reshape(write_recipe, tmp_path):
    """Keras 3 computes Flatten's shape at run time; the export folds it to [-1, 512]."""
    raw = seed_mlp_recipe(passes=[])
    raw["model"] = {
        "source": f"{MODELS}/keras_digits_cnn.py:build",
        "inputs": [{"name": "input", "shape": ["batch", 8, 8, 1]}],
    }
    recipe = load_recipe(write_recipe(raw))
    backend, model = load_model(recipe)
    path = tmp_path / "cnn.onnx"
    backend.export_onnx(model, recipe, path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "Shape" not in ops and ops.count("Reshape") == 2
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    assert np.max(np.abs(got - backend.predict(model, [x])[0])) < 1e-4


def test_pruned_zeros_are_positive_zeros(framework, write_recipe, tmp_path):
    """w * 0 keeps the sign: -0.0 and +0.0 differ by a bit that gzip has to store."""
    recipe = recipe_for(framework, write_recipe, passes=[{"type": "prune", "sparsity": 0.5}])
    backend, model, _ = run_pass(recipe)
    for name in LAYERS[framework]:
        weights = kernel(backend, model, name)
        assert not np.any(np.signbit(weights[weights == 0]))
