"""Helpers shared by the benchmark scripts: their `--quick` and `--out` arguments; running recipes
(`compress.apply`) and reading recipes with absolute paths; measuring ONNX files (accuracy with
onnxruntime on one thread, raw and gzip -9 size with side files, sparsity of the float weights,
p50 latency of several models in one interleaved loop, fidelity by cosine); printing tables,
ratios and the MET / MISSED lines of the targets.

Neither torch nor TensorFlow is imported here (benchmarks/prune_keras.py checks that torch never
is).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import importlib.util
import io
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import onnx
import onnxruntime as ort
import yaml
from onnx import numpy_helper

import compress
from compress import Report

from .toolkit import SPEED_FEATURES, ModelMetrics, cpu_name, speed_features

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
MODELS = REPO / "models"
#: The 8x8 digits data module: load() (NCHW) and load_nhwc() give its train and val splits.
DIGITS_DATA = MODELS / "digits.py"
#: The trained digits CNN of the quickstart recipes (PyTorch).
DIGITS_CNN = MODELS / "digits_cnn.py"
DIGITS_WEIGHTS = MODELS / "digits_cnn.safetensors"
#: The builders and data of the recipes the benchmarks write.
BUILDERS = Path(__file__).resolve().with_name("builders.py")

GZIP_LEVEL = 9
#: (warm-up, timed) rounds of an interleaved latency loop: the digits models, CNNs,
#: transformers, and every model under --quick.
DIGITS_ROUNDS, CNN_ROUNDS = (20, 200), (20, 100)
TRANSFORMER_ROUNDS, QUICK_ROUNDS = (20, 50), (3, 10)
#: --quick trains at most this many epochs, and prune schedules end after QUICK_RAMP_EPOCHS.
QUICK_EPOCHS, QUICK_RAMP_EPOCHS = 1, 1
#: --quick exports PyTorch models with TorchScript: a few seconds faster a model than dynamo, and
#: than `exporter: auto`, which exports with both (not every model: GPT-2 needs dynamo).
QUICK_EXPORTER = "torchscript"

#: Latency settings of the recipes the benchmarks write (compress picks its exporter and other
#: speed-dependent settings by what it measures with them).
RECIPE_LATENCY = {"device": "cpu", "threads": 1, "warmup": 5, "runs": 20, "batch_size": 1}
#: Images (or sequences) a static INT8 pass and its peers calibrate on.
CALIBRATION_SAMPLES = 64
#: What a quantize pass record may say it chose (some keys only in newer versions).
CHOICES = ("format", "activations", "why", "kept_float_for_speed", "reverted_nodes")

#: Column labels of the model that a recipe starts from and of the one it writes.
DENSE, COMPRESS = "dense", "compress"
#: The cell of a figure that was not measured.
MISSING = "-"

Split = tuple[np.ndarray, np.ndarray]
Recipe = dict[str, Any]
#: A table row: its name, then one cell a column (no cells: a title line).
Row = tuple[str, list[str]]

T = TypeVar("T")


# --- the scripts' arguments -------------------------------------------------------------------


def arguments(doc: str, quick: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has: `--quick` (described by `quick`: the tiny
    settings that exercise the same code in seconds) and `--out`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the files here (default: a temporary folder)"
    )
    return parser


def chosen(
    parser: argparse.ArgumentParser, only: str | None, names: Sequence[str], default: list[str]
) -> list[str]:
    """The names `--only` lists (comma-separated), else `default`; an unknown one is a usage
    error."""
    picked = only.split(",") if only else default
    unknown = sorted(set(picked) - set(names))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(names)}")
    return picked


@contextlib.contextmanager
def output_dir(out: Path | None, prefix: str) -> Iterator[Path]:
    """`out` (created), else a temporary folder removed afterwards."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield out.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def versions_line() -> str:
    """The versions of the runtimes an LLM benchmark measures with."""
    names = ("onnxruntime", "onnxruntime-genai", "transformers", "compress-recipes")
    found = [f"{name.removesuffix('-recipes')} {package_version(name)}" for name in names]
    return ", ".join(found)


def machine_line() -> str:
    """The CPU, its core count and the speed features that INT8 kernels use."""
    features = ", ".join(speed_features()) or "none of " + "/".join(SPEED_FEATURES)
    return f"{cpu_name()}, {os.cpu_count()} cores; speed features: {features}"


def latency_rounds(transformer: bool, quick: bool) -> tuple[int, int]:
    """(warm-up, timed) rounds of the interleaved latency loop."""
    if quick:
        return QUICK_ROUNDS
    return TRANSFORMER_ROUNDS if transformer else CNN_ROUNDS


# --- running code quietly ---------------------------------------------------------------------


