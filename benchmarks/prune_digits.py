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

    .venv/bin/python benchmarks/prune_digits.py
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import logging
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, TensorDataset

import compress
from compress.report.schema import ModelMetrics, Report

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "quickstart.yaml"
MODEL_SOURCE = REPO / "models" / "digits_cnn.py"
WEIGHTS = REPO / "models" / "digits_cnn.safetensors"
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

#: torch threads for both approaches' fine-tuning and export. On a small shared machine the
#: default (every core) can make this tiny model's training many times slower.
TORCH_THREADS = 1

WARMUP_RUNS = 20
TIMED_RUNS = 200
GZIP_LEVEL = 9

MAX_ACCURACY_DROP_POINTS = 1.0
MAX_GZIP_RATIO = 0.35

DENSE, COMPRESS = "dense", "compress"
MASKS_KEPT, REMOVED = "by hand: masks kept", "by hand: prune.remove"

Split = tuple[np.ndarray, np.ndarray]


@dataclass
class Candidate:
    """An exported model, or the reason its export failed."""

    label: str
    path: Path | None
    error: str | None = None


@dataclass
class Measured:
    accuracy: float
    params: int
    sparsity: float
    size_bytes: int
    gzip_bytes: int
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
    """Silence the exporter's progress lines, warnings and log records."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
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
        logger.setLevel(level)


# --- the two approaches ---------------------------------------------------------------------


def run_compress(output_dir: Path) -> tuple[Report, list[Candidate], float]:
    """The quickstart recipe through the Python API; its dense and pruned ONNX files."""
    started = time.perf_counter()
    report = compress.apply(RECIPE, output_dir=output_dir, progress=False)
    seconds = time.perf_counter() - started
    assert report.artifacts.baseline_onnx is not None
    candidates = [
        Candidate(DENSE, Path(report.artifacts.baseline_onnx)),
        Candidate(COMPRESS, Path(report.artifacts.onnx)),
    ]
    return report, candidates, seconds


def load_digits_cnn() -> nn.Module:
    model = load_source(MODEL_SOURCE).build()
    model.load_state_dict(load_file(str(WEIGHTS)))
    return model


def fine_tune_with_pruning(model: nn.Module, train: Split) -> None:
    """Adam fine-tune; after each of the first RAMP_EPOCHS epochs, prune each layer further
    (linear steps up to SPARSITY of its weights)."""
    torch.manual_seed(SEED)
    dataset = TensorDataset(torch.from_numpy(train[0]), torch.from_numpy(train[1]))
    generator = torch.Generator().manual_seed(SEED)
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    pruned = 0.0
    model.train()
    for epoch in range(EPOCHS):
        for x, y in loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        if epoch < RAMP_EPOCHS:
            target = SPARSITY * (epoch + 1) / RAMP_EPOCHS
            # Repeated calls prune a fraction of the weights that are still unpruned.
            amount = 1.0 - (1.0 - target) / (1.0 - pruned)
            for name in LAYERS:
                prune.l1_unstructured(getattr(model, name), "weight", amount=amount)
            pruned = target
    model.eval()


def export_onnx(label: str, model: nn.Module, example: torch.Tensor, path: Path) -> Candidate:
    """Dynamo export with a dynamic batch; a failure is recorded, not raised."""
    try:
        with quiet():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                external_data=False,
                opset_version=OPSET,
                input_names=["input"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
    except Exception as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0][:300] if text else ""
        return Candidate(label, None, f"{type(exc).__name__}: {reason}")
    return Candidate(label, path)


def prune_by_hand(train: Split, workdir: Path) -> tuple[list[Candidate], dict[str, float]]:
    """torch.nn.utils.prune during fine-tuning, exported with masks kept and after remove."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = load_digits_cnn()
    fine_tune_with_pruning(model, train)
    tuned = time.perf_counter()
    example = torch.from_numpy(train[0][:2])
    kept = export_onnx(MASKS_KEPT, model, example, workdir / "masks_kept.onnx")
    for name in LAYERS:
        prune.remove(getattr(model, name), "weight")
    removed = export_onnx(REMOVED, model, example, workdir / "removed.onnx")
    finished = time.perf_counter()
    times = {"load + fine-tune": tuned - started, "total": finished - started}
    return [kept, removed], times


