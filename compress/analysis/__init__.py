"""Sensitivity analysis: how much each layer, channel group or quantized node of a recipe's
passes hurts the evaluation metric on its own (`compress analyze`), and the per-layer levels
allocated from it (`allocation: sensitivity`)."""
