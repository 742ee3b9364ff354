"""A generation folder as onnxruntime-genai reads it: genai_config.json names the decoder file,
its input and output names, the KV-cache shape and the context length."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.errors import ModelError, UsageError, message_line

CONFIG_NAME = "genai_config.json"


@dataclass(frozen=True)
class Decoder:
    """What compress needs from genai_config.json's `model` section."""

    onnx: Path
    context_length: int
    vocab_size: int
    layers: int
    kv_heads: int
    head_size: int
    #: role -> graph input name ("input_ids", "attention_mask", "position_ids"), and the
    #: patterns "past_key_names" / "past_value_names" ("past_key_values.%d.key")
    inputs: dict[str, str]
    #: the graph output holding the logits
    logits: str
    #: the attention window of sliding-window layers (0: none): the KV cache holds at least
    #: this many positions, filled or not
    window: int

    def past_names(self) -> set[str]:
        """The graph inputs that carry the KV cache, one key and one value per layer."""
        patterns = [self.inputs[key] for key in ("past_key_names", "past_value_names")]
        return {pattern % layer for pattern in patterns for layer in range(self.layers)}


def read_decoder(folder: Path) -> Decoder:
    """The decoder of a generation folder; ModelError naming the folder when it is not one."""
    path = folder / CONFIG_NAME
    try:
        model = json.loads(path.read_text(encoding="utf-8"))["model"]
        decoder = model["decoder"]
        spec = Decoder(
            onnx=folder / decoder["filename"],
            context_length=int(model["context_length"]),
            vocab_size=int(model["vocab_size"]),
            layers=int(decoder["num_hidden_layers"]),
            kv_heads=int(decoder["num_key_value_heads"]),
            head_size=int(decoder["head_size"]),
            inputs=dict(decoder["inputs"]),
            logits=decoder["outputs"]["logits"],
            window=int((decoder.get("sliding_window") or {}).get("window_size", 0)),
        )
    except FileNotFoundError:
        raise ModelError(
            f"{folder} is not a generation folder: it has no {CONFIG_NAME} (build one with "
            "compress.generation.build_generation_folder)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {message_line(exc)}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{path} is not a genai_config.json that onnxruntime-genai's model builder wrote "
            f"(an entry of its model section is missing or wrong: {message_line(exc)}); "
            "rebuild the folder"
        ) from None
    if not spec.onnx.is_file():
        raise ModelError(f"{path} names the decoder {spec.onnx.name}, which is not in {folder}")
    return spec


def checked_prompt(
    prompt_ids: np.ndarray, decoder: Decoder, tokens: int, folder: Path
) -> np.ndarray:
    """The prompt as int32 token ids (what onnxruntime-genai takes), once it and `tokens` more
    fit the model: its ids inside the vocabulary, the whole sequence inside the context."""
    prompt = np.asarray(prompt_ids)
    if prompt.ndim != 1 or not prompt.size or not np.issubdtype(prompt.dtype, np.integer):
        raise UsageError(
            f"prompt_ids must be a non-empty 1-D array of integer token ids, not an array of "
            f"shape {prompt.shape} and dtype {prompt.dtype}"
        )
    outside = prompt[(prompt < 0) | (prompt >= decoder.vocab_size)]
    if outside.size:
        raise ModelError(
            f"prompt token id {int(outside[0])} is outside the vocabulary of {folder.name} "
            f"({decoder.vocab_size} tokens): tokenize the prompt with this model's tokenizer"
        )
    if prompt.size + tokens > decoder.context_length:
        raise ModelError(
            f"a prompt of {prompt.size} tokens and {tokens} generated tokens exceed the context "
            f"of {folder.name} ({decoder.context_length} tokens, {CONFIG_NAME}): shorten the "
            "prompt or generate fewer tokens"
        )
    return prompt.astype(np.int32)
