"""The recipe (version 1): its pydantic schema, and loading YAML with file:line:col errors.

Read this first: every other module takes a `Recipe`. Unknown keys are errors everywhere;
paths are relative to the recipe file; sizes accept units.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from compress.errors import ModelError, RecipeError
from compress.generation.source import SUPPORTED_ARCHITECTURES
from compress.metrics import limits_model
from compress.model_folders import TOKEN_INPUT, architecture, is_causal_lm, read_config, vocab_size
from compress.passes import AnyPass
from compress.passes.registry import foreign_field
from compress.schema import StrictModel
from compress.suggest import closest, closest_key
from compress.units import parse_size
from compress.yaml_source import Located, load_yaml, locate

TORCH_FILE_SUFFIXES = (".pt", ".pth")
KERAS_FILE_SUFFIXES = (".keras", ".h5")
ONNX_FILE_SUFFIXES = (".onnx",)
MODEL_FILE_SUFFIXES = TORCH_FILE_SUFFIXES + KERAS_FILE_SUFFIXES + ONNX_FILE_SUFFIXES


class InputSpec(StrictModel):
    """One model input: a dimension is a size, -1 or a name (both dynamic)."""

    name: str
    shape: list[int | str] = Field(..., min_length=1)
    dtype: Literal["float32", "float16", "int64", "int32", "bool"] = "float32"
    range: tuple[float, float] | None = Field(
        None,
        description="[low, high) of generated values (parity, latency and export inputs when "
        "no data is given); default: floats ~ N(0, 1), integers 1 (0 for *type_ids)",
    )

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: list[int | str]) -> list[int | str]:
        for dim in shape:
            if isinstance(dim, int) and dim < 1 and dim != -1:
                raise ValueError("a dimension is a positive size, -1 or a name")
        return shape

    @model_validator(mode="after")
    def _range(self) -> InputSpec:
        if self.range is None:
            return self
        low, high = self.range
        if not low < high:
            raise ValueError(f"range [{low:g}, {high:g}): low must be below high")
        whole = low.is_integer() and high.is_integer()
        if self.dtype in ("int64", "int32", "bool") and not whole:
            raise ValueError(f"range of a {self.dtype} input takes whole numbers")
        return self


class ModelSpec(StrictModel):
    """Where the model comes from: a builder ("file.py:fn" / "pkg.mod:fn") or a model file."""

    source: str | None = Field(
        None, description="omitted: the model object is given to compress.apply or a session"
    )
    weights: str | None = Field(
        None, description="torch: .safetensors or .pt/.pth state dict; Keras: .weights.h5"
    )
    framework: Literal["torch", "keras", "tf_keras", "onnx"] | None = Field(
        None, description="inferred from the model; keras = Keras 3, tf_keras = Keras 2"
    )
    inputs: list[InputSpec] | None = Field(
        None,
        min_length=1,
        description="required unless source is a Hugging Face model folder (its task defines "
        "them: input_ids of [batch, data.seq_len])",
    )
    trust: bool = Field(
        False, description="allow model files that run code when loaded (full pickles)"
    )


class TextSplits(StrictModel):
    """Text per split: a .txt/.md file or a folder of them, tokenized by the model folder's
    tokenizer as one stream and cut into windows of data.seq_len tokens."""

    train: str | None = None
    val: str | None = None
    calibration: str | None = Field(
        None, description="default: the first windows of train (calibration.samples of them)"
    )

    def paths(self) -> dict[str, str]:
        """The splits given, by name."""
        return {name: path for name, path in self.model_dump().items() if path is not None}


#: The most tokens a window may hold (a context length no small model has).
MAX_SEQ_LEN = 131_072


class DataSpec(StrictModel):
    """Where samples come from: a callable `source` returning {"train": (x, y), "val": (x, y),
    "calibration": x or (x, y)} (a split may be a list of strings for a language model), or
    `text` files for a language model."""

    source: str | None = None
    text: TextSplits | None = None
    seq_len: int = Field(
        128, ge=2, le=MAX_SEQ_LEN, description="tokens per window of text (language models)"
    )
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _one_origin(self) -> DataSpec:
        if (self.source is None) == (self.text is None):
            raise ValueError("give data.source (a callable) or data.text (files), one of them")
        if self.text is not None and not self.text.paths():
            raise ValueError("data.text names no split: give train, val or calibration")
        return self

    @property
    def origin(self) -> str:
        """What the data comes from, for messages: the callable, or "data.text"."""
        return self.source or "data.text"


class OptimizerSpec(StrictModel):
    type: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)


class TrainSpec(StrictModel):
    """Fine-tuning used by passes that train."""

    epochs: int = Field(..., ge=1)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    loss: Literal["cross_entropy", "mse", "bce_with_logits"] = "cross_entropy"
    seed: int = 0


#: The evaluate metrics the toolkit computes itself (others are "file.py:fn" references).
BUILTIN_METRICS = ("accuracy", "top5", "mse", "cosine", "perplexity")


class EvaluateSpec(StrictModel):
    metric: str = Field(
        "accuracy", description='accuracy | top5 | mse | cosine | perplexity | "file.py:fn"'
    )

    @field_validator("metric")
    @classmethod
    def _known(cls, metric: str) -> str:
        if metric not in BUILTIN_METRICS and ":" not in metric:
            raise ValueError(
                'use accuracy, top5, mse, cosine, perplexity or a function "file.py:fn"'
            )
        return metric


class ExportSpec(StrictModel):
    format: Literal["onnx"] = "onnx"
    exporter: Literal["auto", "dynamo", "torchscript"] = Field(
        "auto",
        description="PyTorch models: auto exports with both exporters when the recipe measures "
        "latency and keeps the graph that runs faster on this CPU (else dynamo); dynamo falls "
        "back to TorchScript when it fails",
    )
    opset: int = Field(18, ge=13, le=23)
    path: str | None = Field(
        None,
        description="where the compressed ONNX file goes (the reports beside it); default "
        "out/<recipe file name>/model.onnx beside the recipe, so recipes never share outputs",
    )
    parity_tolerance: float = Field(
        1e-4, gt=0, description="max |onnx - framework| allowed, relative to max(1, |output|)"
    )
    quantized_parity_tolerance: float = Field(
        0.1, gt=0, description="the same for QAT models, whose rounding differs by a step"
    )
    generation: bool | None = Field(
        None,
        description="also write both models as onnxruntime-genai folders (KV-cache decoder, "
        "tokenizer, genai_config.json); default: when measure.generation is set",
    )

    @field_validator("path")
    @classmethod
    def _onnx_suffix(cls, path: str | None) -> str | None:
        if path is not None and not path.endswith(".onnx"):
            raise ValueError("the export path must end with .onnx")
        return path


#: Bounds of the latency settings, so that a measurement cannot run for hours or exhaust memory.
MAX_RUNS = 100_000
MAX_WARMUP = 10_000
MAX_BATCH = 4096
MAX_DIM = 1_000_000
#: The most threads a session may take even with `force` (onnxruntime's pools per thread).
MAX_THREADS = 1024


class LatencySpec(StrictModel):
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int = Field(
        1, ge=1, le=MAX_THREADS, description="at most this machine's cores unless force is set"
    )
    warmup: int = Field(10, ge=0, le=MAX_WARMUP)
    runs: int = Field(100, ge=1, le=MAX_RUNS)
    batch_size: int = Field(1, ge=1, le=MAX_BATCH)
    dims: dict[str, Annotated[int, Field(ge=1, le=MAX_DIM)]] = Field(
        default_factory=dict, description="sizes of named dynamic dimensions other than batch"
    )
    max_seconds: float = Field(
        120.0, gt=0, le=3600, description="timing stops after this long (the runs done count)"
    )
    force: bool = Field(False, description="allow more threads than this machine has cores")

    @model_validator(mode="after")
    def _threads_fit(self) -> LatencySpec:
        cores = os.cpu_count() or 1
        if self.threads > cores and not self.force:
            raise ValueError(
                f"threads {self.threads} is more than this machine's {cores} core(s): the "
                "timing would measure the thread pool's contention; set force: true to "
                "measure anyway"
            )
        return self


class GenerationSpec(StrictModel):
    """Generation timed with onnxruntime-genai on both models' generation folders: a prompt of
    `prompt_tokens` from the val text, then `new_tokens` greedy steps, `runs` times, interleaved."""

    prompt_tokens: int = Field(64, ge=1, le=MAX_SEQ_LEN)
    new_tokens: int = Field(128, ge=1, le=MAX_SEQ_LEN)
    threads: int = Field(1, ge=1, le=MAX_THREADS)
    runs: int = Field(3, ge=1, le=1000)
    device: Literal["cpu", "cuda"] = "cpu"


class MeasureSpec(StrictModel):
    latency: LatencySpec | None = Field(default_factory=LatencySpec)
    generation: GenerationSpec | None = Field(
        None, description="decode speed of causal LMs (builds the generation folders)"
    )


class Limit(StrictModel):
    """A budget: an upper and/or lower bound."""

    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Limit:
        """A limit bounds something, and a range is not empty: `{}` would silently check
        nothing, `min` above `max` would fail every run only after the run."""
        if self.max is None and self.min is None:
            raise ValueError("a budget needs max, min or both")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no value can pass")
        return self


class SizeLimit(Limit):
    @field_validator("max", "min", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return None if value is None else parse_size(value)


#: One optional field per budget metric of the catalogue (compress/metrics.py).
Budgets = limits_model(
    "Budgets",
    Limit,
    sized=SizeLimit,
    module=__name__,
    doc="Limits checked after apply and by `compress check`.",
)


class Recipe(StrictModel):
    version: Literal[1]
    name: str = Field(..., min_length=1)
    model: ModelSpec
    data: DataSpec | None = None
    train: TrainSpec | None = None
    evaluate: EvaluateSpec | None = None
    passes: list[AnyPass] = Field(default_factory=list)
    export: ExportSpec = Field(default_factory=ExportSpec)
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    budgets: Budgets | None = None

    _path: Path | None = PrivateAttr(None)
    _source: Located | None = PrivateAttr(None)
    _base_dir: Path | None = PrivateAttr(None)

    @property
    def base_dir(self) -> Path:
        """The directory recipe paths are relative to: the file's, the `base_dir` a recipe given
        as data was loaded with, else the cwd."""
        if self._path:
            return self._path.parent
        return self._base_dir or Path.cwd()

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def as_written(self) -> dict | None:
        """The mapping the recipe file parsed to (None for a recipe given as data)."""
        data = self._source.data if self._source else None
        return data if isinstance(data, dict) else None

    @property
    def eval_batch(self) -> int:
        """Batch size for running the model over a split: the model's fixed batch dimension,
        else data.batch_size, else 64."""
        first = self.model.inputs[0].shape[0]
        if isinstance(first, int) and first > 0:
            return first
        return self.data.batch_size if self.data else 64

    @property
    def export_path(self) -> str:
        """export.path, else out/<recipe file name>/model.onnx (the recipe's `name` for a
        recipe given as data): a folder per recipe, so two recipes never write over each
        other's reports."""
        if self.export.path is not None:
            return self.export.path
        stem = self._path.stem if self._path else re.sub(r"[^\w.-]+", "-", self.name)
        return f"out/{stem}/model.onnx"

    @property
    def generation_wanted(self) -> bool:
        """Whether apply writes the generation folders: export.generation, else whether
        measure.generation times them."""
        if self.export.generation is not None:
            return self.export.generation
        return self.measure.generation is not None

    @property
    def model_folder(self) -> Path | None:
        """model.source resolved, when it is a directory (a Hugging Face model folder)."""
        source = self.model.source
        if source is None or referenced_file(source) != source:  # a builder "file.py:fn"
            return None
        path = self.resolve(source)
        return path if path.is_dir() else None

    @property
    def causal_lm(self) -> bool:
        """Whether model.source is a model folder of a causal LM (input_ids -> logits)."""
        folder = self.model_folder
        return folder is not None and is_causal_lm(read_config(folder))

    def resolve(self, relative: str) -> Path:
        """A recipe path made absolute against the recipe's directory."""
        return (self.base_dir / relative).resolve()

    def error_at(self, loc: tuple[str | int, ...], message: str) -> RecipeError:
        """A RecipeError pointing at the recipe location of `loc` (when loaded from a file)."""
        dotted = ".".join(str(part) for part in loc)
        if self._source is None:
            return RecipeError(f"{dotted}: {message}")
        return RecipeError(f"{locate(self._source, loc)}: {dotted}: {message}")


