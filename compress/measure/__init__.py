"""Measurements of exported ONNX artifacts: size, weights/sparsity, latency, accuracy."""
