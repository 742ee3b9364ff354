"""The level search of `compress tune`, FastNAS style: a sensitivity scan of the prune pass's layers
gives each overall level its per-layer levels and a predicted drop, the first guess is the
highest level predicted to meet the accuracy budget, a binary search on the overall level finds
the edge with real trials, and local moves then raise single layers to where the failing trial
had them. Every trial runs the real pipeline (fine-tuning included). A recipe without a prune
pass but with a 4-bit weight-only one gets the width search instead (tuning/widths.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import compress.interrupts as interrupts
from compress.analysis.levels import ALLOCATION_LEVELS, Allocator
from compress.analysis.node_scan import ranked_nodes
from compress.analysis.run import prepared
from compress.analysis.scans import LEVELS
from compress.analysis.subject import SCAN_SAMPLES, Subject
from compress.atomic import write_text_or_fail
from compress.errors import RecipeError
from compress.outputs import clear_written, record_written, tool_directory
from compress.passes import PassConfig, role_for
from compress.passes.prune import PruneBase
from compress.passes.registry import classes_with
from compress.progress import Reporter, progress_wanted
from compress.recipe import Recipe, as_recipe, check_usage
from compress.tuning.html import render_tuning
from compress.tuning.relocate import recipe_data
from compress.tuning.trials import Trial, Tuning, run_trial, write_recipe
from compress.tuning.widths import WidthSearch, search_space, width_pass
from compress.version import __version__

DEFAULT_TRIALS = 12
#: The binary search stops when the passing and failing levels are this close.
RESOLUTION = 0.01
#: Grid on which the first guess is looked for.
GUESS_STEP = 0.01
#: The most quantized nodes a search keeps in float to let a higher level pass.
MAX_FLOAT_NODES = 3

#: What `compress tune` writes into its output directory ("trials/": every trial's folder).
TUNE_WRITES = ("tuned.yaml", "tuning.json", "tuning.html", "trials/")


def tune(
    recipe: Recipe | str | Path | Mapping[str, Any],
    trials: int = DEFAULT_TRIALS,
    output_dir: str | Path | None = None,
    progress: bool | None = None,
    base_dir: str | Path | None = None,
    algorithms: tuple[str, ...] | None = None,
    block_sizes: tuple[int, ...] | None = None,
) -> Tuning:
    """Search `recipe` for the most compression that meets every budget, in at most `trials`
    pipeline runs: the level of its first magnitude or channel prune pass or, without one,
    the widths of its 4-bit weight-only pass (`algorithms` x `block_sizes` x nodes at 8 bits);
    writes tuned.yaml, tuning.json and tuning.html to `output_dir` (default `<export
    dir>/tune`). Ctrl-C stops the search and keeps the best trial so far (`interrupted`)."""
    recipe = check_usage(as_recipe(recipe, base_dir), "apply")
    pass_index, config = tuned_pass(recipe)
    space = None
    if role_for(LEVELS, config) is None:
        space = search_space(recipe, pass_index, algorithms, block_sizes)
    reporter = Reporter(progress_wanted(progress))
    directory = tool_directory(recipe, output_dir, "tune", TUNE_WRITES)
    clear_written(directory, "trials/", "compress tune")  # an earlier search's trials
    record_written(directory, TUNE_WRITES, "compress tune")  # trials are written as it runs
    started = time.perf_counter()
    search: Search | WidthSearch
    with prepared(recipe, reporter, SCAN_SAMPLES, "compress tune") as subject:
        if space is None:
            reporter.stage("scanning sensitivity")
            allocator = Allocator(subject, config)
            search = Search(recipe, pass_index, allocator, directory, reporter, trials, subject)
            limit = quality_limit(recipe, subject.scorer.reference_score)
            search.run(first_guess(allocator, limit, cast(PruneBase, config)))
        else:
            search = WidthSearch(recipe, pass_index, directory, reporter, trials, subject, *space)
            search.run()
    tuning = result(search, config, time.perf_counter() - started)
    write_outputs(tuning, search, recipe, directory)
    return tuning


def tuned_pass(recipe: Recipe) -> tuple[int, PassConfig]:
    """The pass the search moves: the first whose class has a `levels` sensitivity scan
    (magnitude and channel pruning), else the 4-bit weight-only pass; the recipe must have
    budgets to meet."""
    if recipe.budgets is None or not recipe.budgets.model_dump(exclude_none=True):
        raise recipe.error_at(("budgets",), "compress tune meets the recipe's budgets: add some")
    for index, config in enumerate(recipe.passes):
        if role_for(LEVELS, config) is not None:
            return index, config
    found = width_pass(recipe)
    if found is not None:
        return found
    tunable = ", ".join(cls.label() for cls in classes_with(LEVELS))
    raise RecipeError(
        f"compress tune searches the level of a pass with a sensitivity scan ({tunable}) or "
        "the widths of a 4-bit weight-only quantize pass: "
        f"{recipe.path.name if recipe.path else 'the recipe'} has neither"
    )


def quality_limit(recipe: Recipe, baseline_score: float | None) -> float | None:
    """The drop the accuracy budgets allow (the tighter of accuracy_drop and accuracy)."""
    budgets = recipe.budgets
    limits = []
    if budgets and budgets.accuracy_drop and budgets.accuracy_drop.max is not None:
        limits.append(budgets.accuracy_drop.max)
    if budgets and budgets.accuracy and budgets.accuracy.min is not None and baseline_score:
        limits.append(baseline_score - budgets.accuracy.min)
    return min(limits) if limits else None


def first_guess(allocator: Allocator, limit: float | None, config: PruneBase) -> float:
    """The highest overall level whose predicted drop meets `limit` (the recipe's own level
    when there is no accuracy budget)."""
    if limit is None:
        return config.target
    best = GUESS_STEP
    level = GUESS_STEP
    while level <= ALLOCATION_LEVELS[-1] + 1e-9:
        if allocator.predicted(allocator.levels(level)) <= limit:
            best = level
        level = round(level + GUESS_STEP, 4)
    return best


@dataclass
class Search:
    """The trials so far and the bracket they give: `passed` (highest passing trial),
    `too_far` (lowest level that failed on quality or errored), `too_little` (highest level
    that failed only on compression budgets)."""

    recipe: Recipe
    pass_index: int
    allocator: Allocator
    directory: Path
    reporter: Reporter
    budget: int
    subject: Subject  # the scanned baseline: quantized nodes are ranked on it when needed
    trials: list[Trial] = field(default_factory=list)
    #: quantized nodes every further trial keeps in float (set by a float move that passed)
    keep_float: list[str] = field(default_factory=list)
    interrupted: bool = False

    kind = "levels"
    goal = "the highest level that met every budget"

    @property
    def quantize_index(self) -> int | None:
        """The recipe's post-training quantize pass, whose nodes may be kept in float."""
        return next(
            (index for index, config in enumerate(self.recipe.passes) if config.keeps_nodes_float),
            None,
        )

    @property
    def best(self) -> Trial | None:
        passing = [t for t in self.trials if t.status == "pass"]
        return max(passing, key=lambda t: (t.achieved or t.level, -t.index), default=None)

    def _current(self) -> list[Trial]:
        """The trials with the nodes kept float that the search now keeps."""
        return [t for t in self.trials if t.keep_float == self.keep_float]

    def _lowest_too_far(self) -> Trial | None:
        failing = [t for t in self._current() if t.too_far]
        return min(failing, key=lambda t: t.level, default=None)

    def _floor(self) -> float:
        """The level the search must exceed: the best pass, or a compression-only failure."""
        levels = [t.level for t in self._current() if t.status == "pass" or not t.too_far]
        return max(levels, default=0.0)

    def run(self, guess: float) -> None:
        try:
            self._bisect(guess)
            self._local_moves()
            if self._float_moves():  # a level that failed passes with nodes in float: go on
                self._bisect(self._next_level(), "bisect with nodes in float")
                self._local_moves()
        except KeyboardInterrupt:
            interrupts.acknowledge()
            self.interrupted = True
            self.reporter.note("interrupted: keeping the best trial so far")

    def _bisect(self, guess: float, why: str = "first guess") -> None:
        highest = ALLOCATION_LEVELS[-1]
        level = guess
        while len(self.trials) < self.budget:
            self.trial(level, self.allocator.levels(level), why)
            floor, ceiling = self._floor(), self._lowest_too_far()
            top = ceiling.level if ceiling else highest
            if ceiling is None and floor >= highest - 1e-9:
                return  # passes at the highest level the scan allows
            if top - floor <= RESOLUTION:
                return
            if ceiling is None:  # no failure yet: step up halfway to the top
                level, why = round((floor + highest) / 2 + 1e-9, 4), "step up"
            else:
                level, why = round((floor + top) / 2, 4), "bisect"
            if any(abs(t.level - level) < 1e-6 for t in self._current()):
                return

    def _next_level(self) -> float:
        """Halfway from the current floor to the lowest failure (or the top)."""
        ceiling = self._lowest_too_far()
        top = ceiling.level if ceiling else ALLOCATION_LEVELS[-1]
        return round((self._floor() + top) / 2, 4)

    def _local_moves(self) -> None:
        """From the best passing levels, raise one layer at a time halfway to its level in the
        lowest failing trial, least sensitive layer first (per weight); keep each move that
        still passes, and go on while trials are left."""
        ceiling, best = self._lowest_too_far(), self.best
        if ceiling is None or best is None:
            return
        rows = sorted(self.allocator.rows, key=lambda row: row.worst / max(row.size, 1))
        levels = dict(best.levels)
        while len(self.trials) < self.budget:
            moved = False
            for row in rows:
                if len(self.trials) >= self.budget:
                    return
                here, there = levels.get(row.name, 0.0), ceiling.levels.get(row.name, 0.0)
                raised = round((here + there) / 2, 4)
                trial_levels = {**levels, row.name: raised}
                if raised <= here + RESOLUTION / 2 or self._tried(trial_levels):
                    continue
                level = self.allocator.reached(trial_levels, best.level)
                trial = self.trial(level, trial_levels, f"raise {row.name} to {raised:.1%}")
                moved = True
                if trial.status == "pass":
                    levels = trial_levels
                else:
                    ceiling = trial.model_copy(update={"levels": {**levels, row.name: raised}})
            if not moved:
                return

    def _float_moves(self) -> bool:
        """With a post-training quantize pass: retry the lowest failing levels with the
        quantized nodes that hurt most kept in float, one more at a time (not when quantizing
        costs the baseline nothing: the level's failure is then the pruning's)."""
        index = self.quantize_index
        ceiling, best = self._lowest_too_far(), self.best
        if index is None or ceiling is None or ceiling.status == "error":
            return False
        if len(self.trials) >= self.budget:
            return False
        self.reporter.stage("ranking quantized nodes")
        nodes, cost = ranked_nodes(self.subject, self.recipe.passes[index])
        if cost <= 0:
            self.reporter.note("tune: quantizing costs the baseline nothing; no node kept float")
            return False
        for count in range(1, min(MAX_FLOAT_NODES, len(nodes)) + 1):
            if len(self.trials) >= self.budget:
                return False
            kept = nodes[:count]
            trial = self.trial(ceiling.level, ceiling.levels, f"keep {', '.join(kept)} float", kept)
            if trial.status == "pass" and (best is None or trial.level > best.level):
                self.keep_float = kept
                return True
        return False

    def _tried(self, levels: dict[str, float]) -> bool:
        return any(
            all(abs(t.levels.get(k, -1) - v) < 1e-6 for k, v in levels.items()) for t in self.trials
        )

    def trial(
        self, level: float, levels: dict[str, float], why: str, keep_float: list[str] | None = None
    ) -> Trial:
        index = len(self.trials) + 1
        self.reporter.stage(f"trial {index}/{self.budget}: level {level:.2%} ({why})")
        keep_float = self.keep_float if keep_float is None else keep_float
        data = self.variant(level, levels, keep_float)
        folder = self.directory / "trials" / f"{index:02d}"
        asked = {
            "level": round(level, 4),
            "levels": levels,
            "predicted_drop": round(self.allocator.predicted(levels), 6),
        }
        trial = run_trial(
            index, why, data, self.recipe, folder, self.pass_index, asked, self.subject
        )
        if keep_float:
            trial = trial.model_copy(update={"keep_float": keep_float})
        self.trials.append(trial)
        verdict = trial.status if trial.status != "fail" else f"fail: {', '.join(trial.failed)}"
        self.reporter.note(f"trial {index}: level {level:.2%} -> {verdict}")
        return trial

    def variant(self, level: float, levels: dict[str, float], keep_float: list[str]) -> dict:
        """The recipe's data with the tuned pass at these explicit per-layer levels (and
        `keep_float` added to the quantize pass's ignore list)."""
        data = recipe_data(self.recipe)
        step = dict(data["passes"][self.pass_index])
        step.pop("allocation", None)
        step["sparsity"] = {"default": round(level, 4), "overrides": levels}
        data["passes"][self.pass_index] = step
        index = self.quantize_index
        if keep_float and index is not None:
            quantize = dict(data["passes"][index])
            quantize["ignore"] = [*quantize.get("ignore", []), *keep_float]
            data["passes"][index] = quantize
        return data

    def recipe_of(self, trial: Trial) -> dict:
        return self.variant(trial.level, trial.levels, trial.keep_float)


