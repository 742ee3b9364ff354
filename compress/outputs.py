"""Where a run writes, checked before any work: writable, and never over an input file.

Files are produced in a hidden staging directory inside the output directory and moved into
place only when the run succeeded, so a failed run leaves no partial ONNX or report behind.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from compress.errors import UsageError
from compress.recipe import Recipe, referenced_file


@dataclass
class OutputPlan:
    directory: Path
    onnx_name: str
    staging: Path | None = None
    staged: list[str] = field(default_factory=list)
    #: The saved framework model (channel-pruned models), when the run writes one.
    model_name: str | None = None

    @property
    def baseline_name(self) -> str:
        return self.onnx_name.removesuffix(".onnx") + ".baseline.onnx"

    def pruned_model_name(self, suffix: str) -> str:
        return self.onnx_name.removesuffix(".onnx") + ".pruned" + suffix

    def stage(self, name: str) -> Path:
        """Path inside the staging directory for an artifact that will be published as `name`."""
        assert self.staging is not None, "open() the plan first"
        if name not in self.staged:
            self.staged.append(name)
        return self.staging / name

    def scratch(self, name: str) -> Path:
        """Path inside the staging directory for an intermediate file that is not published."""
        assert self.staging is not None, "open() the plan first"
        return self.staging / name

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=".compress-", dir=self.directory))
        except OSError as exc:
            raise UsageError(
                f"cannot write to output directory {self.directory}: {exc.strerror or exc}"
            ) from None

    def publish(self) -> None:
        """Move every staged artifact into the output directory (each move is atomic)."""
        assert self.staging is not None
        for name in self.staged:
            (self.staging / name).replace(self.directory / name)

    def close(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def plan_outputs(recipe: Recipe, output_dir: str | Path | None) -> OutputPlan:
    """The output directory (-o, else the export path's directory) and artifact names."""
    export = Path(recipe.export.path)
    directory = Path(output_dir).resolve() if output_dir else recipe.resolve(str(export.parent))
    plan = OutputPlan(directory=directory, onnx_name=export.name)
    inputs = recipe_inputs(recipe)
    models = [plan.pruned_model_name(suffix) for suffix in (".safetensors", ".keras")]
    names = (plan.onnx_name, plan.baseline_name, "report.json", "report.md", "report.html", *models)
    for name in names:
        if (directory / name).resolve() in inputs:
            raise UsageError(f"refusing to overwrite the input file {directory / name}")
    return plan


def recipe_inputs(recipe: Recipe) -> set[Path]:
    """The files a run of `recipe` reads: the recipe, the model's source and weights, the data
    source file, and the files its passes name (a teacher's weights)."""
    references = [recipe.model.source, recipe.model.weights]
    references.append(recipe.data.source if recipe.data else None)
    references += [ref for config in recipe.passes for _, ref in config.references()]
    files = [referenced_file(ref) for ref in references if ref]
    inputs = {recipe.resolve(file) for file in files if file}
    if recipe.path:
        inputs.add(recipe.path)
    return {path.resolve() for path in inputs}


def tool_directory(
    recipe: Recipe, output_dir: str | Path | None, folder: str, writes: tuple[str, ...]
) -> Path:
    """Where `compress analyze` and `tune` write: -o, else `folder` beside the export path.
    UsageError when one of the recipe's inputs is among `writes` (names in the directory, a
    name ending in "/" standing for everything under that folder)."""
    directory = (
        Path(output_dir).resolve()
        if output_dir
        else recipe.resolve(str(Path(recipe.export.path).parent)) / folder
    )
    for path in recipe_inputs(recipe):
        for name in writes:
            target = (directory / name).resolve()
            if path == target or (name.endswith("/") and target in path.parents):
                raise UsageError(
                    f"refusing to write into {directory}: compress {folder} writes {name} there, "
                    f"over the input file {path}; choose another output directory (-o)"
                )
    return directory
