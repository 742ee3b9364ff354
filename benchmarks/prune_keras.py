"""Compare the Keras quickstart recipe (`compress.apply`) with pruning the same model by hand
with tfmot and exporting it with tf2onnx.

Four ONNX models of the Keras digits CNN are measured in one run:

* dense: the baseline that `compress.apply("recipes/keras_quickstart.yaml")` exports;
* compress: the model that recipe prunes to 80% while fine-tuning (a Keras 3 model, so the
  toolkit's own masks: tfmot refuses Keras 3);
* by hand, tfmot: tfmot only takes tf-keras (Keras 2) models, so the by-hand user rebuilds the
  same architecture in tf-keras, copies the trained Keras 3 weights into it, wraps conv1, conv2,
  fc1 and fc2 with `prune_low_magnitude` (PolynomialDecay 0 -> 80% over the first 4 epochs of a
  6-epoch Adam fine-tune, batch 64), fits with `UpdatePruningStep`, strips the wrappers and
  exports with `tf2onnx.convert.from_keras`. Twice: once with tfmot's default pruning frequency
  (100 steps), as the straightforward recipe reads, and once with a frequency chosen so that a
  mask update lands on the schedule's end step (the careful setup).

Every figure is read from the ONNX files themselves: validation accuracy (onnxruntime, CPU,
1 thread), weight sparsity (zeros over the kernels, i.e. float initializers with 2 or more
dimensions, and over all float initializers; Constant-node tensors count as initializers), raw
size and gzip -9 size (also of the float weights alone, to tell the weights from the graph) and
p50 latency at batch 1 with 1 thread (20 warm-up and 200 timed runs, all models interleaved in
one loop). Then the report's own figures, ratios against the dense model and against the by-hand
model that reaches 80%, the wall time of each approach and the targets, compared against the
by-hand run that reaches 80% (the default-frequency run does not: see its verdict line). Torch is
never imported.

Run (from any directory; the repository root is found from this file):

    .venv/bin/python benchmarks/prune_keras.py
"""

from __future__ import annotations

import os

# tfmot needs tf.keras to be tf-keras (Keras 2): decided when TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import gzip
import importlib.util
import io
import logging
import math
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

import compress
from compress.backends.native_logs import filtered_native_stderr
from compress.report.schema import ModelMetrics, Report

# TensorFlow's C++ start-up logs to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL applies.
with filtered_native_stderr():
    import keras
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf2onnx
    import tf_keras

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "keras_quickstart.yaml"
MODEL_SOURCE = REPO / "models" / "keras_digits_cnn.py"
WEIGHTS = REPO / "models" / "keras_digits_cnn.weights.h5"
DATA_SOURCE = REPO / "models" / "digits.py"

# The by-hand fine-tune, matching the recipe's train section and prune pass.
LAYERS = ("conv1", "conv2", "fc1", "fc2")
SPARSITY = 0.8
RAMP_EPOCHS = 4
EPOCHS = 6
LR = 1e-3
BATCH_SIZE = 64
SEED = 0
OPSET = 18

#: PolynomialDecay's default `frequency`: what a by-hand user gets without thinking about it.
TFMOT_DEFAULT_FREQUENCY = 100
#: The careful by-hand setup aims at about 4 mask updates per epoch.
CAREFUL_UPDATES_PER_EPOCH = 4

WARMUP_RUNS = 20
TIMED_RUNS = 200
GZIP_LEVEL = 9

#: A run "reaches" the target sparsity within this many points (the toolkit's own tolerance).
SPARSITY_TOLERANCE_POINTS = 0.5
SAME_SPARSITY_POINTS = 0.5
MAX_ACCURACY_GAP_POINTS = 0.5

DENSE, COMPRESS = "dense", "compress"
HAND_DEFAULT = f"by hand: tfmot default (freq {TFMOT_DEFAULT_FREQUENCY})"

Split = tuple[np.ndarray, np.ndarray]


@dataclass
class Candidate:
    """An exported model, or the reason its export failed."""

    label: str
    path: Path | None
    error: str | None = None


@dataclass
class HandRun:
    """One by-hand tfmot run: its exported model and how it was pruned."""

    candidate: Candidate
    frequency: int
    end_step: int
    mask_updates: int
    seconds: dict[str, float]


