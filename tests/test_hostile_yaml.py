"""Hostile and careless YAML (recipes and budget files): alias bombs, deep nesting and huge
files are refused at once with exit 2 and the position, before anything is built."""

from __future__ import annotations

import time

import pytest

from compress.errors import EXIT_USAGE
from compress.yaml_source import MAX_BYTES, MAX_DEPTH

pytestmark = pytest.mark.unit
#: "At once": generous for a busy CI machine; each case takes milliseconds here (a bomb took 60 s
#: and a 10-level one did not finish in 90 s before the bounds).
PROMPT = 5.0


def billion_laughs(levels: int) -> str:
    """Each anchor a list of nine aliases of the one before: 9**levels values expanded."""
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def refused(run_cli, *args) -> str:
    started = time.perf_counter()
    code, _, err = run_cli(*args)
    assert time.perf_counter() - started < PROMPT
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err and "RecursionError" not in err
    return err


@pytest.mark.parametrize("levels", [9, 10])
def test_alias_bomb_recipe_is_refused_at_the_alias(run_cli, tmp_path, levels):
    path = tmp_path / "bomb.yaml"
    path.write_text("version: 1\n" + billion_laughs(levels))
    err = refused(run_cli, "validate", path)
    # lol6 expands to 9**6 = 531,441 values, past the bound, at its first alias
    assert f"{path}:8:" in err and "aliases expand to more than 200,000 values" in err


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deep_nesting_is_bad_input_not_a_bug(run_cli, tmp_path, depth):
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\npasses: " + "[" * depth + "]" * depth + "\n")
    err = refused(run_cli, "validate", path)
    # the top-level mapping is the first level: the 64th bracket, at its column, is one too many
    assert f"{path}:2:{len('passes: ') + MAX_DEPTH}: nested more than 64 levels" in err


def test_huge_recipe_is_refused_by_its_size(run_cli, tmp_path):
    path = tmp_path / "huge.yaml"
    line = "# " + "x" * 1000 + "\n"
    path.write_text("version: 1\n" + line * (MAX_BYTES // len(line) + 1))
    err = refused(run_cli, "validate", path)
    assert f"{path}: 4.0 MB of YAML is more than the 4 MB" in err


def test_ordinary_anchors_still_work(run_cli, tmp_path):
    """Anchors within the bound are YAML a user may write: shared settings, reused."""
    from compress.yaml_source import parse_yaml

    text = "base: &base {sparsity: 0.5}\npasses: [*base, *base]\n"
    parsed = parse_yaml(text, tmp_path / "r.yaml")
    assert parsed.data["passes"] == [{"sparsity": 0.5}, {"sparsity": 0.5}]
