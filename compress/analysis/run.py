"""`compress analyze`: load the recipe's model, export and verify its baseline once, then scan
each pass of the recipe on it alone (layers, groups or nodes one at a time), scored on val.
Writes analysis.json and analysis.html atomically into the output directory."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import compress.interrupts as interrupts
from compress.analysis.html import render_analysis
from compress.analysis.scans import LEVELS, SCAN, LevelScan
from compress.analysis.schema import Analysis, PassAnalysis
from compress.analysis.subject import SCAN_SAMPLES, Subject, scorer_for
from compress.atomic import write_text_or_fail
from compress.backends import load_model
from compress.backends.base import PassContext
from compress.cpu import cpu_name, speed_features
from compress.data import load_data
from compress.metrics import drop_unit
from compress.outputs import record_written, tool_directory
from compress.passes import PassConfig, role_for
from compress.pipeline import export_verified, unexpected_failures
from compress.progress import Reporter, progress_wanted
from compress.recipe import Recipe, as_recipe
from compress.samples import parity_samples
from compress.version import __version__

#: Levels each layer (group) is pruned to alone.
SCAN_LEVELS = (0.3, 0.5, 0.7, 0.9)

#: What `compress analyze` writes into its output directory.
ANALYSIS_FILES = ("analysis.json", "analysis.html")


def analyze(
    recipe: Recipe | str | Path | Mapping[str, Any],
    output_dir: str | Path | None = None,
    progress: bool | None = None,
    samples: int = SCAN_SAMPLES,
    levels: Sequence[float] = SCAN_LEVELS,
    base_dir: str | Path | None = None,
) -> Analysis:
    """Scan every pass of `recipe` for per-layer sensitivity on its model as loaded; write
    analysis.json and analysis.html to `output_dir` (default: `<export dir>/analysis`)."""
    recipe = as_recipe(recipe, base_dir)
    reporter = Reporter(progress_wanted(progress))
    directory = tool_directory(recipe, output_dir, "analysis", ANALYSIS_FILES)
    started = time.perf_counter()
    with prepared(recipe, reporter, samples, "compress analyze") as subject:
        passes, skipped = [], []
        for index, config in enumerate(recipe.passes):
            reporter.stage(f"pass {index + 1}/{len(recipe.passes)}: {config.type}")
            result = scan_pass(subject, config, index, sorted(levels))
            if isinstance(result, str):
                skipped.append({"index": index, "type": config.type, "why": result})
            else:
                passes.append(result)
    analysis = Analysis(
        tool_version=__version__,
        recipe={"name": recipe.name, "path": str(recipe.path) if recipe.path else None},
        framework=subject.backend.name,
        measure=subject.scorer.measure,
        metric=subject.scorer.metric if subject.scorer.labelled else None,
        drop_unit=drop_unit(recipe.evaluate.metric if recipe.evaluate else None),
        baseline_score=subject.scorer.reference_score,
        samples=len(subject.scorer.inputs[0]),
        passes=passes,
        skipped=skipped,
        environment={"cpu": cpu_name(), "cpu_features": speed_features()},
        seconds=round(time.perf_counter() - started, 2),
        directory=str(directory),
    )
    json_name, html_name = ANALYSIS_FILES
    interrupts.check()  # a signal a library swallowed still publishes nothing
    write_text_or_fail(directory / json_name, analysis.to_json(), "analysis")
    write_text_or_fail(directory / html_name, render_analysis(analysis), "analysis")
    record_written(directory, ANALYSIS_FILES, "compress analyze", replace=True)
    return analysis


@contextmanager
def prepared(recipe: Recipe, reporter: Reporter, samples: int, usage: str) -> Iterator[Subject]:
    """The recipe's model with its verified baseline in a scratch folder (removed after), the
    val scorer bound to it; unexpected failures said as the pipeline says them."""
    with (
        tempfile.TemporaryDirectory(prefix="compress-") as folder,
        unexpected_failures(recipe, reporter),
    ):
        yield _prepare(recipe, reporter, Path(folder), samples, usage)


def _prepare(
    recipe: Recipe, reporter: Reporter, scratch: Path, samples: int, usage: str
) -> Subject:
    reporter.stage("loading model")
    backend, model = load_model(recipe)
    data = load_data(recipe)
    context = PassContext(recipe=recipe, data=data, reporter=reporter, backend=backend)
    reporter.stage("exporting the baseline")
    baseline = scratch / "baseline.onnx"
    export = export_verified(
        backend, model, recipe, baseline, parity_samples(recipe, data), reporter
    )
    scorer = scorer_for(context, baseline, samples, usage)
    return Subject(backend, model, context, baseline, scorer, scratch, export)


def scan_pass(
    subject: Subject, config: PassConfig, index: int, levels: Sequence[float]
) -> PassAnalysis | str:
    """The scan of one pass (its class's `scan` role, else its `levels` role), or why it has
    none."""
    scan, by_level = role_for(SCAN, config), role_for(LEVELS, config)
    if scan is None and by_level is None:
        return config.no_scan or f"{type(config).label()} passes have no per-layer scan"
    started = time.perf_counter()
    result = (
        scan(subject, config, levels)
        if scan
        else level_analysis(config, by_level(subject, config, levels), levels)
    )
    result.index, result.seconds = index, round(time.perf_counter() - started, 2)
    return result


def level_analysis(config: PassConfig, scanned: LevelScan, levels: Sequence[float]) -> PassAnalysis:
    """A levels scan as analysis.json shows it: the most sensitive layers first."""
    rows = sorted(scanned.rows, key=lambda row: -row.worst)
    return PassAnalysis(
        index=0,
        type=config.type,
        kind=scanned.kind,
        method=config.variant,
        levels=list(levels),
        layers=rows,
        notes=scanned.notes,
        seconds=0.0,
    )
