"""Write requirements.lock from the running environment: `pkg==version` for every installed
distribution except this project (installed editable), local build tags dropped
(`torch==2.13.0+cpu` -> `torch==2.13.0`, which pip resolves to the CPU build on this disk)."""

from __future__ import annotations

import sys
from datetime import date
from importlib import metadata
from pathlib import Path

PROJECT = "compress-recipes"
HEADER = """\
# Exact versions installed by `make setup` / `make demo` / `make test` (and so by CI), tested
# together. Regenerate with `make upgrade` (newest releases, full suite, then this file); never
# edit by hand. Written {day} with Python {python}.
"""


def locked_lines() -> list[str]:
    """Sorted `name==version` lines of the installed distributions."""
    lines = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() == PROJECT:
            continue
        version = dist.version.split("+", 1)[0]
        lines[name.lower()] = f"{name}=={version}"
    return [lines[key] for key in sorted(lines)]


def main(target: str) -> None:
    python = ".".join(map(str, sys.version_info[:3]))
    lines = locked_lines()
    text = HEADER.format(day=date.today().isoformat(), python=python) + "\n".join(lines) + "\n"
    path = Path(target)
    staged = path.with_name(path.name + ".tmp")
    staged.write_text(text, encoding="utf-8")
    staged.replace(path)
    print(f"wrote {path} ({len(lines)} packages)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
