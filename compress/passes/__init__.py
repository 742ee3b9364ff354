"""Pass types: the protocol (`base`), the registry, and the built-in algorithms, registered here.

A new algorithm is one config class (a `PassConfig` subclass; `type` plus, in a family, the
selector fields that pick it) with its record, registered below or by anyone with
`register_pass`, plus its handlers registered by class (`register_handler`, `register_role`).
"""

from __future__ import annotations

from compress.passes.base import PassConfig, PassRecord, Stage
from compress.passes.distill import DistillPass
from compress.passes.prune import PRUNE_PASSES
from compress.passes.quantize import QUANTIZE_PASSES
from compress.passes.registry import (
    AnyPass,
    AnyRecord,
    handler_for,
    parse_pass,
    pass_names,
    pass_types,
    register_handler,
    register_pass,
    register_role,
    role_for,
)

for _builtin in (*PRUNE_PASSES, DistillPass, *QUANTIZE_PASSES):
    register_pass(_builtin)

__all__ = [
    "AnyPass",
    "AnyRecord",
    "PassConfig",
    "PassRecord",
    "Stage",
    "handler_for",
    "parse_pass",
    "pass_names",
    "pass_types",
    "register_handler",
    "register_pass",
    "register_role",
    "role_for",
]
