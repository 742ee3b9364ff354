"""Generation-ready ONNX folders for Hugging Face causal LMs: built with onnxruntime-genai's
model builder, checked against transformers, timed with onnxruntime-genai.

Importing this package imports neither torch, transformers nor onnxruntime-genai; each
function imports what it runs.
"""

from compress.generation.build import GenerationBuild, build_generation_folder
from compress.generation.measure import measure_generation
from compress.generation.parity import check_generation_parity
from compress.generation.source import SUPPORTED_ARCHITECTURES

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "GenerationBuild",
    "build_generation_folder",
    "check_generation_parity",
    "measure_generation",
]
