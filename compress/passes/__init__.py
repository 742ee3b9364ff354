"""Pass types: the protocol (`base`), the registry, and the built-in passes, registered here.

A new pass type is one module with its config and record classes, registered below (or by
anyone with `register_pass`), plus one handler per backend that supports it.
"""

from __future__ import annotations

from compress.passes.base import PassConfig, PassRecord, Stage
from compress.passes.distill import DistillPass
from compress.passes.prune import PrunePass
from compress.passes.quantize import QuantizePass
from compress.passes.registry import (
    AnyPass,
    AnyRecord,
    handler_for,
    pass_names,
    pass_types,
    register_handler,
    register_pass,
)

for _builtin in (PrunePass, DistillPass, QuantizePass):
    register_pass(_builtin)

__all__ = [
    "AnyPass",
    "AnyRecord",
    "PassConfig",
    "PassRecord",
    "Stage",
    "handler_for",
    "pass_names",
    "pass_types",
    "register_handler",
    "register_pass",
]
