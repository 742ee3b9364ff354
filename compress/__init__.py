"""compress: YAML recipes that prune, quantize and distill Keras and PyTorch models, export ONNX
and measure the result against the original.

The public API is loaded lazily so that `import compress` imports neither torch nor TensorFlow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from compress.version import __version__ as __version__

__all__ = [
    "CompressionSession",
    "Recipe",
    "Report",
    "analyze",
    "apply",
    "load_pruned",
    "load_recipe",
    "tune",
]

_LAZY = {
    "CompressionSession": "compress.session",
    "analyze": "compress.analysis.run",
    "apply": "compress.pipeline",
    "tune": "compress.tuning.search",
    "load_pruned": "compress.backends",
    "load_recipe": "compress.recipe",
    "Recipe": "compress.recipe",
    "Report": "compress.report.schema",
}

if TYPE_CHECKING:
    from compress.analysis.run import analyze
    from compress.backends import load_pruned
    from compress.pipeline import apply
    from compress.recipe import Recipe, load_recipe
    from compress.report.schema import Report
    from compress.session import CompressionSession
    from compress.tuning.search import tune


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'compress' has no attribute {name!r}")
