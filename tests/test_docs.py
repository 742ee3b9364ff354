"""The docs are true: the site builds with `mkdocs build --strict`, every page is in its
navigation, every shipped recipe is listed, and every example in README.md and docs/*.md runs:
```bash / ```console blocks with the `compress` of this venv, ```python blocks in this process,
```yaml recipes and budget files validated, all in scratch copies of recipes/ and models/ so
nothing in the checkout is written.

A block that must not run here says so on the line above it, and is listed below with why:
`<!-- docs-test: skip -->` (never run) or `<!-- docs-test: e2e -->` (run in the e2e tier).
The examples share one apply of the quickstart: the README's Python example, run once per test
run in the test process (so the exporter's start-up is paid once with the other Python examples).
It writes what `make demo`'s `compress apply recipes/quickstart.yaml` writes, so a block line
that repeats that command reads its outputs instead of running again, and the README's sample
output is checked against the table the command prints for that report."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import MODELS, RECIPES, ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent  # the venv's bin: compress, mkdocs
#: Fence languages: run, validated or parsed, and shown only (output samples, synopses).
RUN, DATA, SHOWN = {"bash", "console", "python"}, {"yaml"}, {"text"}
MARKER = re.compile(r"<!-- docs-test: (skip|e2e) -->")
#: (page, first line) of every block marked skip, and why it never runs here.
SKIPPED = {
    ("README.md", "make demo"): "installs the venv; the suite is `make test`, the demo's "
    "apply is the shared run",
    ("install.md", "make demo"): "the README's two commands, as above",
    ("install.md", "make upgrade"): "resolves the newest releases and runs the whole suite",
    ("install.md", "pip install torch==2.13.0"): "installs into another environment from the "
    "network; tests/test_ci_example.py installs from a git URL",
    ("benchmarks.md", ".venv/bin/python benchmarks/prune_digits.py"): "minutes each; "
    "tests/test_benchmarks.py runs their --quick forms",
    ("ci.md", "compress apply recipes/seed_mlp_prune.yaml -o out/ci --no-progress"): "steps in "
    "a user's git repository; tests/test_ci_example.py runs them there",
    ("README.md", "compress apply recipes/llm_int4.yaml"): "tests/test_llm.py applies this "
    "recipe once and checks its figures",
    ("benchmarks.md", ".venv/bin/python benchmarks/llm.py"): "minutes: four generation folders "
    "per model; tests/test_llm.py runs its pipeline part",
}
#: (page, first line) of every block run in the e2e tier: TensorFlow, or several pipeline runs.
E2E = {
    ("python-api.md", 'x_train, y_train = load_nhwc()["train"]'),  # a Keras session
    ("tuning.md", "analysis = compress.analyze("),  # a sensitivity scan
}
SHARED = "compress apply recipes/quickstart.yaml"
#: The README's Python example, the shared run (the key of its block).
SHARED_EXAMPLE = ("README.md", 'recipe = compress.load_recipe("recipes/quickstart.yaml")')
#: Lines that do not say what a block is for (its key is the first line after them).
SETUP = ("import ", "from ", "#")
QUICKSTART_OUT = Path("out") / "quickstart"


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    marker: str | None
    text: str

    @property
    def first(self) -> str:
        """The first line that is not an import or a comment, without its comment."""
        lines = [line.split("  #", 1)[0].strip() for line in self.text.splitlines()]
        return next(line for line in lines if line and not line.startswith(SETUP))

    @property
    def key(self) -> tuple[str, str]:
        return (self.page, self.first)

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown page, with its language and the marker above it."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^(\s*)```(\S*)\s*$", lines[index])
        if not opening:
            index += 1
            continue
        indent, lang, start = opening.group(1), opening.group(2), index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
        above = MARKER.match(lines[start - 1].strip()) if start else None
        body = "\n".join(line.removeprefix(indent) for line in lines[start + 1 : end]) + "\n"
        blocks.append(Block(path.name, start + 1, lang, above and above.group(1), body))
        index = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in fenced_blocks(page)]


def runnable(lang: set[str]) -> list:
    """Blocks to run, one test per distinct text (the README's API example is also the API
    page's first), the e2e ones marked."""
    seen, params = set(), []
    for block in BLOCKS:
        if block.lang not in lang or block.marker == "skip" or block.text in seen:
            continue
        if block.key == SHARED_EXAMPLE:  # the shared run: the `shared` fixture runs it
            seen.add(block.text)
            continue
        seen.add(block.text)
        marks = [pytest.mark.e2e] if block.marker == "e2e" else []
        params.append(pytest.param(block, id=block.name, marks=marks))
    return params


# -- the site and what it lists ---------------------------------------------------------------


@pytest.mark.unit
def test_every_block_names_a_known_language_and_markers_are_the_listed_ones():
    unknown = [b.name for b in BLOCKS if b.lang not in RUN | DATA | SHOWN]
    assert not unknown, f"fence without a known language (bash/console/python/yaml/text): {unknown}"
    marked = {block.key: block.marker for block in BLOCKS if block.marker}
    assert {k for k, m in marked.items() if m == "skip"} == set(SKIPPED)
    assert {k for k, m in marked.items() if m == "e2e"} == E2E
    assert all(block.lang in RUN for block in BLOCKS if block.marker)


@pytest.mark.unit
def test_readme_says_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert len(readme.splitlines()) <= 250


@pytest.mark.unit
def test_navigation_holds_every_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(entries) -> list[str]:
        found = []
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            found += pages(value) if isinstance(value, list) else [value]
        return found

    listed = pages(config["nav"])
    assert sorted(listed) == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert len(listed) == len(set(listed))


@pytest.mark.unit
def test_every_shipped_recipe_is_listed_once():
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    section = text.split("## Shipped recipes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([^`]+\.yaml)` \|", section, flags=re.MULTILINE)
    assert sorted(listed) == sorted(p.name for p in RECIPES.glob("*.yaml"))
    assert len(listed) == len(set(listed))


def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--quiet", "-f", ROOT / "mkdocs.yml", "-d", site],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (site / "index.html").is_file()


# -- the examples -------------------------------------------------------------------------------


def scratch(root: Path) -> Path:
    """What the examples run in: the repository's recipes, models and CI files, nothing else."""
    shutil.copytree(RECIPES, root / "recipes")
    shutil.copytree(MODELS, root / "models", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs" / "ci", root / "docs" / "ci")
    return root


@pytest.fixture(scope="module")
def shared(tmp_path_factory, worker_id) -> tuple[Path, str]:
    """The scratch repository after the README's Python example, and the table `compress apply`
    prints for its report: made once per test run (pytest-xdist workers share it through a
    lock, as pytest-xdist's docs show)."""
    from filelock import FileLock

    if worker_id == "master":
        return quickstart_run(tmp_path_factory.mktemp("shared"))
    root = tmp_path_factory.getbasetemp().parent  # one per run, shared by its workers
    printed = root / "docs-shared.txt"
    with FileLock(str(root / "docs-shared.lock")):
        if not printed.exists():
            shutil.rmtree(root / "docs-shared", ignore_errors=True)  # a failed try's
            printed.write_text(quickstart_run(root / "docs-shared")[1], encoding="utf-8")
    return root / "docs-shared", printed.read_text(encoding="utf-8")


def quickstart_run(directory: Path) -> tuple[Path, str]:
    from rich.console import Console

    import compress
    from compress.report.table import print_table

    directory.mkdir(exist_ok=True)
    root = scratch(directory)
    block = next(block for block in BLOCKS if block.key == SHARED_EXAMPLE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI", "true")
        patch.chdir(root)
        run_python(block, patch)
    table = io.StringIO()
    report = compress.Report.read(root / QUICKSTART_OUT / "report.json")
    print_table(report, Console(file=table, width=100))  # what `compress apply` prints
    return root, table.getvalue()


@pytest.fixture
def workspace(request, tmp_path) -> Path:
    """Where one example runs: a copy of the shared scratch repository when the example reads
    the quickstart's outputs, else a scratch repository of its own."""
    block = request.node.callspec.params["block"]
    if SHARED not in block.text and str(QUICKSTART_OUT) not in block.text:
        return scratch(tmp_path / "repo")
    shared = request.getfixturevalue("shared")
    return Path(shutil.copytree(shared[0], tmp_path / "repo"))


def table_rows(text: str) -> list[str]:
    """The metric column of a rich table, and the metric of each budget line."""
    rows = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    budgets = [line.split()[1] for line in text.splitlines() if line.startswith("budget ")]
    return rows + budgets


def test_quickstart_meets_its_targets(shared):
    """The README's example is the shipped quickstart, applied as shipped: 80% sparsity costs
    at most 1 point of accuracy and shrinks gzip size to <= 0.35x; every budget passes and the
    export matches the framework (tests/test_pipeline.py leaves this recipe to this run)."""
    import compress

    report = compress.Report.read(shared[0] / QUICKSTART_OUT / "report.json")
    assert report.passes[0]["achieved_sparsity"] == pytest.approx(0.8, abs=0.005)
    assert report.baseline.accuracy - report.compressed.accuracy <= 0.01
    assert report.compressed.size_gzip_bytes <= 0.35 * report.baseline.size_gzip_bytes
    assert report.compressed.export.parity_max_abs_diff < 1e-4
    assert all(budget.status == "pass" for budget in report.budgets)


def test_readme_sample_output_has_the_rows_of_a_real_run(shared):
    sample = next(b for b in BLOCKS if b.page == "README.md" and b.lang == "text")
    assert sample.text.startswith("digits-cnn-pruned-80 (torch)")
    assert table_rows(sample.text) == table_rows(shared[1])


@pytest.mark.parametrize("block", runnable({"bash", "console"}))
def test_shell_example_runs(block, workspace):
    lines = block.text.splitlines()
    if block.lang == "console":  # the commands after a prompt; the rest is their output
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    shared = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == SHARED]
    for index in shared:  # it already ran: its outputs are in the workspace
        lines[index] = ": the shared run"
    script = "\n".join(lines)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=workspace,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CI": "true"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{block.name}\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("block", runnable({"python"}))
def test_python_example_runs(block, workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("CI", "true")
    run_python(block, monkeypatch)
    assert capsys.readouterr().out, "an example shows what it computed"


def run_python(block: Block, patch: pytest.MonkeyPatch) -> None:
    """Execute a Python example in the working directory, importing its `models`."""
    patch.syspath_prepend(str(Path.cwd()))
    for name in workspace_models():
        patch.delitem(sys.modules, name)  # the examples import the workspace's models
    code = compile(block.text, f"{block.page} (line {block.line})", "exec")
    try:
        exec(code, {"__name__": "__docs__"})
    finally:
        for name in workspace_models():
            del sys.modules[name]


def workspace_models() -> list[str]:
    return [name for name in sys.modules if name == "models" or name.startswith("models.")]


def quickstart() -> dict:
    return yaml.safe_load((RECIPES / "quickstart.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("block", runnable({"yaml"}))
def test_yaml_example_is_valid(block, tmp_path):
    import compress
    from compress.check import load_budget_file

    data = yaml.safe_load(textwrap.dedent(block.text))
    if not isinstance(data, dict) or ("passes" not in data and "budgets" not in data):
        return  # a piece of a CI workflow: parsing is all
    root = scratch(tmp_path)
    path = root / "recipes" / "example.yaml"
    if "version" in data and "model" not in data:  # a budget file
        path.write_text(block.text, encoding="utf-8")
        load_budget_file(path)
        shipped = yaml.safe_load((ROOT / "docs" / "ci" / "budgets.yaml").read_text())
        assert data == shipped, "the budget file shown is docs/ci/budgets.yaml"
        return
    if "version" not in data:  # a passes fragment: in the quickstart in place of its own
        data = {**quickstart(), "passes": data["passes"]}
    elif data.get("name") == quickstart()["name"]:
        assert data == quickstart(), "the quickstart shown is recipes/quickstart.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    compress.load_recipe(path)
