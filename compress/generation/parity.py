"""Does a generation folder compute what the Hugging Face model computes?

Two checks against transformers on the same prompt: the decoder's prefill logits, run with
plain onnxruntime on an empty KV cache (the graph alone, no genai), and greedy decoding with
onnxruntime-genai against transformers' greedy `generate` (the KV cache, position handling and
search). End-of-text is suppressed on both sides, so both run exactly `new_tokens` steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.errors import ModelError, message_line
from compress.generation.folder import Decoder, checked_prompt, read_decoder
from compress.generation.runtime import GenerationModel

_NUMPY_TYPES = {
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
}


def check_generation_parity(
    hf_folder: Path,
    folder: Path,
    prompt_ids: np.ndarray,
    new_tokens: int = 32,
    tolerance: float = 1e-3,
) -> dict:
    """{"prefill_max_abs_diff", "greedy_tokens", "greedy_identical", "first_difference"};
    ModelError when the prefill logits differ by more than `tolerance` (per logit, relative to
    max(1, |torch's logit|)) or greedy decoding differs."""
    from compress.backends.torch.hf_folder import greedy_reference

    hf_folder, folder = Path(hf_folder), Path(folder)
    decoder = read_decoder(folder)
    prompt = checked_prompt(prompt_ids, decoder, new_tokens, folder)
    expected_logits, expected_tokens = greedy_reference(hf_folder, prompt, new_tokens)
    logits = _onnx_prefill(decoder, prompt)
    if logits.shape != expected_logits.shape:
        raise ModelError(
            f"the decoder of {folder.name} gives prefill logits of shape {logits.shape}, "
            f"transformers {expected_logits.shape}: the folder was not built from {hf_folder.name}"
        )
    diff = float(
        np.max(np.abs(logits - expected_logits) / np.maximum(1.0, np.abs(expected_logits)))
    )
    if not diff <= tolerance:  # NaN fails too
        raise ModelError(
            f"the decoder of {folder.name} differs from {hf_folder.name} in torch at prefill: "
            f"max |logit difference| / max(1, |logit|) is {diff:.3g}, over the tolerance "
            f"{tolerance:g}; a transform or the export changed what the model computes: check "
            "the folder's transforms, or rebuild it without them"
        )
    tokens = GenerationModel(folder).greedy(prompt, new_tokens).tokens
    first = next(
        (i for i, (a, b) in enumerate(zip(tokens, expected_tokens, strict=True)) if a != b), None
    )
    if first is not None:
        raise ModelError(
            f"greedy decoding with {folder.name} differs from transformers from new token "
            f"{first + 1} of {new_tokens} (onnxruntime-genai chose {tokens[first]}, "
            f"transformers {expected_tokens[first]}) although the prefill logits agree "
            f"({diff:.3g}): the KV-cache path differs, or two tokens were nearly tied: check "
            "with another prompt; a difference on every prompt means the folder is wrong"
        )
    return {
        "prefill_max_abs_diff": diff,
        "greedy_tokens": new_tokens,
        "greedy_identical": True,
        "first_difference": None,
    }


def _onnx_prefill(decoder: Decoder, prompt: np.ndarray) -> np.ndarray:
    """The decoder's logits (sequence, vocab) for the prompt, the KV cache empty: no positions,
    or with sliding-window attention (GroupQueryAttention then wants a fixed-size cache, as long
    as the window and the prompt) positions none of which is filled (the attention mask says
    so)."""
    from compress.onnx.runtime import make_session

    session = make_session(decoder.onnx, threads=1)
    past = decoder.past_names()
    capacity = max(decoder.window, len(prompt)) if decoder.window else 0
    by_role = {
        "input_ids": prompt,
        "attention_mask": np.ones_like(prompt),
        "position_ids": np.arange(len(prompt)),
    }
    values = {decoder.inputs[role]: v for role, v in by_role.items() if role in decoder.inputs}
    feeds = {}
    for meta in session.get_inputs():
        dtype = _NUMPY_TYPES.get(meta.type)
        if meta.name in past and dtype is not None:
            feeds[meta.name] = np.zeros((1, decoder.kv_heads, capacity, decoder.head_size), dtype)
        elif meta.name in values and dtype is not None:
            feeds[meta.name] = values[meta.name][None].astype(dtype)
        else:
            raise ModelError(
                f"{decoder.onnx.name} has an input {meta.name} ({meta.type}) that the parity "
                "check cannot feed (it feeds input ids, attention mask, position ids and the KV "
                "cache named in genai_config.json)"
            )
    try:
        (logits,) = session.run([decoder.logits], feeds)
    except Exception as exc:
        raise ModelError(
            f"onnxruntime cannot run the prefill of {decoder.onnx.name} on an empty KV cache: "
            f"{message_line(exc)}"
        ) from None
    return logits[0].astype(np.float32)
