"""Frictions a new user hits with their own files and models: builder and data functions that
import their neighbours when called, and losses given outputs and targets whose shapes do not
fit (token-level cross-entropy over N×T×V logits included)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import compress
from compress.errors import ModelError
from compress.sources import call_reference

VOCAB, STEPS = 16, 8

# A tiny next-token model: token ids N×T (int64) -> logits N×T×V, like a GPT-2 LM head.
SEQUENCE_BUILDER = f"""
from torch import nn


class NextToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding({VOCAB}, 32)
        self.fc1 = nn.Linear(32, 64)
        self.head = nn.Linear(64, {VOCAB})

    def forward(self, tokens):
        return self.head(self.fc1(self.embed(tokens)).relu())


def build():
    import torch

    torch.manual_seed(0)
    return NextToken()


def load(per_position=True):
    import numpy as np

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, {VOCAB}, size=(256, {STEPS}))
    following = (tokens + 1) % {VOCAB}  # the next token, learnable from the current one
    targets = following if per_position else following[:, 0]
    return {{"train": (tokens, targets), "val": (tokens[:64], targets[:64])}}


def load_one_target_per_sequence():
    return load(per_position=False)
"""


def sequence_recipe(tmp_path, data: str = "load") -> dict:
    (tmp_path / "next_token.py").write_text(SEQUENCE_BUILDER)
    return {
        "version": 1,
        "name": "next-token",
        "model": {
            "source": "next_token.py:build",
            "inputs": [{"name": "tokens", "shape": ["batch", STEPS], "dtype": "int64"}],
        },
        "data": {"source": f"next_token.py:{data}", "batch_size": 32},
        "train": {"epochs": 2, "optimizer": {"type": "adam", "lr": 0.01}},
        "passes": [
            {"type": "prune", "sparsity": 0.5, "targets": ["fc1", "head"], "fine_tune": True}
        ],
        "export": {"path": "out/model.onnx"},
        "measure": {"latency": {"warmup": 1, "runs": 5}},
    }


@pytest.mark.e2e
def test_builder_and_data_functions_import_their_neighbours_when_called(
    write_recipe, run_cli, tmp_path
):
    """Imports inside the functions (not at the top of the file) find the file's folder."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "frictions_layers.py").write_text(
        "from torch import nn\n\ndef mlp():\n    return nn.Sequential(nn.Linear(10, 20), "
        "nn.ReLU(), nn.Linear(20, 2))\n"
    )
    (folder / "frictions_tokens.py").write_text(
        "import numpy as np\n\ndef encode(n):\n    rng = np.random.default_rng(0)\n"
        "    x = rng.normal(size=(n, 10)).astype('float32')\n"
        "    return x, (x[:, 0] > 0).astype('int64')\n"
    )
    (folder / "project.py").write_text(
        textwrap.dedent(
            """
            def build():
                import torch
                from frictions_layers import mlp

                torch.manual_seed(0)
                return mlp()


            def load():
                from frictions_tokens import encode

                return {"train": encode(256), "val": encode(64)}
            """
        )
    )
    recipe = write_recipe(
        {
            "version": 1,
            "name": "neighbours",
            "model": {
                "source": "user_code/project.py:build",
                "inputs": [{"name": "x", "shape": [-1, 10]}],
            },
            "data": {"source": "user_code/project.py:load"},
            "train": {"epochs": 1},
            "evaluate": {"metric": "accuracy"},
            "passes": [{"type": "prune", "sparsity": 0.5, "fine_tune": True}],
            "measure": {"latency": {"warmup": 1, "runs": 5}},
        }
    )
    code, out, err = run_cli("validate", recipe)
    assert code == 0, err
    assert "valid (torch, 262 params" in out
    code, out, err = run_cli("apply", recipe, "--json")
    assert code == 0, err
    assert json.loads(out)["baseline"]["accuracy"] > 0
    assert str(folder) not in sys.path  # it was there only while the functions ran


def test_sys_path_is_restored_when_a_function_raises(tmp_path):
    (tmp_path / "broken.py").write_text(
        "def build():\n    from frictions_missing_neighbour import nothing\n"
    )
    before = list(sys.path)
    with pytest.raises(ModelError, match=r"broken\.py:build raised ModuleNotFoundError"):
        call_reference("broken.py:build", tmp_path)
    assert sys.path == before


def test_token_level_cross_entropy_fine_tunes_a_sequence_model(write_recipe, run_cli, tmp_path):
    """Logits N×T×V with token targets N×T: cross-entropy over every position."""
    code, out, err = run_cli("apply", write_recipe(sequence_recipe(tmp_path)), "--json")
    assert code == 0, err
    prune = json.loads(out)["passes"][0]
    assert prune["achieved_sparsity"] == pytest.approx(0.5, abs=0.005)
    # log(16) = 2.77 for a guess; the next token is a function of the current one
    assert prune["training"]["final_loss"] < 2.0