# --- measurements on the ONNX files ---------------------------------------------------------


def model_files(path: Path) -> list[Path]:
    """The ONNX file and the external-data side files it references."""
    model = onnx.load(str(path), load_external_data=False)
    locations = {
        entry.value
        for tensor in model.graph.initializer
        if tensor.data_location == onnx.TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return [path, *(path.parent / location for location in sorted(locations))]


def file_sizes(path: Path) -> tuple[int, int]:
    """(raw bytes, gzip -9 bytes) of the model and its side files together."""
    payload = b"".join(file.read_bytes() for file in model_files(path))
    return len(payload), len(gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0))


def weight_counts(path: Path) -> tuple[int, int]:
    """(elements, zeros) over all float initializers."""
    arrays = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]
    floats = [a for a in arrays if np.issubdtype(a.dtype, np.floating)]
    return sum(a.size for a in floats), sum(int(np.count_nonzero(a == 0)) for a in floats)


def make_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
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
        params, zeros = weight_counts(path)
        results[label] = Measured(
            accuracy=accuracy(sessions[label], val),
            params=params,
            sparsity=zeros / params,
            size_bytes=raw,
            gzip_bytes=packed,
            p50_ms=latencies[label],
        )
    return results


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


def metric_rows(
    labels: list[str], results: dict[str, Measured], errors: dict[str, str]
) -> list[Row]:
    def cells(show: Callable[[Measured], str]) -> list[str]:
        return [show(results[label]) if label in results else MISSING for label in labels]

    return [
        ("export", ["failed*" if label in errors else "ok" for label in labels]),
        ("val accuracy", cells(lambda m: f"{m.accuracy:.2%}")),
        ("stored float weights", cells(lambda m: f"{m.params:,}")),
        ("weight sparsity", cells(lambda m: f"{m.sparsity:.2%}")),
        ("size (bytes)", cells(lambda m: f"{m.size_bytes:,}")),
        ("gzip -9 size (bytes)", cells(lambda m: f"{m.gzip_bytes:,}")),
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
        ("  p50 latency", cells(lambda m, b: ratio(m.p50_ms, b.p50_ms))),
        ("  accuracy (points)", cells(lambda m, b: f"{(m.accuracy - b.accuracy) * 100:+.2f}")),
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
    ]


def print_targets(results: dict[str, Measured]) -> None:
    dense, pruned = results[DENSE], results[COMPRESS]
    drop = (dense.accuracy - pruned.accuracy) * 100
    gzip_ratio = pruned.gzip_bytes / dense.gzip_bytes
    checks = [
        (
            f"accuracy drop vs dense {drop:.2f} points <= {MAX_ACCURACY_DROP_POINTS:.2f}",
            drop <= MAX_ACCURACY_DROP_POINTS,
        ),
        (
            f"gzip size vs dense {gzip_ratio:.3f}x <= {MAX_GZIP_RATIO:.2f}x",
            gzip_ratio <= MAX_GZIP_RATIO,
        ),
    ]
    print("\nTargets (compress-pruned model, measured here):")
    for text, met in checks:
        print(f"  {'MET    ' if met else 'MISSED '} {text}")


def main() -> None:
    torch.set_num_threads(TORCH_THREADS)
    data = load_source(DATA_SOURCE).load()
    with tempfile.TemporaryDirectory(prefix="prune-digits-") as tmp:
        workdir = Path(tmp)
        report, from_compress, compress_seconds = run_compress(workdir / "compress")
        by_hand, hand_times = prune_by_hand(data["train"], workdir / "by_hand")
        candidates = [*from_compress, *by_hand]
        results = measure(candidates, data["val"])

    labels = [c.label for c in candidates]
    errors = {c.label: c.error for c in candidates if c.error}
    print(
        f"Quickstart digits CNN, {len(data['val'][0])} val images; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}, {platform.machine()}; 1 thread each\n"
    )
    print_table(
        labels,
        [
            *metric_rows(labels, results, errors),
            *comparison_rows("vs dense", labels, results, DENSE),
            *comparison_rows("vs by hand (prune.remove)", labels, results, REMOVED),
            *report_rows(labels, report),
        ],
    )
    for label, error in errors.items():
        print(f"* {label}: export failed: {error}")
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
