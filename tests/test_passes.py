"""Framework-neutral pass logic: target resolution and pruning schedules."""

from __future__ import annotations

import itertools

import pytest

from compress.errors import ModelError
from compress.passes.prune import MagnitudePrune, PruneSchedule, check_achieved, plan_prune
from compress.passes.targets import LayerInfo, TargetError, resolve_targets

LAYERS = [
    LayerInfo("conv1", "Conv2d", 160, 144, True),
    LayerInfo("bn1", "BatchNorm2d", 32, 0, False),
    LayerInfo("conv2", "Conv2d", 4640, 4608, True),
    LayerInfo("fc1", "Linear", 32832, 32768, True),
]


def names(layers):
    return [layer.name for layer in layers]


def test_no_targets_means_every_prunable_layer():
    assert names(resolve_targets(None, [], LAYERS, "prune")) == ["conv1", "conv2", "fc1"]


def test_regex_targets_use_full_match_and_ignore_removes():
    chosen = resolve_targets(["re:conv.*", "fc1"], ["conv2"], LAYERS, "prune")
    assert names(chosen) == ["conv1", "fc1"]
    assert names(
        resolve_targets(["re:conv"], [], [*LAYERS, LayerInfo("conv", "Conv2d", 1, 1, True)], "p")
    ) == ["conv"]


def test_target_matching_nothing_is_an_error_with_its_position():
    with pytest.raises(TargetError, match=r"'re:attn\.\*' matches no layer") as caught:
        resolve_targets(["fc1", "re:attn.*"], [], LAYERS, "prune")
    assert caught.value.loc == ("targets", 1)


def test_ignore_matching_nothing_is_an_error():
    with pytest.raises(TargetError) as caught:
        resolve_targets(None, ["head"], LAYERS, "prune")
    assert caught.value.loc == ("ignore", 0)


def test_unprunable_target_is_named():
    with pytest.raises(TargetError, match=r"layer 'bn1' \(BatchNorm2d\) has no weight"):
        resolve_targets(["bn1"], [], LAYERS, "prune")


def test_everything_ignored_is_an_error():
    with pytest.raises(TargetError, match="leave no layer"):
        resolve_targets(["fc1"], ["fc1"], LAYERS, "prune")


@pytest.mark.parametrize("kind", ["polynomial", "linear"])
def test_schedules_rise_monotonically_to_the_target(kind):
    schedule = PruneSchedule(kind=kind, start_epoch=1, end_epoch=3)
    values = [schedule.sparsity_at(step, 10, 0.8) for step in range(0, 41)]
    assert values[:11] == [0.0] * 10 + [0.0]
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert values[30] == pytest.approx(0.8)
    assert values[40] == pytest.approx(0.8)


def test_polynomial_prunes_fast_early_and_slow_late():
    schedule = PruneSchedule(kind="polynomial", end_epoch=4)
    halfway = schedule.sparsity_at(20, 10, 0.8)
    assert halfway == pytest.approx(0.8 * (1 - 0.5**3))
    assert halfway > PruneSchedule(kind="linear", end_epoch=4).sparsity_at(20, 10, 0.8)


def test_constant_schedule_holds_the_target_from_its_start():
    schedule = PruneSchedule(kind="constant", start_epoch=1)
    assert schedule.sparsity_at(9, 10, 0.5) == 0.0
    assert schedule.sparsity_at(10, 10, 0.5) == 0.5


def test_update_frequency_is_derived_from_the_epoch_length():
    assert PruneSchedule(end_epoch=2).update_every(23) == 3
    assert PruneSchedule(end_epoch=2, frequency=7).update_every(23) == 7


def test_missed_sparsity_is_an_error_with_figures():
    config = MagnitudePrune(sparsity=0.8)
    check_achieved(config, 0.796)
    with pytest.raises(ModelError, match=r"achieved sparsity 79\.00% .* requested 80\.00%"):
        check_achieved(config, 0.79)


def test_plan_counts_nonzero_weights_after_the_pass():
    planned = plan_prune(MagnitudePrune(sparsity=0.5, targets=["fc1"]), LAYERS)
    assert planned["weights_before"] == 32768
    assert planned["nonzero_after"] == 16384


def test_tfmot_frequency_divides_the_schedule_span():
    from compress.backends.keras.pruning import tfmot_frequency

    assert tfmot_frequency(3, 24) == 3
    assert tfmot_frequency(5, 24) == 4
    assert tfmot_frequency(10, 7) == 7
    assert tfmot_frequency(100, 999) == 37


def test_a_step_schedule_must_end_within_training():
    from compress.passes.prune import check_schedule_fits

    config = MagnitudePrune(sparsity=0.5, schedule={"start_step": 0, "end_step": 1000})
    check_schedule_fits(config, steps_per_epoch=50, total_steps=1050)
    with pytest.raises(ModelError, match="final sparsity at step 1000, but training runs 600"):
        check_schedule_fits(config, steps_per_epoch=50, total_steps=600)


def test_schedules_take_epochs_or_steps_not_both():
    with pytest.raises(ValueError, match="in epochs or in steps, not both"):
        PruneSchedule(end_epoch=2, end_step=100)
    assert PruneSchedule(end_step=100).end_step_for(steps_per_epoch=7) == 100
