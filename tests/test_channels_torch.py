"""Channel pruning of PyTorch models (`prune` with `method: channel`): real models, real
training, the pruned model exported and run in onnxruntime by the pipeline, its record checked
against the architecture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODELS, RECIPES
from torch_channel_models import coupled_net, dead_channel_net, tiny_bert, tiny_gpt2

import compress
from compress.errors import EXIT_MODEL, EXIT_USAGE, ModelError

HERE = Path(__file__).parent
BUILDERS = HERE / "torch_channel_models.py"


def channel_recipe(builder: str, passes: list[dict], **overrides) -> dict:
    """A recipe over one of torch_channel_models.py's builders (3x16x16 images by default)."""
    recipe = {
        "version": 1,
        "name": f"channels-{builder}",
        "model": {
            "source": f"{BUILDERS}:{builder}",
            "inputs": [{"name": "images", "shape": ["batch", 3, 16, 16]}],
        },
        "data": {"source": f"{BUILDERS}:labelled_images", "batch_size": 32},
        "train": {"epochs": 3, "optimizer": {"type": "adam", "lr": 0.003}},
        "evaluate": {"metric": "accuracy"},
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": {"warmup": 2, "runs": 10}},
    }
    recipe.update(overrides)
    return recipe


def channel_pass(**fields) -> dict:
    return {"type": "prune", "method": "channel", "sparsity": 0.5, **fields}


def prune_record(report: compress.Report):
    return next(record for record in report.passes if record["type"] == "prune")


def test_coupled_groups_are_cut_together_and_verified(tmp_path):
    """Residual add, depthwise conv, concat and flatten -> Linear: each coupled group loses
    half its channels, the classifier keeps its 10 classes, the masked and pruned models agree
    and the ONNX export of the smaller model matches it."""
    report = compress.apply(
        channel_recipe("coupled_net", [channel_pass()]), output_dir=tmp_path, progress=False
    )
    record = prune_record(report)
    channels = record["channels"]
    assert channels["stem.0"] == [16, 8]  # the residual group: stem, block2 and the add
    assert "block2.0" not in channels  # coupled into the stem's group, not a group of its own
    assert channels["block1.0"] == [16, 8]
    assert channels["left"] == channels["right"] == [8, 4]  # concat offsets into merge
    assert channels["fc"] == [32, 16]  # flatten -> Linear
    assert "head" not in channels  # the classifier's outputs are the model's outputs
    residual = next(g for g in record["groups"] if g["name"] == "stem.0")
    assert {"stem.0", "stem.1", "block2.0", "block2.1", "depthwise.0"} <= set(residual["layers"])
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    assert record["achieved_sparsity"] == pytest.approx(0.5)
    assert record["params_after"] < 0.4 * record["params_before"]
    assert report.compressed.params < 0.4 * report.baseline.params
    assert report.compressed.macs < 0.4 * report.baseline.macs
    assert report.compressed.export.parity_max_abs_diff < 1e-4


