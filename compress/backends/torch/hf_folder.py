"""A Hugging Face model folder as `model.source`: config.json, *.safetensors and the tokenizer.

The task comes from `config.architectures`: a causal LM (`*ForCausalLM`) becomes a module
mapping input_ids to next-token logits; any other architecture is loaded as the base model
(its last hidden state). Weights come from safetensors only unless the recipe trusts the
folder (pickled `pytorch_model.bin`), and a config that asks for its own code (`auto_map`)
loads only with trust, so loading a folder never runs code the recipe did not allow.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from compress.errors import ModelError, UnsafeModelError

#: Any of these holds a tokenizer that transformers' AutoTokenizer reads.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")


class NextTokenLogits(nn.Module):
    """A causal LM as the pipeline runs it: input_ids -> logits (batch, sequence, vocab)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits


class LastHiddenState(nn.Module):
    """An encoder as the pipeline runs it: input_ids -> last hidden state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).last_hidden_state


def load_folder(folder: Path, trust: bool) -> nn.Module:
    """The folder's model, wrapped for the pipeline (see the module docstring)."""
    config = _config(folder)
    remote = "auto_map" in config
    if remote and not trust:
        raise UnsafeModelError(
            f"refused to load {folder.name}: its config.json asks for the model's own Python code "
            "(auto_map, trust_remote_code); set model.trust: true only for a folder you trust"
        )
    safetensors = sorted(folder.glob("*.safetensors"))
    if not safetensors and not trust:
        pickles = sorted(p.name for p in folder.glob("*.bin")) or ["no weights file"]
        raise UnsafeModelError(
            f"refused to load {folder.name}: it has no *.safetensors weights "
            f"({', '.join(pickles)}); pickled weights can run code when loaded: convert them "
            "to safetensors, or set "
            "model.trust: true only for a folder you made yourself"
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(
            f"{folder.name} has no tokenizer (one of {', '.join(TOKENIZER_FILES)}): save it "
            "into the folder with tokenizer.save_pretrained(folder)"
        )
    causal = any(name.endswith("ForCausalLM") for name in config.get("architectures") or [])
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    loader = AutoModelForCausalLM if causal else AutoModel
    try:
        model = loader.from_pretrained(
            folder,
            local_files_only=True,
            use_safetensors=bool(safetensors),
            trust_remote_code=trust and remote,
        )
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load the model folder {folder.name}: {first}") from exc
    model.eval()
    return NextTokenLogits(model) if causal else LastHiddenState(model)


def _config(folder: Path) -> dict:
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
