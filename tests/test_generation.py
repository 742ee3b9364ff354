"""Generation folders (compress.generation): the trained LM of models/ exported with
onnxruntime-genai's model builder loads in onnxruntime-genai, computes what transformers
computes, takes an ONNX transform (int4 weights) and is timed side by side with another
folder; folders the builder cannot or must not build are refused before it runs."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import MODELS

from compress.errors import ModelError, UnsafeModelError, UsageError
from compress.generation import (
    SUPPORTED_ARCHITECTURES,
    build_generation_folder,
    check_generation_parity,
    measure_generation,
)
from compress.generation import build as build_module
from compress.generation.runtime import GenerationModel

pytest.importorskip("onnxruntime_genai")  # the `llm` extra
Tokenizer = pytest.importorskip("tokenizers").Tokenizer

FOLDER = MODELS / "pydoc_lm"


def int4_weights(source: Path, target: Path) -> dict:
    """A transform: onnxruntime's weight-only int4 quantizer (MatMulNBits) on every MatMul."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    settings = {"block_size": 32, "is_symmetric": True, "accuracy_level": 4}
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)), algo_config=DefaultWeightOnlyQuantConfig(**settings), **settings
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
    nodes = [node for node in quantizer.model.model.graph.node if node.op_type == "MatMulNBits"]
    return {"transform": "int4_weights", "matmul_nbits": len(nodes)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The LM built twice, side by side (each build is mostly the builder's subprocess): as the
    builder writes it (fp32) and with int4 weights."""
    root = tmp_path_factory.mktemp("generation")
    with ThreadPoolExecutor(2) as pool:
        fp32 = pool.submit(build_generation_folder, FOLDER, root / "fp32")
        int4 = pool.submit(build_generation_folder, FOLDER, root / "int4", [int4_weights])
        return {"fp32": fp32.result(), "int4": int4.result()}


@pytest.fixture(scope="module")
def prompt() -> np.ndarray:
    """48 token ids of real text (a standard-library docstring), by the LM's own tokenizer."""
    tokenizer = Tokenizer.from_file(str(FOLDER / "tokenizer.json"))
    ids = tokenizer.encode(inspect.getdoc(textwrap.wrap)).ids
    assert len(ids) >= 48
    return np.asarray(ids[:48], dtype=np.int64)


def test_the_folder_holds_what_genai_loads_and_nothing_else(built):
    import onnxruntime_genai as og

    build = built["fp32"]
    assert build.architecture == "LlamaForCausalLM" and build.seconds > 0
    assert build.onnx == build.folder / "model.onnx" and build.transforms == []
    names = {path.name for path in build.folder.iterdir()}
    assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json"} <= names
    assert not [name for name in names if name.startswith(".")]  # no scratch left
    assert sorted(p.name for p in build.folder.parent.iterdir()) == ["fp32", "int4"]
    model = og.Model(str(build.folder))
    tokenizer = og.Tokenizer(model)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=12)
    generator = og.Generator(model, params)
    generator.append_tokens(tokenizer.encode("Return the"))
    while not generator.is_done():
        generator.generate_next_token()
    assert tokenizer.decode(generator.get_sequence(0)).startswith("Return the")


def test_the_folder_computes_what_transformers_computes(built, prompt):
    parity = check_generation_parity(FOLDER, built["fp32"].folder, prompt, new_tokens=32)
    assert parity["prefill_max_abs_diff"] < 1e-4  # fp32 against fp32: 4e-6 measured
    assert parity["greedy_tokens"] == 32 and parity["greedy_identical"]
    assert parity["first_difference"] is None


def test_a_transform_replaces_the_decoder_and_is_recorded(built, prompt):
    build = built["int4"]
    assert build.transforms == [{"transform": "int4_weights", "matmul_nbits": 21}]
    assert build.onnx == build.folder / "model.onnx"
    ops = {node.op_type for node in onnx.load(str(build.onnx)).graph.node}
    assert "MatMulNBits" in ops and "MatMul" not in ops
    assert not (build.folder / "model.onnx.data").exists()  # the fp32 weights' file is gone
    config = json.loads((build.folder / "genai_config.json").read_text())
    assert config["model"]["decoder"]["filename"] == "model.onnx"
    assert not [p for p in build.folder.iterdir() if p.name.startswith(".")]
    with pytest.raises(ModelError, match="differs from pydoc_lm in torch at prefill"):
        check_generation_parity(FOLDER, build.folder, prompt, new_tokens=4)


def test_two_folders_are_timed_interleaved(built, prompt):
    said = []
    folders = {"fp32": built["fp32"].folder, "int4": built["int4"].folder}
    figures = measure_generation(folders, prompt, new_tokens=8, runs=2, progress=said.append)
    assert [m for m in said if m.startswith("run")] == [
        "run 1/2: fp32",
        "run 1/2: int4",
        "run 2/2: fp32",
        "run 2/2: int4",
    ]
    for label, result in figures.items():
        assert result["runs"] == 2 and result["new_tokens"] == 8, label
        assert result["prefill_ms"] > 0 and result["decode_ms"] > 0
        assert result["tokens_per_s"] == pytest.approx(1000 / result["decode_ms"])
        assert result["peak_rss_bytes"] > 0 and result["notes"] == []
    # the int4 decoder holds 4-bit MatMul weights: it adds less to the process than the fp32 one
    assert figures["int4"]["peak_rss_bytes"] < figures["fp32"]["peak_rss_bytes"]


def test_the_thread_count_reaches_the_genai_session(built):
    def threads() -> int:
        return len(list(Path("/proc/self/task").iterdir()))

    folder = built["fp32"].folder
    kept = [GenerationModel(folder, threads=1)]  # the runtime's own threads start with it
    before = threads()
    kept.append(GenerationModel(folder, threads=1))
    one = threads()
    kept.append(GenerationModel(folder, threads=3))
    assert (one - before, threads() - one) == (0, 2)  # an intra-op pool of n runs n - 1 workers


def copy_of_lm(tmp_path: Path, **config_changes) -> Path:
    folder = tmp_path / "lm"
    shutil.copytree(FOLDER, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(config_changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def no_builder(monkeypatch):
    """Fail the test if the model builder is started."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model builder ran")

    monkeypatch.setattr(build_module.subprocess, "run", refuse)


@pytest.mark.unit
def test_an_architecture_the_builder_lacks_is_refused_before_it_runs(tmp_path, no_builder):
    folder = copy_of_lm(tmp_path, architectures=["BertForMaskedLM"])
    with pytest.raises(ModelError) as error:
        build_generation_folder(folder, tmp_path / "out")
    message = str(error.value)
    assert "names the architecture BertForMaskedLM" in message
    assert ", ".join(SUPPORTED_ARCHITECTURES) in message and "LlamaForCausalLM" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("auto_map", "asks for the model's own Python code (auto_map, trust_remote_code)"),
        ("pickled", "has no *.safetensors weights (pytorch_model.bin)"),
    ],
)
def test_a_folder_that_would_run_code_is_refused(tmp_path, no_builder, change, said):
    if change == "auto_map":
        folder = copy_of_lm(tmp_path, auto_map={"AutoModelForCausalLM": "mine.MyModel"})
    else:
        folder = copy_of_lm(tmp_path)
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(UnsafeModelError, match=r"refused to load lm: .*" + re.escape(said)):
        build_generation_folder(folder, tmp_path / "out")


@pytest.mark.unit
def test_a_target_that_is_not_empty_is_refused(tmp_path, no_builder):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not an empty directory"):
        build_generation_folder(FOLDER, target)
    assert (target / "keep.txt").read_text() == "mine"


@pytest.mark.unit
def test_a_builder_failure_names_its_error_and_leaves_no_folder(tmp_path, monkeypatch):
    crash = "import sys; sys.exit('Traceback (most recent call last):\\nValueError: no')"
    monkeypatch.setattr(build_module, "builder_command", lambda *_: [sys.executable, "-c", crash])
    with pytest.raises(ModelError, match=r"builder failed on pydoc_lm \(exit 1\): ValueError: no;"):
        build_generation_folder(FOLDER, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor the builder's cache
