"""Compare this toolkit's post-training quantization (`type: quantize`) with onnxruntime's
`quantize_dynamic` at its default settings, done by hand, on three models.

For each model three ONNX files are measured in one run:

* fp32: the float model (for PyTorch models, the baseline that `compress.apply` exported);
* compress: what `compress.apply` writes for a recipe whose only pass is `type: quantize`;
* by hand: `quantize_dynamic(fp32_path, out_path, weight_type=QuantType.QInt8)`, nothing else
  (no pre-processing, per-tensor weights, every op type it supports).

The models:

a. the quickstart digits CNN (models/digits_cnn.py + digits_cnn.safetensors, 359 val images):
   compress `mode: static` (calibrated INT8 QDQ); accuracy of each on val.
b. cnn64 (models/cnn64.py: conv-heavy, 1.2M parameters, 3x64x64, seeded random weights):
   compress `mode: static`; fidelity = top-1 agreement with fp32 on its 64 synthetic val images
   (and the mean cosine of the logits: an untrained model's top-1 margins are small, so its
   agreement is a harsher measure than on a trained classifier).
c. the all-MiniLM-L6-v2 sentence encoder with its real weights (benchmarks/transformer_model.py),
   exported to fp32 ONNX and given to compress as an ONNX model source with `mode: dynamic`
   (per-channel, the toolkit's default); fidelity = cosine similarity of the mean-pooled
   embeddings with fp32 on 64 real sentences, padded to 64 tokens (mean and minimum).
d. the same MiniLM ONNX with compress `mode: weight_only, weights: int4` (MatMulNBits on its 36
   linear layers); its by-hand column is the same `quantize_dynamic` INT8 file as in c.

Latency is the p50 of batch-1 inferences in onnxruntime on CPU with intra_op_num_threads=1; all
files of a model run interleaved in one loop (the order alternating between rounds), after 20
warm-up rounds: 200 timed rounds for the CNNs, 100 for MiniLM at 64 tokens and at 16 tokens (c
and d share one loop). Sizes are the ONNX files' bytes. The figures `compress.apply` reported
itself are printed too: its latency comes from its own interleaved loop (fp32 and compress only),
and its transformer fidelity is the cosine of the whole flattened hidden-state tensor, padding
positions included, which is not the mean-pooled cosine measured here.

Run (from any directory; the repository root is found from this file; about 2 minutes on 2 cores):

    .venv/bin/python benchmarks/quantize.py
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import common
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

import compress
from compress.cpu import cpu_flags, cpu_name
from compress.report.schema import Report

QUICKSTART = common.REPO / "recipes" / "quickstart.yaml"
CNN64 = common.REPO / "models" / "cnn64.py"
TRANSFORMER = common.REPO / "benchmarks" / "transformer_model.py"

THREADS = 1
CNN_RUNS = 200
TRANSFORMER_RUNS = 100
#: compress.apply's own latency loop for MiniLM (its figures are printed beside ours).
REPORT_TRANSFORMER_RUNS = 50
SHORT_SEQ_LEN = 16

MIN_CNN_SPEEDUP = 2.0
MAX_ACCURACY_DROP_POINTS = 0.5
MIN_TRANSFORMER_SPEEDUP = 2.0
MIN_MEAN_COSINE = 0.99
MAX_INT4_SIZE_RATIO = 0.2

FP32, BY_HAND, INT4 = "fp32", "by hand", "compress int4"
COLUMNS = [FP32, common.COMPRESS, BY_HAND]
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")


@dataclass
class Case:
    """One model: its ONNX files by label, compress's report(s) and what was measured."""

    title: str
    paths: dict[str, Path]
    reports: dict[str, Report]

    def __post_init__(self) -> None:
        self.sizes = {label: path.stat().st_size for label, path in self.paths.items()}

    sizes: dict[str, int] = field(default_factory=dict)
    p50_ms: dict[str, float] = field(default_factory=dict)
    p50_short_ms: dict[str, float] = field(default_factory=dict)
    fidelity: dict[str, dict[str, float]] = field(default_factory=dict)


# --- producing the files --------------------------------------------------------------------


def run_recipe(recipe: common.Recipe, workdir: Path, name: str) -> Report:
    """Run a recipe given as data (paths relative to workdir) through the Python API."""
    with common.quiet():
        return compress.apply(recipe, output_dir=workdir / name, progress=False, base_dir=workdir)