def load_recipe(
    source: str | Path | Mapping[str, Any], base_dir: str | Path | None = None
) -> Recipe:
    """Load and validate a recipe file, or a recipe given as data (a dict as its YAML would
    parse, paths relative to `base_dir`, default the cwd); raises RecipeError, with
    file:line:col for files and the field's dotted path for data.

    This checks what every usage needs; `check_usage` adds what `compress apply` or a
    CompressionSession needs besides (train and data, for the built-in trainer)."""
    if isinstance(source, Mapping):
        recipe = _validate(dict(source), None)
        recipe._base_dir = Path(base_dir or Path.cwd()).resolve()
    else:
        recipe = parse_recipe(load_yaml(Path(source)))
    _derive_inputs(recipe)
    _check_consistency(recipe)
    return recipe


def _derive_inputs(recipe: Recipe) -> None:
    """model.inputs of a Hugging Face folder when the recipe omits them: the task's token ids,
    [batch, data.seq_len] (128 without data), ids drawn below the vocabulary size."""
    if recipe.model.inputs is not None:
        return
    folder = recipe.model_folder
    if folder is None:
        raise recipe.error_at(
            ("model", "inputs"),
            "required unless model.source is a Hugging Face model folder: list each input's "
            "name, shape and dtype",
        )
    try:
        vocab = vocab_size(read_config(folder))
    except ModelError as exc:
        raise recipe.error_at(("model", "source"), str(exc)) from None
    seq_len = recipe.data.seq_len if recipe.data else DataSpec.model_fields["seq_len"].default
    recipe.model.inputs = [
        InputSpec(
            name=TOKEN_INPUT, shape=["batch", seq_len], dtype="int64", range=(0, float(vocab))
        )
    ]