def result(search: Search | WidthSearch, config: PassConfig, seconds: float) -> Tuning:
    """The log of `search`, its best trial marked."""
    best, recipe = search.best, search.recipe
    budgets = recipe.budgets.model_dump(exclude_none=True) if recipe.budgets else {}
    return Tuning(
        tool_version=__version__,
        recipe={"name": recipe.name, "path": str(recipe.path or "")},
        pass_index=search.pass_index,
        method=config.variant,
        search=search.kind,
        budgets=budgets,
        evaluate_metric=recipe.evaluate.metric if recipe.evaluate else None,
        trials=search.trials,
        best=best.index if best else None,
        interrupted=search.interrupted,
        seconds=round(seconds, 2),
    )


def write_outputs(
    tuning: Tuning, search: Search | WidthSearch, recipe: Recipe, directory: Path
) -> None:
    """tuned.yaml (the best trial's recipe, exporting to `tuned/`), tuning.json, tuning.html."""
    best = tuning.best_trial
    if best is not None:
        tuned = directory / "tuned.yaml"
        header = (
            f"Written by compress tune from {recipe.path or recipe.name}: trial {best.index} of "
            f"{len(tuning.trials)},\n{search.goal}. `compress apply` on this file reproduces it."
        )
        write_recipe(search.recipe_of(best), recipe, tuned, "tuned/model.onnx", header)
        tuning.tuned = str(tuned)
    write_text_or_fail(directory / "tuning.json", tuning.to_json(), "tuning log")
    write_text_or_fail(directory / "tuning.html", render_tuning(tuning), "tuning log")
    written = [name for name in TUNE_WRITES if best is not None or name != "tuned.yaml"]
    record_written(directory, written, "compress tune", replace=True)  # no stale tuned.yaml
