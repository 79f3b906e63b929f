"""Stage runner: runs registered stages in order against a run folder, skipping finished ones and
resuming interrupted ones (see :mod:`endoked.runfolder`).

A stage is a :class:`StageSpec` exported as ``STAGE`` from ``endoked.<package>.stage``; :data:`STAGE_ORDER` lists
every pipeline stage explicitly, and a stage module that fails to import fails the run loudly (it never
silently drops out of the pipeline). Its ``run``
callable receives a :class:`StageContext`, writes its outputs into ``ctx.work_dir`` and returns a
:class:`StageResult` naming them. Partial work that a re-run may reuse goes into ``ctx.work_dir`` too:
the runner keeps that folder when the same stage is re-run with the same fingerprint after an
interruption, and clears it when the inputs or config changed (or with ``overwrite``).

Before each stage the runner seeds the global generators (Python's ``random``, NumPy's and torch's) from the
run seed and the stage name, so a stage's result does not depend on what ran before it in the same process:
a stage re-run after a skipped upstream stage gives what it gave when that stage ran first.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util  # seed_global_rngs: torch is optional
import logging
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endoked.config import RunConfig
from endoked.errors import StageError
from endoked.executors import use_executor
from endoked.io import sha256_json
from endoked.runfolder import RunFolder

logger = logging.getLogger(__name__)

# The pipeline's stages, in order; each is ``endoked.<name>.stage.STAGE``.
STAGE_ORDER: tuple[str, ...] = ("ingest", "extract", "mil", "cam", "prompt_seg", "seg", "eval")


@dataclass
class StageResult:
    """What a stage produced: named outputs (paths relative to the run folder) and summary counts."""

    outputs: dict[str, str]
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    """Everything a stage may use. ``work_dir`` is the stage's own folder inside the run."""

    run: RunFolder
    config: RunConfig
    stage: str
    progress: bool = True

    @property
    def work_dir(self) -> Path:
        return self.run.stage_dir(self.stage)

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"endoked.{self.stage}")

    def upstream(self, stage: str, name: str) -> Path:
        """Path of an output of an earlier stage (raises StageError when it has not run)."""
        return self.run.output(stage, name)


@dataclass(frozen=True)
class StageSpec:
    """A pipeline stage.

    Attributes:
        name: stage name (also its folder in the run and its config section).
        run: does the work; must be resumable from partial files in ``ctx.work_dir``.
        depends: earlier stages whose outputs this stage reads.
        external_inputs: returns a JSON-able fingerprint of inputs outside the run folder (e.g. the
            archive), so a changed archive re-runs the stage.
        config_sections: config sections that affect the result (default: the stage's own).
        reviewed: the kind of reviewer decisions the stage reads (``"images"`` or ``"labels"``, see
            :func:`endoked.reviewed.inputs_hash`); a new decision of that kind re-runs it. A run without
            decisions keeps the fingerprint it had before.
    """

    name: str
    run: Callable[[StageContext], StageResult]
    depends: tuple[str, ...] = ()
    external_inputs: Callable[[StageContext], Any] | None = None
    config_sections: tuple[str, ...] | None = None
    reviewed: str | None = None


def load_stage(name: str) -> StageSpec:
    """The :class:`StageSpec` of pipeline stage ``name`` (imports ``endoked.<name>.stage``).

    Raises:
        StageError: ``name`` is not a pipeline stage, or its module does not export a ``STAGE`` spec. An
            import error inside the stage module propagates unchanged (a broken stage is a bug to see).
    """
    if name not in STAGE_ORDER:
        raise StageError(f"{name!r} is not a pipeline stage; stages: {', '.join(STAGE_ORDER)}")
    module = importlib.import_module(f"endoked.{name}.stage")
    spec = getattr(module, "STAGE", None)
    if not isinstance(spec, StageSpec) or spec.name != name:
        raise StageError(f"endoked.{name}.stage does not export a StageSpec named {name!r} as STAGE")
    return spec


def available_stages() -> dict[str, StageSpec]:
    """Every pipeline stage, in pipeline order."""
    return {name: load_stage(name) for name in STAGE_ORDER}


def stage_fingerprint(ctx: StageContext, spec: StageSpec) -> tuple[str, dict[str, Any]]:
    """Fingerprint of a stage's inputs: its config sections, upstream outputs' hashes, external inputs."""
    sections = spec.config_sections or (spec.name,)
    inputs: dict[str, Any] = {
        "config": {s: ctx.config.section(s).model_dump(mode="json") for s in sections},
        "seed": ctx.config.seed,
        "upstream": {},
    }
    for dep in spec.depends:
        entry = ctx.run.entry(dep)
        if not entry or entry.get("status") != "done":
            raise StageError(f"stage {spec.name!r} needs {dep!r}, which has not finished in {ctx.run.root}")
        ctx.run.verify_outputs(dep)
        inputs["upstream"][dep] = {k: v["sha256"] for k, v in sorted(entry["outputs"].items())}
    if spec.external_inputs is not None:
        inputs["external"] = spec.external_inputs(ctx)
    if spec.reviewed is not None:
        from endoked.reviewed import inputs_hash

        review = inputs_hash(ctx.run.root, spec.reviewed)
        if review:
            inputs["reviewed"] = review
    return sha256_json(inputs), inputs


