"""Where a run writes, checked before any work: writable, never over an input file, and never
over a file compress did not write (the directory's WRITTEN file lists those it did).

Files are produced in a hidden staging directory inside the output directory and moved into
place only when the run succeeded, so a failed run leaves no partial ONNX or report behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import compress.interrupts as interrupts
from compress.atomic import write_text_atomic
from compress.errors import UsageError
from compress.recipe import Recipe, referenced_file

#: The file in an output directory that lists what compress wrote there (a name and the
#: command, tab-separated, per line): a command writes over those names only, never over a
#: file of the user's that happens to share a name.
WRITTEN = ".compress-written"


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

    @property
    def generation_names(self) -> dict[str, str]:
        """The folders of a generation export: both models' onnxruntime-genai folders, and
        the compressed model as a model folder (when a model-stage pass changed it)."""
        stem = self.onnx_name.removesuffix(".onnx")
        return {
            "baseline": f"{stem}.baseline.genai",
            "compressed": f"{stem}.genai",
            "model": f"{stem}.hf",
        }

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
        """Move every staged artifact into the output directory (each move is atomic).
        A signal that a library swallowed (one landing in a garbage-collection callback is
        only printed) still stops the command here, before anything is published."""
        assert self.staging is not None
        interrupts.check()
        for name in self.staged:
            staged, target = self.staging / name, self.directory / name
            if staged.is_dir() and target.is_dir():
                _remove(target)  # an earlier run's folder (compress's: refuse_foreign checked)
            staged.replace(target)
        record_written(self.directory, self.staged, "compress apply", replace=True)

    def close(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def plan_outputs(recipe: Recipe, output_dir: str | Path | None) -> OutputPlan:
    """The output directory (-o, else the export path's directory) and artifact names;
    UsageError when one of them is an input or a file compress did not write."""
    export = Path(recipe.export_path)
    directory = Path(output_dir).resolve() if output_dir else recipe.resolve(str(export.parent))
    plan = OutputPlan(directory=directory, onnx_name=export.name)
    inputs = recipe_inputs(recipe)
    models = [plan.pruned_model_name(suffix) for suffix in (".safetensors", ".keras")]
    folders = [f"{name}/" for name in plan.generation_names.values()]
    names = (
        plan.onnx_name,
        plan.baseline_name,
        "report.json",
        "report.md",
        "report.html",
        *models,
        *folders,
    )
    for name in names:
        if (directory / name).resolve() in inputs:
            raise UsageError(f"refusing to overwrite the input file {directory / name}")
    refuse_foreign(directory, names, "compress apply")
    return plan


def refuse_foreign(directory: Path, names: Iterable[str], command: str) -> None:
    """UsageError when `command` would write one of `names` (a name ending in "/" is a
    folder) into `directory` where a file of that name exists that compress did not write
    (it is not listed in the directory's WRITTEN file): the user's own file."""
    listed = written_names(directory)
    for name in names:
        target = directory / name.rstrip("/")
        if target.exists() and name.rstrip("/") not in listed:
            raise UsageError(
                f"refusing to write over {target}: {command} writes {name} there, and this "
                f"one was not written by compress (it is not listed in {directory / WRITTEN}); "
                "move it or choose another output directory (-o)"
            )


def record_written(
    directory: Path, names: Iterable[str], command: str, replace: bool = False
) -> None:
    """Add `names` (written by `command`) to the directory's WRITTEN file: compress may write
    over them again. With `replace`, what `command` wrote there before and did not write now
    (a channel run's pruned weights under a later magnitude run's report, a tuned.yaml from
    an earlier search) is removed, so every file in the folder belongs to the latest run."""
    listed = written_names(directory)
    now = {name.rstrip("/") for name in names}
    if replace:
        for stale in [name for name, by in listed.items() if by == command and name not in now]:
            _remove(directory / stale)
            del listed[stale]
    listed.update(dict.fromkeys(now, command))
    text = "".join(f"{name}\t{by}\n" for name, by in sorted(listed.items()))
    try:
        write_text_atomic(directory / WRITTEN, text)
    except OSError as exc:
        raise UsageError(
            f"cannot write to output directory {directory}: {exc.strerror or exc}"
        ) from None


def clear_written(directory: Path, name: str, command: str) -> None:
    """Remove `name` from `directory` when `command` wrote it there (a folder of an earlier
    run's trials, before a new run writes its own)."""
    if written_names(directory).get(name.rstrip("/")) == command:
        _remove(directory / name.rstrip("/"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def written_names(directory: Path) -> dict[str, str]:
    """{name: command} of what compress wrote in `directory`, from its WRITTEN file."""
    try:
        text = (directory / WRITTEN).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    listed = {}
    for line in text.splitlines():
        name, _, command = line.partition("\t")
        if name.strip():
            listed[name.strip()] = command.strip()
    return listed


def recipe_inputs(recipe: Recipe) -> set[Path]:
    """The files a run of `recipe` reads: the recipe, the model's source and weights, the data
    source file, and the files its passes name (a teacher's weights)."""
    references = [recipe.model.source, recipe.model.weights]
    if recipe.data:
        text = recipe.data.text.paths().values() if recipe.data.text else ()
        references += [recipe.data.source, *text]
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
        else recipe.resolve(str(Path(recipe.export_path).parent)) / folder
    )
    for path in recipe_inputs(recipe):
        for name in writes:
            target = (directory / name).resolve()
            if path == target or (name.endswith("/") and target in path.parents):
                raise UsageError(
                    f"refusing to write into {directory}: compress {folder} writes {name} there, "
                    f"over the input file {path}; choose another output directory (-o)"
                )
    refuse_foreign(directory, writes, f"compress {folder}")
    return directory
