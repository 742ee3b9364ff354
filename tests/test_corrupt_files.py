"""Model files that are not what they claim: a truncated ONNX file, external data shorter than
the model says. Friction: both ended in exit 3 "unexpected failure ... this is a bug"; now exit
3 with a message that names the file and what is wrong with it."""

from __future__ import annotations

import onnx
import yaml
from test_quantize import ones_matmul

from compress.errors import EXIT_MODEL


def matmul_model(path, external: bool = False) -> None:
    onnx.save(
        ones_matmul(10), path, save_as_external_data=external, location="w.data", size_threshold=0
    )


def recipe_for(tmp_path, source: str) -> str:
    raw = {
        "version": 1,
        "name": "corrupt",
        "model": {"source": source, "inputs": [{"name": "features", "shape": [1, 10]}]},
        "passes": [{"type": "quantize", "mode": "dynamic"}],
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "recipe.yaml"


def test_a_truncated_onnx_file_is_named_as_unreadable(run_cli, tmp_path):
    matmul_model(tmp_path / "whole.onnx")
    data = (tmp_path / "whole.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli("validate", recipe_for(tmp_path, "cut.onnx"))
    assert code == EXIT_MODEL
    assert "cut.onnx is not a readable ONNX file (truncated or not ONNX" in err
    assert "bug" not in err


def test_external_data_shorter_than_the_model_says_is_named(run_cli, tmp_path):
    matmul_model(tmp_path / "model.onnx", external=True)
    data = tmp_path / "w.data"
    data.write_bytes(data.read_bytes()[:40])
    code, _, err = run_cli("validate", recipe_for(tmp_path, "model.onnx"))
    assert code == EXIT_MODEL
    assert "tensor 'w' reads bytes up to 160 of w.data, which has 40" in err
    assert "bug" not in err
