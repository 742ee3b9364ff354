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
    .venv/bin/python benchmarks/sensitivity.py [--only allocation|tune|minilm] [--out DIR]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch
import torch_pruning as tp
import yaml
from safetensors.torch import load_file
from torch.nn.utils import prune

import compress
from compress.analysis.run import analyze
from compress.cpu import cpu_name, speed_features
from compress.tune.search import tune

RECIPES = common.REPO / "recipes"
MODELS = common.REPO / "models"
TUNE_RECIPE = RECIPES / "digits_tune.yaml"
MINILM_RECIPE = RECIPES / "minilm_sensitivity.yaml"
LEVELS = (0.7, 0.8, 0.9)
TRIALS = 12
RESOLUTION = 0.01
MIN_GAIN_POINTS = 3.0
MINILM_SECONDS = 300


def digits_recipe(passes: list[dict], folder: Path) -> dict:
    return {
        "version": 1,
        "name": "digits-allocation",
        "model": {
            "source": f"{MODELS}/digits_cnn.py:build",
            "weights": f"{MODELS}/digits_cnn.safetensors",
            "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
        },
        "data": {"source": f"{MODELS}/digits.py:load"},
        "evaluate": {"metric": "accuracy"},
        "passes": passes,
        "export": {"path": str(folder / "model.onnx")},
        "measure": {"latency": None},
    }


def table(headers: list[str], rows: list[list[str]]) -> None:
    """The first column as the row name, the others as cells (common.print_table's layout)."""
    print(f"[{headers[0]}]")
    common.print_table(headers[1:], [(row[0], row[1:]) for row in rows])


def digits_cnn() -> torch.nn.Module:
    model = common.load_source(MODELS / "digits_cnn.py").build()
    model.load_state_dict(load_file(str(MODELS / "digits_cnn.safetensors")))
    return model.eval()


def val_accuracy(model: torch.nn.Module) -> float:
    images, labels = common.load_source(MODELS / "digits.py").load()["val"]
    with torch.no_grad():
        predicted = model.eval()(torch.from_numpy(images)).argmax(1).numpy()
    return float(np.mean(predicted == labels))


def global_by_hand(level: float) -> float:
    """torch.nn.utils.prune.global_unstructured (L1) over the four layers: val accuracy."""
    model = digits_cnn()
    layers = [(getattr(model, name), "weight") for name in ("conv1", "conv2", "fc1", "fc2")]
    prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=level)
    return val_accuracy(model)


def tp_global_by_hand(level: float) -> tuple[float, int]:
    """Torch-Pruning's non-uniform alternative: MetaPruner with global_pruning (one L2
    threshold over all groups, the classifier ignored): val accuracy and MACs of one sample."""
    model = digits_cnn()
    example = torch.zeros(1, 1, 8, 8)
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=level,
        global_pruning=True,
        ignored_layers=[model.fc2],
    )
    pruner.step()
    macs, _ = tp.utils.count_ops_and_params(model, example)
    return val_accuracy(model), int(macs)


def allocation_section(folder: Path) -> None:
    print("\n## 1. one-shot allocation, digits CNN (no fine-tuning), val accuracy")
    rows, gains = [], {}
    for level in LEVELS:
        accuracy = {}
        for allocation in ("uniform", "sensitivity"):
            recipe = digits_recipe(
                [{"type": "prune", "sparsity": level, "allocation": allocation}],
                folder / f"{allocation}-{level}",
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
    channel_allocation(folder)


def channel_allocation(folder: Path) -> None:
    print("\nchannel pruning, one-shot (groups weighed by their MACs): val accuracy @ MACs")
    rows = []
    for level in (0.3, 0.5):
        cells = []
        for allocation in ("uniform", "sensitivity"):
            step = {"type": "prune", "method": "channel", "sparsity": level}
            recipe = digits_recipe(
                [{**step, "allocation": allocation}], folder / f"channel-{allocation}-{level}"
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


def bisect_by_hand(folder: Path, scope: str) -> tuple[float | None, dict, int, float]:
    """The user's search: one level for the recipe's pass, bisected on the budget."""
    base = yaml.safe_load(TUNE_RECIPE.read_text())
    for section, key in (("model", "source"), ("model", "weights"), ("data", "source")):
        base[section][key] = str((RECIPES / base[section][key]).resolve())
    low, high, best, figures, trials = 0.0, 0.98, None, {}, 0
    started = time.perf_counter()
    level = 0.8
    while trials < TRIALS and high - low > RESOLUTION:
        step = {**base["passes"][0], "sparsity": round(level, 4), "scope": scope}
        step.pop("allocation", None)
        recipe = {**base, "passes": [step], "export": {"path": str(folder / f"{trials}.onnx")}}
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


def tune_section(folder: Path) -> None:
    print("\n## 2. compress tune vs a by-hand bisection (accuracy_drop <= 1 pt, 12 trials)")
    started = time.perf_counter()
    tuning = tune(TUNE_RECIPE, trials=TRIALS, output_dir=folder / "tune", progress=False)
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
    uniform = bisect_by_hand(folder / "uniform", "layer")
    global_ = bisect_by_hand(folder / "global", "global")
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
    rival = max(value for value in (uniform[0], global_[0]) if value is not None)
    common.verdict(
        best is not None and best.achieved > rival and len(tuning.trials) <= TRIALS,
        f"tune {best.achieved if best else 0:.2%} > best by-hand level {rival:.2%} "
        f"in {len(tuning.trials)} <= {TRIALS} trials",
    )


def minilm_section(folder: Path) -> None:
    print("\n## 3. compress analyze, all-MiniLM-L6-v2 (real weights), dynamic INT8")
    started = time.perf_counter()
    result = analyze(MINILM_RECIPE, folder / "minilm", progress=False, samples=128)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("allocation", "tune", "minilm"))
    parser.add_argument("--out", type=Path, help="keep the outputs (analysis.html...) here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# sensitivity benchmark: {cpu_name()} ({', '.join(speed_features())})")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or scratch
        sections = {
            "allocation": allocation_section,
            "tune": tune_section,
            "minilm": minilm_section,
        }
        for name, section in sections.items():
            if args.only in (None, name):
                section(Path(folder) / name)


if __name__ == "__main__":
    main()
