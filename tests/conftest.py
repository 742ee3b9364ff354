"""Shared fixtures: recipe files written into tmp dirs, and the CLI run in-process; the test
tiers (docs/testing.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

# One OpenMP thread per test process, set before torch is imported: `make test` runs one
# pytest-xdist worker per core, and torch's default of one intra-op thread per core had each
# worker's threads wait on cores the other worker holds (small training steps 2-3x slower, the
# MiniLM and ResNet-18 recipe tests 48 s -> 34 s and 51 s -> 41 s even run alone). The same
# computation runs; subprocesses inherit the setting; an explicit OMP_NUM_THREADS is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
RECIPES = ROOT / "recipes"

#: The tiers, cheapest first (pyproject.toml registers them; docs/testing.md gives the rule).
TIERS = ("unit", "integration", "e2e")
#: The tier of a test that names none: it may build a model, so `make test-fast` runs it.
DEFAULT_TIER = "integration"


def tier_of(item: pytest.Item) -> str:
    tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    if len(tiers) > 1:
        raise pytest.UsageError(f"{item.nodeid}: one tier per test, not {sorted(tiers)}")
    return tiers.pop() if tiers else DEFAULT_TIER


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its tier; under pytest-xdist hand out the costliest tier first, so the
    longest tests start early and the workers finish together (a serial run keeps file order)."""
    tiers = {}
    for item in items:
        tiers[item] = tier_of(item)
        if not any(item.iter_markers(tiers[item])):
            item.add_marker(tiers[item])
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: -TIERS.index(tiers[item]))  # stable: files stay together


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
