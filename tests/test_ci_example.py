"""The CI example (docs/ci/compress.yml) works in a user's repository: a scratch git repository
outside this one, the toolkit installed from a pinned git URL into its own venv, and the
workflow's own `run:` steps executed as written."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import MODELS, RECIPES, ROOT

WORKFLOW = ROOT / "docs" / "ci" / "compress.yml"


def sh(command: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def scratch_repository(root: Path) -> Path:
    """A user's repository: their model, recipe and budget file, nothing of the toolkit's."""
    repo = root / "user-repo"
    (repo / "models").mkdir(parents=True)
    (repo / "recipes").mkdir()
    (repo / "ci").mkdir()
    for name in ("seed_mlp.py", "seed_mlp.safetensors"):
        shutil.copy(MODELS / name, repo / "models" / name)
    shutil.copy(RECIPES / "seed_mlp_prune.yaml", repo / "recipes")
    shutil.copy(ROOT / "docs" / "ci" / "budgets.yaml", repo / "ci" / "budgets.yaml")
    assert sh("git init -q && git add -A", repo).returncode == 0
    return repo


def venv_with_toolkit(root: Path, package: str) -> Path:
    """A fresh venv that sees this venv's dependencies (no network here) and gets the toolkit
    itself only from `package`."""
    venv = root / "venv"
    # no pip or setuptools of its own: the builder's setuptools is this venv's, as pinned
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    inner = next((venv / "lib").glob("python*/site-packages"))
    (inner / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = venv / "bin" / "python"
    pip = f'"{sys.executable}" -m pip --python "{python}"'  # this venv's pip, a current one
    result = sh(f'{pip} install -q --no-deps --no-build-isolation "{package}"', root)
    assert result.returncode == 0, result.stderr
    return venv


def committed_head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.e2e
def test_workflow_steps_run_in_a_scratch_repository(tmp_path):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = {step.get("name"): step for step in workflow["jobs"]["compress"]["steps"]}
    env_spec = workflow["env"]
    assert env_spec["COMPRESS_PACKAGE"].startswith("compress-recipes @ git+")
    assert "-e ." not in steps["Install (CPU torch first, then the toolkit)"]["run"]

    repo = scratch_repository(tmp_path)
    package = f"compress-recipes @ git+file://{ROOT}@{committed_head()}"
    venv = venv_with_toolkit(tmp_path, package)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTHON")},
        **{key: str(value) for key, value in env_spec.items()},
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
    }
    where = sh('python -c "import compress; print(compress.__file__)"', repo, env)
    assert str(venv) in where.stdout, "the toolkit must come from the installed package"

    baseline = sh(  # once, as the workflow's header says, before the first pull request
        'compress apply "$RECIPE" -o "$OUT" --no-progress && '
        'compress check "$OUT/report.json" --budget "$BUDGETS" --baseline "$BASELINE" '
        "--update-baseline",
        repo,
        env,
    )
    assert baseline.returncode == 0, baseline.stderr
    assert (repo / "ci" / "baseline.json").is_file()

    for name in ("Apply the recipe", "Check budgets and the baseline"):
        result = sh(steps[name]["run"], repo, env)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    summary = (repo / "out" / "ci" / "check.md").read_text()
    assert "pass" in summary and "size" in summary
