"""Distillation: a student trained from a teacher, recovery distillation during pruning, feature
matching, and bad input."""

from __future__ import annotations

import pytest
from conftest import MODELS, seed_mlp_recipe

import compress
from compress.errors import ModelError, RecipeError

DIGITS = {
    "source": f"{MODELS}/digits_cnn.py:build",
    "weights": f"{MODELS}/digits_cnn.safetensors",
    "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
}
NANO = {"source": f"{MODELS}/digits_nano.py:build"}


def digits_recipe(passes: list, epochs: int = 3) -> dict:
    raw = seed_mlp_recipe(
        passes=passes, train={"epochs": epochs, "optimizer": {"type": "adam", "lr": 0.003}}
    )
    raw["model"] = dict(DIGITS)
    raw["data"] = {"source": f"{MODELS}/digits.py:load", "batch_size": 32}
    return raw


def test_student_is_trained_from_the_teacher_and_replaces_the_model(write_recipe):
    raw = digits_recipe([{"type": "distill", "student": NANO}])
    report = compress.apply(write_recipe(raw), progress=False)
    record = report.passes[0]
    assert record["mode"] == "student"
    assert record["student_params"] == 2410 and record["teacher_params"] == 38282
    assert report.baseline.params == 38282  # the teacher, as loaded
    assert report.compressed.params == 2410  # the student, exported
    assert report.compressed.accuracy > 0.75  # from a random init (10% by chance), 3 epochs
    assert record["training"]["steps"] == 3 * 45


def test_feature_distillation_learns_a_projection_between_widths(write_recipe):
    """The student's 32-wide hidden layer is matched to the teacher's 64-wide fc1."""
    raw = digits_recipe(
        [{"type": "distill", "student": NANO, "features": {"1": "fc1"}, "feature_weight": 0.01}],
        epochs=2,
    )
    report = compress.apply(write_recipe(raw), progress=False)
    record = report.passes[0]
    assert record["features"] == {"1": "fc1"}
    assert record["training"]["final_loss"] > 0
    assert report.compressed.params == 2410  # the projection is training-only, not exported
    assert report.compressed.accuracy > 0.5


def test_recovery_distillation_trains_the_passes_that_follow(write_recipe):
    raw = digits_recipe(
        [
            {"type": "distill", "temperature": 2.0, "alpha": 0.5},
            {"type": "prune", "sparsity": 0.5, "fine_tune": True},
        ],
        epochs=1,
    )
    report = compress.apply(write_recipe(raw), progress=False)
    distill, prune = report.passes
    assert distill["mode"] == "recovery" and "training" not in distill
    assert prune["training"]["epochs"] == 1 and prune["achieved_sparsity"] == pytest.approx(0.5)
    assert report.baseline.accuracy - report.compressed.accuracy <= 0.02


def test_recovery_distillation_alone_fine_tunes_by_itself(write_recipe):
    raw = digits_recipe(
        [{"type": "prune", "sparsity": 0.5}, {"type": "distill", "alpha": 1.0}], epochs=1
    )
    report = compress.apply(write_recipe(raw), progress=False)
    assert report.passes[1]["mode"] == "recovery"
    assert report.passes[1]["training"]["steps"] == 45


def test_teacher_with_another_output_shape(write_recipe):
    teacher = {"source": f"{MODELS}/seed_mlp.py:build"}
    raw = digits_recipe([{"type": "distill", "teacher": teacher, "student": NANO}])
    raw["model"] = {**DIGITS}
    with pytest.raises(ModelError, match="distill: the teacher cannot run on the model's inputs"):
        compress.apply(write_recipe(raw), progress=False)


def test_teacher_output_shape_mismatch_is_named(write_recipe, tmp_path):
    builder = tmp_path / "five.py"
    builder.write_text(
        "from torch import nn\n\ndef build():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 5))\n"
    )
    raw = digits_recipe(
        [{"type": "distill", "teacher": {"source": f"{builder}:build"}, "student": NANO}]
    )
    with pytest.raises(
        ModelError,
        match=r"teacher's output shape \(2, 5\) differs from the "
        r"student's \(2, 10\)",
    ):
        compress.apply(write_recipe(raw), progress=False)


