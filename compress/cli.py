"""The `compress` command line: thin click commands over the Python API.

Exit codes: 0 success; 1 a budget failed; 2 bad usage or invalid recipe; 3 the model failed to
load, train, export or measure. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

import compress.interrupts as interrupts
from compress.errors import EXIT_BUDGET, EXIT_MODEL, EXIT_USAGE, CompressError, unexpected


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn toolkit errors into a message and its exit code; anything else is exit 3."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            click.echo("interrupted: nothing was written", err=True)
            sys.exit(getattr(exc, "exit_code", 130))
        except BrokenPipeError:
            _closed_pipe()
        except Exception as exc:
            signalled = interrupts.received_exit_code()
            if signalled is not None:  # a library turned the interrupt into a failure
                click.echo("interrupted: nothing was written", err=True)
                sys.exit(signalled)
            if isinstance(exc, CompressError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(exc.exit_code)
            # an unexpected failure is still one line and a known code
            if os.environ.get("COMPRESS_DEBUG") == "1":
                raise
            doing = f"running `{click.get_current_context().command_path}`"
            click.echo(f"error: {unexpected(exc, doing)}", err=True)
            sys.exit(EXIT_MODEL)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compress-recipes")
def cli() -> None:
    """Prune, quantize and distill models from YAML recipes; export ONNX; measure the result."""


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), help="Where to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@_friendly_errors
def apply(recipe: str, output_dir: str | None, as_json: bool, no_progress: bool) -> None:
    """Run RECIPE: passes, ONNX export, and a side-by-side report."""
    from compress.pipeline import apply as run_recipe
    from compress.report.rows import budget_lines
    from compress.report.table import print_table

    report = run_recipe(
        recipe, output_dir=output_dir, progress=False if (no_progress or as_json) else None
    )
    if as_json:
        click.echo(report.to_json(), nl=False)
    else:
        print_table(report)
    failed = [b for b in budget_lines(report) if b.status == "fail"]
    if failed:
        names = ", ".join(f"{b.metric} ({b.limit}, got {b.value})" for b in failed)
        click.echo(f"error: budget failed: {names}", err=True)
        sys.exit(EXIT_BUDGET)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Where to write (default: <export dir>/analysis).",
)
@click.option("--json", "as_json", is_flag=True, help="Print analysis.json on stdout.")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Val samples each variant is scored on.",
)
@click.option(
    "--levels",
    default="0.3,0.5,0.7,0.9",
    show_default=True,
    help="Comma-separated levels each layer (group) is pruned to alone.",
    callback=lambda _context, _param, value: _levels_option(value),
)
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@_friendly_errors
def analyze(
    recipe: str,
    output_dir: str | None,
    as_json: bool,
    samples: int,
    levels: list[float],
    no_progress: bool,
) -> None:
    """Per-layer sensitivity of each pass of RECIPE: each layer, channel group or quantized
    node changed alone, scored on val (analysis.json, analysis.html)."""
    from compress.analysis.run import analyze as run_analysis
    from compress.analysis.table import print_analysis

    result = run_analysis(
        recipe,
        output_dir=output_dir,
        progress=False if (no_progress or as_json) else None,
        samples=samples,
        levels=levels,
    )
    if as_json:
        click.echo(result.to_json(), nl=False)
    else:
        print_analysis(result, result.directory)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Pipeline runs the search may make.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Where to write tuned.yaml, tuning.json/html and the trials (default: <export dir>/tune).",
)
@click.option(
    "--algorithms",
    callback=lambda _ctx, _param, text: _names_option(text),
    help="Weight-only width search: the algorithms to try, comma-separated "
    "(default gptq,hqq,awq,rtn; gptq and awq only with data).",
)
@click.option(
    "--block-sizes",
    callback=lambda _ctx, _param, text: _sizes_option(text),
    help="Weight-only width search: the block sizes to try, comma-separated (default 128,64,32).",
)
@click.option("--json", "as_json", is_flag=True, help="Print tuning.json on stdout.")
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@_friendly_errors
def tune(
    recipe: str,
    trials: int,
    output_dir: str | None,
    algorithms: tuple[str, ...] | None,
    block_sizes: tuple[int, ...] | None,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Search RECIPE for the most compression that meets every budget: its prune level (per
    layer, from sensitivity) or, without a prune pass, its 4-bit weight-only widths (algorithm,
    block size, nodes at 8 bits); write tuned.yaml, which `compress apply` reproduces (exit 1
    when no trial met the budgets, 130 when interrupted)."""
    from compress.tuning.search import tune as run_tune
    from compress.tuning.table import print_tuning

    result = run_tune(
        recipe,
        trials=trials,
        output_dir=output_dir,
        progress=False if (no_progress or as_json) else None,
        algorithms=algorithms,
        block_sizes=block_sizes,
    )
    if as_json:
        click.echo(result.to_json(), nl=False)
    else:
        print_tuning(result)
    if result.interrupted:
        click.echo("interrupted: the best trial so far is in tuned.yaml", err=True)
        sys.exit(130)
    if result.best is None:
        click.echo("error: no trial met every budget (see tuning.html)", err=True)
        sys.exit(EXIT_BUDGET)


