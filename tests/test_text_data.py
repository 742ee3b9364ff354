"""Text as a language model's data, and perplexity: files and a callable's strings become
token windows cut by the model folder's tokenizer; a folder recipe needs no model.inputs; bad
text inputs and inconsistent LLM recipes are clear recipe errors (the perplexity of the float
export against torch's is checked in tests/test_llm.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import MODELS

import compress
from compress.backends.torch.hf_folder import token_stream
from compress.data import load_data
from compress.errors import EXIT_USAGE

FOLDER = MODELS / "pydoc_lm"
TEXT = (
    "The module provides functions for working with paths. Each function returns a new "
    "string and never changes its argument. "
) * 12


def text_recipe(tmp_path, text: dict, seq_len: int = 16, **sections) -> dict:
    return {
        "version": 1,
        "name": "text",
        "model": {"source": str(FOLDER)},
        "data": {"text": text, "seq_len": seq_len},
        "evaluate": {"metric": "perplexity"},
        **sections,
    }


def test_text_files_become_windows_of_seq_len_tokens(tmp_path):
    (tmp_path / "train.txt").write_text(TEXT)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(TEXT[:300])
    (docs / "b.txt").write_text(TEXT[300:600])
    (docs / "ignored.py").write_text("x = 1")
    recipe = compress.load_recipe(
        text_recipe(tmp_path, {"train": "train.txt", "val": "docs"}), base_dir=tmp_path
    )
    assert recipe.model.inputs[0].shape == ["batch", 16]  # derived from the folder
    data = load_data(recipe)
    stream = token_stream(FOLDER, [TEXT])
    train = data["train"].inputs[0]
    assert train.shape == (len(stream) // 16, 16) and train.dtype == np.int64
    np.testing.assert_array_equal(train.reshape(-1), stream[: train.size])
    assert np.array_equal(data["train"].targets, train)  # each window is its own target
    val_stream = token_stream(FOLDER, [TEXT[:300], TEXT[300:600]])  # a.md, then b.txt
    assert data["val"].inputs[0].size == len(val_stream) // 16 * 16
    assert data["calibration"].inputs[0] is train  # calibration defaults to train


@pytest.mark.parametrize(
    ("files", "split", "said"),
    [
        ({"val.txt": "short text"}, "val", "fewer than one window of data.seq_len 16"),
        ({"val.txt": "  \n"}, "val", "val.txt is empty"),
        ({"val.txt": b"\xff\xfe caf\xe9"}, "val", "is not UTF-8 text"),
        ({"empty/notes.py": "x"}, "val", "holds no .txt or .md files"),
    ],
)
def test_bad_text_is_a_recipe_error_at_its_split(
    write_recipe, run_cli, tmp_path, files, split, said
):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    given = next(iter(files)).split("/")[0]
    code, _, err = run_cli("validate", write_recipe(text_recipe(tmp_path, {split: given})))
    assert code == EXIT_USAGE
    assert f"data.text.{split}:" in err and said in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"model": {"source": "../models/x.py:build"}, "data": {"text": {"val": "v.txt"}}},
            "model.inputs: required unless model.source is a Hugging Face model folder",
        ),
        (
            {"budgets": {"perplexity_increase": {"max": 0.05}}, "evaluate": None},
            "perplexity budgets need evaluate: {metric: perplexity}",
        ),
        (
            {"budgets": {"decode_tokens_per_s": {"min": 100}}},
            "generation budgets need measure.generation",
        ),
        ({"data": {"source": "d.py:load", "text": {"val": "v.txt"}}}, "one of them"),
    ],
)
def test_inconsistent_llm_recipes_are_refused(write_recipe, run_cli, tmp_path, change, said):
    (tmp_path / "v.txt").write_text(TEXT)
    raw = text_recipe(tmp_path, {"val": "v.txt"})
    for key, value in change.items():
        if value is None:
            raw.pop(key)
        elif isinstance(raw.get(key), dict) and key != "data":
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE, err
    assert said in err


def test_generation_needs_a_causal_lm_folder(write_recipe, run_cli, tmp_path):
    raw = text_recipe(tmp_path, {"val": "v.txt"})
    raw["model"] = {
        "source": str(MODELS / "seed_mlp.py") + ":build",
        "inputs": [{"name": "x", "shape": ["batch", 4]}],
    }
    raw["data"] = {"source": str(MODELS / "digits.py") + ":load"}
    raw["evaluate"] = {"metric": "accuracy"}
    raw["measure"] = {"generation": {"new_tokens": 8}}
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "measure.generation: generation folders are exported from a Hugging Face causal" in err


def test_an_architecture_the_builder_cannot_write_is_refused_before_any_work(
    write_recipe, run_cli, tmp_path
):
    folder = tmp_path / "phi"
    shutil.copytree(FOLDER, folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["PhiForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    raw = text_recipe(tmp_path, {"val": "v.txt"})
    (tmp_path / "v.txt").write_text(TEXT)
    raw["model"] = {"source": str(folder)}
    raw["measure"] = {"generation": {"new_tokens": 8}}
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "phi is a PhiForCausalLM, which onnxruntime-genai's model builder cannot" in err
    assert "supported: Ernie4_5ForCausalLM" in err and "LlamaForCausalLM" in err


def test_a_text_error_is_located_at_its_split_only(write_recipe, run_cli, tmp_path):
    (tmp_path / "v.txt").write_text("short text")
    code, _, err = run_cli("validate", write_recipe(text_recipe(tmp_path, {"val": "v.txt"})))
    assert code == EXIT_USAGE
    assert err.count("data.text.val:") == 1 and "data.source" not in err


def test_a_pass_the_generation_decoder_cannot_take_is_refused_before_any_work(
    write_recipe, run_cli, tmp_path
):
    (tmp_path / "v.txt").write_text(TEXT)
    raw = text_recipe(tmp_path, {"val": "v.txt"})
    raw["passes"] = [{"type": "quantize", "mode": "static"}]
    raw["measure"] = {"generation": {"new_tokens": 8}}
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "passes.0: this pass cannot be applied to a generation (KV-cache) decoder" in err


def test_export_generation_without_a_model_folder_is_refused_at_its_line(
    write_recipe, run_cli, tmp_path
):
    raw = {
        "version": 1,
        "name": "mlp",
        "model": {
            "source": str(MODELS / "seed_mlp.py") + ":build",
            "inputs": [{"name": "x", "shape": ["batch", 10]}],
        },
        "export": {"generation": True},
    }
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "export.generation: generation folders are exported from a Hugging Face" in err


def test_a_reshaping_pass_with_generation_folders_is_refused(write_recipe, run_cli, tmp_path):
    (tmp_path / "v.txt").write_text(TEXT)
    raw = text_recipe(tmp_path, {"val": "v.txt"})
    raw["passes"] = [{"type": "prune", "method": "channel", "sparsity": 0.5}]
    raw["measure"] = {"generation": {"new_tokens": 8}}
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "passes.0: this pass changes the model's shapes" in err


def test_a_source_mixing_text_and_arrays_is_refused(write_recipe, run_cli, tmp_path):
    (tmp_path / "mixed.py").write_text(
        "import numpy as np\n\ndef load():\n"
        "    return {'train': ['some text ' * 50], 'val': np.zeros((4, 16), dtype=np.int64)}\n"
    )
    raw = text_recipe(tmp_path, {"val": "v.txt"})
    raw["data"] = {"source": "mixed.py:load", "seq_len": 16}
    code, _, err = run_cli("validate", write_recipe(raw))
    assert code == EXIT_USAGE
    assert "split 'val' is not a list of strings, but another split is" in err
