"""Which backend code runs which pass: the built-in handlers, registered by (pass class, backend).

References are "module:function", imported when the pass first runs, so this table is read
(by `compress passes` and by the unsupported-pass error) without importing any framework.
The `onnx` handlers rewrite exported ONNX files, whatever framework the model came from. The
`session` role gives the part a CompressionSession runs inside a user's own loop; the `plan`
role says what an ONNX pass will do to a file, for `compress plan`; the `generation` role
quantizes a generation (KV-cache) decoder graph.
"""

from __future__ import annotations

from compress.passes import register_handler, register_role
from compress.passes.distill import DistillPass
from compress.passes.prune import ChannelPrune, MagnitudePrune, NMPrune
from compress.passes.quantize import POST_TRAINING_PASSES, WEIGHT_ONLY_PASSES, QATQuantize
from compress.passes.registry import GENERATION, ONNX, PLAN

_TORCH = "compress.backends.torch"
_KERAS = "compress.backends.keras"
SESSION = "session"

for _weights in (MagnitudePrune, NMPrune):
    register_handler(_weights, "torch", f"{_TORCH}.pruning:apply_prune")
    register_role(SESSION, _weights, f"{_TORCH}.session:prune_part", "torch")
register_handler(ChannelPrune, "torch", f"{_TORCH}.channels:apply_channel_prune")
register_handler(DistillPass, "torch", f"{_TORCH}.distillation:apply_distill")
register_role(SESSION, DistillPass, f"{_TORCH}.session:distill_part", "torch")
register_handler(QATQuantize, "torch", f"{_TORCH}.quantization:apply_qat")

for _flavor in ("keras", "tf_keras"):
    for _weights in (MagnitudePrune, NMPrune):
        register_handler(_weights, _flavor, f"{_KERAS}.pruning:apply_prune")
        register_role(SESSION, _weights, f"{_KERAS}.session:prune_part", _flavor)
    register_handler(ChannelPrune, _flavor, f"{_KERAS}.channels:apply_channel_prune")
    register_handler(DistillPass, _flavor, f"{_KERAS}.distillation:apply_distill")
    register_role(SESSION, DistillPass, f"{_KERAS}.session:distill_part", _flavor)
    register_handler(QATQuantize, _flavor, f"{_KERAS}.quantization:apply_qat")

for _post_training in POST_TRAINING_PASSES:
    register_handler(_post_training, ONNX, "compress.backends.onnx.passes:quantize_file")
    register_role(PLAN, _post_training, "compress.backends.onnx.plan:plan_quantize_file", ONNX)
for _weight_only in WEIGHT_ONLY_PASSES:
    register_role(GENERATION, _weight_only, "compress.backends.onnx.decoder:quantize_decoder")
