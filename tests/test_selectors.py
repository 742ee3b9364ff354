"""Every layer selector must select: targets, ignore and per-layer overrides that match nothing,
and regular expressions that do not compile, are recipe errors at their line (exit 2), in
`validate` and `apply` alike, before any work."""

from __future__ import annotations

import pytest
from conftest import seed_mlp_recipe

from compress.errors import EXIT_USAGE


def recipe_with(write_recipe, **prune) -> str:
    return write_recipe(seed_mlp_recipe(passes=[{"type": "prune", **prune}]))


@pytest.mark.parametrize("command", ["validate", "apply"])
def test_an_override_that_matches_no_layer_is_an_error(write_recipe, run_cli, command):
    """Friction: `overrides: {conv9: 0.3}` applied with exit 0, the typo'd layer at the
    default level."""
    recipe = recipe_with(write_recipe, sparsity={"default": 0.5, "overrides": {"9": 0.3}})
    code, _, err = run_cli(command, recipe)
    assert code == EXIT_USAGE, err
    assert "recipe.yaml:" in err and "passes.0.sparsity.overrides.9:" in err
    assert "override '9' matches none of the layers the pass works on (0, 2)" in err


def test_an_override_by_regex_that_matches_a_layer_is_taken(write_recipe, run_cli):
    recipe = recipe_with(write_recipe, sparsity={"default": 0.5, "overrides": {"re:[0-9]": 0.3}})
    code, _, err = run_cli("validate", recipe)
    assert code == 0, err


@pytest.mark.parametrize(
    ("prune", "where"),
    [
        ({"sparsity": 0.5, "targets": ["re:conv["]}, "passes.0.targets.0"),
        ({"sparsity": 0.5, "ignore": ["re:(fc"]}, "passes.0.ignore.0"),
        ({"sparsity": {"default": 0.5, "overrides": {"re:*": 0.2}}}, "passes.0.sparsity"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "apply"])
def test_a_bad_regular_expression_is_a_recipe_error_at_its_line(
    write_recipe, run_cli, command, prune, where
):
    """Friction: `re:conv[` ended in exit 3 "unexpected failure ... this is a bug"."""
    code, _, err = run_cli(command, recipe_with(write_recipe, **prune))
    assert code == EXIT_USAGE, err
    assert "recipe.yaml:" in err and where in err
    assert "is not a valid regular expression" in err and "bug" not in err
