"""Generation speed and memory of generation folders with onnxruntime-genai, side by side.

Each model is loaded and warmed up once (one full generation, untimed); its peak resident
memory is the growth over what the process held before it loaded, through that warm-up
generation (weights, session, KV cache, work buffers), so a model is charged for itself, not
for the models loaded before it. The timed runs are then interleaved (A B A B ...) so machine
drift hits every model alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from compress.errors import UsageError
from compress.generation.folder import checked_prompt, read_decoder
from compress.generation.memory import PeakMemory
from compress.generation.runtime import Generation, GenerationModel


def measure_generation(
    folders: Mapping[str, Path],
    prompt_ids: np.ndarray,
    new_tokens: int = 128,
    runs: int = 3,
    threads: int = 1,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Per label: {"prefill_ms" (median), "decode_ms" (median per decode step),
    "tokens_per_s", "peak_rss_bytes", "runs", "new_tokens", "notes"}. A run is the prompt's
    prefill, which picks the first new token, then `new_tokens` decode steps (one token in,
    the next token out) with end-of-text suppressed."""
    for name, value in (("new_tokens", new_tokens), ("runs", runs), ("threads", threads)):
        if value < 1:
            raise UsageError(f"measure_generation: {name} must be at least 1, not {value}")
    say = progress or (lambda _message: None)
    prompts = {
        label: checked_prompt(prompt_ids, read_decoder(Path(folder)), new_tokens + 1, Path(folder))
        for label, folder in folders.items()
    }
    if folders:
        # the runtime's one-time costs (its code paged in, its global state: about 40 MB) must
        # not be charged to whichever model loads first
        say("loading the first model once, untimed")
        GenerationModel(Path(next(iter(folders.values()))), threads, device)
    loaded: dict[str, GenerationModel] = {}
    memory: dict[str, tuple[int, str | None]] = {}
    for label, folder in folders.items():
        say(f"{label}: loading and warming up")
        peak = PeakMemory()
        peak.start()
        loaded[label] = GenerationModel(Path(folder), threads, device)
        loaded[label].greedy(prompts[label], new_tokens + 1)
        memory[label] = (peak.growth(), peak.note)
    samples: dict[str, list[Generation]] = {label: [] for label in loaded}
    for run in range(1, runs + 1):
        for label, model in loaded.items():
            say(f"run {run}/{runs}: {label}")
            samples[label].append(model.greedy(prompts[label], new_tokens + 1))
    return {label: _figures(samples[label], new_tokens, *memory[label]) for label in loaded}


def _figures(runs: list[Generation], new_tokens: int, peak: int, note: str | None) -> dict:
    prefill_ms = statistics.median(g.prefill_seconds * 1000.0 for g in runs)
    decode_ms = statistics.median(sum(g.step_seconds) * 1000.0 / new_tokens for g in runs)
    return {
        "prefill_ms": prefill_ms,
        "decode_ms": decode_ms,
        "tokens_per_s": 1000.0 / decode_ms,
        "peak_rss_bytes": peak,
        "runs": len(runs),
        "new_tokens": new_tokens,
        "notes": [note] if note else [],
    }
