"""The code the benchmark scripts in benchmarks/ share; nothing in here is a script.

Every script runs as `.venv/bin/python benchmarks/<script>.py`: Python puts the script's folder
first on `sys.path`, so `from _shared import common` finds this package from any directory. A
script never imports another script; what two of them need lives here:

* `common`: recipes, the `--quick` / `--out` arguments, measuring ONNX files with onnxruntime,
  tables and target lines (imports neither torch nor TensorFlow);
* `toolkit`: the parts of `compress` beyond its public API that the benchmarks read (one place to
  change when a module moves);
* `onnx_peers`: onnxruntime's quantizer used by hand, the INT8 peer of several benchmarks;
* `torch_peers`: PyTorch by hand: the trained digits CNN, plain fine-tuning, export, and
  Torch-Pruning's one-shot step (imports torch);
* `builders`: the model builders and data that the benchmarks' recipes reference as
  `benchmarks/_shared/builders.py:<function>` (compress imports that file by path).
"""
