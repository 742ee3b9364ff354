"""The width search of `compress tune` for a 4-bit weight-only pass: which algorithm, which
block size and which nodes at 8 bits give the smallest file that meets every budget.

Every trial runs the real pipeline. The order follows what each choice costs in bytes, with
block sizes ordered by the bytes their 4-bit blocks take on this model (padding included: K=192
at block 128 pads to 256, so block 64 makes the smaller file):
1. every algorithm at the block size of the smallest file: the first that passes ends the
   search, nothing smaller exists in the space;
2. the algorithm that lost least, at each larger-file block size down to the first that passes;
3. at the smallest-file block size, the nodes the shared ranking puts first (the most error removed
   per weight widened) at 8 bits: 1, 2, 4 ... until a trial passes, then a bisection on the
   count; no trial is run once its file would be no smaller than the best passing one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

import compress.interrupts as interrupts
from compress.analysis.node_scan import ranked_nodes
from compress.analysis.subject import Subject
from compress.backends.onnx.weight_only import int4_bytes
from compress.errors import RecipeError
from compress.passes.quantize import (
    WEIGHT_ONLY_PASSES,
    CalibratedWeightOnly,
    WeightOnlyQuantize,
    block_size_problem,
)
from compress.progress import Reporter
from compress.recipe import Recipe, as_recipe
from compress.tuning.relocate import recipe_data
from compress.tuning.trials import Trial, quality_lost, run_trial

#: Algorithms a width search tries, in this order (best perplexity first on the trained LM).
ALGORITHMS = ("gptq", "hqq", "awq", "rtn")
#: Block sizes a width search tries (larger blocks: fewer scales, a smaller file, unless K
#: pads up to a whole block).
BLOCK_SIZES = (128, 64, 32)
#: The pass class of each algorithm name.
ALGORITHM_CLASSES: dict[str, type[WeightOnlyQuantize]] = {
    get_args(cls.model_fields["algorithm"].annotation)[0]: cls for cls in WEIGHT_ONLY_PASSES
}


def width_pass(recipe: Recipe) -> tuple[int, WeightOnlyQuantize] | None:
    """The recipe's 4-bit weight-only pass, which a width search can move, if it has one."""
    for index, config in enumerate(recipe.passes):
        if config.searches_widths:
            return index, cast(WeightOnlyQuantize, config)
    return None


def search_space(
    recipe: Recipe,
    index: int,
    algorithms: tuple[str, ...] | None,
    block_sizes: tuple[int, ...] | None,
) -> tuple[list[str], list[int]]:
    """The algorithms (those needing calibration data only when the recipe has data) and the
    block sizes that the search tries."""
    chosen = list(algorithms or ALGORITHMS)
    unknown = [name for name in chosen if name not in ALGORITHM_CLASSES]
    if unknown:
        known = ", ".join(ALGORITHM_CLASSES)
        raise RecipeError(f"compress tune: no weight-only algorithm {unknown[0]!r} ({known})")
    if recipe.data is None:
        calibrated = [
            name for name in chosen if issubclass(ALGORITHM_CLASSES[name], CalibratedWeightOnly)
        ]
        if algorithms and calibrated:
            raise recipe.error_at(
                ("passes", index),
                f"algorithm {calibrated[0]} calibrates on data: add a data section",
            )
        chosen = [name for name in chosen if name not in calibrated]
    sizes = sorted(set(block_sizes or BLOCK_SIZES), reverse=True)
    problem = next(filter(None, map(block_size_problem, sizes)), None)
    if problem:
        raise RecipeError(f"compress tune: block size {problem}")
    return chosen, sizes