def test_saved_pruned_model_loads_into_the_builder_and_matches_onnx(tmp_path):
    """model.pruned.safetensors (no pickle) resizes a freshly built model to the pruned widths;
    it computes what the exported ONNX model does."""
    import onnxruntime as ort

    report = compress.apply(
        channel_recipe("coupled_net", [channel_pass(fine_tune=True)]),
        output_dir=tmp_path,
        progress=False,
    )
    saved = Path(report.artifacts.model)
    assert saved.name == "model.pruned.safetensors" and saved.is_file()
    model = compress.load_pruned(saved, coupled_net())
    assert model.fc.out_features == 16 and model.stem[0].out_channels == 8
    images = np.random.default_rng(1).uniform(0, 1, (4, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(images)).numpy()
    session = ort.InferenceSession(report.artifacts.onnx, providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_saved_model_does_not_fit_another_architecture(tmp_path):
    report = compress.apply(
        channel_recipe("coupled_net", [channel_pass()]), output_dir=tmp_path, progress=False
    )
    with pytest.raises(ModelError, match=r"another architecture|does not fit"):
        compress.load_pruned(report.artifacts.model, torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.e2e
def test_fine_tuned_pruned_model_keeps_its_accuracy(tmp_path):
    """Trained first, then half the channels removed and fine-tuned with the dense model as
    teacher: the accuracy comes back to within 3 points."""
    trained = tmp_path / "trained.safetensors"
    from safetensors.torch import save_file

    model = coupled_net().train()
    data = __import__("torch_channel_models").labelled_images()
    x, y = (torch.from_numpy(a) for a in data["train"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    for _ in range(8):
        for start in range(0, len(x), 32):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(x[start : start + 32]), y[start : start + 32]
            )
            loss.backward()
            optimizer.step()
    save_file(model.state_dict(), str(trained))
    recipe = channel_recipe(
        "coupled_net",
        [{"type": "distill", "alpha": 0.5, "temperature": 2.0}, channel_pass(fine_tune=True)],
    )
    recipe["model"]["weights"] = str(trained)
    report = compress.apply(recipe, output_dir=tmp_path / "out", progress=False)
    assert report.baseline.accuracy >= 0.8
    assert report.baseline.accuracy - report.compressed.accuracy <= 0.03
    assert prune_record(report)["training"]["steps"] == 30


def test_gradual_schedule_masks_channels_then_removes_them(tmp_path):
    """A schedule over 2 epochs moves channel masks during training (several updates), then
    removes the masked channels and proves the cut."""
    schedule = {"kind": "linear", "start_epoch": 0, "end_epoch": 2}
    report = compress.apply(
        channel_recipe("coupled_net", [channel_pass(schedule=schedule)]),
        output_dir=tmp_path,
        progress=False,
    )
    record = prune_record(report)
    assert record["schedule"] == "linear"
    assert record["mask_updates"] > 2
    assert record["achieved_sparsity"] == pytest.approx(0.5)
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]


def test_global_scope_with_round_to_keeps_multiples(tmp_path):
    report = compress.apply(
        channel_recipe("coupled_net", [channel_pass(scope="global", round_to=4, sparsity=0.4)]),
        output_dir=tmp_path,
        progress=False,
    )
    for before, after in prune_record(report)["channels"].values():
        assert after % 4 == 0 and 0 < after <= before


def test_taylor_importance_uses_the_training_loss(tmp_path):
    report = compress.apply(
        channel_recipe("coupled_net", [channel_pass(importance="taylor")]),
        output_dir=tmp_path,
        progress=False,
    )
    record = prune_record(report)
    assert record["importance"] == "taylor" and record["achieved_sparsity"] == pytest.approx(0.5)


@pytest.mark.parametrize(("importance", "dead_kept"), [("l2", True), ("activation", False)])
def test_activation_importance_removes_a_channel_that_never_fires(tmp_path, importance, dead_kept):
    """Magnitude ranks the dead channel (largest weights) first; activations (Minitron's
    criterion, measured on the train images) rank it last."""
    recipe = channel_recipe(
        "dead_channel_net", [channel_pass(importance=importance, targets=["0"])]
    )
    report = compress.apply(recipe, output_dir=tmp_path, progress=False)
    assert prune_record(report)["channels"] == {"0": [8, 4]}
    pruned = compress.load_pruned(report.artifacts.model, dead_channel_net())
    assert bool((pruned[0].bias == -1000.0).any()) is dead_kept


@pytest.mark.e2e
def test_heads_follow_the_level_of_their_attention(tmp_path):
    """Heads follow the level of their attention (here the default, 1 of 4), not the highest
    level of the pass (the FFN override, half)."""
    inputs = [
        {"name": name, "shape": ["batch", "sequence"], "dtype": "int64"}
        for name in ("input_ids", "attention_mask")
    ]
    levels = {"default": 0.25, "overrides": {"re:.*intermediate\\.dense": 0.5}}
    recipe = channel_recipe(
        "tiny_bert",
        [channel_pass(sparsity=levels)],
        model={"source": f"{BUILDERS}:tiny_bert", "inputs": inputs},
        data={"source": f"{BUILDERS}:tokens", "batch_size": 8},
        evaluate={"metric": "cosine"},
        measure={"latency": None},
    )
    record = prune_record(compress.apply(recipe, output_dir=tmp_path, progress=False))
    heads = [g for g in record["groups"] if g["kind"] == "heads"]
    neurons = [g for g in record["groups"] if g["kind"] == "neurons"]
    assert len(heads) == 2 and all((g["before"], g["after"]) == (4, 3) for g in heads)
    assert len(neurons) == 2 and all((g["before"], g["after"]) == (128, 64) for g in neurons)


@pytest.mark.e2e
def test_bert_heads_and_neurons_are_removed(tmp_path):
    """Heads go whole (4 -> 2 per layer, the attention modules told), FFN neurons by half; the
    hidden size (tied to the embeddings and the model's output) stays."""
    inputs = [
        {"name": name, "shape": ["batch", "sequence"], "dtype": "int64"}
        for name in ("input_ids", "attention_mask")
    ]
    recipe = channel_recipe(
        "tiny_bert",
        [
            channel_pass(targets=["re:.*intermediate\\.dense"]),
            channel_pass(targets=["re:.*attention\\.self\\.(query|key|value)"]),
        ],
        model={"source": f"{BUILDERS}:tiny_bert", "inputs": inputs},
        data={"source": f"{BUILDERS}:tokens", "batch_size": 8},
        evaluate={"metric": "cosine"},
        measure={"latency": {"warmup": 2, "runs": 5, "dims": {"sequence": 16}}},
    )
    report = compress.apply(recipe, output_dir=tmp_path, progress=False)
    ffn, attention = (r for r in report.passes if r["type"] == "prune")
    assert len(ffn["channels"]) == 2
    assert all(v == [128, 64] for v in ffn["channels"].values())
    heads = [g for g in attention["groups"] if g["kind"] == "heads"]
    assert len(heads) == 2 and all((g["before"], g["after"]) == (4, 2) for g in heads)
    model = compress.load_pruned(report.artifacts.model, tiny_bert())
    attention_module = model.model.encoder.layer[0].attention.self
    assert attention_module.num_attention_heads == 2
    assert model.model.encoder.layer[0].intermediate.dense.out_features == 64
    assert model.model.embeddings.word_embeddings.embedding_dim == 64
    assert report.compressed.macs < report.baseline.macs


@pytest.mark.e2e
def test_vit_heads_of_the_new_attention_layout_are_removed(tmp_path):
    """transformers 5's ViT (q_proj/k_proj/v_proj/o_proj, head_dim): heads go whole, 4 -> 2,
    the MLP by half; the hidden size (LayerNorms) stays whole with a note."""
    recipe = channel_recipe(
        "vit",
        [channel_pass()],
        model={
            "source": f"{HERE}/corpus_torch_models.py:vit",
            "inputs": [{"name": "pixel_values", "shape": ["batch", 3, 32, 32]}],
        },
        data={"source": f"{HERE}/corpus_torch_models.py:images", "batch_size": 8},
        evaluate={"metric": "cosine"},
    )
    report = compress.apply(recipe, output_dir=tmp_path, progress=False)
    record = prune_record(report)
    heads = [g for g in record["groups"] if g["kind"] == "heads"]
    assert [(g["before"], g["after"]) for g in heads] == [(4, 2), (4, 2)]
    assert record["channels"]["model.vit.layers.0.mlp.fc1"] == [128, 64]
    assert "LayerNorm" in record["left_whole"][0]["why"]
    assert report.compressed.export.parity_max_abs_diff < 1e-4


def test_bare_parameter_group_is_left_whole_with_a_note(tmp_path):
    """A per-channel scale held as a bare nn.Parameter cannot be masked to verify the cut: its
    group stays whole and the report says so; the rest is pruned."""
    report = compress.apply(
        channel_recipe("bare_parameter_net", [channel_pass()]), output_dir=tmp_path, progress=False
    )
    record = prune_record(report)
    assert [item["group"] for item in record["left_whole"]] == ["conv1"]
    assert "bare parameter" in record["left_whole"][0]["why"]
    assert record["channels"] == {"conv2": [8, 4]}
    assert any("conv1" in note and "left whole" in note for note in report.notes)


def test_a_mis_sliced_group_is_an_error_naming_it(run_cli, write_recipe):
    """Torch-Pruning 1.6 slices a concatenation that goes straight into flatten -> Linear with
    the wrong offsets: the pruned model no longer runs, and the run says which group."""
    code, _, err = run_cli(
        "apply", write_recipe(channel_recipe("concat_flatten_net", [channel_pass()]))
    )
    assert code == EXIT_MODEL
    assert "fails to run after removing the channels of the group of 'left'" in err
    assert "ignore:" in err and "Traceback" not in err


def test_a_cut_that_changes_outputs_is_an_error_naming_the_group(run_cli, write_recipe):
    """A channel shuffle moves channels in a way Torch-Pruning does not follow: the cut model
    runs but disagrees with the masked one, and the run fails naming the group instead of
    shipping a wrong model."""
    code, _, err = run_cli("apply", write_recipe(channel_recipe("shuffle_net", [channel_pass()])))
    assert code == EXIT_MODEL
    assert "the group of 'conv1'" in err and "changes the model's outputs" in err
    assert "ignore:" in err and "Traceback" not in err


def test_neurons_under_a_layernorm_are_left_whole(tmp_path):
    """LayerNorm statistics span the neurons: that group stays whole with a note; the next
    group (not normalized) is cut."""
    recipe = channel_recipe(
        "layernorm_mlp",
        [channel_pass()],
        model={
            "source": f"{BUILDERS}:layernorm_mlp",
            "inputs": [{"name": "features", "shape": ["batch", 10]}],
        },
        data={"source": f"{MODELS}/seed_mlp.py:load", "batch_size": 64},
    )
    report = compress.apply(recipe, output_dir=tmp_path, progress=False)
    record = prune_record(report)
    assert record["channels"] == {"3": [16, 8]}
    assert record["left_whole"][0]["group"] == "0"
    assert "LayerNorm" in record["left_whole"][0]["why"]
    assert any("1 channel group(s) left whole" in note for note in report.notes)


@pytest.mark.e2e
def test_gpt2_feed_forward_neurons_are_cut_and_attention_left_whole(tmp_path):
    """GPT-2's Conv1D layers: the FFN loses half its neurons, the fused Q/K/V projection and
    the hidden size (LayerNorm, tied embeddings) stay; the saved model loads back as Conv1Ds."""
    recipe = channel_recipe(
        "tiny_gpt2",
        [channel_pass()],
        model={
            "source": f"{BUILDERS}:tiny_gpt2",
            "inputs": [{"name": "input_ids", "shape": ["batch", "sequence"], "dtype": "int64"}],
        },
        data={"source": f"{BUILDERS}:token_ids", "batch_size": 8},
        evaluate=None,
        measure={"latency": {"warmup": 2, "runs": 5, "dims": {"sequence": 16}}},
    )
    del recipe["evaluate"]
    report = compress.apply(recipe, output_dir=tmp_path, progress=False)
    record = prune_record(report)
    assert record["channels"] == {
        "model.transformer.h.0.mlp.c_fc": [256, 128],
        "model.transformer.h.1.mlp.c_fc": [256, 128],
    }
    whole = {item["group"] for item in record["left_whole"]}
    assert {"model.transformer.h.0.attn.c_attn", "model.transformer.h.1.attn.c_attn"} <= whole
    model = compress.load_pruned(report.artifacts.model, tiny_gpt2())
    fc = model.model.transformer.h[0].mlp.c_fc
    assert type(fc).__name__ == "Conv1D" and tuple(fc.weight.shape) == (64, 128)
    assert report.compressed.export.parity_max_abs_diff < 1e-4


def test_targets_that_leave_nothing_to_cut_are_an_error(run_cli, write_recipe):
    """The stem's channels are coupled with block2's through the residual add: targeting the
    stem alone cuts nothing, and the run says why instead of reporting 0% removed."""
    recipe = channel_recipe("coupled_net", [channel_pass(targets=["stem.0"])])
    code, _, err = run_cli("apply", write_recipe(recipe))
    assert code == EXIT_MODEL
    assert "no channel group of the targeted layers can be removed" in err


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "magnitude", "importance": "l1"}, "importance applies to method: channel"),
        ({"round_to": 8}, "round_to applies to method: channel"),
        ({"method": "channel", "engine": "tfmot"}, "engine applies to method: magnitude, n:m only"),
    ],
)
def test_channel_fields_are_checked_with_the_recipe(run_cli, write_recipe, fields, message):
    recipe = channel_recipe("coupled_net", [{"type": "prune", "sparsity": 0.5, **fields}])
    code, _, err = run_cli("validate", write_recipe(recipe))
    assert code == EXIT_USAGE
    assert message in err and "recipe.yaml:" in err


