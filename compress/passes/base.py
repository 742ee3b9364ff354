"""The pass protocol: what every pass config declares, and the record it leaves in the report.

A pass is data (its recipe fields) plus these declarations, so the pipeline, the recipe checks,
`compress plan`, `compress passes` and the session never ask which pass they hold. One class is
one algorithm: `type` and the fields named in `selectors` (`method`, `mode`...) pick the class
when a recipe is read. The code that applies a pass lives in handlers registered by class in
`compress.passes.registry`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict

from compress.errors import RecipeError
from compress.passes.targets import LayerInfo
from compress.schema import StrictModel

#: Where a pass works: on the framework model, or on the exported ONNX file.
Stage = Literal["model", "onnx"]


class RecipeView(Protocol):
    """What a pass's recipe checks read of the recipe around it (compress.recipe.Recipe)."""

    model: Any
    data: Any
    train: Any
    passes: list[Any]

    def error_at(self, loc: tuple[str | int, ...], message: str) -> RecipeError: ...


class PassRecord(BaseModel):
    """What one pass did, in the report: `type`, `seconds` (None when the user's loop ran it)
    and the pass's own keys. Unknown keys are kept (backend details, other tool versions), and a
    record reads like the dict it was before typed records: `record["achieved_sparsity"]`."""

    model_config = ConfigDict(extra="allow")

    type: str
    seconds: float | None = None

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        extra = self.__pydantic_extra__ or {}
        if key in extra:
            return extra[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields or key in (self.__pydantic_extra__ or {})

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def items(self) -> list[tuple[str, Any]]:
        """Declared keys first, then the extra ones, as in report.json."""
        return list(self)


class PassConfig(StrictModel):
    """A pass's recipe fields plus what the pipeline needs to know to run it. Subclasses set
    `type` to a Literal (the recipe's tag) and `record` to their record model; an algorithm of a
    family sets `selectors` and gives each selector field a one-value Literal."""

    type: str
    #: The report record of this pass type.
    record: ClassVar[type[PassRecord]] = PassRecord
    #: True when the pass zeroes weights in place: the report then says what sparsity buys.
    sparsifies: ClassVar[bool] = False
    #: The fields, after `type`, whose values select this class (e.g. ("method",)).
    selectors: ClassVar[tuple[str, ...]] = ()
    #: Said by `compress analyze` when no scan is registered for the class.
    no_scan: ClassVar[str | None] = None

    @classmethod
    def tag(cls) -> str:
        return cls.model_fields["type"].default

    @classmethod
    def selection(cls) -> tuple[str, ...]:
        """The values of the selector fields that pick this class."""
        return tuple(get_args(cls.model_fields[name].annotation)[0] for name in cls.selectors)

    @classmethod
    def label(cls) -> str:
        """How messages name the algorithm: `prune` or `prune (method channel)`."""
        chosen = ", ".join(
            f"{name} {value}" for name, value in zip(cls.selectors, cls.selection(), strict=True)
        )
        return f"{cls.tag()} ({chosen})" if chosen else cls.tag()

    @property
    def variant(self) -> str:
        """The algorithm's own name: the last selector value (`channel`), else the type."""
        selection = type(self).selection()
        return selection[-1] if selection else self.type

    @property
    def stage(self) -> Stage:
        """`model` passes change the framework model; `onnx` passes rewrite the exported file
        and come after every model pass."""
        return "model"

    @property
    def trains(self) -> bool:
        """Whether the built-in trainer runs (it needs the recipe's train and data)."""
        return False

    @property
    def splits(self) -> tuple[str, ...]:
        """The data splits the pipeline reads for this pass, the first one present is used."""
        return ("train",) if self.trains else ()

    @property
    def session_refusal(self) -> str | None:
        """Why a CompressionSession cannot run this pass, or None when it can (ONNX passes run
        at the session's export)."""
        if self.stage == "onnx":
            return None
        return f"{type(self).label()} does not say it runs inside your own training loop"

    @property
    def in_session(self) -> bool:
        return self.session_refusal is None

    @property
    def allocates(self) -> bool:
        """Whether the pipeline scans sensitivity first and hands the pass per-layer levels
        (`allocated` in compress/analysis/levels.py)."""
        return False

    @property
    def reshapes(self) -> bool:
        """Whether the pass changes layer widths: the smaller framework model is then saved
        next to the ONNX file, since the recipe's builder no longer builds it."""
        return False

    @property
    def uses_original(self) -> bool:
        """Whether the pass needs the model as loaded (the pipeline then keeps a copy)."""
        return False

    @property
    def searches_widths(self) -> bool:
        """Whether `compress tune` searches this pass's widths (algorithm, block size, 8-bit
        nodes) when the recipe has no prune level to move."""
        return False

    @property
    def keeps_nodes_float(self) -> bool:
        """Whether the pass rewrites ONNX nodes and takes node names in `ignore` to leave them
        in float (`compress tune` moves such nodes)."""
        return False

    def schedule_end(self, steps_per_epoch: int) -> int | None:
        """The optimizer step at which the pass's schedule ends (None: no schedule)."""
        return None

    def references(self) -> list[tuple[tuple[str, ...], str | None]]:
        """Other files the pass names, as (location inside the pass, reference)."""
        return []

    def plan(self, layers: list[LayerInfo]) -> dict:
        """What the pass will touch, for `compress plan`: by default nothing more than its
        structure changes (`planned_model`). A pass that zeroes weights gives `layers` rows
        {name, kind, weights, nonzero_after} with `weights_before` and `nonzero_after`."""
        return {}

    def planned_model(self, backend: Any, model: Any, context: Any) -> tuple[Any, dict] | None:
        """For `compress plan`: the model this pass turns `model` into, without training, and
        what it says it did; None when the pass changes weights only (the structure, its
        parameters and MACs stay)."""
        return None

    def recipe_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        """What this pass needs from the rest of the recipe, in every usage."""
        return []

    def apply_problems(self, recipe: RecipeView, index: int) -> list[RecipeError]:
        """What this pass needs besides when `compress apply` trains it (train and data are
        checked for every pass that trains)."""
        return []

    def record_of(self, info: dict, seconds: float | None) -> PassRecord:
        """The typed report record of what a handler says the pass did."""
        return self.record.model_validate({"type": self.type, "seconds": seconds, **info})