@dataclass
class Measured:
    accuracy: float
    params: int
    sparsity: float
    kernel_params: int
    kernel_sparsity: float
    size_bytes: int
    gzip_bytes: int
    weights_gzip_bytes: int
    nodes: int
    p50_ms: float


def load_source(path: Path) -> ModuleType:
    """Import a Python file by path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence tf2onnx's and tfmot's progress lines, warnings and log records."""
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# --- the two approaches ---------------------------------------------------------------------


def run_compress(output_dir: Path) -> tuple[Report, list[Candidate], float]:
    """The Keras quickstart recipe through the Python API; its dense and pruned ONNX files."""
    started = time.perf_counter()
    report = compress.apply(RECIPE, output_dir=output_dir, progress=False)
    seconds = time.perf_counter() - started
    assert report.artifacts.baseline_onnx is not None
    candidates = [
        Candidate(DENSE, Path(report.artifacts.baseline_onnx)),
        Candidate(COMPRESS, Path(report.artifacts.onnx)),
    ]
    return report, candidates, seconds


def load_keras3_cnn() -> keras.Model:
    """The trained Keras 3 model, as the recipe loads it."""
    model = load_source(MODEL_SOURCE).build()
    model.load_weights(WEIGHTS)
    return model


def build_tf_keras_cnn(weights: list[np.ndarray]) -> tf_keras.Model:
    """The same architecture in tf-keras (what tfmot accepts), holding the given weights."""
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            layers.Input((8, 8, 1), name="input"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="fc1"),
            layers.Dense(10, name="fc2"),
        ],
        name="digits_cnn",
    )
    model.set_weights(weights)
    return model


def careful_frequency(steps_per_epoch: int, end_step: int) -> int:
    """About CAREFUL_UPDATES_PER_EPOCH updates an epoch, lowered until it divides end_step:
    tfmot only updates masks on steps begin + k * frequency <= end, so a frequency that does
    not divide the span never applies the final sparsity."""
    desired = max(1, steps_per_epoch // CAREFUL_UPDATES_PER_EPOCH)
    return next(f for f in range(min(desired, end_step), 0, -1) if end_step % f == 0)


def prune_with_tfmot(
    label: str, weights: list[np.ndarray], train: Split, frequency: int, workdir: Path
) -> HandRun:
    """The tfmot recipe on a fresh tf-keras copy of the model, exported with tf2onnx.

    A fresh copy each time: clone_model's clone_function wraps the original layers, so the
    pruned model shares (and trains) the weights of the model it was cloned from.
    """
    started = time.perf_counter()
    tf_keras.utils.set_random_seed(SEED)
    steps_per_epoch = math.ceil(len(train[0]) / BATCH_SIZE)
    end_step = RAMP_EPOCHS * steps_per_epoch
    sparsity = tfmot.sparsity.keras
    schedule = sparsity.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=SPARSITY,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )

    def wrap(layer: Any) -> Any:
        if layer.name in LAYERS:
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    with quiet():
        base = build_tf_keras_cnn(weights)
        model = tf_keras.models.clone_model(base, clone_function=wrap)
        model.compile(
            optimizer=tf_keras.optimizers.Adam(learning_rate=LR),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(
            train[0],
            train[1],
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            shuffle=True,
            verbose=0,
            callbacks=[sparsity.UpdatePruningStep()],
        )
        stripped = sparsity.strip_pruning(model)
    tuned = time.perf_counter()
    path = workdir / f"tfmot_freq{frequency}.onnx"
    candidate = export_tf2onnx(label, stripped, path)
    finished = time.perf_counter()
    return HandRun(
        candidate=candidate,
        frequency=frequency,
        end_step=end_step,
        # tfmot prunes on steps begin_step + k * frequency that are <= end_step
        mask_updates=end_step // frequency + 1,
        seconds={"fine-tune": tuned - started, "total": finished - started},
    )


def export_tf2onnx(label: str, model: tf_keras.Model, path: Path) -> Candidate:
    """tf2onnx with a dynamic batch; a failure is recorded, not raised."""
    signature = [tf.TensorSpec((None, 8, 8, 1), tf.float32, name="input")]
    try:
        with quiet():
            tf2onnx.convert.from_keras(
                model, input_signature=signature, opset=OPSET, output_path=str(path)
            )
    except Exception as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0][:300] if text else ""
        return Candidate(label, None, f"{type(exc).__name__}: {reason}")
    return Candidate(label, path)