@pytest.mark.parametrize(
    ("importance", "removed", "message"),
    [
        ("taylor", ["train"], "importance taylor ranks channels by gradients"),
        ("activation", ["train", "data", "evaluate"], "importance activation ranks channels on"),
    ],
)
def test_data_driven_importance_without_data_is_refused(
    run_cli, write_recipe, importance, removed, message
):
    recipe = channel_recipe("coupled_net", [channel_pass(importance=importance)])
    for section in removed:
        del recipe[section]
    code, _, err = run_cli("validate", write_recipe(recipe))
    assert code == EXIT_USAGE
    assert message in err and "recipe.yaml:" in err


@pytest.mark.e2e
def test_resnet_channels_int8_recipe_on_small_images(tmp_path):
    """recipes/resnet_channels_int8.yaml on 64x64 images: channels pruned (MACs well under
    half), fine-tuned by distillation without labels, then INT8; the budgets hold. `compress
    plan` of it counts what the report counts (friction: it said 0.5x parameters where the run
    gives 0.26x, and its quantize rows named no node)."""
    import yaml

    from compress.planning import plan

    raw = yaml.safe_load((RECIPES / "resnet_channels_int8.yaml").read_text())
    raw["model"]["inputs"][0]["shape"] = ["batch", 3, 64, 64]
    raw["data"]["source"] = "../models/resnet.py:images_small"
    raw["train"]["epochs"] = 1
    raw["passes"][2]["calibration"]["samples"] = 16
    raw["measure"]["latency"] = {"warmup": 2, "runs": 5}
    planned = plan(compress.load_recipe(raw, base_dir=RECIPES))
    report = compress.apply(raw, output_dir=tmp_path, progress=False, base_dir=RECIPES)
    distill, cut, quantize = planned.passes
    assert distill["teacher_params"] == distill["student_params"]
    assert (planned.params, planned.macs) == (report.baseline.params, report.baseline.macs)
    assert cut["params_after"] == pytest.approx(report.compressed.params, rel=0.02)
    assert cut["macs_after"] == pytest.approx(report.compressed.macs, rel=0.02)
    assert len(quantize["nodes"]) == 21 and "int8 weights" in quantize["types"]
    record = prune_record(report)
    assert {g["name"]: [g["before"], g["after"]] for g in cut["groups"]} == record["channels"]
    assert record["achieved_sparsity"] == pytest.approx(0.5)
    assert record["training"]["steps"] == 2
    assert report.compressed.macs < 0.3 * report.baseline.macs
    assert report.passes[-1]["type"] == "quantize"
    assert all(budget.status == "pass" for budget in report.budgets)
    assert Path(report.artifacts.model).is_file()


