"""TensorFlow start-up: tf.keras must be tf-keras (Keras 2) for tfmot, and that is decided by
TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported. Keras 3 stays `import keras`."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from compress.backends.native_logs import filtered_native_stderr
from compress.errors import ModelError

LEGACY_VARIABLE = "TF_USE_LEGACY_KERAS"


def prepare() -> None:
    """Set the variables TensorFlow reads at import time (only if it is not imported yet)."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(LEGACY_VARIABLE, "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def keras_api(flavor: str) -> ModuleType:
    """The Keras package of a flavor: `keras` (Keras 3) or `tf_keras` (Keras 2)."""
    prepare()
    try:
        with filtered_native_stderr():
            if flavor == "tf_keras":
                import tf_keras

                return tf_keras
            import keras

            return keras
    except ImportError as exc:
        raise ModelError(
            f"the {flavor} backend needs TensorFlow: install the extra, pip install "
            f"'compress[tensorflow]' ({exc})"
        ) from exc


def require_legacy_tf_keras() -> None:
    """tfmot only works when tf.keras is tf-keras; say how to fix it when it is not."""
    prepare()
    import tensorflow as tf

    if not tf.keras.__name__.startswith("tf_keras"):
        raise ModelError(
            "tfmot needs tf.keras to be tf-keras, but TensorFlow was imported before "
            f"{LEGACY_VARIABLE}=1 was set: set it before importing TensorFlow (or import compress "
            "models first), or use engine: native"
        )
