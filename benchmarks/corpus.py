"""Public architectures through `compress apply`, one process each, as a user runs them: exit
code, size ratio, p50 speed-up and fidelity of each model, at the sizes users run them.

    .venv/bin/python benchmarks/corpus.py [--runs 50] [--only NAME] [--quick] [--out DIR]

Each row is a recipe written to a scratch folder (see RECIPES) and run with the CLI; figures come
from the report it writes. Latency: onnxruntime, 1 thread, batch 1, both models interleaved.
`--quick` runs the ResNet-18 row alone (unless `--only` names others) with 3 warm-up and 10 timed
rounds and the TorchScript exporter, for a check of the code in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _shared import common
from _shared.builders import BERT_INPUTS, IMAGE_NCHW, IMAGE_NHWC, TOKENS

MODELS = common.BUILDERS
COMPRESS = Path(sys.executable).with_name("compress")
#: The row --quick runs unless --only says otherwise.
QUICK_ROW = "transformers ResNet-18, static"

STATIC = {"type": "quantize", "mode": "static", "calibration": {"samples": 64}}

#: name -> (builder, inputs, data function or None, passes)
RECIPES = {
    "transformers ResNet-18, static": ("resnet18", IMAGE_NCHW, "images_nchw", [STATIC]),
    "transformers GPT-2, dynamic": (
        "gpt2",
        TOKENS,
        None,
        [{"type": "quantize", "mode": "dynamic"}],
    ),
    "transformers GPT-2, int4": (
        "gpt2",
        TOKENS,
        None,
        [{"type": "quantize", "mode": "weight_only", "weights": "int4"}],
    ),
    "Keras ResNet50, prune 0.5 + static": (
        "keras_resnet50",
        IMAGE_NHWC,
        "images_nhwc",
        [{"type": "prune", "sparsity": 0.5}, STATIC],
    ),
    "Keras EfficientNetB0, static": ("keras_efficientnetb0", IMAGE_NHWC, "images_nhwc", [STATIC]),
    "MiniLM-L6 (real), dynamic, no data": (
        "minilm",
        BERT_INPUTS,
        None,
        [{"type": "quantize", "mode": "dynamic"}],
    ),
    "MiniLM-L6 (real), dynamic, real text": (
        "minilm",
        BERT_INPUTS,
        "sentences",
        [{"type": "quantize", "mode": "dynamic"}],
    ),
}


def recipe(
    name: str, builder: str, inputs: list, data: str | None, passes: list, rounds: tuple[int, int]
) -> dict:
    raw = {
        "version": 1,
        "name": name,
        "model": {"source": f"{MODELS}:{builder}", "inputs": inputs},
        "passes": passes,
        "export": {"path": "out/model.onnx"},
        "measure": {
            "latency": {
                "threads": 1,
                "warmup": rounds[0],
                "runs": rounds[1],
                "dims": {"sequence": 128},
            }
        },
    }
    if data:
        raw["data"] = {"source": f"{MODELS}:{data}", "batch_size": 16}
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
    parser = common.arguments(__doc__, "the ResNet-18 row alone, 3 warm-up and 10 timed rounds")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--only", default=None, help="run the rows whose name contains this")
    args = parser.parse_args()
    only = args.only or (QUICK_ROW if args.quick else None)
    rounds = common.QUICK_ROUNDS if args.quick else (10, args.runs)
    print(f"{common.machine_line()}; 1 thread, batch 1, sequence 128")
    header = f"{'model, recipe':38} {'exit':>4} {'size':>6} {'p50 x':>6} {'fidelity':>16} "
    print(header + f"{'parity':>8} {'s':>5}  first layer / error")
    with common.output_dir(args.out, "corpus-") as scratch:
        for name, (builder, inputs, data, passes) in RECIPES.items():
            if only and only not in name:
                continue
            raw = recipe(name, builder, inputs, data, passes, rounds)
            row = run(name, common.quick_recipe(raw) if args.quick else raw, scratch)
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
