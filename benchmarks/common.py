"""Helpers shared by the benchmark scripts in this folder.

Running recipes (`compress.apply`) and reading recipes with absolute paths; measuring ONNX files
(accuracy with onnxruntime on one thread, raw and gzip -9 size with side files, sparsity of the
float weights, p50 latency of several models in one interleaved loop); printing tables, ratios
and the MET / MISSED lines of the targets.

The scripts import it as `common`: Python puts a script's own folder first on `sys.path`, so
`.venv/bin/python benchmarks/<script>.py` finds it from any directory. Neither torch nor
TensorFlow is imported here (benchmarks/prune_keras.py checks that torch never is).
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import onnx
import onnxruntime as ort
import yaml
from onnx import numpy_helper

import compress
from compress.report.schema import ModelMetrics, Report

REPO = Path(__file__).resolve().parents[1]
#: The 8x8 digits data module: load() (NCHW) and load_nhwc() give its train and val splits.
DIGITS_DATA = REPO / "models" / "digits.py"

WARMUP_RUNS = 20
TIMED_RUNS = 200
GZIP_LEVEL = 9


def _fine_tune_settings() -> dict[str, Any]:
    """The fine-tune of both quickstart recipes (recipes/quickstart.yaml, keras_quickstart.yaml),
    which prune_digits.py and prune_keras.py repeat by hand: read from the recipes, which must
    agree, so the peers always run what the recipes say."""
    settings = []
    for name in ("quickstart.yaml", "keras_quickstart.yaml"):
        recipe = compress.load_recipe(REPO / "recipes" / name)
        prune, train = recipe.passes[0], recipe.train
        settings.append(
            {
                "sparsity": prune.sparsity,
                "ramp_epochs": prune.schedule.end_epoch,
                "epochs": train.epochs,
                "lr": train.optimizer.lr,
                "batch_size": recipe.data.batch_size,
                "seed": train.seed,
                "opset": recipe.export.opset,
            }
        )
    assert settings[0] == settings[1], f"the quickstart recipes differ: {settings}"
    return settings[0]


_FINE_TUNE = _fine_tune_settings()
#: The layers pruned (the digits CNN's), each to SPARSITY of its weights.
LAYERS = ("conv1", "conv2", "fc1", "fc2")
SPARSITY: float = _FINE_TUNE["sparsity"]
#: Sparsity ramps up over the first RAMP_EPOCHS of EPOCHS epochs.
RAMP_EPOCHS: int = _FINE_TUNE["ramp_epochs"]
EPOCHS: int = _FINE_TUNE["epochs"]
LR: float = _FINE_TUNE["lr"]
BATCH_SIZE: int = _FINE_TUNE["batch_size"]
SEED: int = _FINE_TUNE["seed"]
OPSET: int = _FINE_TUNE["opset"]

#: Column labels of the model that a recipe starts from and of the one it writes.
DENSE, COMPRESS = "dense", "compress"
#: The cell of a figure that was not measured.
MISSING = "-"

Split = tuple[np.ndarray, np.ndarray]
Recipe = dict[str, Any]
#: A table row: its name, then one cell a column (no cells: a title line).
Row = tuple[str, list[str]]

T = TypeVar("T")


def load_source(path: Path) -> ModuleType:
    """Import a Python file by path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Silence progress lines on stdout and stderr, warnings, and the records below ERROR of the
    named loggers (of the root logger when none is named)."""
    targets = [logging.getLogger(name) for name in loggers] or [logging.getLogger()]
    levels = [logger.level for logger in targets]
    for logger in targets:
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
        for logger, level in zip(targets, levels, strict=True):
            logger.setLevel(level)


# --- recipes and exports ----------------------------------------------------------------------


def absolute_source(source: str, base: Path) -> str:
    """ "../models/x.py:build" -> "/abs/models/x.py:build"; module references are kept."""
    file, colon, name = source.rpartition(":")
    if not colon:
        file, name = source, ""
    if not file.endswith((".py", ".pt", ".pth", ".onnx")):
        return source
    resolved = str((base / file).resolve())
    return f"{resolved}:{name}" if name else resolved


def absolute_ref(ref: dict, base: Path) -> dict:
    """A model reference (source, optional weights) with its paths made absolute."""
    ref = dict(ref)
    ref["source"] = absolute_source(ref["source"], base)
    if ref.get("weights"):
        ref["weights"] = str((base / ref["weights"]).resolve())
    return ref


def read_recipe(path: Path) -> Recipe:
    """The recipe as a dict with every model and data path made absolute."""
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = path.parent
    recipe["model"] = absolute_ref(recipe["model"], base)
    recipe["data"]["source"] = absolute_source(recipe["data"]["source"], base)
    for item in recipe["passes"]:
        for role in ("teacher", "student"):
            if item.get(role):
                item[role] = absolute_ref(item[role], base)
    return recipe


@dataclass
class Candidate:
    """An exported model, or the reason its export failed."""

    label: str
    path: Path | None
    error: str | None = None


def try_export(label: str, path: Path, export: Callable[[], object], *loggers: str) -> Candidate:
    """Run `export`, which writes `path`, under `quiet(*loggers)`. A failure is recorded (the
    exception's type and the first line of its message), not raised."""
    try:
        with quiet(*loggers):
            export()
    except Exception as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0][:300] if text else ""
        return Candidate(label, None, f"{type(exc).__name__}: {reason}")
    return Candidate(label, path)


