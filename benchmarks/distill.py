"""Does `type: distill` help? Two comparisons on scikit-learn's 8x8 digits, each arm trained
with the same epochs, learning rate, batch size and seed.

1. Student from a teacher (recipes/nano_distill_int4.yaml): the nano student (models/
   digits_nano.py, a 64->32->10 MLP, 2,410 parameters) trained

   a. with distillation from the digits CNN (models/digits_cnn.py + digits_cnn.safetensors):
      the recipe's distill pass (T=4, alpha=0.7), without its INT4 quantize pass;
   b. on labels alone: the same recipe with `alpha: 0.0` (pure cross-entropy);
   c. the teacher itself (the baseline ONNX file that run a exported);
   d. the full recipe (student + INT4 weight-only), as its report states it.

   a, b and c are measured here from their ONNX files: val accuracy (onnxruntime, CPU),
   float parameters, raw and gzip -9 size, and p50 latency at batch 1 with 1 thread (20 warm-up
   and 200 timed rounds, the three models interleaved, the order alternating). The nano
   builder seeds its own initialisation (torch.manual_seed(0)), so `train.seed` changes the
   batch order only. A 359-image val set moves 0.28 points per image, so a and b are also
   trained with train.seed 0, 1 and 2, and the target is judged on the mean of the 3 seeds.

2. Recovery (recipes/distill_recover.yaml, run as is): the digits CNN pruned to 90% (global
   magnitude, polynomial schedule, 8 epochs) with the dense model as teacher (T=2, alpha=0.5),
   against the same recipe without the distill pass (labels only) and the dense model:
   accuracy, sparsity and gzip size measured from the ONNX files.

3. Targets, MET or MISSED with their figures: the distilled student beats the label-only
   student (mean of 3 seeds); the recovered 90% model is within 1 point of the dense model.
   Whether recovery distillation beats labels only is printed as information, not a target.

Variant recipes are written as YAML into a temporary directory with absolute model and data
paths. Training runs with one torch thread.

Run (from any directory; the repository root is found from this file; about 1.5 minutes on 2
cores):

    .venv/bin/python benchmarks/distill.py [--quick] [--out DIR]

`--quick` trains every recipe for 1 epoch (prune schedules ramping over all of it), with
one train.seed, the TorchScript exporter and 3 warm-up and 10 timed rounds, for a check of the
code in seconds; its figures are not the benchmark's.
"""

from __future__ import annotations

import copy
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort
import torch
from _shared import common

import compress
from compress import Report

STUDENT_RECIPE = common.RECIPES / "nano_distill_int4.yaml"
RECOVER_RECIPE = common.RECIPES / "distill_recover.yaml"

SEEDS, QUICK_SEEDS = (0, 1, 2), (0,)
#: The seed whose models fill the student table (and is one of the 3 of the mean).
TABLE_SEED = 0
#: torch threads for training and export: on a small machine the default (every core) can make
#: these tiny models' training many times slower.
TORCH_THREADS = 1

MAX_RECOVERY_DROP_POINTS = 1.0

DISTILLED, LABELS, TEACHER, INT4 = "a: distilled", "b: labels only", "c: teacher", "d: + INT4"
RECOVERED, PRUNED_LABELS = "pruned 90% + distill", "pruned 90%, labels"


@dataclass
class Run:
    """One compress.apply run: its report and wall time."""

    report: Report
    seconds: float

    @property
    def onnx(self) -> Path:
        return Path(self.report.artifacts.onnx)

    @property
    def baseline_onnx(self) -> Path:
        assert self.report.artifacts.baseline_onnx is not None
        return Path(self.report.artifacts.baseline_onnx)


# --- recipes ----------------------------------------------------------------------------------


def distill_pass(recipe: common.Recipe) -> dict:
    return next(item for item in recipe["passes"] if item["type"] == "distill")


def student_variant(base: common.Recipe, alpha: float | None, seed: int) -> common.Recipe:
    """The nano recipe without its quantize pass; `alpha` replaces the distill weight."""
    recipe = copy.deepcopy(base)
    recipe["passes"] = [item for item in recipe["passes"] if item["type"] != "quantize"]
    if alpha is not None:
        distill_pass(recipe)["alpha"] = alpha
    recipe["train"]["seed"] = seed
    suffix = "labels-only" if alpha == 0.0 else "distilled"
    recipe["name"] = f"digits-nano-{suffix}-seed{seed}"
    return recipe


def without_distill(base: common.Recipe) -> common.Recipe:
    recipe = copy.deepcopy(base)
    recipe["passes"] = [item for item in recipe["passes"] if item["type"] != "distill"]
    recipe["name"] = f"{recipe['name']}-labels-only"
    return recipe


def apply_recipe(recipe: common.Recipe, workdir: Path, name: str) -> Run:
    """Run a recipe (as `common.read_recipe` gives it), exporting into workdir/name."""
    output = workdir / name
    recipe = {**recipe, "export": {**recipe["export"], "path": str(output / "model.onnx")}}
    started = time.perf_counter()
    report = compress.apply(recipe, output_dir=output, progress=False, base_dir=workdir)
    return Run(report, time.perf_counter() - started)


