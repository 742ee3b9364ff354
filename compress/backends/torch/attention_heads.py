"""Attention modules as channel pruning sees them: which projections hold whole heads, which
fuse Q/K/V into one (left whole), and the head counts to update once heads are removed."""

from __future__ import annotations

from torch import nn


def attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    """The query/key/value projections of transformers attention modules (BERT, RoBERTa, ViT
    and kin: `num_attention_heads` over `query`/`key`/`value` Linears) with their head count,
    so whole heads are removed together."""
    heads: dict[nn.Module, int] = {}
    for module in model.modules():
        count = getattr(module, "num_attention_heads", None)
        projections = [getattr(module, name, None) for name in ("query", "key", "value")]
        if isinstance(count, int) and all(isinstance(p, nn.Linear) for p in projections):
            heads.update(dict.fromkeys(projections, count))
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
    heads: update the head count and width they read in `forward`."""
    for module in model.modules():
        query = getattr(module, "query", None)
        size = getattr(module, "attention_head_size", None)
        if (
            isinstance(query, nn.Linear)
            and isinstance(size, int)
            and hasattr(module, "all_head_size")
        ):
            module.num_attention_heads = query.out_features // size
            module.all_head_size = query.out_features
