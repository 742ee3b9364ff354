"""The registry of pass types. Registration is explicit: a new pass is added to PASS_TYPES."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Discriminator

from compress.passes.distill import DistillPass, plan_distill
from compress.passes.prune import PrunePass, plan_prune
from compress.passes.quantize import QuantizePass, plan_quantize

PASS_TYPES: tuple[type, ...] = (PrunePass, DistillPass, QuantizePass)

#: Per pass type: (config, layers) -> what the pass will touch, for `compress plan`.
PLANNERS = {"prune": plan_prune, "distill": plan_distill, "quantize": plan_quantize}


def pass_names() -> list[str]:
    """The `type` names of the registered passes."""
    return [cls.model_fields["type"].default for cls in PASS_TYPES]


AnyPass = Annotated[
    Union[PASS_TYPES],  # noqa: UP007 - a runtime tuple of classes needs Union[...]
    Discriminator("type"),
]
