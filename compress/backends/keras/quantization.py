"""Quantization-aware training for Keras: tf-keras through tfmot's quantize_model. Keras 3 has
no QAT library (tfmot refuses it), so it gets a clear error pointing at static PTQ."""

from __future__ import annotations

from typing import Any

from compress.backends.base import PassContext
from compress.backends.keras.distillation import objective_for
from compress.backends.keras.environment import keras_api, require_legacy_tf_keras
from compress.backends.keras.training import fit, outputs_probabilities
from compress.errors import ModelError, message_line
from compress.passes.quantize import QATQuantize


def apply_qat(model: Any, config: QATQuantize, context: PassContext) -> tuple[Any, dict]:
    """Wrap the model with fake quantization, fine-tune it, and return the QAT model."""
    if context.backend.name != "tf_keras":
        raise ModelError(
            "quantize: mode qat is not available for Keras 3 models (tfmot only works with "
            "tf-keras and Keras 3 has no QAT); use mode: static, calibrated post-training "
            "quantization of the exported ONNX"
        )
    if config.ignore:
        raise ModelError("quantize: ignore is not supported with tfmot QAT (it quantizes all)")
    require_legacy_tf_keras()
    import tensorflow_model_optimization as tfmot

    from_logits = not outputs_probabilities(model)  # the QAT wrapper hides the activation
    quantization = tfmot.quantization.keras
    try:
        # the prune-preserving scheme keeps zero weights at zero while training (prune -> QAT)
        quantized = quantization.quantize_apply(
            quantization.quantize_annotate_model(model),
            tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme(),
        )
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(
            f"quantize: tfmot cannot quantize this {type(model).__name__} "
            f"({message_line(exc)}); tfmot needs a Sequential or Functional "
            "model of supported layers; use mode: static instead"
        ) from exc
    inputs = context.training(config)
    training = fit(
        keras_api("tf_keras"),
        quantized,
        inputs.spec,
        inputs.split,
        inputs.batch_size,
        [],
        context.reporter,
        "quantization-aware training",
        from_logits=from_logits,
        distillation=objective_for(model, context),
    )
    return quantized, {"mode": "qat", "weights": "int8", "engine": "tfmot", "training": training}
