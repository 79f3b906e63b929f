"""Executors: where the batch cores of :mod:`endoked.batching` run.

The driver (:func:`endoked.batching.run_batches`) decides which chunks have work left and writes every chunk's
files, parts and marker itself; an executor only turns pending chunks into :class:`~endoked.batching.BatchOutput`
results and hands them back as they finish. So the chunk layout, the markers and the resume rule are the same
under every executor, and a stage started under one can be resumed under another.

- ``local`` (the default): the chunks run one after the other in this process; ``setup`` is called once,
  before the first pending chunk.
- ``ray``: the chunks run on a pool of Ray actors (``executor.actors``, each with ``executor.cpus_per_actor``
  CPUs and ``executor.gpus_per_actor`` GPUs); every actor calls ``setup`` once, before its first chunk, and
  keeps the state. An actor whose process dies is restarted (up to ``executor.max_restarts`` times) and its
  unfinished chunks are retried; a chunk is never written twice because only the driver writes.

Ray is an optional extra (``pip install 'endoked[ray]'``) imported only here, and only when the ``ray``
executor is used. The active executor of a stage is set by :func:`use_executor` (the pipeline does it from
``RunConfig.executor``) and read by :func:`current_executor`; :func:`run_batches` also takes one explicitly.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from endoked.errors import BackendUnavailableError, StageError

if TYPE_CHECKING:
    from endoked.batching import BatchOutput

logger = logging.getLogger(__name__)

Row = dict[str, Any]
Chunk = tuple[int, list[Row]]  # (chunk index, input rows)

RAY_HINT = "the ray executor needs Ray, which is not installed: pip install 'endoked[ray]'"


class ExecutorConfig(BaseModel):
    """Where batch stages (extract, cam, prompt_seg, ...) run: in this process or on a Ray cluster."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: Literal["local", "ray"] = Field(
        "local", description="'local': in this process, chunk after chunk; 'ray': on a pool of Ray actors."
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join: null starts a private local cluster for the run, 'auto' joins the "
        "cluster started on this machine with `ray start --head`, or an address such as 'HOST:6379'.",
    )
    actors: int | None = Field(
        None,
        ge=1,
        description="Actors (model copies) per batch stage; null: as many as the cluster's free CPUs (or GPUs, "
        "when actors use GPUs) allow, never more than the stage's pending chunks.",
    )
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs each actor reserves (also its torch threads).")
    gpus_per_actor: float | None = Field(
        None,
        ge=0,
        description="GPUs each actor reserves; null: 0 on a cluster without GPUs, else the cluster's GPUs shared "
        "by the actors (at most 1 each).",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        description="How often an actor whose process died is restarted (its unfinished chunks are retried).",
    )
    queue_per_actor: int = Field(2, ge=1, description="Chunks sent ahead to each actor (keeps actors busy).")


class Executor(Protocol):
    """Runs a batch core over pending chunks; yields ``(chunk index, output)`` as chunks finish."""

    kind: str

    def map_chunks(
        self,
        chunks: Sequence[Chunk],
        setup: Callable[[], Any],
        process_batch: Callable[[list[Row], Any], BatchOutput],
        teardown: Callable[[Any], None] | None,
    ) -> Generator[tuple[int, BatchOutput], None, None]:
        """``(index, process_batch(rows, state))`` for every chunk, in any order; ``setup``/``teardown`` as
        documented in :mod:`endoked.batching` (per process that runs chunks)."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a cluster connection it opened)."""
        ...


