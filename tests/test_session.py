"""CompressionSession: the recipe's training passes inside the user's own training loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODELS, seed_mlp_recipe
from safetensors.torch import load_file

import compress
from compress.errors import UsageError
from compress.sources import load_callable

HERE = Path(__file__).parent


def digits_session_recipe(write_recipe, passes, epochs=2):
    raw = seed_mlp_recipe(passes=passes, train={"epochs": epochs})
    raw["model"] = {
        "source": f"{MODELS}/digits_cnn.py:build",
        "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
    }
    raw["data"] = {"source": f"{MODELS}/digits.py:load"}
    return write_recipe(raw)


def test_torch_loop_prunes_on_schedule_and_exports(write_recipe, tmp_path):
    digits = load_callable(f"{MODELS}/digits.py:load", MODELS)
    digits_cnn = load_callable(f"{MODELS}/digits_cnn.py:build", MODELS)

    recipe = digits_session_recipe(
        write_recipe,
        [
            {"type": "distill", "alpha": 0.5},
            {"type": "prune", "sparsity": 0.7, "schedule": {"end_epoch": 1}},
            {"type": "quantize", "mode": "dynamic"},
        ],
    )
    model = digits_cnn()
    model.load_state_dict(load_file(MODELS / "digits_cnn.safetensors"))
    x, y = (torch.from_numpy(a) for a in digits()["train"])
    session = compress.CompressionSession(model, recipe, steps_per_epoch=23)
    optimizer = torch.optim.Adam([*model.parameters(), *session.parameters()], lr=1e-3)
    for _ in range(2):
        for start in range(0, len(x), 64):
            inputs, targets = x[start : start + 64], y[start : start + 64]
            optimizer.zero_grad()
            session.loss(model(inputs), targets, inputs).backward()
            optimizer.step()
            session.step()
    final = session.finalize()
    assert float((final.fc1.weight == 0).float().mean()) == pytest.approx(0.7, abs=0.002)
    report = session.export(tmp_path / "export")
    assert [r["type"] for r in report.passes] == ["prune", "distill", "quantize"]
    assert report.baseline.sparsity == 0.0  # the model as it was when the session started
    assert report.compressed.sparsity > 0.6
    assert {layer.dtype for layer in report.layers if layer.name.startswith("fc")} == {"int8"}
    assert report.baseline.accuracy - report.compressed.accuracy < 0.03


def test_session_refuses_what_it_cannot_run(write_recipe):
    recipe = digits_session_recipe(write_recipe, [{"type": "quantize", "mode": "qat"}])
    from torch import nn

    with pytest.raises(UsageError, match="a session runs prune, distill"):
        compress.CompressionSession(nn.Linear(64, 10), recipe, steps_per_epoch=10)


@pytest.mark.slow
def test_ddp_two_ranks_agree_on_masks(write_recipe, tmp_path):
    recipe = digits_session_recipe(
        write_recipe, [{"type": "prune", "sparsity": 0.8, "schedule": {"end_epoch": 1}}]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(HERE / "ddp_session_job.py"),
        str(recipe),
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["masks"] == ranks[1]["masks"]
    assert ranks[0]["sparsity"] == ranks[1]["sparsity"] == pytest.approx(0.8, abs=0.002)
    passes = json.loads((tmp_path / "report_sparsity.json").read_text())
    assert passes[0]["achieved_sparsity"] == pytest.approx(0.8, abs=0.002)


@pytest.mark.slow
def test_keras_fit_with_session_callbacks_and_distillation(write_recipe, tmp_path):
    raw = seed_mlp_recipe(
        passes=[
            {"type": "distill", "alpha": 0.5},
            {"type": "prune", "sparsity": 0.6, "schedule": {"end_epoch": 1}},
        ],
        train={"epochs": 2},
    )
    raw["model"] = {
        "source": f"{HERE}/builders.py:keras_mlp",
        "inputs": [{"name": "features", "shape": [-1, 10]}],
    }
    recipe = write_recipe(raw)
    import keras
    from builders import keras_mlp

    model = keras_mlp()
    data = load_callable(f"{MODELS}/seed_mlp.py:load", MODELS)()
    x, y = data["train"]
    session = compress.CompressionSession(model, recipe, steps_per_epoch=25)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=session.compile_loss("sparse_categorical_crossentropy"),
    )
    model.fit(
        x,
        session.distill_targets(x, y),
        batch_size=64,
        epochs=2,
        verbose=0,
        callbacks=session.callbacks(),
    )
    final = session.finalize()
    kernel = np.asarray(final.get_layer("hidden").kernel.numpy())
    assert np.mean(kernel == 0) == pytest.approx(0.6, abs=0.01)
    report = session.export(tmp_path / "export")
    assert report.framework == "keras" and report.compressed.sparsity > 0.5


def test_recipe_without_model_source_serves_in_memory_models(write_recipe, run_cli, tmp_path):
    from torch import nn

    raw = seed_mlp_recipe(passes=[{"type": "prune", "sparsity": 0.5}])
    del raw["model"]["source"], raw["model"]["weights"]
    recipe = write_recipe(raw)
    code, _, err = run_cli("apply", recipe)
    assert code == 2 and "model.source is required unless a model object is passed" in err
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 50), nn.ReLU(), nn.Linear(50, 2))
    report = compress.apply(recipe, model=model, output_dir=tmp_path / "api", progress=False)
    assert report.passes[0]["achieved_sparsity"] == pytest.approx(0.5)
    session = compress.CompressionSession(model, recipe, steps_per_epoch=5)
    assert session.finalize() is model
