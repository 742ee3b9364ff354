"""LLM decode: compress's INT4 weight-only generation folders against onnxruntime-genai's model
builder used by hand, every figure measured in this one process.

For each model four onnxruntime-genai folders are compared (the columns):

* compress fp32 and compress int4: `compress.apply` of one recipe, `{type: quantize, mode:
  weight_only, weights: int4, block_size: 32}` with `measure.generation` set, which writes both
  models as generation folders (`report.artifacts.generation`: baseline and compressed);
* builder fp32 and builder int4: what a user runs instead, `python -m
  onnxruntime_genai.models.builder -i <folder> -o <out> -p fp32|int4 -e cpu` (offline: a local
  cache, `hf_token=false`); a failure fills its column with "failed*" and a footnote.

The models: models/pydoc_lm (the trained 2M-parameter Llama, vocabulary 2048, context 128) and
two random-weight folders written by models/hf_random.py into the output folder, a Llama
(8 x 512, 4 KV heads of 8, untied, about 56M parameters) and a Qwen2 (8 x 640, 2 KV heads of 10,
tied embeddings, about 55M); decode speed does not depend on what the weights learned.

Measured per column: the decoder's file size (ONNX and external data); prefill of a 64-token
prompt (the start of pydoc_lm's held-out text, tokenized by the model's tokenizer) and greedy
decoding of 128 new tokens (63 on pydoc_lm, whose context is 128), timed with onnxruntime-genai
on one intra-op thread by `compress.generation.measure_generation`, all four folders of a model
interleaved run by run; tokens per second, the speed-up over the same tool's fp32 folder and
the peak resident-memory growth of loading and running each. On pydoc_lm also perplexity on the
held-out windows that `evaluate: perplexity` scores (64 tokens, every position predicting the
next): compress's reported figures (its fixed-length forward graphs), each folder's decoder run
by plain onnxruntime on an empty KV cache, and the Hugging Face model in torch. Then the targets,
MET or MISSED.

Run (from any directory; the machine to itself, a few minutes):

    .venv/bin/python benchmarks/llm.py [--only pydoc,llama,qwen2] [--quick] [--out DIR]

`--quick` runs pydoc_lm alone (unless `--only` names others), 16 new tokens, one timed run: a
check of the code, not figures.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _shared import common

from compress import Report
from compress.backends.torch.hf_folder import token_stream
from compress.generation import measure_generation
from compress.generation.folder import read_decoder
from compress.text_data import windows

THREADS = 1
PROMPT_TOKENS, NEW_TOKENS, RUNS = 64, 128, 5
QUICK_NEW_TOKENS, QUICK_RUNS = 16, 1
#: The held-out windows' length, as recipes/llm_int4.yaml has it.
SEQ_LEN = 64
BLOCK_SIZE = 32
EVAL_BATCH = 32
PYDOC_FOLDER = common.MODELS / "pydoc_lm"
DOCUMENTS = f"{common.MODELS / 'pydoc_lm.py'}:documents"

COMPRESS_FP32, COMPRESS_INT4 = "compress fp32", "compress int4"
BUILDER_FP32, BUILDER_INT4 = "builder fp32", "builder int4"
COLUMNS = [COMPRESS_FP32, COMPRESS_INT4, BUILDER_FP32, BUILDER_INT4]
#: Each column's fp32 column, for the speed-up.
FP32_OF = {
    COMPRESS_FP32: COMPRESS_FP32,
    COMPRESS_INT4: COMPRESS_FP32,
    BUILDER_FP32: BUILDER_FP32,
    BUILDER_INT4: BUILDER_FP32,
}
FAILED = "failed*"

MIN_FP32_RATIO = 0.95
MAX_PERPLEXITY_GAP = 0.005

#: name -> (table title, the model folder's family in models/hf_random.py, or None: pydoc_lm)
MODELS = {
    "pydoc": ("pydoc_lm (trained Llama, 4 x 192)", None),
    "llama": ("Llama, random weights (8 x 512, GQA 8/4, untied)", "llama"),
    "qwen2": ("Qwen2, random weights (8 x 640, GQA 10/2, tied)", "qwen2"),
}
QUICK_MODELS = ["pydoc"]
hf_random = common.load_source(common.MODELS / "hf_random.py")


@dataclass(frozen=True)
class Settings:
    """New tokens a run generates (at most: a model's context may allow fewer) and timed runs."""

    new_tokens: int
    runs: int


@dataclass
class Result:
    """One model: its generation folders by column, or why a column has none, and what was
    measured on them."""

    name: str
    folder: Path
    params: int
    new_tokens: int
    report: Report
    folders: dict[str, Path]
    errors: dict[str, str] = field(default_factory=dict)
    timed: dict[str, dict] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    #: decoder perplexity by column, and "torch" (pydoc_lm only)
    perplexity: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def speedup(self, label: str) -> float | None:
        """Decode tokens/s over those of the same tool's fp32 folder (None: not measured)."""
        base = FP32_OF[label]
        if label not in self.timed or base not in self.timed:
            return None
        return self.timed[label]["tokens_per_s"] / self.timed[base]["tokens_per_s"]


# --- producing the folders --------------------------------------------------------------------


def model_folder(name: str, workdir: Path) -> Path:
    """pydoc_lm's folder, or a random-weight folder written by models/hf_random.py."""
    family = MODELS[name][1]
    if family is None:
        return PYDOC_FOLDER
    with common.quiet():
        return hf_random.write_folder(family, workdir / f"{name}-hf")


def context_length(folder: Path) -> int:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return int(config["max_position_embeddings"])


def recipe(name: str, folder: Path, trained: bool, settings: Settings, new_tokens: int) -> dict:
    """INT4 weight-only with both generation folders timed; perplexity on the held-out text for
    the trained model. The random ones have no data (nothing to score), so compress times them
    on seeded random prompt ids; the table's own timing uses the held-out prompt for all."""
    raw = {
        "version": 1,
        "name": f"{name}-llm-int4",
        "model": {"source": str(folder)},
        "passes": [
            {"type": "quantize", "mode": "weight_only", "weights": "int4", "block_size": BLOCK_SIZE}
        ],
        "measure": {
            "latency": None,
            "generation": {
                "prompt_tokens": PROMPT_TOKENS,
                "new_tokens": new_tokens,
                "runs": settings.runs,
                "threads": THREADS,
            },
        },
    }
    if trained:
        raw["data"] = {"source": DOCUMENTS, "seq_len": SEQ_LEN, "batch_size": EVAL_BATCH}
        raw["evaluate"] = {"metric": "perplexity"}
    return raw


def run_builder(folder: Path, target: Path, precision: str) -> None:
    """onnxruntime-genai's model builder by hand, offline; RuntimeError with its last error line
    when it fails."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".builder-cache-") as cache:
        command = [
            sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder),
            "-o", str(target), "-p", precision, "-e", "cpu", "-c", cache,
            "--extra_options", "hf_token=false",
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=cache, capture_output=True, text=True, errors="replace", check=False
        )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"exit {done.returncode}: {(lines or ['(no output)'])[-1][:300]}")


def produce(name: str, workdir: Path, settings: Settings) -> Result:
    """Every column's folder of one model."""
    folder = model_folder(name, workdir)
    new_tokens = min(settings.new_tokens, context_length(folder) - PROMPT_TOKENS - 1)
    trained = MODELS[name][1] is None
    raw = recipe(name, folder, trained, settings, new_tokens)
    report = common.apply_quietly(raw, workdir / f"{name}-compress")
    assert report.artifacts.generation is not None, "compress.apply wrote no generation folders"
    folders = {
        COMPRESS_FP32: Path(report.artifacts.generation["baseline"]),
        COMPRESS_INT4: Path(report.artifacts.generation["compressed"]),
    }
    result = Result(name, folder, hf_random.parameter_count(folder), new_tokens, report, folders)
    for label, precision in ((BUILDER_FP32, "fp32"), (BUILDER_INT4, "int4")):
        target = workdir / f"{name}-builder-{precision}"
        try:
            run_builder(folder, target, precision)
        except RuntimeError as exc:
            result.errors[label] = f"the model builder failed: {exc}"
        else:
            result.folders[label] = target
    return result


# --- measurements -----------------------------------------------------------------------------


def held_out_windows(folder: Path) -> np.ndarray:
    """pydoc_lm's held-out text in SEQ_LEN-token windows, tokenized as compress tokenizes a
    data.source's text (so these are the windows its perplexity is on)."""
    documents = common.call_source(DOCUMENTS)["val"]
    return windows(token_stream(folder, documents), SEQ_LEN, "pydoc_lm's val text")


def nll_sum(logits: np.ndarray, batch: np.ndarray) -> float:
    """The summed next-token negative log-likelihood of every position but the last."""
    shifted = logits[:, :-1].astype(np.float64)
    shifted -= shifted.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -float(np.take_along_axis(log_probs, batch[:, 1:, None], -1).sum())


def perplexity_of(logits_of: Callable[[np.ndarray], np.ndarray], held_out: np.ndarray) -> float:
    """exp(mean next-token NLL) over the windows, EVAL_BATCH at a time."""
    total = 0.0
    for start in range(0, len(held_out), EVAL_BATCH):
        batch = held_out[start : start + EVAL_BATCH]
        total += nll_sum(logits_of(batch), batch)
    return math.exp(total / (held_out.shape[0] * (held_out.shape[1] - 1)))


#: numpy types of the decoder inputs fed here
NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}


