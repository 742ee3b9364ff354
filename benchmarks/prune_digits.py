"""Compare the quickstart recipe (`compress.apply`) with pruning the same model by hand.

Four ONNX models of the digits CNN are measured in one run:

* dense: the baseline that `compress.apply("recipes/quickstart.yaml")` exports;
* compress: the model that recipe prunes to 80% while fine-tuning;
* by hand, masks kept / after prune.remove: the same model pruned with `torch.nn.utils.prune`
  (l1_unstructured on conv1, conv2, fc1 and fc2, stepped up to 80% per layer after each of the
  first 4 epochs of a 6-epoch Adam fine-tune), exported with the dynamo exporter twice: once
  with the pruning masks still attached and once after `prune.remove`.

Every figure is read from the ONNX files themselves: validation accuracy (onnxruntime, CPU,
1 thread), sparsity (zeros over all float initializers), raw size and gzip -9 size (side files
included), and p50 latency at batch 1 with 1 thread (20 warm-up and 200 timed runs, all models
interleaved in one loop). Both approaches train and export with one torch thread. Then the
report's own figures, ratios against the dense model and against the by-hand model after
prune.remove, the wall time of each approach and the quickstart targets.

Run (from any directory; the repository root is found from this file):

    .venv/bin/python benchmarks/prune_digits.py [--quick] [--out DIR]

`--quick` fine-tunes both approaches for 1 epoch (the sparsity ramp over all of it), exports
with the TorchScript exporter and times 3 warm-up and 10 timed rounds, for a check of the code in
seconds; its figures are not the benchmark's.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import onnxruntime as ort
import torch
from _shared import common, torch_peers
from torch.nn.utils import prune

#: torch threads for both approaches' fine-tuning and export. On a small shared machine the
#: default (every core) can make this tiny model's training many times slower.
TORCH_THREADS = 1

MAX_ACCURACY_DROP_POINTS = 1.0
MAX_GZIP_RATIO = 0.35

MASKS_KEPT, REMOVED = "by hand: masks kept", "by hand: prune.remove"


# --- the two approaches ---------------------------------------------------------------------


def fine_tune_with_pruning(
    model: torch.nn.Module, train: common.Split, ft: common.FineTune
) -> None:
    """Adam fine-tune; after each of the first `ft.ramp_epochs` epochs, prune each layer further
    (linear steps up to `ft.sparsity` of its weights)."""
    pruned = 0.0

    def step_up(epoch: int) -> None:
        nonlocal pruned
        if epoch >= ft.ramp_epochs:
            return
        target = ft.sparsity * (epoch + 1) / ft.ramp_epochs
        # Repeated calls prune a fraction of the weights that are still unpruned.
        amount = 1.0 - (1.0 - target) / (1.0 - pruned)
        for name in ft.layers:
            prune.l1_unstructured(getattr(model, name), "weight", amount=amount)
        pruned = target

    torch_peers.fine_tune(
        model,
        train,
        epochs=ft.epochs,
        lr=ft.lr,
        batch_size=ft.batch_size,
        seed=ft.seed,
        after_epoch=step_up,
    )


def export_onnx(
    label: str, model: torch.nn.Module, example: torch.Tensor, path: Path, exporter: str, opset: int
) -> common.Candidate:
    """Export with a dynamic batch; a failure is recorded, not raised."""
    return common.try_export(
        label,
        path,
        lambda: torch_peers.torch_export(model, example, "input", path, exporter, opset),
        "torch.onnx",
    )


def prune_by_hand(
    train: common.Split, workdir: Path, ft: common.FineTune, exporter: str
) -> tuple[list[common.Candidate], dict[str, float]]:
    """torch.nn.utils.prune during fine-tuning, exported with masks kept and after remove."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = torch_peers.digits_cnn()
    fine_tune_with_pruning(model, train, ft)
    tuned = time.perf_counter()
    example = torch.from_numpy(train[0][:1])
    kept = export_onnx(MASKS_KEPT, model, example, workdir / "masks_kept.onnx", exporter, ft.opset)
    for name in ft.layers:
        prune.remove(getattr(model, name), "weight")
    removed = export_onnx(REMOVED, model, example, workdir / "removed.onnx", exporter, ft.opset)
    finished = time.perf_counter()
    times = {"load + fine-tune": tuned - started, "total": finished - started}
    return [kept, removed], times


# --- output ---------------------------------------------------------------------------------


def print_targets(results: dict[str, common.Measured]) -> None:
    dense, pruned = results[common.DENSE], results[common.COMPRESS]
    drop = (dense.accuracy - pruned.accuracy) * 100
    gzip_ratio = pruned.gzip_bytes / dense.gzip_bytes
    print("\nTargets (compress-pruned model, measured here):")
    common.verdict(
        drop <= MAX_ACCURACY_DROP_POINTS,
        f"accuracy drop vs dense {drop:.2f} points <= {MAX_ACCURACY_DROP_POINTS:.2f}",
    )
    common.verdict(
        gzip_ratio <= MAX_GZIP_RATIO,
        f"gzip size vs dense {gzip_ratio:.3f}x <= {MAX_GZIP_RATIO:.2f}x",
    )


def main() -> None:
    parser = common.arguments(__doc__, "1 epoch, TorchScript, 3 warm-up and 10 timed rounds")
    args = parser.parse_args()
    torch.set_num_threads(TORCH_THREADS)
    recipes, ft = common.quickstart_recipes(args.quick)
    rounds = common.QUICK_ROUNDS if args.quick else common.DIGITS_ROUNDS
    data = common.load_source(common.DIGITS_DATA).load()
    with common.output_dir(args.out, "prune-digits-") as workdir:
        report, from_compress, compress_seconds = common.run_compress(
            recipes["quickstart.yaml"], workdir / "compress"
        )
        exporter = common.QUICK_EXPORTER if args.quick else "dynamo"
        by_hand, hand_times = prune_by_hand(data["train"], workdir / "by_hand", ft, exporter)
        candidates = [*from_compress, *by_hand]
        results = common.measure(common.exported(candidates), data["val"], rounds=rounds)

    labels = [c.label for c in candidates]
    errors = common.export_errors(candidates)
    print(
        f"Quickstart digits CNN, {len(data['val'][0])} val images; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}, {platform.machine()}; 1 thread each\n"
    )
    common.print_table(
        labels,
        [
            *common.measured_rows(labels, results, errors),
            *common.comparison_rows("vs dense", labels, results, common.DENSE),
            *common.comparison_rows("vs by hand (prune.remove)", labels, results, REMOVED),
            *common.reported_rows(
                labels, {common.DENSE: report.baseline, common.COMPRESS: report.compressed}
            ),
        ],
    )
    common.print_export_errors(errors)
    prune_seconds = report.passes[0]["seconds"]
    print(
        f"\nWall time (compress runs first, so it also pays the exporter's one-time start-up)\n"
        f"  compress.apply  {compress_seconds:5.1f} s  prune + fine-tune pass "
        f"{prune_seconds:.1f} s, plus loading, 2 exports with parity checks, measuring, report\n"
        f"  by hand         {hand_times['total']:5.1f} s  load + fine-tune + prune "
        f"{hand_times['load + fine-tune']:.1f} s, plus 2 exports"
    )
    print_targets(results)


if __name__ == "__main__":
    main()
