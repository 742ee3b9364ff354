"""A small Llama-architecture language model trained here on English that ships with Python:
the docstrings of the standard library. No download: the text, the tokenizer (byte-level BPE,
trained on the same text) and the model are all made by `python models/pydoc_lm.py`, which
writes the Hugging Face folder `models/pydoc_lm/` (config.json, model.safetensors, tokenizer).

Held-out text is whole modules the model never saw (every 20th module by name), so perplexity
on it measures language, not memory. Recipes: `model.source: ../models/pydoc_lm.py:build`
(input_ids -> next-token logits), `data.source: ../models/pydoc_lm.py:windows` (token windows
with their next tokens as targets, for `train.loss: cross_entropy`).
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import time
import warnings
from functools import cache
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parent / "pydoc_lm"
#: Tokens per training window; the model's context is twice that.
SEQ_LEN = 64
VOCAB = 2048
#: Standard-library modules left out: they open windows, play sounds or print when imported.
SKIPPED = {
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data", "test",
    "lib2to3", "ensurepip", "venv",
}  # fmt: skip
HELD_OUT_EVERY = 10


def build():
    """The trained model as a torch module: input_ids (batch, sequence) -> logits, loaded as
    `model.source: ../models/pydoc_lm` (the folder itself) loads it."""
    from compress.backends.torch.hf_folder import load_folder

    return load_folder(FOLDER, trust=False)


@cache
def documents() -> dict[str, list[str]]:
    """{"train": [...], "val": [...]}: one document per standard-library module (its
    submodules included): its docstring and those of its public functions, classes and their
    methods. Whole top-level modules are held out for val, in a fixed order."""
    split: dict[str, list[str]] = {"train": [], "val": []}
    names = sorted(name for name in sys.stdlib_module_names if not name.startswith("_"))
    for index, name in enumerate(n for n in names if n not in SKIPPED):
        texts = [text for module in _modules(name) for text in _docstrings(module)]
        if texts:
            split["val" if index % HELD_OUT_EVERY == 0 else "train"].append("\n\n".join(texts))
    return split


def _modules(name: str) -> list:
    """The module `name` and, for a package, its submodules (sorted), those that import."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for candidate in [name, *_submodule_names(name)]:
            try:
                found.append(importlib.import_module(candidate))
            except Exception:  # platform-only modules (winreg, msvcrt...), optional extensions
                continue
    return found


def _submodule_names(name: str) -> list[str]:
    import pkgutil

    try:
        package = importlib.import_module(name)
    except Exception:
        return []
    path = getattr(package, "__path__", None)
    if path is None:
        return []
    names = [info.name for info in pkgutil.walk_packages(path, f"{name}.", onerror=lambda _: None)]
    return sorted(n for n in names if ".test" not in n and "._" not in n)


def _docstrings(module) -> list[str]:
    found = [inspect.getdoc(module) or ""]
    for attr in sorted(vars(module)):
        value = getattr(module, attr, None)
        if attr.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        found.append(inspect.getdoc(value) or "")
        if inspect.isclass(value):
            found += [
                inspect.getdoc(member) or ""
                for key, member in sorted(vars(value).items())
                if not key.startswith("_") and callable(member)
            ]
    return [text.strip() for text in found if len(text.strip()) > 40]


def tokenizer():
    """The folder's tokenizer (transformers' fast tokenizer over tokenizer.json)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(FOLDER, local_files_only=True)


@cache
def token_stream(split: str) -> np.ndarray:
    """A split's documents tokenized as one stream (documents separated by end-of-text)."""
    encode = tokenizer()
    ids: list[int] = []
    for text in documents()[split]:
        ids += encode(text)["input_ids"] + [encode.eos_token_id]
    return np.asarray(ids, dtype=np.int64)


def windows(seq_len: int = SEQ_LEN, limit: int | None = None) -> dict:
    """Non-overlapping windows of `seq_len + 1` tokens of each split, as (tokens, next tokens):
    inputs are a window's first `seq_len` tokens, targets the `seq_len` that follow each."""
    splits = {}
    for name in ("train", "val"):
        stream = token_stream(name)
        count = (len(stream) - 1) // (seq_len + 1)
        if limit is not None:
            count = min(count, limit)
        cut = stream[: count * (seq_len + 1)].reshape(count, seq_len + 1)
        splits[name] = (cut[:, :-1].copy(), cut[:, 1:].copy())
    return splits


def perplexity(logits: np.ndarray, targets: np.ndarray) -> float:
    """exp(mean next-token negative log-likelihood) over every position."""
    from compress.measure.language import log_softmax

    picked = np.take_along_axis(log_softmax(logits), targets[..., None], -1)
    return float(np.exp(-picked.mean()))


def unigram_perplexity() -> float:
    """Perplexity on val of the train split's token frequencies (add-one smoothed): what a model
    that knows the vocabulary but no context would reach."""
    counts = np.bincount(token_stream("train"), minlength=VOCAB).astype(np.float64) + 1
    log_probs = np.log(counts / counts.sum())
    return float(np.exp(-log_probs[token_stream("val")].mean()))


def train(steps: int = 1500, batch: int = 16, seed: int = 0) -> dict:
    """Train the tokenizer and the model from scratch, save the folder; returns the figures."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    started = time.perf_counter()
    FOLDER.mkdir(exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        documents()["train"],
        trainers.BpeTrainer(
            vocab_size=VOCAB,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    fast.save_pretrained(FOLDER)
    token_stream.cache_clear()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=3,
        num_key_value_heads=1,
        max_position_embeddings=2 * SEQ_LEN,
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    tokens, targets = (torch.from_numpy(a) for a in windows()["train"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        index = torch.randint(len(tokens), (batch,), generator=generator)
        logits = model(input_ids=tokens[index], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets[index].flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    model.eval()
    model.save_pretrained(FOLDER, safe_serialization=True)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "train_tokens": len(token_stream("train")),
        "val_tokens": len(token_stream("val")),
        "seen_tokens": steps * batch * SEQ_LEN,
        "val_perplexity": held_out_perplexity(),
        "unigram_perplexity": unigram_perplexity(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def held_out_perplexity(limit: int | None = None) -> float:
    """The saved model's perplexity on (the first `limit`) val windows, in torch."""
    import torch

    model = build()
    tokens, targets = windows(limit=limit)["val"]
    with torch.no_grad():
        logits = np.concatenate(
            [model(torch.from_numpy(tokens[i : i + 64])).numpy() for i in range(0, len(tokens), 64)]
        )
    return perplexity(logits, targets)


if __name__ == "__main__":
    torch_threads = 2
    import torch

    torch.set_num_threads(torch_threads)
    print(train())
