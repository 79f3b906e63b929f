"""MIL training under torchrun: two gloo processes on the CPU train the same heads as one process."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp

from endoked.mil.data import split_bags
from endoked.mil.model import MilHeads
from endoked.mil.train import train_mil
from tests.ddp import as_rank, free_port
from tests.mil.test_mil_train import CFG, DIM, frozen_encoder, make_bags

# Teacher losses only (means over bags, so shares weighted by bag count sum exactly to the one-process
# gradient) and no dropout (each process would draw its own masks).
DDP_CFG = CFG.model_copy(update={"epochs": 4, "dropout": 0.0, "student_weight": 0.0, "bags_per_step": 5})


def _train(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    data, _, bags = make_bags(30, seed=2)
    train, val = split_bags(bags, 0.25, seed=0)
    torch.manual_seed(0)
    heads = MilHeads(DIM, DDP_CFG.hidden_dim, DDP_CFG.attention_dim, DDP_CFG.dropout)
    if int(os.environ.get("RANK", "0")) == 1:  # another start on rank 1: rank 0's weights must reach it
        torch.manual_seed(99)
        heads = MilHeads(DIM, DDP_CFG.hidden_dim, DDP_CFG.attention_dim, DDP_CFG.dropout)
    train_mil(
        heads,
        frozen_encoder(),
        data,
        train,
        val,
        DDP_CFG,
        seed=5,
        device=torch.device("cpu"),
        checkpoint_dir=checkpoint_dir,
        progress=False,
    )
    return {k: v.detach().clone() for k, v in heads.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    with as_rank(rank, world, port):
        weights = _train(Path(out) / f"rank{rank}")
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        torch.save(weights, Path(out) / f"heads{rank}.pt")


def test_mil_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    single = _train(tmp_path / "single")
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "heads0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "heads1.pt", weights_only=True)
    assert r0.keys() == single.keys()
    for k, v in single.items():
        assert torch.equal(r0[k], r1[k]), k  # the ranks agree exactly
        assert torch.allclose(r0[k], v, atol=1e-5), k  # and equal one-process training
    assert not any((tmp_path / "rank1").glob("*"))  # only rank 0 writes checkpoints
    for name in ("last.pt", "best.pt"):
        ddp = torch.load(tmp_path / "rank0" / name, weights_only=True)
        one = torch.load(tmp_path / "single" / name, weights_only=True)
        assert ddp.keys() == one.keys(), name  # the same checkpoint format as one process
        assert ddp["heads"].keys() == one["heads"].keys()
