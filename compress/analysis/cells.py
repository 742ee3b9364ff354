"""The node table of a quantize scan, as analysis.html and the terminal both show it: drops in
the analysis's unit, unranked nodes (no gain) without a rank."""

from __future__ import annotations

import compress.units as units
from compress.analysis.schema import NodeSensitivity, PassAnalysis
from compress.units import Unit


def node_columns(unit: Unit) -> list[str]:
    """The node table's columns, for analysis.html and the terminal: the drop with the node
    alone quantized, with it alone reverted, how much of the full drop the revert removes, and
    the share of the quantized model's output error it removes (the ranking's gain)."""
    return [
        "rank",
        "node",
        "op",
        units.titled("quantized alone", unit),
        units.titled("reverted alone", unit),
        units.titled("revert removes", unit),
        "error removed (%)",
    ]


def node_cells(item: PassAnalysis, node: NodeSensitivity, unit: Unit) -> list[str]:
    """One node's cells under `node_columns`; an unranked node's rank and removal are "—"."""
    full = item.full_drop or 0.0
    return [
        "—" if node.rank is None else str(node.rank),
        node.name,
        node.op,
        units.number(unit, node.alone_drop),
        units.number(unit, node.reverted_drop),
        "—" if node.rank is None else units.number(unit, full - node.reverted_drop),
        "—" if node.gain_share is None else units.number("fraction", node.gain_share, 1),
    ]
