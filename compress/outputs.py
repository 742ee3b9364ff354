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
from compress.recipe import Recipe


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
    source = recipe.model.source
    inputs = {recipe.resolve(source.rsplit(":", 1)[0])} if source else set()
    if recipe.model.weights:
        inputs.add(recipe.resolve(recipe.model.weights))
    if recipe.path:
        inputs.add(recipe.path)
    models = [plan.pruned_model_name(suffix) for suffix in (".safetensors", ".keras")]
    names = (plan.onnx_name, plan.baseline_name, "report.json", "report.md", "report.html", *models)
    for name in names:
        if (directory / name).resolve() in inputs:
            raise UsageError(f"refusing to overwrite the input file {directory / name}")
    return plan


def tool_directory(recipe: Recipe, output_dir: str | Path | None, folder: str) -> Path:
    """Where `compress analyze` and `tune` write: -o, else `folder` beside the export path."""
    if output_dir:
        return Path(output_dir).resolve()
    return recipe.resolve(str(Path(recipe.export.path).parent)) / folder
