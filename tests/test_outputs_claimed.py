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


def test_a_rerun_writes_over_what_compress_wrote_and_removes_what_it_left(tmp_path):
    """Friction: a magnitude run left an earlier channel run's model.pruned.safetensors, a
    failing tune an earlier passing tuned.yaml: what the same command wrote before and does
    not write now goes; other commands' files and the user's stay."""
    for name in ("report.json", "model.pruned.safetensors", "analysis.json", "notes.txt"):
        (tmp_path / name).write_text(name)
    record_written(tmp_path, ["report.json", "model.pruned.safetensors"], "compress apply")
    record_written(tmp_path, ["analysis.json"], "compress analyze")
    refuse_foreign(tmp_path, ["report.json"], "compress apply")  # a rerun may write it
    record_written(tmp_path, ["report.json"], "compress apply", replace=True)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != WRITTEN)
    assert left == ["analysis.json", "notes.txt", "report.json"]
    assert (tmp_path / WRITTEN).read_text().splitlines() == [
        "analysis.json\tcompress analyze",
        "report.json\tcompress apply",
    ]


def test_outputs_get_the_permissions_of_any_new_file(tmp_path):
    """Friction: tune's outputs were created 0600 (atomic writes), the others 0644."""
    import os

    from compress.atomic import write_text_atomic

    write_text_atomic(tmp_path / "tuning.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "tuning.json").stat().st_mode & 0o777 == 0o666 & ~mask


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


def test_a_rerun_replaces_the_folders_it_wrote(write_recipe, tmp_path):
    """Generation folders are directories: a second run's folder replaces the first's whole
    (a file the new run no longer writes inside it goes too)."""
    recipe = load_recipe(write_recipe(seed_mlp_recipe()))
    for run in ("first", "second"):
        plan = plan_outputs(recipe, tmp_path / "out")
        plan.open()
        folder = plan.stage(plan.generation_names["compressed"])
        folder.mkdir()
        (folder / f"{run}.onnx").write_text(run)
        plan.publish()
        plan.close()
    published = tmp_path / "out" / plan.generation_names["compressed"]
    assert sorted(p.name for p in published.iterdir()) == ["second.onnx"]
