"""The report contract (schema_version 1). Fields keep their meaning; new ones may be added,
so reading tolerates unknown keys and keeps them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from compress.atomic import read_text_or_fail
from compress.errors import UsageError
from compress.metrics import LATENCY_NOISE
from compress.passes import AnyRecord

SCHEMA_VERSION = 1
#: A compressed model whose p50 speed-up is below this is flagged as slower (beyond the noise).
SLOWER_THRESHOLD = 1 / (1 + LATENCY_NOISE)


class Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class Latency(Section):
    p50: float
    p90: float
    mean: float
    runs: int
    #: Per-run times in ms, in run order (added later: reports written before have none).
    samples: list[float] | None = None


class ExportRecord(Section):
    exporter: str
    opset: int
    parity_max_abs_diff: float


class Generation(Section):
    """Generation timed with onnxruntime-genai on the model's generation folder: prefill of the
    prompt, the median time per generated token, its inverse, and the peak resident memory."""

    prefill_ms: float
    decode_ms: float
    tokens_per_s: float
    peak_rss_bytes: int | None = None
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    runs: int | None = None


class ModelMetrics(Section):
    size_bytes: int
    size_gzip_bytes: int
    params: int
    nonzero_params: int
    sparsity: float
    #: multiply-accumulates of one sample, counted on the ONNX graph (None in reports written
    #: before it was added)
    macs: int | None = None
    latency_ms: Latency | None = None
    accuracy: float | None = None
    #: exp(mean next-token negative log-likelihood) on the val windows (evaluate: perplexity)
    perplexity: float | None = None
    #: decode speed of the generation folder (measure.generation)
    generation: Generation | None = None
    export: ExportRecord | None = None


class Fidelity(Section):
    metric: str
    value: float
    max_abs_error: float | None = None


class Layer(Section):
    name: str
    params: int
    sparsity: float
    dtype: str
    baseline_sparsity: float | None = None
    #: output channels (Conv filters, MatMul/Gemm output features) of the layer, and the
    #: baseline's for the same layer; None for other weights and in older reports
    channels: int | None = None
    baseline_channels: int | None = None


class Artifacts(Section):
    onnx: str
    baseline_onnx: str | None = None
    report_json: str
    report_md: str | None = None
    report_html: str | None = None
    #: the compressed framework model, when passes changed its architecture (channel pruning)
    #: or, for a Hugging Face folder a model-stage pass changed, the compressed model folder
    model: str | None = None
    #: the generation folders (onnxruntime-genai) of both models: {baseline: DIR, compressed: DIR}
    generation: dict[str, str] | None = None


class Environment(Section):
    python: str
    onnxruntime: str
    cpu: str
    #: avx2, avx512f, avx512_vnni, avx_vnni, amx_int8, amx_bf16 as present: INT8 speed
    #: depends on them (absent in reports written before it was added)
    cpu_features: list[str] | None = None
    threads: int | None = None
    device: str | None = None
    #: the onnxruntime execution provider latency was measured with
    execution_provider: str | None = None
    torch: str | None = None
    tensorflow: str | None = None


class BudgetResult(Section):
    metric: str
    limit: str
    value: float | None
    status: Literal["pass", "warn", "fail", "new"]


class Report(Section):
    schema_version: Literal[1] = SCHEMA_VERSION
    tool_version: str
    recipe: dict
    framework: str
    baseline: ModelMetrics
    compressed: ModelMetrics
    fidelity: Fidelity | None = None
    layers: list[Layer]
    passes: list[AnyRecord]  # typed per pass type; unknown types and keys are kept
    artifacts: Artifacts
    environment: Environment
    budgets: list[BudgetResult] = []
    speedup: dict[str, float] | None = None  # baseline / compressed latency, p50 and p90
    #: how the generation folders were written: builder, seconds, parity with the framework
    #: model, the passes applied to the decoder (None without a generation export)
    generation: dict | None = None
    notes: list[str] = []

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=False) + "\n"

    @property
    def evaluate_metric(self) -> str | None:
        """The metric of the recipe's evaluate section (None without one)."""
        evaluate = (self.recipe.get("spec") or {}).get("evaluate") or {}
        return evaluate.get("metric")

    @classmethod
    def read(cls, path: Path) -> Report:
        """Load a report file. A file that cannot be read is a ReadError (exit 3); bad JSON,
        an unknown schema version or invalid content is a UsageError (exit 2)."""
        return cls.parse(read_report_text(path), path)

    @classmethod
    def parse(cls, text: str, path: Path | str = "<report>") -> Report:
        """Validate report JSON text (`path` names it in error messages)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
        if not isinstance(data, dict) or "schema_version" not in data:
            raise UsageError(f"{path}: not a compress report (no schema_version)")
        if data["schema_version"] != SCHEMA_VERSION:
            found = data["schema_version"]
            raise UsageError(
                f"{path}: unsupported report schema_version {found!r} (this tool reads "
                f"{SCHEMA_VERSION})"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise UsageError(f"{path}: invalid report: {where}: {first['msg']}") from exc


def read_report_text(path: Path | str) -> str:
    """The text of a report file; a missing or unreadable file is a ReadError (exit 3)."""
    return read_text_or_fail(path, "report file")
