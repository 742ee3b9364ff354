"""MACs counted on real ONNX exports (compress/onnx/macs.py) equal the counts worked out
by hand from each architecture; quantized models count the work of their float source; and
`compress apply` reports MACs of both models, per-layer output channels and a `macs` budget
that `compress check` enforces."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import RECIPES
from onnx import TensorProto, helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from torch import nn

import compress
from compress.errors import EXIT_BUDGET, ModelError
from compress.onnx.inspect import weight_tensors
from compress.onnx.macs import count_macs

SEQ = 16
TOKENS = ("input_ids", "attention_mask", "token_type_ids")


def export(model: nn.Module, args: tuple, axes: dict[str, list[int]], path: Path, dynamo: bool):
    """Export with the `axes` of each input dynamic (both exporters are in use)."""
    model.eval()
    names = list(axes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            auto = torch.export.Dim.AUTO
            shapes = {name: {axis: auto for axis in dims} for name, dims in axes.items()}
            torch.onnx.export(
                model, args, str(path), input_names=names, dynamic_shapes=shapes, dynamo=True
            )
        else:
            named = {name: {axis: f"{name}_{axis}" for axis in dims} for name, dims in axes.items()}
            torch.onnx.export(
                model, args, str(path), input_names=names, dynamic_axes=named, dynamo=False
            )
    return path


class SmallCNN(nn.Module):
    """conv 3x3, depthwise 3x3 stride 2, pointwise 1x1, grouped transposed conv, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.pointwise = nn.Conv2d(8, 16, 1)
        self.up = nn.ConvTranspose2d(16, 4, 2, stride=2, groups=2)
        self.fc = nn.Linear(4 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))  # [8, 16, 16]
        x = torch.relu(self.depthwise(x))  # [8, 8, 8]
        x = self.pointwise(x)  # [16, 8, 8]
        x = self.up(x)  # [4, 16, 16]
        return self.fc(x.flatten(1))


def cnn_macs() -> int:
    """out_elements * C_in/groups * k*k per conv; in_elements * C_out/groups * k*k for the
    transposed one; in * out features for the linear layer."""
    conv = (8 * 16 * 16) * 3 * 3 * 3
    depthwise = (8 * 8 * 8) * 1 * 3 * 3
    pointwise = (16 * 8 * 8) * 8 * 1 * 1
    up = (16 * 8 * 8) * (4 // 2) * 2 * 2
    fc = 4 * 16 * 16 * 10
    return conv + depthwise + pointwise + up + fc


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    return export(SmallCNN(), (torch.randn(1, 3, 16, 16),), {"x": [0]}, path, dynamo=False)


@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_macs_equal_the_hand_formula(cnn, batch):
    assert count_macs(cnn, {"x": (batch, 3, 16, 16)}) == batch * cnn_macs()


def test_cnn_layers_have_their_output_channels(cnn):
    channels = {t.name: t.channels for t in weight_tensors(cnn) if len(t.shape) >= 2}
    assert channels == {
        "conv.weight": 8,
        "depthwise.weight": 8,
        "pointwise.weight": 16,
        "up.weight": 4,  # W [C_in, C_out/groups, k, k]: dim 1 times 2 groups
        "fc.weight": 10,
    }


BERT = {"layers": 2, "hidden": 64, "heads": 4, "intermediate": 128}


def bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=256,
        hidden_size=BERT["hidden"],
        num_hidden_layers=BERT["layers"],
        num_attention_heads=BERT["heads"],
        intermediate_size=BERT["intermediate"],
        max_position_embeddings=64,
    )

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = BertModel(config, add_pooling_layer=False)

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return Encoder()


def bert_macs(seq: int) -> int:
    """Per layer: Q, K, V and output projections (4 S H H), the feed-forward pair (2 S H I),
    and the attention matmuls Q K^T and softmax V (S S H each, summed over the heads)."""
    h, i = BERT["hidden"], BERT["intermediate"]
    per_layer = 4 * seq * h * h + 2 * seq * h * i + 2 * seq * seq * h
    return BERT["layers"] * per_layer


