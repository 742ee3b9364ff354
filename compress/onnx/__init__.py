"""ONNX utilities below every layer that reads ONNX files: the backends (export tidying), the
measurements (size, weights, MACs, latency sessions), the pipeline and the analysis. They import
onnx and onnxruntime, never a training framework, and nothing of the toolkit but its errors."""
