"""``endoked review RUN [--host 127.0.0.1] [--port 0]``: the review web app of a run folder."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "reviewer"


def register(app: typer.Typer) -> None:
    """Add the ``review`` command."""

    @app.command("review")
    def review_cmd(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        host: Annotated[str, typer.Option("--host", help="Interface to listen on (loopback by default).")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
        reviewer: Annotated[
            str | None, typer.Option("--reviewer", help="Reviewer name the page starts with (default: the user).")
        ] = None,
        segmenter: Annotated[
            str | None,
            typer.Option("--segmenter", help="Segmenter for live re-prompting (default: the run's own)."),
        ] = None,
        live: Annotated[bool, typer.Option("--live/--no-live", help="Re-prompt the segmenter from the page.")] = True,
    ) -> None:
        """Serve a local web page to accept, fix or reject a run's pseudo labels and correct report fields."""
        from endoked.review.server import build_server

        server = build_server(run, host, port, reviewer or _default_reviewer(), segmenter, live)
        typer.echo(f"review {run} at {server.url}  (Ctrl+C to stop)")
        server.serve_forever()
