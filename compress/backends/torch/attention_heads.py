"""Attention modules as channel pruning sees them: which projections hold whole heads, which
fuse Q/K/V into one (left whole), and the head counts to update once heads are removed.

Two transformers layouts are known: BERT/RoBERTa (`query`/`key`/`value`, `num_attention_heads`,
`attention_head_size`, `all_head_size`) and the newer attention interface of ViT, Llama, Qwen and
kin (`q_proj`/`k_proj`/`v_proj`, `num_attention_heads` or `num_heads`, `head_dim`, and
`num_key_value_heads` for grouped-query attention).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

PROJECTIONS = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"))
HEAD_COUNTS = ("num_attention_heads", "num_heads")
HEAD_WIDTHS = ("attention_head_size", "head_dim")


@dataclass(frozen=True)
class Attention:
    """One attention module: its Q/K/V projections and the attributes that count its heads."""

    module: nn.Module
    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    count: str  # the attribute holding the number of (query) heads
    width: int  # channels per head

    @property
    def heads(self) -> dict[nn.Linear, int]:
        """Heads per projection (keys and values have fewer under grouped-query attention)."""
        kv = getattr(self.module, "num_key_value_heads", None)
        kv = kv if isinstance(kv, int) else getattr(self.module, self.count)
        return {self.query: getattr(self.module, self.count), self.key: kv, self.value: kv}

    def update(self) -> None:
        """Tell the module how many heads its (cut) projections now hold."""
        setattr(self.module, self.count, self.query.out_features // self.width)
        if isinstance(getattr(self.module, "num_key_value_heads", None), int):
            self.module.num_key_value_heads = self.key.out_features // self.width
        if isinstance(getattr(self.module, "all_head_size", None), int):
            self.module.all_head_size = self.query.out_features


def attention_modules(model: nn.Module) -> list[Attention]:
    """The attention modules of a model in one of the known layouts."""
    found = []
    for module in model.modules():
        count = next((a for a in HEAD_COUNTS if isinstance(getattr(module, a, None), int)), None)
        width = next((getattr(module, a) for a in HEAD_WIDTHS if hasattr(module, a)), None)
        for names in PROJECTIONS:
            projections = [getattr(module, name, None) for name in names]
            if (
                count
                and isinstance(width, int)
                and all(isinstance(p, nn.Linear) for p in projections)
            ):
                found.append(Attention(module, *projections, count=count, width=width))
    return found


def attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    """Every Q/K/V projection with its head count, so whole heads are removed together."""
    heads: dict[nn.Module, int] = {}
    for attention in attention_modules(model):
        heads.update(attention.heads)
    return heads


def fused_attention(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Attention modules whose Q, K and V come from one projection split three ways (GPT-2's
    `c_attn`): Torch-Pruning cannot keep the three parts' heads aligned, so it stays whole."""
    found = []
    for name, module in model.named_modules():
        projection = getattr(module, "c_attn", None)
        if isinstance(projection, nn.Module) and hasattr(module, "split_size"):
            found.append((f"{name}.c_attn", projection))
    return found


def fix_attention(model: nn.Module) -> None:
    """After heads are removed, attention modules must split their projections into fewer
    heads: update the head counts (and widths) they read in `forward`."""
    for attention in attention_modules(model):
        attention.update()
