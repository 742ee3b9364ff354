"""Architecture checks of the `compress` package, run by tests/test_architecture.py and by hand
(`python tools/architecture.py`): module import cycles (every import counts: top level, inside
functions and under TYPE_CHECKING), comparisons of a pass's algorithm strings
(`.method/.mode/.engine ==`), and `isinstance` tests of pass classes outside `compress/passes/`.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "compress"
ALGORITHM_COMPARISON = re.compile(r"\.(method|mode|engine) *(==|!=|in) ")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `path` imports anywhere in its text (a `from a import b` of a
    submodule b counts as importing a.b; a package's __init__ counts as the package)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def algorithm_comparisons() -> list[str]:
    """Lines of `compress/` that compare a pass's method, mode or engine string."""
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ALGORITHM_COMPARISON.search(line)
    ]


def pass_classes() -> set[str]:
    """Names of the classes defined in compress/passes/ that derive from a pass config."""
    bases: dict[str, list[str]] = {}
    for path in (PACKAGE / "passes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [ast.unparse(base) for base in node.bases]
    found = {"PassConfig"}
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in found and any(parent in found for parent in parents):
                found.add(name)
                changed = True
    return found


def pass_isinstance_outside_passes() -> list[str]:
    """`isinstance(x, SomePassClass)` outside compress/passes/."""
    classes = pass_classes()
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "passes") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "isinstance"
                and len(node.args) == 2
            ):
                named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if named & classes:
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


def main() -> int:
    found = cycles(graph())
    comparisons = algorithm_comparisons()
    instances = pass_isinstance_outside_passes()
    print(f"import cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print(f"method/mode/engine string comparisons: {len(comparisons)}")
    for line in comparisons:
        print("  " + line)
    print(f"isinstance of pass classes outside compress/passes/: {len(instances)}")
    for line in instances:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