def load_source(path: Path) -> ModuleType:
    """Import a Python file by path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call_source(reference: str | Path) -> Any:
    """Call a "file.py:function" data source."""
    file, _, function = str(reference).rpartition(":")
    return getattr(load_source(Path(file)), function)()


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


@contextlib.contextmanager
def native_silence() -> Iterator[None]:
    """Send what native code writes to file descriptors 1 and 2 to /dev/null: the TorchScript
    exporter's IR dump on stdout when compress's `exporter: auto` tries it and it fails,
    TensorFlow's logs. Python's own output is `quiet`'s."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with Path(os.devnull).open("wb") as devnull:
        for fd in saved:
            os.dup2(devnull.fileno(), fd)
    try:
        yield
    finally:
        for fd, copied in saved.items():
            os.dup2(copied, fd)
            os.close(copied)


def error_text(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


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


def read_recipe(path: Path, quick: bool = False) -> Recipe:
    """The recipe as a dict with every model and data path made absolute; with `quick`, with
    `quick_recipe`'s settings."""
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = path.parent
    recipe["model"] = absolute_ref(recipe["model"], base)
    recipe["data"]["source"] = absolute_source(recipe["data"]["source"], base)
    for item in recipe["passes"]:
        for role in ("teacher", "student"):
            if item.get(role):
                item[role] = absolute_ref(item[role], base)
    return quick_recipe(recipe) if quick else recipe


def quick_recipe(recipe: Recipe, exporter: str | None = QUICK_EXPORTER) -> Recipe:
    """A copy with --quick's settings: at most QUICK_EPOCHS of training, prune schedules ending
    after QUICK_RAMP_EPOCHS, QUICK_ROUNDS of latency, and PyTorch models exported by `exporter`
    (None: the recipe's choice)."""
    recipe = copy.deepcopy(recipe)
    if exporter is not None:
        recipe.setdefault("export", {})["exporter"] = exporter
    if recipe.get("train"):
        recipe["train"]["epochs"] = min(recipe["train"]["epochs"], QUICK_EPOCHS)
    for item in recipe["passes"]:
        schedule = item.get("schedule") or {}
        if "end_epoch" in schedule:
            schedule["end_epoch"] = min(schedule["end_epoch"], QUICK_RAMP_EPOCHS)
    latency = (recipe.get("measure") or {}).get("latency")
    if latency:
        latency.update(warmup=QUICK_ROUNDS[0], runs=QUICK_ROUNDS[1])
    return recipe


@dataclass(frozen=True)
class FineTune:
    """The fine-tune of both quickstart recipes (recipes/quickstart.yaml, keras_quickstart.yaml),
    which prune_digits.py and prune_keras.py repeat by hand."""

    #: The layers pruned (the digits CNN's), each to `sparsity` of its weights.
    layers: tuple[str, ...]
    sparsity: float
    #: Sparsity ramps up over the first `ramp_epochs` of `epochs` epochs.
    ramp_epochs: int
    epochs: int
    lr: float
    batch_size: int
    seed: int
    opset: int


def quickstart_recipes(quick: bool) -> tuple[dict[str, Recipe], FineTune]:
    """Both quickstart recipes by file name (with `quick`, with its settings), and their
    fine-tune settings: read from the recipes, which must agree, so that the by-hand peers
    always run what the recipes say."""
    recipes = {
        name: read_recipe(RECIPES / name, quick)
        for name in ("quickstart.yaml", "keras_quickstart.yaml")
    }
    settings = []
    for raw in recipes.values():
        recipe = compress.load_recipe(raw)
        prune, train = recipe.passes[0], recipe.train
        settings.append(
            FineTune(
                layers=("conv1", "conv2", "fc1", "fc2"),
                sparsity=prune.sparsity,
                ramp_epochs=prune.schedule.end_epoch,
                epochs=train.epochs,
                lr=train.optimizer.lr,
                batch_size=recipe.data.batch_size,
                seed=train.seed,
                opset=recipe.export.opset,
            )
        )
    assert settings[0] == settings[1], f"the quickstart recipes differ: {settings}"
    return recipes, settings[0]


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
        return Candidate(label, None, error_text(exc))
    return Candidate(label, path)


def run_compress(recipe: Recipe, output_dir: Path) -> tuple[Report, list[Candidate], float]:
    """A recipe (as `read_recipe` gives it) through the Python API: its report, its dense
    (DENSE) and compressed (COMPRESS) ONNX files, and its wall time in seconds."""
    started = time.perf_counter()
    report = compress.apply(recipe, output_dir=output_dir, progress=False)
    seconds = time.perf_counter() - started
    assert report.artifacts.baseline_onnx is not None
    candidates = [
        Candidate(DENSE, Path(report.artifacts.baseline_onnx)),
        Candidate(COMPRESS, Path(report.artifacts.onnx)),
    ]
    return report, candidates, seconds


def apply_quietly(raw: Recipe, output_dir: Path) -> Report:
    """compress.apply of a recipe dict, nothing printed (relative paths from `output_dir`)."""
    with native_silence(), quiet():
        return compress.apply(raw, output_dir=output_dir, progress=False, base_dir=output_dir)


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


def input_names(session: ort.InferenceSession) -> list[str]:
    return [meta.name for meta in session.get_inputs()]


def feed_for(session: ort.InferenceSession, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The session's inputs, in order, as a contiguous feed."""
    names = input_names(session)
    return {name: np.ascontiguousarray(x) for name, x in zip(names, inputs, strict=True)}


def first_output(session: ort.InferenceSession, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return session.run(None, feed_for(session, inputs))[0]


def accuracy(session: ort.InferenceSession, val: Split) -> float:
    """Top-1 accuracy of a single-input classifier on all of `val` in one batch."""
    logits = first_output(session, [val[0]])
    return float(np.mean(np.argmax(logits, axis=-1) == val[1]))


def p50_latencies(
    sessions: Mapping[str, ort.InferenceSession],
    inputs: Sequence[np.ndarray],
    rounds: tuple[int, int] = DIGITS_ROUNDS,
) -> dict[str, float]:
    """Median ms per inference over rounds[1] rounds after rounds[0] warm-up rounds; every
    round runs all models, alternating the order."""
    warmup, runs = rounds
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
    paths: Mapping[str, Path],
    val: Split,
    *,
    rounds: tuple[int, int] | None = DIGITS_ROUNDS,
    constants: bool = False,
) -> dict[str, Measured]:
    """Accuracy on val, float weights and their sparsity (with `constants`, Constant-node
    tensors count too), sizes and, unless `rounds` is None, the p50 at batch 1 of each ONNX
    file."""
    sessions = {label: make_session(path) for label, path in paths.items()}
    latencies = p50_latencies(sessions, [val[0][:1]], rounds) if rounds else {}
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


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (rows, features) arrays."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence embeddings: the mean of `hidden` over the tokens `mask` keeps."""
    weights = mask[..., None].astype(np.float64)
    return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def pooled_cosines(
    outputs: Mapping[str, np.ndarray], mask: np.ndarray, reference: str
) -> dict[str, dict[str, float]]:
    """Minimum and mean cosine with the `reference` output of each output's mean-pooled
    embeddings."""
    pooled = {label: mean_pooled(values, mask) for label, values in outputs.items()}
    fidelity = {}
    for label, values in pooled.items():
        similarity = cosines(values, pooled[reference])
        fidelity[label] = {
            "cosine_min": float(similarity.min()),
            "cosine_mean": float(similarity.mean()),
        }
    return fidelity


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


#: Extra rows of `measured_rows` and `comparison_rows`: a name, and how to show a cell.
Extra = Sequence[tuple[str, Callable[..., str]]]


def measured_rows(
    labels: Sequence[str],
    results: Mapping[str, Measured],
    errors: Mapping[str, str],
    *,
    params: tuple[str, str] = ("stored float weights", "weight sparsity"),
    before_params: Extra = (),
    after_gzip: Extra = (),
) -> list[Row]:
    """Whether each column exported, then what `measure` read from its file: accuracy, float
    weights and their sparsity (named `params`), sizes, p50 latency; `before_params` and
    `after_gzip` rows where they say."""
    cells = column_cells(labels, results)
    return [
        export_row(labels, errors),
        ("val accuracy", cells(lambda m: f"{m.accuracy:.2%}")),
        *((name, cells(show)) for name, show in before_params),
        (params[0], cells(lambda m: f"{m.params:,}")),
        (params[1], cells(lambda m: f"{m.sparsity:.2%}")),
        ("size (bytes)", cells(lambda m: f"{m.size_bytes:,}")),
        ("gzip -9 size (bytes)", cells(lambda m: f"{m.gzip_bytes:,}")),
        *((name, cells(show)) for name, show in after_gzip),
        ("p50 latency, batch 1 (ms)", cells(p50_text)),
    ]


def comparison_rows(
    title: str,
    labels: Sequence[str],
    results: Mapping[str, Measured],
    reference: str,
    *,
    after_gzip: Extra = (),
    after: Extra = (),
) -> list[Row]:
    """A title row, then each column's sizes and p50 latency as ratios to the `reference`
    column's and its accuracy difference in points; `after_gzip` and `after` rows (shown as
    show(value, reference value)) where they say."""
    cells = comparison_cells(labels, results, reference)
    return [
        (title, []),
        ("  size", cells(lambda m, b: ratio(m.size_bytes, b.size_bytes))),
        ("  gzip size", cells(lambda m, b: ratio(m.gzip_bytes, b.gzip_bytes))),
        *((name, cells(show)) for name, show in after_gzip),
        ("  p50 latency", cells(p50_ratio)),
        ("  accuracy (points)", cells(lambda m, b: points(m.accuracy - b.accuracy))),
        *((name, cells(show)) for name, show in after),
    ]


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
