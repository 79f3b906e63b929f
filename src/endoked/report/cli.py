"""``endoked report RUN``: (re)build a run's HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from endoked.report import DEFAULT_MAX_EXAMS


def register(app: typer.Typer) -> None:
    """Add the ``report`` command."""

    @app.command("report")
    def report_cmd(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default RUN/report.html).")] = None,
        max_exams: Annotated[
            int,
            typer.Option(
                "--max-exams",
                min=0,
                help="Exams that get a page in exams/ next to the report (report-positive first, then by MIL "
                "score); 0 for none.",
            ),
        ] = DEFAULT_MAX_EXAMS,
    ) -> None:
        """Write a self-contained HTML report of a run (config, stages, rejects, examples, figures)."""
        from endoked.errors import StageError
        from endoked.report.build import build_report
        from endoked.runfolder import lock_runs

        if not (run / "ledger.json").is_file():
            raise StageError(f"{run} is not a run folder (no ledger.json)")
        with lock_runs(run, out):
            typer.echo(f"report: {build_report(run, out, max_exams=max_exams)}")
