"""The CAM head's training under torchrun: two gloo processes train the same head as one process."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from endoked.cam.model import CamNet
from endoked.cam.train import FeatureCache, fit_head
from tests.ddp import as_rank, free_port


def _train() -> tuple[dict[str, torch.Tensor], list[float]]:
    g = torch.Generator().manual_seed(0)
    labels = (torch.arange(40) % 3 == 0).float()
    fused = torch.randn(40, 8, 6, 6, generator=g) + labels[:, None, None, None] * 0.8
    torch.manual_seed(1 if int(os.environ.get("RANK", "0")) == 0 else 7)  # rank 1 starts elsewhere
    net = CamNet(nn.Identity(), channels=[8], reductions=[8], levels=[0], head="mlp", hidden=6)
    history = fit_head(net, FeatureCache(fused.half(), labels), epochs=3, batch_size=9, seed=4, feature_dropout=0.0)
    return {k: v.detach().clone() for k, v in net.head.state_dict().items()}, history


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    with as_rank(rank, world, port):
        weights, history = _train()
        assert dist.is_initialized()
        torch.save({"weights": weights, "history": history}, Path(out) / f"head{rank}.pt")


def test_cam_head_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    single, history = _train()
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "head0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "head1.pt", weights_only=True)
    for k, v in single.items():
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
        assert torch.allclose(r0["weights"][k], v, atol=1e-5), k
    # the logged loss is the whole batch's (summed over the ranks), kept by rank 0 only
    assert len(r0["history"]) == 3 and r1["history"] == []
    assert all(abs(a - b) < 1e-5 for a, b in zip(r0["history"], history, strict=True))
