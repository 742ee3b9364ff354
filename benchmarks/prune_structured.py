"""Structured (channel) pruning: `prune` with `method: channel` against the dense model and, for
PyTorch, against Torch-Pruning used by hand, every figure measured in this one process.

The rows (models) and their columns (ONNX files):

* resnet18 (transformers ResNet-18 config, 3x128x128, random weights; models/resnet.py):
  dense (compress's baseline file), compress `method: channel, sparsity: 0.5` one-shot, the same
  with `round_to: 8`, Torch-Pruning by hand at the same ratio (`MetaPruner` with
  `GroupMagnitudeImportance(p=2)`, the final classifier Linear ignored, `pruner.step()`, then
  `torch.onnx.export` with the exporter compress used for its file, opset 18), compress channel
  0.5 + `quantize: static` (64 calibration images) and Torch-Pruning + onnxruntime's
  `quant_pre_process` and `quantize_static` (QDQ, U8S8, per-channel) on the same 64 images.
* digits (the trained digits CNN, sklearn's 8x8 digits): compress `method: channel, sparsity:
  0.5, fine_tune: true` after a recovery distill pass (alpha 0.5, T 2), against Torch-Pruning
  at 0.5 followed by the same fine-tuning written by hand (cross-entropy; same epochs, Adam
  learning rate, batch size and seed).
* keras_mobilenetv2, tf_keras_mobilenetv2, keras_resnet50 (keras.applications, for the second
  tf-keras's; weights=None, 96x96x3, 10 classes, BatchNorm statistics from images): compress
  `method: channel, sparsity: 0.5` one-shot against the dense model (no Keras peer exists);
  also the pass record's verification max_abs_diff (the masked model against the pruned one).
* minilm (all-MiniLM-L6-v2, real weights): recipes/student_from_teacher.yaml through
  compress.apply (FFN neurons 1536 -> 768, heads 12 -> 8, then distilled from the dense model on
  docstring sentences) and the same two prune passes without the distill pass, to show what
  distillation buys.

Measured per column: p50 latency in onnxruntime on CPU, intra_op_num_threads=1, batch 1 (the
CNNs' first val sample; MiniLM: one 128-token input made from the val sentences), every column
of a row interleaved in one loop whose order alternates each round, after warm-up rounds; ratios
against the dense model and against the peer column (compress against Torch-Pruning, compress
INT8 against Torch-Pruning + onnxruntime INT8, MiniLM distilled against pruned only); parameters
(the weight tensors of the ONNX file without quantization scales and zero points: compress's own
count) and MACs of one sample (compress's own counter, `_shared.toolkit.count_macs`, the same
for every file); fidelity: top-1 agreement with the dense model and the relative L2 error of the
logits on the val images (random-weight classifiers), accuracy on the val labels (digits), mean
and minimum cosine with the dense model of the attention-masked, mean-pooled last hidden state
over the held-out val sentences (MiniLM); and the largest masked-vs-pruned output difference
that compress's channel passes recorded (`verification.max_abs_diff`). Each row's table prints
as soon as it is measured; the targets, MET or MISSED, follow at the end. A failure of one
column (or of a whole row) is printed in its place and the run carries on.

Run (from any directory; the full benchmark wants the machine to itself):

    .venv/bin/python benchmarks/prune_structured.py [--only resnet18,digits,...] [--quick]
        [--out DIR]

`--quick` runs the digits row alone (unless `--only` names others) with a 1-epoch fine-tune,
exports PyTorch models with the TorchScript exporter, times 10 rounds after 3 warm-up rounds and
uses the small data variant where a row has one (MiniLM: models/minilm.py:docstrings_small, 1
training epoch, 10 latency runs inside compress.apply; the CNN rows' data is small already, and
ResNet-18 keeps its 128x128 images); the default times 100 rounds for the CNNs and 50 for MiniLM
after 20 warm-up rounds. The digits fine-tune is 12 epochs (8 left the drop at 0.8-1.4 points
over seeds 0-2, 12 at 0.3-0.6). Torch trains and exports with one thread, except MiniLM's
distillation, which uses every core.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnxruntime as ort
import torch
import torch_pruning as tp
from _shared import common, onnx_peers, toolkit, torch_peers
from _shared.builders import IMAGE_NHWC

import compress
from compress import Report

RESNET = common.MODELS / "resnet.py"
MINILM = common.MODELS / "minilm.py"
MINILM_RECIPE = common.RECIPES / "student_from_teacher.yaml"
BUILDERS = common.BUILDERS
#: name -> (builder in benchmarks/_shared/builders.py, title)
KERAS_MODELS = {
    "keras_mobilenetv2": ("keras_mobilenetv2", "MobileNetV2"),
    "tf_keras_mobilenetv2": ("tf_keras_mobilenetv2", "MobileNetV2 (tf-keras)"),
    "keras_resnet50": ("keras_resnet50", "ResNet50"),
}

THREADS = 1
SPARSITY = 0.5
ROUND_TO = 8
OPSET = 18
SEQ_LEN = 128
CALIBRATION_SAMPLES = common.CALIBRATION_SAMPLES
#: The digits fine-tune of both approaches (--quick: QUICK_EPOCHS).
DIGITS_TRAIN = {"epochs": 12, "lr": 1e-3, "batch_size": 64, "seed": 0}
DIGITS_DISTILL = {"type": "distill", "alpha": 0.5, "temperature": 2.0}
#: (train, val) sentence counts of models/minilm.py's data sources (checked against them).
MINILM_SPLITS = {"docstrings": (2048, 256), "docstrings_small": (64, 16)}
#: What --quick runs unless --only says otherwise.
QUICK_ROWS = ["digits"]

#: The targets.
MAX_RESNET_RATIO = 0.29
MIN_INT8_SPEEDUP = 6.0
MAX_DROP_POINTS = 1.0
MAX_MOBILENET_RATIO = 0.6
MIN_MINILM_SPEEDUP = 1.6
MIN_COSINE = 0.95

DENSE = common.DENSE
CHANNEL, ROUNDED, TP_HAND = "compress", "compress r8", "Torch-Pruning"
CHANNEL_INT8, TP_INT8 = "compress+int8", "TP+ORT int8"
DISTILLED, NOT_DISTILLED = "compress distilled", "pruned only"
FAILED = "failed*"

T = TypeVar("T")
Arrays = dict[str, np.ndarray]


# --- rows and their figures -------------------------------------------------------------------


@dataclass
class Figures:
    """What is measured on one ONNX file besides fidelity."""

    p50_ms: float
    params: int
    macs: int | None


@dataclass
class ModelRow:
    """One model: its columns' files (or why a column has none), figures and notes."""

    name: str
    title: str
    columns: list[str]
    #: column -> the peer column it is compared with
    peers: dict[str, str] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Figures] = field(default_factory=dict)
    fidelity: dict[str, dict[str, float]] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def p50(self, label: str) -> float | None:
        figures = self.figures.get(label)
        return None if figures is None else figures.p50_ms

    def latency_ratio(self, label: str, reference: str = DENSE) -> float | None:
        """The column's p50 over the reference column's (None where either is missing)."""
        ours, theirs = self.p50(label), self.p50(reference)
        return None if ours is None or theirs is None else ours / theirs

    def failure(self, label: str) -> str:
        """Why a column has no figures."""
        return self.errors.get(label, "not measured")