def latency_spec(runs: int, **extra: object) -> dict:
    spec = {"device": "cpu", "threads": THREADS, "warmup": common.WARMUP_RUNS, "runs": runs}
    return {"latency": {**spec, "batch_size": 1, **extra}}


def by_hand(fp32: Path, target: Path) -> Path:
    """onnxruntime's dynamic quantization with its default settings."""
    with common.quiet():
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8)
    return target


def digits_case(workdir: Path) -> Case:
    """The quickstart's model and data with one static-quantization pass instead of pruning."""
    quickstart = common.read_recipe(QUICKSTART)
    return static_cnn_case(
        workdir,
        "digits",
        "a. digits CNN: static INT8",
        {**quickstart, "name": "digits-cnn-static-int8"},
    )


def cnn64_case(workdir: Path) -> Case:
    cnn64 = {
        "name": "cnn64-static-int8",
        "model": {
            "source": f"{CNN64}:build",
            "inputs": [{"name": "input", "shape": ["batch", 3, 64, 64], "dtype": "float32"}],
        },
        "data": {"source": f"{CNN64}:load", "batch_size": 64},
    }
    return static_cnn_case(workdir, "cnn64", "b. cnn64 (3x64x64): static INT8", cnn64)


def static_cnn_case(workdir: Path, name: str, title: str, source: common.Recipe) -> Case:
    """A recipe with the name, model and data of `source` and one static-quantization pass, run
    in workdir/name; by hand, quantize_dynamic on the fp32 file it exported."""
    recipe = {
        "version": 1,
        "name": source["name"],
        "model": source["model"],
        "data": source["data"],
        "evaluate": {"metric": "accuracy"},
        "passes": [{"type": "quantize", "mode": "static"}],
        "export": {"format": "onnx", "opset": 18, "path": "out/model.onnx"},
        "measure": latency_spec(CNN_RUNS),
    }
    report = run_recipe(recipe, workdir, name)
    assert report.artifacts.baseline_onnx is not None
    fp32 = Path(report.artifacts.baseline_onnx)
    hand = by_hand(fp32, workdir / f"{name}_by_hand.onnx")
    paths = {FP32: fp32, common.COMPRESS: Path(report.artifacts.onnx), BY_HAND: hand}
    return Case(title, paths, {common.COMPRESS: report})


DATA_MODULE = '''"""MiniLM inputs for the benchmark's recipes: 64 sentences, 64 tokens each."""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def load():
    ids, mask = np.load(HERE / "input_ids.npy"), np.load(HERE / "attention_mask.npy")
    return {"val": [ids, mask], "calibration": [ids, mask]}
'''


def transformer_cases(
    workdir: Path, tm: ModuleType, tokens: tuple[np.ndarray, np.ndarray]
) -> tuple[Case, Case]:
    """Export MiniLM to fp32 ONNX, then run the dynamic and the int4 recipes on that file."""
    fp32 = workdir / "minilm.onnx"
    with common.quiet():
        tm.export_onnx(fp32)
    ids, mask = tokens
    np.save(workdir / "input_ids.npy", ids)
    np.save(workdir / "attention_mask.npy", mask)
    (workdir / "minilm_data.py").write_text(DATA_MODULE, encoding="utf-8")
    axes = ["batch", "sequence"]
    base = {
        "version": 1,
        "model": {
            "source": str(fp32),
            "inputs": [
                {"name": "input_ids", "shape": axes, "dtype": "int64"},
                {"name": "attention_mask", "shape": axes, "dtype": "int64"},
            ],
        },
        "data": {"source": f"{workdir / 'minilm_data.py'}:load", "batch_size": 64},
        "export": {"format": "onnx", "opset": 18, "path": "out/model.onnx"},
        "measure": latency_spec(REPORT_TRANSFORMER_RUNS, dims={"sequence": tm.SEQ_LEN}),
    }
    dynamic = run_recipe(
        {
            **base,
            "name": "minilm-dynamic-int8",
            "passes": [{"type": "quantize", "mode": "dynamic"}],
        },
        workdir,
        "minilm_int8",
    )
    int4 = run_recipe(
        {
            **base,
            "name": "minilm-int4",
            "passes": [{"type": "quantize", "mode": "weight_only", "weights": "int4"}],
        },
        workdir,
        "minilm_int4",
    )
    hand = by_hand(fp32, workdir / "minilm_by_hand.onnx")
    int8_case = Case(
        "c. MiniLM-L6 encoder: dynamic INT8",
        {FP32: fp32, common.COMPRESS: Path(dynamic.artifacts.onnx), BY_HAND: hand},
        {common.COMPRESS: dynamic},
    )
    int4_case = Case(
        "d. MiniLM-L6 encoder: INT4 weight-only (by hand: the INT8 file of c)",
        {FP32: fp32, common.COMPRESS: Path(int4.artifacts.onnx), BY_HAND: hand},
        {common.COMPRESS: int4},
    )
    return int8_case, int4_case


