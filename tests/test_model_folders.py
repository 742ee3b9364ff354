"""A Hugging Face model folder as `model.source` (config.json, *.safetensors, tokenizer): the
trained LM of models/ loads as next-token logits, and a folder that is incomplete or would run
code is refused with a message that names it and says what to do."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import MODELS

from compress.errors import EXIT_MODEL

FOLDER = MODELS / "pydoc_lm"


def folder_recipe(write_recipe, source: str, **model) -> str:
    return write_recipe(
        {
            "version": 1,
            "name": "folder",
            "model": {
                "source": source,
                "inputs": [{"name": "input_ids", "shape": ["batch", "sequence"], "dtype": "int64"}],
                **model,
            },
            "passes": [{"type": "quantize", "mode": "weight_only", "weights": "int4"}],
            "measure": {"latency": {"warmup": 1, "runs": 3, "dims": {"sequence": 16}}},
        }
    )


def test_a_model_folder_is_a_source(write_recipe, run_cli):
    code, out, err = run_cli("validate", folder_recipe(write_recipe, str(FOLDER)))
    assert code == 0, err
    assert "valid (torch, 1,967,808 params in the torch model" in out
    assert err == ""  # no progress bars or native library lines from transformers


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("config.json", "is not a Hugging Face model folder: it has no config.json"),
        ("tokenizer.json", "has no tokenizer (one of tokenizer.json"),
        ("model.safetensors", "has no *.safetensors weights (pytorch_model.bin)"),
        ("auto_map", "asks for the model's own Python code (auto_map, trust_remote_code)"),
    ],
)
def test_a_folder_that_is_incomplete_or_runs_code_is_refused(
    write_recipe, run_cli, tmp_path, change, said
):
    folder = tmp_path / "lm"
    shutil.copytree(FOLDER, folder)
    if change == "auto_map":
        config = json.loads((folder / "config.json").read_text())
        config["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MyModel"}
        (folder / "config.json").write_text(json.dumps(config))
    else:
        (folder / change).unlink()
    if change == "model.safetensors":
        (folder / "pytorch_model.bin").write_bytes(b"a pickle")
    code, _, err = run_cli("validate", folder_recipe(write_recipe, "lm"))
    assert code == EXIT_MODEL, err
    assert said in err and "Traceback" not in err
