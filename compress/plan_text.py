"""`compress plan` as text: the model's counts, then per pass what changes and where."""

from __future__ import annotations

from collections.abc import Iterator

from compress.planning import Plan

#: Rows listed per pass before the rest is summarized (a transformer has hundreds of nodes).
MAX_ROWS = 40


def plan_lines(plan: Plan) -> Iterator[str]:
    yield (
        f"model: {plan.framework}, {plan.params:,} params, {plan.macs:,} MACs per sample "
        "(counted on the exported ONNX file, as the report counts them)"
    )
    for index, step in enumerate(plan.passes, start=1):
        yield f"pass {index}: {_title(step)}: {_change(step)}"
        for key in ("mode", "stage", "teacher", "student", "allocation", "importance", "types"):
            if key in step:
                yield f"  {key}: {_with_size(step, key)}"
        yield from _rows(step)
        for decided in step.get("decided_at_run", []):
            yield f"  decided when it runs: {decided}"
        for whole in step.get("left_whole", []):
            yield f"  left whole: {whole['group']} ({whole['why']})"


def _title(step: dict) -> str:
    variant = step.get("variant")
    return step["type"] if variant in (None, step["type"]) else f"{step['type']} ({variant})"


def _change(step: dict) -> str:
    """Parameters and MACs before -> after, or the weights a pass zeroes or quantizes."""
    parts = []
    if step["params_after"] != step["params_before"] or step["macs_after"] != step["macs_before"]:
        parts.append(_ratio("params", step["params_before"], step["params_after"]))
        parts.append(_ratio("MACs", step["macs_before"], step["macs_after"]))
    if "weights_before" in step:
        parts.append(
            f"{len(step['layers'])} layer(s), {step['weights_before']:,} weights -> "
            f"{step['nonzero_after']:,} nonzero"
        )
    if "nodes" in step:
        weights = sum(node["weights"] for node in step["nodes"])
        parts.append(f"{len(step['nodes'])} node(s) quantized, {weights:,} weights")
    return "; ".join(parts) or "weights change, the structure stays"


def _ratio(what: str, before: int, after: int) -> str:
    ratio = after / before if before else 1.0
    return f"{what} {before:,} -> {after:,} ({ratio:.2f}x)"


def _with_size(step: dict, key: str) -> str:
    count = step.get(f"{key}_params")
    if count is None:
        return str(step[key])
    return f"{step[key]} ({count:,} params in the framework model)"


def _rows(step: dict) -> Iterator[str]:
    """One row per channel group, resized layer, pruned layer or quantized node."""
    rows = [
        (g["name"], g["kind"], f"{g['before']:,} -> {g['after']:,}") for g in step.get("groups", [])
    ]
    rows += [
        (layer["name"], layer["kind"], f"{layer['weights']:,} -> {layer['after']:,} weights")
        for layer in step.get("resized", [])
    ]
    rows += [
        (
            layer["name"],
            layer["kind"],
            f"{layer['weights']:,} -> {layer['nonzero_after']:,} nonzero",
        )
        for layer in step.get("layers", [])
    ]
    rows += [
        (node["name"], node["op"], f"{node['weights']:,} weights") for node in step.get("nodes", [])
    ]
    shown = rows[:MAX_ROWS]
    width = max((len(name) for name, _, _ in shown), default=0)
    kinds = max((len(kind) for _, kind, _ in shown), default=0)
    for name, kind, change in shown:
        yield f"  {name:<{width}}  {kind:<{kinds}}  {change}"
    if len(rows) > MAX_ROWS:
        yield f"  ... and {len(rows) - MAX_ROWS} more (--json lists all)"