# --- measurements on the ONNX files -----------------------------------------------------------


def val_accuracy(path: Path, val: common.Split) -> float:
    return common.accuracy(common.make_session(path), val)


# --- output -----------------------------------------------------------------------------------


def measured_rows(
    labels: list[str], results: dict[str, common.Measured], reference: str
) -> list[common.Row]:
    cells = common.column_cells(labels, results)
    compared = common.comparison_cells(labels, results, reference)
    return [
        ("measured here", []),
        ("  val accuracy", cells(lambda m: f"{m.accuracy:.2%}")),
        ("  float params", cells(lambda m: f"{m.params:,}")),
        ("  ONNX size (bytes)", cells(lambda m: f"{m.size_bytes:,}")),
        ("  gzip -9 size (bytes)", cells(lambda m: f"{m.gzip_bytes:,}")),
        ("  p50 latency, batch 1 (ms)", cells(common.p50_text)),
        (f"vs {reference}", []),
        ("  accuracy (points)", compared(lambda m, b: common.points(m.accuracy - b.accuracy))),
        ("  params", compared(lambda m, b: common.ratio(m.params, b.params))),
        ("  ONNX size", compared(lambda m, b: common.ratio(m.size_bytes, b.size_bytes))),
        ("  gzip size", compared(lambda m, b: common.ratio(m.gzip_bytes, b.gzip_bytes))),
        ("  p50 latency", compared(common.p50_ratio)),
    ]


def mean(values: list[float]) -> float:
    return statistics.fmean(values)


def spread(values: Sequence[float]) -> str:
    """The standard deviation in points (MISSING for a single seed)."""
    return f"{statistics.stdev(values) * 100:.2f} pts" if len(values) > 1 else common.MISSING


def print_seeds(distilled: dict[int, float], labels: dict[int, float]) -> None:
    seeds = list(distilled)
    print(f"\nStudent val accuracy per train.seed (a vs b; {len(seeds)} seeds, batch order only)")
    headers = [f"seed {seed}" for seed in seeds] + ["mean", "std"]

    def cells(values: dict[int, float]) -> list[str]:
        series = [values[seed] for seed in seeds]
        return [*(f"{value:.2%}" for value in series), f"{mean(series):.2%}", spread(series)]

    differences = [distilled[seed] - labels[seed] for seed in seeds]
    common.print_table(
        headers,
        [
            (DISTILLED, cells(distilled)),
            (LABELS, cells(labels)),
            (
                "a - b (points)",
                [
                    *(common.points(value) for value in differences),
                    common.points(mean(differences)),
                    spread(differences),
                ],
            ),
        ],
    )


def print_recovery(results: dict[str, common.Measured], runs: dict[str, Run]) -> None:
    labels = [RECOVERED, PRUNED_LABELS, common.DENSE]
    base = results[common.DENSE]

    def cells(show: Callable[[common.Measured], str]) -> list[str]:
        return [show(results[label]) for label in labels]

    def pass_sparsity(label: str) -> str:
        if label not in runs:
            return "0.00%"
        prune = next(p for p in runs[label].report.passes if p["type"] == "prune")
        return f"{prune['achieved_sparsity']:.2%}"

    def fidelity(label: str) -> str:
        if label not in runs or runs[label].report.fidelity is None:
            return common.MISSING
        return f"{runs[label].report.fidelity.value:.4f}"

    print(f"\n2. Recovery: {RECOVER_RECIPE.name} (as is) vs without its distill pass vs dense")
    common.print_table(
        labels,
        [
            ("val accuracy", cells(lambda m: f"{m.accuracy:.2%}")),
            ("  vs dense (points)", cells(lambda m: common.points(m.accuracy - base.accuracy))),
            ("top-1 agreement with dense", [fidelity(label) for label in labels]),
            ("sparsity, pruned weights", [pass_sparsity(label) for label in labels]),
            ("sparsity, all float params", cells(lambda m: f"{m.sparsity:.2%}")),
            ("gzip -9 size (bytes)", cells(lambda m: f"{m.gzip_bytes:,}")),
            ("  vs dense", cells(lambda m: common.ratio(m.gzip_bytes, base.gzip_bytes))),
        ],
    )


