"""The pass protocol: a pass type added in this file alone (config, record, one torch handler)
runs through `compress.apply`, `compress plan` and the report; a new algorithm of an existing
family (`type: prune, method: random`), added here alone, runs through apply, a session, plan,
analyze and `compress passes`; unsupported pairs, reports written before typed records, and a
second recovery distill pass get clear answers."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pytest
import torch
from conftest import MODELS, seed_mlp_recipe
from pydantic import Field

import compress
from compress.errors import RecipeError, UsageError
from compress.passes import (
    PassConfig,
    PassRecord,
    register_handler,
    register_pass,
    register_role,
    registry,
)
from compress.passes.backend_options import TfKerasPruneOptions
from compress.passes.prune import PruneBase, PruneRecord
from compress.passes.targets import LayerInfo


class ScaleBiasRecord(PassRecord):
    layer: str
    factor: float
    nonzero_bias: int


class ScaleBiasPass(PassConfig):
    """Multiply one layer's bias by a factor (0 removes it)."""

    type: Literal["scale_bias"] = "scale_bias"
    layer: str
    factor: float = Field(0.0, ge=0.0)

    record = ScaleBiasRecord

    def plan(self, layers: list[LayerInfo]) -> dict:
        chosen = [layer for layer in layers if layer.name == self.layer]
        rows = [
            {"name": x.name, "kind": x.kind, "weights": x.weights, "nonzero_after": x.weights}
            for x in chosen
        ]
        total = sum(x.weights for x in chosen)
        return {"layers": rows, "weights_before": total, "nonzero_after": total}


@torch.no_grad()
def scale_bias(model: torch.nn.Module, config: ScaleBiasPass, context) -> tuple:
    bias = dict(model.named_modules())[config.layer].bias
    bias.mul_(config.factor)
    return model, {
        "layer": config.layer,
        "factor": config.factor,
        "nonzero_bias": int(bias.ne(0).sum()),
    }


def private_registry(monkeypatch) -> None:
    """A copy of the registry for one test, taken after the built-in roles are registered
    (they register on import: registered into the copy, they would be lost after the test)."""
    import compress.analysis.scans
    import compress.backends  # noqa: F401

    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    monkeypatch.setattr(registry, "_ROLES", dict(registry._ROLES))


@pytest.fixture
def toy_pass(monkeypatch):
    """ScaleBiasPass registered with a torch handler, for this test only."""
    private_registry(monkeypatch)
    register_pass(ScaleBiasPass)
    register_handler(ScaleBiasPass, "torch")(scale_bias)
    return ScaleBiasPass


def toy_recipe(write_recipe, **overrides):
    passes = [{"type": "scale_bias", "layer": "0", "factor": 0.0}]
    return write_recipe(seed_mlp_recipe(passes=passes, **overrides), "toy.yaml")


def test_a_pass_type_added_by_a_test_runs_through_apply(toy_pass, write_recipe, tmp_path):
    report = compress.apply(toy_recipe(write_recipe), output_dir=tmp_path / "out", progress=False)
    record = report.passes[0]
    assert isinstance(record, ScaleBiasRecord) and record.seconds is not None
    assert (record.layer, record.factor, record.nonzero_bias) == ("0", 0.0, 0)
    assert report.baseline.nonzero_params - report.compressed.nonzero_params == 50  # the bias
    assert compress.Report.read(tmp_path / "out" / "report.json").passes == report.passes
    written = json.loads((tmp_path / "out" / "report.json").read_text())["passes"][0]
    assert written["type"] == "scale_bias" and written["nonzero_bias"] == 0


def test_a_pass_type_added_by_a_test_is_planned_and_listed(toy_pass, write_recipe, run_cli):
    code, out, err = run_cli("plan", toy_recipe(write_recipe))
    assert code == 0, err
    assert "pass 1: scale_bias: 1 layer(s), 500 weights -> 500 nonzero" in out
    code, out, _ = run_cli("passes")
    assert code == 0 and "scale_bias: Multiply one layer's bias" in out
    assert "  runs on: torch\n  layer: str (required)" in out


def test_an_unsupported_pass_and_backend_is_one_clear_error(toy_pass, write_recipe, run_cli):
    raw = seed_mlp_recipe(passes=[{"type": "scale_bias", "layer": "hidden"}])
    raw["model"] = {
        "source": f"{MODELS.parent}/tests/builders.py:keras_mlp",
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == 3
    assert (
        err.strip()
        == "error: pass 'scale_bias' is not available for keras models (it runs on torch)"
    )


def test_a_session_refuses_a_pass_that_does_not_say_it_runs_there(toy_pass, write_recipe):
    recipe = toy_recipe(write_recipe)
    with pytest.raises(UsageError, match=r"passes\.0: a session cannot run this pass \(scale_bias"):
        compress.CompressionSession(torch.nn.Linear(10, 2), recipe, steps_per_epoch=4)


def old_report(passes: list[dict]) -> dict:
    """A report as written before pass records were typed (schema_version 1)."""
    metrics = {"size_bytes": 10, "size_gzip_bytes": 8, "params": 4, "nonzero_params": 2}
    return {
        "schema_version": 1,
        "tool_version": "0.1.0",
        "recipe": {"name": "old"},
        "framework": "torch",
        "baseline": {**metrics, "sparsity": 0.0},
        "compressed": {**metrics, "sparsity": 0.5},
        "layers": [],
        "passes": passes,
        "artifacts": {"onnx": "model.onnx", "report_json": "report.json"},
        "environment": {"python": "3.12", "onnxruntime": "1.20", "cpu": "x"},
    }


def test_reports_written_before_typed_records_still_load(tmp_path):
    passes = [
        {
            "type": "prune",
            "seconds": 1.5,
            "method": "magnitude",
            "scope": "layer",
            "schedule": "one-shot",
            "target_sparsity": 0.5,
            "achieved_sparsity": 0.5,
            "mask_updates": 1,
            "layers": {"fc1": 0.5},
            "training": None,
            "engine": "native",
        },
        {"type": "distill", "mode": "recovery", "loop": "user", "temperature": 4.0, "alpha": 0.5},
        {"type": "quantize", "seconds": 0.2, "mode": "static", "weights": "int8", "why": "S8S8"},
        {"type": "sharpen", "seconds": 0.1, "amount": 3},  # a pass type this tool does not know
    ]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(old_report(passes)))
    report = compress.Report.read(path)
    prune, distill, quantize, unknown = report.passes
    assert isinstance(prune, PruneRecord) and prune.achieved_sparsity == 0.5
    assert prune["engine"] == "native" and "why" in quantize and distill.seconds is None
    assert type(unknown) is PassRecord and unknown["amount"] == 3
    dumped = json.loads(report.to_json())["passes"]
    assert dumped[0] == passes[0] and dumped[2:] == passes[2:]  # nothing lost
    assert dumped[1] == {**passes[1], "seconds": None}