def decoder_logits(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A generation folder's decoder in plain onnxruntime as windows -> logits: the whole
    window in one prefill, every position attended, the KV cache empty."""
    decoder = read_decoder(folder)
    session = common.make_session(decoder.onnx, THREADS)
    past = decoder.past_names()
    roles = {name: role for role, name in decoder.inputs.items()}

    def logits(batch: np.ndarray) -> np.ndarray:
        count, length = batch.shape
        values = {
            "input_ids": batch,
            "attention_mask": np.ones_like(batch),
            "position_ids": np.broadcast_to(np.arange(length), batch.shape),
        }
        feeds = {}
        for meta in session.get_inputs():
            dtype = NUMPY_TYPES[meta.type]
            if meta.name in past:
                shape = (count, decoder.kv_heads, 0, decoder.head_size)
                feeds[meta.name] = np.zeros(shape, dtype)
            else:
                feeds[meta.name] = np.ascontiguousarray(values[roles[meta.name]], dtype)
        return session.run([decoder.logits], feeds)[0]

    return logits


def torch_logits(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The Hugging Face model in torch (as compress loads a folder) as windows -> logits."""
    import torch

    from compress.backends.torch.hf_folder import load_folder

    torch.set_num_threads(THREADS)
    model = load_folder(folder, trust=False)

    def logits(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    return logits


def decoder_size(folder: Path) -> int:
    """Bytes of the folder's decoder: the ONNX file and its external data."""
    return sum(path.stat().st_size for path in common.model_files(read_decoder(folder).onnx))


def measure(result: Result, settings: Settings) -> None:
    """Sizes, then generation of every folder interleaved, then perplexity (trained model)."""
    trained = MODELS[result.name][1] is None
    held_out = held_out_windows(result.folder)
    result.sizes = {label: decoder_size(folder) for label, folder in result.folders.items()}
    with common.native_silence():
        result.timed = measure_generation(
            result.folders, held_out[0], result.new_tokens, settings.runs, THREADS
        )
    if trained:
        result.perplexity = {
            label: perplexity_of(decoder_logits(folder), held_out)
            for label, folder in result.folders.items()
        }
        result.perplexity["torch"] = perplexity_of(torch_logits(result.folder), held_out)


# --- output -----------------------------------------------------------------------------------


def table_rows(result: Result) -> list[common.Row]:
    def cells(values: dict, show: Callable[[str], str]) -> list[str]:
        return [
            FAILED if label in result.errors else show(label) if label in values else common.MISSING
            for label in COLUMNS
        ]

    timed, sizes, ppl = result.timed, result.sizes, result.perplexity
    reported = {COMPRESS_FP32: result.report.baseline, COMPRESS_INT4: result.report.compressed}

    def figure(key: str, shape: str, scale: float = 1.0) -> list[str]:
        return cells(timed, lambda c: shape.format(timed[c][key] * scale))

    def speedup(label: str) -> str:
        value = result.speedup(label)
        return common.MISSING if value is None else f"{value:.2f}x"

    rows: list[common.Row] = [
        ("decoder size (MB)", cells(sizes, lambda c: f"{sizes[c] / 1e6:.2f}")),
        ("size vs own fp32", cells(sizes, lambda c: common.ratio(sizes[c], sizes[FP32_OF[c]]))),
        (f"prefill, {PROMPT_TOKENS} tokens (ms)", figure("prefill_ms", "{:.2f}")),
        ("decode (tokens/s)", figure("tokens_per_s", "{:.1f}")),
        ("decode speed-up vs own fp32", cells(timed, speedup)),
        ("peak RSS growth (MB)", figure("peak_rss_bytes", "{:.1f}", 1e-6)),
        (
            "decode (tokens/s), compress's report",
            cells(reported, lambda c: f"{reported[c].generation.tokens_per_s:.1f}"),
        ),
    ]
    if ppl:
        rows += [
            ("perplexity, decoder in onnxruntime", cells(ppl, lambda c: f"{ppl[c]:.4f}")),
            (
                "perplexity, compress's report",
                cells(reported, lambda c: f"{reported[c].perplexity:.4f}"),
            ),
        ]
    return rows


def print_result(result: Result) -> None:
    title = MODELS[result.name][0]
    print(
        f"\n{title}: {result.params:,} parameters; {PROMPT_TOKENS}-token prompt, "
        f"{result.new_tokens} new tokens  ({result.seconds:.0f} s)"
    )
    common.print_table(COLUMNS, table_rows(result))
    for label, error in result.errors.items():
        print(f"* {label}: {error}")
    if "torch" in result.perplexity:
        print(f"  perplexity in torch (transformers): {result.perplexity['torch']:.4f}")
    for record in (result.report.generation or {}).get("decoder_passes", []):
        print(f"  compress's decoder pass: {record.get('format')}; {record.get('why')}")
    for note in result.report.notes:
        print(f"    note: {note}")


def faster(result: Result) -> tuple[bool, str]:
    """compress's INT4 decode speed-up against the builder's -p int4 one."""
    ours, theirs = result.speedup(COMPRESS_INT4), result.speedup(BUILDER_INT4)
    assert ours is not None
    text = f"{result.name}: compress int4 decode speed-up {ours:.2f}x"
    if theirs is None:
        return True, f"{text}; the builder's int4 failed, no figure"
    return ours >= theirs, f"{text} >= the builder's -p int4 {theirs:.2f}x"


def fp32_parity(result: Result) -> tuple[bool, str]:
    """compress's fp32 folder decodes at least MIN_FP32_RATIO as fast as the builder's."""
    ours = result.timed[COMPRESS_FP32]["tokens_per_s"]
    text = f"{result.name}: compress fp32 decode {ours:.1f} tokens/s"
    if BUILDER_FP32 not in result.timed:
        return True, f"{text}; the builder's fp32 failed, no figure"
    theirs = result.timed[BUILDER_FP32]["tokens_per_s"]
    return (
        ours >= MIN_FP32_RATIO * theirs,
        f"{text} >= {MIN_FP32_RATIO}x the builder's fp32 {theirs:.1f} ({ours / theirs:.3f}x)",
    )


def close_to_torch(result: Result, what: str, value: float) -> tuple[bool, str]:
    reference = result.perplexity["torch"]
    gap = value / reference - 1
    return (
        abs(gap) <= MAX_PERPLEXITY_GAP,
        f"{result.name}: {what} perplexity {value:.4f} within {MAX_PERPLEXITY_GAP:.1%} of "
        f"torch's {reference:.4f} ({gap:+.3%})",
    )


def targets(result: Result) -> list[tuple[bool, str]]:
    found = [faster(result), fp32_parity(result)]
    if "torch" in result.perplexity:
        reported = result.report.baseline.perplexity
        assert reported is not None
        found += [
            close_to_torch(result, "float ONNX (compress's report)", reported),
            close_to_torch(result, "compress fp32 decoder", result.perplexity[COMPRESS_FP32]),
        ]
    return found


def print_header(settings: Settings) -> None:
    print(common.machine_line())
    print(
        f"{common.versions_line()}; CPU, {THREADS} intra-op thread, greedy, "
        f"{settings.runs} timed run(s) per folder after one "
        "warm-up, the folders of a model interleaved"
    )


def main() -> None:
    parser = common.arguments(__doc__, "pydoc_lm alone, 16 new tokens, one timed run")
    parser.add_argument("--only", default=None, help=f"comma-separated, of: {', '.join(MODELS)}")
    args = parser.parse_args()
    names = common.chosen(
        parser, args.only, list(MODELS), QUICK_MODELS if args.quick else list(MODELS)
    )
    settings = Settings(QUICK_NEW_TOKENS, QUICK_RUNS) if args.quick else Settings(NEW_TOKENS, RUNS)
    started = time.perf_counter()
    print_header(settings)
    results = []
    with common.output_dir(args.out, "llm-bench-") as workdir:
        for name in names:
            began = time.perf_counter()
            result = produce(name, workdir, settings)
            measure(result, settings)
            result.seconds = time.perf_counter() - began
            print_result(result)
            results.append(result)
    print("\nTargets (figures from the tables above):")
    for result in results:
        for met, text in targets(result):
            common.verdict(met, text)
    print(f"\nWall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
