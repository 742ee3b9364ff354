"""Weight-only block quantization of an ONNX graph, for exported files and for generation
(KV-cache) decoder graphs alike: MatMul weights as MatMulNBits blocks, embedding tables as
GatherBlockQuantized, the final projection (the lm_head) at its own width, and a table tied to
the lm_head stored once.

onnxruntime 1.32 decides the layouts. MatMulNBits takes 4- or 8-bit blocks along K, as uint8
`[N, blocks, blob]`; GatherBlockQuantized reads int4 tables, or uint8 ones holding 4-bit pairs or
8-bit values (its quantizer only writes the int4 form). A tied table `[V, H]` is the transpose of
the lm_head's weight `[H, V]`, so its blocks along H are exactly the lm_head's blocks along K: the
Gather reads the MatMulNBits weight through a Reshape, and one copy serves both.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compress.backends.onnx.blocks import Grid, add_initializer, matmul_nbits
from compress.cpu import cpu_flags
from compress.passes.quantize import WeightOnlyQuantize

#: Bits of each recipe width (None: float), and the width of each.
BITS = {"int4": 4, "int8": 8, "float": None}
WIDTHS = {bits: width for width, bits in BITS.items()}
#: The loggers onnxruntime's weight-only quantizer reports every node on.
ORT_LOGGERS = ("", "onnxruntime.quantization.matmul_nbits_quantizer", "onnxruntime.quantization")
#: Ops that logits may pass through after the final projection (bias, softcapping, casts).
_AFTER_HEAD = {"Add", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Mul", "Div", "Tanh"}
#: Ops token ids may pass through between the graph input and the embedding Gather.
_INDEX_PASS_THROUGH = {"Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
#: The blocks of one weight: (initializer name, weight [K, N], bits) -> Grid.
Choose = Callable[[str, np.ndarray, int], Grid]
#: x86 features onnxruntime's int8-compute MatMulNBits kernels (accuracy_level 4) need.
INT8_COMPUTE_FEATURES = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8")


def accuracy_level(config: WeightOnlyQuantize) -> tuple[int, str]:
    """The MatMulNBits accuracy_level to write, and why when `auto` chose it. Auto is 4 (int8
    compute: activations quantized per block, integer dot products): at level 0 the CPU kernels
    unpack the weights to float and run slower than a float MatMul. onnxruntime steps down by
    itself to the most accurate level it has kernels for, so 4 never fails."""
    if config.accuracy_level != "auto":
        return config.accuracy_level, ""
    if platform.machine().lower() in {"arm64", "aarch64"}:
        return 4, (
            "accuracy_level auto: 4 (int8 compute; onnxruntime uses the ARM dot-product "
            "kernels, and float compute where the CPU lacks them)"
        )
    found = [feature for feature in INT8_COMPUTE_FEATURES if feature in cpu_flags()]
    if found:
        return 4, (
            f"accuracy_level auto: 4 (int8 compute; the CPU has {', '.join(found)}, which "
            "onnxruntime's int8 MatMulNBits kernels use)"
        )
    return 4, (
        "accuracy_level auto: 4, but the CPU has no AVX2: onnxruntime steps down to float "
        "compute, as slow as accuracy_level 0"
    )


@dataclass(frozen=True)
class Weight:
    """A constant 2-D weight as a node reads it: an initializer, maybe through a Transpose."""

    initializer: str
    transposed: bool

    def tensor(self, graph: onnx.GraphProto) -> onnx.TensorProto:
        return next(t for t in graph.initializer if t.name == self.initializer)

    def array(self, graph: onnx.GraphProto) -> np.ndarray:
        array = numpy_helper.to_array(self.tensor(graph))
        return np.ascontiguousarray(array.T) if self.transposed else array

    def columns(self, graph: onnx.GraphProto) -> int:
        """The second dimension of the weight as read (N of a MatMul's B, H of a table)."""
        return int(self.tensor(graph).dims[0 if self.transposed else 1])


def constant_weight(graph: onnx.GraphProto, name: str) -> Weight | None:
    """The 2-D float initializer behind tensor `name` (directly, or through a 2-D Transpose)."""
    floats = {
        t.name
        for t in graph.initializer
        if len(t.dims) == 2 and t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)
    }
    if name in floats:
        return Weight(name, False)
    producer = next((n for n in graph.node if name in n.output), None)
    if producer is not None and producer.op_type == "Transpose" and producer.input[0] in floats:
        perm = _attributes(producer).get("perm", [1, 0])
        if list(perm) == [1, 0]:
            return Weight(producer.input[0], True)
    return None