def test_targets_that_do_not_fit_the_loss_get_a_clear_error(write_recipe, run_cli, tmp_path):
    raw = sequence_recipe(tmp_path, data="load_one_target_per_sequence")
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == 3
    assert "train.loss cross_entropy: model outputs (32, 8, 16) and targets (32,)" in err
    assert "token logits N×T×V with targets N×T" in err
    assert "Traceback" not in err and "Expected target size" not in err


def test_session_loss_takes_token_targets_and_names_wrong_shapes(write_recipe, tmp_path):
    """The same loss in the user's own loop (a recipe without train or data sections)."""
    raw = sequence_recipe(tmp_path)
    del raw["train"], raw["data"]
    raw["passes"] = [
        {"type": "prune", "sparsity": 0.5, "targets": ["head"], "schedule": {"end_step": 4}}
    ]
    model = call_reference("next_token.py:build", tmp_path)
    tokens, targets = (
        torch.as_tensor(a) for a in call_reference("next_token.py:load", tmp_path)["train"]
    )
    session = compress.CompressionSession(model, write_recipe(raw), steps_per_epoch=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for start in range(0, len(tokens), 32):
        optimizer.zero_grad()
        session.loss(model(tokens[start : start + 32]), targets[start : start + 32]).backward()
        optimizer.step()
        session.step()
    with pytest.raises(ModelError, match=r"model outputs \(32, 8, 16\) and targets \(32, 1\)"):
        session.loss(model(tokens[:32]), targets[:32, :1])
    final = session.finalize()
    assert float((final.head.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("outputs", "targets", "fits"),
    [((8, 1), (8,), True), ((8, 3), (8, 3), True), ((8, 3), (8,), False)],
)
def test_mse_takes_targets_of_the_outputs_shape(outputs, targets, fits):
    """N×1 outputs against N targets: a real mse, not torch's silent N×N broadcast."""
    from compress.backends.torch.training import loss_function

    prediction = torch.zeros(outputs, requires_grad=True)
    truth = torch.arange(float(np.prod(targets))).reshape(targets)
    if not fits:
        with pytest.raises(ModelError, match=r"train.loss mse: model outputs \(8, 3\)"):
            loss_function("mse")(prediction, truth)
        return
    loss = loss_function("mse")(prediction, truth)
    loss.backward()
    assert loss.item() == pytest.approx(float((truth**2).mean()))


@pytest.mark.e2e
def test_keras_sequence_model_takes_token_targets_and_names_wrong_shapes():
    from compress.backends.keras.environment import keras_api
    from compress.backends.keras.training import fit
    from compress.data import Split
    from compress.progress import Reporter
    from compress.recipe import TrainSpec

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, size=(128, STEPS))
    following = (tokens + 1) % VOCAB
    api = keras_api("keras")
    api.utils.set_random_seed(0)
    layers = api.layers
    model = api.Sequential(
        [api.Input((STEPS,), dtype="int32"), layers.Embedding(VOCAB, 16), layers.Dense(VOCAB)]
    )
    spec = TrainSpec(epochs=3, optimizer={"lr": 0.05})
    trained = fit(api, model, spec, Split([tokens], following), 32, [], Reporter(False), "fit")
    assert trained["final_loss"] < 2.0  # log(16) = 2.77 for a guess
    with pytest.raises(ModelError) as caught:
        fit(api, model, spec, Split([tokens], following[:, 0]), 32, [], Reporter(False), "fit")
    message = str(caught.value)
    assert "train.loss cross_entropy: model outputs (128, 8, 16) and targets (128,)" in message
    assert "token logits N×T×V with targets N×T" in message


UNEXPECTED_BUILDER = """
import torch
from torch import nn


CALLS = []


class FailsOutsideExport(nn.Module):
    # runs once (the check of the declared inputs), exports fine, then fails when run on real
    # tensors for the parity check: an error nobody anticipated
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 2)

    def forward(self, x):
        if not torch.compiler.is_exporting():
            CALLS.append(x)
            if len(CALLS) > 1:
                raise IndexError("tuple index out of range")
        return self.fc(x)


def build():
    return FailsOutsideExport()
"""


def test_an_unexpected_failure_says_what_was_being_done(write_recipe, run_cli, tmp_path):
    (tmp_path / "odd_model.py").write_text(UNEXPECTED_BUILDER)
    raw = {
        "version": 1,
        "name": "unexpected",
        "model": {"source": "odd_model.py:build", "inputs": [{"name": "x", "shape": [-1, 10]}]},
        "export": {"path": "out/model.onnx"},
    }
    code, _, err = run_cli("apply", write_recipe(raw))
    assert code == 3
    assert err.startswith("error: unexpected failure while exporting the baseline ")
    assert "(model odd_model.py:build of recipe.yaml)" in err
    assert "IndexError: tuple index out of range" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any((tmp_path / "out").iterdir())


def test_a_trial_s_native_output_is_discarded_and_output_resumes_after():
    """The TorchScript exporter prints its IR from C++ when it fails; trying it prints nothing."""
    script = (
        "import os\n"
        "from compress.backends.native_logs import discarded_native_output\n"
        "with discarded_native_output():\n"
        "    os.write(1, b'graph dump\\n'); os.write(2, b'more dump\\n')\n"
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "after\n" and done.stderr == ""
