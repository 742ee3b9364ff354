"""A 2-process DistributedDataParallel job (gloo, CPU) using CompressionSession; run by
tests/test_session.py through torchrun. Each rank writes its masks' digest and sparsity.

Usage: ddp_session_job.py RECIPE OUT_DIR [EPOCHS]; without EPOCHS the loop runs the recipe's
train.epochs (a recipe without a train section needs EPOCHS: the session then takes its length
from the pruning schedule)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import digits
import digits_cnn

import compress


def main(recipe: str, out_dir: str, epochs: int | None) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = digits_cnn.build()
    ddp = nn.parallel.DistributedDataParallel(model)
    x, y = digits.load()["train"]
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    sampler = DistributedSampler(data, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=32, sampler=sampler)
    session = compress.CompressionSession(ddp, recipe, steps_per_epoch=len(loader))
    optimizer = torch.optim.Adam([*ddp.parameters(), *session.parameters()], lr=1e-3)
    for epoch in range(epochs or session.recipe.train.epochs):
        sampler.set_epoch(epoch)
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = session.loss(ddp(inputs), targets, inputs)
            loss.backward()
            optimizer.step()
            session.step()
    final = session.finalize()
    weights = {n: p.detach() for n, p in final.named_parameters() if p.dim() > 1}
    digest = hashlib.sha256(b"".join((w == 0).numpy().tobytes() for w in weights.values()))
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    result = {"rank": rank, "masks": digest.hexdigest(), "sparsity": zeros / total}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    if rank == 0:
        report = session.export(Path(out_dir) / "export")
        passes = [record.model_dump(mode="json") for record in report.passes]
        Path(out_dir, "report_sparsity.json").write_text(json.dumps(passes))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