def seed_global_rngs(seed: int, stage: str) -> int:
    """Seed Python's, NumPy's and (when installed) torch's global generators for one stage.

    Stages draw from their own seeded generators where they can, but library code (layer initialisation,
    dropout) draws from the global ones; seeding them per stage makes every stage reproducible on its own.

    Returns:
        The derived 32-bit seed (a hash of ``seed`` and ``stage``, so stages do not share one stream).
    """
    derived = int.from_bytes(hashlib.sha256(f"{seed}:{stage}".encode()).digest()[:4], "little")
    random.seed(derived)
    np.random.seed(derived)  # the legacy global generator, which library code draws from
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(derived)
    return derived


def run_stage(
    run: RunFolder, config: RunConfig, spec: StageSpec, overwrite: bool = False, progress: bool = True
) -> tuple[str, StageResult | None]:
    """Run one stage unless it is already done with the same inputs.

    Returns:
        ``("skipped", None)``, ``("ran", result)`` or ``("resumed", result)``.
    """
    ctx = StageContext(run=run, config=config, stage=spec.name, progress=progress)
    fingerprint, inputs = stage_fingerprint(ctx, spec)
    entry = run.entry(spec.name)
    if not overwrite and entry and entry.get("fingerprint") == fingerprint and run.outputs_intact(spec.name):
        logger.info("stage %s: up to date, skipped", spec.name)
        return "skipped", None
    resuming = (
        not overwrite
        and entry is not None
        and entry.get("fingerprint") == fingerprint
        and entry.get("status") in ("running", "failed")
    )
    if not resuming:
        shutil.rmtree(run.stage_dir(spec.name, create=False), ignore_errors=True)
    run.mark_running(spec.name, fingerprint, inputs)
    logger.info("stage %s: %s", spec.name, "resuming" if resuming else "running")
    seed_global_rngs(config.seed, spec.name)
    t0 = time.perf_counter()
    try:
        with use_executor(config.executor):  # where the stage's batch cores run (endoked.executors)
            result = spec.run(ctx)
    except BaseException as exc:
        run.mark_failed(spec.name, f"{type(exc).__name__}: {exc}")
        raise
    seconds = time.perf_counter() - t0
    run.mark_done(spec.name, result.outputs, result.counts, seconds)
    logger.info("stage %s: done in %.1fs %s", spec.name, seconds, _fmt_counts(result.counts))
    return ("resumed" if resuming else "ran"), result


def _fmt_counts(counts: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict | list))


def select_stage_names(names: Sequence[str], start: str | None, stop: str | None) -> list[str]:
    """The names from ``start`` to ``stop`` inclusive, in ``names``' order (``prompt-seg`` and ``prompt_seg``
    both name a stage).

    Raises:
        StageError: an unknown stage name, or ``start`` after ``stop``.
    """
    names = list(names)
    norm = {n.replace("_", "-"): n for n in names} | {n: n for n in names}
    for label, value in (("--from", start), ("--to", stop)):
        if value is not None and value not in norm:
            raise StageError(f"{label} {value!r} is not an available stage; available: {', '.join(names)}")
    i = names.index(norm[start]) if start else 0
    j = names.index(norm[stop]) if stop else len(names) - 1
    if i > j:
        raise StageError(f"--from {start} comes after --to {stop}")
    return names[i : j + 1]


def select_stages(stages: Mapping[str, StageSpec], start: str | None, stop: str | None) -> list[StageSpec]:
    """The stages from ``start`` to ``stop`` inclusive (names as in :data:`STAGE_ORDER`)."""
    return [stages[n] for n in select_stage_names(list(stages), start, stop)]


def run_pipeline(
    run: RunFolder,
    config: RunConfig,
    start: str | None = None,
    stop: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, str]:
    """Run the selected stages in order; returns ``{stage: "ran"|"resumed"|"skipped"}``.

    ``overwrite`` forces the selected stages to run again; later stages then re-run too because their
    upstream hashes change (unless the outputs came out byte-identical).
    """
    stages = available_stages()
    selected = select_stages(stages, start, stop)
    status: dict[str, str] = {}
    with use_executor(config.executor):  # one executor (one cluster connection) for all the stages
        for spec in selected:
            status[spec.name], _ = run_stage(run, config, spec, overwrite=overwrite, progress=progress)
    return status
