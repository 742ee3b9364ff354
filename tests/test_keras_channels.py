"""Channel pruning of Keras 3 and tf-keras models: physically smaller Sequential and Functional
models that agree with the masked original, export to ONNX and run in onnxruntime; groups that
cannot be followed are left whole with a note; subclassed models get a clear error."""

from __future__ import annotations

from pathlib import Path

import keras_channel_models as models
import numpy as np
import onnxruntime as ort
import pytest
from conftest import MODELS

import compress
from compress.backends import load_model
from compress.backends.base import PassContext
from compress.data import load_data
from compress.errors import ModelError
from compress.progress import Reporter
from compress.recipe import load_recipe

BUILDERS = Path(models.__file__)
CHANNELS = {"type": "prune", "method": "channel", "sparsity": 0.5}


def recipe(builder: str, size: int, passes: list[dict], **sections) -> dict:
    raw = {
        "version": 1,
        "name": f"channels-{builder}",
        "model": {
            "source": f"{BUILDERS}:{builder}",
            "inputs": [{"name": "image", "shape": [-1, size, size, 3], "dtype": "float32"}],
        },
        "data": {"source": f"{BUILDERS}:load_{size}", "batch_size": 32},
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": {"warmup": 1, "runs": 3}},
    }
    raw.update(sections)
    return raw


def run_pass(path: Path) -> tuple[object, dict, Reporter, object]:
    """The recipe's first pass on its model, without export: (pruned, record, reporter, model)."""
    parsed = load_recipe(path)
    backend, model = load_model(parsed)
    reporter = Reporter(False)
    context = PassContext(recipe=parsed, data=load_data(parsed), reporter=reporter)
    pruned, record = backend.apply_pass(model, parsed.passes[0], context)
    return pruned, record, reporter, model


def onnx_outputs(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path))
    return session.run(None, {session.get_inputs()[0].name: images})[0]


