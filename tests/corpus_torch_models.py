"""Public transformer architectures built from their transformers configs with random weights
(no download), small enough for the test suite. Transformers models take keyword arguments and
return output objects; each wrapper takes the positional tensors the recipe declares and returns
one tensor, as an exported ONNX graph does."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SEQ = 16
VOCAB = 512


def _seeded() -> None:
    torch.manual_seed(0)


class ImageClassifier(nn.Module):
    """pixel_values -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


class Encoder(nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> last hidden state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


class Decoder(nn.Module):
    """input_ids -> next-token logits (no cache)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits


def resnet() -> nn.Module:
    """transformers ResNet (ResNet-18 layout: basic blocks, depths 2-2-2-2), narrow widths."""
    from transformers import ResNetConfig, ResNetForImageClassification

    _seeded()
    config = ResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[2, 2, 2, 2],
        layer_type="basic",
        num_labels=10,
    )
    return ImageClassifier(ResNetForImageClassification(config))


def vit() -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    _seeded()
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=10,
    )
    return ImageClassifier(ViTForImageClassification(config))


def bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    _seeded()
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    return Encoder(BertModel(config, add_pooling_layer=False))


def gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    _seeded()
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
    )
    return Decoder(GPT2LMHeadModel(config))


def images() -> dict:
    """Random NCHW images for calibration and validation (static quantization needs data)."""
    rng = np.random.default_rng(0)
    return {
        "calibration": rng.standard_normal((16, 3, 32, 32)).astype(np.float32),
        "val": rng.standard_normal((16, 3, 32, 32)).astype(np.float32),
    }


def tokens() -> dict:
    """Next-token targets on token sequences, for fine-tuning the decoder."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (64, SEQ + 1))
    return {"train": (ids[:48, :-1], ids[:48, 1:]), "val": (ids[48:, :-1], ids[48:, 1:])}