def as_recipe(
    recipe: Recipe | str | Path | Mapping[str, Any], base_dir: str | Path | None = None
) -> Recipe:
    """A Recipe as it is, else loaded (from a file, or from data relative to `base_dir`)."""
    return recipe if isinstance(recipe, Recipe) else load_recipe(recipe, base_dir)


def parse_recipe(source: Located) -> Recipe:
    """Validate parsed YAML against the schema, translating errors to file:line:col lines."""
    if not isinstance(source.data, dict):
        raise RecipeError(f"{source.path}:1:1: a recipe is a mapping with version, name, model")
    recipe = _validate(source.data, source)
    recipe._path = source.path.resolve()
    recipe._source = source
    return recipe


def _validate(data: dict, source: Located | None) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        lines = [_format_error(source, error, data) for error in exc.errors()]
        raise RecipeError("\n".join(dict.fromkeys(lines))) from None


def _format_error(source: Located | None, error: Any, data: dict) -> str:
    # a tagged union's tag ("<level>") names the alternative tried, not a recipe key
    loc = tuple(part for part in error["loc"] if not str(part).startswith("<"))
    dotted = ".".join(str(part) for part in loc)
    message = error["msg"].removeprefix("Value error, ")  # pass types: the registry's words
    value_guess = _closest_value(error)
    if value_guess:
        message += f"; did you mean {value_guess!r}?"
    if error["type"] == "extra_forbidden":
        message = _other_algorithms_key(data, loc) or "unknown key (not part of recipe version 1)"
        suggestion = closest_key(Recipe, data, loc)
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
    if source is None:
        return f"{dotted}: {message}"
    where = locate(source, loc, at_key=error["type"] == "extra_forbidden")
    return f"{where}: {dotted}: {message}"


