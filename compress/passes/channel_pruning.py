"""The channel-pruning flow, once and framework-neutral: hold channel masks on the schedule while
fine-tuning (or cut at once), cut the chosen channels for real, fine-tune the smaller model when
asked, and write the record. A backend gives a `ChannelAdapter`: its groups, their masks, the
verified cut and its trainer (torch: Torch-Pruning's graph; Keras: the toolkit's own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from compress.passes.channels import ChannelGroup, channel_record, left_whole_note, nothing_to_cut
from compress.passes.lifecycle import TrainingHook
from compress.passes.prune import ChannelPrune, check_schedule_fits
from compress.passes.pruning import SparsityStepper


@dataclass
class Cut:
    """What a cut removed, the check that the smaller model agrees with the masked one, and
    whether the cut chose its channels itself (else it kept the schedule's last choice)."""

    groups: list[ChannelGroup]
    verification: dict
    chose: bool


class ChannelAdapter(Protocol):
    """What a backend gives the channel pruner for one model."""

    #: Who finds the groups and slices them, for the record ("torch-pruning 1.6.1").
    engine: str

    def params(self) -> int:
        """The parameters of the model as it stands (before or after the cut)."""
        ...

    def left_whole(self) -> list[dict]:
        """The targeted groups that cannot be cut, as {group, why}."""
        ...

    def mask_at(self, sparsity: float) -> None:
        """Zero the channels the groups would lose at `sparsity` (gradual pruning)."""
        ...

    def remask(self) -> None:
        """Zero the masked channels again after an optimizer step."""
        ...

    def cut(self, sparsity: float) -> Cut:
        """Remove the channels the groups lose at `sparsity`, proving each cut."""
        ...

    def fine_tune(self, hooks: list[TrainingHook]) -> dict:
        """Train the model as it stands with the recipe's trainer and these hooks."""
        ...


class ChannelSchedule:
    """The trainer hook of gradual channel pruning: masks follow the schedule's sparsity."""

    def __init__(self, adapter: ChannelAdapter, config: ChannelPrune) -> None:
        self.adapter = adapter
        self.config = config
        self.stepper = SparsityStepper(config)

    def on_start(self, steps_per_epoch: int, total_steps: int) -> None:
        check_schedule_fits(self.config, steps_per_epoch, total_steps)
        self._move(self.stepper.start(steps_per_epoch))

    def on_update(self, step: int) -> None:
        self._move(self.stepper.after(step))

    def on_end(self) -> None:
        self.adapter.remask()

    def _move(self, sparsity: float | None) -> None:
        if sparsity is None:
            self.adapter.remask()
        else:
            self.adapter.mask_at(sparsity)


def run_channel_prune(
    config: ChannelPrune, adapter: ChannelAdapter, note: Callable[[str], None]
) -> dict:
    """Prune channels one-shot (then fine-tune the smaller model when asked) or on a schedule
    (masks during fine-tuning, cut at the end); every cut verified; the record."""
    before = adapter.params()
    training, updates = None, 0
    if config.schedule is not None:
        schedule = ChannelSchedule(adapter, config)
        training = adapter.fine_tune([schedule])
        updates = schedule.stepper.updates
    cut = adapter.cut(config.level)
    left_whole = adapter.left_whole()
    if not cut.groups:
        raise nothing_to_cut(left_whole)
    if config.schedule is None and config.fine_tune:
        training = adapter.fine_tune([])
    message = left_whole_note(left_whole)
    if message:
        note(message)
    return channel_record(
        config,
        cut.groups,
        left_whole,
        cut.verification,
        (before, adapter.params()),
        updates + int(cut.chose),
        training,
        adapter.engine,
    )