def print_targets(
    distilled: dict[int, float],
    labels: dict[int, float],
    recovery: dict[str, common.Measured],
    val_size: int,
) -> None:
    mean_a, mean_b = mean(list(distilled.values())), mean(list(labels.values()))
    seeds = len(distilled)
    wins = sum(distilled[seed] > labels[seed] for seed in distilled)
    drop = (recovery[common.DENSE].accuracy - recovery[RECOVERED].accuracy) * 100
    checks = [
        (
            f"distilled student beats label-only student (mean of {seeds} seeds): "
            f"{mean_a:.2%} vs {mean_b:.2%} ({common.points(mean_a - mean_b)} points; "
            f"ahead on {wins} of {seeds} seeds)",
            mean_a > mean_b,
        ),
        (
            f"recovered 90% model within {MAX_RECOVERY_DROP_POINTS:.0f} point of dense: "
            f"drop {drop:.2f} points ({recovery[RECOVERED].accuracy:.2%} vs "
            f"{recovery[common.DENSE].accuracy:.2%})",
            drop <= MAX_RECOVERY_DROP_POINTS,
        ),
    ]
    print("\n3. Targets (accuracy measured here with onnxruntime on val)")
    for text, met in checks:
        common.verdict(met, text)
    gain = (recovery[RECOVERED].accuracy - recovery[PRUNED_LABELS].accuracy) * 100
    outcome = "beats" if gain > 0 else "ties" if gain == 0 else "does not beat"
    print(
        f"  (info) recovery distillation {outcome} labels only at 90% sparsity: "
        f"{recovery[RECOVERED].accuracy:.2%} vs {recovery[PRUNED_LABELS].accuracy:.2%} "
        f"({gain:+.2f} points, one seed; 1 image = {100 / val_size:.2f} points)"
    )


def main() -> None:
    parser = common.arguments(__doc__, "1 epoch, one seed, TorchScript, 3 + 10 rounds")
    args = parser.parse_args()
    torch.set_num_threads(TORCH_THREADS)
    started = time.perf_counter()
    data = common.load_source(common.DIGITS_DATA).load()
    val = data["val"]
    student_base = common.read_recipe(STUDENT_RECIPE, args.quick)
    recover_base = common.read_recipe(RECOVER_RECIPE, args.quick)
    seeds = QUICK_SEEDS if args.quick else SEEDS
    rounds = common.QUICK_ROUNDS if args.quick else common.DIGITS_ROUNDS

    distilled_acc: dict[int, float] = {}
    labels_acc: dict[int, float] = {}
    with common.output_dir(args.out, "distill-bench-") as workdir:
        table_runs: dict[str, Run] = {}
        for seed in seeds:
            a = apply_recipe(student_variant(student_base, None, seed), workdir, f"a-seed{seed}")
            b = apply_recipe(student_variant(student_base, 0.0, seed), workdir, f"b-seed{seed}")
            distilled_acc[seed] = val_accuracy(a.onnx, val)
            labels_acc[seed] = val_accuracy(b.onnx, val)
            if seed == TABLE_SEED:
                table_runs = {DISTILLED: a, LABELS: b}
        int4 = apply_recipe(student_base, workdir, "d-int4")
        student_paths = {
            DISTILLED: table_runs[DISTILLED].onnx,
            LABELS: table_runs[LABELS].onnx,
            TEACHER: table_runs[DISTILLED].baseline_onnx,
        }
        students = common.measure(student_paths, val, rounds=rounds)

        recovered = apply_recipe(recover_base, workdir, "recover")
        pruned_labels = apply_recipe(without_distill(recover_base), workdir, "recover-labels")
        recovery_paths = {
            RECOVERED: recovered.onnx,
            PRUNED_LABELS: pruned_labels.onnx,
            common.DENSE: recovered.baseline_onnx,
        }
        recovery = common.measure(recovery_paths, val, rounds=None)
    total = time.perf_counter() - started

    distill = distill_pass(student_base)
    print(
        f"Distillation on 8x8 digits, {len(val[0])} val images; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}, {platform.machine()}; 1 thread each\n"
    )
    print(
        f"1. Student: {STUDENT_RECIPE.name} without INT4 (T={distill['temperature']}, "
        f"alpha={distill['alpha']}) vs alpha=0.0 (labels only); train.seed {TABLE_SEED}, "
        f"{student_base['train']['epochs']} epochs, lr {student_base['train']['optimizer']['lr']}, "
        f"batch {student_base['data']['batch_size']}"
    )
    labels = [DISTILLED, LABELS, TEACHER, INT4]
    own = {
        DISTILLED: table_runs[DISTILLED].report.compressed,
        LABELS: table_runs[LABELS].report.compressed,
        TEACHER: table_runs[DISTILLED].report.baseline,
        INT4: int4.report.compressed,
    }
    common.print_table(
        labels,
        [
            *measured_rows(labels, students, TEACHER),
            *common.reported_rows(labels, own, size_name="ONNX size (bytes)", sparsity=False),
        ],
    )
    print(
        f"  d = the full {STUDENT_RECIPE.name} (distilled student + INT4 weight-only), figures "
        "from its own report; its latency comes from its own loop, not the one above."
    )
    print_seeds(distilled_acc, labels_acc)
    print_recovery(recovery, {RECOVERED: recovered, PRUNED_LABELS: pruned_labels})
    print_targets(distilled_acc, labels_acc, recovery, len(val[0]))
    print(f"\nTotal wall time {total:.0f} s ({2 * len(seeds) + 3} compress.apply runs)")


if __name__ == "__main__":
    main()
