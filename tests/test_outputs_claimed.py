"""Where commands write: a folder per recipe by default, and never over a file compress did not
write (the output directory's .compress-written lists what it did)."""

from __future__ import annotations

import time

from conftest import seed_mlp_recipe

from compress.errors import EXIT_USAGE
from compress.outputs import WRITTEN, plan_outputs, record_written, refuse_foreign
from compress.recipe import load_recipe


def test_recipes_without_an_export_path_write_to_their_own_folders(write_recipe, tmp_path):
    """Friction: the default export.path was out/model.onnx for every recipe, so a second
    minimal recipe silently wrote over the first one's report."""
    raw = seed_mlp_recipe()
    del raw["export"]
    first = load_recipe(write_recipe(raw, "first.yaml"))
    second = load_recipe(write_recipe(raw, "second.yaml"))
    assert first.export.path is None
    assert plan_outputs(first, None).directory == tmp_path / "out" / "first"
    assert plan_outputs(second, None).directory == tmp_path / "out" / "second"
    given = load_recipe({**raw, "name": "as data"}, base_dir=tmp_path)
    assert given.export_path == "out/as-data/model.onnx"


def test_a_rerun_writes_over_what_compress_wrote_and_nothing_else(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "trials").mkdir()
    record_written(tmp_path, ["report.json", "trials/"])
    refuse_foreign(tmp_path, ["report.json", "trials/"], "compress tune")  # a rerun may write
    assert (tmp_path / WRITTEN).read_text().split() == ["report.json", "trials"]


def test_apply_analyze_and_tune_refuse_a_users_file_of_an_output_name(
    write_recipe, run_cli, tmp_path
):
    recipe = write_recipe({**seed_mlp_recipe(), "budgets": {"sparsity": {"min": 0.4}}})
    mine = tmp_path / "mine"
    mine.mkdir()
    for command, name in (("apply", "report.json"), ("analyze", "analysis.json")):
        (mine / name).write_text("my own notes")
        started = time.perf_counter()
        code, _, err = run_cli(command, recipe, "-o", mine)
        assert code == EXIT_USAGE, err
        assert f"refusing to write over {mine / name}" in err and "not written by compress" in err
        assert time.perf_counter() - started < 5  # refused before any model is loaded
        assert (mine / name).read_text() == "my own notes"
    (mine / "trials").mkdir()
    code, _, err = run_cli("tune", recipe, "-o", mine)
    assert code == EXIT_USAGE and f"refusing to write over {mine / 'trials'}" in err