def final_projection(graph: onnx.GraphProto) -> onnx.NodeProto | None:
    """The lm_head: the MatMul with a constant weight whose output becomes the `logits` output
    (else any output) through bias adds, reshapes and casts; without one, the last constant
    MatMul when it has the largest N of the graph."""
    producers = {out: node for node in graph.node for out in node.output}
    constants = {t.name for t in graph.initializer}
    outputs = sorted(graph.output, key=lambda output: output.name != "logits")
    for output in outputs:
        node = producers.get(output.name)
        while node is not None and node.op_type in _AFTER_HEAD:
            data = [name for name in node.input if name and name not in constants]
            node = producers.get(data[0]) if len(data) == 1 else None
        if node is not None and node.op_type == "MatMul" and constant_weight(graph, node.input[1]):
            return node
    matmuls = [
        (node, weight.columns(graph))
        for node in graph.node
        if node.op_type == "MatMul" and (weight := constant_weight(graph, node.input[1]))
    ]
    if matmuls and matmuls[-1][1] == max(n for _, n in matmuls):
        return matmuls[-1][0]
    return None


def embedding_gathers(graph: onnx.GraphProto) -> list[tuple[onnx.NodeProto, Weight]]:
    """Token embeddings: Gathers along axis 0 of a constant 2-D float table by indices that are
    a graph input (through casts and reshapes). Tables indexed by computed positions (rotary
    caches, learned positions) stay float: small, and RoPE is sensitive to their error."""
    inputs = {i.name for i in graph.input} - {t.name for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    found = []
    for node in graph.node:
        if node.op_type != "Gather" or _attributes(node).get("axis", 0) != 0:
            continue
        indices = node.input[1]
        while indices in producers and producers[indices].op_type in _INDEX_PASS_THROUGH:
            indices = producers[indices].input[0]
        table = constant_weight(graph, node.input[0])
        if table is not None and indices in inputs:
            found.append((node, table))
    return found


def is_tied(graph: onnx.GraphProto, table: Weight, head: Weight) -> bool:
    """Whether the table `[V, H]` holds the transpose of the lm_head weight `[H, V]`: the same
    initializer read once transposed, or two initializers with those values."""
    if table.initializer == head.initializer:
        return table.transposed != head.transposed
    stored, other = list(table.tensor(graph).dims), list(head.tensor(graph).dims)
    if stored != (other[::-1] if table.transposed == head.transposed else other):
        return False
    return bool(np.array_equal(table.array(graph), head.array(graph).T))


def quantize_blocks(
    model: onnx.ModelProto,
    config: WeightOnlyQuantize,
    excluded: Collection[str],
    choose: Choose,
    wider: Collection[str] = (),
) -> dict:
    """Quantize `model` in place (MatMul already, Gemm rewritten) leaving `excluded` nodes in
    float and `wider` ones at 8 bits, each weight's blocks from `choose`; return what was done
    for the pass record. An excluded lm_head or embedding counts as float when its table is
    tied: one copy is stored, at the wider width."""
    level, why = accuracy_level(config)
    graph = model.graph
    head = final_projection(graph)
    head_weight = constant_weight(graph, head.input[1]) if head is not None else None
    head_bits = _width(head, BITS[config.lm_head], excluded, wider) if head is not None else None
    gathers = embedding_gathers(graph)
    table_bits = {  # by output: exporters may leave nodes unnamed
        node.output[0]: _width(node, BITS[config.embeddings], excluded, wider)
        for node, _ in gathers
    }
    tied = [(n, t) for n, t in gathers if head_weight and is_tied(graph, t, head_weight)]
    record: dict = {
        "format": (
            f"MatMulNBits {config.weights}, block {config.block_size}, accuracy_level {level}"
        ),
        "block_size": config.block_size,
        "accuracy_level": level,
        "lm_head": WIDTHS[head_bits] if head is not None else None,
        "lm_head_node": head.name if head is not None else None,
        "embeddings": None,
        "embedding_nodes": [node.name for node, _ in gathers],
        "tied_embeddings": bool(tied),
    }
    if gathers:
        kept = all(node.name in excluded for node, _ in gathers)
        record["embeddings"] = "float" if kept else config.embeddings
    if tied:
        assert head is not None and head_weight is not None
        asked = {"lm_head": head_bits, "embeddings": table_bits[tied[0][0].output[0]]}
        widths = [head_bits, *(table_bits[node.output[0]] for node, _ in tied)]
        head_bits = None if None in widths else max(widths)
        record.update(_store_tied(model, config, choose, head, head_weight, tied, head_bits, asked))
    elif head_bits is not None:
        assert head is not None
        _quantize_node(graph, choose, head, head_bits)
        _drop_dead_transposes(graph)
    shared = {node.output[0] for node, _ in tied}
    for node, table in gathers:
        bits = table_bits[node.output[0]]
        if bits is not None and node.output[0] not in shared:
            _quantize_table(model, config, node, table, bits)
    if head_bits == 8 and level < 4:
        why = f"{why}; " if why else ""
        why += (
            "8-bit MatMulNBits below accuracy_level 4 runs onnxruntime's reference kernel, "
            "many times slower than float"
        )
    if why:
        record["why"] = why
    skipped = {*excluded, *([head.name] if head is not None else [])}
    bits = BITS[config.weights]
    widths = _quantize_matmuls(model, choose, skipped, bits, wider)
    if head is not None:
        widths[head.name or "lm_head"] = WIDTHS[head_bits]
    for node, _ in gathers:
        widths[node.name or node.output[0]] = WIDTHS[table_bits[node.output[0]]]
    record["node_widths"] = widths
    record["width_counts"] = {
        width: sum(1 for value in widths.values() if value == width)
        for width in ("int4", "int8", "float")
    }
    for node in _all_nodes(graph):
        if node.op_type == "MatMulNBits":
            _set_attribute(node, "accuracy_level", level)
    return record


def _width(
    node: onnx.NodeProto, bits: int | None, excluded: Collection[str], wider: Collection[str]
) -> int | None:
    """The bits of a node: None (float) when excluded, 8 when it is to be wider, else `bits`."""
    if node.name in excluded:
        return None
    return max(bits, 8) if node.name in wider and bits is not None else bits


def _store_tied(
    model: onnx.ModelProto,
    config: WeightOnlyQuantize,
    choose: Choose,
    head: onnx.NodeProto,
    weight: Weight,
    tied: list[tuple[onnx.NodeProto, Weight]],
    bits: int | None,
    asked: dict[str, int | None],
) -> dict:
    """One copy of a tied table at `bits`: quantized, the lm_head's MatMulNBits weight that
    each GatherBlockQuantized reads through a Reshape; float, the table that the lm_head reads
    through a Transpose (as the exporter wrote it, where pre-processing made a second copy).
    `asked` are the widths each side asked for, to say which one was raised."""
    graph = model.graph
    kind = WIDTHS[bits]
    raised = [f"{part} {WIDTHS[value]} -> {kind}" for part, value in asked.items() if value != bits]
    note = f"; raised to the wider width: {', '.join(raised)}" if raised else ""
    record = {"lm_head": kind, "embeddings": kind}
    if bits is None:
        table = tied[0][1]
        if weight.initializer != table.initializer:
            _read_tied_table(graph, head, table)
        for node, other in tied:
            if other.initializer != table.initializer:
                node.input[0] = _float_table(graph, table, node.name)
        _drop_dead_transposes(graph)
        return {**record, "tied_storage": f"one float copy{note}"}
    source = tied[0][1]
    if weight.initializer != source.initializer or weight.transposed:
        head.input[1] = add_initializer(graph, source.array(graph).T, f"{source.initializer}_T")
    matmul = _quantize_node(graph, choose, head, bits)
    packed = next(t for t in graph.initializer if t.name == matmul.input[1])
    for node, _ in tied:
        _replace(graph, node, _gather_packed(graph, config, node, matmul, packed, bits))
    _drop_dead_transposes(graph)
    storage = (
        f"one {kind} copy: the lm_head's MatMulNBits weight, read by GatherBlockQuantized "
        f"through a Reshape{note}"
    )
    return {**record, "tied_storage": storage}


def _quantize_node(
    graph: onnx.GraphProto, choose: Choose, node: onnx.NodeProto, bits: int
) -> onnx.NodeProto:
    """One MatMul with a constant weight (read directly or through a Transpose) as
    MatMulNBits at `bits`, in place; a Transpose left unread goes with _drop_dead_transposes."""
    weight = constant_weight(graph, node.input[1])
    assert weight is not None
    grid = choose(weight.initializer, weight.array(graph), bits)
    replacement = matmul_nbits(graph, node, grid, weight.initializer)
    _replace(graph, node, [replacement])
    return replacement


def _gather_packed(
    graph: onnx.GraphProto,
    config: WeightOnlyQuantize,
    gather: onnx.NodeProto,
    matmul: onnx.NodeProto,
    packed: onnx.TensorProto,
    bits: int,
) -> list[onnx.NodeProto]:
    """A GatherBlockQuantized over a MatMulNBits weight `[V, blocks, blob]` seen as rows
    `[V, blocks * blob]`, sliced back to H columns where the last block is padded."""
    rows, blocks, blob = packed.dims
    shape = f"{packed.name}_rows"
    if not any(t.name == shape for t in graph.initializer):
        add_initializer(graph, np.array([rows, blocks * blob], np.int64), shape)
    name = f"{gather.name or gather.output[0]}_Q{bits}"
    nodes = [
        helper.make_node("Reshape", [packed.name, shape], [f"{name}_rows"], name=f"{name}_rows")
    ]
    inputs = [f"{name}_rows", gather.input[1], *matmul.input[2:4]]
    hidden = _attributes(matmul)["K"]
    padded = blocks * config.block_size != hidden
    output = f"{name}_padded" if padded else gather.output[0]
    nodes.append(
        helper.make_node(
            "GatherBlockQuantized",
            inputs,
            [output],
            name=name,
            domain="com.microsoft",
            bits=bits,
            block_size=config.block_size,
            gather_axis=0,
            quantize_axis=1,
        )
    )
    if padded:
        bounds = []
        for label, value in (("starts", 0), ("ends", hidden), ("axes", -1)):
            bounds.append(add_initializer(graph, np.array([value], np.int64), f"{name}_{label}"))
        nodes.append(
            helper.make_node("Slice", [output, *bounds], [gather.output[0]], name=f"{name}_slice")
        )
    return nodes


def _quantize_table(
    model: onnx.ModelProto,
    config: WeightOnlyQuantize,
    node: onnx.NodeProto,
    table: Weight,
    bits: int,
) -> None:
    """An untied embedding as GatherBlockQuantized: int4 tables as onnxruntime's quantizer
    writes them (INT4 values, opset 21), 8-bit ones as uint8 blocks along H; a table that
    several Gathers read is quantized once."""
    graph = model.graph
    name = f"{table.initializer}_Q{bits}"
    if not any(t.name == name for t in graph.initializer):
        _add_table(model, config, table.array(graph), name, bits)
    inputs = [name, node.input[1], f"{name}_scales"]
    if not config.symmetric:
        inputs.append(f"{name}_zero_points")
    replacement = helper.make_node(
        "GatherBlockQuantized",
        inputs,
        list(node.output),
        name=f"{node.name}_Q{bits}",
        domain="com.microsoft",
        bits=bits,
        block_size=config.block_size,
        gather_axis=0,
        quantize_axis=1,
    )
    _replace(graph, node, [replacement])


def _add_table(
    model: onnx.ModelProto, config: WeightOnlyQuantize, rows: np.ndarray, name: str, bits: int
) -> None:
    """The blocks of table `rows` as `name`, `name_scales` and (asymmetric) `name_zero_points`."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantizer

    graph = model.graph
    if bits == 4:
        values, scales, zeros = DefaultWeightOnlyQuantizer.quantize_ndarray(
            rows, 1, config.block_size, config.symmetric
        )
        kind = TensorProto.INT4 if config.symmetric else TensorProto.UINT4
        graph.initializer.append(helper.make_tensor(name, kind, rows.shape, values.tobytes(), True))
        if zeros is not None:
            graph.initializer.append(
                helper.make_tensor(f"{name}_zero_points", kind, scales.shape, zeros.tobytes(), True)
            )
        _require_int4_opset(model)
    else:
        values, scales, zeros = _uint8_blocks(rows, config.block_size, config.symmetric)
        add_initializer(graph, values, name)
        if zeros is not None:
            add_initializer(graph, zeros, f"{name}_zero_points")
    add_initializer(graph, scales, f"{name}_scales")


def _uint8_blocks(
    rows: np.ndarray, block: int, symmetric: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """8-bit blocks of `block` values along each row, as GatherBlockQuantized reads them:
    uint8 values, scales `[V, blocks]`, zero points (128 implied when symmetric)."""
    count, width = rows.shape
    blocks = -(-width // block)
    padded = np.pad(rows.astype(np.float32), ((0, 0), (0, blocks * block - width)))
    padded = padded.reshape(count, blocks, block)
    if symmetric:
        scales = np.abs(padded).max(axis=-1) / 127
        zeros = np.full_like(scales, 128)
    else:
        low, high = np.minimum(padded.min(-1), 0), np.maximum(padded.max(-1), 0)
        scales = (high - low) / 255
        zeros = np.where(scales == 0, 128, np.round(-low / np.where(scales == 0, 1, scales)))
    safe = np.where(scales == 0, 1, scales)
    values = np.clip(np.round(padded / safe[..., None]) + zeros[..., None], 0, 255)
    values = values.astype(np.uint8).reshape(count, -1)[:, :width]
    scales = scales.astype(rows.dtype)
    return values, scales, None if symmetric else zeros.astype(np.uint8)


def _quantize_matmuls(
    model: onnx.ModelProto,
    choose: Choose,
    skipped: Collection[str],
    bits: int,
    wider: Collection[str],
) -> dict[str, str]:
    """Every other MatMul with a constant weight as MatMulNBits at `bits` (8 for `wider`
    ones); the float weights nothing reads any more are dropped. The width of each."""
    graph = model.graph
    widths: dict[str, str] = {}
    for node in list(graph.node):
        if node.op_type != "MatMul" or node.name in skipped:
            continue
        weight = constant_weight(graph, node.input[1])
        if weight is None:
            continue
        width = max(bits, 8) if node.name in wider else bits
        _quantize_node(graph, choose, node, width)
        widths[node.name or node.output[0]] = WIDTHS[width]
    _drop_dead_transposes(graph)
    return widths


def int4_bytes(path: Path, block_sizes: Collection[int], symmetric: bool) -> dict[int, int]:
    """The bytes the 4-bit blocks of the ONNX file's constant MatMul weights and embedding
    tables take at each block size (codes, scales and zero points). MatMulNBits pads K up to
    whole blocks, so a larger block is not always a smaller file: K=192 at block 128 stores 256
    codes a column; GatherBlockQuantized stores a table's codes unpadded, except a table tied
    to the lm_head, which is stored once as the lm_head's MatMulNBits weight."""
    graph = gemm_to_matmul(onnx.load(str(path))).graph
    weights = [
        weight
        for node in graph.node
        if node.op_type == "MatMul" and (weight := constant_weight(graph, node.input[1]))
    ]
    head = final_projection(graph)
    head_weight = constant_weight(graph, head.input[1]) if head is not None else None
    tables = [
        table
        for _, table in embedding_gathers(graph)
        if not (head_weight and is_tied(graph, table, head_weight))
    ]
    shapes = []
    for weight in {w.initializer: w for w in weights + tables}.values():
        tensor = weight.tensor(graph)
        depth, columns = tensor.dims[::-1] if weight.transposed else tensor.dims
        if weight in tables:
            depth, columns = columns, depth  # a table [V, H] has its blocks along H
        scale = 2 if tensor.data_type == TensorProto.FLOAT16 else 4
        shapes.append(_Blocked(depth, columns, scale, padded=weight not in tables))
    return {block: sum(s.bytes(block, symmetric) for s in shapes) for block in block_sizes}


@dataclass(frozen=True)
class _Blocked:
    """One weight's 4-bit blocks: `columns` of `depth` values each, blocked along the depth."""

    depth: int
    columns: int
    scale_bytes: int
    padded: bool  # MatMulNBits pads each column's codes and zero points to whole bytes

    def bytes(self, block: int, symmetric: bool) -> int:
        blocks = -(-self.depth // block)
        if self.padded:
            codes, zeros = self.columns * blocks * block // 2, self.columns * -(-blocks // 2)
        else:  # GatherBlockQuantized packs codes and zero points across rows
            codes, zeros = -(-self.columns * self.depth // 2), -(-self.columns * blocks // 2)
        return codes + self.columns * blocks * self.scale_bytes + (0 if symmetric else zeros)


def gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite Gemm (alpha=beta=1, A not transposed) with a constant B as MatMul + Add, so that
    MatMulNBits can take it: exporters emit Gemm for Linear layers. A transposed B that other
    nodes also read (a tied embedding) gets its own transposed copy."""
    initializers = {t.name: t for t in model.graph.initializer}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    nodes = []
    for node in model.graph.node:
        attributes = _attributes(node)
        if (
            node.op_type != "Gemm"
            or node.input[1] not in initializers
            or attributes.get("transA", 0)
            or attributes.get("alpha", 1.0) != 1.0
            or attributes.get("beta", 1.0) != 1.0
        ):
            nodes.append(node)
            continue
        weight = node.input[1]
        if attributes.get("transB", 0):
            array = numpy_helper.to_array(initializers[weight]).T
            if readers[weight] > 1:
                weight = add_initializer(model.graph, array, f"{weight}_T")
            else:
                initializers[weight].CopyFrom(
                    numpy_helper.from_array(np.ascontiguousarray(array), weight)
                )
        product = f"{node.output[0]}_matmul" if len(node.input) > 2 else node.output[0]
        nodes.append(
            helper.make_node(
                "MatMul", [node.input[0], weight], [product], name=f"{node.name}_MatMul"
            )
        )
        if len(node.input) > 2 and node.input[2]:
            nodes.append(
                helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"
                )
            )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _read_tied_table(graph: onnx.GraphProto, head: onnx.NodeProto, table: Weight) -> None:
    """Point the lm_head at the tied table (through a Transpose where the table is `[V, H]`);
    its own float copy is dropped."""
    if table.transposed:
        head.input[1] = table.initializer
    else:
        name = f"{head.name}_weight"
        transpose = helper.make_node(
            "Transpose", [table.initializer], [name], name=name, perm=[1, 0]
        )
        graph.node.insert(list(graph.node).index(head), transpose)
        head.input[1] = name
    _drop_unread_initializers(graph)


def _float_table(graph: onnx.GraphProto, table: Weight, reader: str) -> str:
    """A tensor holding `table` as `[V, H]`: the initializer, or a Transpose of it."""
    if not table.transposed:
        return table.initializer
    name = f"{reader}_table"
    transpose = helper.make_node("Transpose", [table.initializer], [name], name=name, perm=[1, 0])
    graph.node.insert(0, transpose)
    return name


def _require_int4_opset(model: onnx.ModelProto) -> None:
    """INT4 tensors need opset 21 and IR version 10 (onnxruntime's quantizer raises both too)."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version < 21:
            entry.version = 21
    model.ir_version = max(model.ir_version, 10)


def _replace(graph: onnx.GraphProto, node: onnx.NodeProto, nodes: list[onnx.NodeProto]) -> None:
    index = list(graph.node).index(node)
    kept = list(graph.node)
    kept[index : index + 1] = nodes
    del graph.node[:]
    graph.node.extend(kept)


def _drop_dead_transposes(graph: onnx.GraphProto) -> None:
    """Transposes of weights that nothing reads any more, and the initializers left unread."""
    outputs = {output.name for output in graph.output}
    read = {name for node in graph.node for name in node.input}
    dead = [
        node
        for node in graph.node
        if node.op_type == "Transpose" and node.output[0] not in read | outputs
    ]
    for node in dead:
        graph.node.remove(node)
    _drop_unread_initializers(graph)


def _drop_unread_initializers(graph: onnx.GraphProto) -> None:
    """Initializers nothing reads, and their entries among the graph inputs (older IRs)."""
    read = {name for node in _all_nodes(graph) for name in node.input}
    read |= {output.name for output in graph.output}
    dropped = {t.name for t in graph.initializer if t.name not in read}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [i for i in graph.input if i.name not in dropped]
    del graph.input[:]
    graph.input.extend(inputs)


def _set_attribute(node: onnx.NodeProto, name: str, value: int) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of `graph` and of its subgraphs (If/Loop bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in (
                [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs
            ):
                yield from _all_nodes(sub)
