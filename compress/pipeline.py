"""The engine behind `compress apply`: load -> export baseline -> passes -> export -> measure
-> report. Every figure is measured on the exported ONNX files, both models in the same run."""

from __future__ import annotations

import platform
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.backends import load_model
from compress.backends.base import Backend, PassContext
from compress.comparison import max_abs_diff
from compress.cpu import cpu_name, speed_features
from compress.data import Splits, load_data
from compress.dry_run import check_data_shapes, check_runs
from compress.errors import CompressError, ModelError, unexpected
from compress.generation_step import (
    GenerationFolders,
    build_folders,
    generation_transforms,
    time_generation,
)
from compress.measure.accuracy import fidelity, score
from compress.measure.language import language_scores
from compress.measure.latency import measure_latency
from compress.measure.macs import macs_inputs, measure_macs
from compress.measure.size import model_size
from compress.measure.weights import WeightSummary, float_weight_names, summarize
from compress.onnx import inspect as onnx_inspect
from compress.onnx import runtime
from compress.onnx.files import copy_model
from compress.outputs import OutputPlan, plan_outputs
from compress.passes import PassRecord, handler_for
from compress.passes.registry import ONNX
from compress.passes.targets import TargetError
from compress.progress import Reporter, progress_wanted
from compress.recipe import Recipe, as_recipe, check_usage
from compress.references import resolve_references
from compress.report.budgets import evaluate_budgets
from compress.report.html import render_html
from compress.report.markdown import render_markdown
from compress.report.schema import SLOWER_THRESHOLD, Artifacts, ExportRecord, Report
from compress.samples import REAL_PARITY_HINT, ParityInputs, parity_samples
from compress.units import shown
from compress.version import __version__


def apply(
    recipe: Recipe | str | Path | Mapping[str, Any],
    model: Any = None,
    output_dir: str | Path | None = None,
    progress: bool | None = None,
    base_dir: str | Path | None = None,
) -> Report:
    """Run a recipe end to end and return its report (also written to the output directory).

    `recipe` is a file, a Recipe, or a dict as the YAML would parse (its paths relative to
    `base_dir`, default the cwd). `model` replaces the recipe's model source with an in-memory
    model (it is not modified). Budget results are in `report.budgets`; this function does not
    raise for a failed budget.
    """
    recipe = check_usage(as_recipe(recipe, base_dir), "apply")
    return run(recipe, model, output_dir, progress)


@dataclass(frozen=True)
class VerifiedBaseline:
    """A baseline export already verified for a recipe that differs from this one only in its
    passes (`compress tune`'s scan): each trial copies it instead of exporting again."""

    path: Path
    record: ExportRecord


@dataclass(frozen=True)
class Trained:
    """A model whose model-stage passes ran outside the pipeline (in a CompressionSession's
    loop): the backend, the trained model and the records of those passes."""

    backend: Backend
    model: Any
    records: list[PassRecord]


def run(
    recipe: Recipe,
    model: Any = None,
    output_dir: str | Path | None = None,
    progress: bool | None = None,
    trained: Trained | None = None,
    verified: VerifiedBaseline | None = None,
) -> Report:
    """The one apply path, for `compress apply` and CompressionSession.export: export the
    baseline (`model`, else the recipe's model; `verified`'s copy when given), run the
    model-stage passes unless `trained` holds their result, export, run the ONNX-stage passes,
    measure both, write the reports."""
    reporter = Reporter(progress_wanted(progress))
    plan = plan_outputs(recipe, output_dir)
    plan.open()
    try:
        with unexpected_failures(recipe, reporter):
            report = _run(recipe, model, plan, reporter, trained, verified)
        plan.publish()
    finally:
        plan.close()
    return report


@contextmanager
def unexpected_failures(recipe: Recipe, reporter: Reporter) -> Iterator[None]:
    """Turn an exception nobody anticipated into one line: the stage, the model, the recipe."""
    try:
        yield
    except CompressError:
        raise
    except Exception as exc:
        model = recipe.model.source or "the given model"
        where = f" of {recipe.path.name}" if recipe.path else ""
        raise unexpected(exc, f"{reporter.current} (model {model}{where})") from exc


