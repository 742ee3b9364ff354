"""`compress validate` is a dry run of what `compress apply` hits in its first seconds, and
`compress plan` counts what the report will count: the frictions a newcomer found, each named."""

from __future__ import annotations

import json

from conftest import seed_mlp_recipe
from test_frictions import sequence_recipe

import compress
from compress.errors import EXIT_USAGE


def test_a_missing_data_callable_is_named_at_its_line_with_what_the_file_defines(
    write_recipe, run_cli
):
    """Friction: `validate` said ok, `apply` then failed with "has no attribute" and no line."""
    raw = seed_mlp_recipe()
    raw["data"]["source"] = raw["data"]["source"].replace(":load", ":dataset")
    recipe = write_recipe(raw)
    for command in ("validate", "apply"):
        code, _, err = run_cli(command, recipe)
        assert code == EXIT_USAGE, err
        assert "recipe.yaml:" in err and "data.source:" in err
        assert "seed_mlp.py defines no 'dataset'; the callables it defines: build, load" in err


def test_data_that_does_not_fit_model_inputs_names_the_shape_line(write_recipe, run_cli):
    """Friction: a wrong `model.inputs` shape passed `validate`."""
    raw = seed_mlp_recipe()
    raw["model"]["inputs"][0]["shape"] = [-1, 12]
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "model.inputs.0.shape:" in err
    assert "'features' arrays of shape [" in err and ", 10], which do not fit" in err


def test_a_model_that_cannot_run_on_the_declared_inputs_is_a_recipe_error(write_recipe, run_cli):
    """Friction: without data, `apply` printed torch's log lines and an exporter failure that
    did not name `model.inputs`; now `validate` and `apply` both say which line is wrong."""
    raw = seed_mlp_recipe()
    for section in ("data", "train", "evaluate", "budgets"):
        raw.pop(section, None)
    raw["passes"] = [{"type": "prune", "sparsity": 0.5}]
    raw["model"]["inputs"][0]["shape"] = [-1, 12]
    recipe = write_recipe(raw)
    for command in ("validate", "apply"):
        code, _, err = run_cli(command, recipe)
        assert code == EXIT_USAGE, err
        assert "model.inputs.0.shape: the model does not run on the declared inputs" in err
        assert "[2, 12]" in err and "always_classified" not in err and "E1" not in err


def test_validate_takes_the_loss_on_a_batch(write_recipe, run_cli, tmp_path):
    """Targets that do not fit the loss are found by `validate`, at `train.loss`."""
    code, _, err = run_cli(
        "validate", write_recipe(sequence_recipe(tmp_path, "load_one_target_per_sequence"))
    )
    assert code == EXIT_USAGE
    assert "train.loss: train.loss cross_entropy: model outputs (2, 8, 16) and targets (2,)" in err


def test_validate_reports_the_data_it_ran_the_model_on(write_recipe, run_cli):
    code, out, err = run_cli("validate", write_recipe(seed_mlp_recipe()))
    assert code == 0, err
    assert "valid (torch, 652 params in the torch model, 1 pass(es))" in out
    assert "data: train " in out and "the model ran on a batch of each" in out


def test_plan_counts_params_and_macs_as_the_report_does(write_recipe, run_cli, tmp_path):
    """Friction: plan counted framework parameters (5,252) where the report counts the ONNX
    file's (5,220); distill rows read "0 layer(s)"."""
    raw = seed_mlp_recipe()
    raw["export"] = {"path": "out/model.onnx"}
    recipe = write_recipe(raw)
    code, out, err = run_cli("plan", recipe, "--json")
    assert code == 0, err
    planned = json.loads(out)
    report = compress.apply(recipe, progress=False)
    assert (planned["params"], planned["macs"]) == (report.baseline.params, report.baseline.macs)
    step = planned["passes"][0]
    assert step["weights_before"] == 600 and step["nonzero_after"] == 300
    assert step["params_after"] == report.compressed.params
