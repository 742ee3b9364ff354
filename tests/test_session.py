"""CompressionSession: the recipe's training passes inside the user's own training loop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODELS, seed_mlp_recipe
from safetensors.torch import load_file

import compress
from compress.errors import ModelError, UsageError
from compress.sources import load_callable

HERE = Path(__file__).parent


def digits_session_raw(passes, epochs=2) -> dict:
    raw = seed_mlp_recipe(passes=passes, train={"epochs": epochs})
    raw["model"] = {
        "source": f"{MODELS}/digits_cnn.py:build",
        "inputs": [{"name": "input", "shape": ["batch", 1, 8, 8]}],
    }
    raw["data"] = {"source": f"{MODELS}/digits.py:load"}
    return raw


def digits_session_recipe(write_recipe, passes, epochs=2):
    return write_recipe(digits_session_raw(passes, epochs))


def loop_only_recipe(write_recipe, passes) -> Path:
    """A recipe for the user's own loop: no train, data or evaluate section."""
    raw = digits_session_raw(passes)
    for section in ("train", "data", "evaluate"):
        del raw[section]
    return write_recipe(raw, "session.yaml")


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
    # the records follow the recipe's order, as with compress apply
    assert [r["type"] for r in report.passes] == ["distill", "prune", "quantize"]
    assert report.baseline.sparsity == 0.0  # the model as it was when the session started
    assert report.compressed.sparsity > 0.6
    assert {layer.dtype for layer in report.layers if layer.name.startswith("fc")} == {"int8"}
    assert report.baseline.accuracy - report.compressed.accuracy < 0.03


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("schedule", "epochs"), [({"start_step": 5, "end_step": 30}, None), ({"end_epoch": 1}, 2)]
)
def test_session_recipe_needs_neither_train_nor_data(
    write_recipe, run_cli, tmp_path, schedule, epochs
):
    """The loop's length comes from a step schedule or `epochs=`; export measures without data."""
    recipe = loop_only_recipe(
        write_recipe, [{"type": "prune", "sparsity": 0.6, "schedule": schedule}]
    )
    code, _, err = run_cli("validate", recipe)
    assert code == 2 and "passes.0: this pass fine-tunes: add train and data" in err
    assert "it can with CompressionSession: --usage session" in err
    code, out, _ = run_cli("validate", recipe, "--usage", "session")
    assert code == 0 and "CompressionSession: ok" in out
    digits = load_callable(f"{MODELS}/digits.py:load", MODELS)
    model = load_callable(f"{MODELS}/digits_cnn.py:build", MODELS)()
    x, y = (torch.from_numpy(a) for a in digits()["train"])
    session = compress.CompressionSession(model, recipe, steps_per_epoch=23, epochs=epochs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        for start in range(0, len(x), 64):
            optimizer.zero_grad()
            session.loss(model(x[start : start + 64]), y[start : start + 64]).backward()
            optimizer.step()
            session.step()
    report = session.export(tmp_path / "export")
    assert report.passes[0]["achieved_sparsity"] == pytest.approx(0.6, abs=0.002)
    assert report.compressed.accuracy is None  # no data: nothing to measure accuracy on


def test_session_checks_the_schedule_against_epochs(write_recipe):
    recipe = loop_only_recipe(
        write_recipe, [{"type": "prune", "sparsity": 0.6, "schedule": {"end_epoch": 3}}]
    )
    digits_cnn = load_callable(f"{MODELS}/digits_cnn.py:build", MODELS)
    with pytest.raises(ModelError, match="reaches its final sparsity at step 30, but training"):
        compress.CompressionSession(digits_cnn(), recipe, steps_per_epoch=10, epochs=2)


@pytest.mark.parametrize(
    ("refused", "why"),
    [
        ({"type": "quantize", "mode": "qat"}, "quantization-aware training needs the built-in"),
        ({"type": "prune", "method": "channel", "sparsity": 0.5}, "channel pruning replaces"),
    ],
    ids=["qat", "channel"],
)
def test_session_refuses_what_it_cannot_run(write_recipe, refused, why):
    recipe = digits_session_recipe(write_recipe, [refused])
    from torch import nn

    with pytest.raises(UsageError, match=f"a session cannot run this pass \\({why}"):
        compress.CompressionSession(nn.Linear(64, 10), recipe, steps_per_epoch=10)


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it), so parallel test workers and other
    jobs on the machine never share a rendezvous port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_ddp_job(recipe: Path, out_dir: Path, *args: str) -> list[dict]:
    """Run tests/ddp_session_job.py on 2 CPU ranks with torchrun; each rank's masks and sparsity."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(3):  # another process may take the free port before torchrun binds it
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(HERE / "ddp_session_job.py"),
            str(recipe),
            str(out_dir),
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        if result.returncode == 0 or "address already in use" not in result.stderr.lower():
            break
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.e2e
def test_ddp_two_ranks_agree_on_masks(write_recipe, tmp_path):
    recipe = digits_session_recipe(
        write_recipe, [{"type": "prune", "sparsity": 0.8, "schedule": {"end_epoch": 1}}]
    )
    ranks = run_ddp_job(recipe, tmp_path)
    assert ranks[0]["masks"] == ranks[1]["masks"]
    assert ranks[0]["sparsity"] == ranks[1]["sparsity"] == pytest.approx(0.8, abs=0.002)
    passes = json.loads((tmp_path / "report_sparsity.json").read_text())
    assert passes[0]["achieved_sparsity"] == pytest.approx(0.8, abs=0.002)


@pytest.mark.e2e
def test_ddp_session_recipe_without_train_or_data(write_recipe, tmp_path):
    """The user's DDP loop trains: the recipe has no train/data sections, the schedule is in
    optimizer steps, and the job runs 2 epochs of 23 steps per rank."""
    recipe = loop_only_recipe(
        write_recipe, [{"type": "prune", "sparsity": 0.8, "schedule": {"end_step": 30}}]
    )
    ranks = run_ddp_job(recipe, tmp_path, "2")
    assert ranks[0]["masks"] == ranks[1]["masks"]
    assert ranks[0]["sparsity"] == ranks[1]["sparsity"] == pytest.approx(0.8, abs=0.002)
    passes = json.loads((tmp_path / "report_sparsity.json").read_text())
    assert passes[0]["achieved_sparsity"] == pytest.approx(0.8, abs=0.002)
    assert passes[0]["training"]["steps"] == 46


@pytest.mark.e2e
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