@pytest.fixture(scope="module", params=[False, True], ids=["torchscript", "dynamo"])
def bert_onnx(request, tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    ids = torch.ones(2, SEQ, dtype=torch.int64)  # batch 2: dynamo keeps a batch of 1 fixed
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    path = tmp_path_factory.mktemp("bert") / "bert.onnx"
    return export(bert(), args, {name: [0, 1] for name in TOKENS}, path, dynamo=request.param)


def tokens(seq: int) -> dict[str, tuple[int, ...]]:
    return {name: (1, seq) for name in TOKENS}


def test_bert_macs_equal_the_analytic_count(bert_onnx):
    # computed Reshape shapes (heads split from the hidden size) must be followed exactly
    assert count_macs(bert_onnx, tokens(SEQ)) == bert_macs(SEQ)
    assert count_macs(bert_onnx, tokens(2 * SEQ)) == bert_macs(2 * SEQ)


class Reader(CalibrationDataReader):
    def __init__(self, feeds: list[dict]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


@pytest.mark.parametrize("quant_format", [QuantFormat.QDQ, QuantFormat.QOperator])
def test_static_int8_cnn_counts_the_float_work(cnn, tmp_path, quant_format):
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(4)]
    target = tmp_path / "int8.onnx"
    # the grouped ConvTranspose stays float: onnxruntime cannot quantize it per channel
    quantize_static(
        str(cnn),
        str(target),
        Reader(feeds),
        quant_format=quant_format,
        per_channel=True,
        op_types_to_quantize=["Conv", "Gemm"],
    )
    ops = {node.op_type for node in onnx.load(str(target)).graph.node}
    assert (
        ("DequantizeLinear" in ops) if quant_format == QuantFormat.QDQ else ("QLinearConv" in ops)
    )
    assert count_macs(target, {"x": (1, 3, 16, 16)}) == cnn_macs()
    channels = [t.channels for t in weight_tensors(target) if len(t.shape) >= 2]
    assert sorted(channels) == [4, 8, 8, 10, 16]


def test_dynamic_int8_and_int4_bert_count_the_float_work(bert_onnx, tmp_path):
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    int8 = tmp_path / "int8.onnx"
    quantize_dynamic(str(bert_onnx), str(int8), weight_type=QuantType.QInt8)
    int4 = tmp_path / "int4.onnx"
    quantizer = MatMulNBitsQuantizer(onnx.load(str(bert_onnx)), block_size=32)
    quantizer.process()
    quantizer.model.save_model_to_file(str(int4), True)
    for path, op in ((int8, "MatMulInteger"), (int4, "MatMulNBits")):
        assert op in {node.op_type for node in onnx.load(str(path)).graph.node}
        assert count_macs(path, tokens(SEQ)) == bert_macs(SEQ)
    float_channels = [t.channels for t in weight_tensors(bert_onnx) if t.channels]
    int4_channels = [t.channels for t in weight_tensors(int4) if t.channels]
    h, i = BERT["hidden"], BERT["intermediate"]
    assert sorted(float_channels) == sorted(int4_channels) == sorted([h] * 5 * 2 + [i] * 2)


class Recurrent(nn.Module):
    """An LSTM over the sequence, then an einsum contraction with a weight."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(12, 20, batch_first=True)
        self.weight = nn.Parameter(torch.randn(20, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return torch.einsum("bsh,ho->bso", out, self.weight)


def test_lstm_and_einsum_macs(tmp_path):
    torch.manual_seed(0)
    path = export(Recurrent(), (torch.randn(1, 5, 12),), {"x": [0]}, tmp_path / "rnn.onnx", False)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"LSTM", "Einsum"} <= ops
    lstm = 5 * 4 * 20 * (12 + 20)  # per step: 4 gates of W [H, I] x and R [H, H] h
    einsum = 5 * 20 * 6
    assert count_macs(path, {"x": (1, 5, 12)}) == lstm + einsum


def test_what_cannot_be_counted_is_an_error_naming_the_node(cnn, tmp_path):
    with pytest.raises(ModelError, match="no shape given for input 'x'"):
        count_macs(cnn, {})
    with pytest.raises(ModelError, match=r"onnxruntime failed on inputs x \[1, 4, 16, 16\]"):
        count_macs(cnn, {"x": (1, 4, 16, 16)})
    # a MatMul inside an If branch is not counted as 0: it is refused
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.ones(16, np.float32))
    branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="inner_matmul")],
        "branch",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    graph = helper.make_graph(
        [
            helper.make_node(
                "If", ["cond"], ["out"], name="gate", then_branch=branch, else_branch=branch
            )
        ],
        "g",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match=r"node 'inner_matmul' \(MatMul\).*node 'gate' \(If\)"):
        count_macs(path, {"cond": (), "x": (1, 4)})


#: models/digits_cnn.py: conv 1->16 and 16->32 (3x3, padding 1) on 8x8, then 512->64->10.
DIGITS_MACS = 16 * 8 * 8 * 1 * 9 + 32 * 8 * 8 * 16 * 9 + 512 * 64 + 64 * 10
DIGITS_CHANNELS = {"conv1": 16, "conv2": 32, "fc1": 64, "fc2": 10}


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory) -> Path:
    """recipes/digits_prune_int8.yaml, one-shot (no fine-tuning) and briefly timed, with a
    MACs budget at the measured figure."""
    raw = yaml.safe_load((RECIPES / "digits_prune_int8.yaml").read_text())
    raw.pop("train")
    raw["passes"][0].pop("schedule")
    raw["measure"]["latency"].update(warmup=1, runs=3)
    raw["budgets"] = {"macs": {"max": DIGITS_MACS}}
    out = tmp_path_factory.mktemp("digits") / "out"
    compress.apply(raw, output_dir=out, progress=False, base_dir=RECIPES)
    return out / "report.json"


def test_apply_reports_macs_and_channels_of_both_models(digits_report):
    report = json.loads(digits_report.read_text())
    # unstructured sparsity and INT8 leave the multiply-accumulates as they were
    assert report["baseline"]["macs"] == report["compressed"]["macs"] == DIGITS_MACS
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert {name: layer["channels"] for name, layer in layers.items()} == DIGITS_CHANNELS
    assert {name: layer["baseline_channels"] for name, layer in layers.items()} == DIGITS_CHANNELS
    assert {layer["dtype"] for layer in report["layers"]} == {"int8"}
    assert report["budgets"] == [
        {"metric": "macs", "limit": f"max {DIGITS_MACS}", "value": DIGITS_MACS, "status": "pass"}
    ]
    markdown = (digits_report.parent / "report.md").read_text()
    assert f"| MACs | {DIGITS_MACS:,} | {DIGITS_MACS:,} | 1.00x |" in markdown
    assert "| conv2 | 4,608 | 32 |" in markdown
    html = (digits_report.parent / "report.html").read_text()
    assert '<div class="label">MACs</div>' in html


def test_a_macs_budget_below_the_measured_figure_fails_the_check(digits_report, run_cli, tmp_path):
    budget = tmp_path / "budget.yaml"
    budget.write_text(yaml.safe_dump({"budgets": {"macs": {"max": DIGITS_MACS - 1}}}))
    code, out, err = run_cli("check", digits_report, "--budget", budget, "--json")
    assert code == EXIT_BUDGET, err
    (row,) = json.loads(out)["results"]
    assert (row["metric"], row["status"], row["value"]) == ("macs", "fail", DIGITS_MACS)
    assert "error: check failed: macs" in err
    code, out, _ = run_cli("check", digits_report)  # the recipe's own budget: at the figure
    assert code == 0 and "MACs" in out
    code, out, _ = run_cli("compare", digits_report, digits_report, "--json")
    rows = {row["metric"]: row for row in json.loads(out)["metrics"]}
    assert rows["macs"]["a"] == rows["macs"]["b"] == DIGITS_MACS
