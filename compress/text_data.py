"""Text as a language model's data: files (or a callable's strings) tokenized by the model
folder's tokenizer as one stream per split, cut into non-overlapping windows of data.seq_len
tokens (the last partial window dropped). A window is both the input and the target: the
model predicts each of its tokens from the ones before."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from compress.errors import RecipeError
from compress.recipe import Recipe

#: The files a folder given as a text split contributes (sorted, in subfolders too).
TEXT_SUFFIXES = (".txt", ".md")

Tokenize = Callable[[Sequence[str]], np.ndarray]
T = TypeVar("T")


def is_text(value: object) -> bool:
    """A split a data.source callable returned as strings (a list of documents)."""
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(item, str) for item in value)
    )


def tokenizer_for(recipe: Recipe) -> Tokenize:
    """The model folder's tokenizer as a function of documents -> one stream of token ids."""
    folder = recipe.model_folder
    if folder is None:
        raise recipe.error_at(
            ("data",),
            "text is tokenized by the model folder's tokenizer: model.source must be a "
            "Hugging Face model folder",
        )
    from compress.backends.torch.hf_folder import token_stream

    return lambda documents: token_stream(folder, documents)


def read_documents(path: Path) -> list[str]:
    """The text of a file, or of every .txt/.md file under a folder (one document each)."""
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file())
        if path.is_dir()
        else [path]
    )
    if not files:
        raise RecipeError(f"{path} holds no {' or '.join(TEXT_SUFFIXES)} files")
    documents = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RecipeError(
                f"{file} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
            ) from None
        except OSError as exc:
            raise RecipeError(f"cannot read {file}: {exc.strerror or exc}") from None
        if not text.strip():
            raise RecipeError(f"{file} is empty: a text split needs text to tokenize")
        documents.append(text)
    return documents


def windows(stream: np.ndarray, seq_len: int, where: str) -> np.ndarray:
    """[count, seq_len] int64 windows of a token stream; fewer tokens than one window is an
    error naming `where` the text came from."""
    count = len(stream) // seq_len
    if count == 0:
        raise RecipeError(
            f"{where} holds {len(stream)} tokens, fewer than one window of data.seq_len "
            f"{seq_len}: give more text or a smaller data.seq_len"
        )
    return np.ascontiguousarray(stream[: count * seq_len].reshape(count, seq_len), np.int64)


def text_windows(recipe: Recipe) -> dict[str, np.ndarray]:
    """The windows of each split of data.text, errors at the split's recipe line."""
    assert recipe.data is not None and recipe.data.text is not None
    tokenize = tokenizer_for(recipe)
    splits = {}
    for split, path in recipe.data.text.paths().items():
        try:
            documents = read_documents(recipe.resolve(path))
            splits[split] = windows(tokenize(documents), recipe.data.seq_len, path)
        except RecipeError as exc:
            raise recipe.error_at(("data", "text", split), str(exc)) from None
    return with_calibration(splits)


def with_calibration(splits: dict[str, T]) -> dict[str, T]:
    """The splits with calibration defaulting to train's windows (text has no third split
    unless one is given)."""
    if "calibration" not in splits and "train" in splits:
        splits["calibration"] = splits["train"]
    return splits