@pytest.mark.parametrize("builder", ["cnn", "tf_keras_cnn"])
def test_functional_cnn_loses_half_its_channels_and_exports(builder, write_recipe, tmp_path):
    """Residual Add, DepthwiseConv, Concatenate, Flatten -> Dense at 50%, Keras 3 and tf-keras."""
    flavor = "tf_keras" if builder.startswith("tf_keras") else "keras"
    report = compress.apply(write_recipe(recipe(builder, 16, [CHANNELS])), progress=False)
    record = report.passes[0]
    expected = models.cnn(flavor, models.HALVED).count_params()
    assert record["params_before"] == models.cnn(flavor).count_params()
    assert record["params_after"] == expected
    assert record["channels"] == {name: [w, w // 2] for name, w in models.WIDTHS.items()}
    assert record["engine"] == "compress" and record["achieved_sparsity"] == 0.5
    stem = next(group for group in record["groups"] if group["name"] == "stem")
    assert {"stem", "res_conv", "res_bn", "dw", "dw_bn", "pw", "side"} <= set(stem["layers"])
    assert record["left_whole"] == [
        {"group": "head", "why": "reaches a model output (name its layers in targets to prune it)"}
    ]
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    assert record["verification"]["samples"] == "8 samples of the val split"
    assert report.compressed.params < report.baseline.params / 2.5
    assert report.compressed.export.parity_max_abs_diff < 1e-4
    assert report.framework == flavor

    images = models.images(16, 4, seed=9)
    got = onnx_outputs(tmp_path / "out" / report.artifacts.onnx, images)
    assert got.shape == (4, models.CLASSES) and np.ptp(got, axis=0).max() > 1e-3


@pytest.mark.parametrize("flavor", ["keras", "tf_keras"])
def test_pruned_model_is_the_same_kind_with_the_same_layer_names(flavor, write_recipe):
    builder = "cnn" if flavor == "keras" else "tf_keras_cnn"
    pruned, _, _, model = run_pass(write_recipe(recipe(builder, 16, [CHANNELS])))
    assert type(pruned) is type(model)
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in model.layers]
    assert pruned.get_layer("stem").filters == 8 and pruned.get_layer("fc1").units == 16
    assert pruned.get_layer("dw").weights[0].shape[-2] == 8  # depthwise kernel (3, 3, C, 1)
    assert tuple(pruned.get_layer("cat_prelu").alpha.shape) == (16, 16, 16)  # pw 12 + side 4
    assert pruned.get_layer("fc1").kernel.shape == (4 * 4 * 16, 16)


@pytest.mark.parametrize(
    "options",
    [
        {"importance": "l1"},
        {"importance": "bn_scale"},
        {"importance": "taylor"},
        {"importance": "activation"},
        {"scope": "global"},
        {"round_to": 4, "sparsity": 0.6},
    ],
    ids=["l1", "bn_scale", "taylor", "activation", "global", "round_to"],
)
def test_importance_scope_and_rounding_all_verify(options, write_recipe):
    train = {"epochs": 1, "optimizer": {"type": "adam", "lr": 0.001}}
    raw = recipe("cnn", 16, [{**CHANNELS, **options}], train=train)
    pruned, record, reporter, model = run_pass(write_recipe(raw))
    assert record["importance"] == options.get("importance", "l2")
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    assert pruned.count_params() < model.count_params()
    if "round_to" in options:
        assert all(after % 4 == 0 for _, after in record["channels"].values())
    if options.get("importance") == "bn_scale":  # fc1 has no BatchNorm
        assert any(
            "ranked 1 group(s) without a BatchNormalization by l2" in n for n in reporter.notes
        )
    if options.get("scope") == "global":
        assert record["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)


def test_the_kept_neurons_are_the_strongest_by_l2_with_their_weights(write_recipe):
    pruned, _, _, model = run_pass(write_recipe(recipe("cnn", 16, [CHANNELS])))
    kernel = model.get_layer("fc1").kernel.numpy()
    strongest = np.sort(np.argsort(np.sqrt((kernel**2).sum(axis=0)))[16:])
    np.testing.assert_array_equal(
        pruned.get_layer("fc1").bias.numpy(), model.get_layer("fc1").bias.numpy()[strongest]
    )
    np.testing.assert_array_equal(
        pruned.get_layer("head").kernel.numpy(), model.get_layer("head").kernel.numpy()[strongest]
    )


def test_a_named_head_is_pruned_and_checked_on_its_kept_outputs(write_recipe):
    raw = recipe("cnn", 16, [{**CHANNELS, "targets": ["fc1", "head"]}])
    pruned, record, _, _ = run_pass(write_recipe(raw))
    assert record["channels"] == {"fc1": [32, 16], "head": [10, 5]}
    assert tuple(pruned.outputs[0].shape) == (None, 5)
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]


def test_a_group_is_pruned_only_when_all_its_producers_are_targeted(write_recipe):
    raw = recipe("cnn", 16, [{**CHANNELS, "ignore": ["res_conv"]}])
    _, record, reporter, _ = run_pass(write_recipe(raw))
    assert "stem" not in record["channels"]
    assert {"group": "stem", "why": "is coupled with res_conv, which the targets leave out"} in (
        record["left_whole"]
    )
    assert any("stem: is coupled with res_conv" in note for note in reporter.notes)


@pytest.mark.parametrize("builder", ["reshaped", "tf_keras_reshaped"])
def test_reshape_and_lambda_leave_their_groups_whole(builder, write_recipe):
    pruned, record, reporter, _ = run_pass(write_recipe(recipe(builder, 8, [CHANNELS])))
    why = {item["group"]: item["why"] for item in record["left_whole"]}
    assert "Reshape" in why["before_reshape"] and "Lambda" in why["before_lambda"]
    assert record["channels"] == {"after_reshape": [12, 6]}
    assert pruned.get_layer("after_reshape").filters == 6
    assert any("before_reshape: reaches reshape (Reshape)" in note for note in reporter.notes)


@pytest.mark.parametrize("builder", ["zoo", "tf_keras_zoo"])
def test_every_followed_layer_kind_agrees_with_the_masked_model(builder, write_recipe):
    pruned, record, _, model = run_pass(write_recipe(recipe(builder, 12, [CHANNELS])))
    assert record["channels"] == {"sep": [10, 5], "narrow": [6, 3], "fc": [12, 6]}
    sep = next(group for group in record["groups"] if group["name"] == "sep")
    assert {"sep", "tconv", "gate", "sep_bn", "mix"} <= set(sep["layers"])
    assert {
        "group": "mix",
        "why": "reaches dw2 (DepthwiseConv2D), which has depth_multiplier 2",
    } in (record["left_whole"])
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    assert pruned.get_layer("sep").pointwise_kernel.shape[-2:] == (6, 5)  # 3 inputs x 2, 5 out
    assert pruned.get_layer("mix").kernel.shape[-2] == 3 + 5  # the image's channels stay
    assert pruned.get_layer("flat_bn").gamma.shape[0] == 12 * 12 * 3
    assert pruned.count_params() < model.count_params()


def test_targets_that_leave_only_whole_groups_are_an_error(write_recipe):
    raw = recipe("reshaped", 8, [{**CHANNELS, "targets": ["before_reshape"]}])
    with pytest.raises(
        ModelError, match=r"no channel group .*\(before_reshape: reaches reshape \(Reshape\)"
    ):
        run_pass(write_recipe(raw))


def test_sequential_model_and_flatten_rows(write_recipe):
    """The Keras digits CNN is Sequential: conv2 -> pool -> Flatten -> fc1 interleaves rows."""
    pruned, record, _, _ = run_pass(write_recipe(digits_recipe([CHANNELS], epochs=1)))
    assert type(pruned).__name__ == "Sequential"
    assert record["channels"] == {"conv1": [16, 8], "conv2": [32, 16], "fc1": [64, 32]}
    assert pruned.get_layer("fc1").kernel.shape == (4 * 4 * 16, 32)
    assert record["verification"]["samples"] == "8 samples of the val split"


def test_subclassed_model_is_a_clear_error_with_exit_code_3(write_recipe, run_cli):
    code, _, err = run_cli("apply", write_recipe(recipe("subclassed", 8, [CHANNELS])))
    assert code == 3
    assert "channel pruning rebuilds the model smaller from its config" in err
    assert "subclassed TwoConvs" in err and "Functional" in err
    assert "Traceback" not in err


def test_subclassed_model_error_through_the_api(write_recipe):
    with pytest.raises(ModelError, match="a subclassed TwoConvs has none"):
        run_pass(write_recipe(recipe("subclassed", 8, [CHANNELS])))


def test_gradual_schedule_holds_masks_then_removes_channels(write_recipe):
    passes = [{**CHANNELS, "schedule": {"kind": "polynomial", "end_epoch": 2}}]
    train = {"epochs": 2, "optimizer": {"type": "adam", "lr": 0.001}}
    pruned, record, _, model = run_pass(write_recipe(recipe("cnn", 16, passes, train=train)))
    assert record["schedule"] == "polynomial" and record["training"]["steps"] == 8
    assert record["mask_updates"] >= 3
    assert record["channels"] == {name: [w, w // 2] for name, w in models.WIDTHS.items()}
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    assert pruned.count_params() == models.cnn("keras", models.HALVED).count_params()
    kernel = model.get_layer("fc1").kernel.numpy()  # the masked, trained full-size model
    assert int((np.abs(kernel).sum(axis=0) == 0).sum()) == 16


@pytest.mark.e2e
@pytest.mark.parametrize("builder", ["mobilenet_v2", "tf_keras_mobilenet_v2"])
def test_mobilenet_v2_inverted_residual_groups_are_halved(builder, write_recipe, tmp_path):
    report = compress.apply(write_recipe(recipe(builder, 32, [CHANNELS])), progress=False)
    assert report.framework == ("tf_keras" if builder.startswith("tf_keras") else "keras")
    record = report.passes[0]
    channels = record["channels"]
    expands = {name: sizes for name, sizes in channels.items() if name.endswith("_expand")}
    assert len(expands) == 16
    assert all(after == before // 2 for before, after in expands.values())
    residual = next(g for g in record["groups"] if g["name"] == "block_3_project")
    assert {"block_4_project", "block_5_project", "block_5_add"} & set(residual["layers"]) == {
        "block_4_project",
        "block_5_project",
    }
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    assert record["params_after"] < 0.35 * record["params_before"]
    assert report.compressed.params < 0.35 * report.baseline.params
    assert report.compressed.macs < 0.4 * report.baseline.macs
    assert report.compressed.export.parity_max_abs_diff < 1e-4
    got = onnx_outputs(tmp_path / "out" / report.artifacts.onnx, models.images(32, 4, seed=9))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-3)


def digits_recipe(passes: list[dict], epochs: int) -> dict:
    """The trained Keras digits CNN (Sequential) with its data."""
    raw = recipe("cnn", 16, passes)
    raw["model"] = {
        "source": f"{MODELS}/keras_digits_cnn.py:build",
        "weights": f"{MODELS}/keras_digits_cnn.weights.h5",
        "inputs": [{"name": "input", "shape": [-1, 8, 8, 1], "dtype": "float32"}],
    }
    raw["data"] = {"source": f"{MODELS}/digits.py:load_nhwc", "batch_size": 64}
    raw["train"] = {"epochs": epochs, "optimizer": {"type": "adam", "lr": 0.001}}
    raw["evaluate"] = {"metric": "accuracy"}
    return raw


def test_digits_cnn_at_half_the_channels_fine_tuned_keeps_its_accuracy(write_recipe):
    raw = digits_recipe([{**CHANNELS, "fine_tune": True}], epochs=5)
    report = compress.apply(write_recipe(raw), progress=False)
    record = report.passes[0]
    assert record["channels"] == {"conv1": [16, 8], "conv2": [32, 16], "fc1": [64, 32]}
    assert record["training"]["epochs"] == 5
    assert report.compressed.params < report.baseline.params / 3
    assert report.baseline.accuracy - report.compressed.accuracy <= 0.02


def test_recovery_distillation_fine_tunes_the_smaller_model_from_the_unpruned_one(write_recipe):
    distill = {"type": "distill", "temperature": 2.0, "alpha": 0.5}
    raw = digits_recipe([distill, {**CHANNELS, "fine_tune": True}], epochs=2)
    report = compress.apply(write_recipe(raw), progress=False)
    distilled, pruned = report.passes
    assert distilled["mode"] == "recovery" and "training" not in distilled
    assert pruned["training"]["epochs"] == 2 and pruned["params_after"] == 9802
    assert report.baseline.accuracy - report.compressed.accuracy <= 0.02
