"""INT4 weight-only quantization of a tied-embedding LM (models/pydoc_lm): accuracy_level in
every MatMulNBits, embeddings as GatherBlockQuantized, the lm_head's own width, the tied table
stored once, the record, and the `generation` role on a decoder graph with external data."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from pydantic import ValidationError

import compress.backends  # noqa: F401 - registers the handlers
from compress.backends.onnx import decoder
from compress.backends.onnx.quantize import Quantizer
from compress.backends.onnx.weight_only import int4_bytes
from compress.errors import ModelError
from compress.onnx.inspect import weight_tensors
from compress.passes.registry import GENERATION, parse_pass, role_for
from tests.conftest import MODELS

FOLDER = MODELS / "pydoc_lm"
IDS = np.random.default_rng(0).integers(0, 2048, (1, 16)).astype(np.int64)
RECORD_KEYS = {
    "format",
    "block_size",
    "accuracy_level",
    "embeddings",
    "embedding_nodes",
    "lm_head",
    "lm_head_node",
    "tied_embeddings",
}


def weight_only(**fields) -> object:
    return parse_pass({"type": "quantize", "mode": "weight_only", "weights": "int4", **fields})


def logits(path: Path, ids: np.ndarray = IDS) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input_ids": ids})[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return float(
        np.mean(np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1))
    )


def nodes(path: Path, op: str) -> list[onnx.NodeProto]:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op]


def attribute(node: onnx.NodeProto, name: str):
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def params(path: Path) -> int:
    return sum(t.params for t in weight_tensors(path))


def matrix_params(path: Path) -> int:
    """The weights of 2-D tensors (MatMul weights, tables; INT4 blocks as K x N): onnxruntime's
    pre-processing also folds the attention mask and rotary tables into initializers."""
    return sum(t.params for t in weight_tensors(path) if len(t.shape) == 2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("int4")


@pytest.fixture(scope="module")
def forward(folder) -> Path:
    """pydoc_lm as input_ids -> logits at sequence 16, TorchScript-exported (a second of work,
    where dynamo takes several): the Gather reads the table, the lm_head a transposed copy."""
    import torch

    from compress.backends.torch.hf_folder import load_folder

    class Logits(torch.nn.Module):  # an explicit mask skips the packed-sequence check (aten::diff)
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            mask = torch.ones_like(input_ids)
            return self.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits

    path = folder / "forward.onnx"
    module = Logits(load_folder(FOLDER, trust=False).model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.from_numpy(IDS),),
            str(path),
            input_names=["input_ids"],
            output_names=["logits"],
            dynamo=False,
        )
    return path


@pytest.fixture(scope="module")
def shared(forward, folder) -> Path:
    """The export with one copy of the tied table, as the dynamo exporter and onnxruntime-genai's
    builder write it: the lm_head reads the Gather's table through a Transpose."""
    model = onnx.load(str(forward))
    graph = model.graph
    table = next(n for n in graph.node if n.op_type == "Gather").input[0]
    head = next(n for n in graph.node if "logits" in n.output)
    copy = head.input[1]
    head.input[1] = "lm_head.weight"
    graph.node.insert(
        0, onnx.helper.make_node("Transpose", [table], ["lm_head.weight"], perm=[1, 0])
    )
    kept = [t for t in graph.initializer if t.name != copy]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    path = folder / "shared.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def reference(forward) -> np.ndarray:
    return logits(forward)


@pytest.fixture(scope="module")
def quantize(forward, folder):
    """The file the pipeline's quantizer writes for the given fields (onnxruntime's
    pre-processing folds the Transpose: the table and the lm_head then hold two copies), and
    its record."""

    @functools.cache
    def run(source: Path = forward, **fields) -> tuple[Path, dict]:
        config = weight_only(**fields)
        scratch = Path(tempfile.mkdtemp(dir=folder))
        quantizer = Quantizer.prepare(source, scratch, config, None, 1)
        target = scratch / "quantized.onnx"
        quantizer.write(target)
        return target, quantizer.chosen

    return run


@pytest.mark.parametrize("fields", [{}, {"accuracy_level": 0}, {"accuracy_level": 2}])
def test_accuracy_level_is_written_into_every_matmulnbits(quantize, fields):
    path, record = quantize(**fields)
    matmuls = nodes(path, "MatMulNBits")
    assert len(matmuls) == 29  # 4 layers x 7 projections + the lm_head
    want = fields.get("accuracy_level", 4)
    assert {attribute(node, "accuracy_level") for node in matmuls} == {want}
    assert record["accuracy_level"] == want
    assert ("why" in record) == (not fields)  # auto says why it chose 4


def test_int4_embeddings_are_gatherblockquantized_and_close(quantize, reference):
    path, record = quantize()
    (gather,) = nodes(path, "GatherBlockQuantized")
    assert not nodes(path, "Gather")
    assert attribute(gather, "bits") == 4 and record["embeddings"] == "int4"
    assert cosine(logits(path), reference) > 0.99


