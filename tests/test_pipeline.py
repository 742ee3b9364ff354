"""End to end: recipes through the CLI and the Python API, with real training, real ONNX files
in onnxruntime, and the report contract."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import MODELS, RECIPES, seed_mlp_recipe

import compress
from compress.errors import EXIT_BUDGET, EXIT_MODEL, EXIT_USAGE
from compress.sources import load_callable

REPORT_KEYS = {
    "schema_version",
    "tool_version",
    "recipe",
    "framework",
    "baseline",
    "compressed",
    "fidelity",
    "layers",
    "passes",
    "artifacts",
    "environment",
    "budgets",
}
MODEL_KEYS = {
    "size_bytes",
    "size_gzip_bytes",
    "params",
    "nonzero_params",
    "sparsity",
    "latency_ms",
    "accuracy",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_apply_writes_a_measured_report(run_cli, write_recipe, tmp_path):
    recipe = write_recipe(seed_mlp_recipe(budgets={"sparsity": {"min": 0.4}}))
    code, out, err = run_cli("apply", recipe)
    assert code == 0, err
    assert "size (gzip)" in out and "latency p50" in out
    out_dir = tmp_path / "out"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        ".compress-written",  # what compress wrote here (it writes over those names only)
        "model.baseline.onnx",
        "model.onnx",
        "report.html",
        "report.json",
        "report.md",
    ]
    report = json.loads((out_dir / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    assert report["schema_version"] == 1 and report["framework"] == "torch"
    for section in ("baseline", "compressed"):
        assert set(report[section]) >= MODEL_KEYS
        assert set(report[section]["latency_ms"]) >= {"p50", "p90", "mean", "runs"}
        assert report[section]["latency_ms"]["runs"] == 10
        assert len(report[section]["latency_ms"]["samples"]) == 10
    assert report["baseline"]["sparsity"] == 0.0
    # 50% of the weights; biases are not pruned, so the file-wide figure is a little lower
    assert report["compressed"]["sparsity"] == pytest.approx(300 / 652, abs=1e-3)
    assert report["compressed"]["size_gzip_bytes"] < report["baseline"]["size_gzip_bytes"]
    assert report["passes"][0]["achieved_sparsity"] == pytest.approx(0.5)
    assert {layer["name"] for layer in report["layers"]} == {"0", "2"}
    assert report["budgets"] == [
        {
            "metric": "sparsity",
            "limit": "min 0.4",
            "value": report["compressed"]["sparsity"],
            "status": "pass",
        }
    ]
    assert report["artifacts"]["report_json"] == "report.json"
    assert report["artifacts"]["report_html"] == "report.html"
    assert report["environment"]["threads"] == 1 and report["environment"]["torch"]
    assert (out_dir / "report.md").stat().st_size < 64_000


def test_report_figures_match_the_artifacts(write_recipe, tmp_path):
    report = compress.apply(write_recipe(seed_mlp_recipe()), progress=False)
    session = ort.InferenceSession(report.artifacts.onnx)
    data = load_callable(f"{MODELS}/seed_mlp.py:load", MODELS)()
    x, y = data["val"]
    accuracy = float(np.mean(session.run(None, {"features": x})[0].argmax(1) == y))
    assert report.compressed.accuracy == pytest.approx(accuracy, abs=1e-6)
    assert report.compressed.size_bytes == Path(report.artifacts.onnx).stat().st_size
    assert report.compressed.export.parity_max_abs_diff < 1e-4
    assert 0 < report.fidelity.value <= 1 and report.fidelity.metric == "top1_agreement"


def test_api_with_an_in_memory_model_leaves_it_untouched(write_recipe, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(10, 50), torch.nn.ReLU(), torch.nn.Linear(50, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = compress.apply(
        write_recipe(seed_mlp_recipe()), model=model, output_dir=tmp_path / "o", progress=False
    )
    assert report.compressed.nonzero_params < report.baseline.nonzero_params
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert Path(report.artifacts.onnx).parent == tmp_path / "o"


def test_load_recipe_then_apply(write_recipe, tmp_path):
    recipe = compress.load_recipe(write_recipe(seed_mlp_recipe()))
    assert isinstance(recipe, compress.Recipe)
    report = compress.apply(recipe, output_dir=tmp_path / "api", progress=False)
    assert isinstance(report, compress.Report)
    assert compress.Report.read(tmp_path / "api" / "report.json").compressed == report.compressed


def test_failed_budget_exits_1_and_still_writes_the_report(run_cli, write_recipe, tmp_path):
    recipe = write_recipe(seed_mlp_recipe(budgets={"size_bytes": {"max": "1kB"}}))
    code, _, err = run_cli("apply", recipe, "--json")
    assert code == EXIT_BUDGET
    assert "budget failed: size_bytes (max 1,000 B, got " in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["budgets"][0]["status"] == "fail"


def test_input_model_is_never_modified(run_cli, write_recipe, tmp_path):
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes((MODELS / "seed_mlp.safetensors").read_bytes())
    raw = seed_mlp_recipe(export={"path": "model.onnx"})
    raw["model"]["weights"] = str(weights)
    before = digest(weights)
    code, _, err = run_cli("apply", write_recipe(raw), "--no-progress")
    assert code == 0, err
    assert digest(weights) == before
    clash = tmp_path / "clash.onnx"
    clash.write_bytes(b"not a model")
    raw["model"]["weights"] = str(weights)
    raw["model"]["source"] = str(clash)
    raw["export"] = {"path": "clash.onnx"}
    code, _, err = run_cli("apply", write_recipe(raw, "clash.yaml"))
    assert code == EXIT_USAGE


def test_export_path_over_the_weights_is_refused(run_cli, write_recipe, tmp_path):
    weights = tmp_path / "m.onnx"
    weights.write_bytes(b"precious")
    raw = seed_mlp_recipe(export={"path": "m.onnx"})
    raw["model"]["weights"] = str(weights)
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "refusing to overwrite the input file" in err
    assert weights.read_bytes() == b"precious"


def test_failure_midway_leaves_no_partial_output(run_cli, write_recipe, tmp_path):
    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5, "targets": ["re:attn.*"]}])
    code, out, err = run_cli("apply", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "recipe.yaml:" in err and "passes.0.targets.0" in err and "matches no layer" in err
    assert "Traceback" not in err + out
    assert list((tmp_path / "out").iterdir()) == []  # no ONNX, report or staging directory


def test_unwritable_output_directory(run_cli, write_recipe, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli("apply", write_recipe(seed_mlp_recipe()), "-o", blocker / "sub")
    assert code == EXIT_USAGE
    assert err.startswith("error: cannot write to output directory")
    assert len(err.strip().splitlines()) == 1


def test_cuda_latency_without_cuda_is_an_error(run_cli, write_recipe):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    raw = seed_mlp_recipe(measure={"latency": {"device": "cuda", "runs": 5}})
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == EXIT_MODEL
    assert "no CUDA execution provider" in err


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"extra": 1}, EXIT_USAGE, "extra: unknown key"),
        ({"passes": [{"type": "prune", "sparsity": 1.0}]}, EXIT_USAGE, "passes.0.sparsity"),
        ({"passes": [{"type": "quantise"}]}, EXIT_USAGE, "unknown pass type 'quantise'"),
    ],
)
def test_invalid_recipes_exit_2_with_a_position(run_cli, write_recipe, change, code, message):
    result, out, err = run_cli("apply", write_recipe(seed_mlp_recipe(**change)))
    assert result == code
    assert message in err and "recipe.yaml:" in err
    assert "Traceback" not in err and out == ""


def test_missing_recipe_file(run_cli, tmp_path):
    code, _, err = run_cli("validate", tmp_path / "none.yaml")
    assert code == EXIT_USAGE and "no such file" in err


def test_passes_lists_the_registered_types(run_cli):
    code, out, _ = run_cli("passes")
    assert code == 0 and out.startswith("prune (method magnitude):")
    assert "sparsity: float | LayerLevels (required)" in out


def test_builder_error_is_one_line_with_exit_3(run_cli, write_recipe, tmp_path):
    (tmp_path / "broken.py").write_text("def build():\n    raise ValueError('bad config')\n")
    raw = seed_mlp_recipe()
    raw["model"]["source"] = "broken.py:build"
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == EXIT_MODEL
    assert err.strip() == "error: broken.py:build raised ValueError: bad config"


@pytest.fixture(scope="module")
def shipped_report(tmp_path_factory):
    """Apply a recipe from recipes/ once per module; shared by the tests below."""
    cache: dict[Path, compress.Report] = {}

    def get(recipe: Path) -> compress.Report:
        if recipe not in cache:
            out = tmp_path_factory.mktemp(recipe.stem)
            cache[recipe] = compress.apply(recipe, output_dir=out, progress=False)
        return cache[recipe]

    return get


#: Recipes whose full size takes minutes (a real MiniLM distilled on 2,048 sentences, ResNet-18
#: fine-tuned at 128x128): tests/test_channels_torch.py runs each on small inputs instead.
RUN_ON_SMALL_INPUTS = {
    "student_from_teacher.yaml",
    "resnet_channels_int8.yaml",
    "minilm_sensitivity.yaml",  # tests/test_analyze.py
}
#: Recipes another test already applies as shipped: the README's example runs the quickstart
#: (tests/test_docs.py, test_quickstart_meets_its_targets).
RUN_ELSEWHERE = {"quickstart.yaml", "llm_int4.yaml"}  # and tests/test_llm.py


@pytest.mark.e2e
@pytest.mark.parametrize(
    "recipe",
    sorted(p for p in RECIPES.glob("*.yaml") if p.name not in RUN_ON_SMALL_INPUTS | RUN_ELSEWHERE),
    ids=lambda p: p.name,
)
def test_every_shipped_recipe_runs(shipped_report, recipe):
    report = shipped_report(recipe)
    for record in report.passes:
        if record["type"] == "prune":
            assert record["achieved_sparsity"] >= record["target_sparsity"] - 0.005
    assert report.compressed.export.parity_max_abs_diff < 1e-4
    assert all(budget.status == "pass" for budget in report.budgets)
    assert compress.Report.read(Path(report.artifacts.report_json)).passes == report.passes


def test_training_pass_without_a_train_split(run_cli, write_recipe, tmp_path):
    (tmp_path / "valonly.py").write_text(
        "import numpy as np\n\ndef load():\n"
        "    x = np.zeros((8, 10), np.float32)\n"
        "    return {'val': (x, np.zeros(8, np.int64))}\n"
    )
    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5, "fine_tune": True}])
    raw["data"] = {"source": "valonly.py:load"}
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == EXIT_MODEL
    assert err.strip() == "error: prune: training needs a 'train' split from data.source"


def test_a_recipe_of_onnx_passes_only_exports_once(write_recipe, monkeypatch):
    """With no pass that changes the framework model, the ONNX-stage passes start from a copy of
    the baseline's file: one export, and the compressed model's export record is the baseline's."""
    from compress import pipeline

    exported = []
    real = pipeline.export_verified

    def counting(backend, model, recipe, path, *args, **kwargs):
        exported.append(path.name)
        return real(backend, model, recipe, path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "export_verified", counting)
    report = compress.apply(
        write_recipe(seed_mlp_recipe(passes=[{"type": "quantize", "mode": "dynamic"}])),
        progress=False,
    )
    assert len(exported) == 1
    assert report.compressed.export == report.baseline.export
    assert {layer.dtype for layer in report.layers} == {"int8"}
    exported.clear()
    compress.apply(write_recipe(seed_mlp_recipe()), progress=False)  # prune changes the model
    assert len(exported) == 2
