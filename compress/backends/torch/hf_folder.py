"""A Hugging Face model folder as `model.source`: config.json, *.safetensors and the tokenizer.

The task comes from `config.architectures`: a causal LM (`*ForCausalLM`) becomes a module
mapping input_ids to next-token logits; any other architecture is loaded as the base model
(its last hidden state). Weights come from safetensors only unless the recipe trusts the
folder (pickled `pytorch_model.bin`), and a config that asks for its own code (`auto_map`)
loads only with trust, so loading a folder never runs code the recipe did not allow.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from compress.errors import ModelError, message_line
from compress.model_folders import TOKENIZER_FILES, check_folder, is_causal_lm, read_config

#: Files beside the weights that belong to the tokenizer (copied into a saved folder).
TOKENIZER_PREFIXES = ("tokenizer", "special_tokens_map", "added_tokens", "merges", "vocab")


class NextTokenLogits(nn.Module):
    """A causal LM as the pipeline runs it: input_ids -> logits (batch, sequence, vocab)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits


class LastHiddenState(nn.Module):
    """An encoder as the pipeline runs it: input_ids -> last hidden state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).last_hidden_state


def load_folder(folder: Path, trust: bool) -> nn.Module:
    """The folder's model, wrapped for the pipeline (see the module docstring)."""
    config = read_config(folder)
    safetensors = check_folder(folder, config, trust)
    causal = is_causal_lm(config)
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    loader = AutoModelForCausalLM if causal else AutoModel
    try:
        model = loader.from_pretrained(
            folder,
            local_files_only=True,
            use_safetensors=bool(safetensors),
            trust_remote_code=trust and "auto_map" in config,
        )
    except (OSError, ValueError, KeyError) as exc:
        why = message_line(exc)
        raise ModelError(f"cannot load the model folder {folder.name}: {why}") from exc
    model.eval()
    return NextTokenLogits(model) if causal else LastHiddenState(model)


def token_stream(folder: Path, documents: Sequence[str]) -> np.ndarray:
    """The documents tokenized by the folder's tokenizer as one stream, each followed by the
    end-of-text token (when the tokenizer has one), without other special tokens."""
    tokenizer = _tokenizer(folder)
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids: list[int] = []
    for document in documents:
        ids += tokenizer(document, add_special_tokens=False)["input_ids"] + end
    return np.asarray(ids, dtype=np.int64)


@functools.lru_cache(maxsize=4)
def _tokenizer(folder: Path):
    """The folder's tokenizer, loaded once per folder (every split is tokenized with it)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        why = message_line(exc)
        raise ModelError(f"cannot load the tokenizer of {folder.name}: {why}") from exc
    tokenizer.model_max_length = 2**62  # one stream, cut into windows later: no length warning
    return tokenizer


def save_folder(model: nn.Module, source: Path, target: Path) -> None:
    """A model loaded by `load_folder` written as a model folder: its config and safetensors
    weights (save_pretrained, so transformers loads it), and the source's tokenizer files."""
    inner = model.model if isinstance(model, NextTokenLogits | LastHiddenState) else model
    if not hasattr(inner, "save_pretrained"):
        raise ModelError(f"{type(inner).__name__} is not a transformers model: it has no folder")
    inner.save_pretrained(target, safe_serialization=True)
    for path in source.iterdir():
        name = path.name
        if path.is_file() and (name in TOKENIZER_FILES or name.startswith(TOKENIZER_PREFIXES)):
            shutil.copy2(path, target / name)


def greedy_reference(
    folder: Path, prompt: np.ndarray, new_tokens: int
) -> tuple[np.ndarray, list[int]]:
    """The folder's causal LM in transformers on `prompt`: the prefill logits (sequence,
    vocab) and `new_tokens` greedy tokens (end-of-text suppressed), what a generation folder is
    checked against."""
    import torch
    from transformers import GenerationConfig

    model = load_folder(folder, trust=False).model

    ids = torch.from_numpy(prompt.astype(np.int64))[None]
    eos = model.generation_config.eos_token_id
    pad = model.generation_config.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        repetition_penalty=1.0,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    with torch.no_grad(), _quiet_transformers():
        logits = model(input_ids=ids).logits[0].float().numpy()
        generated = model.generate(
            ids, attention_mask=torch.ones_like(ids), generation_config=config
        )
    return logits, [int(t) for t in generated[0, len(prompt) :]]


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """generate() warns about generation settings the model's own config carries."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)
