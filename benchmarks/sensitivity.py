"""Sensitivity analysis and tuning against what a user would do instead, in one run.

1. allocation: the trained digits CNN pruned one-shot (no fine-tuning) to 70/80/90% overall:
   compress with `allocation: uniform`, with `allocation: sensitivity`, and by hand with
   torch.nn.utils.prune.global_unstructured (one L1 threshold over the four layers, the usual
   non-uniform alternative). Accuracy on the val split (onnxruntime for compress, torch for the
   peer: the same float model).
2. tune: `compress tune recipes/digits_tune.yaml` (accuracy_drop <= 1 point, one fine-tune epoch
   per trial, at most 12 trials) against the by-hand search a user runs: a binary search of one
   uniform level over the same recipe, and of one global threshold (scope: global), each with the
   same 12-trial budget and 1-point resolution; then `compress apply tuned.yaml` to check that it
   reproduces the best trial.
3. minilm: `compress analyze recipes/minilm_sensitivity.yaml --samples 128` (real
   all-MiniLM-L6-v2, dynamic INT8, each of the 36 MatMuls quantized alone and reverted alone),
   timed, with the top five nodes.

Run (from any directory):

    .venv/bin/python benchmarks/sensitivity.py [--only allocation|tune|minilm] [--quick] [--out DIR]

`--quick` prunes to 80% (magnitude) and 50% (channels) only, gives each search 2 trials and
exports PyTorch models with the TorchScript exporter, for a check of the code in seconds; its
figures are not the benchmark's. It leaves the MiniLM section out (importing transformers and
exporting MiniLM alone take a minute here) unless `--only minilm` asks for it, which then scans
MiniLM's first layer alone (6 MatMuls) on 16 short sentences.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _shared import common, torch_peers
from torch.nn.utils import prune

import compress

TUNE_RECIPE = common.RECIPES / "digits_tune.yaml"
MINILM_RECIPE = common.RECIPES / "minilm_sensitivity.yaml"
RESOLUTION = 0.01
MIN_GAIN_POINTS = 3.0
MINILM_SECONDS = 300


@dataclass(frozen=True)
class Settings:
    """What one run covers: the magnitude and channel levels, each search's trial budget, the
    MiniLM scan (its data source, the nodes left out, the sentences scored), and whether the
    recipes take `common.quick_recipe`'s settings."""

    levels: tuple[float, ...] = (0.7, 0.8, 0.9)
    channel_levels: tuple[float, ...] = (0.3, 0.5)
    trials: int = 12
    minilm_data: str = "docstrings"
    minilm_ignore: tuple[str, ...] = ()
    minilm_samples: int = 128
    quick: bool = False


QUICK = Settings(
    levels=(0.8,),
    channel_levels=(0.5,),
    trials=2,
    minilm_data="docstrings_small",
    minilm_ignore=("re:.*layer\\.[1-5]\\..*",),
    minilm_samples=16,
    quick=True,
)


def digits_recipe(passes: list[dict], folder: Path, quick: bool) -> dict:
    raw = {
        "version": 1,
        "name": "digits-allocation",
        "model": {
            "source": f"{common.DIGITS_CNN}:build",
            "weights": str(common.DIGITS_WEIGHTS),
            "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
        },
        "data": {"source": f"{common.DIGITS_DATA}:load"},
        "evaluate": {"metric": "accuracy"},
        "passes": passes,
        "export": {"path": str(folder / "model.onnx")},
        "measure": {"latency": None},
    }
    return common.quick_recipe(raw) if quick else raw


def table(headers: list[str], rows: list[list[str]]) -> None:
    """The first column as the row name, the others as cells (common.print_table's layout)."""
    print(f"[{headers[0]}]")
    common.print_table(headers[1:], [(row[0], row[1:]) for row in rows])


def val_accuracy(model: torch.nn.Module) -> float:
    images, labels = common.load_source(common.DIGITS_DATA).load()["val"]
    with torch.no_grad():
        predicted = model.eval()(torch.from_numpy(images)).argmax(1).numpy()
    return float(np.mean(predicted == labels))


def global_by_hand(level: float) -> float:
    """torch.nn.utils.prune.global_unstructured (L1) over the four layers: val accuracy."""
    model = torch_peers.digits_cnn()
    layers = [(getattr(model, name), "weight") for name in ("conv1", "conv2", "fc1", "fc2")]
    prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=level)
    return val_accuracy(model)


def tp_global_by_hand(level: float) -> tuple[float, int]:
    """Torch-Pruning's non-uniform alternative: MetaPruner with global_pruning (one L2
    threshold over all groups, the classifier ignored): val accuracy and MACs of one sample."""
    model = torch_peers.digits_cnn()
    example = torch.zeros(1, 1, 8, 8)
    torch_peers.tp_prune(model, example, [model.fc2], level, global_pruning=True)
    return val_accuracy(model), torch_peers.count_ops(model, example)


