"""analysis.json (schema version 1): what `compress analyze` measured, per pass of the recipe.

Every figure is a drop in the recipe's evaluate metric on the scanned val samples (positive:
worse), or in fidelity to the unchanged model when val has no labels: a fraction (`drop_unit`
points: 0.0039 = 0.39 percentage points) for accuracy and top5, else in the metric's own units.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from compress.units import Unit

ANALYSIS_SCHEMA_VERSION = 1


class Point(BaseModel):
    """One layer (or group) changed alone to `level`: the drop it caused."""

    level: float
    drop: float


class LayerSensitivity(BaseModel):
    """How a layer (`kind` weights) or a coupled channel group (`channels`) hurts the metric
    when it alone is pruned at each level; `size` its weights (a group: its channels), what
    allocation spends."""

    name: str
    size: int
    points: list[Point]
    #: a group: every layer sliced with it
    layers: list[str] = Field(default_factory=list)

    @property
    def worst(self) -> float:
        """The drop at the highest level scanned: the ranking key."""
        return self.points[-1].drop if self.points else 0.0


class NodeSensitivity(BaseModel):
    """One quantized node: the drop with it alone quantized (all else float), the drop with it
    alone back in float (all else quantized), and the ranking's gain: how much of the fully
    quantized model's error its reversion removes (the accuracy-aware fallback's order)."""

    name: str
    op: str
    alone_drop: float
    reverted_drop: float
    gain: float
    #: the gain as a fraction of the fully quantized model's error on the ranking's samples
    gain_share: float | None = None
    #: the place among the candidates for float (from 1); None: reverting it gains nothing, or
    #: the fully quantized model loses nothing
    rank: int | None = None


class PassAnalysis(BaseModel):
    index: int
    type: str
    kind: Literal["weights", "channels", "nodes"]
    method: str
    levels: list[float] = Field(default_factory=list)
    layers: list[LayerSensitivity] = Field(default_factory=list)
    nodes: list[NodeSensitivity] = Field(default_factory=list)
    #: nodes: the drop of the fully quantized model
    full_drop: float | None = None
    notes: list[str] = Field(default_factory=list)
    seconds: float


class Analysis(BaseModel):
    schema_version: int = ANALYSIS_SCHEMA_VERSION
    tool_version: str
    recipe: dict
    framework: str
    measure: str
    metric: str | None
    #: the unit of every drop: points (of accuracy or top-1 agreement) or score
    drop_unit: Unit = "points"
    baseline_score: float | None
    samples: int
    passes: list[PassAnalysis]
    skipped: list[dict] = Field(default_factory=list)
    environment: dict
    seconds: float
    #: where analysis.json and analysis.html were written
    directory: str = ""

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"
