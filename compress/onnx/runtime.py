"""Run ONNX models with onnxruntime on CPU or CUDA, with explicit threads and devices."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from compress.errors import ModelError


def make_session(path: Path, threads: int = 1, device: str = "cpu") -> ort.InferenceSession:
    """An InferenceSession with a fixed thread count; CUDA is required, never a fallback."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if device == "cuda":
        require_cuda()
    providers = [provider(device)]
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot load {path.name}: {exc}") from exc
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise ModelError("onnxruntime did not enable the CUDA execution provider for this model")
    return session


def provider(device: str) -> str:
    """The execution provider make_session uses for `device`."""
    return "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"


def require_cuda() -> None:
    """Fail loudly when the CUDA execution provider is missing (no silent CPU timings)."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise ModelError(
            "measure.latency.device is cuda but onnxruntime has no CUDA execution provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu or use device: cpu"
        )


def run(session: ort.InferenceSession, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """One inference on numpy inputs, fed by position."""
    feeds = {meta.name: x for meta, x in zip(session.get_inputs(), inputs, strict=True)}
    return session.run(None, feeds)


def predict(
    session: ort.InferenceSession, inputs: list[np.ndarray], batch_size: int
) -> list[np.ndarray]:
    """Outputs over a whole dataset, run in batches and concatenated per output."""
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(inputs[0]), batch_size):
        chunks.append(run(session, [x[start : start + batch_size] for x in inputs]))
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def timer(
    session: ort.InferenceSession, inputs: list[np.ndarray], device: str
) -> Callable[[], float]:
    """A function that runs one inference and returns its wall time in milliseconds.

    On CUDA, inputs and outputs are bound on the device (IOBinding) and the clock is read after
    synchronizing, so the figure is GPU time rather than a launch time.
    """
    if device != "cuda":
        feeds = {meta.name: x for meta, x in zip(session.get_inputs(), inputs, strict=True)}

        def run_cpu() -> float:
            start = time.perf_counter()
            session.run(None, feeds)
            return (time.perf_counter() - start) * 1000.0

        return run_cpu

    binding = session.io_binding()
    for meta, x in zip(session.get_inputs(), inputs, strict=True):
        binding.bind_ortvalue_input(meta.name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
    for meta in session.get_outputs():
        binding.bind_output(meta.name, "cuda", 0)

    def run_cuda() -> float:
        binding.synchronize_inputs()
        start = time.perf_counter()
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return (time.perf_counter() - start) * 1000.0

    return run_cuda


def versions() -> dict[str, str]:
    return {"onnxruntime": ort.__version__}