def test_two_recovery_distill_passes_are_a_recipe_error(write_recipe):
    passes = [
        {"type": "distill", "alpha": 0.5},
        {"type": "prune", "sparsity": 0.5, "fine_tune": True},
        {"type": "distill", "temperature": 2.0},
    ]
    with pytest.raises(RecipeError) as caught:
        compress.load_recipe(write_recipe(seed_mlp_recipe(passes=passes)))
    message = str(caught.value)
    assert "recipe.yaml:" in message and "passes.2: pass 0 is already a recovery distill" in message


class RandomPrune(TfKerasPruneOptions, PruneBase):
    """Zero a random share of the targeted weights (a baseline for pruning criteria)."""

    method: Literal["random"]
    seed: int = 0

    def compute_masks(self, weights, sparsity, axis):
        rng = np.random.default_rng(self.seed)
        return {
            name: rng.random(w.shape) >= self.level_at(name, sparsity)
            for name, w in weights.items()
        }


@pytest.fixture
def random_prune(monkeypatch):
    """A new algorithm of an existing family, registered for this test only: the config class,
    the torch pruning handler and the torch session part the built-in weight pruners use."""
    private_registry(monkeypatch)
    register_pass(RandomPrune)
    register_handler(RandomPrune, "torch", "compress.backends.torch.pruning:apply_prune")
    register_role("session", RandomPrune, "compress.backends.torch.session:prune_part", "torch")
    return RandomPrune


def random_recipe(write_recipe):
    passes = [{"type": "prune", "method": "random", "sparsity": 0.6, "seed": 3}]
    return write_recipe(seed_mlp_recipe(passes=passes), "random.yaml")


def test_a_new_algorithm_runs_through_every_role(random_prune, write_recipe, run_cli, tmp_path):
    recipe = random_recipe(write_recipe)
    assert type(compress.load_recipe(recipe).passes[0]) is RandomPrune
    report = compress.apply(recipe, output_dir=tmp_path / "apply", progress=False)
    record = report.passes[0]
    assert isinstance(record, PruneRecord) and record.method == "random"
    assert record.achieved_sparsity == pytest.approx(0.6, abs=0.005)
    assert report.compressed.sparsity > 0.3

    model = torch.nn.Sequential(torch.nn.Linear(10, 50), torch.nn.ReLU(), torch.nn.Linear(50, 2))
    session = compress.CompressionSession(model, recipe, steps_per_epoch=4)
    session.step()
    assert float((model[0].weight == 0).float().mean()) == pytest.approx(0.6, abs=0.01)
    assert session.finalize() is model

    code, out, err = run_cli("plan", recipe)
    assert code == 0, err
    assert "pass 1: prune (random): 2 layer(s), 600 weights -> 240 nonzero" in out
    analysis = compress.analyze(recipe, output_dir=tmp_path / "analysis", progress=False)
    assert analysis.passes == []
    assert analysis.skipped[0]["why"] == "prune (method random) passes have no per-layer scan"
    code, out, _ = run_cli("passes")
    assert code == 0 and "prune (method random): Zero a random share" in out
    assert "  seed: int (default 0)" in out


def test_a_field_of_another_algorithm_names_it(random_prune, write_recipe):
    passes = [{"type": "prune", "method": "channel", "sparsity": 0.5, "seed": 1}]
    with pytest.raises(RecipeError, match=r"passes\.0\.seed: seed applies to method: random only"):
        compress.load_recipe(write_recipe(seed_mlp_recipe(passes=passes)))
    passes = [{"type": "prune", "method": "rand", "sparsity": 0.5}]
    with pytest.raises(RecipeError, match=r"passes\.0\.method: Input should be .*'random'"):
        compress.load_recipe(write_recipe(seed_mlp_recipe(passes=passes)))


def test_a_field_of_a_sibling_algorithm_names_the_selector_that_differs(write_recipe):
    """calibration belongs to mode static and to weight-only gptq/awq: for weight-only rtn the
    message names the algorithms, not "mode: weight_only" (the mode it already has)."""
    step = {"type": "quantize", "mode": "weight_only", "weights": "int4"}
    passes = [{**step, "calibration": {"samples": 16}}]
    said = r"calibration applies to mode: static; algorithm: gptq, awq only"
    with pytest.raises(RecipeError, match=said):
        compress.load_recipe(write_recipe(seed_mlp_recipe(passes=passes)))
