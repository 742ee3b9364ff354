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
digits CNN (real labels). Builders: benchmarks/_shared/builders.py.

Measured per column: p50 latency in onnxruntime on CPU, intra_op_num_threads=1, batch 1 (the
first val sample), all columns of a model interleaved in one loop whose order alternates each
round, after warm-up rounds; the speed-up and the size (ONNX bytes) against fp32; fidelity:
top-1 agreement with fp32 on the val images (random-weight classifiers), accuracy on the real
labels (digits), minimum and mean cosine with fp32 of the mean-pooled, attention-masked
embeddings (MiniLM), top-1 next-token agreement and mean cosine of the logits over every position
(GPT-2). Then the targets this benchmark checks, MET or MISSED.

Run (from any directory; the default takes about 10 minutes on 2 cores):

    .venv/bin/python benchmarks/quantize.py [--only resnet18,digits] [--quick] [--out DIR]

`--quick` runs the digits CNN alone (unless `--only` names others), exports PyTorch models with
the TorchScript exporter and times 10 rounds after 3 warm-up rounds, for a check of the code in
seconds; the default times 100 rounds for the CNNs and
50 for the transformers after 20.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from _shared import common, onnx_peers
from _shared.builders import BERT_INPUTS, IMAGE_NCHW, IMAGE_NHWC, TOKENS

import compress
from compress import Report

BUILDERS = common.BUILDERS
QUICKSTART = common.RECIPES / "quickstart.yaml"

THREADS = 1
SEQ_LEN = 128
CALIBRATION_SAMPLES = common.CALIBRATION_SAMPLES

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


NHWC = "images_nhwc"
#: The recipe inputs of each data function of benchmarks/_shared/builders.py.
INPUTS = {
    "images_nchw": IMAGE_NCHW,
    NHWC: IMAGE_NHWC,
    "sentences": BERT_INPUTS,
    "gpt2_tokens": TOKENS,
}
#: name -> (table title, builder and data function of benchmarks/_shared/builders.py)
BUILT = {
    "resnet18": ("ResNet-18 (transformers, 3x128x128), static", "resnet18", "images_nchw"),
    "resnet50": ("Keras ResNet50 (96x96), static", "keras_resnet50", NHWC),
    "mobilenetv2": ("Keras MobileNetV2 (96x96), static", "keras_mobilenetv2", NHWC),
    "convnext": ("ConvNeXt-style (transformers, 3x128x128), static", "convnext", "images_nchw"),
    "mobilenetv3": ("Keras MobileNetV3Small (96x96), static", "keras_mobilenetv3small", NHWC),
    "efficientnetb0": ("Keras EfficientNetB0 (96x96), static", "keras_efficientnetb0", NHWC),
    "minilm": ("MiniLM-L6 (real weights, 128 tokens), dynamic", "minilm", "sentences"),
    "gpt2": ("GPT-2-style decoder (4x256, 128 tokens), dynamic", "gpt2", "gpt2_tokens"),
}  # fmt: skip
KINDS = {"sentences": "encoder", "gpt2_tokens": "decoder"}


def builder_spec(title: str, builder: str, data: str) -> Spec:
    """A model of benchmarks/_shared/builders.py with one of its data functions."""
    model = {"source": f"{BUILDERS}:{builder}", "inputs": INPUTS[data]}
    return Spec(title, model, f"{BUILDERS}:{data}", KINDS.get(data, "images"))


SPECS = {
    **{name: builder_spec(*fields) for name, fields in BUILT.items()},
    "digits": Spec("digits CNN (quickstart, trained), static", *_quickstart_model(), "labels"),
}
#: What --quick runs unless --only says otherwise.
QUICK_MODELS = ["digits"]


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


def split_arrays(value: Any) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A split as compress reads it: (inputs, targets) when a 2-tuple, else the inputs alone
    (one array or a list of them)."""
    inputs, targets = value if isinstance(value, tuple) and len(value) == 2 else (value, None)
    arrays = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [np.asarray(x) for x in arrays], None if targets is None else np.asarray(targets)


# --- producing the files ----------------------------------------------------------------------


def recipe(
    name: str, spec: Spec, passes: list[dict], quick: bool, model: dict | None = None
) -> dict:
    """A recipe for `spec`'s model (or `model`) and data with these passes (with `quick`,
    `common.quick_recipe`'s settings)."""
    dims = {"dims": {"sequence": SEQ_LEN}} if spec.transformer else {}
    latency = dict(common.RECIPE_LATENCY, **dims)
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
    if not quick:
        return raw
    # TorchScript cannot export the GPT-2 decoder (aten::diff): it keeps the recipe's exporter.
    return common.quick_recipe(raw, None if spec.kind == "decoder" else common.QUICK_EXPORTER)


def int8_pass(spec: Spec) -> dict:
    if spec.transformer:
        return {"type": "quantize", "mode": "dynamic"}
    return {"type": "quantize", "mode": "static", "calibration": {"samples": CALIBRATION_SAMPLES}}