def _run(
    recipe: Recipe,
    given: Any,
    plan: OutputPlan,
    reporter: Reporter,
    trained: Trained | None,
    verified: VerifiedBaseline | None,
) -> Report:
    if trained is None:
        reporter.stage("loading model")
        resolve_references(recipe, model=given is None)
        backend, model = load_model(recipe, given)
        if given is not None:
            model = backend.copy(given)
    else:
        backend, model = trained.backend, given
    data = load_data(recipe)
    check_data_shapes(recipe, data)
    macs_inputs(recipe, data)  # a dynamic dimension without a size fails now, not after training
    check_runs(recipe, backend, model)
    generation_transforms(recipe)  # a pass the generation decoder cannot take fails now
    samples = parity_samples(recipe, data)

    baseline_path = plan.stage(plan.baseline_name)
    if verified is None:
        reporter.stage("exporting the baseline")
        baseline_export = export_verified(backend, model, recipe, baseline_path, samples, reporter)
    else:
        copy_model(verified.path, baseline_path)
        baseline_export = verified.record

    context = PassContext(recipe=recipe, data=data, reporter=reporter, backend=backend)
    if trained is None and any(config.allocates for config in recipe.passes):
        recipe = allocate_levels(backend, model, context, baseline_path, plan)
        context.recipe = recipe
    if trained is not None:
        model, records = trained.model, list(trained.records)
    else:
        if any(config.uses_original for config in recipe.passes):
            context.original = backend.copy(model)  # the default teacher: the model as loaded
        model, records = _model_passes(backend, model, context)
    changed = trained is not None or any(config.stage == "model" for config in recipe.passes)
    return _finish(
        backend, model, records, context, plan, samples, baseline_path, baseline_export, changed
    )


def allocate_levels(
    backend: Backend, model: Any, context: PassContext, baseline: Path, plan: OutputPlan
) -> Recipe:
    """The recipe with each allocating pass's levels set from a sensitivity scan of the
    baseline (each pass scanned on the model as loaded)."""
    from compress.analysis.levels import allocated
    from compress.analysis.subject import SCAN_SAMPLES, Subject, scorer_for

    recipe = context.recipe
    scorer = scorer_for(context, baseline, SCAN_SAMPLES, "allocation: sensitivity")
    subject = Subject(backend, model, context, baseline, scorer, plan.scratch(""))
    passes = []
    for index, config in enumerate(recipe.passes):
        if config.allocates:
            context.reporter.stage(f"pass {index + 1}: scanning sensitivity for allocation")
        passes.append(allocated(subject, config) if config.allocates else config)
    return recipe.model_copy(update={"passes": passes})


def _finish(
    backend: Backend,
    model: Any,
    records: list[PassRecord],
    context: PassContext,
    plan: OutputPlan,
    samples: ParityInputs,
    baseline_path: Path,
    baseline_export: ExportRecord,
    changed: bool,
) -> Report:
    """Export the compressed model (unless no pass `changed` the framework model: then the
    ONNX-stage passes start from the baseline's file), run the ONNX-stage passes, measure both,
    write reports."""
    recipe, data, reporter = context.recipe, context.data, context.reporter
    float_path = plan.scratch("compressed.float.onnx")
    if changed:
        reporter.stage("exporting the compressed model")
        compressed_export = export_verified(
            backend, model, recipe, float_path, samples, reporter, baseline_export.exporter
        )
    else:
        copy_model(baseline_path, float_path)
        compressed_export = baseline_export
    compressed_folder = _model_folder(backend, model, recipe, changed, plan)
    if any(config.reshapes for config in recipe.passes):
        plan.model_name = plan.pruned_model_name(backend.model_suffix)
        backend.save_model(model, plan.stage(plan.model_name))
    compressed_path = plan.stage(plan.onnx_name)
    float_names = float_weight_names(baseline_path) | float_weight_names(float_path)
    records += _onnx_passes(float_path, compressed_path, context)
    folders = _generation_folders(context, plan, compressed_folder)

    reporter.stage("measuring both models")
    paths = {"baseline": baseline_path, "compressed": compressed_path}
    metrics, pair_fidelity, summaries = measure_models(recipe, data, paths, float_names)
    if folders is not None and recipe.measure.generation is not None:
        for label, figures in time_generation(recipe, folders, data, reporter).items():
            metrics[label]["generation"] = figures
    metrics["baseline"]["export"] = baseline_export
    metrics["compressed"]["export"] = compressed_export
    before = {layer["name"]: layer for layer in summaries["baseline"].layers}
    layers = [
        {
            **layer,
            "baseline_sparsity": before.get(layer["name"], {}).get("sparsity"),
            "baseline_channels": before.get(layer["name"], {}).get("channels"),
        }
        for layer in summaries["compressed"].layers
    ]
    report = Report(
        tool_version=__version__,
        recipe={
            "name": recipe.name,
            "path": str(recipe.path) if recipe.path else None,
            "spec": recipe.model_dump(mode="json"),
        },
        framework=backend.name,
        baseline=metrics["baseline"],
        compressed=metrics["compressed"],
        fidelity=pair_fidelity,
        layers=layers,
        passes=records,
        artifacts=_artifacts(plan, plan.directory, folders),
        generation=folders.record if folders else None,
        environment=_environment(recipe, backend),
        notes=reporter.notes,
    )
    _add_honesty_notes(report, recipe)
    report.budgets = evaluate_budgets(report, recipe.budgets)
    return _write_reports(report, plan, folders)