@pytest.mark.parametrize("layout", ["copies", "shared"])
def test_tied_table_is_stored_once(quantize, forward, shared, layout):
    source = forward if layout == "copies" else shared
    path, record = quantize(source)
    assert record["tied_embeddings"] is True
    assert record["tied_storage"].startswith("one int4 copy")
    assert matrix_params(path) == matrix_params(shared) < matrix_params(forward)
    assert path.stat().st_size < shared.stat().st_size / 5
    graph = onnx.load(str(path)).graph
    producers = {out: node for node in graph.node for out in node.output}
    (gather,) = nodes(path, "GatherBlockQuantized")
    rows = producers[gather.input[0]]  # the head's MatMulNBits blocks, seen as table rows
    assert rows.op_type == "Reshape" and producers["logits"].input[1] == rows.input[0]


@pytest.mark.parametrize("width, bits", [("int8", 8), ("float", None)])
def test_lm_head_width_is_honoured(quantize, reference, shared, width, bits):
    path, record = quantize(shared, lm_head=width)
    producer = next(n for n in onnx.load(str(path)).graph.node if "logits" in n.output)
    assert record["lm_head"] == width and record["lm_head_node"]
    if bits is None:
        assert producer.op_type == "MatMul"
        assert nodes(path, "Gather") and record["embeddings"] == "float"  # tied: one float copy
    else:
        assert producer.op_type == "MatMulNBits" and attribute(producer, "bits") == bits
        (head,) = [t for t in weight_tensors(path) if t.name == producer.input[1]]
        assert head.dtype == "int8" and head.shape == (192, 2048)  # the report's layer row
        assert attribute(nodes(path, "GatherBlockQuantized")[0], "bits") == 8
    assert record["tied_embeddings"] is True and matrix_params(path) == matrix_params(shared)
    assert cosine(logits(path), reference) > 0.99


def test_an_ignored_embedding_keeps_its_tied_table_float_and_single(quantize, shared):
    path, record = quantize(shared, ignore=("op:Gather",))
    assert record["embeddings"] == record["lm_head"] == "float"
    assert "lm_head int4 -> float" in record["tied_storage"]
    assert nodes(path, "Gather") and not nodes(path, "GatherBlockQuantized")
    assert matrix_params(path) == matrix_params(shared)


@pytest.fixture(scope="module")
def untied(forward, folder) -> Path:
    """The export with a table of its own (slightly different values) for the Gather."""
    model = onnx.load(str(forward))
    gather = next(n for n in model.graph.node if n.op_type == "Gather")
    table = next(t for t in model.graph.initializer if t.name == gather.input[0])
    values = onnx.numpy_helper.to_array(table) * np.float32(1.001)
    model.graph.initializer.append(onnx.numpy_helper.from_array(values, "embed.weight"))
    gather.input[0] = "embed.weight"
    path = folder / "untied.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("width, bits", [("int4", 4), ("int8", 8)])
def test_untied_embeddings_take_their_own_width(quantize, untied, width, bits):
    path, record = quantize(untied, embeddings=width)
    (gather,) = nodes(path, "GatherBlockQuantized")
    assert attribute(gather, "bits") == bits and record["tied_embeddings"] is False
    assert cosine(logits(path), logits(untied)) > 0.99


def test_record_says_what_was_done(quantize):
    _, record = quantize()
    assert RECORD_KEYS | {"tied_storage", "why"} <= set(record)
    assert record["block_size"] == 32 and record["lm_head"] == "int4"
    assert record["lm_head_node"] and record["embedding_nodes"]


@pytest.mark.unit
def test_block_size_must_be_a_power_of_two():
    with pytest.raises(ValidationError, match="power of two"):
        weight_only(block_size=48)


def test_generation_role_quantizes_a_graph_with_external_data(shared, folder, reference):
    source = folder / "decoder" / "model.onnx"
    source.parent.mkdir()
    onnx.save(onnx.load(str(shared)), str(source), save_as_external_data=True)
    config = weight_only()
    handler = role_for(GENERATION, config)
    target = folder / "decoder_int4.onnx"
    record = handler(source, target, config)
    assert set(record) >= RECORD_KEYS and record["external_data"] is None
    assert record["tied_embeddings"] is True and params(target) <= params(source)
    assert cosine(logits(target), reference) > 0.99


@pytest.mark.e2e
def test_builder_decoder_still_generates(folder):
    """onnxruntime-genai's builder writes the fp32 decoder; the quantized folder generates."""
    og = pytest.importorskip("onnxruntime_genai")
    built = folder / "builder"
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(FOLDER)]
    command += ["-o", str(built), "-p", "fp32", "-e", "cpu", "-c", str(folder / "cache")]
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    quantized = folder / "builder_int4"
    shutil.copytree(built, quantized, ignore=shutil.ignore_patterns("model.onnx*"))
    config = weight_only()
    record = role_for(GENERATION, config)(built / "model.onnx", quantized / "model.onnx", config)
    assert record["tied_embeddings"] is True and record["lm_head_node"] == "/lm_head/MatMul"
    assert params(quantized / "model.onnx") <= params(built / "model.onnx")
    model = og.Model(str(quantized))
    search = og.GeneratorParams(model)
    search.set_search_options(max_length=24, do_sample=False)
    generator = og.Generator(model, search)
    generator.append_tokens(og.Tokenizer(model).encode("def add(a, b):"))
    while not generator.is_done():
        generator.generate_next_token()
    assert len(generator.get_sequence(0)) == 24


