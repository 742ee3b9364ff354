"""Hugging Face model folders (config.json, *.safetensors, tokenizer files) as recipes see them,
without importing any framework: what the folder's config says its task and inputs are."""

from __future__ import annotations

import json
from pathlib import Path

from compress.errors import ModelError, UnsafeModelError

#: Any of these holds a tokenizer that transformers' AutoTokenizer reads.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")
#: The name of the one input a folder's model takes (token ids).
TOKEN_INPUT = "input_ids"


def read_config(folder: Path) -> dict:
    """The folder's config.json as a dict; a folder without one is a clear ModelError."""
    path = folder / "config.json"
    if not path.is_file():
        raise ModelError(
            f"{folder} is not a Hugging Face model folder: it has no config.json (model.source "
            "is a folder with config.json, *.safetensors and the tokenizer, a model file, or a "
            "builder 'file.py:fn')"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path} is not a JSON object")
    return config


def architecture(config: dict) -> str | None:
    """The first of config.architectures (e.g. "LlamaForCausalLM"), None when absent."""
    names = config.get("architectures") or []
    return names[0] if names and isinstance(names[0], str) else None


def is_causal_lm(config: dict) -> bool:
    """A next-token predictor: the pipeline runs it as input_ids -> logits."""
    return any(
        isinstance(name, str) and name.endswith("ForCausalLM")
        for name in config.get("architectures") or []
    )


def vocab_size(config: dict) -> int:
    """The vocabulary size, also of configs that nest it (text_config of multimodal models)."""
    for section in (config, config.get("text_config") or {}):
        size = section.get("vocab_size")
        if isinstance(size, int) and size > 0:
            return size
    raise ModelError("the folder's config.json gives no vocab_size")


def check_folder(folder: Path, config: dict, trust: bool) -> bool:
    """Refuse what would run code the recipe did not allow (remote code, pickled weights) and a
    folder without a tokenizer; returns whether the weights are safetensors."""
    if "auto_map" in config and not trust:
        raise UnsafeModelError(
            f"refused to load {folder.name}: its config.json asks for the model's own Python code "
            "(auto_map, trust_remote_code); set model.trust: true only for a folder you trust"
        )
    safetensors = any(folder.glob("*.safetensors"))
    if not safetensors and not trust:
        pickles = sorted(p.name for p in folder.glob("*.bin")) or ["no weights file"]
        raise UnsafeModelError(
            f"refused to load {folder.name}: it has no *.safetensors weights "
            f"({', '.join(pickles)}); pickled weights can run code when loaded: convert them "
            "to safetensors, or set model.trust: true only for a folder you made yourself"
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(
            f"{folder.name} has no tokenizer (one of {', '.join(TOKENIZER_FILES)}): save it "
            "into the folder with tokenizer.save_pretrained(folder)"
        )
    return safetensors
