"""report.html (self-contained: charts embedded, no external URL) and report.md (under 64 KB),
on a real report produced by `compress.apply` on the seed MLP; variants edit its JSON."""

from __future__ import annotations

import base64
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import seed_mlp_recipe

import compress
from compress.report.html import render_html
from compress.report.markdown import MAX_BYTES, render_markdown
from compress.report.schema import Report

CHARTS = ("chart-size", "chart-sparsity", "chart-latency")


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> Path:
    """One real report per module (the seed MLP pruned to 50%, with a budget)."""
    root = tmp_path_factory.mktemp("html")
    recipe = root / "recipe.yaml"
    raw = seed_mlp_recipe(budgets={"sparsity": {"min": 0.4}})
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    compress.apply(recipe, output_dir=root / "out", progress=False)
    return root / "out"


@pytest.fixture
def data(produced) -> dict:
    return json.loads((produced / "report.json").read_text())


class Page(HTMLParser):
    """What the tests look at: ids, images (with the figure they sit in), links, scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[dict] = []
        self.figure: str | None = None
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        self.attributes += [(k, v or "") for k, v in attrs]
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "figure":
            self.figure = attributes.get("id")
        if tag == "img":
            self.images.append({**attributes, "figure": self.figure})

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figure = None


def svg_of(image: dict) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert image["src"].startswith(prefix)
    return base64.b64decode(image["src"][len(prefix) :]).decode("utf-8")


def test_apply_writes_report_html_with_every_chart(produced):
    text = (produced / "report.html").read_text()
    report = json.loads((produced / "report.json").read_text())
    assert report["artifacts"]["report_html"] == "report.html"
    page = Page(text)
    assert {"summary", "budgets", "charts", "layers", "environment", "recipe"} <= page.ids
    by_figure = {image["figure"]: image for image in page.images}
    for chart in CHARTS:
        assert chart in page.ids
        svg = svg_of(by_figure[chart])  # embedded, decodes to an SVG document
        assert "<svg" in svg and "</svg>" in svg
        assert image_alt(by_figure[chart])


def image_alt(image: dict) -> str:
    return image.get("alt", "")


def test_report_html_is_self_contained(produced):
    text = (produced / "report.html").read_text()
    page = Page(text)
    assert not re.search(r"https?://|//cdn|file://", text)  # no external URL anywhere
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    for name, value in page.attributes:
        if name in ("src", "href"):
            assert value.startswith("data:"), (name, value[:40])
    assert "@import" not in text and "url(" not in text


def test_summary_cards_compare_baseline_and_compressed(produced, data):
    text = (produced / "report.html").read_text()
    summary = text[text.index('id="summary"') : text.index('id="budgets"')]
    for label in ("size", "size (gzip)", "params", "sparsity", "latency p50", "accuracy"):
        assert f'<div class="label">{label}</div>' in summary
    accuracy = data["baseline"]["accuracy"]
    assert f"baseline {accuracy:.2%}" in summary
    ratio = data["compressed"]["size_gzip_bytes"] / data["baseline"]["size_gzip_bytes"]
    assert f"{ratio:.2f}x" in summary


def test_latency_samples_are_recorded_and_plotted(produced, data):
    for section in ("baseline", "compressed"):
        latency = data[section]["latency_ms"]
        assert len(latency["samples"]) == latency["runs"] == 10
        assert min(latency["samples"]) <= latency["p50"] <= max(latency["samples"])
    text = (produced / "report.html").read_text()
    assert "Cumulative distribution of every timed run" in text
    svg = svg_of(next(i for i in Page(text).images if i["figure"] == "chart-latency"))
    assert svg.count("<path") > 4


def test_a_report_without_samples_still_renders(data):
    """Reports written before `samples` existed still read and render (backwards compatible)."""
    for section in ("baseline", "compressed"):
        del data[section]["latency_ms"]["samples"]
    report = Report.model_validate(data)
    assert report.compressed.latency_ms.samples is None
    text = render_html(report)
    assert "no per-run samples" in text and 'id="chart-latency"' in text
    data["baseline"]["latency_ms"] = data["compressed"]["latency_ms"] = None
    text = render_html(Report.model_validate(data))
    assert "Latency was not measured" in text


def test_layer_table_shows_each_dtype(data):
    data["layers"][0]["dtype"] = "int8"
    data["layers"][1]["dtype"] = "int4"
    text = render_html(Report.model_validate(data))
    table = text[text.index('id="layer-table"') :]
    assert '<span class="dtype q">int8</span>' in table
    assert '<span class="dtype q">int4</span>' in table
    assert "1 int8, 1 int4" in text


def test_environment_and_recipe_are_shown(produced, data):
    text = (produced / "report.html").read_text()
    environment = text[text.index('id="environment"') : text.index('id="recipe"')]
    assert data["environment"]["onnxruntime"] in environment
    assert data["environment"]["torch"] in environment
    recipe = text[text.index('id="recipe"') :]
    assert "name: seed-mlp-test" in recipe and "sparsity: 0.5" in recipe


def many_layers(data: dict, count: int) -> Report:
    report = copy.deepcopy(data)
    report["layers"] = [
        {
            "name": f"encoder|block_{i}.<script>alert(1)</script>" + "x" * 200,
            "params": 1000 + i,
            "sparsity": (i % 10) / 10,
            "dtype": ("int8", "int4", "float32")[i % 3],
            "baseline_sparsity": 0.0,
        }
        for i in range(count)
    ]
    report["notes"] = ["a long note " * 50] * 20
    return Report.model_validate(report)


def test_html_escapes_and_folds_many_layers(data):
    text = render_html(many_layers(data, 500))
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<details><summary>show all 500 layers</summary>" in text
    assert text.count("<tr><td><code>") == 500
    svg = svg_of(next(i for i in Page(text).images if i["figure"] == "chart-sparsity"))
    assert "<svg" in svg  # the strip chart for many layers


def test_report_md_stays_under_64_kb(produced, data):
    assert (produced / "report.md").stat().st_size < 64_000
    for count in (41, 5_000):
        text = render_markdown(many_layers(data, count))
        assert len(text.encode("utf-8")) <= MAX_BYTES < 64_000
        assert "more in report.json and report.html" in text
        assert "| encoder\\|block_0." in text  # pipes escaped inside table cells
    # even a pathological report (huge pass records) is cut, not left over the limit
    huge = many_layers(data, 10)
    huge.passes = [{"type": "prune", "why": "y" * 1000} for _ in range(500)]
    text = render_markdown(huge)
    assert len(text.encode("utf-8")) <= MAX_BYTES
    assert text.endswith("(cut to stay under 64 KB; see report.json and report.html)\n")
