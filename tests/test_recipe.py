"""Recipe schema and loading: every bad input is one file:line:col line and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import MODELS, RECIPES, seed_mlp_recipe

import compress
from compress.errors import RecipeError
from compress.recipe import check_usage, load_recipe
from compress.units import parse_size

BASE = f"""\
version: 1
name: t
model:
  source: {MODELS}/seed_mlp.py:build
  inputs:
    - {{name: x, shape: [-1, 10]}}
"""


def error_of(write_recipe, text: str) -> str:
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(text))
    return str(caught.value)


def test_every_shipped_recipe_is_valid():
    recipes = sorted(RECIPES.glob("*.yaml"))
    assert recipes
    for path in recipes:
        recipe = load_recipe(path)
        assert recipe.name
        source = recipe.resolve(recipe.model.source.split(":")[0])
        assert source.is_file() or recipe.model_folder == source


def test_unknown_key_points_at_the_key(write_recipe):
    message = error_of(
        write_recipe, BASE + "passes:\n  - type: prune\n    sparsity: 0.5\n    sparsty: 1\n"
    )
    assert re.search(r"recipe\.yaml:10:5: passes\.0\.sparsty: unknown key", message)


def test_unknown_top_level_key(write_recipe):
    message = error_of(write_recipe, BASE + "extras: 1\n")
    assert "recipe.yaml:7:1: extras: unknown key" in message


def test_wrong_type_points_at_the_value(write_recipe):
    message = error_of(write_recipe, BASE + "data: {source: x.py:load, batch_size: many}\n")
    assert re.search(r"recipe\.yaml:7:\d+: data\.batch_size: .*integer", message)


@pytest.mark.parametrize("value", ["1.0", "-0.1", "1.5"])
def test_sparsity_must_be_in_zero_one(write_recipe, value):
    message = error_of(write_recipe, BASE + f"passes:\n  - type: prune\n    sparsity: {value}\n")
    assert "recipe.yaml:9:15: passes.0.sparsity:" in message
    assert "less than 1" in message or "greater than or equal to 0" in message


def test_unknown_pass_type_lists_known_types(write_recipe):
    message = error_of(write_recipe, BASE + "passes:\n  - type: sharpen\n")
    assert "recipe.yaml:8:5: passes.0: unknown pass type 'sharpen'; known types: prune" in message


def test_several_errors_are_all_reported_one_per_line(write_recipe):
    message = error_of(write_recipe, BASE + "passes:\n  - {type: prune, sparsity: 2}\nfoo: 1\n")
    lines = message.splitlines()
    assert len(lines) == 2
    assert all(re.match(r".*recipe\.yaml:\d+:\d+: ", line) for line in lines)


def test_duplicate_keys_are_errors(write_recipe):
    message = error_of(write_recipe, BASE + "name: again\n")
    assert "recipe.yaml:7:1: duplicate key 'name'" in message


def test_yaml_syntax_error_has_a_position(write_recipe):
    message = error_of(write_recipe, BASE + "passes: [\n")
    assert re.search(r"recipe\.yaml:\d+:\d+: invalid YAML", message)


def test_yaml_tags_that_run_code_are_rejected(write_recipe):
    message = error_of(write_recipe, BASE + "evil: !!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in message


def test_missing_files_point_at_the_field(write_recipe, tmp_path):
    text = BASE.replace("seed_mlp.py:build", "nope.py:build") + "  weights: missing.safetensors\n"
    message = error_of(write_recipe, text)
    assert re.search(r"recipe\.yaml:4:11: model\.source: no such file: .*nope\.py", message)
    assert "model.weights: no such file: missing.safetensors" in message
    # a copied recipe's relative path: where it was looked for, and relative to what
    folder = tmp_path.resolve()
    assert (
        f"looked for {folder / 'missing.safetensors'} (paths are relative to the recipe's"
        in message
    )


def test_schedule_must_end_within_training(write_recipe):
    recipe = seed_mlp_recipe(
        passes=[{"type": "prune", "sparsity": 0.5, "schedule": {"end_epoch": 5}}]
    )
    loaded = load_recipe(write_recipe(recipe))  # a session's loop may run longer: valid
    with pytest.raises(RecipeError, match=r"end_epoch 5 is after the last training epoch"):
        check_usage(loaded, "apply")


def test_training_pass_needs_train_and_data_only_for_apply(write_recipe):
    recipe = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5, "fine_tune": True}])
    del recipe["train"]
    loaded = load_recipe(write_recipe(recipe))
    assert check_usage(loaded, "session") is loaded
    with pytest.raises(RecipeError, match=r"passes\.0: this pass fine-tunes: add train and data"):
        check_usage(loaded, "apply")
    with pytest.raises(RecipeError, match=r"recipe\.yaml:\d+:\d+: passes\.0: this pass"):
        compress.apply(loaded, progress=False)


def test_validate_says_what_each_usage_needs(write_recipe, run_cli):
    qat = write_recipe(seed_mlp_recipe(passes=[{"type": "quantize", "mode": "qat"}]))
    code, out, _ = run_cli("validate", qat)
    assert code == 0 and "valid (torch, 652 params in the torch model, 1 pass(es))" in out
    assert "  compress apply: ok\n  CompressionSession: needs changes:\n" in out
    assert "passes.0: a session cannot run this pass (quantization-aware training" in out
    code, out, err = run_cli("validate", qat, "--usage", "session")
    assert code == 2 and out == ""
    assert "cannot run with CompressionSession (it can with compress apply: --usage apply)" in err
    code, _, err = run_cli("validate", qat, "--usage", "train")
    assert code == 2 and "'train' is not one of 'apply', 'session'" in err


def test_polynomial_schedule_needs_end_epoch(write_recipe):
    recipe = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5, "schedule": {}}])
    with pytest.raises(RecipeError, match=r"passes\.0\.schedule: a polynomial schedule needs"):
        load_recipe(write_recipe(recipe))


def test_budget_sizes_accept_units(write_recipe):
    recipe = load_recipe(write_recipe(seed_mlp_recipe(budgets={"size_bytes": {"max": "1.5MiB"}})))
    assert recipe.budgets.size_bytes.max == 1.5 * 1024 * 1024


def test_paths_resolve_against_the_recipe_directory(write_recipe, tmp_path):
    recipe = load_recipe(write_recipe(seed_mlp_recipe()))
    assert recipe.resolve(recipe.export.path) == tmp_path / "out" / "model.onnx"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(123, 123), ("200kB", 200_000), ("1 MiB", 1_048_576), ("2GB", 2_000_000_000), ("10", 10)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["12 parsecs", "-1", "kB", True])
def test_parse_size_rejects_nonsense(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_recipe_as_data_with_a_base_dir(tmp_path):
    """A dict as the YAML would parse, paths relative to base_dir: no temporary YAML file."""
    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5}])
    raw.pop("train")
    raw["model"]["source"] = "seed_mlp.py:build"
    raw["model"]["weights"] = "seed_mlp.safetensors"
    raw["data"]["source"] = "seed_mlp.py:load"
    raw["export"]["path"] = str(tmp_path / "out" / "model.onnx")
    recipe = load_recipe(raw, base_dir=MODELS)
    assert recipe.base_dir == MODELS and recipe.path is None
    report = compress.apply(raw, base_dir=MODELS, progress=False)
    assert report.compressed.sparsity > 0.4
    assert Path(report.artifacts.report_json).parent == tmp_path / "out"


def test_recipe_as_data_errors_name_the_field():
    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsty": 0.5}])
    with pytest.raises(RecipeError) as caught:
        load_recipe(raw, base_dir=MODELS)
    assert "passes.0.sparsty: unknown key (not part of recipe version 1)" in str(caught.value)
    assert ".yaml:" not in str(caught.value)  # no file to point at


def test_typos_name_the_key_they_are_closest_to(write_recipe):
    """A newcomer's typos: each unknown key says which key it most likely meant, at its line;
    a key like no other gets no guess."""
    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsty": 0.5}])
    raw["model"]["wieghts"] = raw["model"].pop("weights")
    raw["measur"] = raw.pop("measure")
    raw["zzz"] = 1
    with pytest.raises(RecipeError) as err:
        load_recipe(write_recipe(raw))
    message = str(err.value)
    assert re.search(
        r"recipe\.yaml:\d+:\d+: passes\.0\.sparsty: unknown key .*did you mean 'sparsity'\?",
        message,
    )
    assert (
        "model.wieghts: unknown key (not part of recipe version 1); did you mean 'weights'?"
        in message
    )
    assert "measur: unknown key (not part of recipe version 1); did you mean 'measure'?" in message
    assert "zzz: unknown key (not part of recipe version 1)\n" in message + "\n"


@pytest.mark.parametrize(
    ("pass_", "guess"),
    [
        ({"type": "prnue", "sparsity": 0.5}, "prune"),
        ({"type": "prune", "method": "chanel", "sparsity": 0.5}, "channel"),
        ({"type": "quantize", "mode": "statc"}, "static"),
    ],
)
def test_misspelt_values_name_the_closest_allowed_one(write_recipe, pass_, guess):
    with pytest.raises(RecipeError, match=rf"did you mean '{guess}'\?"):
        load_recipe(write_recipe(seed_mlp_recipe(passes=[pass_])))