@pytest.mark.e2e
def test_student_from_teacher_recipe_on_small_inputs(tmp_path):
    """recipes/student_from_teacher.yaml (real MiniLM) on a few docstring sentences: FFN
    neurons halved, 12 -> 8 heads, then distilled without labels; fidelity rises."""
    import yaml

    raw = yaml.safe_load((RECIPES / "student_from_teacher.yaml").read_text())
    raw["data"]["source"] = "../models/minilm.py:docstrings_small"
    raw["train"]["epochs"] = 1
    raw["measure"]["latency"] = {"warmup": 1, "runs": 3, "dims": {"sequence": 32}}
    report = compress.apply(raw, output_dir=tmp_path, progress=False, base_dir=RECIPES)
    ffn, heads = (r for r in report.passes if r["type"] == "prune")
    assert all(v == [1536, 768] for v in ffn["channels"].values())
    assert all((g["before"], g["after"]) == (12, 8) for g in heads["groups"])
    assert report.passes[-1]["type"] == "distill"
    assert report.compressed.macs < 0.6 * report.baseline.macs
    assert report.fidelity.value > 0.5


def test_a_pruned_file_whose_shapes_disagree_with_its_widths_is_refused(tmp_path):
    """Friction: load_pruned accepted a file of mismatched shapes and returned a model whose
    first forward pass failed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from compress.backends.torch.pruned_state import METADATA_KEY, save_pruned

    def build():
        return torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    save_pruned(build(), tmp_path / "good.safetensors")
    with safe_open(str(tmp_path / "good.safetensors"), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        widths = json.loads(handle.metadata()[METADATA_KEY])
    widths["2"]["in_features"] = 4  # says 4 inputs where the weight holds 8
    save_file(tensors, str(tmp_path / "bad.safetensors"), {METADATA_KEY: json.dumps(widths)})
    with pytest.raises(ModelError, match=r"layer '2' holds a \(2, 8\) tensor where its widths"):
        compress.load_pruned(tmp_path / "bad.safetensors", build())
    assert compress.load_pruned(tmp_path / "good.safetensors", build())[2].in_features == 8