def prune_by_hand(data: dict[str, Split], workdir: Path) -> tuple[list[HandRun], float]:
    """Both by-hand runs; also how closely the tf-keras copy matches the Keras 3 model."""
    workdir.mkdir(parents=True, exist_ok=True)
    weights = load_keras3_cnn().get_weights()
    val_x = data["val"][0]
    with quiet():
        copy_diff = float(
            np.max(
                np.abs(
                    np.asarray(load_keras3_cnn()(val_x, training=False))
                    - build_tf_keras_cnn(weights).predict(val_x, verbose=0)
                )
            )
        )
    train = data["train"]
    steps_per_epoch = math.ceil(len(train[0]) / BATCH_SIZE)
    careful = careful_frequency(steps_per_epoch, RAMP_EPOCHS * steps_per_epoch)
    runs = [
        prune_with_tfmot(HAND_DEFAULT, weights, train, TFMOT_DEFAULT_FREQUENCY, workdir),
        prune_with_tfmot(careful_label(careful), weights, train, careful, workdir),
    ]
    return runs, copy_diff


def careful_label(frequency: int) -> str:
    return f"by hand: tfmot careful (freq {frequency})"


# --- measurements on the ONNX files ---------------------------------------------------------


def file_sizes(path: Path) -> tuple[int, int]:
    """(raw bytes, gzip -9 bytes) of the single-file model."""
    payload = path.read_bytes()
    return len(payload), len(gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0))


def float_weights(graph: onnx.GraphProto) -> list[np.ndarray]:
    """Every float tensor stored in the graph: initializers and Constant nodes."""
    tensors = list(graph.initializer)
    tensors += [
        attribute.t
        for node in graph.node
        if node.op_type == "Constant"
        for attribute in node.attribute
        if attribute.name == "value"
    ]
    arrays = [numpy_helper.to_array(t) for t in tensors]
    return [a for a in arrays if np.issubdtype(a.dtype, np.floating)]


def zero_counts(arrays: list[np.ndarray]) -> tuple[int, int]:
    """(elements, zeros)."""
    return sum(a.size for a in arrays), sum(int(np.count_nonzero(a == 0)) for a in arrays)


def make_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feed(session: ort.InferenceSession, x: np.ndarray) -> dict[str, np.ndarray]:
    return {session.get_inputs()[0].name: x}


def accuracy(session: ort.InferenceSession, val: Split) -> float:
    logits = session.run(None, feed(session, val[0]))[0]
    return float(np.mean(np.argmax(logits, axis=-1) == val[1]))


def p50_latencies(
    sessions: dict[str, ort.InferenceSession], sample: np.ndarray
) -> dict[str, float]:
    """Median ms per batch-1 inference; every round runs all models, alternating the order."""
    feeds = {label: feed(session, sample) for label, session in sessions.items()}
    for _ in range(WARMUP_RUNS):
        for label, session in sessions.items():
            session.run(None, feeds[label])
    times: dict[str, list[float]] = {label: [] for label in sessions}
    labels = list(sessions)
    for index in range(TIMED_RUNS):
        for label in labels if index % 2 == 0 else labels[::-1]:
            started = time.perf_counter()
            sessions[label].run(None, feeds[label])
            times[label].append((time.perf_counter() - started) * 1000.0)
    return {label: float(np.median(values)) for label, values in times.items()}


def measure(candidates: list[Candidate], val: Split) -> dict[str, Measured]:
    """Accuracy, sparsity, sizes and latency of every model that exported."""
    paths = {c.label: c.path for c in candidates if c.path is not None}
    sessions = {label: make_session(path) for label, path in paths.items()}
    latencies = p50_latencies(sessions, np.ascontiguousarray(val[0][:1]))
    results = {}
    for label, path in paths.items():
        raw, packed = file_sizes(path)
        graph = onnx.load(str(path)).graph
        arrays = float_weights(graph)
        weights_payload = b"".join(a.tobytes() for a in arrays)
        params, zeros = zero_counts(arrays)
        kernel_params, kernel_zeros = zero_counts([a for a in arrays if a.ndim >= 2])
        results[label] = Measured(
            accuracy=accuracy(sessions[label], val),
            params=params,
            sparsity=zeros / params,
            kernel_params=kernel_params,
            kernel_sparsity=kernel_zeros / kernel_params,
            size_bytes=raw,
            gzip_bytes=packed,
            weights_gzip_bytes=len(
                gzip.compress(weights_payload, compresslevel=GZIP_LEVEL, mtime=0)
            ),
            nodes=len(graph.node),
            p50_ms=latencies[label],
        )
    return results


