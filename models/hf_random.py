"""Hugging Face causal-LM folders with random weights, at the shapes of small public models, for
timing generation where a trained model is not needed (decode speed does not depend on what the
weights learned). No download: the architecture comes from transformers' own config classes, the
tokenizer is models/pydoc_lm's (its 2048 ids sit inside the larger config vocabulary, so prompts
tokenized by it are valid ids).

    .venv/bin/python models/hf_random.py llama /tmp/llama-30M
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path
from typing import Literal

Family = Literal["llama", "qwen2"]

PYDOC_LM = Path(__file__).resolve().parent / "pydoc_lm"
#: The tokenizer files copied from PYDOC_LM.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
#: pydoc_lm's end-of-text id, also the models' bos/eos (its only special token).
END_OF_TEXT = 0
#: Enough context for a 64-token prompt and 128 new tokens, with room to spare.
CONTEXT = 512

#: config keyword arguments per family and size class. llama: untied, 4 KV heads of 8
#: (TinyLlama's ratio); qwen2: tied embeddings, 2 KV heads of 10 and QKV biases (Qwen2's layout).
#: The 32000-token embeddings make the counts larger than the names: "30M" is 56M (llama) and
#: 55M (qwen2) parameters, "100M" about 124M and 130M; write_folder prints the exact count.
SHAPES: dict[str, dict[str, dict]] = {
    "llama": {
        "30M": dict(num_hidden_layers=8, hidden_size=512, num_attention_heads=8,
                    num_key_value_heads=4, intermediate_size=1376, tie_word_embeddings=False),
        "100M": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                     num_key_value_heads=4, intermediate_size=2048, tie_word_embeddings=False),
    },
    "qwen2": {
        "30M": dict(num_hidden_layers=8, hidden_size=640, num_attention_heads=10,
                    num_key_value_heads=2, intermediate_size=1728, tie_word_embeddings=True),
        "100M": dict(num_hidden_layers=12, hidden_size=896, num_attention_heads=14,
                     num_key_value_heads=2, intermediate_size=2432, tie_word_embeddings=True),
    },
}  # fmt: skip
VOCAB = 32000


def config_for(family: Family, size: str):
    """The transformers config of `family` at `size` (a key of SHAPES)."""
    from transformers import LlamaConfig, Qwen2Config

    if size not in SHAPES[family]:
        raise ValueError(f"unknown size {size!r} for {family}; choose from {list(SHAPES[family])}")
    config_class = {"llama": LlamaConfig, "qwen2": Qwen2Config}[family]
    return config_class(
        vocab_size=VOCAB,
        max_position_embeddings=CONTEXT,
        bos_token_id=END_OF_TEXT,
        eos_token_id=END_OF_TEXT,
        **SHAPES[family][size],
    )


def write_folder(family: Family, target: Path, size: Literal["30M", "100M"] | str = "30M") -> Path:
    """Write a seeded random `family` model of `size` to `target` (config.json,
    model.safetensors, pydoc_lm's tokenizer); returns `target`. Prints the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM

    target = Path(target)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config_for(family, size)).eval()
    model.save_pretrained(target, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy2(PYDOC_LM / name, target / name)
    print(f"{family} {size}: {parameter_count(target):,} parameters -> {target}")
    return target


def parameter_count(folder: Path) -> int:
    """The parameters stored in a folder's safetensors files (tied embeddings once), read from
    their headers without loading a tensor."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open is not iterable)
                total += math.prod(weights.get_slice(name).get_shape())
    return total


if __name__ == "__main__":
    write_folder(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:4])  # type: ignore[arg-type]
