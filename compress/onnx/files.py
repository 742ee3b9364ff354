"""Copying an ONNX file together with the external-data side files it names."""

from __future__ import annotations

import shutil
from pathlib import Path

from compress.onnx.inspect import external_files


def copy_model(source: Path, target: Path) -> None:
    """Copy `source` to `target` with its side files, under the same relative names beside it
    (external data is located relative to the ONNX file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for side in external_files(source):
        destination = target.parent / side.relative_to(source.parent)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(side, destination)
    shutil.copyfile(source, target)
