"""onnxruntime-genai sessions with an explicit thread count and device, and greedy generation
that always runs the number of steps asked for (end-of-text suppressed), timed per step."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.errors import ModelError, message_line
from compress.generation.folder import read_decoder

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Generation:
    """Greedy tokens after the prompt, with the time of each model call."""

    tokens: list[int]
    #: the prompt's forward pass and the pick of the first token
    prefill_seconds: float
    #: each later token: one forward pass over the previous token, then the pick
    step_seconds: list[float]


class GenerationModel:
    """A generation folder loaded in onnxruntime-genai on `device`, its decoder session running
    `threads` intra-op threads (genai_config.json's session options, overlaid in memory: the
    folder is not edited)."""

    def __init__(self, folder: Path, threads: int = 1, device: str = "cpu") -> None:
        import onnxruntime_genai as og

        if device not in DEVICES:
            raise ModelError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
        if device == "cuda" and not og.is_cuda_available():
            raise ModelError(
                "device is cuda but this onnxruntime-genai has no CUDA execution provider: "
                "install onnxruntime-genai-cuda (in place of onnxruntime-genai) or use device cpu"
            )
        self.folder = folder
        self.decoder = read_decoder(folder)
        try:
            config = og.Config(str(folder))
            options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
            config.clear_providers()
            if device == "cuda":
                config.append_provider("cuda")
            self.model = og.Model(config)
        except RuntimeError as exc:
            raise ModelError(
                f"onnxruntime-genai cannot load the generation folder {folder}: {message_line(exc)}"
            ) from None

    def greedy(self, prompt: np.ndarray, tokens: int) -> Generation:
        """`tokens` greedy tokens after `prompt` (int32 ids), end-of-text never chosen, so every
        call runs the same number of steps."""
        import onnxruntime_genai as og

        length = len(prompt) + tokens
        # the KV cache is max_length long, and sliding-window attention wants the whole window
        capacity = min(max(length, self.decoder.window), self.decoder.context_length)
        try:
            params = og.GeneratorParams(self.model)
            params.set_search_options(
                do_sample=False,
                num_beams=1,
                repetition_penalty=1.0,
                max_length=capacity,
                min_length=length,
            )
            generator = og.Generator(self.model, params)
            start = time.perf_counter()
            generator.append_tokens(prompt)
            generator.generate_next_token()  # picks from the prefill's logits: no forward pass
            prefill = time.perf_counter() - start
            steps = []
            for _ in range(tokens - 1):
                start = time.perf_counter()
                generator.generate_next_token()
                steps.append(time.perf_counter() - start)
            sequence = generator.get_sequence(0)
        except RuntimeError as exc:
            raise ModelError(
                f"onnxruntime-genai failed generating with {self.folder}: {message_line(exc)}"
            ) from None
        return Generation([int(t) for t in sequence[len(prompt) :]], prefill, steps)
