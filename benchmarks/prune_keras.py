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

    .venv/bin/python benchmarks/prune_keras.py [--quick] [--out DIR]

`--quick` fine-tunes both approaches for 1 epoch (the sparsity ramp over all of it), runs the
careful tfmot setup alone (each tfmot fit costs seconds of graph building) and times 3 warm-up and
10 timed rounds, for a check of the code in seconds; its figures are not the benchmark's.
"""

from __future__ import annotations

import os

# tfmot needs tf.keras to be tf-keras (Keras 2): decided when TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from _shared import common, toolkit

import compress
from compress import Report

# TensorFlow's C++ start-up logs to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL applies.
with toolkit.filtered_native_stderr():
    import keras
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf2onnx
    import tf_keras

RECIPE = "keras_quickstart.yaml"
MODEL_SOURCE = common.MODELS / "keras_digits_cnn.py"
WEIGHTS = common.MODELS / "keras_digits_cnn.weights.h5"

#: PolynomialDecay's default `frequency`: what a by-hand user gets without thinking about it.
TFMOT_DEFAULT_FREQUENCY = 100
#: The careful by-hand setup aims at about 4 mask updates per epoch.
CAREFUL_UPDATES_PER_EPOCH = 4

#: A run "reaches" the target sparsity within this many points (the toolkit's own tolerance).
SPARSITY_TOLERANCE_POINTS = 0.5
SAME_SPARSITY_POINTS = 0.5
MAX_ACCURACY_GAP_POINTS = 0.5

HAND_DEFAULT = f"by hand: tfmot default (freq {TFMOT_DEFAULT_FREQUENCY})"

#: The loggers of tf2onnx and tfmot (through TensorFlow and absl) that `quiet` silences.
TF_LOGGERS = ("tf2onnx", "tensorflow", "absl")


@dataclass
class HandRun:
    """One by-hand tfmot run: its exported model and how it was pruned."""

    candidate: common.Candidate
    frequency: int
    end_step: int
    mask_updates: int
    seconds: dict[str, float]


@dataclass(kw_only=True)
class KernelMeasured(common.Measured):
    """The common figures (params and sparsity over Constant-node tensors too), plus the
    kernels' (float weights with 2 or more dimensions), the float weights' gzip size and the
    graph's size."""

    kernel_params: int
    kernel_sparsity: float
    weights_gzip_bytes: int
    nodes: int


# --- the two approaches ---------------------------------------------------------------------


