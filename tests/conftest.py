"""Shared fixtures: recipe files written into tmp dirs, and the CLI run in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
RECIPES = ROOT / "recipes"


def seed_mlp_recipe(**overrides) -> dict:
    """A fast recipe: the seed MLP with its data; overrides replace top-level sections."""
    recipe = {
        "version": 1,
        "name": "seed-mlp-test",
        "model": {
            "source": f"{MODELS}/seed_mlp.py:build",
            "weights": f"{MODELS}/seed_mlp.safetensors",
            "inputs": [{"name": "features", "shape": [-1, 10], "dtype": "float32"}],
        },
        "data": {"source": f"{MODELS}/seed_mlp.py:load", "batch_size": 64},
        "train": {"epochs": 2, "optimizer": {"type": "adam", "lr": 0.001}},
        "evaluate": {"metric": "accuracy"},
        "passes": [{"type": "prune", "sparsity": 0.5}],
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": {"warmup": 2, "runs": 10}},
    }
    recipe.update(overrides)
    return recipe


@pytest.fixture
def write_recipe(tmp_path):
    """write_recipe(dict or text, name) -> path of a recipe file in tmp_path."""

    def write(content: dict | str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """run_cli(*args) -> (exit code, stdout, stderr), running `compress` in this process."""
    from compress.cli import main

    monkeypatch.setenv("CI", "true")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["compress", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
