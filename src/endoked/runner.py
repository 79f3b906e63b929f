"""Glue between the CLI and the pipeline: build the config, prepare the run folder, run, summarise."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from endoked.config import RunConfig, resolve_config
from endoked.errors import EndokedError
from endoked.health import run_warnings
from endoked.io import ensure_writable_dir
from endoked.logs import attach_run_log, detach
from endoked.pipeline import run_pipeline
from endoked.progress import progress_enabled
from endoked.runfolder import RunFolder

logger = logging.getLogger(__name__)


def build_config(
    run: RunFolder,
    archive: Path | None = None,
    profile: str | None = None,
    config_file: Path | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Resolve the config of a run.

    A run folder that already holds ``config.yaml`` reuses it when neither ``profile`` nor ``config_file``
    is given (so ``endoked run --out RUN`` resumes with the same settings); ``--set`` overrides and
    ``archive`` apply on top either way.
    """
    if config_file is None and profile is None and run.config_path.is_file():
        config_file = run.config_path
    extra: dict[str, Any] = {"ingest": {"archive": str(Path(archive).resolve())}} if archive else {}
    return resolve_config(profile, config_file, overrides, extra=extra)


def execute(
    run: RunFolder, config: RunConfig, start: str | None = None, stop: str | None = None, overwrite: bool = False
) -> dict[str, str]:
    """Take the run folder's lock, write config/env, run the selected stages with ``log.txt`` attached, return
    per-stage status. With ``overwrite`` a corrupt ledger is set aside first (see
    :meth:`RunFolder.recover_ledger`); without it a corrupt ledger stops the run with a message."""
    from endoked.device import resolve_device
    from endoked.executors import make_executor

    make_executor(config.executor)  # a missing optional backend (Ray) stops the run before anything is written
    ensure_writable_dir(run.root)
    with run.lock():
        handler = attach_run_log(run.log_path)
        try:
            if overwrite:
                run.recover_ledger()
            else:
                run.ledger()  # a corrupt ledger is reported before anything is written
            run.init(config.to_yaml(), config.seed, str(resolve_device(config.device)))
            t0 = time.perf_counter()
            if config.profile == "default":
                logger.info("run %s (no --profile: built-in defaults, then any --config file and --set)", run.root)
            else:
                logger.info("run %s (profile %s)", run.root, config.profile)
            status = run_pipeline(run, config, start=start, stop=stop, overwrite=overwrite, progress=progress_enabled())
            logger.info("run finished in %.1fs", time.perf_counter() - t0)
            return status
        finally:
            detach(handler)


def summary_lines(run: RunFolder, status: dict[str, str]) -> list[str]:
    """One line per stage: status, time and headline counts from the ledger."""
    lines = []
    for stage, how in status.items():
        entry = run.entry(stage) or {}
        counts = entry.get("counts", {})
        flat = ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict | list))
        peak = entry.get("peak_rss_mb")
        mem = f" {peak / 1024:>5.1f} GB" if isinstance(peak, int | float) else ""
        lines.append(f"  {stage:<11} {how:<8} {entry.get('seconds', 0):>7.1f}s{mem}  {flat}")
    return lines


def run_from_cli(
    out: Path,
    archive: Path | None,
    profile: str | None,
    config_file: Path | None,
    overrides: Sequence[str],
    start: str | None,
    stop: str | None,
    overwrite: bool,
    dry_run: bool,
    check: bool = False,
) -> dict[str, str]:
    """``endoked run`` / ``endoked ingest``: resolve, optionally print (dry run), check (see
    :mod:`endoked.check`; problems stop the run before any stage), execute, summarise."""
    run = RunFolder(out)
    config = build_config(run, archive, profile, config_file, overrides)
    if dry_run:
        typer.echo(config.to_yaml(), nl=False)
        return {}
    if check:
        from endoked.check import CheckFailedError, check_config, selected_stages

        problems = check_config(config, selected_stages(start, stop), out=run.root)
        if problems:
            raise CheckFailedError(
                problems, "nothing was run: fix the problems above, or pass --no-check to run anyway"
            )
    try:
        status = execute(run, config, start=start, stop=stop, overwrite=overwrite)
    except EndokedError:
        if run.ledger_path.is_file():
            write_report(run)  # the failed stage and its message are in the report too
        raise
    typer.echo(f"run folder: {run.root}")
    for line in summary_lines(run, status):
        typer.echo(line)
    for warning in run_warnings(run, config.ingest.archive):
        typer.echo(f"warning: {warning}", err=True)
    write_report(run)
    return status


def write_report(run: RunFolder) -> None:
    """Refresh ``RUN/report.html``; a report failure is logged, never fatal to the run."""
    from endoked.report.build import build_report

    try:
        typer.echo(f"report: {build_report(run.root)}")
    except Exception as exc:
        logger.warning("could not write the run report: %s: %s", type(exc).__name__, exc)