def load_keras3_cnn() -> keras.Model:
    """The trained Keras 3 model, as the recipe loads it."""
    model = common.load_source(MODEL_SOURCE).build()
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
    label: str,
    weights: list[np.ndarray],
    train: common.Split,
    frequency: int,
    workdir: Path,
    ft: common.FineTune,
) -> HandRun:
    """The tfmot recipe on a fresh tf-keras copy of the model, exported with tf2onnx.

    A fresh copy each time: clone_model's clone_function wraps the original layers, so the
    pruned model shares (and trains) the weights of the model it was cloned from.
    """
    started = time.perf_counter()
    tf_keras.utils.set_random_seed(ft.seed)
    steps_per_epoch = math.ceil(len(train[0]) / ft.batch_size)
    end_step = ft.ramp_epochs * steps_per_epoch
    sparsity = tfmot.sparsity.keras
    schedule = sparsity.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=ft.sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )

    def wrap(layer: Any) -> Any:
        if layer.name in ft.layers:
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    with common.quiet(*TF_LOGGERS):
        base = build_tf_keras_cnn(weights)
        model = tf_keras.models.clone_model(base, clone_function=wrap)
        model.compile(
            optimizer=tf_keras.optimizers.Adam(learning_rate=ft.lr),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(
            train[0],
            train[1],
            batch_size=ft.batch_size,
            epochs=ft.epochs,
            shuffle=True,
            verbose=0,
            callbacks=[sparsity.UpdatePruningStep()],
        )
        stripped = sparsity.strip_pruning(model)
    tuned = time.perf_counter()
    path = workdir / f"tfmot_freq{frequency}.onnx"
    candidate = export_tf2onnx(label, stripped, path, ft.opset)
    finished = time.perf_counter()
    return HandRun(
        candidate=candidate,
        frequency=frequency,
        end_step=end_step,
        # tfmot prunes on steps begin_step + k * frequency that are <= end_step
        mask_updates=end_step // frequency + 1,
        seconds={"fine-tune": tuned - started, "total": finished - started},
    )


def export_tf2onnx(label: str, model: tf_keras.Model, path: Path, opset: int) -> common.Candidate:
    """tf2onnx with a dynamic batch; a failure is recorded, not raised."""
    signature = [tf.TensorSpec((None, 8, 8, 1), tf.float32, name="input")]
    return common.try_export(
        label,
        path,
        lambda: tf2onnx.convert.from_keras(
            model, input_signature=signature, opset=opset, output_path=str(path)
        ),
        *TF_LOGGERS,
    )


def prune_by_hand(
    data: dict[str, common.Split], workdir: Path, ft: common.FineTune, quick: bool
) -> tuple[list[HandRun], float]:
    """Both by-hand runs (with `quick`, the careful one alone); also how closely the tf-keras
    copy matches the Keras 3 model."""
    workdir.mkdir(parents=True, exist_ok=True)
    weights = load_keras3_cnn().get_weights()
    val_x = data["val"][0]
    with common.quiet(*TF_LOGGERS):
        copy_diff = float(
            np.max(
                np.abs(
                    np.asarray(load_keras3_cnn()(val_x, training=False))
                    - build_tf_keras_cnn(weights).predict(val_x, verbose=0)
                )
            )
        )
    train = data["train"]
    steps_per_epoch = math.ceil(len(train[0]) / ft.batch_size)
    careful = careful_frequency(steps_per_epoch, ft.ramp_epochs * steps_per_epoch)
    runs = (
        []
        if quick
        else [prune_with_tfmot(HAND_DEFAULT, weights, train, TFMOT_DEFAULT_FREQUENCY, workdir, ft)]
    )
    runs.append(prune_with_tfmot(careful_label(careful), weights, train, careful, workdir, ft))
    return runs, copy_diff


def careful_label(frequency: int) -> str:
    return f"by hand: tfmot careful (freq {frequency})"


# --- measurements on the ONNX files ---------------------------------------------------------


def measure_kernels(
    candidates: list[common.Candidate], val: common.Split, rounds: tuple[int, int]
) -> dict[str, KernelMeasured]:
    """The common measurements of every model that exported, Constant-node tensors counted as
    weights, plus the kernels' sparsity, the float weights' gzip size and the graph's nodes."""
    paths = common.exported(candidates)
    results = {}
    for label, measured in common.measure(paths, val, rounds=rounds, constants=True).items():
        graph = onnx.load(str(paths[label])).graph
        arrays = common.float_weights(graph, constants=True)
        kernel_params, kernel_zeros = common.zero_counts([a for a in arrays if a.ndim >= 2])
        results[label] = KernelMeasured(
            **asdict(measured),
            kernel_params=kernel_params,
            kernel_sparsity=kernel_zeros / kernel_params,
            weights_gzip_bytes=common.gzip_size(b"".join(a.tobytes() for a in arrays)),
            nodes=len(graph.node),
        )
    return results


def reaches_target(measured: KernelMeasured, sparsity: float) -> bool:
    return measured.kernel_sparsity * 100 >= sparsity * 100 - SPARSITY_TOLERANCE_POINTS


# --- output ---------------------------------------------------------------------------------


def pruning_rows(
    labels: list[str],
    report: Report,
    recipe: common.Recipe,
    runs: list[HandRun],
    steps_per_epoch: int,
) -> list[common.Row]:
    """How each pruned model's masks moved: frequency and number of mask updates."""
    record = report.passes[0]
    schedule = compress.load_recipe(recipe).passes[0].schedule
    assert schedule is not None
    own = {
        common.COMPRESS: (
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
    cells = common.column_cells(labels, own)
    return [
        ("pruning engine", cells(lambda engine: engine[0])),
        ("frequency (steps)", cells(lambda engine: engine[1])),
        ("mask updates", cells(lambda engine: engine[2])),
    ]


def metric_rows(
    labels: list[str], results: dict[str, KernelMeasured], errors: dict[str, str]
) -> list[common.Row]:
    return common.measured_rows(
        labels,
        results,
        errors,
        params=("all float weights", "overall sparsity"),
        before_params=[
            ("kernel weights", lambda m: f"{m.kernel_params:,}"),
            ("kernel sparsity", lambda m: f"{m.kernel_sparsity:.2%}"),
        ],
        after_gzip=[
            ("  of the float weights alone", lambda m: f"{m.weights_gzip_bytes:,}"),
            ("ONNX graph nodes", lambda m: str(m.nodes)),
        ],
    )


def comparison_rows(
    title: str, labels: list[str], results: dict[str, KernelMeasured], reference: str
) -> list[common.Row]:
    return common.comparison_rows(
        title,
        labels,
        results,
        reference,
        after_gzip=[
            (
                "  gzip size, float weights alone",
                lambda m, b: common.ratio(m.weights_gzip_bytes, b.weights_gzip_bytes),
            )
        ],
        after=[
            (
                "  kernel sparsity (points)",
                lambda m, b: common.points(m.kernel_sparsity - b.kernel_sparsity),
            )
        ],
    )


def report_rows(labels: list[str], report: Report) -> list[common.Row]:
    """The figures compress.apply itself reported, under the dense and compress columns."""
    own = {common.DENSE: report.baseline, common.COMPRESS: report.compressed}
    cells = common.column_cells(labels, own)
    return [
        *common.reported_rows(labels, own),
        ("  exporter", cells(lambda m: m.export.exporter if m.export else common.MISSING)),
    ]


def reference_run(
    runs: list[HandRun], results: dict[str, KernelMeasured], sparsity: float
) -> HandRun | None:
    """The by-hand run the targets compare against: the first that reaches the target
    sparsity (the default-frequency run when it does)."""
    for run in runs:
        measured = results.get(run.candidate.label)
        if measured is not None and reaches_target(measured, sparsity):
            return run
    return None


def print_sparsity_verdicts(
    runs: list[HandRun], results: dict[str, KernelMeasured], sparsity: float
) -> None:
    print(f"\nDoes each by-hand run reach {sparsity:.0%} kernel sparsity?")
    for run in runs:
        label = run.candidate.label
        measured = results.get(label)
        if measured is None:
            print(f"  {label}: export failed, not measured")
            continue
        reached = "yes" if reaches_target(measured, sparsity) else "NO"
        steps = list(range(0, run.end_step + 1, run.frequency))
        if len(steps) == 1:
            shown = f"on step {steps[0]} only"
        else:
            shown = f"on steps {steps[0]}, {steps[1]}, ..., {steps[-1]} ({len(steps)} updates)"
        print(
            f"  {label}: {reached}, {measured.kernel_sparsity:.2%}; PolynomialDecay end_step "
            f"{run.end_step}, frequency {run.frequency}: masks updated {shown}"
        )
        if not reaches_target(measured, sparsity) and run.end_step % run.frequency:
            last = steps[-1]
            # PolynomialDecay's default power is 3
            scheduled = sparsity * (1 - (1 - last / run.end_step) ** 3)
            print(
                f"    pitfall: frequency {run.frequency} does not divide end_step {run.end_step}, "
                f"so the last mask update is at step {last}, where the schedule asks only "
                f"{scheduled:.0%}: the final {sparsity:.0%} is never applied, with no error"
            )


def print_targets(runs: list[HandRun], results: dict[str, KernelMeasured], sparsity: float) -> None:
    pruned = results.get(common.COMPRESS)
    reference = reference_run(runs, results, sparsity)
    print("\nTargets (compress-pruned model vs the by-hand tfmot model, measured here):")
    if pruned is None:
        common.verdict(False, "the compress model was not measured")
        return
    if reference is None:
        common.verdict(
            False,
            f"no by-hand run reached {sparsity:.0%} kernel sparsity: nothing to compare against",
        )
        return
    hand = results[reference.candidate.label]
    print(f"  (against '{reference.candidate.label}', the by-hand run that reaches {sparsity:.0%})")
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
            f"bytes ({common.ratio(pruned.gzip_bytes, hand.gzip_bytes)})",
            pruned.gzip_bytes <= hand.gzip_bytes,
        ),
    ]
    for text, met in checks:
        common.verdict(met, text)
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
    width = max(len(common.COMPRESS + ".apply"), *(len(run.candidate.label) for run in runs))
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
    parser = common.arguments(__doc__, "1 epoch, the careful tfmot run alone, 3 + 10 rounds")
    args = parser.parse_args()
    recipes, ft = common.quickstart_recipes(args.quick)
    recipe = recipes[RECIPE]
    rounds = common.QUICK_ROUNDS if args.quick else common.DIGITS_ROUNDS
    keras.utils.set_random_seed(ft.seed)
    data = common.load_source(common.DIGITS_DATA).load_nhwc()
    with common.output_dir(args.out, "prune-keras-") as workdir:
        report, from_compress, compress_seconds = common.run_compress(recipe, workdir / "compress")
        started = time.perf_counter()
        runs, copy_diff = prune_by_hand(data, workdir / "by_hand", ft, args.quick)
        hand_seconds = time.perf_counter() - started
        candidates = [*from_compress, *(run.candidate for run in runs)]
        results = measure_kernels(candidates, data["val"], rounds)

    labels = [c.label for c in candidates]
    errors = common.export_errors(candidates)
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
    steps_per_epoch = math.ceil(len(data["train"][0]) / ft.batch_size)
    reference = reference_run(runs, results, ft.sparsity)
    common.print_table(
        labels,
        [
            *pruning_rows(labels, report, recipe, runs, steps_per_epoch),
            *metric_rows(labels, results, errors),
            *comparison_rows("vs dense", labels, results, common.DENSE),
            *(
                comparison_rows(
                    f"vs {reference.candidate.label}", labels, results, reference.candidate.label
                )
                if reference
                else []
            ),
            *report_rows(labels, report),
        ],
    )
    common.print_export_errors(errors)
    print_sparsity_verdicts(runs, results, ft.sparsity)
    print_wall_times(
        report, compress_seconds, runs, hand_seconds - sum(run.seconds["total"] for run in runs)
    )
    print_targets(runs, results, ft.sparsity)


if __name__ == "__main__":
    main()