def reaches_target(measured: Measured) -> bool:
    return measured.kernel_sparsity * 100 >= SPARSITY * 100 - SPARSITY_TOLERANCE_POINTS


# --- output ---------------------------------------------------------------------------------

Row = tuple[str, list[str]]
MISSING = "-"


def print_table(headers: list[str], rows: list[Row]) -> None:
    first = max(len(name) for name, _ in rows)
    filled = [cells for _, cells in rows if cells]
    widths = [max(len(h), *(len(cells[i]) for cells in filled)) for i, h in enumerate(headers)]

    def line(name: str, cells: list[str]) -> str:
        padded = (cell.rjust(width) for cell, width in zip(cells, widths, strict=True))
        return "  ".join([name.ljust(first), *padded])

    header = line("", headers)
    print(header)
    print("-" * len(header))
    for name, cells in rows:
        print(line(name, cells) if cells else name)


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.3f}x"


def pruning_rows(
    labels: list[str], report: Report, runs: list[HandRun], steps_per_epoch: int
) -> list[Row]:
    """How each pruned model's masks moved: frequency and number of mask updates."""
    record = report.passes[0]
    schedule = compress.load_recipe(RECIPE).passes[0].schedule
    assert schedule is not None
    own = {
        COMPRESS: (
            str(record.get("engine", "?")),
            f"{schedule.update_every(steps_per_epoch)} "
            f"(end {schedule.end_step_for(steps_per_epoch)})",
            str(record.get("mask_updates", "?")),
        ),
        **{
            run.candidate.label: (
                "tfmot",
                f"{run.frequency} (end {run.end_step})",
                str(run.mask_updates),
            )
            for run in runs
        },
    }
    return [
        ("pruning engine", [own[label][0] if label in own else MISSING for label in labels]),
        ("frequency (steps)", [own[label][1] if label in own else MISSING for label in labels]),
        ("mask updates", [own[label][2] if label in own else MISSING for label in labels]),
    ]


def metric_rows(
    labels: list[str], results: dict[str, Measured], errors: dict[str, str]
) -> list[Row]:
    def cells(show: Callable[[Measured], str]) -> list[str]:
        return [show(results[label]) if label in results else MISSING for label in labels]

    return [
        ("export", ["failed*" if label in errors else "ok" for label in labels]),
        ("val accuracy", cells(lambda m: f"{m.accuracy:.2%}")),
        ("kernel weights", cells(lambda m: f"{m.kernel_params:,}")),
        ("kernel sparsity", cells(lambda m: f"{m.kernel_sparsity:.2%}")),
        ("all float weights", cells(lambda m: f"{m.params:,}")),
        ("overall sparsity", cells(lambda m: f"{m.sparsity:.2%}")),
        ("size (bytes)", cells(lambda m: f"{m.size_bytes:,}")),
        ("gzip -9 size (bytes)", cells(lambda m: f"{m.gzip_bytes:,}")),
        ("  of the float weights alone", cells(lambda m: f"{m.weights_gzip_bytes:,}")),
        ("ONNX graph nodes", cells(lambda m: str(m.nodes))),
        ("p50 latency, batch 1 (ms)", cells(lambda m: f"{m.p50_ms:.4f}")),
    ]


def comparison_rows(
    title: str, labels: list[str], results: dict[str, Measured], reference: str
) -> list[Row]:
    base = results.get(reference)

    def cells(show: Callable[[Measured, Measured], str]) -> list[str]:
        return [
            show(results[label], base) if base and label in results else MISSING for label in labels
        ]

    return [
        (title, []),
        ("  size", cells(lambda m, b: ratio(m.size_bytes, b.size_bytes))),
        ("  gzip size", cells(lambda m, b: ratio(m.gzip_bytes, b.gzip_bytes))),
        (
            "  gzip size, float weights alone",
            cells(lambda m, b: ratio(m.weights_gzip_bytes, b.weights_gzip_bytes)),
        ),
        ("  p50 latency", cells(lambda m, b: ratio(m.p50_ms, b.p50_ms))),
        ("  accuracy (points)", cells(lambda m, b: f"{(m.accuracy - b.accuracy) * 100:+.2f}")),
        (
            "  kernel sparsity (points)",
            cells(lambda m, b: f"{(m.kernel_sparsity - b.kernel_sparsity) * 100:+.2f}"),
        ),
    ]


