"""Decoder LLMs end to end: recipes/llm_int4.yaml takes the trained LM of models/ from its
Hugging Face folder to 4-bit weights, reports held-out perplexity and decode tokens per second
of both models, and writes both as onnxruntime-genai folders; a model-stage pass writes the
compressed model back as a model folder transformers loads; `compress check` gates the LLM
figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import MODELS, RECIPES

import compress
from compress.data import load_data
from compress.errors import EXIT_BUDGET, EXIT_OK
from compress.measure.language import perplexity
from compress.onnx import runtime

pytestmark = pytest.mark.e2e


def pydoc_lm_documents() -> dict[str, list[str]]:
    from compress.sources import load_callable

    return load_callable(str(MODELS / "pydoc_lm.py") + ":documents", MODELS)()


@pytest.fixture(scope="module")
def llm_report(tmp_path_factory) -> compress.Report:
    out = tmp_path_factory.mktemp("llm_int4")
    return compress.apply(RECIPES / "llm_int4.yaml", output_dir=out, progress=False)


def test_the_llm_recipe_reports_perplexity_and_decode_speed(llm_report):
    base, comp = llm_report.baseline, llm_report.compressed
    assert 1 < base.perplexity < 150  # the trained LM: far below the 564 of token frequencies
    assert comp.perplexity < base.perplexity * 1.01  # its budget (round to nearest: +0.86%)
    assert all(budget.status == "pass" for budget in llm_report.budgets)
    assert {b.metric for b in llm_report.budgets} >= {"perplexity_increase", "size_bytes"}
    fidelity = llm_report.fidelity
    assert fidelity.metric == "top1_agreement" and 0.7 < fidelity.value < 1
    assert 0 < fidelity.kl_per_token < 0.5
    for side in (base, comp):
        figures = side.generation
        assert figures.tokens_per_s == pytest.approx(1000 / figures.decode_ms, rel=1e-3)
        assert figures.prefill_ms > 0 and figures.peak_rss_bytes > 0
        assert figures.new_tokens == 64 and figures.prompt_tokens == 32
    assert comp.size_bytes < 0.25 * base.size_bytes
    assert comp.params <= base.params  # the tied embedding is stored once
    markdown = Path(llm_report.artifacts.report_md).read_text()
    assert "| perplexity |" in markdown and "| decode tokens/s |" in markdown


def test_the_generation_folders_match_the_framework_model_and_load(llm_report):
    import onnxruntime_genai as og

    record = llm_report.generation
    assert record["architecture"] == "LlamaForCausalLM"
    assert record["parity"]["greedy_identical"] and record["parity"]["greedy_tokens"] == 32
    assert record["parity"]["prefill_max_abs_diff"] < 1e-3
    (quantized,) = record["decoder_passes"]
    assert quantized["accuracy_level"] in (0, 4) and quantized["embeddings"] == "int4"
    # the decoder got the blocks GPTQ chose on the exported graph, q/k/v fused or not
    assert quantized["decoder_weights_unmatched"] == 0 and quantized["decoder_weights_matched"]
    (applied,) = [p for p in llm_report.passes if p.type == "quantize"]
    assert applied.algorithm == "gptq" and applied.calibration_samples == 128
    assert applied.calibrated_weights >= 7 * 4  # q, k, v, o, gate, up, down of 4 layers
    folders = llm_report.artifacts.generation
    for label in ("baseline", "compressed"):
        folder = Path(folders[label])
        assert (folder / "genai_config.json").is_file() and (folder / "tokenizer.json").is_file()
    model = og.Model(str(folders["compressed"]))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=24)
    generator = og.Generator(model, params)
    generator.append_tokens(np.arange(1, 9, dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    assert len(generator.get_sequence(0)) == 24


def test_the_float_onnx_perplexity_equals_torchs(llm_report):
    """The report's baseline perplexity (onnxruntime, the exported float graph) against torch's
    logits on the same val windows: within 0.5%."""
    import torch

    recipe = compress.load_recipe(RECIPES / "llm_int4.yaml")
    windows = load_data(recipe)["val"].inputs[0][:64]
    from compress.backends.torch.hf_folder import load_folder

    model = load_folder(MODELS / "pydoc_lm", trust=False)
    with torch.no_grad():
        logits = model(torch.from_numpy(windows)).numpy()
    session = runtime.make_session(Path(llm_report.artifacts.baseline_onnx))
    onnx_logits = runtime.predict(session, [windows], 16)[0]
    assert perplexity(onnx_logits, windows) == pytest.approx(perplexity(logits, windows), rel=5e-3)


def test_check_gates_the_llm_figures(llm_report, run_cli, tmp_path):
    comp = llm_report.compressed
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "budgets": {
                    "decode_tokens_per_s": {"min": round(comp.generation.tokens_per_s / 2)},
                    "perplexity": {"max": round(comp.perplexity * 2)},
                },
            }
        )
    )
    report = llm_report.artifacts.report_json
    code, out, err = run_cli("check", report, "--budget", budgets, "--json")
    assert code == EXIT_OK, out + err
    rows = {row["metric"]: row for row in json.loads(out)["results"]}
    assert rows["decode_tokens_per_s"]["status"] == "pass"
    assert rows["decode_tokens_per_s"]["value"] == comp.generation.tokens_per_s
    budgets.write_text(
        yaml.safe_dump({"version": 1, "budgets": {"perplexity_increase": {"max": 0.0001}}})
    )
    code, out, _ = run_cli("check", report, "--budget", budgets, "--json")
    assert code == EXIT_BUDGET
    assert json.loads(out)["results"][0]["metric"] == "perplexity_increase"


def test_a_pruned_folder_model_is_written_back_as_a_model_folder(write_recipe, tmp_path):
    """A model-stage pass on a folder's model: the compressed model is saved as a folder
    (safetensors, config, tokenizer) that transformers loads, with the pruned weights."""
    from transformers import AutoModelForCausalLM

    (tmp_path / "val.txt").write_text(" ".join(pydoc_lm_documents()["val"][:3]))
    recipe = write_recipe(
        {
            "version": 1,
            "name": "pruned-lm",
            "model": {"source": str(MODELS / "pydoc_lm")},
            "data": {"seq_len": 16, "text": {"val": "val.txt"}},
            "passes": [{"type": "prune", "method": "magnitude", "sparsity": 0.3}],
            "measure": {"latency": None},
        }
    )
    report = compress.apply(recipe, output_dir=tmp_path / "out", progress=False)
    folder = Path(report.artifacts.model)
    assert folder.name == "model.hf" and (folder / "tokenizer.json").is_file()
    assert (folder / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    weight = model.model.layers[0].mlp.up_proj.weight.detach().numpy()
    assert 0.25 < float(np.mean(weight == 0)) < 0.35
    assert report.compressed.sparsity > 0.2
    assert report.fidelity.metric == "top1_agreement"  # next-token figures without a metric
    assert report.compressed.perplexity is None
