"""One resumable training loop, shared by every stage that trains.

A stage describes *what* one epoch does as a :class:`TrainTask` (train one epoch, validate, judge the
validation figures, pack and unpack its training state); :class:`TrainLoop` does the rest the same way for
all of them:

* ``last.pt`` is written atomically after every epoch, so an interrupted run resumed from its folder
  continues after the last finished epoch (no epoch is redone) and ends with the same weights;
* the best checkpoint (by the task's validation metric) is kept beside it and returned;
* an optional wall-clock budget stops training cleanly after the epoch that exceeds it (recorded in the state);
* one progress bar shows items/s and the ETA over all epochs;
* optionally, every epoch's figures go to TensorBoard event files (``tensorboard_dir``; off by default);
* under ``torchrun`` (``WORLD_SIZE > 1``) only rank 0 validates and writes checkpoints, and all ranks take rank
  0's stop decisions after every epoch.

:func:`fit` is the plain form for a model, an optimiser and a step function over a sequence of samples:
seeded shuffling, mixed precision where the device computes it natively (off on the CPU unless asked for),
and DistributedDataParallel with rank-strided batches when launched by ``torchrun``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from endoked.device import native_low_precision
from endoked.io import atomic_path
from endoked.progress import bar

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- distribution
def dist_info() -> tuple[int, int, int]:
    """``(world_size, rank, local_rank)`` from the ``torchrun`` environment (1, 0, 0 otherwise)."""
    return (
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(device: torch.device) -> torch.device:
    """Join the ``torchrun`` process group (gloo on the CPU, nccl on CUDA) when ``WORLD_SIZE > 1``.

    Returns:
        The device this process trains on: ``cuda:LOCAL_RANK`` under CUDA, ``device`` otherwise.
    """
    world, _, local_rank = dist_info()
    if world <= 1:
        return device
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def wrap_distributed(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when launched by ``torchrun``, else ``module`` itself."""
    if dist_info()[0] <= 1:
        return module
    return nn.parallel.DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def _from_rank0(*values: Any) -> tuple[Any, ...]:
    """Rank 0's ``values`` on every rank (every rank waits for rank 0); ``values`` themselves in one process.

    Decisions taken on rank 0 only (stop early, time budget reached) must be the same everywhere, or the
    other ranks would wait forever in the next epoch's collective calls.
    """
    if dist_info()[0] <= 1:
        return values
    import torch.distributed as dist

    if not dist.is_initialized():
        return values
    box = [list(values)]
    dist.broadcast_object_list(box, src=0)
    return tuple(box[0])


