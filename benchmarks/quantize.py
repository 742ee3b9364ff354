"""INT8 post-training quantization: this toolkit against the peers a user would use instead,
on nine models, every figure measured in this one process.

For each model four ONNX files are compared (the columns):

* fp32: the float file that `compress.apply` exported as its baseline (`model.baseline.onnx`);
* compress: `compress.apply` with one pass, `{type: quantize, mode: static}` (64 calibration
  samples) for the CNNs, `{type: quantize, mode: dynamic}` for the transformers; the recipe's
  `measure.latency` (cpu, 1 thread, batch 1) is what compress tunes its speed-dependent choices
  on, and what it reports choosing is printed under the table;
* NNCF: `nncf.quantize(onnx.load(fp32), nncf.Dataset(feeds), subset_size=64)` on the same file
  (`model_type=TRANSFORMER` for the transformers); a failure to quantize or to run in
  onnxruntime fills the column with "failed" and a footnote, the rest of the row still runs;
* by hand: the recipe onnxruntime's documentation gives. CNNs: `quant_pre_process`, then
  `quantize_static` QDQ with uint8 activations, int8 per-channel weights (its x86 advice);
  transformers: `quantize_dynamic(per_channel=True, weight_type=QInt8)`.

MiniLM gets a fifth column, compress `{type: quantize, mode: weight_only, weights: int4}`
(MatMulNBits) on the same fp32 file.

The models (random weights from the libraries' own configs unless said; no download):
ResNet-18 (transformers, 3x128x128), keras.applications ResNet50, MobileNetV2, MobileNetV3Small
and EfficientNetB0 (96x96x3, BatchNorm statistics from images), a ConvNeXt-style transformers
classifier (3x128x128), all-MiniLM-L6-v2 with its real weights (64 real sentences, 128 tokens), a
GPT-2-style decoder (4 layers x 256, 128 seeded random token ids) and the quickstart's trained
digits CNN (real labels). Builders: benchmarks/corpus_models.py and quantize_models.py.

Measured per column: p50 latency in onnxruntime on CPU, intra_op_num_threads=1, batch 1 (the
first val sample), all columns of a model interleaved in one loop whose order alternates each
round, after warm-up rounds; the speed-up and the size (ONNX bytes) against fp32; fidelity:
top-1 agreement with fp32 on the val images (random-weight classifiers), accuracy on the real
labels (digits), minimum and mean cosine with fp32 of the mean-pooled, attention-masked
embeddings (MiniLM), top-1 next-token agreement and mean cosine of the logits over every position
(GPT-2). Then the issue's targets, MET or MISSED.

Run (from any directory; the default takes about 10 minutes on 2 cores):

    .venv/bin/python benchmarks/quantize.py [--only resnet18,digits] [--quick]

`--quick` times 10 rounds after 5 warm-up rounds (for development); the default times 100 rounds
for the CNNs and 50 for the transformers after 20.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import common
import numpy as np
import onnx
import onnxruntime as ort
from corpus_models import BERT_INPUTS, IMAGE_NCHW, IMAGE_NHWC, TOKENS
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

import compress
from compress.cpu import SPEED_FEATURES, cpu_name, speed_features
from compress.report.schema import Report

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus_models.py"
OURS = HERE / "quantize_models.py"
QUICKSTART = common.REPO / "recipes" / "quickstart.yaml"

THREADS = 1
SEQ_LEN = 128
CALIBRATION_SAMPLES = 64
#: (warm-up, timed) rounds of the interleaved loop: CNNs, transformers, --quick.
CNN_ROUNDS, TRANSFORMER_ROUNDS, QUICK_ROUNDS = (20, 100), (20, 50), (5, 10)
#: compress.apply's own latency settings (it picks its speed-dependent settings from them).
RECIPE_LATENCY = {"device": "cpu", "threads": THREADS, "warmup": 5, "runs": 20, "batch_size": 1}
#: What a quantize pass record may say it chose (some keys only in newer versions).
CHOICES = ("format", "activations", "why", "kept_float_for_speed", "reverted_nodes")

FP32, NNCF, BY_HAND, INT4 = "fp32", "NNCF", "by hand", "compress int4"
COLUMNS = [FP32, common.COMPRESS, NNCF, BY_HAND]
FAILED = "failed*"


MIN_AGREEMENT = 0.99
MAX_DROP_POINTS = 0.5
MIN_MINILM_SPEEDUP = 2.2
MIN_COSINE = 0.99


@dataclass(frozen=True)
class Spec:
    """One model: its table title, recipe model section, data source and kind of fidelity
    ("images": agreement with fp32, "labels": accuracy, "encoder", "decoder")."""

    title: str
    model: dict
    data: str
    kind: str

    @property
    def transformer(self) -> bool:
        return self.kind in ("encoder", "decoder")


def _quickstart_model() -> tuple[dict, str]:
    recipe = common.read_recipe(QUICKSTART)
    return recipe["model"], recipe["data"]["source"]


SPECS = {
    "resnet18": Spec(
        "ResNet-18 (transformers, 3x128x128), static",
        {"source": f"{CORPUS}:resnet18", "inputs": IMAGE_NCHW},
        f"{CORPUS}:images_nchw",
        "images",
    ),
    "resnet50": Spec(
        "Keras ResNet50 (96x96), static",
        {"source": f"{CORPUS}:keras_resnet50", "inputs": IMAGE_NHWC},
        f"{CORPUS}:images_nhwc",
        "images",
    ),
    "mobilenetv2": Spec(
        "Keras MobileNetV2 (96x96), static",
        {"source": f"{OURS}:keras_mobilenetv2", "inputs": IMAGE_NHWC},
        f"{CORPUS}:images_nhwc",
        "images",
    ),
    "convnext": Spec(
        "ConvNeXt-style (transformers, 3x128x128), static",
        {"source": f"{OURS}:convnext", "inputs": IMAGE_NCHW},
        f"{CORPUS}:images_nchw",
        "images",
    ),
    "mobilenetv3": Spec(
        "Keras MobileNetV3Small (96x96), static",
        {"source": f"{OURS}:keras_mobilenetv3small", "inputs": IMAGE_NHWC},
        f"{CORPUS}:images_nhwc",
        "images",
    ),
    "efficientnetb0": Spec(
        "Keras EfficientNetB0 (96x96), static",
        {"source": f"{CORPUS}:keras_efficientnetb0", "inputs": IMAGE_NHWC},
        f"{CORPUS}:images_nhwc",
        "images",
    ),
    "minilm": Spec(
        "MiniLM-L6 (real weights, 128 tokens), dynamic",
        {"source": f"{CORPUS}:minilm", "inputs": BERT_INPUTS},
        f"{CORPUS}:sentences",
        "encoder",
    ),
    "gpt2": Spec(
        "GPT-2-style decoder (4x256, 128 tokens), dynamic",
        {"source": f"{CORPUS}:gpt2", "inputs": TOKENS},
        f"{OURS}:gpt2_tokens",
        "decoder",
    ),
    "digits": Spec("digits CNN (quickstart, trained), static", *_quickstart_model(), "labels"),
}


@dataclass
class Result:
    """One model's files (or why a column has none), compress's reports and the figures."""

    name: str
    spec: Spec
    reports: dict[str, Report]
    paths: dict[str, Path]
    errors: dict[str, str] = field(default_factory=dict)
    p50_ms: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    fidelity: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        return COLUMNS + ([INT4] if INT4 in self.paths or INT4 in self.errors else [])

    def speedup(self, label: str) -> float | None:
        """fp32's p50 over the column's (None for a column without a file)."""
        if label not in self.p50_ms:
            return None
        return self.p50_ms[FP32] / self.p50_ms[label]


# --- data -------------------------------------------------------------------------------------


def load_data(source: str) -> dict[str, Any]:
    """Call a "file.py:function" data source."""
    file, _, function = source.rpartition(":")
    return getattr(common.load_source(Path(file)), function)()


def split_arrays(value: Any) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A split as compress reads it: (inputs, targets) when a 2-tuple, else the inputs alone
    (one array or a list of them)."""
    inputs, targets = value if isinstance(value, tuple) and len(value) == 2 else (value, None)
    arrays = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [np.asarray(x) for x in arrays], None if targets is None else np.asarray(targets)


