"""What each pass did, as people read it: a pass record of report.json turned into facts and
tables, every figure in its unit (compress/units.py) and nothing cut. report.md and report.html
render these views; report.json keeps the records as they are."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import compress.units as units
from compress.metrics import drop_unit
from compress.report.schema import Report
from compress.units import Unit


@dataclass(frozen=True)
class Names:
    """A list of names: report.html shows them all, report.md how many."""

    items: list[str]
    what: str

    @property
    def summary(self) -> str:
        return f"{len(self.items)} {self.what}" if self.items else "none"


Cell = str | Names


@dataclass(frozen=True)
class RecordTable:
    title: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class PassView:
    title: str
    facts: list[tuple[str, Cell]]
    tables: list[RecordTable]


#: The unit of a record key's figures; keys ending in _ms are ms, in _bytes bytes; other whole
#: numbers are counts, other numbers scores.
KEY_UNITS: dict[str, Unit] = {
    "seconds": "s",
    "target_sparsity": "fraction",
    "achieved_sparsity": "fraction",
    "sparsity": "fraction",
    "level": "fraction",
    "wins": "fraction",
    "noise": "fraction",  # the spread of the paired log time ratios: a relative spread
}
#: Record keys that hold a ratio of two times.
RATIOS = {"ratio", "speedup"}
#: Labels that say more than the key.
LABELS = {
    "ratio": "time ratio",
    "ratio_95": "95% interval",
    "confirmation_ratio_95": "confirmed 95% interval",
    "noise": "spread",
}


def pass_views(report: Report) -> list[PassView]:
    """One view per pass record, in the order the passes ran."""
    return [_view(report, index, record) for index, record in enumerate(report.passes)]


def _view(report: Report, index: int, record: Any) -> PassView:
    fields = dict(record.items())
    variant = fields.get("method") or fields.get("mode")
    title = f"Pass {index + 1}: {fields.get('type', 'pass')}" + (f" ({variant})" if variant else "")
    drops = drop_unit(report.evaluate_metric)
    facts: list[tuple[str, Cell]] = []
    tables: list[RecordTable] = []
    for key, value in fields.items():
        if key in ("type", "trained_in") or (key in ("layers", "channels") and "groups" in fields):
            continue  # said with the seconds; the groups table holds channels and share removed
        if key == "seconds":
            facts.append(("seconds", _seconds(report, fields)))
        elif value == [] or value == {}:
            facts.append((_label(key), "none"))
        elif key in SPECIAL:
            facts.append((_label(key), SPECIAL[key](value)))
        elif key in TABLES:
            tables.append(TABLES[key](value))
        elif key.startswith("accuracy_drop") and isinstance(value, int | float):
            facts.append((_label(key), units.shown(drops, value)))
        else:
            facts.extend(_generic(key, value, tables))
    return PassView(title, facts, tables)


def _seconds(report: Report, fields: Mapping[str, Any]) -> str:
    """The pass's time; a recovery distill pass's training runs inside later passes (its own
    time is only the hand-over) and the view says where it is counted."""
    seconds = fields.get("seconds")
    if seconds is None:
        return "— (your own training loop ran it)"
    text = units.shown("s", seconds)
    trained_in = fields.get("trained_in") or []
    if trained_in:
        where = ", ".join(
            f"{n} ({report.passes[n - 1].get('type', '')})" if n <= len(report.passes) else str(n)
            for n in trained_in
        )
        text += f" here; its loss trains in pass {where}, and the time is counted there"
    return text


def _generic(key: str, value: Any, tables: list[RecordTable]) -> list[tuple[str, Cell]]:
    """A fact, or a table appended to `tables` for a long mapping or a list of mappings."""
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        tables.append(_rows_table(_label(key), value))
        return []
    if isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        return [(_label(key), Names([str(item) for item in value], "entries"))]
    if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        if len(value) > 6:
            tables.append(_mapping_table(_label(key), ("name", "value"), value, key))
            return []
        return [(_label(key), _inline(value))]
    if isinstance(value, dict | list):
        return [(_label(key), json.dumps(value, default=str))]
    return [(_label(key), _figure(key, value))]


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def _figure(key: str, value: Any) -> str:
    """A scalar of a record in the unit its key implies."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:.3f}\u00a0–\u00a0{value[1]:.3f}"  # an interval, on one line
    if not isinstance(value, int | float):
        return str(value)
    if key in RATIOS:
        return f"{value:.3f}x"
    unit = _unit(key, value)
    return f"{value:.4g}" if unit == "score" else units.shown(unit, value)


