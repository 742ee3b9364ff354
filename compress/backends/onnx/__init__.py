"""ONNX files: inspection (onnx) and execution (onnxruntime), shared by every framework."""
