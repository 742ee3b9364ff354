"""Every benchmark script but llm.py runs in its `--quick` mode and prints its tables (llm.py's
takes minutes, four generation folders per model; tests/test_llm.py runs its pipeline part):
the header of the columns it compares and, for each model or variant, a row of figures with
numeric ratios. The figures themselves are not checked: under --quick they come from a few
epochs and rounds, and only the full runs are the benchmarks' (README, Benchmarks).

The scripts run as `__main__` in this process (torch, onnxruntime and compress are imported once
for all of them, which is most of a quick run's time), except prune_keras.py, which must import
TensorFlow with tf-keras as tf.keras before anything else does, and checks that torch is never
imported: it runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

pytestmark = pytest.mark.e2e

#: A ratio cell: "0.257x".
RATIO = re.compile(r"^\d+\.\d+x$")
#: A percentage cell: "97.77%".
PERCENT = re.compile(r"^\d+\.\d+%$")
#: A target line.
TARGET = re.compile(r"^  (MET|MISSED) +\S")

Row = tuple[str, list[str]]


@pytest.fixture
def run_quick(tmp_path, monkeypatch, capsys):
    """run_quick(script, *args): the stdout of `benchmarks/<script> --quick --out <tmp> <args>`
    run as `__main__` in this process, after checking that it did not exit with an error."""
    import torch

    def run(script: str, *args: str) -> str:
        path = BENCHMARKS / script
        monkeypatch.syspath_prepend(str(BENCHMARKS))  # as for `python benchmarks/<script>`
        monkeypatch.setattr(sys, "argv", [str(path), "--quick", "--out", str(tmp_path), *args])
        monkeypatch.setenv("CI", "true")
        # what the scripts set for themselves, restored afterwards
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        threads = torch.get_num_threads()
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exc:
            assert exc.code in (None, 0), f"{script} --quick exited {exc.code}"
        finally:
            torch.set_num_threads(threads)  # the scripts train and export on one thread
        return capsys.readouterr().out

    return run


def run_subprocess(script: str, out: Path) -> str:
    """`benchmarks/<script> --quick --out <out>` in a subprocess: its stdout, after checking that
    it exited 0."""
    env = {**os.environ, "CI": "true", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=280,
    )
    assert result.returncode == 0, (
        f"{script} --quick exited {result.returncode}\n"
        f"stdout (end):\n{result.stdout[-3000:]}\nstderr (end):\n{result.stderr[-3000:]}"
    )
    return result.stdout


def table(output: str, headers: list[str]) -> list[Row]:
    """The rows of the table printed (common.print_table) under these column headers: each row's
    name and cells, title rows with no cells."""
    lines = output.splitlines()
    for index, line in enumerate(lines[:-1]):
        if re.split(r" {2,}", line.strip()) == headers and set(lines[index + 1]) == {"-"}:
            break
    else:
        raise AssertionError(f"no table with columns {headers} in:\n{output}")
    rows = []
    for line in lines[index + 2 :]:
        if not line.strip():
            break
        parts = re.split(r" {2,}", line.strip())
        if len(parts) != 1 and len(parts) != len(headers) + 1:
            break  # the notes after the table
        rows.append((parts[0].strip(), parts[1:]))
    return rows


def titled_headers(output: str, title: str) -> list[str]:
    """The column headers of the table printed under a "[title]" line (sensitivity.py's)."""
    lines = output.splitlines()
    return re.split(r" {2,}", lines[lines.index(title) + 1].strip())


def cells(rows: list[Row], name: str, after: str | None = None) -> list[str]:
    """The cells of the first row called `name` (after the title row `after`, if given)."""
    start = 0 if after is None else [row for row, _ in rows].index(after)
    for row, values in rows[start:]:
        if row == name:
            return values
    raise AssertionError(f"no row {name!r} (after {after!r}) in {rows}")


def assert_ratios(values: list[str]) -> None:
    assert values and all(RATIO.match(value) for value in values), values


def assert_targets(output: str, count: int) -> None:
    lines = [line for line in output.splitlines() if TARGET.match(line)]
    assert len(lines) >= count, output


def test_prune_digits(run_quick):
    output = run_quick("prune_digits.py")
    labels = ["dense", "compress", "by hand: masks kept", "by hand: prune.remove"]
    rows = table(output, labels)
    assert all(PERCENT.match(value) for value in cells(rows, "val accuracy"))
    assert all(PERCENT.match(value) for value in cells(rows, "weight sparsity"))
    for reference in ("vs dense", "vs by hand (prune.remove)"):
        for name in ("size", "gzip size", "p50 latency"):
            assert_ratios(cells(rows, name, after=reference))
    assert cells(rows, "export") == ["ok"] * 4
    assert_targets(output, 2)


def test_prune_keras(tmp_path):
    output = run_subprocess("prune_keras.py", tmp_path)
    assert "torch imported: no" in output
    careful = re.search(r"by hand: tfmot careful \(freq \d+\)", output)
    assert careful, output
    labels = ["dense", "compress", careful.group()]  # --quick leaves the default frequency out
    rows = table(output, labels)
    assert all(PERCENT.match(value) for value in cells(rows, "kernel sparsity"))
    for name in ("size", "gzip size", "gzip size, float weights alone", "p50 latency"):
        assert_ratios(cells(rows, name, after="vs dense"))
    assert cells(rows, "exporter") == ["keras", "keras", "-"]
    assert_targets(output, 1)


def test_quantize(run_quick):
    output = run_quick("quantize.py")
    assert "digits CNN (quickstart, trained), static" in output
    rows = table(output, ["fp32", "compress", "NNCF", "by hand"])
    for name in ("speed-up vs fp32", "size vs fp32"):
        fp32, ours, nncf, by_hand = cells(rows, name)
        assert_ratios([fp32, ours, by_hand])
        assert RATIO.match(nncf) or nncf == "failed*", nncf  # NNCF's failure is a footnote
    assert all(PERCENT.match(value) for value in cells(rows, "val accuracy") if value != "failed*")
    assert "compress chose:" in output
    assert_targets(output, 1)


def test_prune_structured(run_quick):
    output = run_quick("prune_structured.py")
    rows = table(output, ["dense", "compress", "Torch-Pruning"])
    for name in ("latency vs dense", "params vs dense", "MACs vs dense"):
        assert_ratios(cells(rows, name))
    assert_ratios(cells(rows, "params vs peer")[1:2])  # compress against Torch-Pruning
    assert all(PERCENT.match(value) for value in cells(rows, "val accuracy"))
    assert "peer columns: compress vs Torch-Pruning" in output
    assert_targets(output, 1)


def test_distill(run_quick):
    output = run_quick("distill.py")
    labels = ["a: distilled", "b: labels only", "c: teacher", "d: + INT4"]
    students = table(output, labels)
    for name in ("params", "ONNX size", "gzip size", "p50 latency"):
        assert_ratios(cells(students, name, after="vs c: teacher")[:3])  # d: its own report
    assert all(PERCENT.match(value) for value in cells(students, "val accuracy")[:3])
    recovery = table(output, ["pruned 90% + distill", "pruned 90%, labels", "dense"])
    assert_ratios(cells(recovery, "vs dense"))
    assert all(PERCENT.match(value) for value in cells(recovery, "sparsity, pruned weights"))
    assert table(output, ["seed 0", "mean", "std"])
    assert_targets(output, 2)


def test_sensitivity(run_quick):
    output = run_quick("sensitivity.py")
    headers = titled_headers(output, "[overall level]")
    assert {"compress uniform", "torch global_unstructured (by hand)"} < set(headers), headers
    (level,) = table(output, headers)
    assert level[0] == "80%" and all(PERCENT.match(value) for value in level[1][:4]), level
    channels = table(output, titled_headers(output, "[level]"))
    assert channels[0][0] == "50%" and len(channels[0][1]) == 3, channels
    assert all(re.match(r"^\d+\.\d+% @ \d\.\d{3}x MACs$", value) for value in channels[0][1])
    searches = table(output, titled_headers(output, "[search]"))
    names = ["compress tune", "by hand: uniform bisection", "by hand: global bisection"]
    assert [name for name, _ in searches] == names
    assert_targets(output, 3)
    assert "left out by --quick" in output


def test_corpus(run_quick):
    output = run_quick("corpus.py")
    assert re.search(r"^model, recipe +exit +size +p50 x +fidelity +parity +s", output, re.M)
    name = re.escape("digits CNN (quickstart, ONNX), static")
    row = re.search(rf"^{name} +(\d+) +(\d+\.\d+)x +(\S+) ", output, re.M)
    assert row, output
    assert row.group(1) == "0" and RATIO.match(row.group(3)), row.group()