def _names_option(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of names (None when not given)."""
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise click.BadParameter("give at least one name, comma-separated")
    return names


def _sizes_option(text: str | None) -> tuple[int, ...] | None:
    """--block-sizes: powers of two of at least 16, comma-separated."""
    names = _names_option(text)
    if names is None:
        return None
    try:
        sizes = tuple(int(name) for name in names)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of whole numbers, like 128,32") from None
    from compress.passes.quantize import block_size_problem

    problem = next(filter(None, map(block_size_problem, sizes)), None)
    if problem:
        raise click.BadParameter(problem)
    return sizes


def _levels_option(text: str) -> list[float]:
    """--levels: fractions in (0, 1), comma-separated."""
    try:
        levels = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        levels = []
    if not levels or not all(0.0 < level < 1.0 for level in levels):
        raise click.BadParameter(f"{text!r}: give levels in (0, 1), e.g. 0.3,0.5,0.7,0.9")
    return levels


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--usage",
    type=click.Choice(["apply", "session"]),
    default="apply",
    show_default=True,
    help="How RECIPE will run: `compress apply` (built-in trainer) or a CompressionSession.",
)
@_friendly_errors
def validate(recipe: str, usage: str) -> None:
    """Dry-run RECIPE: its schema, every callable it names, its data against model.inputs, one
    forward pass, the loss on a batch and every pass's targets; say what each usage needs
    (exit 2 when RECIPE cannot run in --usage)."""
    from compress.errors import RecipeError
    from compress.planning import validate as dry_run
    from compress.recipe import USAGE_NAMES, load_recipe, usage_problems

    loaded = load_recipe(recipe)
    result = dry_run(loaded)
    problems = {name: usage_problems(loaded, name) for name in USAGE_NAMES}
    if problems[usage]:
        hint = "".join(
            f" (it can with {USAGE_NAMES[name]}: --usage {name})"
            for name in USAGE_NAMES
            if not problems[name]
        )
        heading = f"{recipe} cannot run with {USAGE_NAMES[usage]}{hint}:"
        raise RecipeError("\n".join([heading, *(str(problem) for problem in problems[usage])]))
    click.echo(
        f"{recipe}: valid ({result.framework}, {result.framework_params:,} params in the "
        f"{result.framework} model, {len(loaded.passes)} pass(es))"
    )
    if result.splits:
        shown = ", ".join(f"{name} {count:,}" for name, count in result.splits.items())
        click.echo(f"  data: {shown} samples; the model ran on a batch of each")
    else:
        click.echo("  data: none; the model ran on inputs made up from model.inputs")
    for name, found in problems.items():
        verdict = "ok" if not found else "needs changes:"
        click.echo(f"  {USAGE_NAMES[name]}: {verdict}")
        for problem in found:
            click.echo(f"    {problem}")


@cli.command(name="plan")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_friendly_errors
def plan_command(recipe: str, as_json: bool) -> None:
    """Show what each pass of RECIPE will do, before running it: parameters and MACs counted
    on exported ONNX files as the report counts them, channel groups, quantized nodes."""
    from dataclasses import asdict

    from compress.plan_text import plan_lines
    from compress.planning import plan
    from compress.recipe import load_recipe

    result = plan(load_recipe(recipe))
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
        return
    for line in plan_lines(result):
        click.echo(line)


@cli.command(name="check")
@click.argument("report", type=click.Path(dir_okay=True))
@click.option(
    "--budget",
    "budget",
    type=click.Path(),
    help="Budget file (YAML) to use instead of the budgets of the report's recipe.",
)
@click.option("--baseline", type=click.Path(), help="Earlier report.json to compare with.")
@click.option(
    "--max-increase",
    metavar="PCT",
    help="How much size and gzip size may grow over the baseline (default 2%).",
)
@click.option(
    "--warn-margin",
    metavar="PCT",
    help="Warn when a passing value is within PCT of an absolute limit.",
)
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--markdown", "markdown", type=click.Path(), help="Write a Markdown summary here.")
@click.option(
    "--update-baseline",
    is_flag=True,
    help="If the check passes, write REPORT over the --baseline file (atomically).",
)
@click.option(
    "--allow-other-model",
    is_flag=True,
    help="Compare with a --baseline of another model (refused by default) and warn instead.",
)
@_friendly_errors
def check_command(
    report: str,
    budget: str | None,
    baseline: str | None,
    max_increase: str | None,
    warn_margin: str | None,
    strict: bool,
    as_json: bool,
    markdown: str | None,
    update_baseline: bool,
    allow_other_model: bool,
) -> None:
    """Gate REPORT on budgets and on a baseline report (exit 1 when one fails).

    Budgets come from the recipe inside REPORT, or from --budget FILE. With --baseline, the
    size figures may grow by at most --max-increase; other relative limits (latency too) are
    set in the budget file's `relative:` section.
    """
    from compress.atomic import refuse_overwriting
    from compress.check import check
    from compress.report.gate import check_markdown, print_check

    if markdown:
        inputs = {"report": report, "budget file": budget, "baseline": baseline}
        refuse_overwriting(Path(markdown), inputs, "the Markdown summary")
    result = check(
        report,
        budget_path=budget,
        baseline_path=baseline,
        max_increase=_percent_option("--max-increase", max_increase),
        warn_margin=_percent_option("--warn-margin", warn_margin),
        strict=strict,
        update_baseline=update_baseline,
        other_model_allowed=allow_other_model,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_check(result, _console())
    summary = check_markdown(result)
    if markdown:
        _write_markdown(Path(markdown), summary)
    _append_step_summary(summary)
    if result.status == "fail":
        failed = [row for row in result.rows if row.status == "fail"]
        if not failed:
            click.echo("error: check failed: warnings fail with --strict", err=True)
        else:
            names = ", ".join(
                f"{row.metric} ({row.limit_text}{'; ' + row.note if row.note else ''})"
                for row in failed
            )
            click.echo(f"error: check failed: {names}", err=True)
    sys.exit(result.exit_code)


@cli.command(name="compare")
@click.argument("report_a", metavar="A", type=click.Path(dir_okay=True))
@click.argument("report_b", metavar="B", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@_friendly_errors
def compare_command(report_a: str, report_b: str, as_json: bool) -> None:
    """Show the compressed figures of reports A and B side by side, with B's change vs A."""
    from compress.compare import compare_files
    from compress.report.gate import print_comparison

    comparison = compare_files(report_a, report_b)
    if as_json:
        click.echo(json.dumps(comparison.to_dict(), indent=2))
    else:
        print_comparison(comparison, _console())


def _percent_option(name: str, value: str | None) -> float | None:
    from compress.errors import UsageError
    from compress.units import parse_fraction

    if value is None:
        return None
    try:
        return parse_fraction(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _console() -> Any:
    """stdout for tables; wide enough for the check table when it is not a terminal."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))
    return console


def _write_markdown(path: Path, text: str) -> None:
    from compress.atomic import write_text_or_fail

    write_text_or_fail(path, text)


def _append_step_summary(text: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY (GitHub Actions' job summary) when it is set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with Path(target).open("a", encoding="utf-8") as stream:
            stream.write(text + "\n")
    except OSError as exc:
        click.echo(
            f"warning: cannot append to GITHUB_STEP_SUMMARY ({target}): {exc.strerror or exc}",
            err=True,
        )


@cli.command()
@_friendly_errors
def passes() -> None:
    """List the registered pass algorithms and their fields."""
    import compress.backends  # noqa: F401 - registers the built-in handlers
    from compress.passes.registry import ONNX, backends_for, pass_types

    for cls in pass_types():
        doc = " ".join((cls.__doc__ or "").split())
        click.echo(f"{cls.label()}: {doc}")
        backends = [b if b != ONNX else "the exported ONNX file" for b in backends_for(cls)]
        click.echo(f"  runs on: {', '.join(backends) or 'no backend'}")
        for name, field in cls.model_fields.items():
            if name == "type" or name in cls.selectors:
                continue
            if field.is_required():
                default = "required"
            else:
                default = f"default {field.get_default(call_default_factory=True)!r}"
            hint = f" - {field.description}" if field.description else ""
            click.echo(f"  {name}: {_type_name(field.annotation)} ({default}){hint}")


def _type_name(annotation: Any) -> str:
    """A short readable type: Literal values as a|b, Optional as `X | None`, models by name."""
    from typing import Annotated, Literal, Union, get_args, get_origin

    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:  # constraints and union tags: the type they annotate
        return _type_name(args[0])
    if origin is Literal:
        return "|".join(str(arg) for arg in args)
    if origin is Union or type(annotation).__name__ == "UnionType":
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


#: Exit status when the reader of stdout went away (`compress passes | head`): 128 + SIGPIPE,
#: as shells report a command that a closed pipe stopped.
EXIT_CLOSED_PIPE = 141


def _closed_pipe() -> None:
    """stdout's reader closed the pipe: stop quietly (Python would print a traceback when it
    flushes stdout at exit, so stdout goes to /dev/null first)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_CLOSED_PIPE)


def main() -> None:
    """Console-script entry point; click's own usage errors exit 2 as documented; SIGINT and
    SIGTERM end any command with 130 and 143 (compress/interrupts.py)."""
    interrupts.handle_signals()
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # raised outside a command (click's own --help output)
        _closed_pipe()