@dataclass(frozen=True)
class Samples:
    """A row's inputs by input name: `timed` (batch 1) for latency and MACs, `val` for
    fidelity, and the val labels where there are any."""

    timed: Arrays
    val: Arrays
    labels: np.ndarray | None = None


# --- running things ---------------------------------------------------------------------------


def attempt(row: ModelRow, label: str, work: Callable[[], T]) -> T | None:
    """Run `work` quietly; on failure record why under `label` and return None."""
    try:
        with common.native_silence(), common.quiet():
            return work()
    except Exception as exc:
        row.errors[label] = common.error_text(exc)
        return None


def run_recipe(row: ModelRow, label: str, raw: dict, workdir: Path) -> Path | None:
    """compress.apply of a recipe dict: its compressed file (and its dense file as DENSE when
    there is none yet); the report is kept under `label`."""
    folder = workdir / label.replace(" ", "_")
    report = attempt(row, label, lambda: common.apply_quietly(raw, folder))
    if report is None:
        return None
    row.reports[label] = report
    row.paths[label] = Path(report.artifacts.onnx)
    if DENSE not in row.paths and report.artifacts.baseline_onnx:
        row.paths[DENSE] = Path(report.artifacts.baseline_onnx)
    return row.paths[label]


def recipe(
    name: str, model: dict, data: str, passes: list[dict], quick: bool, **sections: Any
) -> dict:
    """A recipe dict measuring latency as quantize.py's do (compress picks its exporter by it);
    with `quick`, with `common.quick_recipe`'s settings."""
    raw = {
        "version": 1,
        "name": name,
        "model": model,
        "data": {"source": data, "batch_size": 16},
        "passes": passes,
        "export": {"format": "onnx", "opset": OPSET, "path": "out/model.onnx"},
        "measure": {"latency": common.RECIPE_LATENCY},
        **sections,
    }
    return common.quick_recipe(raw) if quick else raw


