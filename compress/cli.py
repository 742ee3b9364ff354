"""The `compress` command line: thin click commands over the Python API.

Exit codes: 0 success; 1 a budget failed; 2 bad usage or invalid recipe; 3 the model failed to
load, train, export or measure. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from compress.errors import EXIT_BUDGET, EXIT_MODEL, EXIT_USAGE, CompressError


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn toolkit errors into a message and its exit code; anything else is exit 3."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CompressError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # an unexpected failure is still one line and a known code
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_MODEL)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compress")
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
    from compress.report.table import print_table

    report = run_recipe(
        recipe, output_dir=output_dir, progress=False if (no_progress or as_json) else None
    )
    if as_json:
        click.echo(report.to_json(), nl=False)
    else:
        print_table(report)
    failed = [b for b in report.budgets if b.status == "fail"]
    if failed:
        names = ", ".join(f"{b.metric} ({b.limit}, got {b.value})" for b in failed)
        click.echo(f"error: budget failed: {names}", err=True)
        sys.exit(EXIT_BUDGET)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@_friendly_errors
def validate(recipe: str) -> None:
    """Check RECIPE's schema, load its model and resolve every pass's targets."""
    from compress.planning import plan
    from compress.recipe import load_recipe

    result = plan(load_recipe(recipe))
    click.echo(
        f"{recipe}: valid ({result.framework}, {result.params:,} params, "
        f"{len(result.passes)} pass(es))"
    )


@cli.command(name="plan")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_friendly_errors
def plan_command(recipe: str, as_json: bool) -> None:
    """Show what each pass of RECIPE will touch, before running it."""
    from dataclasses import asdict

    from compress.planning import plan
    from compress.recipe import load_recipe

    result = plan(load_recipe(recipe))
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
        return
    click.echo(f"model: {result.framework}, {result.params:,} params")
    for index, step in enumerate(result.passes, start=1):
        click.echo(
            f"pass {index}: {step['type']}: {len(step['layers'])} layer(s), "
            f"{step['weights_before']:,} weights -> {step['nonzero_after']:,} nonzero"
        )
        for layer in step["layers"]:
            click.echo(
                f"  {layer['name']:<32} {layer['kind']:<14} "
                f"{layer['weights']:>10,} -> {layer['nonzero_after']:>10,}"
            )


@cli.command()
@_friendly_errors
def passes() -> None:
    """List the registered pass types and their fields."""
    from compress.passes import PASS_TYPES

    for cls in PASS_TYPES:
        click.echo(f"{cls.model_fields['type'].default}: {(cls.__doc__ or '').strip()}")
        for name, field in cls.model_fields.items():
            if name == "type":
                continue
            if field.is_required():
                default = "required"
            else:
                default = f"default {field.get_default(call_default_factory=True)!r}"
            hint = f" - {field.description}" if field.description else ""
            click.echo(f"  {name}: {_type_name(field.annotation)} ({default}){hint}")


def _type_name(annotation: Any) -> str:
    """A short readable type: Literal values as a|b, Optional as `X | None`, models by name."""
    from typing import Literal, Union, get_args, get_origin

    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "|".join(str(arg) for arg in args)
    if origin is Union or type(annotation).__name__ == "UnionType":
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def main() -> None:
    """Console-script entry point; click's own usage errors exit 2 as documented."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