class LocalExecutor:
    """Chunks run in this process, in order; ``setup`` is called before the first one, ``teardown`` after the
    last one (also after an error)."""

    kind = "local"

    def map_chunks(
        self,
        chunks: Sequence[Chunk],
        setup: Callable[[], Any],
        process_batch: Callable[[list[Row], Any], BatchOutput],
        teardown: Callable[[Any], None] | None,
    ) -> Generator[tuple[int, BatchOutput], None, None]:
        if not chunks:
            return
        state = setup()
        try:
            for index, rows in chunks:
                yield index, process_batch(rows, state)
        finally:
            if teardown is not None:
                teardown(state)

    def close(self) -> None:
        return None


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        BackendUnavailableError: Ray is not installed (the message names the ``ray`` extra).
    """
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError(RAY_HINT) from None
    return ray


def pool_shape(config: ExecutorConfig, resources: Mapping[str, float], pending: int) -> tuple[int, float, float]:
    """``(actors, cpus per actor, gpus per actor)`` for a stage with ``pending`` chunks on a cluster with
    ``resources`` (``ray.cluster_resources()``: total ``CPU`` and ``GPU``).

    Actors use GPUs when ``gpus_per_actor`` says so, or (when it is null) when the cluster has any: one GPU each,
    or a share of one when ``actors`` asks for more actors than GPUs. The actor count is ``actors``, else as many as
    the GPUs allow (GPU actors) or the CPUs allow; it is capped by what the cluster's CPUs and GPUs can hold at once
    (an actor that can never be placed would hold its chunks forever) and by the pending chunks.
    """
    cpus, gpus_total = float(resources.get("CPU", 1.0)), float(resources.get("GPU", 0.0))
    cpus_per_actor = config.cpus_per_actor
    use_gpus = config.gpus_per_actor if config.gpus_per_actor is not None else (1.0 if gpus_total > 0 else 0.0)
    if config.gpus_per_actor is None and gpus_total > 0 and config.actors is not None:
        use_gpus = min(1.0, gpus_total / config.actors)  # more actors than GPUs: they share
    fit = max(1, math.floor(cpus / cpus_per_actor + 1e-9))
    if use_gpus > 0:
        fit = min(fit, max(1, math.floor(gpus_total / use_gpus + 1e-9)))
    actors = config.actors if config.actors is not None else fit
    if actors > fit:
        logger.warning(
            "ray: %d actor(s) asked for, the cluster holds %d (%g CPU, %g GPU; %g CPU and %g GPU each)",
            actors,
            fit,
            cpus,
            gpus_total,
            cpus_per_actor,
            use_gpus,
        )
        actors = fit
    actors = max(1, min(actors, pending))
    return actors, cpus_per_actor, use_gpus


class _ChunkWorker:
    """A Ray actor: builds the batch core's state before its first chunk and keeps it.

    The core (``setup``, ``process_batch``, ``teardown``) comes as an object reference wrapped in a list, so it
    is unpickled in :meth:`run`: a core that cannot be unpickled on the worker (a module it needs is missing)
    fails the chunk with that error instead of killing the actor over and over.
    """

    def __init__(self, core: list[Any]) -> None:
        self._core = core
        self._teardown: Callable[[Any], None] | None = None
        self._state: Any = None
        self._built = False

    def run(self, rows: list[Row]) -> Any:
        import ray

        setup, process, self._teardown = ray.get(self._core[0])
        if not self._built:
            self._state = setup()
            self._built = True
        return process(rows, self._state)

    def close(self) -> None:
        if self._built and self._teardown is not None:
            self._teardown(self._state)
            self._built = False


class RayExecutor:
    """Chunks run on a pool of Ray actors (see the module docstring). The cluster connection is opened on the
    first stage with work and closed by :meth:`close` (a private local cluster is shut down with it)."""

    kind = "ray"

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self._ray: Any = None
        self._started = False

    def _connect(self) -> Any:
        if self._ray is None:
            ray = import_ray()
            if not ray.is_initialized():
                ray.init(address=self.config.address, logging_level=logging.WARNING, configure_logging=False)
                self._started = True
            self._ray = ray
        return self._ray

    def pool_shape(self, pending: int) -> tuple[int, float, float]:
        """``(actors, cpus per actor, gpus per actor)`` for a stage with ``pending`` chunks on this cluster."""
        ray = self._connect()
        return pool_shape(self.config, ray.cluster_resources(), pending)

    def map_chunks(
        self,
        chunks: Sequence[Chunk],
        setup: Callable[[], Any],
        process_batch: Callable[[list[Row], Any], BatchOutput],
        teardown: Callable[[Any], None] | None,
    ) -> Generator[tuple[int, BatchOutput], None, None]:
        if not chunks:
            return
        ray = self._connect()
        n_actors, cpus, gpus = self.pool_shape(len(chunks))
        cfg = self.config
        worker = ray.remote(_ChunkWorker).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=cfg.max_restarts, max_task_retries=cfg.max_restarts
        )
        core = ray.put((setup, process_batch, teardown))
        actors = [worker.remote([core]) for _ in range(n_actors)]
        logger.info("ray: %d actor(s), %g CPU and %g GPU each, %d chunk(s)", n_actors, cpus, gpus, len(chunks))
        queue: deque[Chunk] = deque(chunks)
        attempts: dict[int, int] = {}
        inflight: dict[Any, tuple[Chunk, Any]] = {}

        def submit(actor: Any) -> None:
            chunk = queue.popleft()
            inflight[actor.run.remote(chunk[1])] = (chunk, actor)

        try:
            for actor in actors:
                for _ in range(cfg.queue_per_actor):
                    if queue:
                        submit(actor)
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1)
                chunk, actor = inflight.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:  # process_batch or setup raised: the stage fails
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, Exception) else exc.as_instanceof_cause()) from None
                except ray.exceptions.RayActorError as exc:  # the actor died past its restarts
                    attempts[chunk[0]] = attempts.get(chunk[0], 0) + 1
                    if actor in actors:
                        actors.remove(actor)
                    # the chunk moves to another live actor, also with max_restarts 0, until it has taken down
                    # max_restarts + 2 actors (then it is what kills them)
                    if not actors or attempts[chunk[0]] > cfg.max_restarts + 1:
                        raise StageError(f"chunk {chunk[0]} failed on every Ray actor: {exc}") from exc
                    logger.warning("ray: an actor died (%s); chunk %d goes to another actor", exc, chunk[0])
                    queue.appendleft(chunk)
                    for other in actors:
                        if queue and sum(a is other for _, a in inflight.values()) < cfg.queue_per_actor:
                            submit(other)
                    continue
                if queue and actor in actors:
                    submit(actor)
                yield chunk[0], result
        finally:
            self._release(actors)

    def _release(self, actors: list[Any]) -> None:
        ray = self._ray
        if teardown_refs := [a.close.remote() for a in actors]:
            with contextlib.suppress(Exception):
                ray.get(teardown_refs, timeout=60)
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)

    def close(self) -> None:
        if self._ray is not None and self._started:
            self._ray.shutdown()
        self._ray, self._started = None, False


def make_executor(config: ExecutorConfig) -> Executor:
    """The executor ``config`` names.

    Raises:
        BackendUnavailableError: ``kind: ray`` without Ray installed.
    """
    if config.kind == "ray":
        import_ray()
        return RayExecutor(config)
    return LocalExecutor()


_LOCAL = LocalExecutor()
_ACTIVE: contextvars.ContextVar[tuple[ExecutorConfig, Executor] | None] = contextvars.ContextVar(
    "endoked_executor", default=None
)


def current_executor() -> Executor:
    """The executor set by the innermost :func:`use_executor`, else the local one."""
    active = _ACTIVE.get()
    return active[1] if active is not None else _LOCAL


@contextlib.contextmanager
def use_executor(config: ExecutorConfig) -> Iterator[Executor]:
    """Make the executor ``config`` names the active one inside the block (an enclosing block with the same
    config keeps its executor, so a pipeline joins its cluster once); the executor is closed on exit."""
    active = _ACTIVE.get()
    if active is not None and active[0] == config:
        yield active[1]
        return
    executor = make_executor(config)
    token = _ACTIVE.set((config, executor))
    try:
        yield executor
    finally:
        _ACTIVE.reset(token)
        executor.close()
