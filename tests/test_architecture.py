"""The structure the code keeps: no module import cycle in `compress/` (every import counts),
algorithms picked by class rather than by comparing their strings, and pass classes tested only
inside `compress/passes/` (everything else looks a role up in the registry)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.unit

spec = importlib.util.spec_from_file_location("architecture", ROOT / "tools" / "architecture.py")
architecture = importlib.util.module_from_spec(spec)
sys.modules["architecture"] = architecture
spec.loader.exec_module(architecture)


def test_no_module_import_cycles():
    assert architecture.cycles(architecture.graph()) == []


def test_the_cycle_finder_sees_imports_inside_functions_and_type_checking():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert architecture.cycles(edges) == [["a", "b", "c"]]
    graph = architecture.graph()
    # compress.backends imports the torch backend only inside backend_named
    assert "compress.backends.torch" in graph["compress.backends"]
    # compress/__init__ names its API modules under TYPE_CHECKING
    assert "compress.pipeline" in graph["compress"]


def test_algorithms_are_classes_not_strings():
    assert len(architecture.algorithm_comparisons()) <= 4


def test_pass_classes_are_tested_only_inside_passes():
    assert architecture.pass_classes() >= {"MagnitudePrune", "StaticQuantize", "DistillPass"}
    assert len(architecture.pass_isinstance_outside_passes()) <= 2


def test_public_api_names_are_not_shadowed_by_subpackages():
    """Importing a submodule sets it on its package: a subpackage named like a lazy API
    function (`compress.tune` once was) would replace the function."""
    import compress

    packages = {path.name for path in (ROOT / "compress").iterdir() if path.is_dir()}
    modules = {path.stem for path in (ROOT / "compress").glob("*.py")}
    assert not set(compress.__all__) & (packages | modules)