def _unit(key: str, value: float) -> Unit:
    if key in KEY_UNITS:
        return KEY_UNITS[key]
    if key.endswith("_ms"):
        return "ms"
    if key.endswith("_bytes"):
        return "bytes"
    return "count" if isinstance(value, int) else "score"


def _inline(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{_label(str(k))} {_figure(str(k), v)}" for k, v in mapping.items())


def _mapping_table(
    title: str, columns: tuple[str, str], mapping: Mapping[str, Any], key: str
) -> RecordTable:
    rows: list[list[Cell]] = [[str(name), _figure(key, v)] for name, v in mapping.items()]
    return RecordTable(title, list(columns), rows)


def _rows_table(title: str, items: list[dict]) -> RecordTable:
    """A list of mappings: one column per key any item has, in first-seen order."""
    columns = list(dict.fromkeys(key for item in items for key in item))
    rows: list[list[Cell]] = []
    for item in items:
        row: list[Cell] = []
        for key in columns:
            value = item.get(key)
            if isinstance(value, dict):
                row.append(_inline(value))
            elif isinstance(value, list) and value and isinstance(value[0], str):
                row.append(Names(value, "names"))
            else:
                row.append(_figure(key, value))
        rows.append(row)
    return RecordTable(title, [_label(key) for key in columns], rows)


def _verification(value: Mapping[str, Any]) -> str:
    """The cut model against the masked one, as a check that held."""
    diff, allowed = value.get("max_abs_diff"), value.get("tolerance")
    if diff is None or allowed is None:
        return _inline(value)
    where = f", on {value['samples']}" if value.get("samples") else ""
    return f"pruned model = masked model: max abs diff {diff:.3g} ≤ tolerance {allowed:.3g}{where}"


def _training(value: Mapping[str, Any] | None) -> str:
    if not value:
        return "none"
    parts = [f"{value[k]:,} {k}" for k in ("epochs", "steps") if k in value]
    if value.get("final_loss") is not None:
        parts.append(f"final loss {value['final_loss']:.4g}")
    rest = {k: v for k, v in value.items() if k not in ("epochs", "steps", "final_loss")}
    return ", ".join(parts + ([_inline(rest)] if rest else []))


def _bits(value: Mapping[str, float]) -> str:
    return ", ".join(f"{bits}-bit {error:.3g}" for bits, error in value.items())


def _groups(value: list[dict]) -> RecordTable:
    rows: list[list[Cell]] = []
    for group in value:
        before, after = group.get("before"), group.get("after")
        cut = None if not before or after is None else 1 - after / before
        removed = units.shown("fraction", cut, 1)
        rows.append(
            [
                str(group.get("name", "")),
                str(group.get("kind", "")),
                f"{before}\u00a0→\u00a0{after}",  # kept on one line
                removed,
                Names(list(group.get("layers", [])), "layers"),
            ]
        )
    columns = ["group", "kind", "channels", "removed", "layers sliced together"]
    return RecordTable("channel groups", columns, rows)


def _channels(value: Mapping[str, list[int]]) -> RecordTable:
    rows: list[list[Cell]] = [[name, f"{a}\u00a0→\u00a0{b}"] for name, (a, b) in value.items()]
    return RecordTable("channels", ["layer", "channels"], rows)


def _fractions(title: str, column: str, key: str) -> Callable[[Mapping[str, float]], RecordTable]:
    def table(value: Mapping[str, float]) -> RecordTable:
        return _mapping_table(title, ("layer", column), value, key)

    return table


def _features(value: Mapping[str, str]) -> RecordTable:
    rows: list[list[Cell]] = [[student, teacher] for student, teacher in value.items()]
    return RecordTable("features matched", ["student layer", "teacher layer"], rows)


#: Record keys with a fact of their own form.
SPECIAL: dict[str, Callable[[Any], Cell]] = {
    "verification": _verification,
    "training": _training,
    "weight_bits_error": _bits,
    "reverted_nodes": lambda value: Names(list(value), "nodes"),
    "excluded_nodes": lambda value: Names(list(value), "nodes"),
}
#: Record keys shown as a table of their own.
TABLES: dict[str, Callable[[Any], RecordTable]] = {
    "groups": _groups,
    "channels": _channels,
    "layers": _fractions("sparsity per layer", "sparsity", "sparsity"),
    "levels": _fractions("level per layer", "level", "level"),
    "features": _features,
}