def channel_pass(**options: Any) -> dict:
    return {"type": "prune", "method": "channel", "sparsity": SPARSITY, **options}


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's intra-op threads for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- Torch-Pruning by hand --------------------------------------------------------------------


def exporter_of(report: Report | None) -> str:
    """The exporter compress used for its compressed file (dynamo where unknown)."""
    export = None if report is None else report.compressed.export
    return "dynamo" if export is None else export.exporter


def digits_train(quick: bool) -> dict[str, Any]:
    """The digits fine-tune of both approaches."""
    epochs = common.QUICK_EPOCHS if quick else DIGITS_TRAIN["epochs"]
    return {**DIGITS_TRAIN, "epochs": epochs}


# --- measurements -----------------------------------------------------------------------------


def ordered(session: ort.InferenceSession, arrays: Arrays) -> list[np.ndarray]:
    """The arrays in the session's input order: by name, else by position."""
    names = common.input_names(session)
    if all(name in arrays for name in names):
        return [arrays[name] for name in names]
    return list(arrays.values())[: len(names)]


def macs_of(path: Path, session: ort.InferenceSession, arrays: Arrays) -> int | None:
    """MACs of one sample (None where the counter cannot count the file)."""
    try:
        feeds = dict(zip(common.input_names(session), ordered(session, arrays), strict=True))
        return toolkit.count_macs(path, feeds)
    except Exception:
        return None


def measure(row: ModelRow, samples: Samples, rounds: tuple[int, int]) -> dict[str, np.ndarray]:
    """p50 latency (every file in one interleaved loop, batch 1), params and MACs of every file
    of the row; returns each file's first output on the val inputs."""
    sessions = {}
    for label in [c for c in row.columns if c in row.paths]:
        path = row.paths[label]
        session = attempt(row, label, lambda path=path: common.make_session(path, THREADS))
        if session is not None:
            sessions[label] = session
    orders = {label: common.input_names(session) for label, session in sessions.items()}
    assert len({tuple(order) for order in orders.values()}) == 1, orders
    timed = ordered(next(iter(sessions.values())), samples.timed)
    latencies = common.p50_latencies(sessions, timed, rounds)
    outputs = {}
    for label, session in sessions.items():
        path = row.paths[label]
        macs = macs_of(path, session, samples.timed)
        row.figures[label] = Figures(latencies[label], toolkit.summarize(path).params, macs)
        feed = common.feed_for(session, ordered(session, samples.val))
        outputs[label] = session.run(None, feed)[0]
    return outputs


