"""The pipeline's generation step for causal LMs: both models written as onnxruntime-genai
folders (a KV-cache decoder from the ONNX Runtime project's model builder, the recipe's
ONNX-stage passes applied to it), checked against the framework model, and timed.

The report's other figures (size, perplexity, latency) are of the fixed-length forward graph
that every model gets; the generation folder is the deployable decoder, with the same weights
quantized the same way, and its parity with the framework model is checked here."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from compress.backends.base import PassContext
from compress.data import Splits
from compress.generation.build import Transform
from compress.passes.registry import GENERATION, role_for
from compress.progress import Reporter
from compress.recipe import Recipe

#: Greedy tokens compared between the float generation folder and the framework model.
PARITY_TOKENS = 32


@dataclass(frozen=True)
class GenerationFolders:
    """The two folders and what building them recorded (builder, seconds, parity, the passes
    applied to the decoder)."""

    baseline: Path
    compressed: Path
    record: dict


def generation_transforms(recipe: Recipe, context: PassContext | None = None) -> list[Transform]:
    """The recipe's ONNX-stage passes as functions (source, target) -> record on a decoder
    graph, when the recipe writes generation folders; a pass that has none is a recipe error at
    its line (checked by `compress validate` and before `compress apply` does any work). With
    the run's `context`, each reuses what its pass chose on the exported file."""
    if not recipe.generation_wanted:
        return []
    transforms = []
    for index, config in enumerate(recipe.passes):
        if config.stage != "onnx":
            continue
        handler = role_for(GENERATION, config)
        if handler is None:
            raise recipe.error_at(
                ("passes", index),
                "this pass cannot be applied to a generation (KV-cache) decoder: use "
                "quantize mode weight_only, or set export.generation: false",
            )
        transforms.append(lambda source, target, c=config, h=handler: h(source, target, c, context))
    return transforms


def build_folders(
    context: PassContext, paths: dict[str, Path], compressed_source: Path
) -> GenerationFolders:
    """Write the baseline folder (paths["baseline"]) from the recipe's model folder, and the
    compressed one from `compressed_source` (the compressed model's folder) with the recipe's
    ONNX-stage passes applied; check the float one against the framework model on a prompt
    of real text."""
    from compress.generation import build_generation_folder, check_generation_parity

    recipe = context.recipe
    source = recipe.model_folder
    assert source is not None  # the recipe checks generation needs a model folder
    context.reporter.stage("writing the generation folders")
    baseline = build_generation_folder(source, paths["baseline"])
    compressed = build_generation_folder(
        compressed_source, paths["compressed"], generation_transforms(recipe, context)
    )
    context.reporter.stage("checking the generation folder against the framework model")
    prompt = prompt_ids(recipe, context.data, min(64, recipe.data.seq_len if recipe.data else 64))
    parity = check_generation_parity(source, baseline.folder, prompt, PARITY_TOKENS)
    record = {
        "builder": f"onnxruntime-genai {package_version('onnxruntime-genai')} model builder",
        "architecture": baseline.architecture,
        "seconds": round(baseline.seconds + compressed.seconds, 1),
        "parity": parity,
        "decoder_passes": compressed.transforms,
        "notes": [*baseline.notes, *compressed.notes],
    }
    return GenerationFolders(baseline.folder, compressed.folder, record)


def prompt_ids(recipe: Recipe, data: Splits, tokens: int) -> np.ndarray:
    """`tokens` token ids to prompt with: the start of the val text (else calibration, else
    train), or, without text, ids drawn below the vocabulary size with a fixed seed."""
    for name in ("val", "calibration", "train"):
        split = data.get(name)
        if split is not None and split.inputs[0].dtype.kind in "iu":
            stream = split.inputs[0].reshape(-1)
            if len(stream) >= tokens:
                return stream[:tokens].astype(np.int64)
    spec = recipe.model.inputs[0] if recipe.model.inputs else None
    high = int(spec.range[1]) if spec is not None and spec.range else 1000
    return np.random.default_rng(0).integers(0, high, tokens, dtype=np.int64)


def time_generation(
    recipe: Recipe, folders: GenerationFolders, data: Splits, reporter: Reporter
) -> dict:
    """Both folders timed, interleaved: {baseline: {...}, compressed: {...}}."""
    from compress.generation import measure_generation

    spec = recipe.measure.generation
    assert spec is not None
    reporter.stage(
        f"timing generation ({spec.prompt_tokens} prompt + {spec.new_tokens} new tokens, "
        f"{spec.runs} runs each)"
    )
    prompt = prompt_ids(recipe, data, spec.prompt_tokens)
    pair = {"baseline": folders.baseline, "compressed": folders.compressed}
    steps = 1 + len(pair) * (1 + spec.runs)  # one untimed load, then per model a warm-up and runs
    with reporter.bar("generation", steps) as advance:
        timed = measure_generation(
            pair,
            prompt,
            new_tokens=spec.new_tokens,
            runs=spec.runs,
            threads=spec.threads,
            device=spec.device,
            progress=lambda message: advance(status=message),
        )
    return {
        label: {**figures, "prompt_tokens": spec.prompt_tokens} for label, figures in timed.items()
    }
