"""One lifecycle for every pass that works while a model trains (llm-compressor's modifier
lifecycle): `initialize` before any training (one-shot work), `on_start` / `on_update` /
`on_end` around the optimizer steps, `finalize` to verify and return the record.

Each trainer adapts it once: the built-in torch loop (compress/backends/torch/training.py), one
Keras callback (compress/backends/keras/training.py:lifecycle_callback) and the
CompressionSession (the user's loop calls `session.step()`).
"""

from __future__ import annotations

from typing import Protocol


class TrainingHook(Protocol):
    """What a trainer calls around its optimizer steps."""

    def on_start(self, steps_per_epoch: int, total_steps: int) -> None:
        """Before the first step: the loop's length (a schedule checks that it fits)."""
        ...

    def on_update(self, step: int) -> None:
        """After optimizer step `step` (1-based): move a schedule, re-apply masks."""
        ...

    def on_end(self) -> None:
        """After the last step."""
        ...


class PassLifecycle(TrainingHook, Protocol):
    """A training-time pass from start to record."""

    def initialize(self) -> None:
        """The work done before any training (one-shot masks)."""
        ...

    def finalize(self, training: dict | None) -> dict:
        """Verify what the pass reached and return what it did (its record's keys)."""
        ...