def allocation_section(folder: Path, settings: Settings) -> None:
    print("\n## 1. one-shot allocation, digits CNN (no fine-tuning), val accuracy")
    rows, gains = [], {}
    for level in settings.levels:
        accuracy = {}
        for allocation in ("uniform", "sensitivity"):
            recipe = digits_recipe(
                [{"type": "prune", "sparsity": level, "allocation": allocation}],
                folder / f"{allocation}-{level}",
                settings.quick,
            )
            report = compress.apply(recipe, progress=False)
            accuracy[allocation] = report.compressed.accuracy
            dense = report.baseline.accuracy
        accuracy["peer"] = global_by_hand(level)
        gains[level] = (accuracy["sensitivity"] - accuracy["uniform"]) * 100
        rows.append(
            [
                f"{level:.0%}",
                f"{dense:.2%}",
                f"{accuracy['uniform']:.2%}",
                f"{accuracy['peer']:.2%}",
                f"{accuracy['sensitivity']:.2%}",
                f"{gains[level]:+.1f} pt",
                f"{(accuracy['sensitivity'] - accuracy['peer']) * 100:+.1f} pt",
            ]
        )
    table(
        [
            "overall level",
            "dense",
            "compress uniform",
            "torch global_unstructured (by hand)",
            "compress sensitivity",
            "vs uniform",
            "vs global",
        ],
        rows,
    )
    common.verdict(
        gains[0.8] >= MIN_GAIN_POINTS,
        f"at 80%: sensitivity {gains[0.8]:+.1f} pt over uniform (target >= +{MIN_GAIN_POINTS})",
    )
    channel_allocation(folder, settings)


def channel_allocation(folder: Path, settings: Settings) -> None:
    print("\nchannel pruning, one-shot (groups weighed by their MACs): val accuracy @ MACs")
    rows = []
    for level in settings.channel_levels:
        cells = []
        for allocation in ("uniform", "sensitivity"):
            step = {"type": "prune", "method": "channel", "sparsity": level}
            recipe = digits_recipe(
                [{**step, "allocation": allocation}],
                folder / f"channel-{allocation}-{level}",
                settings.quick,
            )
            report = compress.apply(recipe, progress=False)
            ratio = report.compressed.macs / report.baseline.macs
            cells.append(f"{report.compressed.accuracy:.2%} @ {ratio:.3f}x MACs")
        accuracy, macs = tp_global_by_hand(level)
        cells.insert(1, f"{accuracy:.2%} @ {macs / report.baseline.macs:.3f}x MACs")
        rows.append([f"{level:.0%}", *cells])
    table(
        ["level", "compress uniform", "Torch-Pruning global (by hand)", "compress sensitivity"],
        rows,
    )


def tune_recipe(folder: Path, settings: Settings) -> Path | common.Recipe:
    """recipes/digits_tune.yaml; with --quick, with `common.quick_recipe`'s settings."""
    if not settings.quick:
        return TUNE_RECIPE
    raw = common.read_recipe(TUNE_RECIPE, quick=True)
    raw["export"]["path"] = str(folder / "model.onnx")
    return raw


def bisect_by_hand(
    folder: Path, scope: str, settings: Settings
) -> tuple[float | None, dict, int, float]:
    """The user's search: one level for the recipe's pass, bisected on the budget."""
    base = common.read_recipe(TUNE_RECIPE, settings.quick)
    low, high, best, figures, trials = 0.0, 0.98, None, {}, 0
    started = time.perf_counter()
    level = 0.8
    while trials < settings.trials and high - low > RESOLUTION:
        step = {**base["passes"][0], "sparsity": round(level, 4), "scope": scope}
        step.pop("allocation", None)
        export = {**base["export"], "path": str(folder / f"{trials}.onnx")}
        recipe = {**base, "passes": [step], "export": export}
        report = compress.apply(recipe, output_dir=folder / f"{scope}-{trials}", progress=False)
        trials += 1
        if all(b.status == "pass" for b in report.budgets):
            low, best = level, report.passes[0]["achieved_sparsity"]
            figures = {
                "drop": report.baseline.accuracy - report.compressed.accuracy,
                "gzip": report.compressed.size_gzip_bytes,
            }
        else:
            high = level
        level = (low + high) / 2
    return best, figures, trials, time.perf_counter() - started


