"""The install is reproducible: the venv holds exactly the locked versions, and the lock is
complete (every installed package is in it), so a fresh machine gets what was tested."""

from __future__ import annotations

import os
import sysconfig
from importlib import metadata

import pytest
from conftest import ROOT

LOCK = ROOT / "requirements.lock"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def installed() -> dict[str, str]:
    """What the venv's site-packages holds (not copies vendored inside packages, which
    setuptools puts on sys.path once imported)."""
    return {
        dist.metadata["Name"].lower().replace("_", "-"): dist.version.split("+", 1)[0]
        for dist in metadata.distributions(path=[sysconfig.get_paths()["purelib"]])
        if dist.metadata["Name"]
    }


@pytest.mark.skipif(
    os.environ.get("COMPRESS_UNLOCKED") == "1", reason="`make upgrade` tests newer releases"
)
def test_venv_holds_exactly_the_locked_versions():
    have, pins = installed(), locked()
    assert {"onnxruntime", "torch", "tensorflow", "transformers", "onnx"} <= set(pins)
    wrong = {name: (version, have.get(name)) for name, version in pins.items()}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, f"installed versions differ from requirements.lock: {wrong}"
    unlocked = set(have) - set(pins) - {"compress-recipes"}
    assert not unlocked, f"installed but not locked: {sorted(unlocked)}"


def test_distribution_is_compress_recipes_with_the_compress_command():
    dist = metadata.distribution("compress-recipes")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"compress": "compress.cli:main"}
