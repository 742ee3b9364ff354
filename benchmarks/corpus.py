"""Public architectures at the sizes users run them, through `compress apply` in one process
each, as a user runs it: exit code, size ratio, p50 speed-up and fidelity of each.

    .venv/bin/python benchmarks/corpus.py [--runs 50] [--only NAME] [--quick] [--out DIR]

Each row is a recipe written to a scratch folder (see RECIPES) and run with the CLI; figures come
from the report it writes. Latency: onnxruntime, 1 thread, batch 1, both models interleaved.
`--quick` runs one row alone (unless `--only` names rows): the quickstart's trained digits CNN as
an ONNX file (exported here with TorchScript, so that `compress apply` never imports torch), with
3 warm-up and 10 timed rounds, for a check of the code in seconds: each public architecture
takes a minute or more here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from _shared import common
from _shared.builders import BERT_INPUTS, IMAGE_NCHW, IMAGE_NHWC, TOKENS

BUILDERS = common.BUILDERS
COMPRESS = Path(sys.executable).with_name("compress")

STATIC = {"type": "quantize", "mode": "static", "calibration": {"samples": 64}}
DYNAMIC = {"type": "quantize", "mode": "dynamic"}
INT4 = {"type": "quantize", "mode": "weight_only", "weights": "int4"}


def built(builder: str, inputs: list[dict]) -> dict:
    """A model of benchmarks/_shared/builders.py."""
    return {"source": f"{BUILDERS}:{builder}", "inputs": inputs}


Model = dict | Callable[[Path], dict]
#: name -> (recipe model, or what writes it into a folder; data source or None; passes)
RECIPES: dict[str, tuple[Model, str | None, list[dict]]] = {
    "transformers ResNet-18, static": (
        built("resnet18", IMAGE_NCHW),
        f"{BUILDERS}:images_nchw",
        [STATIC],
    ),
    "transformers GPT-2, dynamic": (built("gpt2", TOKENS), None, [DYNAMIC]),
    "transformers GPT-2, int4": (built("gpt2", TOKENS), None, [INT4]),
    "Keras ResNet50, prune 0.5 + static": (
        built("keras_resnet50", IMAGE_NHWC),
        f"{BUILDERS}:images_nhwc",
        [{"type": "prune", "sparsity": 0.5}, STATIC],
    ),
    "Keras EfficientNetB0, static": (
        built("keras_efficientnetb0", IMAGE_NHWC),
        f"{BUILDERS}:images_nhwc",
        [STATIC],
    ),
    "MiniLM-L6 (real), dynamic, no data": (built("minilm", BERT_INPUTS), None, [DYNAMIC]),
    "MiniLM-L6 (real), dynamic, real text": (
        built("minilm", BERT_INPUTS),
        f"{BUILDERS}:sentences",
        [DYNAMIC],
    ),
}


def digits_onnx(folder: Path) -> dict:
    """The quickstart's trained digits CNN as an ONNX file in `folder` (TorchScript export)."""
    import torch
    from _shared import torch_peers

    path = folder / "digits_cnn.onnx"
    with common.quiet():
        model, example = torch_peers.digits_cnn(), torch.zeros(1, 1, 8, 8)
        torch_peers.torch_export(model, example, "input", path, "torchscript", 18)
    shape = ["batch", 1, 8, 8]
    return {"source": str(path), "inputs": [{"name": "input", "shape": shape, "dtype": "float32"}]}


#: The row --quick runs unless --only says otherwise: every public architecture takes a minute
#: or more to import, export and quantize here; an ONNX file seconds.
QUICK_RECIPES: dict[str, tuple[Model, str | None, list[dict]]] = {
    "digits CNN (quickstart, ONNX), static": (digits_onnx, f"{common.DIGITS_DATA}:load", [STATIC]),
}


def _names(model: dict, dim: str) -> bool:
    """Whether one of the model's declared inputs has the named dimension `dim`."""
    return any(dim in spec.get("shape", []) for spec in model.get("inputs", []))


def recipe(name: str, model: dict, data: str | None, passes: list, rounds: tuple[int, int]) -> dict:
    raw = {
        "version": 1,
        "name": name,
        "model": model,
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {
            "latency": {
                "threads": 1,
                "warmup": rounds[0],
                "runs": rounds[1],
                "dims": {"sequence": 128} if _names(model, "sequence") else {},
            }
        },
    }
    if data:
        raw["data"] = {"source": data, "batch_size": 16}
    return raw


def run(name: str, raw: dict, scratch: Path) -> dict:
    folder = scratch / name.split(",")[0].replace(" ", "_")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"recipe-{len(list(folder.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    started = time.perf_counter()
    env = {**os.environ, "CI": "true"}
    result = subprocess.run(
        [str(COMPRESS), "apply", str(path), "--json", "-o", str(path.with_suffix(""))],
        capture_output=True,
        text=True,
        env=env,
    )
    row = {"exit": result.returncode, "seconds": time.perf_counter() - started}
    if result.returncode in (0, 1):
        report = json.loads(result.stdout)
        base, comp = report["baseline"], report["compressed"]
        row["size"] = comp["size_bytes"] / base["size_bytes"]
        row["speedup"] = (report.get("speedup") or {}).get("p50")
        row["fidelity"] = report.get("fidelity")
        row["parity"] = base["export"]["parity_max_abs_diff"]
        row["layer"] = report["layers"][0]["name"] if report["layers"] else "-"
        row["stderr"] = result.stderr.strip()
    else:
        row["error"] = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    return row


def main() -> None:
    parser = common.arguments(__doc__, "the digits CNN alone, 3 warm-up and 10 timed rounds")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--only", default=None, help="run the rows whose name contains this")
    args = parser.parse_args()
    rows = {**RECIPES, **QUICK_RECIPES} if args.only else QUICK_RECIPES if args.quick else RECIPES
    rounds = common.QUICK_ROUNDS if args.quick else (10, args.runs)
    print(f"{common.machine_line()}; 1 thread, batch 1, sequence 128")
    header = f"{'model, recipe':38} {'exit':>4} {'size':>6} {'p50 x':>6} {'fidelity':>16} "
    print(header + f"{'parity':>8} {'s':>5}  first layer / error")
    with common.output_dir(args.out, "corpus-") as scratch:
        for name, (model, data, passes) in rows.items():
            if args.only and args.only not in name:
                continue
            if callable(model):
                model = model(scratch)
            raw = recipe(name, model, data, passes, rounds)
            # the exporter a user gets: TorchScript cannot export GPT-2 (aten::diff)
            row = run(name, common.quick_recipe(raw, None) if args.quick else raw, scratch)
            if "error" in row:
                print(
                    f"{name:38} {row['exit']:>4} {'':>6} {'':>6} {'':>16} {'':>8} "
                    f"{row['seconds']:5.0f}  {row['error'][:120]}"
                )
                continue
            fidelity = row["fidelity"]
            fid = f"{fidelity['metric'][:6]} {fidelity['value']:.4f}" if fidelity else "-"
            speed = f"{row['speedup']:.2f}x" if row["speedup"] else "-"
            print(
                f"{name:38} {row['exit']:>4} {row['size']:5.2f}x {speed:>6} {fid:>16} "
                f"{row['parity']:8.1e} {row['seconds']:5.0f}  {row['layer']}"
            )
            if row["stderr"]:
                print(f"{'':38} stderr: {row['stderr'][:200]}")


if __name__ == "__main__":
    main()