@dataclass
class WidthSearch:
    """The trials of a width search; `best` is the passing trial with the smallest file."""

    recipe: Recipe
    pass_index: int
    directory: Path
    reporter: Reporter
    budget: int
    subject: Subject  # the scanned baseline: nodes are ranked on it
    algorithms: list[str]
    block_sizes: list[int]
    trials: list[Trial] = field(default_factory=list)
    interrupted: bool = False

    kind = "widths"
    goal = "the smallest file that met every budget"

    def __post_init__(self) -> None:
        config = cast(WeightOnlyQuantize, self.recipe.passes[self.pass_index])
        sizes = int4_bytes(self.subject.baseline, self.block_sizes, config.symmetric)
        self.block_sizes.sort(key=lambda block: (sizes[block], -block))

    @property
    def best(self) -> Trial | None:
        passing = [t for t in self.trials if t.status == "pass"]
        return min(passing, key=lambda t: (_size(t), _drop(t), t.index), default=None)

    def run(self) -> None:
        try:
            if self._algorithms() or self._blocks():
                return
            self._int8_nodes()
        except KeyboardInterrupt:
            interrupts.acknowledge()
            self.interrupted = True
            self.reporter.note("interrupted: keeping the best trial so far")

    def _left(self) -> bool:
        return len(self.trials) < self.budget

    def _algorithms(self) -> bool:
        """Every algorithm at the smallest-file block; True when the search is over (one passed, or
        the smallest file already misses a compression budget)."""
        block = self.block_sizes[0]
        for algorithm in self.algorithms:
            if not self._left():
                return True
            trial = self.trial(algorithm, block, [], f"{algorithm} at block {block}")
            if trial.status == "pass" or _too_large(trial):
                return True
        return not self._left()

    def _leader(self) -> str:
        """The algorithm that lost least at the smallest-file block."""
        block = self.block_sizes[0]
        tried = [t for t in self.trials if t.widths["block_size"] == block and t.status != "error"]
        if not tried:
            return self.algorithms[0]
        return min(tried, key=lambda t: (_drop(t), t.index)).widths["algorithm"]

    def _blocks(self) -> bool:
        """The leader at each larger-file block size down to the first that passes; True when
        nothing is left to try."""
        leader = self._leader()
        for block in self.block_sizes[1:]:
            if not self._left():
                return True
            trial = self.trial(leader, block, [], f"{leader} at block {block}")
            if trial.status == "pass" or _too_large(trial):
                break
        return not self._left()

    def _int8_nodes(self) -> None:
        """The leader at the smallest-file block with the best-buy nodes at 8 bits: 1, 2, 4 ...
        until a trial passes, then the smallest count that passes, by bisection."""
        leader, block = self._leader(), self.block_sizes[0]
        self.reporter.stage("ranking nodes at 4 bits")
        nodes, cost = ranked_nodes(self.subject, self._config(leader, block))
        if cost <= 0 or not nodes:
            self.reporter.note("tune: no node gains from 8 bits; nothing widened")
            return
        failed, passed, count = 0, None, 1
        while self._left():
            trial = self.trial(leader, block, nodes[:count], f"{count} node(s) at 8 bits")
            if trial.status == "pass":
                passed = count
            elif _too_large(trial) or self._no_smaller(trial):
                return  # more nodes at 8 bits only make the file larger
            else:
                failed = count
            if passed is None:
                if count >= len(nodes):
                    return
                count = min(2 * count, len(nodes))
            elif passed - failed <= 1:
                return
            else:
                count = (failed + passed) // 2

    def _no_smaller(self, trial: Trial) -> bool:
        """Whether `trial`'s file is already no smaller than the best passing one's."""
        best = self.best
        return best is not None and _size(trial) >= _size(best)

    def _config(self, algorithm: str, block: int) -> WeightOnlyQuantize:
        """The pass as the variant's recipe validates it (to rank nodes with)."""
        data = self.variant({"algorithm": algorithm, "block_size": block, "int8_nodes": []})
        config = as_recipe(data, self.recipe.base_dir).passes[self.pass_index]
        return cast(WeightOnlyQuantize, config)

    def trial(self, algorithm: str, block: int, nodes: list[str], why: str) -> Trial:
        index = len(self.trials) + 1
        self.reporter.stage(f"trial {index}/{self.budget}: {why}")
        widths = {"algorithm": algorithm, "block_size": block, "int8_nodes": list(nodes)}
        folder = self.directory / "trials" / f"{index:02d}"
        trial = run_trial(
            index, why, self.variant(widths), self.recipe, folder, self.pass_index,
            {"widths": widths}, self.subject,
        )  # fmt: skip
        self.trials.append(trial)
        verdict = trial.status if trial.status != "fail" else f"fail: {', '.join(trial.failed)}"
        self.reporter.note(f"trial {index}: {why} -> {verdict}")
        return trial

    def variant(self, widths: dict[str, Any]) -> dict:
        """The recipe's data with the weight-only pass at these widths: fields the algorithm's
        class lacks dropped, and max_accuracy_drop dropped (the search chose the 8-bit nodes)."""
        data = recipe_data(self.recipe)
        fields = ALGORITHM_CLASSES[widths["algorithm"]].model_fields
        step = {
            key: value
            for key, value in data["passes"][self.pass_index].items()
            if key in fields and key != "max_accuracy_drop"
        }
        if widths["algorithm"] == "hqq":
            step.pop("symmetric", None)  # hqq fits zero points
        step.update({k: v for k, v in widths.items() if k != "int8_nodes" or v})
        if not widths["int8_nodes"]:
            step.pop("int8_nodes", None)
        data["passes"][self.pass_index] = step
        return data

    def recipe_of(self, trial: Trial) -> dict:
        return self.variant(trial.widths or {})


def _size(trial: Trial) -> float:
    size = trial.figures.get("size_bytes")
    return float("inf") if size is None else size


def _drop(trial: Trial) -> float:
    """What the trial lost: its accuracy drop (relative for perplexity), else its fidelity's
    distance from 1 (no labels)."""
    drop, fidelity = quality_lost(trial), trial.figures.get("fidelity")
    if drop is not None:
        return drop
    return float("inf") if fidelity is None else 1 - fidelity


def _too_large(trial: Trial) -> bool:
    """A trial that failed only compression budgets: more bits cannot help it."""
    return trial.status == "fail" and not trial.too_far