def run_compress(recipe: Path, output_dir: Path) -> tuple[Report, list[Candidate], float]:
    """A recipe through the Python API: its report, its dense (DENSE) and compressed (COMPRESS)
    ONNX files, and its wall time in seconds."""
    started = time.perf_counter()
    report = compress.apply(recipe, output_dir=output_dir, progress=False)
    seconds = time.perf_counter() - started
    assert report.artifacts.baseline_onnx is not None
    candidates = [
        Candidate(DENSE, Path(report.artifacts.baseline_onnx)),
        Candidate(COMPRESS, Path(report.artifacts.onnx)),
    ]
    return report, candidates, seconds


def exported(candidates: Sequence[Candidate]) -> dict[str, Path]:
    """The ONNX file of every candidate that exported, by label."""
    return {c.label: c.path for c in candidates if c.path is not None}


def export_errors(candidates: Sequence[Candidate]) -> dict[str, str]:
    """Why each candidate that failed to export did, by label."""
    return {c.label: c.error for c in candidates if c.error}


# --- measurements on the ONNX files -----------------------------------------------------------


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


def gzip_size(payload: bytes) -> int:
    """Bytes of `payload` after gzip -9 (no timestamp, so the same bytes every run)."""
    return len(gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0))


def file_sizes(path: Path) -> tuple[int, int]:
    """(raw bytes, gzip -9 bytes) of the model and its side files together."""
    payload = b"".join(file.read_bytes() for file in model_files(path))
    return len(payload), gzip_size(payload)


def float_weights(graph: onnx.GraphProto, *, constants: bool = False) -> list[np.ndarray]:
    """Every float initializer of the graph, and with `constants` its float Constant-node
    tensors too."""
    tensors = list(graph.initializer)
    if constants:
        tensors += [
            attribute.t
            for node in graph.node
            if node.op_type == "Constant"
            for attribute in node.attribute
            if attribute.name == "value"
        ]
    arrays = [numpy_helper.to_array(t) for t in tensors]
    return [a for a in arrays if np.issubdtype(a.dtype, np.floating)]


def zero_counts(arrays: Sequence[np.ndarray]) -> tuple[int, int]:
    """(elements, zeros)."""
    return sum(a.size for a in arrays), sum(int(np.count_nonzero(a == 0)) for a in arrays)