def score_classes(row: ModelRow, outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> None:
    """Top-1 agreement with the dense model, the relative L2 error of the logits against the
    dense model's (random-weight classifiers give most images one class, so agreement alone
    says little), and accuracy where there are labels."""
    dense = outputs[DENSE].astype(np.float64)
    predicted = {label: values.argmax(axis=-1) for label, values in outputs.items()}
    for label, values in predicted.items():
        error = np.linalg.norm(outputs[label] - dense) / np.linalg.norm(dense)
        row.fidelity[label] = {
            "agreement": float(np.mean(values == predicted[DENSE])),
            "logit_error": float(error),
        }
        if labels is not None:
            row.fidelity[label]["accuracy"] = float(np.mean(values == labels))


def channel_records(report: Report) -> list[Any]:
    return [record for record in report.passes if record.get("method") == "channel"]


def verification_diff(row: ModelRow, label: str) -> float | None:
    """The largest masked-vs-pruned difference compress's channel passes recorded."""
    report = row.reports.get(label)
    diffs = [
        (record.get("verification") or {}).get("max_abs_diff")
        for record in (channel_records(report) if report else [])
    ]
    found = [value for value in diffs if value is not None]
    return max(found) if found else None


# --- output -----------------------------------------------------------------------------------

#: (row name, fidelity key, format) per kind of row.
FIDELITY_ROWS = {
    "images": [
        ("top-1 agreement with dense", "agreement", "{:.4f}"),
        ("logits: rel. L2 error vs dense", "logit_error", "{:.4f}"),
    ],
    "labels": [
        ("val accuracy", "accuracy", "{:.2%}"),
        ("top-1 agreement with dense", "agreement", "{:.4f}"),
    ],
    "encoder": [
        ("mean-pooled cosine, mean", "cosine_mean", "{:.4f}"),
        ("mean-pooled cosine, min", "cosine_min", "{:.4f}"),
    ],
}


def show_macs(figures: Figures) -> str:
    return common.MISSING if figures.macs is None else f"{figures.macs:,}"


def compared(row: ModelRow, value: Callable[[Figures], float | None], peer: bool) -> list[str]:
    """Each column's `value` against the dense column's (or its peer's) as "0.123x"."""

    def show(label: str) -> str:
        other = row.peers.get(label) if peer else DENSE
        if other is None or label not in row.figures or other not in row.figures:
            return common.MISSING
        ours, theirs = value(row.figures[label]), value(row.figures[other])
        return common.MISSING if not ours or not theirs else common.ratio(ours, theirs)

    return [show(label) for label in row.columns]


def table_rows(row: ModelRow, kind: str) -> list[common.Row]:
    """The figures of every column, with ratios against the dense and the peer column."""
    figures, fidelity = row.figures, row.fidelity

    def cells(show: Callable[[str], str]) -> list[str]:
        return [
            show(c) if c in figures else FAILED if c in row.errors else common.MISSING
            for c in row.columns
        ]

    dense = figures[DENSE].p50_ms
    rows: list[common.Row] = [
        ("p50 latency (ms)", cells(lambda c: f"{figures[c].p50_ms:.3f}")),
        ("speed-up vs dense", cells(lambda c: f"{dense / figures[c].p50_ms:.2f}x")),
        ("latency vs dense", compared(row, lambda f: f.p50_ms, peer=False)),
        ("latency vs peer", compared(row, lambda f: f.p50_ms, peer=True)),
        ("params", cells(lambda c: f"{figures[c].params:,}")),
        ("params vs dense", compared(row, lambda f: f.params, peer=False)),
        ("params vs peer", compared(row, lambda f: f.params, peer=True)),
        ("MACs", cells(lambda c: show_macs(figures[c]))),
        ("MACs vs dense", compared(row, lambda f: f.macs, peer=False)),
        ("MACs vs peer", compared(row, lambda f: f.macs, peer=True)),
    ]
    if not row.peers:
        rows = [(name, cells) for name, cells in rows if not name.endswith("vs peer")]
    for name, key, shape in FIDELITY_ROWS[kind]:
        rows.append((name, cells(lambda c, key=key, shape=shape: shape.format(fidelity[c][key]))))
    if kind == "labels":
        base = fidelity[DENSE]["accuracy"]
        drop = cells(lambda c: f"{(base - fidelity[c]['accuracy']) * 100:.2f}")
        rows.append(("drop vs dense (points)", drop))
    diffs = {label: verification_diff(row, label) for label in row.columns}
    rows.append(
        (
            "verification max_abs_diff",
            [common.MISSING if d is None else f"{d:.2e}" for d in diffs.values()],
        )
    )
    return rows


def record_notes(row: ModelRow) -> None:
    """What compress's reports say: the channel groups cut, framework params, exporter, notes."""
    for label, report in row.reports.items():
        for record in channel_records(report):
            groups = record.get("groups") or []
            before, after = (sum(group[key] for group in groups) for key in ("before", "after"))
            row.notes.append(
                f"{label}: {record.get('engine')}: {len(groups)} group(s) cut, "
                f"{before:,} -> {after:,} channels/neurons/heads, "
                f"{len(record.get('left_whole') or [])} left whole; framework params "
                f"{record.get('params_before'):,} -> {record.get('params_after'):,}"
            )
        chosen = [
            f"{key} {' '.join(str(record.get(key)).split())[:80]}"
            for record in report.passes
            if record.get("type") == "quantize"
            for key in common.CHOICES
            if record.get(key) is not None
        ]
        quantized = f"; quantize chose: {', '.join(chosen)}" if chosen else ""
        row.notes.append(f"{label}: exporter {exporter_of(report)}{quantized}")
        for note in report.notes[:3]:
            row.notes.append(f"  note: {' '.join(note.split())[:200]}")


def print_row(row: ModelRow, kind: str) -> None:
    print(f"\n{row.title}  ({row.seconds:.0f} s)")
    if DENSE in row.figures:
        common.print_table(row.columns, table_rows(row, kind))
        peers = ", ".join(f"{label} vs {peer}" for label, peer in row.peers.items())
        if peers:
            print(f"  peer columns: {peers}")
    for label, error in row.errors.items():
        print(f"* {label}: {error}")
    for note in row.notes:
        print(f"  {note}")


def ratio_line(row: ModelRow, label: str, limit: float, what: str) -> tuple[bool, str]:
    """A latency-ratio target: the column's p50 over the dense one's at most `limit`."""
    value = row.latency_ratio(label)
    if value is None:
        return False, f"{row.name}: {what}: {label} {row.failure(label)}"
    return value <= limit, f"{row.name}: {what} {value:.3f}x dense <= {limit}x"


# --- resnet18 ---------------------------------------------------------------------------------

RESNET_INPUTS = [{"name": "pixel_values", "shape": ["batch", 3, 128, 128]}]


def resnet_row(workdir: Path, rounds: tuple[int, int], quick: bool) -> ModelRow:
    """compress one-shot (plain, round_to 8, + INT8) against Torch-Pruning (fp32, + ORT INT8).
    The images are models/resnet.py's (64 to calibrate, 32 to compare) in both modes."""
    columns = [DENSE, CHANNEL, ROUNDED, TP_HAND, CHANNEL_INT8, TP_INT8]
    peers = {CHANNEL: TP_HAND, ROUNDED: TP_HAND, CHANNEL_INT8: TP_INT8}
    row = ModelRow(
        "resnet18", "ResNet-18 (transformers, 3x128x128, random weights)", columns, peers
    )
    model, data = {"source": f"{RESNET}:build", "inputs": RESNET_INPUTS}, f"{RESNET}:images"
    calibration = {"samples": CALIBRATION_SAMPLES}
    static = {"type": "quantize", "mode": "static", "calibration": calibration}
    variants = {
        CHANNEL: [channel_pass()],
        ROUNDED: [channel_pass(round_to=ROUND_TO)],
        CHANNEL_INT8: [channel_pass(), static],
    }
    for label, passes in variants.items():
        name = f"resnet18-{label.replace(' ', '-').replace('+', '-')}"
        run_recipe(row, label, recipe(name, model, data, passes, quick), workdir)
    images = common.call_source(f"{RESNET}:images")
    add_torch_pruning(row, images, workdir)
    if DENSE in row.paths:
        val = images["val"]
        samples = Samples({"pixel_values": val[:1]}, {"pixel_values": val})
        score_classes(row, measure(row, samples, rounds), samples.labels)
    record_notes(row)
    return row


def add_torch_pruning(row: ModelRow, images: dict, workdir: Path) -> None:
    """The Torch-Pruning columns: fp32 with compress's exporter, then onnxruntime static INT8
    (quant_pre_process, QDQ U8S8 per-channel) calibrated on the same images."""
    example = torch.from_numpy(images["val"][:1])
    exporter = exporter_of(row.reports.get(CHANNEL))

    def prune_and_export() -> Path:
        network = common.load_source(RESNET).build()
        ignored = [network.model.classifier[-1]]
        pruned = torch_peers.tp_prune(network, example, ignored, SPARSITY)
        path = workdir / "tp.onnx"
        return torch_peers.torch_export(pruned, example, "pixel_values", path, exporter, OPSET)

    fp32 = attempt(row, TP_HAND, prune_and_export)
    if fp32 is None:
        return
    row.paths[TP_HAND] = fp32
    row.notes.append(f"{TP_HAND}: exported with the {exporter} exporter (compress's choice)")
    feeds = onnx_peers.batch_feeds(["pixel_values"], [images["calibration"][:CALIBRATION_SAMPLES]])
    target = workdir / "tp_int8.onnx"

    def quantize_by_hand() -> Path:
        onnx_peers.by_hand(fp32, target, feeds, False)
        return target

    if attempt(row, TP_INT8, quantize_by_hand) is not None:
        row.paths[TP_INT8] = target


def noise_note(ours: float, theirs: float) -> str:
    """A remark when two latencies differ by less than compress's timing noise."""
    if abs(ours / theirs - 1) >= toolkit.LATENCY_NOISE:
        return ""
    return f" (within the {toolkit.LATENCY_NOISE:.0%} timing noise)"


def resnet_targets(row: ModelRow) -> list[tuple[bool, str]]:
    ours, theirs = row.latency_ratio(CHANNEL), row.latency_ratio(TP_HAND)
    if ours is None or theirs is None:
        missing = CHANNEL if ours is None else TP_HAND
        lines = [(False, f"resnet18: channel vs Torch-Pruning: {missing} {row.failure(missing)}")]
    else:
        params = row.figures[CHANNEL].params, row.figures[TP_HAND].params
        lines = [
            (
                ours <= theirs and params[0] <= params[1],
                f"resnet18: compress channel latency {ours:.3f}x dense <= Torch-Pruning's "
                f"{theirs:.3f}x (expected <= {MAX_RESNET_RATIO}x) at params {params[0]:,} <= "
                f"{params[1]:,}{noise_note(ours, theirs)}",
            )
        ]
    int8 = row.latency_ratio(CHANNEL_INT8)
    if int8 is None:
        return [*lines, (False, f"resnet18: channel + INT8: {row.failure(CHANNEL_INT8)}")]
    text = f"resnet18: compress channel + INT8 {1 / int8:.2f}x faster than dense fp32"
    return [*lines, (1 / int8 >= MIN_INT8_SPEEDUP, f"{text} >= {MIN_INT8_SPEEDUP:.0f}x")]


# --- digits -----------------------------------------------------------------------------------

DIGITS_INPUTS = [{"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}]


def digits_recipe(settings: dict[str, Any], quick: bool) -> dict:
    """Recovery distillation into the channel-pruned digits CNN's fine-tuning."""
    model = {
        "source": f"{common.DIGITS_CNN}:build",
        "weights": str(common.DIGITS_WEIGHTS),
        "inputs": DIGITS_INPUTS,
    }
    passes = [DIGITS_DISTILL, channel_pass(fine_tune=True)]
    train = {
        "epochs": settings["epochs"],
        "optimizer": {"type": "adam", "lr": settings["lr"]},
        "loss": "cross_entropy",
        "seed": settings["seed"],
    }
    data = f"{common.DIGITS_DATA}:load"
    raw = recipe("digits-channel", model, data, passes, quick, train=train)
    raw["data"]["batch_size"] = settings["batch_size"]
    raw["evaluate"] = {"metric": "accuracy"}
    return raw


def digits_row(workdir: Path, rounds: tuple[int, int], quick: bool) -> ModelRow:
    """compress (distill + channel 0.5 + fine-tune) against Torch-Pruning + the same fine-tune."""
    row = ModelRow(
        "digits", "digits CNN (trained, 8x8 digits)", [DENSE, CHANNEL, TP_HAND], {CHANNEL: TP_HAND}
    )
    settings = digits_train(quick)
    run_recipe(row, CHANNEL, digits_recipe(settings, quick), workdir)
    data = common.call_source(f"{common.DIGITS_DATA}:load")
    val = data["val"]
    example = torch.from_numpy(val[0][:1])
    exporter = exporter_of(row.reports.get(CHANNEL))

    def prune_tune_export() -> Path:
        network = torch_peers.digits_cnn()
        torch_peers.tp_prune(network, example, [network.fc2], SPARSITY)
        torch_peers.fine_tune(network, data["train"], **settings)
        path = workdir / "tp_digits.onnx"
        return torch_peers.torch_export(network, example, "input", path, exporter, OPSET)

    path = attempt(row, TP_HAND, prune_tune_export)
    if path is not None:
        row.paths[TP_HAND] = path
        row.notes.append(f"{TP_HAND}: fine-tuned by hand {settings}, {exporter} exporter")
    if DENSE in row.paths:
        samples = Samples({"input": val[0][:1]}, {"input": val[0]}, val[1])
        score_classes(row, measure(row, samples, rounds), samples.labels)
    record_notes(row)
    return row


def digits_targets(row: ModelRow) -> list[tuple[bool, str]]:
    if CHANNEL not in row.fidelity:
        return [(False, f"digits: accuracy drop: {CHANNEL} {row.failure(CHANNEL)}")]
    drop = (row.fidelity[DENSE]["accuracy"] - row.fidelity[CHANNEL]["accuracy"]) * 100
    text = f"digits: compress channel 0.5 + fine-tune accuracy drop {drop:.2f} points"
    peer = row.fidelity.get(TP_HAND)
    if peer:
        peer_drop = (row.fidelity[DENSE]["accuracy"] - peer["accuracy"]) * 100
        text += f" (Torch-Pruning + fine-tune: {peer_drop:.2f})"
    return [(drop <= MAX_DROP_POINTS, f"{text} <= {MAX_DROP_POINTS}")]


# --- Keras ------------------------------------------------------------------------------------


def keras_row(name: str, workdir: Path, rounds: tuple[int, int], quick: bool) -> ModelRow:
    """compress one-shot channel pruning of a keras.applications model against the dense one."""
    builder, title = KERAS_MODELS[name]
    row = ModelRow(name, f"Keras {title} (96x96x3, weights=None, 10 classes)", [DENSE, CHANNEL])
    model = {"source": f"{BUILDERS}:{builder}", "inputs": IMAGE_NHWC}
    raw = recipe(f"{name}-channel", model, f"{BUILDERS}:images_nhwc", [channel_pass()], quick)
    run_recipe(row, CHANNEL, raw, workdir)
    if DENSE in row.paths:
        val = common.call_source(f"{BUILDERS}:images_nhwc")["val"]
        samples = Samples({"input": val[:1]}, {"input": val})
        score_classes(row, measure(row, samples, rounds), samples.labels)
    record_notes(row)
    return row


def keras_targets(row: ModelRow) -> list[tuple[bool, str]]:
    if "mobilenetv2" not in row.name:
        return []
    return [ratio_line(row, CHANNEL, MAX_MOBILENET_RATIO, "compress channel 0.5 latency")]


# --- MiniLM -----------------------------------------------------------------------------------


def minilm_recipes(quick: bool) -> tuple[dict, dict, str]:
    """The student-from-teacher recipe (with --quick: small data and `common.quick_recipe`'s
    settings), the same without its distill pass, and the data source's function name."""
    raw = common.read_recipe(MINILM_RECIPE, quick)
    raw["export"]["path"] = "out/model.onnx"
    function = "docstrings_small" if quick else "docstrings"
    if quick:
        raw["data"]["source"] = f"{MINILM}:{function}"
    plain = copy.deepcopy(raw)
    plain["passes"] = [item for item in raw["passes"] if item["type"] != "distill"]
    plain["name"] = f"{raw['name']}-pruned-only"
    return raw, plain, function


def minilm_samples(function: str) -> Samples:
    """The val split as the recipe reads it (fidelity) and one 128-token input made from the
    val sentences (latency, MACs)."""
    module = common.load_source(MINILM)
    data = getattr(module, function)()
    train, count = MINILM_SPLITS[function]
    texts = list(module.corpus_sentences()[train : train + count])
    val = data["val"]
    tokens = module.tokenized(texts, val[0].shape[1])
    assert all(np.array_equal(a, b) for a, b in zip(tokens, val, strict=True)), function
    timed = module.tokenized([" ".join(texts)], SEQ_LEN)
    names = module.INPUT_NAMES
    return Samples(dict(zip(names, timed, strict=True)), dict(zip(names, val, strict=True)))


def minilm_row(workdir: Path, rounds: tuple[int, int], quick: bool) -> ModelRow:
    """The student-from-teacher recipe and its prune passes alone, against the dense model."""
    title = "MiniLM-L6 (real weights): FFN 1536->768, heads 12->8"
    row = ModelRow("minilm", title, [DENSE, DISTILLED, NOT_DISTILLED], {DISTILLED: NOT_DISTILLED})
    distilled, plain, function = minilm_recipes(quick)
    with torch_threads(os.cpu_count() or 1):
        run_recipe(row, DISTILLED, distilled, workdir)
        run_recipe(row, NOT_DISTILLED, plain, workdir)
    if DENSE in row.paths:
        samples = minilm_samples(function)
        outputs = measure(row, samples, rounds)
        row.fidelity.update(common.pooled_cosines(outputs, samples.val["attention_mask"], DENSE))
    record_notes(row)
    for label, report in row.reports.items():
        if report.fidelity is not None:
            row.notes.append(
                f"{label}: the report's fidelity {report.fidelity.metric} "
                f"{report.fidelity.value:.4f}"
            )
    row.notes.append(f"data {function}, latency and MACs at batch 1 x {SEQ_LEN} tokens")
    return row


def minilm_targets(row: ModelRow) -> list[tuple[bool, str]]:
    ratio = row.latency_ratio(DISTILLED)
    if ratio is None or DISTILLED not in row.fidelity:
        return [(False, f"minilm: {DISTILLED} {row.failure(DISTILLED)}")]
    cosine = row.fidelity[DISTILLED]["cosine_mean"]
    plain = row.fidelity.get(NOT_DISTILLED, {}).get("cosine_mean")
    without = "" if plain is None else f" (pruned only: {plain:.4f})"
    return [
        (
            1 / ratio >= MIN_MINILM_SPEEDUP,
            f"minilm: distilled student {1 / ratio:.2f}x faster fp32 at {SEQ_LEN} tokens "
            f">= {MIN_MINILM_SPEEDUP}x",
        ),
        (
            cosine >= MIN_COSINE,
            f"minilm: mean-pooled cosine mean {cosine:.4f}{without} >= {MIN_COSINE}",
        ),
    ]


# --- main -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How to produce and measure one row, its kind of fidelity and its targets."""

    produce: Callable[[Path, tuple[int, int], bool], ModelRow]
    kind: str
    targets: Callable[[ModelRow], list[tuple[bool, str]]]
    transformer: bool = False


def keras_spec(name: str) -> Spec:
    return Spec(
        lambda workdir, rounds, quick: keras_row(name, workdir, rounds, quick),
        "images",
        keras_targets,
    )


SPECS = {
    "resnet18": Spec(resnet_row, "images", resnet_targets),
    "digits": Spec(digits_row, "labels", digits_targets),
    "keras_mobilenetv2": keras_spec("keras_mobilenetv2"),
    "tf_keras_mobilenetv2": keras_spec("tf_keras_mobilenetv2"),
    "keras_resnet50": keras_spec("keras_resnet50"),
    "minilm": Spec(minilm_row, "encoder", minilm_targets, transformer=True),
}


def print_header(quick: bool) -> None:
    print(common.machine_line())
    libraries = ("torch", "torch-pruning", "onnxruntime", "transformers", "keras", "tensorflow")
    versions = {name: common.package_version(name) for name in libraries}
    if tp.__version__ != versions["torch-pruning"]:  # the module's own string can lag the wheel
        versions["torch-pruning"] += f" (torch_pruning.__version__ {tp.__version__})"
    print(", ".join(f"{name} {text}" for name, text in versions.items()))
    warmup, runs = common.latency_rounds(False, quick)
    print(
        f"compress {compress.__version__}; onnxruntime CPU, intra_op_num_threads={THREADS}, "
        f"batch 1, columns interleaved, {warmup} warm-up + {runs} timed rounds"
        + ("" if quick else f" ({common.TRANSFORMER_ROUNDS[1]} for MiniLM)")
    )


def produce_row(name: str, spec: Spec, workdir: Path, quick: bool) -> ModelRow:
    """One row, measured; a crash outside the columns' own attempts becomes the row's error."""
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        row = spec.produce(workdir, common.latency_rounds(spec.transformer, quick), quick)
    except Exception as exc:
        row = ModelRow(name, name, [DENSE], errors={"row": common.error_text(exc)})
    row.seconds = time.perf_counter() - started
    return row


def print_targets(rows: Sequence[tuple[ModelRow, Spec]]) -> None:
    print("\nTargets (figures from the tables above):")
    for row, spec in rows:
        lines = spec.targets(row)
        if not lines:
            print(f"  (no target for {row.name})")
        for met, text in lines:
            common.verdict(met, text)


def main() -> None:
    parser = common.arguments(__doc__, "the digits row alone, 1 epoch, TorchScript, 3 + 10 rounds")
    parser.add_argument("--only", default=None, help=f"comma-separated, of: {', '.join(SPECS)}")
    args = parser.parse_args()
    default = QUICK_ROWS if args.quick else list(SPECS)
    names = common.chosen(parser, args.only, list(SPECS), default)
    started = time.perf_counter()
    torch.set_num_threads(1)
    print_header(args.quick)
    rows = []
    with common.output_dir(args.out, "prune-structured-") as workdir:
        for name in names:
            spec = SPECS[name]
            row = produce_row(name, spec, workdir / name, args.quick)
            print_row(row, spec.kind)
            rows.append((row, spec))
    print_targets(rows)
    print(f"\nWall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