@pytest.fixture(scope="module")
def tied_gemm(folder) -> Path:
    """A tied lm_head exported as Gemm (transB) over the embedding table itself."""
    table = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Gather", ["table", "input_ids"], ["rows"], name="embed"),
            onnx.helper.make_node("Reshape", ["rows", "flat"], ["hidden"], name="flatten"),
            onnx.helper.make_node("Gemm", ["hidden", "table"], ["logits"], name="head", transB=1),
        ],
        "tied",
        [onnx.helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, [1, 4])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [4, 64])],
        [
            onnx.numpy_helper.from_array(table, "table"),
            onnx.numpy_helper.from_array(np.array([4, 32], np.int64), "flat"),
        ],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    path = folder / "gemm_tied.onnx"
    onnx.save(model, str(path))
    return path


TINY_IDS = np.array([[0, 5, 63, 7]], np.int64)


@pytest.mark.unit
def test_a_gemm_reading_the_embedding_table_leaves_it_whole_and_shares_it(tied_gemm, folder):
    """The Gemm rewrite gives the MatMul its own transposed copy of the table; the tied table
    is then still stored once."""
    target = folder / "gemm_tied_int4.onnx"
    config = weight_only()
    record = role_for(GENERATION, config)(tied_gemm, target, config)
    assert record["tied_embeddings"] is True and record["lm_head_node"] == "head_MatMul"
    assert params(target) == params(tied_gemm) == 64 * 32
    assert cosine(logits(target, TINY_IDS), logits(tied_gemm, TINY_IDS)) > 0.99


@pytest.mark.unit
def test_a_large_decoder_keeps_its_tensors_beside_it(tied_gemm, folder, monkeypatch):
    monkeypatch.setattr(decoder, "EXTERNAL_BYTES", 0)
    target = folder / "large" / "model.onnx"
    target.parent.mkdir()
    (target.parent / "model.onnx.data").write_bytes(b"stale builder weights")
    config = weight_only()
    record = role_for(GENERATION, config)(tied_gemm, target, config)
    assert record["external_data"] == "model.onnx.data"
    assert target.stat().st_size < (target.parent / "model.onnx.data").stat().st_size
    assert cosine(logits(target, TINY_IDS), logits(tied_gemm, TINY_IDS)) > 0.99


def quantized_bytes(path: Path) -> int:
    """The stored bytes of every MatMulNBits and GatherBlockQuantized initializer."""
    model = onnx.load(str(path))
    stored = {t.name: len(t.raw_data) for t in model.graph.initializer}
    ops = ("MatMulNBits", "GatherBlockQuantized")
    read = {name for node in model.graph.node if node.op_type in ops for name in node.input}
    return sum(size for name, size in stored.items() if name in read)


@pytest.mark.parametrize("symmetric", [True, False])
def test_int4_bytes_predicts_the_blocks_written_padding_included(quantize, untied, symmetric):
    """pydoc_lm's hidden size is 192: block 128 pads it to 256, so block 64 is the smallest
    file, and the width search must know it before it runs a trial."""
    blocks = (32, 64, 128)
    predicted = int4_bytes(untied, blocks, symmetric)
    written = {
        b: quantized_bytes(quantize(untied, block_size=b, symmetric=symmetric)[0]) for b in blocks
    }
    assert predicted == written
    assert min(written, key=written.get) == 64 and written[128] > written[32]


@pytest.mark.parametrize("layout", ["forward", "shared"])
def test_int4_bytes_counts_a_tied_table_once_as_the_lm_head_stores_it(quantize, layout, request):
    """A table tied to the lm_head is written once, as the lm_head's padded MatMulNBits weight
    that GatherBlockQuantized reads: the prediction counts it so."""
    path = request.getfixturevalue(layout)
    blocks = (64, 128)
    written = {b: quantized_bytes(quantize(path, block_size=b)[0]) for b in blocks}
    assert int4_bytes(path, blocks, True) == written


def test_int8_nodes_are_written_at_8_bits_and_an_unmatched_one_is_refused(quantize, reference):
    path, record = quantize(int8_nodes=("re:.*down_proj.*",))
    widths = record["node_widths"]
    wider = sorted(name for name, width in widths.items() if width == "int8")
    assert wider and all("down_proj" in name for name in wider)
    assert {attribute(n, "bits") for n in nodes(path, "MatMulNBits") if "down_proj" in n.name} == {
        8
    }
    assert cosine(logits(path), reference) > 0.99
    with pytest.raises(ModelError, match="int8_nodes 're:no_such_node' matches no node"):
        quantize(int8_nodes=("re:no_such_node",))