def make_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A quiet CPU session running ops one at a time on `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feed_for(session: ort.InferenceSession, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The session's inputs, in order, as a contiguous feed."""
    names = [meta.name for meta in session.get_inputs()]
    return {name: np.ascontiguousarray(x) for name, x in zip(names, inputs, strict=True)}


def accuracy(session: ort.InferenceSession, val: Split) -> float:
    """Top-1 accuracy of a single-input classifier on all of `val` in one batch."""
    logits = session.run(None, feed_for(session, [val[0]]))[0]
    return float(np.mean(np.argmax(logits, axis=-1) == val[1]))


def p50_latencies(
    sessions: Mapping[str, ort.InferenceSession],
    inputs: Sequence[np.ndarray],
    runs: int = TIMED_RUNS,
    *,
    warmup: int = WARMUP_RUNS,
) -> dict[str, float]:
    """Median ms per inference after `warmup` rounds; every round runs all models,
    alternating the order."""
    feeds = {label: feed_for(session, inputs) for label, session in sessions.items()}
    for _ in range(warmup):
        for label, session in sessions.items():
            session.run(None, feeds[label])
    times: dict[str, list[float]] = {label: [] for label in sessions}
    labels = list(sessions)
    for index in range(runs):
        for label in labels if index % 2 == 0 else labels[::-1]:
            started = time.perf_counter()
            sessions[label].run(None, feeds[label])
            times[label].append((time.perf_counter() - started) * 1000.0)
    return {label: float(np.median(values)) for label, values in times.items()}


@dataclass(kw_only=True)
class Measured:
    """What `measure` reads from one ONNX file."""

    accuracy: float
    params: int
    sparsity: float
    size_bytes: int
    gzip_bytes: int
    p50_ms: float | None = None


def measure(
    paths: Mapping[str, Path], val: Split, *, latency: bool = True, constants: bool = False
) -> dict[str, Measured]:
    """Accuracy on val, float weights and their sparsity (with `constants`, Constant-node
    tensors count too), sizes and, with `latency`, the p50 at batch 1 of each ONNX file."""
    sessions = {label: make_session(path) for label, path in paths.items()}
    latencies = p50_latencies(sessions, [val[0][:1]]) if latency else {}
    results = {}
    for label, path in paths.items():
        raw, packed = file_sizes(path)
        params, zeros = zero_counts(float_weights(onnx.load(str(path)).graph, constants=constants))
        results[label] = Measured(
            accuracy=accuracy(sessions[label], val),
            params=params,
            sparsity=zeros / params,
            size_bytes=raw,
            gzip_bytes=packed,
            p50_ms=latencies.get(label),
        )
    return results


# --- output -----------------------------------------------------------------------------------


def print_table(headers: list[str], rows: list[Row], *, fit_titles: bool = True) -> None:
    """Right-aligned columns under `headers`; rows without cells print as title lines. With
    `fit_titles` the first column is as wide as the longest title too."""
    first = max(len(name) for name, cells in rows if cells or fit_titles)
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
    """`value / reference` as "0.123x"."""
    return f"{value / reference:.3f}x"


def points(value: float) -> str:
    """A difference of two fractions in signed percentage points: "+1.23"."""
    return f"{value * 100:+.2f}"


def column_cells(
    labels: Sequence[str], values: Mapping[str, T]
) -> Callable[[Callable[[T], str]], list[str]]:
    """A row maker for these columns: given how to show a value, a cell for each label (MISSING
    where `values` has none)."""

    def row(show: Callable[[T], str]) -> list[str]:
        return [show(values[label]) if label in values else MISSING for label in labels]

    return row


def comparison_cells(
    labels: Sequence[str], values: Mapping[str, T], reference: str
) -> Callable[[Callable[[T, T], str]], list[str]]:
    """A row maker comparing each column with the `reference` column: given how to show a value
    against the reference value, a cell for each label (MISSING where either is absent)."""
    base = values.get(reference)

    def row(show: Callable[[T, T], str]) -> list[str]:
        return [
            show(values[label], base) if base and label in values else MISSING for label in labels
        ]

    return row


def p50_text(measured: Measured) -> str:
    """The p50 latency in ms, MISSING where it was not measured."""
    return MISSING if measured.p50_ms is None else f"{measured.p50_ms:.4f}"


def p50_ratio(measured: Measured, base: Measured) -> str:
    """The p50 latency against the reference's, MISSING where either was not measured."""
    if measured.p50_ms is None or base.p50_ms is None:
        return MISSING
    return ratio(measured.p50_ms, base.p50_ms)


def export_row(labels: Sequence[str], errors: Mapping[str, str]) -> Row:
    """Whether each column's model exported ("failed*": see `print_export_errors`)."""
    return ("export", ["failed*" if label in errors else "ok" for label in labels])


def print_export_errors(errors: Mapping[str, str]) -> None:
    """The footnotes of the "failed*" cells."""
    for label, error in errors.items():
        print(f"* {label}: export failed: {error}")


def reported_rows(
    labels: Sequence[str],
    own: Mapping[str, ModelMetrics],
    *,
    size_name: str = "size (bytes)",
    sparsity: bool = True,
) -> list[Row]:
    """The figures compress.apply reported itself, for the columns in `own`."""
    cells = column_cells(labels, own)
    rows: list[Row] = [
        ("as reported by compress.apply", []),
        ("  val accuracy", cells(lambda m: MISSING if m.accuracy is None else f"{m.accuracy:.2%}")),
        ("  params", cells(lambda m: f"{m.params:,}")),
    ]
    if sparsity:
        rows.append(("  weight sparsity", cells(lambda m: f"{m.sparsity:.2%}")))
    return [
        *rows,
        (f"  {size_name}", cells(lambda m: f"{m.size_bytes:,}")),
        ("  gzip -9 size (bytes)", cells(lambda m: f"{m.size_gzip_bytes:,}")),
        (
            "  p50 latency (ms)",
            cells(lambda m: f"{m.latency_ms.p50:.4f}" if m.latency_ms else MISSING),
        ),
    ]


def verdict(met: bool, text: str) -> None:
    """One target line: MET or MISSED, then the figures."""
    print(f"  {'MET    ' if met else 'MISSED '} {text}")
