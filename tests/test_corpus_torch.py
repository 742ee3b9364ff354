"""Public PyTorch architectures (transformers configs, random weights) through the whole
pipeline: load -> export -> parity -> one pass -> measured report, via the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import RECIPES

pytest.importorskip("transformers")

CORPUS = Path(__file__).with_name("corpus_torch_models.py")
LATENCY = {"warmup": 1, "runs": 3, "dims": {"sequence": 16}}
IMAGE = [{"name": "pixel_values", "shape": ["batch", 3, 32, 32]}]
TOKENS = [
    {"name": name, "shape": ["batch", "sequence"], "dtype": "int64"}
    for name in ("input_ids", "attention_mask", "token_type_ids")
]


def latency_for(inputs: list) -> dict:
    """LATENCY with the dims these inputs name (a dims name no input has is a recipe error)."""
    named = {dim for spec in inputs for dim in spec["shape"] if isinstance(dim, str)}
    dims = {name: size for name, size in LATENCY["dims"].items() if name in named}
    return {**LATENCY, "dims": dims}


def recipe(builder: str, inputs: list, passes: list, data: str | None = None, **extra) -> dict:
    raw = {
        "version": 1,
        "name": f"corpus-{builder}",
        "model": {"source": f"{CORPUS}:{builder}", "inputs": inputs},
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": latency_for(inputs)},
        **extra,
    }
    if data:
        raw["data"] = {"source": f"{CORPUS}:{data}", "batch_size": 8}
    return raw


def applied(run_cli, write_recipe, raw: dict) -> dict:
    path = write_recipe(raw)
    code, out, err = run_cli("apply", path, "--json")
    assert code == 0, err
    assert err == ""  # no exporter, quantizer or native-library noise
    report = json.loads(out)
    onnx_file = path.parent / "out" / report["artifacts"]["onnx"]
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in raw["model"]["inputs"]]
    onnx.checker.check_model(str(onnx_file))
    return report


def dtypes(report: dict) -> dict[str, str]:
    return {layer["name"]: layer["dtype"] for layer in report["layers"]}


@pytest.mark.e2e
def test_resnet_static_int8(run_cli, write_recipe):
    raw = recipe(
        "resnet",
        IMAGE,
        [{"type": "quantize", "mode": "static", "calibration": {"samples": 16}}],
        data="images",
    )
    report = applied(run_cli, write_recipe, raw)
    layers = dtypes(report)
    assert layers["model.resnet.embedder.embedder.convolution"] == "int8"  # BN folded into it
    assert set(layers.values()) == {"int8"} and len(layers) == 21  # 20 convolutions, the head
    record = report["passes"][0]  # default placement: searched, timed on CPU time, no Conv kept
    assert record["placement_method"].startswith("thread cpu time, 1 thread")
    assert "Conv" not in {kept["group"] for kept in record["kept_float_for_speed"]}
    assert report["compressed"]["size_bytes"] < 0.4 * report["baseline"]["size_bytes"]
    assert report["baseline"]["export"]["parity_max_abs_diff"] < 1e-3


@pytest.mark.e2e
def test_vit_dynamic_int8(run_cli, write_recipe):
    raw = recipe("vit", IMAGE, [{"type": "quantize", "mode": "dynamic"}], data="images")
    report = applied(run_cli, write_recipe, raw)
    layers = dtypes(report)
    assert layers["model.vit.layers.0.attention.q_proj"] == "int8"
    assert layers["model.classifier"] == "int8"
    assert report["fidelity"]["metric"] == "cosine" and report["fidelity"]["value"] > 0.95


@pytest.mark.e2e
def test_bert_encoder_with_integer_inputs_and_no_data(run_cli, write_recipe):
    """Generated integer inputs are valid token ids and masks (1, type ids 0): parity holds."""
    report = applied(
        run_cli, write_recipe, recipe("bert", TOKENS, [{"type": "quantize", "mode": "dynamic"}])
    )
    assert report["baseline"]["export"]["parity_max_abs_diff"] < 1e-4
    layers = dtypes(report)
    assert layers["model.encoder.layer.1.output.dense"] == "int8"
    assert "latency_ms" in report["compressed"]


@pytest.mark.e2e
def test_gpt2_decoder_prune_fine_tune_then_int4(run_cli, write_recipe):
    """Token-level cross-entropy (logits N×T×V, targets N×T) fine-tunes the pruned decoder."""
    tokens = [{"name": "input_ids", "shape": ["batch", "sequence"], "dtype": "int64"}]
    passes = [
        {"type": "prune", "sparsity": 0.5, "targets": ["re:.*mlp.*"], "fine_tune": True},
        {"type": "quantize", "mode": "weight_only", "weights": "int4"},
    ]
    train = {"epochs": 1, "loss": "cross_entropy"}
    report = applied(
        run_cli, write_recipe, recipe("gpt2", tokens, passes, data="tokens", train=train)
    )
    record = report["passes"][0]
    assert record["achieved_sparsity"] == pytest.approx(0.5, abs=0.005)
    assert record["training"]["steps"] == 6 and record["training"]["final_loss"] > 0
    assert "int4" in dtypes(report).values()
    assert report["compressed"]["size_bytes"] < 0.5 * report["baseline"]["size_bytes"]


@pytest.mark.e2e
def test_parity_failure_on_generated_inputs_says_what_was_used(run_cli, write_recipe, tmp_path):
    """A model that is only correct on valid ids: with a range the user asked for values the
    embedding cannot take, and the message names the inputs and how to give real ones."""
    raw = recipe("bert", TOKENS, [])
    raw["model"]["inputs"][0]["range"] = [0, 4]
    raw["export"]["parity_tolerance"] = 1e-12  # below float32 rounding: parity must fail
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == 3
    assert "input_ids uniform in [0, 4), attention_mask = 1, token_type_ids = 0" in err
    assert "data.source with real samples" in err
    assert not any((tmp_path / "out").iterdir())  # nothing half-written


def test_input_range_is_validated(run_cli, write_recipe):
    raw = recipe("bert", TOKENS, [])
    raw["model"]["inputs"][0]["range"] = [0, 4.5]
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == 2
    assert re.search(r"recipe\.yaml:\d+:\d+: model\.inputs\.0: range of a int64 input takes", err)


def test_generated_integer_inputs_are_valid_ids():
    from compress.generated_inputs import generated_array
    from compress.recipe import InputSpec

    rng = np.random.default_rng(0)
    mask = generated_array(
        InputSpec(name="attention_mask", shape=[2, 4], dtype="int64"), [2, 4], rng
    )
    types = generated_array(
        InputSpec(name="token_type_ids", shape=[2, 4], dtype="int64"), [2, 4], rng
    )
    ranged = generated_array(
        InputSpec(name="input_ids", shape=[2, 4], dtype="int64", range=(5, 9)), [64, 4], rng
    )
    assert (mask == 1).all() and (types == 0).all()
    assert ranged.min() >= 5 and ranged.max() <= 8 and len(np.unique(ranged)) == 4


@pytest.mark.e2e
def test_no_native_loader_noise_and_torchao_only_for_qat(write_recipe, tmp_path):
    """In a fresh process, as a user runs it: a transformers builder imports torchao (which
    probes CUDA kernel libraries) and stderr stays clean; a pruning run never imports torchao."""
    tokens = [{"name": "input_ids", "shape": ["batch", "sequence"], "dtype": "int64"}]
    path = write_recipe(recipe("gpt2", tokens, [{"type": "prune", "sparsity": 0.5}]))
    env = {**os.environ, "CI": "true"}
    validated = subprocess.run(  # loads the model and runs it once, exporting nothing
        [str(Path(sys.executable).with_name("compress")), "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert validated.returncode == 0, validated.stderr
    assert "valid (torch" in validated.stdout
    assert validated.stderr == ""
    script = (
        "import sys, compress; "
        f"compress.apply({str(RECIPES / 'seed_mlp_prune.yaml')!r}, output_dir={str(tmp_path)!r}); "
        "print('torchao' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
