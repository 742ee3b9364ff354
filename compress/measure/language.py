"""Language-model figures on token windows, computed on the exported ONNX files: perplexity
(exp of the mean next-token negative log-likelihood over every predicted position) and, for the
pair, top-1 next-token agreement and the mean KL(baseline || compressed) per token.

Both models run batch by batch over the same windows and only sums are kept, so a 150k-token
vocabulary does not hold every window's logits in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress.comparison import check_finite
from compress.onnx import runtime

#: The most logits (floats) one batch may hold: about 256 MB.
MAX_BATCH_LOGITS = 64 * 1024 * 1024


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, in float64."""
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def predicted_log_probs(logits: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-probabilities at the positions that predict a next token (all but the last), and
    the log-probability each gave the token that came."""
    log_probs = log_softmax(logits[:, :-1])
    picked = np.take_along_axis(log_probs, windows[:, 1:, None].astype(np.int64), -1)[..., 0]
    return log_probs, picked


def perplexity(logits: np.ndarray, windows: np.ndarray) -> float:
    """exp(mean next-token negative log-likelihood): the evaluate metric `perplexity` (outputs
    [windows, seq_len, vocab], targets the windows' token ids)."""
    _, picked = predicted_log_probs(logits, windows.reshape(logits.shape[:2]))
    return float(np.exp(-picked.mean()))


@dataclass
class _Sums:
    """Running sums over the predicted positions."""

    nll: dict[str, float] = field(default_factory=dict)
    positions: int = 0
    agree: int = 0
    kl: float = 0.0
    max_abs: float = 0.0


def language_scores(
    paths: dict[str, Path], windows: np.ndarray, batch: int
) -> tuple[dict[str, float], dict | None]:
    """Perplexity of each model (label -> ONNX file) on the windows, and when there are a
    baseline and a compressed model, their fidelity: top-1 agreement (the figure), mean KL per
    token and the largest logit difference."""
    sessions = {label: runtime.make_session(path) for label, path in paths.items()}
    sums = _Sums(nll=dict.fromkeys(paths, 0.0))
    pair = {"baseline", "compressed"} <= set(paths)
    step = _bounded(batch, windows.shape[1], sessions)
    for start in range(0, len(windows), step):
        chunk = windows[start : start + step]
        logits = {label: runtime.run(s, [chunk])[0] for label, s in sessions.items()}
        log_probs = {}
        for label, value in logits.items():
            check_finite([value], f"the {label} ONNX model's")
            log_probs[label], picked = predicted_log_probs(value, chunk)
            sums.nll[label] -= float(picked.sum())
        sums.positions += chunk.shape[0] * (chunk.shape[1] - 1)
        if pair:
            base, comp = log_probs["baseline"], log_probs["compressed"]
            sums.agree += int(np.sum(base.argmax(-1) == comp.argmax(-1)))
            sums.kl += float(np.sum(np.exp(base) * (base - comp)))
            diff = np.abs(logits["baseline"] - logits["compressed"].astype(np.float64))
            sums.max_abs = max(sums.max_abs, float(diff.max()))
    scores = {label: float(np.exp(nll / sums.positions)) for label, nll in sums.nll.items()}
    if not pair:
        return scores, None
    return scores, {
        "metric": "top1_agreement",
        "value": round(sums.agree / sums.positions, 6),
        "max_abs_error": round(sums.max_abs, 6),
        "kl_per_token": round(sums.kl / sums.positions, 6),
        "positions": sums.positions,
    }


def _bounded(batch: int, seq_len: int, sessions: dict) -> int:
    """A batch size at most `batch` whose logits stay under MAX_BATCH_LOGITS (a window's logits
    are seq_len x vocabulary floats; the vocabulary is the output's last dimension)."""
    last = next(iter(sessions.values())).get_outputs()[0].shape[-1]
    vocab = last if isinstance(last, int) and last > 0 else 262_144  # unknown: a large one
    return max(1, min(batch, MAX_BATCH_LOGITS // (seq_len * vocab)))
