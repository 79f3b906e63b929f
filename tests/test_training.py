"""The shared training loop: exact resume, best checkpoint, time budget, seeding, and DDP on two CPU processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from endoked.device import native_low_precision
from endoked.training import LoopState, amp_dtype, epoch_generator, fit
from tests.ddp import as_rank, free_port

N, DIM = 24, 5


def dataset() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, DIM, generator=g)
    y = x @ torch.arange(1.0, DIM + 1) + 0.1 * torch.randn(N, generator=g)
    return [(x[i], y[i]) for i in range(N)]


def model(init_seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(init_seed)
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(DIM, 1))


def mse(net: nn.Module, batch: Any) -> torch.Tensor:
    x, y = batch
    return ((net(x).squeeze(1) - y) ** 2).mean()


def train(net: nn.Module, **kw: Any) -> Any:
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    return fit(
        net,
        opt,
        mse,
        dataset(),
        epochs=kw.pop("epochs", 4),
        batch_size=kw.pop("batch_size", 4),
        seed=3,
        device=torch.device("cpu"),
        progress=False,
        **kw,
    )


def weights(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_fit_matches_a_plain_loop_written_out_by_hand() -> None:
    """Golden: the documented semantics (seeded permutation per epoch, one SGD step per slice) by hand."""
    data = dataset()
    ref = model(0, dropout=0.2)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    for epoch in range(4):
        torch.manual_seed(3 * 1_000_003 + epoch)
        order = torch.randperm(N, generator=epoch_generator(3, epoch + 1)).tolist()
        ref.train()
        for s in range(0, N, 4):
            idx = order[s : s + 4]
            x = torch.stack([data[i][0] for i in idx])
            y = torch.stack([data[i][1] for i in idx])
            loss = mse(ref, (x, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net = model(0, dropout=0.2)
    result = train(net)
    assert result.state.epoch == 4 and [h["epoch"] for h in result.state.history] == [1, 2, 3, 4]
    for k, v in weights(ref).items():
        assert torch.equal(v, net.state_dict()[k]), k


class SimulatedInterruptError(RuntimeError):
    pass


def test_resume_after_interruption_gives_the_same_weights(tmp_path: Path) -> None:
    straight = model(0, dropout=0.3)
    full = train(straight, checkpoint_dir=tmp_path / "a", validate=lambda m: {"neg_mse": -1.0}, metric="neg_mse")

    def stop_after_two(state: LoopState) -> None:
        if state.epoch == 2:
            raise SimulatedInterruptError

    with pytest.raises(SimulatedInterruptError):
        train(
            model(0, dropout=0.3),
            checkpoint_dir=tmp_path / "b",
            on_epoch_end=stop_after_two,
            validate=lambda m: {"neg_mse": -1.0},
            metric="neg_mse",
        )
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 2
    finished: list[int] = []
    resumed_net = model(99, dropout=0.3)  # different init: everything must come from last.pt
    resumed = train(
        resumed_net,
        checkpoint_dir=tmp_path / "b",
        validate=lambda m: {"neg_mse": -1.0},
        metric="neg_mse",
        on_epoch_end=lambda s: finished.append(s.epoch),
    )
    assert finished == [3, 4]  # the two finished epochs are not redone
    assert resumed.state.history == full.state.history
    for k, v in weights(straight).items():
        assert torch.equal(v, resumed_net.state_dict()[k]), k
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_best_checkpoint_is_the_best_metric_epoch(tmp_path: Path) -> None:
    scripted = iter([0.2, 0.9, float("nan"), 0.5, 0.9])  # epoch 2 best; a tie later does not replace it
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    net = model(0)
    result = train(
        net,
        epochs=5,
        checkpoint_dir=tmp_path,
        validate=lambda m: {"acc": next(scripted)},
        metric="acc",
        on_epoch_end=lambda s: snapshots.__setitem__(s.epoch, weights(net)),
    )
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert result.state.best_epoch == 2 and best["epoch"] == 2 and best["metric"] == 0.9 and best["val"] == {"acc": 0.9}
    for k, v in snapshots[2].items():
        assert torch.equal(best["model"][k], v), k
    assert not torch.equal(best["model"]["1.weight"], snapshots[5]["1.weight"])
    assert result.best is not None and result.best["epoch"] == 2
    assert [h["acc"] for h in result.state.history][:2] == [0.2, 0.9]


def test_without_validation_the_newest_epoch_is_kept() -> None:
    result = train(model(0), epochs=3)
    assert result.state.best_epoch == 3 and result.best is not None and result.best["epoch"] == 3


def test_time_budget_stops_after_the_epoch_that_exceeds_it(tmp_path: Path) -> None:
    result = train(model(0), epochs=6, checkpoint_dir=tmp_path, time_budget_s=0.0)
    assert result.state.stopped == "budget"
    assert result.state.epoch == 1 and len(result.state.history) == 1
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    unlimited = train(model(0), epochs=6, time_budget_s=3600.0)
    assert unlimited.state.stopped == "" and unlimited.state.epoch == 6


def test_seeded_runs_are_identical_and_seeds_matter() -> None:
    a, b = model(0, dropout=0.3), model(0, dropout=0.3)
    train(a)
    train(b)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    c = model(0, dropout=0.3)
    fit(c, torch.optim.SGD(c.parameters(), lr=0.05), mse, dataset(), epochs=4, batch_size=4, seed=4, progress=False)
    assert not torch.equal(a.state_dict()["1.weight"], c.state_dict()["1.weight"])


def test_mixed_precision_is_off_on_the_cpu_unless_asked_for() -> None:
    cpu = torch.device("cpu")
    assert amp_dtype(cpu) is None and amp_dtype(cpu, False) is None
    assert amp_dtype(cpu, True) == native_low_precision(cpu)


def test_validate_needs_a_metric() -> None:
    with pytest.raises(ValueError, match="metric"):
        train(model(0), validate=lambda m: {"acc": 1.0})


# ---------------------------------------------------------------------------------------------- DDP
def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    with as_rank(rank, world, port):  # fit joins the process group itself, from the torchrun-style environment
        net = model(0)
        result = train(net, checkpoint_dir=Path(out) / f"rank{rank}", validate=lambda m: {"neg": -1.0}, metric="neg")
        torch.save(
            {"weights": weights(net), "epoch": result.state.epoch, "history": result.state.history},
            Path(out) / f"result{rank}.pt",
        )
        assert dist.is_initialized() and dist.get_backend() == "gloo"


def test_ddp_on_two_cpu_processes_matches_single_process_training(tmp_path: Path) -> None:
    single = model(0)
    train(single, checkpoint_dir=tmp_path / "single", validate=lambda m: {"neg": -1.0}, metric="neg")
    mp.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "result0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "result1.pt", weights_only=True)
    for k, v in weights(single).items():  # each rank takes half of every batch; DDP averages the gradients
        assert torch.allclose(r0["weights"][k], v, atol=1e-5), k
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
    assert r0["epoch"] == r1["epoch"] == 4
    assert not any((tmp_path / "rank1").glob("*"))  # only rank 0 writes checkpoints
    for name in ("last.pt", "best.pt"):
        ddp = torch.load(tmp_path / "rank0" / name, weights_only=True)
        one = torch.load(tmp_path / "single" / name, weights_only=True)
        assert ddp.keys() == one.keys()
        assert ddp["model"].keys() == one["model"].keys()  # no "module." prefix from the DDP wrapper
        assert ddp["epoch"] == one["epoch"]
    assert [h["epoch"] for h in r0["history"]] == [1, 2, 3, 4] and r1["history"] == []