# --- measurements -----------------------------------------------------------------------------


def outputs(
    sessions: dict[str, ort.InferenceSession], inputs: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Each model's first output on the whole of `inputs`, in one batch."""
    return {
        label: session.run(None, common.feed_for(session, inputs))[0]
        for label, session in sessions.items()
    }


def measure_cnn(case: Case, val: common.Split) -> None:
    """Latency on the first val image; accuracy and top-1 agreement with fp32 on all of val."""
    sessions = {label: common.make_session(path, THREADS) for label, path in case.paths.items()}
    case.p50_ms = common.p50_latencies(sessions, [val[0][:1]], CNN_RUNS)
    logits = outputs(sessions, [val[0]])
    reference = np.argmax(logits[FP32], axis=-1)
    for label, values in logits.items():
        predicted = np.argmax(values, axis=-1)
        case.fidelity[label] = {
            "accuracy": float(np.mean(predicted == val[1])),
            "agreement": float(np.mean(predicted == reference)),
            "logit_cosine": float(cosines(values, logits[FP32]).mean()),
        }


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def measure_transformer(
    int8: Case,
    int4: Case,
    tm: ModuleType,
    tokens: tuple[np.ndarray, np.ndarray],
    short: tuple[np.ndarray, np.ndarray],
) -> None:
    """One interleaved loop over the four MiniLM files, at 64 and at 16 tokens; mean-pooled
    cosine with fp32 on all 64 sentences."""
    files = {**int8.paths, INT4: int4.paths[common.COMPRESS]}
    sessions = {label: common.make_session(path, THREADS) for label, path in files.items()}
    ids, mask = tokens
    long_p50 = common.p50_latencies(sessions, [ids[:1], mask[:1]], TRANSFORMER_RUNS)
    short_p50 = common.p50_latencies(sessions, [short[0][:1], short[1][:1]], TRANSFORMER_RUNS)
    pooled = {
        label: tm.mean_pooled(hidden, mask) for label, hidden in outputs(sessions, tokens).items()
    }
    for case, labels in ((int8, {}), (int4, {common.COMPRESS: INT4})):
        for label in COLUMNS:
            measured = labels.get(label, label)
            case.p50_ms[label] = long_p50[measured]
            case.p50_short_ms[label] = short_p50[measured]
            values = cosines(pooled[measured], pooled[FP32])
            case.fidelity[label] = {
                "cosine_mean": float(values.mean()),
                "cosine_min": float(values.min()),
            }


@dataclass
class Int4Breakdown:
    """Where the bytes of an int4 weight-only file are."""

    layers: int  # MatMulNBits nodes
    linear_ratio: float  # their packed weights + scales + zero points / the same weights in fp32
    float_left_bytes: int  # float32 initializers left in the file
    largest_float_name: str
    largest_float_bytes: int
    fp32_file_bytes: int


def int4_breakdown(fp32: Path, int4: Path) -> Int4Breakdown:
    model = onnx.load(str(int4))
    initializers = {t.name: t for t in model.graph.initializer}
    nodes = [node for node in model.graph.node if node.op_type == "MatMulNBits"]
    packed, float_bytes, quantized = 0, 0, set()
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        float_bytes += 4 * attributes["K"] * attributes["N"]
        for name in node.input[1:]:
            if name in initializers:
                packed += numpy_helper.to_array(initializers[name]).nbytes
                quantized.add(name)
    floats = [
        t
        for t in model.graph.initializer
        if t.name not in quantized and t.data_type == onnx.TensorProto.FLOAT
    ]
    largest = max(floats, key=lambda t: int(np.prod(t.dims)))
    return Int4Breakdown(
        layers=len(nodes),
        linear_ratio=packed / float_bytes,
        float_left_bytes=sum(4 * int(np.prod(t.dims)) for t in floats),
        largest_float_name=largest.name,
        largest_float_bytes=4 * int(np.prod(largest.dims)),
        fp32_file_bytes=fp32.stat().st_size,
    )


# --- output ---------------------------------------------------------------------------------


def per_column(show: Callable[[str], str]) -> list[str]:
    return [show(label) for label in COLUMNS]


def size_rows(case: Case) -> list[common.Row]:
    sizes = case.sizes
    return [
        ("  size (bytes)", per_column(lambda c: f"{sizes[c]:,}")),
        ("  size vs fp32", per_column(lambda c: f"{sizes[c] / sizes[FP32]:.3f}x")),
    ]


def latency_rows(name: str, p50: dict[str, float]) -> list[common.Row]:
    return [
        (f"  p50 latency{name} (ms)", per_column(lambda c: f"{p50[c]:.3f}")),
        (f"  speed-up vs fp32{name}", per_column(lambda c: f"{p50[FP32] / p50[c]:.2f}x")),
    ]


def report_rows(case: Case, fidelity: Callable[[Report], str]) -> list[common.Row]:
    """What compress.apply reported for the same files (fp32 = its baseline)."""
    report = case.reports[common.COMPRESS]
    base, comp = report.baseline, report.compressed
    assert base.latency_ms is not None and comp.latency_ms is not None

    def pair(fp32: str, compressed: str) -> list[str]:
        return [fp32, compressed, common.MISSING]

    speedup = report.speedup["p50"] if report.speedup else float("nan")
    return [
        ("  as reported by compress.apply:", []),
        ("    p50 latency (ms)", pair(f"{base.latency_ms.p50:.3f}", f"{comp.latency_ms.p50:.3f}")),
        ("    speed-up", pair("1.00x", f"{speedup:.2f}x")),
        ("    size (bytes)", pair(f"{base.size_bytes:,}", f"{comp.size_bytes:,}")),
        ("    " + fidelity(report), pair(common.MISSING, fidelity_value(report))),
    ]


def fidelity_value(report: Report) -> str:
    if report.fidelity is None:
        return common.MISSING
    return f"{report.fidelity.value:.4f}"


def cnn_rows(case: Case, with_accuracy: bool) -> list[common.Row]:
    fid = case.fidelity
    report = case.reports[common.COMPRESS]
    rows: list[common.Row] = [(case.title, []), *latency_rows("", case.p50_ms), *size_rows(case)]
    if with_accuracy:
        rows.append(("  val accuracy", per_column(lambda c: f"{fid[c]['accuracy']:.2%}")))
    rows.append(("  top-1 agreement with fp32", per_column(lambda c: f"{fid[c]['agreement']:.4f}")))
    rows.append(
        ("  logit cosine with fp32, mean", per_column(lambda c: f"{fid[c]['logit_cosine']:.4f}"))
    )
    rows += report_rows(case, lambda r: f"fidelity ({r.fidelity.metric})" if r.fidelity else "")
    base, comp = report.baseline.accuracy, report.compressed.accuracy
    if with_accuracy and base is not None and comp is not None:
        rows.append(("    val accuracy", [f"{base:.2%}", f"{comp:.2%}", common.MISSING]))
    return rows


def transformer_rows(case: Case) -> list[common.Row]:
    fid = case.fidelity
    return [
        (case.title, []),
        *latency_rows(", 64 tokens", case.p50_ms),
        *latency_rows(f", {SHORT_SEQ_LEN} tokens", case.p50_short_ms),
        *size_rows(case),
        ("  mean-pooled cosine, mean", per_column(lambda c: f"{fid[c]['cosine_mean']:.4f}")),
        ("  mean-pooled cosine, min", per_column(lambda c: f"{fid[c]['cosine_min']:.4f}")),
        *report_rows(case, lambda r: "fidelity (cosine, flattened, padding incl.)"),
    ]


def print_targets(
    digits: Case, cnn64: Case, int8: Case, int4: Case, breakdown: Int4Breakdown
) -> None:
    print("\nTargets (figures measured here, in the interleaved loops above):")
    speedup = cnn64.p50_ms[FP32] / cnn64.p50_ms[common.COMPRESS]
    common.verdict(
        speedup >= MIN_CNN_SPEEDUP,
        f"cnn64 static INT8 {speedup:.2f}x faster than fp32 (>= {MIN_CNN_SPEEDUP:.1f}x)",
    )
    accuracy = digits.fidelity
    drop = (accuracy[FP32]["accuracy"] - accuracy[common.COMPRESS]["accuracy"]) * 100
    common.verdict(
        drop <= MAX_ACCURACY_DROP_POINTS,
        f"digits static INT8 accuracy drop {drop:.2f} points (<= {MAX_ACCURACY_DROP_POINTS})",
    )
    speedup = int8.p50_ms[FP32] / int8.p50_ms[common.COMPRESS]
    cosine = int8.fidelity[common.COMPRESS]["cosine_mean"]
    common.verdict(
        speedup >= MIN_TRANSFORMER_SPEEDUP,
        f"MiniLM dynamic INT8 {speedup:.2f}x faster than fp32 at 64 tokens "
        f"(>= {MIN_TRANSFORMER_SPEEDUP:.1f}x)",
    )
    common.verdict(
        cosine >= MIN_MEAN_COSINE,
        f"MiniLM dynamic INT8 mean-pooled cosine {cosine:.4f} (>= {MIN_MEAN_COSINE})",
    )
    hand_cosine = int8.fidelity[BY_HAND]["cosine_mean"]
    ours, hand = int8.p50_ms[common.COMPRESS], int8.p50_ms[BY_HAND]
    common.verdict(
        ours < hand or cosine > hand_cosine,
        f"MiniLM INT8 vs by-hand default (faster or more faithful): p50 {ours:.2f} vs "
        f"{hand:.2f} ms, cosine {cosine:.4f} vs {hand_cosine:.4f}",
    )
    ratio = int4.sizes[common.COMPRESS] / int4.sizes[FP32]
    common.verdict(
        ratio <= MAX_INT4_SIZE_RATIO,
        f"MiniLM INT4 file {ratio:.3f}x of fp32 (<= {MAX_INT4_SIZE_RATIO}x); its "
        f"{breakdown.layers} linear layers alone: {breakdown.linear_ratio:.3f}x",
    )
    print(
        f"\nWhat the INT4 file ({ratio:.2f}x) keeps in float32: "
        f"{breakdown.float_left_bytes / 1e6:.1f} MB of the "
        f"{breakdown.fp32_file_bytes / 1e6:.1f} MB stay float32, mostly "
        f"{breakdown.largest_float_name} ({breakdown.largest_float_bytes / 1e6:.1f} MB)."
    )


def print_notes(cases: list[Case]) -> None:
    notes = [
        (case.title.split(":")[0], note)
        for case in cases
        for report in case.reports.values()
        for note in report.notes
    ]
    if notes:
        print("\nNotes written into the compress reports:")
        for title, note in notes:
            print(f"  {title}: {note}")


def main() -> None:
    started = time.perf_counter()
    torch.set_num_threads(THREADS)
    tm = common.load_source(TRANSFORMER)
    flags = cpu_flags()
    print(
        f"{cpu_name()}, {os.cpu_count()} cores; onnxruntime {ort.__version__}, torch "
        f"{torch.__version__}; batch 1, intra_op_num_threads={THREADS}"
    )
    print(
        "int8-relevant CPU flags: "
        + ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in INT8_FLAGS)
        + "\n"
    )
    digits_data = common.load_source(common.DIGITS_DATA).load()
    cnn64_data = common.load_source(CNN64).load()
    with tempfile.TemporaryDirectory(prefix="quantize-bench-") as tmp:
        workdir = Path(tmp)
        digits = digits_case(workdir)
        cnn64 = cnn64_case(workdir)
        with common.quiet():
            tokenizer = tm.load_encoder()[1]
        tokens = tm.tokenize(tokenizer, tm.sentences())
        short = tm.tokenize(tokenizer, tm.sentences()[:1], SHORT_SEQ_LEN)
        int8, int4 = transformer_cases(workdir, tm, tokens)
        measure_cnn(digits, digits_data["val"])
        measure_cnn(cnn64, cnn64_data["val"])
        measure_transformer(int8, int4, tm, tokens, short)
        breakdown = int4_breakdown(int4.paths[FP32], int4.paths[common.COMPRESS])
        common.print_table(
            [FP32, common.COMPRESS, "by hand (quantize_dynamic)"],
            [
                *cnn_rows(digits, with_accuracy=True),
                *cnn_rows(cnn64, with_accuracy=False),
                *transformer_rows(int8),
                *transformer_rows(int4),
            ],
            fit_titles=False,
        )
    print_targets(digits, cnn64, int8, int4, breakdown)
    print_notes([digits, cnn64, int8, int4])
    print(f"\nWall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