def _closest_value(error: Any) -> str | None:
    """For a value that is not one of the allowed names (a literal, a pass type): the closest."""
    given = error.get("input")
    context = error.get("ctx") or {}
    if error["type"] == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(context.get("expected", "")))
    elif error["type"] == "union_tag_invalid":
        given = context.get("tag", given)
        allowed = [name.strip() for name in str(context.get("known", "")).split(",")]
    else:
        return None
    return closest(given, allowed) if isinstance(given, str) else None


def _other_algorithms_key(data: dict, loc: tuple) -> str | None:
    """For a pass key that another algorithm of the pass's type takes: which one."""
    if len(loc) != 3 or loc[0] != "passes" or not isinstance(loc[1], int):
        return None
    passes = data.get("passes")
    if not isinstance(passes, list) or loc[1] >= len(passes):
        return None
    return foreign_field(passes[loc[1]], str(loc[2]))


def _check_consistency(recipe: Recipe) -> None:
    """Checks that span sections and that every usage needs: files exist, evaluation and
    calibration have data, ONNX passes come last, budgets refer to figures the recipe measures.
    What only one usage needs is in `usage_problems`."""
    problems: list[RecipeError] = []
    spec = recipe.model
    referenced = [
        (("model", "source"), spec.source),
        (("model", "weights"), spec.weights),
        (("data", "source"), recipe.data.source if recipe.data else None),
    ]
    for index, config in enumerate(recipe.passes):
        referenced += [(("passes", index, *loc), ref) for loc, ref in config.references()]
    for loc, reference in referenced:
        file = referenced_file(reference) if reference else None
        folder_allowed = loc[-1] == "source"  # a Hugging Face model folder
        if file and not (
            recipe.resolve(file).is_file() or (folder_allowed and recipe.resolve(file).is_dir())
        ):
            where = recipe.resolve(file)
            relative = (
                ""
                if Path(file).is_absolute()
                else f" (paths are relative to the recipe's folder {recipe.base_dir})"
            )
            problems.append(
                recipe.error_at(loc, f"no such file: {file}, looked for {where}{relative}")
            )
    problems += _text_problems(recipe)
    if recipe.evaluate and recipe.data is None:
        problems.append(recipe.error_at(("evaluate",), "evaluation needs a data section"))
    first_onnx_pass = None
    for index, config in enumerate(recipe.passes):
        problems += config.recipe_problems(recipe, index)
        if config.stage == "onnx":
            first_onnx_pass = index if first_onnx_pass is None else first_onnx_pass
        elif first_onnx_pass is not None:
            problems.append(
                recipe.error_at(
                    ("passes", index),
                    f"this pass changes the framework model, but pass {first_onnx_pass} before it "
                    "works on the exported ONNX file: put post-training quantization last",
                )
            )
    budgets = recipe.budgets
    if budgets and (budgets.accuracy or budgets.accuracy_drop) and recipe.evaluate is None:
        problems.append(recipe.error_at(("budgets",), "accuracy budgets need an evaluate section"))
    if (
        budgets
        and (budgets.latency_p50_ms or budgets.latency_p90_ms)
        and (recipe.measure.latency is None)
    ):
        problems.append(recipe.error_at(("budgets",), "latency budgets need measure.latency"))
    perplexity = recipe.evaluate is not None and recipe.evaluate.metric == "perplexity"
    if budgets and (budgets.perplexity or budgets.perplexity_increase) and not perplexity:
        problems.append(
            recipe.error_at(("budgets",), "perplexity budgets need evaluate: {metric: perplexity}")
        )
    timed = recipe.measure.generation is not None
    if budgets and (budgets.prefill_ms or budgets.decode_tokens_per_s) and not timed:
        problems.append(recipe.error_at(("budgets",), "generation budgets need measure.generation"))
    problems += _generation_problems(recipe)
    problems += _unknown_dims(recipe)
    _raise_all(problems)


