"""YAML loading that remembers where every value came from, so errors can say file:line:col."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compress.errors import RecipeError

#: Bounds on a recipe or budget file, checked on PyYAML's event stream (which, unlike its
#: composer, does not recurse) before anything is built: a file this big, this deep, or whose
#: aliases expand to this many values is a mistake or an attack, and is refused at once.
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 200_000


@dataclass(frozen=True)
class Located:
    """Parsed YAML data plus the node tree that holds each value's position."""

    data: Any
    root: yaml.Node | None
    path: Path


def load_yaml(path: Path) -> Located:
    """Parse YAML with safe_load semantics; duplicate keys and syntax errors are RecipeErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read: {exc}") from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> Located:
    """Parse YAML text read from `path` (named in errors), like `load_yaml`; files past the
    bounds above are RecipeErrors before they are built."""
    if len(text) > MAX_BYTES:
        raise RecipeError(
            f"{path}: {len(text) / 1024 / 1024:.1f} MB of YAML is more than the "
            f"{MAX_BYTES // 1024 // 1024} MB a recipe or budget file may hold"
        )
    try:
        _check_bounds(text, path)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RecipeError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: invalid YAML: {exc}") from None
    if root is not None:
        _reject_duplicate_keys(root, path)
    return Located(data=data, root=root, path=path)


def _check_bounds(text: str, path: Path) -> None:
    """Refuse nesting deeper than MAX_DEPTH and aliases that expand past MAX_VALUES values
    (a "billion laughs" file), at the position where the bound is crossed."""
    open_counts: list[list] = []  # per open collection: [anchor, values inside so far]
    anchored: dict[str, int] = {}  # anchor -> values its node expands to
    expanded = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            open_counts.append([event.anchor, 0])
            if len(open_counts) > MAX_DEPTH:
                raise RecipeError(
                    f"{_where(path, event)}: nested more than {MAX_DEPTH} levels deep"
                )
            size = 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, inside = open_counts.pop()
            if anchor:
                anchored[anchor] = inside + 1
            if open_counts:
                open_counts[-1][1] += inside + 1
            continue  # its values were counted as they came
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor:
                anchored[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            size = anchored.get(event.anchor, 1)
        else:
            continue
        if open_counts and not isinstance(event, yaml.CollectionStartEvent):
            open_counts[-1][1] += size
        expanded += size
        if expanded > MAX_VALUES:
            raise RecipeError(
                f"{_where(path, event)}: aliases expand to more than {MAX_VALUES:,} values"
            )


def _where(path: Path, event: yaml.Event) -> str:
    mark = event.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)


def _reject_duplicate_keys(node: yaml.Node, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    mark = key.start_mark
                    raise RecipeError(
                        f"{path}:{mark.line + 1}:{mark.column + 1}: duplicate key {key.value!r}"
                    )
                seen.add(key.value)
            _reject_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)


def locate(source: Located, loc: tuple[str | int, ...], at_key: bool = False) -> str:
    """Return "file:line:col" of the deepest YAML node on a pydantic-style error location.

    Parts missing from the YAML (a required key, say) stop nowhere: the parent's position is
    used. The key's position is used when `at_key` is set (for a key that should not be there)
    or when the value is empty.
    """
    node = source.root
    mark = node.start_mark if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                continue
            key, node = match
            mark = key.start_mark if at_key or not _has_content(node) else node.start_mark
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            mark = node.start_mark
    return f"{source.path}:{mark.line + 1}:{mark.column + 1}" if mark else str(source.path)


def _has_content(node: yaml.Node) -> bool:
    return not (isinstance(node, yaml.ScalarNode) and node.value == "")