def nncf_quantize(fp32: Path, target: Path, feeds: Sequence[dict], transformer: bool) -> None:
    import nncf

    extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    model = nncf.quantize(
        onnx.load(str(fp32)), nncf.Dataset(list(feeds)), subset_size=CALIBRATION_SAMPLES, **extra
    )
    onnx.save(model, str(target))


def attempt(work: Callable[[], object], failed: str = "failed") -> str | None:
    """Run `work` quietly: None, or "<failed>: <the error's type and first line>"."""
    with common.native_silence():
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


def add_int4(result: Result, output_dir: Path, quick: bool) -> None:
    """compress's INT4 weight-only pass on the fp32 file, as an extra column."""
    spec, fp32 = result.spec, result.paths[FP32]
    passes = [{"type": "quantize", "mode": "weight_only", "weights": "int4"}]
    model = {"source": str(fp32), "inputs": spec.model["inputs"]}
    raw = recipe(f"{result.name}-int4", spec, passes, quick, model)
    report = common.apply_quietly(raw, output_dir)
    result.reports[INT4] = report
    result.paths[INT4] = Path(report.artifacts.onnx)


def produce(
    name: str, spec: Spec, workdir: Path, quick: bool
) -> tuple[Result, list[np.ndarray], Any]:
    """Every column's file of one model; also its val inputs and targets."""
    raw = recipe(f"{name}-int8", spec, [int8_pass(spec)], quick)
    report = common.apply_quietly(raw, workdir / name)
    assert report.artifacts.baseline_onnx is not None
    fp32 = Path(report.artifacts.baseline_onnx)
    paths = {FP32: fp32, common.COMPRESS: Path(report.artifacts.onnx)}
    result = Result(name, spec, {common.COMPRESS: report}, paths)
    data = common.call_source(spec.data)
    val, targets = split_arrays(data["val"])
    calibration = split_arrays(data.get("calibration", data["val"]))[0]
    names = [i.name for i in common.make_session(fp32).get_inputs()]
    feeds = onnx_peers.batch_feeds(names, [x[:CALIBRATION_SAMPLES] for x in calibration])
    transformer = spec.transformer
    add_peer(result, NNCF, lambda path: nncf_quantize(fp32, path, feeds, transformer), feeds[0])
    add_peer(
        result, BY_HAND, lambda path: onnx_peers.by_hand(fp32, path, feeds, transformer), feeds[0]
    )
    if spec.kind == "encoder":
        add_int4(result, workdir / f"{name}_int4", quick)
    return result, val, targets


# --- measurements -----------------------------------------------------------------------------


def classifier_fidelity(
    sessions: dict[str, ort.InferenceSession], val: list[np.ndarray], targets: Any
) -> dict[str, dict[str, float]]:
    """Top-1 agreement with fp32 on all of val, and accuracy where there are labels."""
    predicted = {
        label: common.first_output(s, val).argmax(axis=-1) for label, s in sessions.items()
    }
    fidelity = {}
    for label, values in predicted.items():
        fidelity[label] = {"agreement": float(np.mean(values == predicted[FP32]))}
        if targets is not None:
            fidelity[label]["accuracy"] = float(np.mean(values == targets))
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
        logits = {label: common.first_output(s, sample)[0] for label, s in sessions.items()}
        for label, values in logits.items():
            agree[label].append(float(np.mean(values.argmax(-1) == logits[FP32].argmax(-1))))
            cosine[label].append(float(common.cosines(values, logits[FP32]).mean()))
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
    result.p50_ms = common.p50_latencies(sessions, [x[:1] for x in val], rounds)
    result.sizes = {
        label: sum(file.stat().st_size for file in common.model_files(path))
        for label, path in result.paths.items()
    }
    if result.spec.kind == "encoder":
        outputs = {label: common.first_output(s, val) for label, s in sessions.items()}
        result.fidelity = common.pooled_cosines(outputs, val[1], FP32)
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
            f"{key}: {shown(record.get(key))}"
            for key in common.CHOICES
            if record.get(key) is not None
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
    """The targets this benchmark checks for this model (none for EfficientNetB0 and GPT-2)."""
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


def print_header() -> None:
    print(common.machine_line())
    print(
        f"onnxruntime {ort.__version__}, nncf {version('nncf')}, compress {compress.__version__}; "
        f"CPU, intra_op_num_threads={THREADS}, batch 1, latencies interleaved per model"
    )


def main() -> None:
    parser = common.arguments(__doc__, "the digits CNN alone, TorchScript, 3 + 10 rounds")
    parser.add_argument("--only", default=None, help=f"comma-separated, of: {', '.join(SPECS)}")
    args = parser.parse_args()
    default = QUICK_MODELS if args.quick else list(SPECS)
    names = common.chosen(parser, args.only, list(SPECS), default)
    started = time.perf_counter()
    print_header()
    results = []
    with common.output_dir(args.out, "quantize-bench-") as workdir:
        for name in names:
            spec = SPECS[name]
            began = time.perf_counter()
            result, val, labels = produce(name, spec, workdir, args.quick)
            measure(result, val, labels, common.latency_rounds(spec.transformer, args.quick))
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