def allreduce_gradients(params: Sequence[torch.Tensor]) -> None:
    """Sum the gradients of ``params`` over the ``torchrun`` ranks, in place (nothing in one process).

    For modules that DistributedDataParallel cannot wrap (several entry points, such as the MIL heads): each
    rank backpropagates its share of the batch with its loss weighted by that share, and the sum over ranks is
    the single-process gradient. A parameter without a gradient on this rank counts as zero where another rank
    has one; one that no rank gave a gradient keeps none. Every rank makes the same collective calls.
    """
    if dist_info()[0] <= 1 or not params:
        return
    import torch.distributed as dist

    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
    dist.all_reduce(has, op=dist.ReduceOp.SUM)  # a parameter no rank gave a gradient keeps none (the optimiser
    grads = []  # skips it, as in one process)
    for p, n in zip(params, has.tolist(), strict=True):
        if n == 0:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(*modules: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (so every rank starts from the same weights)."""
    if dist_info()[0] <= 1:
        return
    import torch.distributed as dist

    for module in modules:
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)


def sum_over_ranks(value: float) -> float:
    """``value`` summed over the ``torchrun`` ranks (itself in one process)."""
    if dist_info()[0] <= 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def rank_slice(items: Sequence[Any], world: int, rank: int) -> list[Any]:
    """This rank's share of ``items``: every ``world``-th item from ``rank`` (all of them in one process)."""
    return list(items[rank::world]) if world > 1 else list(items)


# ---------------------------------------------------------------------------------------------- precision
def amp_dtype(device: torch.device, amp: bool | None = None) -> torch.dtype | None:
    """The autocast dtype to train with: ``None`` (full precision) unless ``amp`` allows it and ``device``
    computes a reduced precision natively (:func:`endoked.device.native_low_precision`).

    ``amp=None`` turns it on for CUDA only, so CPU results do not change unless asked for.
    """
    enabled = device.type == "cuda" if amp is None else amp
    return native_low_precision(device) if enabled else None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` on ``device`` (nothing when ``dtype`` is None)."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler, active only for float16 on CUDA (bfloat16 and full precision need none)."""
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and dtype == torch.float16)


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    clip: float | None = None,
    params: Sequence[torch.Tensor] | None = None,
    clip_mode: str = "norm",
) -> None:
    """Backward pass and optimiser step through ``scaler``, with optional gradient clipping."""
    scaler.scale(loss).backward()
    if clip is not None:
        scaler.unscale_(optimizer)
        ps = list(params) if params is not None else [p for g in optimizer.param_groups for p in g["params"]]
        if clip_mode == "norm":
            torch.nn.utils.clip_grad_norm_(ps, clip)
        else:
            torch.nn.utils.clip_grad_value_(ps, clip)
    scaler.step(optimizer)
    scaler.update()


def epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    """A CPU generator seeded by ``(seed, epoch, salt)`` (independent of the global RNG)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7_919 + salt) % (2**63))


# ---------------------------------------------------------------------------------------------- the loop
def open_tensorboard(log_dir: Path | None) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``log_dir`` (None when ``log_dir`` is None).

    Raises:
        BackendUnavailableError: the tensorboard package is not installed.
    """
    if log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        from endoked.errors import BackendUnavailableError

        raise BackendUnavailableError(
            "TensorBoard logging needs tensorboard: pip install 'endoked[tensorboard]' (or pip install tensorboard)"
        ) from exc
    return SummaryWriter(log_dir=str(log_dir))


@dataclass
class LoopState:
    """Where training stands; what :meth:`TrainTask.state_dict` saves besides the weights.

    Attributes:
        epoch: finished epochs (the next epoch to run, 0-based).
        best_epoch: 1-based epoch of the best checkpoint (0: none yet).
        best_metric: its metric (without validation: the 0-based index of the newest epoch).
        history: one record per finished epoch (the task's training figures and validation figures).
        elapsed: training seconds so far, over all resumed runs.
        stopped: ``""``, ``"early"`` (the task asked to stop) or ``"budget"`` (time budget reached).
    """

    epoch: int = 0
    best_epoch: int = 0
    best_metric: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    stopped: str = ""


@dataclass(frozen=True)
class Verdict:
    """The task's judgement of one epoch's validation: a new best (with its metric) and/or stop now."""

    improved: bool = False
    metric: float = -math.inf
    stop: bool = False


class TrainTask:
    """What one stage's training does; :class:`TrainLoop` calls these hooks. Override what applies.

    Attributes:
        validates: whether :meth:`validate` gives figures; without validation every epoch is the newest best.
        items_per_epoch: progress-bar items of one epoch (e.g. images, bags or steps).
    """

    validates: bool = False
    items_per_epoch: int = 1

    def begin(self, state: LoopState) -> None:
        """Called once after resuming, before the first epoch of this run (e.g. to build caches)."""

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        """Train epoch ``epoch`` (0-based); advance ``progress.update(n)``; return its history record."""
        raise NotImplementedError

    def validate(self, epoch: int, final: bool) -> dict[str, Any] | None:
        """Validation figures after ``epoch`` (merged into its record), or None to skip this epoch.

        ``final``: the last epoch of this run (the last one, or the time budget is reached).
        """
        return None

    def judge(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> Verdict:
        """Whether ``epoch`` is the new best. Default: without validation every epoch; else a higher
        :meth:`score`."""
        if not self.validates:
            return Verdict(True, float(epoch))
        if not val:
            return Verdict()
        metric = self.score(val)
        return Verdict(metric > state.best_metric, metric)

    def score(self, val: dict[str, Any]) -> float:
        """The metric to maximise from validation figures."""
        raise NotImplementedError

    def best_checkpoint(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> dict[str, Any] | None:
        """Content of the best checkpoint for a new best ``epoch`` (None: keep none)."""
        return None

    def state_dict(self, state: LoopState) -> dict[str, Any] | None:
        """Content of ``last.pt`` after an epoch (None: keep none)."""
        return None

    def load_state_dict(self, content: dict[str, Any]) -> LoopState | None:
        """Restore from a ``last.pt`` content; None when it belongs to another run (training starts afresh)."""
        return None


@dataclass
class FitResult:
    """Outcome of :meth:`TrainLoop.run`.

    Attributes:
        state: the final :class:`LoopState` (``stopped`` says why it ended early).
        best: the best checkpoint's content (from this run, else read back from ``best_path``), or None.
        last_path, best_path: where ``last.pt`` and the best checkpoint are kept (None without a folder).
        seconds: training seconds over all resumed runs.
    """

    state: LoopState
    best: dict[str, Any] | None
    last_path: Path | None
    best_path: Path | None
    seconds: float


def save_atomic(path: Path, content: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file renamed into place (a killed write leaves the old file)."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(content, tmp)


@dataclass
class TrainLoop:
    """Runs a :class:`TrainTask` for ``epochs`` epochs with resume, best checkpoint and time budget.

    Attributes:
        task: the stage's hooks.
        epochs: total epochs (a resumed run does only the remaining ones).
        checkpoint_dir: folder of ``last_name`` and ``best_name`` (None: nothing written, best kept in memory).
        time_budget_s: stop after the epoch during which this many training seconds (over all resumed runs) pass.
        progress: progress bar switch (``None``: the process-wide setting); only rank 0 shows one.
        desc, unit: progress-bar label and item name.
        on_epoch_end: called with the state after each epoch's checkpoints are written.
        tensorboard_dir: write each epoch's numeric figures there as TensorBoard scalars (rank 0; needs the
            ``tensorboard`` package). None: off.
    """

    task: TrainTask
    epochs: int
    checkpoint_dir: Path | None = None
    last_name: str = "last.pt"
    best_name: str = "best.pt"
    time_budget_s: float | None = None
    progress: bool | None = None
    desc: str = "train"
    unit: str = "it"
    on_epoch_end: Callable[[LoopState], None] | None = None
    tensorboard_dir: Path | None = None
    _board: Any = field(default=None, init=False, repr=False)

    @property
    def last_path(self) -> Path | None:
        return self.checkpoint_dir / self.last_name if self.checkpoint_dir is not None else None

    @property
    def best_path(self) -> Path | None:
        return self.checkpoint_dir / self.best_name if self.checkpoint_dir is not None else None

    def resume(self) -> LoopState:
        """The state saved in ``last.pt`` (restored into the task), or a fresh one."""
        path = self.last_path
        if path is None or not path.is_file():
            return LoopState()
        state = self.task.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        if state is None:
            logger.warning("%s belongs to another configuration or data; starting afresh", path)
            return LoopState()
        logger.info("%s: resuming after epoch %d of %d (%s)", self.desc, state.epoch, self.epochs, path)
        return state

    def run(self) -> FitResult:
        """Train the remaining epochs; returns the :class:`FitResult`."""
        self._board = open_tensorboard(self.tensorboard_dir) if dist_info()[1] == 0 else None
        try:
            return self._run()
        finally:
            if self._board is not None:
                self._board.close()
                self._board = None

    def _run(self) -> FitResult:
        rank = dist_info()[1]
        state = self.resume()
        self.task.begin(state)
        t_start = time.perf_counter() - state.elapsed
        best: dict[str, Any] | None = None
        per_epoch = max(1, self.task.items_per_epoch)
        with bar(
            self.epochs * per_epoch, desc=self.desc, unit=self.unit, enabled=self.progress if rank == 0 else False
        ) as pbar:
            pbar.update(min(state.epoch, self.epochs) * per_epoch)
            while state.epoch < self.epochs and not state.stopped:
                epoch = state.epoch
                record = self.task.train_epoch(epoch, pbar)
                last = epoch + 1 == self.epochs
                over = self.time_budget_s is not None and time.perf_counter() - t_start > self.time_budget_s
                if rank == 0:
                    best = self._finish_epoch(state, epoch, record, last or over, t_start) or best
                else:
                    state.epoch = epoch + 1
                if self.on_epoch_end is not None:
                    self.on_epoch_end(state)
                over, state.stopped = _from_rank0(over, state.stopped)
                if over and not last and not state.stopped:
                    logger.warning(
                        "%s: time budget of %.0f s reached after epoch %d of %d; stopping",
                        self.desc,
                        self.time_budget_s or 0.0,
                        epoch + 1,
                        self.epochs,
                    )
                    state.stopped = "budget"
        if best is None and self.best_path is not None and self.best_path.is_file():
            best = torch.load(self.best_path, map_location="cpu", weights_only=True)
        return FitResult(state, best, self.last_path, self.best_path, time.perf_counter() - t_start)

    def _finish_epoch(
        self, state: LoopState, epoch: int, record: dict[str, Any], final: bool, t_start: float
    ) -> dict[str, Any] | None:
        """Validate, judge, write the best checkpoint and ``last.pt``; returns a new best's content."""
        val = self.task.validate(epoch, final)
        if val:
            record.update(val)
        state.history.append(record)
        verdict = self.task.judge(state, epoch, val)
        best = None
        if verdict.improved:
            state.best_epoch, state.best_metric = epoch + 1, verdict.metric
            best = self.task.best_checkpoint(state, epoch, val)
            if best is not None and self.best_path is not None:
                save_atomic(self.best_path, best)
        if verdict.stop:
            state.stopped = "early"
        state.epoch = epoch + 1
        state.elapsed = time.perf_counter() - t_start
        content = self.task.state_dict(state)
        if content is not None and self.last_path is not None:
            save_atomic(self.last_path, content)
        self._log(state, epoch, record, verdict.improved)
        if self._board is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and key != "epoch":
                    self._board.add_scalar(f"{self.desc}/{key}", float(value), epoch + 1)
            self._board.flush()
        return best

    def _log(self, state: LoopState, epoch: int, record: dict[str, Any], improved: bool) -> None:
        done = epoch + 1
        figures = " ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float))
        rate = state.elapsed / done
        logger.info(
            "%s epoch %d/%d: %s%s (%.0f s, ETA %.0f s)",
            self.desc,
            done,
            self.epochs,
            figures,
            " (best)" if improved else "",
            state.elapsed,
            rate * (self.epochs - done),
        )
        if state.stopped == "early":
            logger.info("%s: early stop after epoch %d (best epoch %d)", self.desc, done, state.best_epoch)


# ---------------------------------------------------------------------------------------------- plain fit
StepFn = Callable[[nn.Module, Any], torch.Tensor]


class ModelTask(TrainTask):
    """:func:`fit`'s task: shuffled mini-batches of ``data`` through ``step``, one optimiser step each.

    ``last.pt`` holds ``epoch``, ``model``, ``optimizer``, ``scaler``, ``scheduler`` and ``loop`` (the
    :class:`LoopState`); the best checkpoint ``epoch``, ``model``, ``metric`` and ``val``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        step: StepFn,
        data: Sequence[Any],
        *,
        batch_size: int,
        collate: Callable[[list[Any]], Any],
        seed: int,
        device: torch.device,
        amp: bool | None,
        validate: Callable[[nn.Module], dict[str, float]] | None,
        metric: str,
        scheduler: Any = None,
        grad_clip: float | None = None,
    ) -> None:
        self.model, self.optimizer, self.step, self.data = model, optimizer, step, data
        self.batch_size, self.collate, self.seed, self.device = batch_size, collate, seed, device
        self.dtype = amp_dtype(device, amp)
        self.scaler = grad_scaler(device, self.dtype)
        self.scheduler, self.grad_clip = scheduler, grad_clip
        self._validate, self.metric = validate, metric
        self.validates = validate is not None
        self.world, self.rank, _ = dist_info()
        self.net = wrap_distributed(model, device)
        self.items_per_epoch = len(data)

    def batches(self, epoch: int) -> list[list[Any]]:
        """This rank's batches of ``epoch``: a seeded permutation cut in ``batch_size`` slices, each slice
        rank-strided (so the ranks' gradients average to the single-process batch gradient)."""
        order = torch.randperm(len(self.data), generator=epoch_generator(self.seed, epoch + 1)).tolist()
        cuts = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.world > 1:
            cuts = [c for c in cuts if len(c) >= self.world]  # every rank needs a share of every batch
        return [[self.data[i] for i in rank_slice(c, self.world, self.rank)] for c in cuts]

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        torch.manual_seed(self.seed * 1_000_003 + epoch)
        self.net.train()
        total, n = 0.0, 0
        for batch in self.batches(epoch):
            with autocast(self.device, self.dtype):
                loss = self.step(self.net, self.collate(batch))
            self.optimizer.zero_grad(set_to_none=True)
            optimizer_step(loss, self.optimizer, self.scaler, self.grad_clip)
            if self.scheduler is not None:
                self.scheduler.step()
            total += float(loss.detach()) * len(batch)
            n += len(batch)
            progress.update(len(batch) * self.world)
        return {"epoch": epoch + 1, "loss": total / max(n, 1), "lr": float(self.optimizer.param_groups[0]["lr"])}

    def validate(self, epoch: int, final: bool) -> dict[str, Any] | None:
        if self._validate is None:
            return None
        self.model.eval()
        with torch.no_grad():
            return dict(self._validate(self.model))

    def score(self, val: dict[str, Any]) -> float:
        value = float(val[self.metric])
        return -math.inf if math.isnan(value) else value

    def best_checkpoint(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "epoch": epoch + 1,
            "model": _cpu_state(self.model),
            "metric": state.best_metric,
            "val": dict(val or {}),
        }

    def state_dict(self, state: LoopState) -> dict[str, Any]:
        return {
            "epoch": state.epoch,
            "model": _cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "loop": asdict(state),
        }

    def load_state_dict(self, content: dict[str, Any]) -> LoopState | None:
        if "loop" not in content or "model" not in content:
            return None
        self.model.load_state_dict(content["model"])
        self.optimizer.load_state_dict(content["optimizer"])
        self.scaler.load_state_dict(content["scaler"])
        if self.scheduler is not None and content.get("scheduler") is not None:
            self.scheduler.load_state_dict(content["scheduler"])
        return LoopState(**content["loop"])


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: StepFn,
    data: Sequence[Any],
    *,
    epochs: int,
    batch_size: int,
    collate: Callable[[list[Any]], Any] | None = None,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    metric: str = "",
    checkpoint_dir: Path | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    amp: bool | None = None,
    scheduler: Any = None,
    grad_clip: float | None = None,
    time_budget_s: float | None = None,
    progress: bool | None = None,
    desc: str = "train",
    on_epoch_end: Callable[[LoopState], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``data`` with ``step(model, batch) -> loss`` (see :class:`ModelTask`, :class:`TrainLoop`).

    Args:
        model: trained in place; under ``torchrun`` this process joins the process group (see
            :func:`init_distributed`), the model moves to its device and is wrapped in DistributedDataParallel.
        optimizer: over ``model``'s parameters.
        step: loss of one collated batch (called under autocast when mixed precision is on).
        data: samples; each epoch visits them in a permutation seeded by ``(seed, epoch)``.
        epochs, batch_size: schedule.
        collate: list of samples -> batch (default: :func:`torch.utils.data.default_collate`).
        validate: ``model -> figures``, run on rank 0 after every epoch (no gradients, eval mode).
        metric: the figure of ``validate`` to maximise for the best checkpoint (NaN counts as worst).
        checkpoint_dir: folder of ``last.pt`` and ``best.pt``; an existing ``last.pt`` is resumed from.
        seed: seeds batch order and the global RNG of every epoch (dropout).
        amp: mixed precision (``None``: on CUDA only; see :func:`amp_dtype`).
        scheduler: stepped after every optimiser step (saved in ``last.pt``).
        grad_clip: gradient-norm clipping.
        time_budget_s: wall-clock budget (see :class:`TrainLoop`).
        progress, desc: progress bar.
        on_epoch_end: called after each epoch's checkpoints are written.
    """
    if validate is not None and not metric:
        raise ValueError("fit: a validate callback needs the metric to select the best epoch by")
    device = init_distributed(device or next(model.parameters()).device)
    model.to(device)
    task = ModelTask(
        model,
        optimizer,
        step,
        data,
        batch_size=batch_size,
        collate=collate or torch.utils.data.default_collate,
        seed=seed,
        device=device,
        amp=amp,
        validate=validate,
        metric=metric,
        scheduler=scheduler,
        grad_clip=grad_clip,
    )
    loop = TrainLoop(
        task,
        epochs,
        checkpoint_dir,
        time_budget_s=time_budget_s,
        progress=progress,
        desc=desc,
        unit="sample",
        on_epoch_end=on_epoch_end,
    )
    return loop.run()
