"""Settings that would run for hours or exhaust memory are recipe errors at their line (exit 2)
with the limit named, found by `validate` in well under a second of checking; timing stops
after `max_seconds` whatever `runs` says."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from conftest import seed_mlp_recipe
from test_quantize import ones_matmul

from compress.errors import EXIT_USAGE
from compress.measure.latency import measure_latency
from compress.recipe import LatencySpec


def latency_recipe(write_recipe, **latency) -> str:
    raw = seed_mlp_recipe()
    raw["measure"] = {"latency": {"warmup": 1, "runs": 5, **latency}}
    return write_recipe(raw)


@pytest.mark.parametrize(
    ("latency", "said"),
    [
        ({"runs": 100_000_000}, "less than or equal to 100000"),
        ({"warmup": 10_000_000}, "less than or equal to 10000"),
        ({"threads": 100_000}, "less than or equal to 1024"),
        ({"threads": 1000}, "more than this machine's"),
        ({"batch_size": 1_000_000_000}, "less than or equal to 4096"),
        ({"dims": {"seq": -3}}, "greater than or equal to 1"),
        ({"dims": {"seq": 0}}, "greater than or equal to 1"),
        ({"dims": {"sequence": 8}}, "no model input has a dimension named 'sequence'"),
        ({"max_seconds": 86_400}, "less than or equal to 3600"),
    ],
)
def test_unbounded_latency_settings_are_recipe_errors(write_recipe, run_cli, latency, said):
    """Friction: `runs: 100000000` ran for hours, `threads: 100000` grew past 8 GB, a billion
    batch ended in MemoryError, `dims: {seq: 0}` measured empty tensors, unknown dims names
    were ignored."""
    code, _, err = run_cli("validate", latency_recipe(write_recipe, **latency))
    assert code == EXIT_USAGE, err
    assert "recipe.yaml:" in err and "measure.latency" in err and said in err
    assert "bug" not in err


def test_force_allows_more_threads_than_cores(write_recipe, run_cli):
    import os

    recipe = latency_recipe(write_recipe, threads=(os.cpu_count() or 1) + 1, force=True)
    code, _, err = run_cli("validate", recipe)
    assert code == 0, err


def test_a_dynamic_dimension_without_a_size_is_a_recipe_error(write_recipe, run_cli):
    """Friction: a missing `dims` entry exited 3 after the whole run; it is exit 2 up front."""
    raw = seed_mlp_recipe()
    for section in ("data", "train", "evaluate"):
        del raw[section]
    raw["model"]["inputs"][0]["shape"] = ["batch", "features"]
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE, err
    assert "measure.latency.dims:" in err and "axis 1 (features) is dynamic" in err


def test_timing_stops_after_max_seconds(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(ones_matmul(256), path)
    spec = LatencySpec(warmup=0, runs=100_000, max_seconds=0.2)
    started = time.perf_counter()
    stats = measure_latency({"a": path, "b": path}, spec, [np.ones((1, 256), np.float32)])
    assert time.perf_counter() - started < 10  # 100,000 runs of both would take far longer
    assert 1 <= stats["a"]["runs"] < 100_000 and stats["a"]["runs"] == stats["b"]["runs"]


def test_too_many_per_layer_overrides_are_a_recipe_error(write_recipe, run_cli):
    overrides = {f"layer{i}": 0.1 for i in range(10_001)}
    raw = seed_mlp_recipe(
        passes=[{"type": "prune", "sparsity": {"default": 0.5, "overrides": overrides}}]
    )
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE and "passes.0.sparsity" in err and "at most 10000 items" in err


@pytest.mark.parametrize(
    ("budget", "said"),
    [
        ({}, "a budget needs max, min or both"),
        ({"min": 0.9, "max": 0.5}, "min 0.9 is above max 0.5"),
    ],
)
def test_a_budget_that_checks_nothing_or_cannot_pass_is_a_recipe_error(
    write_recipe, run_cli, budget, said
):
    """Friction: `sparsity: {}` silently dropped the budget; `min` > `max` failed only after
    the whole run."""
    code, _, err = run_cli("validate", write_recipe(seed_mlp_recipe(budgets={"sparsity": budget})))
    assert code == EXIT_USAGE and "budgets.sparsity" in err and said in err