def _text_problems(recipe: Recipe) -> list[RecipeError]:
    """data.text's files exist, and a tokenizer is there to read them: the model folder's."""
    text = recipe.data.text if recipe.data else None
    if text is None:
        return []
    problems = [
        recipe.error_at(
            ("data", "text", split),
            f"no such file or folder: {path}, looked for {recipe.resolve(path)}",
        )
        for split, path in text.paths().items()
        if not recipe.resolve(path).exists()
    ]
    if recipe.model_folder is None:
        problems.append(
            recipe.error_at(
                ("data", "text"),
                "text is tokenized by the model folder's tokenizer: model.source must be a "
                "Hugging Face model folder (or give data.source a callable returning arrays)",
            )
        )
    return problems


def _generation_problems(recipe: Recipe) -> list[RecipeError]:
    """Generation folders are written from a causal LM's Hugging Face folder."""
    if not recipe.generation_wanted:
        return []
    section = "measure" if recipe.export.generation is None else "export"
    loc = (section, "generation")
    folder = recipe.model_folder
    if folder is None:
        return [
            recipe.error_at(
                loc,
                "generation folders are exported from a Hugging Face causal LM folder: set "
                "model.source to one (config.json, *.safetensors, tokenizer)",
            )
        ]
    try:
        config = read_config(folder)
    except ModelError as exc:
        return [recipe.error_at(("model", "source"), str(exc))]
    causal, name = is_causal_lm(config), architecture(config)
    if not causal:
        return [
            recipe.error_at(
                loc,
                f"{folder.name} is not a causal LM (config.architectures has no *ForCausalLM): "
                "only a decoder generates",
            )
        ]
    if name not in SUPPORTED_ARCHITECTURES:
        return [
            recipe.error_at(
                loc,
                f"{folder.name} is a {name}, which onnxruntime-genai's model builder cannot "
                f"write as a generation folder; supported: {', '.join(SUPPORTED_ARCHITECTURES)}",
            )
        ]
    return [
        recipe.error_at(
            ("passes", index),
            "this pass changes the model's shapes, and a model folder's config is not yet "
            "rewritten to match them: its generation folder cannot be built (set "
            "export.generation: false)",
        )
        for index, config in enumerate(recipe.passes)
        if config.reshapes
    ]