def _model_folder(
    backend: Backend, model: Any, recipe: Recipe, changed: bool, plan: OutputPlan
) -> Path | None:
    """The model folder the compressed model is: the recipe's own when no model-stage pass
    changed it, else the compressed model saved as one (weights, config, tokenizer); None for
    a model that did not come from a folder."""
    source = recipe.model_folder
    if source is None or not changed:
        return source
    if any(config.reshapes for config in recipe.passes):
        return None  # its config would not match the cut weights: saved as pruned weights
    plan.model_name = plan.generation_names["model"]
    target = plan.stage(plan.model_name)
    backend.save_folder(model, source, target)
    return target


def _generation_folders(
    context: PassContext, plan: OutputPlan, compressed_source: Path | None
) -> GenerationFolders | None:
    """Both models' generation folders, staged, when the recipe asks for them."""
    if not context.recipe.generation_wanted or compressed_source is None:
        return None
    names = plan.generation_names
    paths = {label: plan.stage(names[label]) for label in ("baseline", "compressed")}
    return build_folders(context, paths, compressed_source)


def _artifacts(
    plan: OutputPlan, directory: Path, folders: GenerationFolders | None
) -> dict[str, Any]:
    """The output files, under `directory`."""
    names = {
        "onnx": plan.onnx_name,
        "baseline_onnx": plan.baseline_name,
        "report_json": "report.json",
        "report_md": "report.md",
        "report_html": "report.html",
        "model": plan.model_name,
    }
    found: dict[str, Any] = {key: str(directory / name) for key, name in names.items() if name}
    if folders is not None:
        pair = {"baseline": folders.baseline, "compressed": folders.compressed}
        found["generation"] = {label: str(directory / f.name) for label, f in pair.items()}
    return found


def _write_reports(report: Report, plan: OutputPlan, folders: GenerationFolders | None) -> Report:
    """Write report.json, .md and .html with artifact names relative to their directory (the
    files move together); returns the report with absolute paths."""
    relative = _artifacts(plan, Path(), folders)
    written = report.model_copy(update={"artifacts": Artifacts(**relative)})
    plan.stage("report.json").write_text(written.to_json(), encoding="utf-8")
    plan.stage("report.md").write_text(render_markdown(written), encoding="utf-8")
    plan.stage("report.html").write_text(render_html(written), encoding="utf-8")
    return report


def _model_passes(
    backend: Backend, model: Any, context: PassContext
) -> tuple[Any, list[PassRecord]]:
    """Run the passes that work on the framework model (training-time ones), in order."""
    records = []
    recipe = context.recipe
    for index, config in enumerate(recipe.passes):
        if config.stage != "model":
            continue
        context.reporter.stage(f"pass {index + 1}/{len(recipe.passes)}: {config.type}")
        started = time.perf_counter()
        try:
            model, info = backend.apply_pass(model, config, context)
        except TargetError as exc:
            raise recipe.error_at(("passes", index, *exc.loc), exc.message) from None
        records.append(config.record_of(info, _since(started)))
    return model, records


def _onnx_passes(source: Path, target: Path, context: PassContext) -> list[PassRecord]:
    """Run the passes that work on the exported ONNX file (post-training quantization), each
    reading the previous file; the last one writes `target`."""
    recipe = context.recipe
    chosen = [(i, c) for i, c in enumerate(recipe.passes) if c.stage == "onnx"]
    if not chosen:
        source.replace(target)
        return []
    records = []
    for step, (index, config) in enumerate(chosen):
        context.reporter.stage(f"pass {index + 1}/{len(recipe.passes)}: {config.type} (ONNX)")
        output = target if step == len(chosen) - 1 else source.with_suffix(f".{step}.onnx")
        started = time.perf_counter()
        info = handler_for(config, ONNX)(source, output, config, context)
        records.append(config.record_of(info, _since(started)))
        source = output
    return records


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def export_verified(
    backend: Backend,
    model: Any,
    recipe: Recipe,
    path: Path,
    samples: ParityInputs,
    reporter: Reporter,
    exporter: str | None = None,
) -> ExportRecord:
    """Export (with `exporter`, the baseline's, when given), run onnx.checker, and compare
    onnxruntime's outputs with the framework's."""
    info = backend.export_onnx(model, recipe, path, exporter)
    for note in info.notes:
        reporter.note(note)
    onnx_inspect.check(path)
    expected = backend.predict(model, samples.arrays)
    actual = runtime.run(runtime.make_session(path), samples.arrays)
    sides = (f"the {backend.name} model's", f"the exported {path.name}'s")
    diff, scale = max_abs_diff(expected, actual, sides)
    allowed = (
        recipe.export.quantized_parity_tolerance
        if info.quantized
        else (recipe.export.parity_tolerance)
    )
    tolerance = allowed * scale
    if not diff <= tolerance:
        raise ModelError(
            f"exported {path.name} disagrees with the {backend.name} model: max abs diff "
            f"{diff:.3g} > {tolerance:.3g} (export.{'quantized_' if info.quantized else ''}"
            f"parity_tolerance), compared on {samples.origin}"
            + ("" if samples.real else REAL_PARITY_HINT)
        )
    opset = onnx_inspect.opset(path)
    if opset != recipe.export.opset:
        reporter.note(
            f"{path.name} was exported at opset {opset} (export.opset asks {recipe.export.opset})"
        )
    return ExportRecord(exporter=info.exporter, opset=opset, parity_max_abs_diff=diff)


