"""`import compress` and `compress --help` must not import torch, TensorFlow, onnxruntime or
matplotlib; `compress check` and `compare` read reports without them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "tensorflow", "tf_keras", "keras", "onnxruntime", "matplotlib")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('LOADED:', *(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADED:"))
    return set(line.split()[1:])


def test_import_compress_is_light():
    assert loaded_after("import compress; compress.__version__") == set()


def test_help_is_light():
    code = (
        "import sys\nfrom compress.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    assert loaded_after(code) == set()


def test_console_script_help_runs():
    result = subprocess.run(
        [sys.executable, "-m", "compress", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("apply", "validate", "plan", "passes", "check", "compare"):
        assert command in result.stdout


def test_check_and_report_modules_are_light():
    code = (
        "import compress.check, compress.compare, compress.report.gate, compress.report.html\n"
        "from compress.cli import cli\n"
        "try:\n    cli.main(['check', '--help'], standalone_mode=False)\n"
        "except SystemExit:\n    pass"
    )
    assert loaded_after(code) == set()
