"""The Hugging Face folder a generation folder is built from, checked before anything runs.

onnxruntime-genai's model builder dispatches on `config.architectures[0]`; an architecture it
does not know fails deep inside it, so it is refused here first. As when compress loads a
folder into torch, a folder that asks for its own code (`auto_map`) or holds only pickled
weights is refused (compress.model_folders.check_folder): building must never run code.
"""

from __future__ import annotations

from pathlib import Path

from compress.errors import ModelError
from compress.model_folders import architecture, check_folder, read_config

#: Architectures the builder exports to a plain KV-cache decoder that transformers also loads
#: without remote code (onnxruntime_genai/models/builder.py, `create_model`), each checked with
#: onnxruntime-genai 0.18 and transformers 5.24 on a small random-weight model: export, prefill
#: logits within 2e-4 of transformers', 32 greedy tokens identical. Left out: the builder's
#: vision, audio, mixture-of-experts and remote-code entries (their decoder is one stage of a
#: pipeline, needs CUDA, or cannot be checked against transformers); Gemma3ForCausalLM (the
#: builder fails on transformers 5's rope_parameters); PhiForCausalLM, NemotronForCausalLM and
#: OlmoForCausalLM (prefill logits 7e-3 to 0.2 away from transformers').
SUPPORTED_ARCHITECTURES: tuple[str, ...] = (
    "Ernie4_5ForCausalLM",
    "GemmaForCausalLM",
    "Gemma2ForCausalLM",
    "GraniteForCausalLM",
    "HunYuanDenseV1ForCausalLM",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Phi3ForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "SmolLM3ForCausalLM",
)


def checked_architecture(folder: Path) -> str:
    """The folder's architecture, once the folder is known safe and buildable; UnsafeModelError
    or ModelError saying what to do otherwise."""
    config = read_config(folder)
    check_folder(folder, config, trust=False)
    name = architecture(config)
    if name not in SUPPORTED_ARCHITECTURES:
        raise ModelError(
            f"{folder.name}/config.json names the architecture {name or '(none)'}, which "
            "onnxruntime-genai's model builder cannot turn into a generation folder; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    return name
