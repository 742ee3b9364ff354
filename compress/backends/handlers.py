"""Which backend runs which pass: the built-in handlers, registered by (pass class, backend).

References are "module:function", imported when the pass first runs, so this table is read
(by `compress passes` and by the unsupported-pass error) without importing any framework.
The `onnx` handlers rewrite exported ONNX files, whatever framework the model came from.
"""

from __future__ import annotations

from compress.passes import register_handler
from compress.passes.distill import DistillPass
from compress.passes.prune import PrunePass
from compress.passes.quantize import QuantizePass
from compress.passes.registry import ONNX

_TORCH = "compress.backends.torch"
_KERAS = "compress.backends.keras"

register_handler(PrunePass, "torch", f"{_TORCH}.pruning:apply_prune")
register_handler(DistillPass, "torch", f"{_TORCH}.distillation:apply_distill")
register_handler(QuantizePass, "torch", f"{_TORCH}.quantization:apply_qat")
for _flavor in ("keras", "tf_keras"):
    register_handler(PrunePass, _flavor, f"{_KERAS}.pruning:apply_prune")
    register_handler(DistillPass, _flavor, f"{_KERAS}.distillation:apply_distill")
    register_handler(QuantizePass, _flavor, f"{_KERAS}.quantization:apply_qat")
register_handler(QuantizePass, ONNX, "compress.backends.onnx.passes:quantize_file")