def measure_models(
    recipe: Recipe, data: Splits, paths: dict[str, Path], float_names: Collection[str] = ()
) -> tuple[dict[str, dict], dict | None, dict[str, WeightSummary]]:
    """Size, weights, MACs, latency and accuracy (or perplexity) of each ONNX file; the pair's
    fidelity on val; and each file's weight summary (layers named after the float weights
    `float_names`). MACs are of one sample of the inputs latency is timed on (without latency:
    one sample of the val split, else of the calibration split, else generated from
    model.inputs)."""
    metrics: dict[str, dict] = {}
    summaries = {label: summarize(path, float_names) for label, path in paths.items()}
    for label, path in paths.items():
        raw, gz = model_size(path)
        weights = summaries[label]
        metrics[label] = {
            "size_bytes": raw,
            "size_gzip_bytes": gz,
            "params": weights.params,
            "nonzero_params": weights.nonzero_params,
            "sparsity": round(weights.sparsity, 6),
        }
    latency = recipe.measure.latency
    val = data.get("val")
    inputs = macs_inputs(recipe, data)
    for label, macs in measure_macs(paths, inputs).items():
        metrics[label]["macs"] = macs
    if latency is not None:
        for label, stats in measure_latency(paths, latency, inputs).items():
            metrics[label]["latency_ms"] = stats
    if val is None:
        return metrics, None, summaries
    metric = recipe.evaluate.metric if recipe.evaluate else None
    if metric == "perplexity" or (val.targets is val.inputs[0] and recipe.causal_lm):
        # next-token figures, streamed: a window's logits are seq_len x vocabulary floats
        scores, pair = language_scores(paths, val.inputs[0], recipe.eval_batch)
        for label, value in scores.items():
            if metric == "perplexity":
                metrics[label]["perplexity"] = round(value, 6)
        return metrics, pair, summaries
    outputs = {
        label: runtime.predict(runtime.make_session(path), val.inputs, recipe.eval_batch)[0]
        for label, path in paths.items()
    }
    if metric is not None and val.targets is not None:
        for label in paths:
            metrics[label]["accuracy"] = round(
                score(metric, recipe.base_dir, outputs[label], val.targets), 6
            )
    return metrics, fidelity(metric, outputs["baseline"], outputs["compressed"]), summaries


def _environment(recipe: Recipe, backend: Backend) -> dict:
    latency = recipe.measure.latency
    return {
        "python": platform.python_version(),
        **runtime.versions(),
        **backend.versions(),
        "cpu": cpu_name(),
        "cpu_features": speed_features(),
        "platform": platform.platform(),
        "threads": latency.threads if latency else None,
        "device": latency.device if latency else "cpu",
        "execution_provider": runtime.provider(latency.device if latency else "cpu"),
    }


def _add_honesty_notes(report: Report, recipe: Recipe) -> None:
    """Say plainly what the figures mean where users are often misled: speed-ups that are
    slow-downs, sparsity that buys no speed."""
    base, comp = report.baseline.latency_ms, report.compressed.latency_ms
    if base is not None and comp is not None and comp.p50 > 0:
        report.speedup = {
            "p50": round(base.p50 / comp.p50, 4),
            "p90": round(base.p90 / comp.p90, 4),
        }
        if report.speedup["p50"] < SLOWER_THRESHOLD:
            report.notes.append(
                f"SLOWER: the compressed model's p50 latency is {1 / report.speedup['p50']:.2f}x "
                f"the baseline's ({shown('ms', comp.p50)} vs {shown('ms', base.p50)})"
            )
    gained = report.compressed.sparsity - report.baseline.sparsity
    pruned = any(config.sparsifies for config in recipe.passes)
    if pruned and gained > 0.05 and report.compressed.params == report.baseline.params:
        report.notes.append(
            "sparsity by itself shrinks only the gzip size: onnxruntime has no sparse kernels, "
            "so the zeros are still stored and multiplied"
        )