def batch_feeds(names: Sequence[str], inputs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """One feed of batch 1 per sample."""
    return [
        {name: np.ascontiguousarray(x[i : i + 1]) for name, x in zip(names, inputs, strict=True)}
        for i in range(len(inputs[0]))
    ]


# --- producing the files ----------------------------------------------------------------------


def recipe(name: str, spec: Spec, passes: list[dict], model: dict | None = None) -> dict:
    """A recipe for `spec`'s model (or `model`) and data with these passes."""
    latency = dict(RECIPE_LATENCY, **({"dims": {"sequence": SEQ_LEN}} if spec.transformer else {}))
    raw = {
        "version": 1,
        "name": name,
        "model": model or spec.model,
        "data": {"source": spec.data, "batch_size": 16},
        "passes": passes,
        "export": {"format": "onnx", "opset": 18, "path": "out/model.onnx"},
        "measure": {"latency": latency},
    }
    if spec.kind == "labels":
        raw["evaluate"] = {"metric": "accuracy"}
    return raw


def int8_pass(spec: Spec) -> dict:
    if spec.transformer:
        return {"type": "quantize", "mode": "dynamic"}
    return {"type": "quantize", "mode": "static", "calibration": {"samples": CALIBRATION_SAMPLES}}


@contextlib.contextmanager
def native_silence() -> Iterator[None]:
    """Send what native code writes to file descriptors 1 and 2 to /dev/null: the TorchScript
    exporter's IR dump on stdout when compress's `exporter: auto` tries it and it fails,
    TensorFlow's logs. Python's own output is `common.quiet`'s."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with Path(os.devnull).open("wb") as devnull:
        for fd in saved:
            os.dup2(devnull.fileno(), fd)
    try:
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def run_compress(raw: dict, output_dir: Path) -> Report:
    with native_silence(), common.quiet():
        return compress.apply(raw, output_dir=output_dir, progress=False, base_dir=output_dir)


class FeedReader(CalibrationDataReader):
    """onnxruntime calibration over a list of feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def by_hand(fp32: Path, target: Path, feeds: Sequence[dict], transformer: bool) -> None:
    """onnxruntime's documented recipe: dynamic for transformers, static QDQ U8S8 for CNNs."""
    if transformer:
        quantize_dynamic(
            str(fp32),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        return
    pre = target.with_name("pre_processed.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(target),
        FeedReader(feeds),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )


def nncf_quantize(fp32: Path, target: Path, feeds: Sequence[dict], transformer: bool) -> None:
    import nncf

    extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    model = nncf.quantize(
        onnx.load(str(fp32)), nncf.Dataset(list(feeds)), subset_size=CALIBRATION_SAMPLES, **extra
    )
    onnx.save(model, str(target))


def attempt(work: Callable[[], object], failed: str = "failed") -> str | None:
    """Run `work` quietly: None, or "<failed>: <the error's type and first line>"."""
    with native_silence():
        candidate = common.try_export("", Path(), work, "nncf")
    return None if candidate.error is None else f"{failed}: {candidate.error}"


def runs_in_onnxruntime(path: Path, feed: dict[str, np.ndarray]) -> None:
    """One inference (its error is the exception's, onnxruntime logs nothing)."""
    options = ort.RunOptions()
    options.log_severity_level = 4
    common.make_session(path, THREADS).run(None, feed, options)


def add_peer(result: Result, label: str, make: Callable[[Path], object], feed: dict) -> None:
    """The column's file if `make` writes it and onnxruntime runs it, else why not."""
    target = result.paths[FP32].parent / f"{label.replace(' ', '_')}.onnx"
    error = attempt(lambda: make(target)) or attempt(
        lambda: runs_in_onnxruntime(target, feed), "fails in onnxruntime"
    )
    if error:
        result.errors[label] = error
    else:
        result.paths[label] = target


def add_int4(result: Result, output_dir: Path) -> None:
    """compress's INT4 weight-only pass on the fp32 file, as an extra column."""
    spec, fp32 = result.spec, result.paths[FP32]
    passes = [{"type": "quantize", "mode": "weight_only", "weights": "int4"}]
    model = {"source": str(fp32), "inputs": spec.model["inputs"]}
    report = run_compress(recipe(f"{result.name}-int4", spec, passes, model), output_dir)
    result.reports[INT4] = report
    result.paths[INT4] = Path(report.artifacts.onnx)


def produce(name: str, spec: Spec, workdir: Path) -> tuple[Result, list[np.ndarray], Any]:
    """Every column's file of one model; also its val inputs and targets."""
    report = run_compress(recipe(f"{name}-int8", spec, [int8_pass(spec)]), workdir / name)
    assert report.artifacts.baseline_onnx is not None
    fp32 = Path(report.artifacts.baseline_onnx)
    paths = {FP32: fp32, common.COMPRESS: Path(report.artifacts.onnx)}
    result = Result(name, spec, {common.COMPRESS: report}, paths)
    data = load_data(spec.data)
    val, targets = split_arrays(data["val"])
    calibration = split_arrays(data.get("calibration", data["val"]))[0]
    names = [i.name for i in common.make_session(fp32).get_inputs()]
    feeds = batch_feeds(names, [x[:CALIBRATION_SAMPLES] for x in calibration])
    transformer = spec.transformer
    add_peer(result, NNCF, lambda path: nncf_quantize(fp32, path, feeds, transformer), feeds[0])
    add_peer(result, BY_HAND, lambda path: by_hand(fp32, path, feeds, transformer), feeds[0])
    if spec.kind == "encoder":
        add_int4(result, workdir / f"{name}_int4")
    return result, val, targets


# --- measurements -----------------------------------------------------------------------------


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (rows, features) arrays."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence embeddings: the mean of `hidden` over the tokens `mask` keeps."""
    weights = mask[..., None].astype(np.float64)
    return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def first_output(session: ort.InferenceSession, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return session.run(None, common.feed_for(session, inputs))[0]


def classifier_fidelity(
    sessions: dict[str, ort.InferenceSession], val: list[np.ndarray], targets: Any
) -> dict[str, dict[str, float]]:
    """Top-1 agreement with fp32 on all of val, and accuracy where there are labels."""
    predicted = {label: first_output(s, val).argmax(axis=-1) for label, s in sessions.items()}
    fidelity = {}
    for label, values in predicted.items():
        fidelity[label] = {"agreement": float(np.mean(values == predicted[FP32]))}
        if targets is not None:
            fidelity[label]["accuracy"] = float(np.mean(values == targets))
    return fidelity


def encoder_fidelity(
    sessions: dict[str, ort.InferenceSession], val: list[np.ndarray]
) -> dict[str, dict[str, float]]:
    """Cosine with fp32 of the mean-pooled embeddings (attention mask = the second input)."""
    pooled = {label: mean_pooled(first_output(s, val), val[1]) for label, s in sessions.items()}
    fidelity = {}
    for label, values in pooled.items():
        similarity = cosines(values, pooled[FP32])
        fidelity[label] = {
            "cosine_min": float(similarity.min()),
            "cosine_mean": float(similarity.mean()),
        }
    return fidelity


def decoder_fidelity(
    sessions: dict[str, ort.InferenceSession], val: list[np.ndarray]
) -> dict[str, dict[str, float]]:
    """Top-1 next-token agreement with fp32 and mean cosine of the logits over every position
    of every sequence (one sequence at a time: the logits are 128 x 50257 each)."""
    agree: dict[str, list[float]] = {label: [] for label in sessions}
    cosine: dict[str, list[float]] = {label: [] for label in sessions}
    for index in range(len(val[0])):
        sample = [x[index : index + 1] for x in val]
        logits = {label: first_output(s, sample)[0] for label, s in sessions.items()}
        for label, values in logits.items():
            agree[label].append(float(np.mean(values.argmax(-1) == logits[FP32].argmax(-1))))
            cosine[label].append(float(cosines(values, logits[FP32]).mean()))
    return {
        label: {
            "agreement": float(np.mean(agree[label])),
            "cosine_mean": float(np.mean(cosine[label])),
        }
        for label in sessions
    }


def measure(result: Result, val: list[np.ndarray], targets: Any, rounds: tuple[int, int]) -> None:
    """Interleaved p50 latency on the first val sample, sizes and fidelity of every file."""
    sessions = {label: common.make_session(path, THREADS) for label, path in result.paths.items()}
    orders = {label: [i.name for i in s.get_inputs()] for label, s in sessions.items()}
    assert all(order == orders[FP32] for order in orders.values()), orders
    warmup, runs = rounds
    first = [x[:1] for x in val]
    result.p50_ms = common.p50_latencies(sessions, first, runs, warmup=warmup)
    result.sizes = {
        label: sum(file.stat().st_size for file in common.model_files(path))
        for label, path in result.paths.items()
    }
    if result.spec.kind == "encoder":
        result.fidelity = encoder_fidelity(sessions, val)
    elif result.spec.kind == "decoder":
        result.fidelity = decoder_fidelity(sessions, val)
    else:
        result.fidelity = classifier_fidelity(sessions, val, targets)


# --- output -----------------------------------------------------------------------------------

#: (row name, fidelity key, format) per kind of model.
FIDELITY_ROWS = {
    "images": [("top-1 agreement with fp32", "agreement", "{:.4f}")],
    "labels": [
        ("val accuracy", "accuracy", "{:.2%}"),
        ("top-1 agreement with fp32", "agreement", "{:.4f}"),
    ],
    "encoder": [
        ("mean-pooled cosine, min", "cosine_min", "{:.4f}"),
        ("mean-pooled cosine, mean", "cosine_mean", "{:.4f}"),
    ],
    "decoder": [
        ("next-token top-1 agreement", "agreement", "{:.4f}"),
        ("logit cosine, mean", "cosine_mean", "{:.4f}"),
    ],
}


def table_rows(result: Result) -> list[common.Row]:
    def cells(show: Callable[[str], str]) -> list[str]:
        return [
            FAILED
            if label in result.errors
            else show(label)
            if label in result.paths
            else common.MISSING
            for label in result.columns
        ]

    p50, sizes, fidelity = result.p50_ms, result.sizes, result.fidelity
    rows: list[common.Row] = [
        ("p50 latency (ms)", cells(lambda c: f"{p50[c]:.3f}")),
        ("speed-up vs fp32", cells(lambda c: f"{p50[FP32] / p50[c]:.2f}x")),
        ("size vs fp32", cells(lambda c: f"{sizes[c] / sizes[FP32]:.3f}x")),
    ]
    for name, key, shape in FIDELITY_ROWS[result.spec.kind]:
        rows.append((name, cells(lambda c, key=key, shape=shape: shape.format(fidelity[c][key]))))
    return rows


def shown(value: Any, limit: int = 160) -> str:
    """A report value on one line: lists as their length and first names."""
    if isinstance(value, list | tuple):
        head = ", ".join(str(item) for item in value[:4])
        value = f"{len(value)}" + (f" ({head}{', ...' if len(value) > 4 else ''})" if value else "")
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_choices(result: Result) -> None:
    """What compress's reports say they chose, and any notes they wrote."""
    for label, report in result.reports.items():
        record = report.passes[0]
        chosen = [
            f"{key}: {shown(record.get(key))}" for key in CHOICES if record.get(key) is not None
        ]
        exporters = [
            f"{side} exporter {metrics.export.exporter}"
            for side, metrics in (("baseline", report.baseline), ("compressed", report.compressed))
            if metrics.export is not None
        ]
        print(f"  {label} chose: " + "; ".join(chosen + exporters))
        for note in report.notes:
            print(f"    note: {shown(note, 200)}")


def print_result(result: Result) -> None:
    print(f"\n{result.spec.title}  ({result.seconds:.0f} s)")
    common.print_table(result.columns, table_rows(result))
    for label, error in result.errors.items():
        print(f"* {label}: {shown(error, 200)}")
    print_choices(result)


def at_least(result: Result, label: str, other: str) -> tuple[bool, str]:
    """compress's speed-up against another column's, as a target line."""
    ours, theirs = result.speedup(label), result.speedup(other)
    assert ours is not None
    if theirs is None:
        return True, f"{result.name}: compress speed-up {ours:.2f}x; {other} failed, no figure"
    return (
        ours >= theirs,
        f"{result.name}: compress speed-up {ours:.2f}x >= {other}'s {theirs:.2f}x",
    )


def targets(result: Result) -> list[tuple[bool, str]]:
    """The issue's targets for this model (none for EfficientNetB0 and GPT-2)."""
    name, fid = result.name, result.fidelity.get(common.COMPRESS, {})
    speedup = result.speedup(common.COMPRESS) or 0.0
    if name == "resnet18":
        agreement = fid["agreement"]
        return [
            at_least(result, common.COMPRESS, NNCF),
            (
                agreement >= MIN_AGREEMENT,
                f"{name}: top-1 agreement {agreement:.4f} >= {MIN_AGREEMENT}",
            ),
        ]
    if name in ("resnet50", "mobilenetv2"):
        return [at_least(result, common.COMPRESS, NNCF)]
    if name in ("convnext", "mobilenetv3"):
        return [(speedup >= 1.0, f"{name}: compress speed-up {speedup:.2f}x >= 1.00x")]
    if name == "digits":
        drop = (result.fidelity[FP32]["accuracy"] - fid["accuracy"]) * 100
        return [
            (
                drop <= MAX_DROP_POINTS,
                f"{name}: accuracy drop {drop:.2f} points <= {MAX_DROP_POINTS}",
            )
        ]
    if name == "minilm":
        cosine = fid["cosine_min"]
        return [
            (
                speedup >= MIN_MINILM_SPEEDUP and cosine >= MIN_COSINE,
                f"{name}: compress speed-up {speedup:.2f}x >= {MIN_MINILM_SPEEDUP}x at min cosine "
                f"{cosine:.4f} >= {MIN_COSINE}",
            ),
            at_least(result, common.COMPRESS, BY_HAND),
        ]
    return []


def rounds(spec: Spec, quick: bool) -> tuple[int, int]:
    """(warm-up, timed) rounds of the interleaved latency loop."""
    if quick:
        return QUICK_ROUNDS
    return TRANSFORMER_ROUNDS if spec.transformer else CNN_ROUNDS


def print_header() -> None:
    features = ", ".join(speed_features()) or "none of " + "/".join(SPEED_FEATURES)
    print(f"{cpu_name()}, {os.cpu_count()} cores; speed features: {features}")
    print(
        f"onnxruntime {ort.__version__}, nncf {version('nncf')}, compress {compress.__version__}; "
        f"CPU, intra_op_num_threads={THREADS}, batch 1, latencies interleaved per model"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help=f"comma-separated, of: {', '.join(SPECS)}")
    parser.add_argument("--quick", action="store_true", help="5 warm-up and 10 timed rounds")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SPECS)
    unknown = sorted(set(names) - set(SPECS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(SPECS)}")
    started = time.perf_counter()
    print_header()
    results = []
    with tempfile.TemporaryDirectory(prefix="quantize-bench-") as tmp:
        for name in names:
            spec = SPECS[name]
            began = time.perf_counter()
            result, val, labels = produce(name, spec, Path(tmp))
            measure(result, val, labels, rounds(spec, args.quick))
            result.seconds = time.perf_counter() - began
            print_result(result)
            results.append(result)
    print("\nTargets (figures from the tables above):")
    for result in results:
        for met, text in targets(result):
            common.verdict(met, text)
    untargeted = [result.name for result in results if not targets(result)]
    if untargeted:
        print(f"  (no target for {', '.join(untargeted)})")
    print(f"\nWall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
