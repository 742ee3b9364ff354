"""The example models train from scratch in code, and the shipped weights are theirs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import MODELS
from safetensors.numpy import load_file


def load_module(name: str):
    spec = importlib.util.spec_from_file_location(f"models_{name}", MODELS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_splits_are_deterministic_and_disjoint():
    digits = load_module("digits")
    first, second = digits.load(), digits.load()
    assert all(np.array_equal(first[k][0], second[k][0]) for k in first)
    train, val = first["train"][0], first["val"][0]
    assert train.shape[1:] == (1, 8, 8) and val.shape == (359, 1, 8, 8)
    assert len(train) + len(val) == 1797
    train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in val.reshape(len(val), -1))
    assert overlap < 5  # digits has a few duplicate images; splits never share an index
    assert digits.load("nhwc")["train"][0].shape[1:] == (8, 8, 1)


@pytest.mark.e2e
def test_training_script_reproduces_useful_models(tmp_path):
    train = load_module("train")
    accuracies = train.main(tmp_path, epochs_scale=0.5)
    assert accuracies["digits_cnn"] > 0.9
    assert accuracies["seed_mlp"] > 0.85
    for name in ("digits_cnn", "seed_mlp"):
        produced = load_file(tmp_path / f"{name}.safetensors")
        shipped = load_file(MODELS / f"{name}.safetensors")
        assert {k: v.shape for k, v in produced.items()} == {k: v.shape for k, v in shipped.items()}


def test_the_pydoc_language_model_has_learned_english():
    """models/pydoc_lm/ (a Llama-architecture LM trained by `python models/pydoc_lm.py` on the
    standard library's docstrings): on modules it never saw, its perplexity is far below what
    the token frequencies alone give, and the folder is a complete Hugging Face model."""
    lm = load_module("pydoc_lm")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        path.name for path in lm.FOLDER.iterdir()
    }
    assert (lm.FOLDER / "model.safetensors").stat().st_size <= 10_000_000
    held_out, unigram = lm.held_out_perplexity(limit=128), lm.unigram_perplexity()
    assert held_out < unigram / 4, (held_out, unigram)
    tokens, targets = lm.windows(limit=4)["val"]
    assert tokens.shape == targets.shape == (4, lm.SEQ_LEN)
    assert (tokens[:, 1:] == targets[:, :-1]).all()  # targets are the next tokens