def report_rows(labels: list[str], report: Report) -> list[Row]:
    """The figures compress.apply itself reported, under the dense and compress columns."""
    own: dict[str, ModelMetrics] = {DENSE: report.baseline, COMPRESS: report.compressed}

    def cells(show: Callable[[ModelMetrics], str]) -> list[str]:
        return [show(own[label]) if label in own else MISSING for label in labels]

    return [
        ("as reported by compress.apply", []),
        ("  val accuracy", cells(lambda m: MISSING if m.accuracy is None else f"{m.accuracy:.2%}")),
        ("  params", cells(lambda m: f"{m.params:,}")),
        ("  weight sparsity", cells(lambda m: f"{m.sparsity:.2%}")),
        ("  size (bytes)", cells(lambda m: f"{m.size_bytes:,}")),
        ("  gzip -9 size (bytes)", cells(lambda m: f"{m.size_gzip_bytes:,}")),
        (
            "  p50 latency (ms)",
            cells(lambda m: f"{m.latency_ms.p50:.4f}" if m.latency_ms else MISSING),
        ),
        ("  exporter", cells(lambda m: m.export.exporter if m.export else MISSING)),
    ]


def reference_run(runs: list[HandRun], results: dict[str, Measured]) -> HandRun | None:
    """The by-hand run the targets compare against: the first that reaches the target
    sparsity (the default-frequency run when it does)."""
    for run in runs:
        measured = results.get(run.candidate.label)
        if measured is not None and reaches_target(measured):
            return run
    return None


def print_sparsity_verdicts(runs: list[HandRun], results: dict[str, Measured]) -> None:
    print(f"\nDoes each by-hand run reach {SPARSITY:.0%} kernel sparsity?")
    for run in runs:
        label = run.candidate.label
        measured = results.get(label)
        if measured is None:
            print(f"  {label}: export failed, not measured")
            continue
        verdict = "yes" if reaches_target(measured) else "NO"
        steps = list(range(0, run.end_step + 1, run.frequency))
        if len(steps) == 1:
            shown = f"on step {steps[0]} only"
        else:
            shown = f"on steps {steps[0]}, {steps[1]}, ..., {steps[-1]} ({len(steps)} updates)"
        print(
            f"  {label}: {verdict}, {measured.kernel_sparsity:.2%}; PolynomialDecay end_step "
            f"{run.end_step}, frequency {run.frequency}: masks updated {shown}"
        )
        if not reaches_target(measured) and run.end_step % run.frequency:
            last = steps[-1]
            # PolynomialDecay's default power is 3
            scheduled = SPARSITY * (1 - (1 - last / run.end_step) ** 3)
            print(
                f"    pitfall: frequency {run.frequency} does not divide end_step {run.end_step}, "
                f"so the last mask update is at step {last}, where the schedule asks only "
                f"{scheduled:.0%}: the final {SPARSITY:.0%} is never applied, with no error"
            )


def print_targets(runs: list[HandRun], results: dict[str, Measured]) -> None:
    pruned = results.get(COMPRESS)
    reference = reference_run(runs, results)
    print("\nTargets (compress-pruned model vs the by-hand tfmot model, measured here):")
    if pruned is None:
        print("  MISSED  the compress model was not measured")
        return
    if reference is None:
        print(
            f"  MISSED  no by-hand run reached {SPARSITY:.0%} kernel sparsity: nothing to "
            "compare against"
        )
        return
    hand = results[reference.candidate.label]
    print(f"  (against '{reference.candidate.label}', the by-hand run that reaches {SPARSITY:.0%})")
    gap = (pruned.kernel_sparsity - hand.kernel_sparsity) * 100
    drop = (hand.accuracy - pruned.accuracy) * 100
    checks = [
        (
            f"same sparsity: kernels {pruned.kernel_sparsity:.2%} vs {hand.kernel_sparsity:.2%}, "
            f"{gap:+.2f} points (within {SAME_SPARSITY_POINTS:.1f})",
            abs(gap) <= SAME_SPARSITY_POINTS,
        ),
        (
            f"accuracy within {MAX_ACCURACY_GAP_POINTS:.1f} points of by hand (or above): "
            f"{pruned.accuracy:.2%} vs {hand.accuracy:.2%}, {-drop:+.2f} points",
            drop <= MAX_ACCURACY_GAP_POINTS,
        ),
        (
            f"gzip size no larger than by hand: {pruned.gzip_bytes:,} vs {hand.gzip_bytes:,} "
            f"bytes ({ratio(pruned.gzip_bytes, hand.gzip_bytes)})",
            pruned.gzip_bytes <= hand.gzip_bytes,
        ),
    ]
    for text, met in checks:
        print(f"  {'MET    ' if met else 'MISSED '} {text}")
    if pruned.gzip_bytes > hand.gzip_bytes:
        weights_gap = pruned.weights_gzip_bytes - hand.weights_gzip_bytes
        print(
            f"  (of the {pruned.gzip_bytes - hand.gzip_bytes:+,} gzip bytes, the float weights "
            f"alone account for {weights_gap:+,}; the rest is the graph: {pruned.nodes} nodes "
            f"from compress's Keras 3 export vs {hand.nodes} from tf2onnx on the tf-keras model)"
        )