def tune_section(folder: Path, settings: Settings) -> None:
    budget = settings.trials
    print(f"\n## 2. compress tune vs a by-hand bisection (accuracy_drop <= 1 pt, {budget} trials)")
    started = time.perf_counter()
    tuning = compress.tune(
        tune_recipe(folder / "tune", settings),
        trials=budget,
        output_dir=folder / "tune",
        progress=False,
    )
    tune_seconds = time.perf_counter() - started
    best = tuning.best_trial
    rows = []
    for trial in tuning.trials:
        drop = trial.figures.get("accuracy_drop")
        rows.append(
            [
                str(trial.index),
                trial.why,
                f"{trial.level:.2%}",
                f"{trial.predicted_drop * 100:.1f} pt",
                "" if drop is None else f"{drop * 100:.2f} pt",
                f"{trial.figures.get('size_gzip_bytes') or 0:,.0f}",
                trial.status,
            ]
        )
    print("trial log of compress tune:")
    table(["#", "why", "level", "predicted drop", "accuracy drop", "gzip bytes", "result"], rows)
    uniform = bisect_by_hand(folder / "uniform", "layer", settings)
    global_ = bisect_by_hand(folder / "global", "global", settings)
    summary = [
        [
            "compress tune",
            f"{best.achieved:.2%}" if best else "none",
            f"{best.figures['accuracy_drop'] * 100:.2f} pt" if best else "",
            f"{best.figures['size_gzip_bytes']:,.0f}" if best else "",
            str(len(tuning.trials)),
            f"{tune_seconds:.0f} s",
        ]
    ]
    for label, (level, figures, trials, seconds) in (
        ("by hand: uniform bisection", uniform),
        ("by hand: global bisection", global_),
    ):
        summary.append(
            [
                label,
                "none" if level is None else f"{level:.2%}",
                f"{figures['drop'] * 100:.2f} pt" if figures else "",
                f"{figures['gzip']:,}" if figures else "",
                str(trials),
                f"{seconds:.0f} s",
            ]
        )
    table(["search", "best level", "accuracy drop", "gzip bytes", "trials", "time"], summary)
    if best is not None:
        replay = compress.apply(Path(tuning.tuned), progress=False)
        same = (
            replay.compressed.accuracy == best.figures["accuracy"]
            and replay.compressed.size_gzip_bytes == best.figures["size_gzip_bytes"]
        )
        common.verdict(same, "compress apply tuned.yaml reproduces the best trial's figures")
    rival = max((value for value in (uniform[0], global_[0]) if value is not None), default=0.0)
    common.verdict(
        best is not None and best.achieved > rival and len(tuning.trials) <= budget,
        f"tune {best.achieved if best else 0:.2%} > best by-hand level {rival:.2%} "
        f"in {len(tuning.trials)} <= {budget} trials",
    )


def minilm_section(folder: Path, settings: Settings) -> None:
    print("\n## 3. compress analyze, all-MiniLM-L6-v2 (real weights), dynamic INT8")
    raw = common.read_recipe(MINILM_RECIPE, settings.quick)
    raw["data"]["source"] = f"{common.MODELS / 'minilm.py'}:{settings.minilm_data}"
    raw["export"]["path"] = str(folder / "model.onnx")
    if settings.minilm_ignore:
        raw["passes"][0]["ignore"] = list(settings.minilm_ignore)
    started = time.perf_counter()
    result = compress.analyze(
        raw, folder / "minilm", progress=False, samples=settings.minilm_samples, base_dir=folder
    )
    seconds = time.perf_counter() - started
    (scan,) = result.passes
    rows = [
        [
            str(rank),
            node.name,
            f"{node.alone_drop:.5f}",
            f"{node.reverted_drop:.5f}",
            f"{node.gain:.3g}",
        ]
        for rank, node in enumerate(scan.nodes[:5], 1)
    ]
    print(
        f"{len(scan.nodes)} nodes; fully quantized: 1 - cosine = {scan.full_drop:.5f}; "
        f"{result.samples} sentences; {seconds:.0f} s; html: {result.directory}/analysis.html"
    )
    table(["rank", "node", "alone quantized", "alone reverted", "gain"], rows)
    common.verdict(seconds < MINILM_SECONDS, f"analysis in {seconds:.0f} s < {MINILM_SECONDS} s")


def main() -> None:
    parser = common.arguments(__doc__, "one level each, 2 trials, no MiniLM (unless --only)")
    parser.add_argument("--only", choices=("allocation", "tune", "minilm"))
    args = parser.parse_args()
    settings = QUICK if args.quick else Settings()
    torch.set_num_threads(1)
    print(f"# sensitivity benchmark: {common.machine_line()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    sections = {"allocation": allocation_section, "tune": tune_section, "minilm": minilm_section}
    chosen = [args.only] if args.only else list(sections)
    if args.quick and not args.only:
        chosen.remove("minilm")
    with common.output_dir(args.out, "sensitivity-") as folder:
        for name in chosen:
            sections[name](folder / name, settings)
    if "minilm" not in chosen and not args.only:
        print("\n## 3. compress analyze, MiniLM: left out by --quick (`--quick --only minilm`)")


if __name__ == "__main__":
    main()