def _unknown_dims(recipe: Recipe) -> list[RecipeError]:
    """measure.latency.dims names that no model input has: a typo would leave the dimension
    unset."""
    latency = recipe.measure.latency
    named = {dim for spec in recipe.model.inputs for dim in spec.shape if isinstance(dim, str)}
    return [
        recipe.error_at(
            ("measure", "latency", "dims", name),
            f"no model input has a dimension named {name!r} (named: "
            f"{', '.join(sorted(named)) or 'none'})",
        )
        for name in (latency.dims if latency else {})
        if name not in named
    ]


Usage = Literal["apply", "session"]
USAGE_NAMES: dict[str, str] = {"apply": "compress apply", "session": "CompressionSession"}


def usage_problems(recipe: Recipe, usage: Usage) -> list[RecipeError]:
    """What keeps a valid recipe from running in one usage: `apply` (the built-in trainer) or
    `session` (the user's own training loop)."""
    return _apply_problems(recipe) if usage == "apply" else _session_problems(recipe)


def check_usage(recipe: Recipe, usage: Usage) -> Recipe:
    """Raise every problem of `usage_problems` as one RecipeError; returns the recipe."""
    _raise_all(usage_problems(recipe, usage))
    return recipe


def _apply_problems(recipe: Recipe) -> list[RecipeError]:
    """The built-in trainer fine-tunes from the recipe: training passes need train and data,
    and what each pass asks besides (schedules must end within train.epochs)."""
    problems: list[RecipeError] = []
    for index, config in enumerate(recipe.passes):
        if not config.trains:
            continue
        if recipe.train is None or recipe.data is None:
            problems.append(
                recipe.error_at(
                    ("passes", index),
                    "this pass fine-tunes: add train and data (compress apply trains with "
                    "them; a CompressionSession needs neither)",
                )
            )
            continue
        problems += config.apply_problems(recipe, index)
    return problems


def _session_problems(recipe: Recipe) -> list[RecipeError]:
    """A session runs the passes that say they can (`session_refusal` is None); each other
    pass says why not."""
    problems: list[RecipeError] = []
    for index, config in enumerate(recipe.passes):
        why = config.session_refusal
        if why is not None:
            problems.append(
                recipe.error_at(
                    ("passes", index),
                    f"a session cannot run this pass ({why}): run this pass with `compress apply`",
                )
            )
    return problems


def _raise_all(problems: list[RecipeError]) -> None:
    if problems:
        raise RecipeError("\n".join(str(problem) for problem in problems))


def referenced_file(reference: str) -> str | None:
    """The file a reference names: "dir/file.py:fn" -> "dir/file.py", a plain path -> itself,
    "pkg.module:fn" -> None (found by import, not a file)."""
    if ":" not in reference:
        return reference
    module = reference.rsplit(":", 1)[0]
    return module if module.endswith(".py") else None