def print_wall_times(
    report: Report, compress_seconds: float, runs: list[HandRun], setup_seconds: float
) -> None:
    width = max(len(COMPRESS + ".apply"), *(len(run.candidate.label) for run in runs))
    print(
        "\nWall time (TensorFlow, Keras 3, tf-keras, tfmot and tf2onnx are imported before "
        "either starts)"
    )
    print(
        f"  {'compress.apply':<{width}}  {compress_seconds:5.1f} s  prune + fine-tune pass "
        f"{report.passes[0]['seconds']:.1f} s, plus loading, 2 exports with parity checks, "
        "measuring, report"
    )
    for index, run in enumerate(runs):
        first = " (the first tf-keras/tfmot run also pays their one-time start-up)"
        print(
            f"  {run.candidate.label:<{width}}  {run.seconds['total']:5.1f} s  fine-tune "
            f"{run.seconds['fine-tune']:.1f} s, plus the tf-keras copy and the tf2onnx export"
            f"{first if index == 0 else ''}"
        )
    print(
        f"  {'':<{width}}  {setup_seconds:5.1f} s  by hand, once: loading the Keras 3 weights "
        "and checking the tf-keras copy"
    )


def main() -> None:
    keras.utils.set_random_seed(SEED)
    data = load_source(DATA_SOURCE).load_nhwc()
    with tempfile.TemporaryDirectory(prefix="prune-keras-") as tmp:
        workdir = Path(tmp)
        report, from_compress, compress_seconds = run_compress(workdir / "compress")
        started = time.perf_counter()
        runs, copy_diff = prune_by_hand(data, workdir / "by_hand")
        hand_seconds = time.perf_counter() - started
        candidates = [*from_compress, *(run.candidate for run in runs)]
        results = measure(candidates, data["val"])

    labels = [c.label for c in candidates]
    errors = {c.label: c.error for c in candidates if c.error}
    print(
        f"Keras quickstart digits CNN, {len(data['val'][0])} val images; tensorflow "
        f"{tf.__version__}, keras {keras.__version__}, tf-keras {tf_keras.__version__}, tfmot "
        f"{tfmot.__version__}, tf2onnx {tf2onnx.__version__}, onnxruntime {ort.__version__}, "
        f"{platform.machine()}; inference with 1 thread; torch imported: "
        f"{'yes' if 'torch' in sys.modules else 'no'}"
    )
    print(
        f"tf-keras copy of the trained Keras 3 model: max abs logit difference {copy_diff:.2e} "
        "on val\n"
    )
    print_table(
        labels,
        [
            *pruning_rows(labels, report, runs, math.ceil(len(data["train"][0]) / BATCH_SIZE)),
            *metric_rows(labels, results, errors),
            *comparison_rows("vs dense", labels, results, DENSE),
            *(
                comparison_rows(f"vs {ref.candidate.label}", labels, results, ref.candidate.label)
                if (ref := reference_run(runs, results))
                else []
            ),
            *report_rows(labels, report),
        ],
    )
    for label, error in errors.items():
        print(f"* {label}: export failed: {error}")
    print_sparsity_verdicts(runs, results)
    print_wall_times(
        report, compress_seconds, runs, hand_seconds - sum(run.seconds["total"] for run in runs)
    )
    print_targets(runs, results)


if __name__ == "__main__":
    main()
