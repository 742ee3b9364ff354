"""Build a generation folder: a Hugging Face causal LM exported by onnxruntime-genai's model
builder (fp32, CPU), then ONNX transforms applied to its decoder in turn.

The builder runs in a subprocess, offline: it imports torch and transformers and prints
progress bars, and a crash there must not take the caller down. Transforms take the decoder's
path and the path to write, and return a record of what they did; the folder keeps the
decoder's file name, so genai_config.json stays as the builder wrote it, and the files the
transform replaced are removed. A failed build leaves no folder behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from compress.errors import CompressError, ModelError, UsageError, first_line
from compress.generation.folder import read_decoder
from compress.generation.source import checked_architecture
from compress.onnx.inspect import external_files, readable, validate_external_data

#: transform(source_onnx, target_onnx) -> a record of what it did (kept in the build)
Transform = Callable[[Path, Path], dict]

#: The builder's environment: local files only, no token, no telemetry.
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
#: A traceback's last line ("ValueError: ..."): what went wrong, without the stack.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


@dataclass(frozen=True)
class GenerationBuild:
    """A built generation folder: `onnx` is its decoder file, `seconds` the whole build
    (export and transforms), `transforms` the transforms' records in order, `notes` the
    builder's warnings."""

    folder: Path
    onnx: Path
    seconds: float
    transforms: list[dict]
    architecture: str
    notes: list[str]


def build_generation_folder(
    hf_folder: Path, target: Path, transforms: Sequence[Transform] = ()
) -> GenerationBuild:
    """Export `hf_folder` into `target` (a new or empty directory) and apply `transforms` to
    its decoder; the folder loads with onnxruntime_genai.Model(target)."""
    start = time.perf_counter()
    hf_folder, target = Path(hf_folder), Path(target)
    architecture = checked_architecture(hf_folder)
    existed = target.exists()
    if existed and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(
            f"refusing to build a generation folder in {target}: it exists and is not an empty "
            "directory; remove it or choose a new one"
        )
    try:
        notes = _export(hf_folder, target)
        decoder = read_decoder(target).onnx
        records = [
            _apply(transform, decoder, index) for index, transform in enumerate(transforms, 1)
        ]
    except BaseException:
        if existed:
            for child in target.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        else:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return GenerationBuild(
        target, decoder, time.perf_counter() - start, records, architecture, notes
    )


def builder_command(hf_folder: Path, target: Path, cache: Path) -> list[str]:
    """The model builder's command line: fp32 for the CPU provider, from the local folder."""
    return [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i",
        str(hf_folder),
        "-o",
        str(target),
        "-p",
        "fp32",
        "-e",
        "cpu",
        "-c",
        str(cache),
        "--extra_options",
        "hf_token=false",
        "hf_remote=false",
    ]


def _export(hf_folder: Path, target: Path) -> list[str]:
    """Run the builder; its warnings as notes, ModelError with its last error line on failure."""
    target.mkdir(parents=True, exist_ok=True)
    # beside the target, not in /tmp: it holds temporary external data as large as the model
    cache = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.builder-")).resolve()
    command = builder_command(hf_folder.resolve(), target.resolve(), cache)
    try:
        done = subprocess.run(
            command,
            cwd=cache,
            env={**os.environ, **_OFFLINE},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        raise ModelError(
            f"onnxruntime-genai's model builder failed on {hf_folder.name} (exit "
            f"{done.returncode}): {_error_line(done.stderr or done.stdout)}; to see its whole "
            f"output, run it by hand: python -m onnxruntime_genai.models.builder -i {hf_folder} "
            "-o <new folder> -p fp32 -e cpu"
        )
    lines = (done.stdout + "\n" + done.stderr).splitlines()
    return [f"builder: {line.strip()}" for line in lines if line.startswith("WARNING")]


def _error_line(output: str) -> str:
    lines = [line.strip() for line in output.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if _EXCEPTION_LINE.match(line)]
    line = (errors or lines or ["(no output)"])[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _apply(transform: Transform, decoder: Path, index: int) -> dict:
    """Run one transform into a scratch directory in the folder, then put its output (graph
    and external data) in place of the decoder's files."""
    name = getattr(transform, "__name__", type(transform).__name__)
    folder = decoder.parent
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix=f".transform-{index}-"))
    try:
        produced = scratch / decoder.name
        try:
            record = transform(decoder, produced)
        except CompressError:
            raise
        except Exception as exc:
            raise ModelError(
                f"transform {index} ({name}) failed on {folder.name}/{decoder.name}: "
                f"{first_line(exc)}"
            ) from exc
        if not produced.is_file():
            raise ModelError(
                f"transform {index} ({name}) wrote no {produced.name}: a transform writes the "
                "ONNX file at the target path it is given"
            )
        if not isinstance(record, dict):
            raise ModelError(
                f"transform {index} ({name}) returned a {type(record).__name__}, not the dict "
                "that records what it did"
            )
        validate_external_data(produced)
        _check_same_interface(decoder, produced, f"transform {index} ({name})")
        replaced = [decoder, *external_files(decoder)]
        new = [produced, *external_files(produced)]
        for path in replaced:
            path.unlink()
        for path in new:
            destination = folder / path.relative_to(scratch)
            destination.parent.mkdir(parents=True, exist_ok=True)
            path.replace(destination)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record


def _check_same_interface(before: Path, after: Path, what: str) -> None:
    """onnxruntime-genai feeds the decoder by the names in genai_config.json: a transform must
    keep its inputs and outputs."""
    old, new = readable(before).graph, readable(after).graph
    for kind in ("input", "output"):
        names = {value.name for value in getattr(old, kind)}
        changed = {value.name for value in getattr(new, kind)}
        if names != changed:
            missing = sorted(names ^ changed)
            raise ModelError(
                f"{what} changed the decoder's graph {kind}s (first difference: {missing[0]}); "
                "onnxruntime-genai feeds the decoder by the names in genai_config.json, so a "
                f"transform must keep every {kind}"
            )