def test_feature_layer_that_does_not_exist(write_recipe):
    raw = digits_recipe([{"type": "distill", "student": NANO, "features": {"1": "fc9"}}])
    with pytest.raises(ModelError, match="feature layer 'fc9' does not exist in the teacher"):
        compress.apply(write_recipe(raw), progress=False)


def test_distill_without_training_data(write_recipe):
    raw = digits_recipe([{"type": "distill", "student": NANO}])
    for section in ("data", "evaluate"):
        raw.pop(section)
    with pytest.raises(RecipeError, match=r"passes\.0: this pass fine-tunes: add train and data"):
        compress.apply(write_recipe(raw), progress=False)


def test_teacher_from_another_framework_is_refused(write_recipe):
    teacher = {"source": f"{MODELS}/keras_digits_cnn.py:build"}
    raw = digits_recipe([{"type": "distill", "teacher": teacher, "student": NANO}])
    with pytest.raises(ModelError, match="teacher and student must use the same framework"):
        compress.apply(write_recipe(raw), progress=False)


@pytest.mark.e2e
@pytest.mark.parametrize("flavor", ["keras", "tf_keras"])
def test_keras_student_and_recovery_distillation(write_recipe, flavor):
    builders = f"{MODELS.parent}/tests/builders.py"
    raw = seed_mlp_recipe(
        passes=[
            {"type": "distill", "alpha": 0.5},
            {"type": "prune", "sparsity": 0.5, "fine_tune": True},
        ],
        train={"epochs": 2, "optimizer": {"type": "adam", "lr": 0.003}},
    )
    raw["model"] = {
        "source": f"{builders}:{flavor}_mlp",
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    report = compress.apply(write_recipe(raw, "recover.yaml"), progress=False)
    assert report.passes[0]["mode"] == "recovery"
    assert report.passes[1]["achieved_sparsity"] == pytest.approx(0.5, abs=0.005)
    raw["passes"] = [
        {
            "type": "distill",
            "teacher": {"source": f"{builders}:{flavor}_mlp"},
            "features": {"hidden": "hidden"},
            "feature_weight": 0.1,
        }
    ]
    report = compress.apply(write_recipe(raw, "student.yaml"), progress=False)
    record = report.passes[0]
    assert record["mode"] == "recovery" and record["training"]["steps"] == 50
    assert record["features"] == {"hidden": "hidden"}


def test_plan_names_teacher_student_and_quantization_stage(run_cli):
    code, out, _ = run_cli("plan", MODELS.parent / "recipes" / "nano_distill_int4.yaml")
    assert code == 0
    assert "teacher: the model as loaded" in out and "student: ../models/digits_nano.py" in out
    assert "mode: weight_only" in out and "stage: onnx" in out


def test_outputs_never_replace_the_teachers_weights(write_recipe, tmp_path):
    """A teacher whose weights sit in the output folder under an output's name is an input:
    exit 2 before anything runs, the weights untouched."""
    import shutil

    from compress.errors import UsageError

    out = tmp_path / "out"
    out.mkdir()
    weights = out / "model.pruned.safetensors"
    shutil.copy(DIGITS["weights"], weights)
    teacher = {"source": DIGITS["source"], "weights": str(weights)}
    raw = digits_recipe([{"type": "distill", "teacher": teacher, "student": NANO}])
    before = weights.read_bytes()
    with pytest.raises(UsageError, match="refusing to overwrite the input file"):
        compress.apply(write_recipe(raw), output_dir=out, progress=False)
    assert weights.read_bytes() == before


def test_a_teacher_refused_for_holding_code_names_the_teachers_trust(
    write_recipe, run_cli, tmp_path
):
    """Friction: the refusal told the user to set `model.trust`, which trusts the model being
    compressed, not the teacher."""
    import torch

    from compress.sources import call_reference

    teacher = call_reference(f"{MODELS}/seed_mlp.py:build", tmp_path)
    torch.save(teacher, tmp_path / "teacher.pt")  # a whole pickled module: code to unpickle
    raw = seed_mlp_recipe(passes=[{"type": "distill", "teacher": {"source": "teacher.pt"}}])
    code, _, err = run_cli("plan", write_recipe(raw))
    assert code == 3, err
    assert "teacher: refused to load teacher.pt" in err and "teacher.trust: true" in err
    assert "model.trust" not in err
