"""Knowledge distillation for PyTorch: softened teacher logits (KL divergence, scaled by T^2)
mixed with the hard-label loss, plus optional feature matching with learned projections."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from compress.backends.base import PassContext, distill_models
from compress.backends.torch.export import example_inputs
from compress.backends.torch.training import loss_function, train
from compress.errors import ModelError, message_line
from compress.passes.distill import DistillPass, register_recovery, training_follows


class DistillationLoss(nn.Module):
    """objective(outputs, targets, inputs) for the trainer; the teacher stays frozen."""

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: DistillPass,
        hard_loss: str,
        example: tuple[torch.Tensor, ...],
        input_names: Sequence[str] = (),
    ) -> None:
        super().__init__()
        names = list(input_names)
        self.mask_index = names.index(config.mask_input) if config.mask_input in names else None
        self.teacher = teacher.eval().requires_grad_(False)
        self.config = config
        self.hard_loss = loss_function(hard_loss)
        self.captured: dict[str, torch.Tensor] = {}
        self._hooks = []
        for role, model, names in (
            ("student", student, config.features.keys()),
            ("teacher", teacher, config.features.values()),
        ):
            modules = dict(model.named_modules())
            for name in names:
                if name not in modules:
                    known = ", ".join(n for n in modules if n) or "none"
                    raise ModelError(
                        f"distill: feature layer {name!r} does not exist in the {role} "
                        f"(layers: {known})"
                    )
                self._hooks.append(modules[name].register_forward_hook(self._capture(role, name)))
        self.projections = nn.ModuleDict()
        self._check_shapes(student, example)

    def _capture(self, role: str, name: str):
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            self.captured[f"{role}:{name}"] = output

        return hook

    @torch.no_grad()
    def _check_shapes(self, student: nn.Module, example: tuple[torch.Tensor, ...]) -> None:
        """Output shapes must agree; feature widths that differ get a learned projection."""
        was_training = student.training
        student.eval()
        outputs = {}
        for role, model in (("student", student), ("teacher", self.teacher)):
            try:
                outputs[role] = model(*example)
            except Exception as exc:  # a model that cannot take the recipe's inputs
                raise ModelError(
                    f"distill: the {role} cannot run on the model's inputs: {message_line(exc)}"
                ) from exc
        student.train(was_training)
        student_out, teacher_out = outputs["student"], outputs["teacher"]
        if student_out.shape != teacher_out.shape:
            raise ModelError(
                f"distill: the teacher's output shape {tuple(teacher_out.shape)} differs from "
                f"the student's {tuple(student_out.shape)}"
            )
        for index, (s_name, t_name) in enumerate(self.config.features.items()):
            s_feat = self.captured[f"student:{s_name}"]
            t_feat = self.captured[f"teacher:{t_name}"]
            self.projections[str(index)] = _projection(s_name, t_name, s_feat, t_feat)

    @property
    def needs_targets(self) -> bool:
        return self.config.needs_labels

    def forward(
        self, outputs: torch.Tensor, targets: torch.Tensor | None, inputs: list[torch.Tensor]
    ) -> torch.Tensor:
        alpha = self.config.alpha
        hard = self.hard_loss(outputs, targets) if alpha < 1 else outputs.new_zeros(())
        if alpha == 0 and not self.config.features:
            return hard  # labels only: the teacher has nothing to add
        student_features = {k: v for k, v in self.captured.items() if k.startswith("student:")}
        with torch.no_grad():
            teacher_outputs = self.teacher(*inputs)
        mask = None if self.mask_index is None else inputs[self.mask_index]
        loss = alpha * self._soft(outputs, teacher_outputs, mask) + (1 - alpha) * hard
        for index, (s_name, t_name) in enumerate(self.config.features.items()):
            projected = self.projections[str(index)](student_features[f"student:{s_name}"])
            target = self.captured[f"teacher:{t_name}"]
            squared = ((projected - target) ** 2).reshape(*target.shape[:2], -1).mean(dim=-1)
            loss = loss + self.config.feature_weight * _masked_mean(squared, mask)
        return loss

    def _soft(
        self, outputs: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The teacher term: KL of softened distributions (scaled by T^2), or MSE / 1 - cosine
        of the raw outputs along their last axis; averaged over the positions `mask` keeps."""
        if self.config.output_loss == "mse":
            per_position = ((outputs - teacher) ** 2).mean(dim=-1)
        elif self.config.output_loss == "cosine":
            per_position = 1 - functional.cosine_similarity(outputs, teacher, dim=-1)
        else:
            temperature = self.config.temperature
            per_position = (
                functional.kl_div(
                    functional.log_softmax(outputs / temperature, dim=-1),
                    functional.softmax(teacher / temperature, dim=-1),
                    reduction="none",
                ).sum(dim=-1)
                * temperature**2
            )  # per position for sequence logits N×T×V
        return _masked_mean(per_position, mask)

    def remove(self) -> None:
        """Detach the feature hooks from both models."""
        for hook in self._hooks:
            hook.remove()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of per-position values over the positions `mask` keeps (all without one, or
    when the shapes are not per position)."""
    if mask is None or values.shape != mask.shape:
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1)


def _projection(
    s_name: str, t_name: str, student: torch.Tensor, teacher: torch.Tensor
) -> nn.Module:
    if student.shape == teacher.shape:
        return nn.Identity()
    if student.dim() == 2 and teacher.dim() == 2:
        return nn.Linear(student.shape[1], teacher.shape[1])
    if student.dim() == 4 and teacher.dim() == 4 and student.shape[2:] == teacher.shape[2:]:
        return nn.Conv2d(student.shape[1], teacher.shape[1], kernel_size=1)
    raise ModelError(
        f"distill: feature {s_name!r} {tuple(student.shape[1:])} cannot be matched to "
        f"{t_name!r} {tuple(teacher.shape[1:])} (widths may differ; other dimensions must agree)"
    )


@contextmanager
def objective_for(model: nn.Module, context: PassContext) -> Iterator[DistillationLoss | None]:
    """The distillation objective registered by an earlier recovery distill pass (or None),
    with its feature hooks removed when the training that uses it ends."""
    if context.distiller is None:
        yield None
        return
    teacher, config = context.distiller
    recipe = context.recipe
    assert recipe.train is not None
    objective = DistillationLoss(
        teacher,
        model,
        config,
        recipe.train.loss,
        example_inputs(recipe.model.inputs),
        [spec.name for spec in recipe.model.inputs],
    )
    try:
        yield objective
    finally:
        objective.remove()


def apply_distill(
    model: nn.Module, config: DistillPass, context: PassContext
) -> tuple[nn.Module, dict]:
    """Recovery with later training passes: register the loss for them. Otherwise train the
    student (the given one, or the model itself) against the teacher now."""
    teacher, student = distill_models(context.backend, config, context)
    if student is None and training_follows(context.recipe.passes, config):
        return model, register_recovery(context, teacher, config)
    student = model if student is None else student
    inputs = context.training(config)
    specs = context.recipe.model.inputs
    objective = DistillationLoss(
        teacher,
        student,
        config,
        inputs.spec.loss,
        example_inputs(specs),
        [spec.name for spec in specs],
    )
    try:
        training = train(
            student,
            inputs.spec,
            inputs.split,
            specs,
            inputs.batch_size,
            hooks=[],
            reporter=context.reporter,
            description="distillation",
            objective=objective,
        )
    finally:
        objective.remove()
    return student, {
        "mode": "recovery" if config.student is None else "student",
        "temperature": config.temperature,
        "alpha": config.alpha,
        "features": dict(config.features),
        "student_params": sum(p.numel() for p in student.parameters()),
        "teacher_params": sum(p.numel() for p in teacher.parameters()),
        "training": training,
    }
