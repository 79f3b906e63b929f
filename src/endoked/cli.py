"""Command-line interface: ``endoked <command>``. Every command is a thin shim over a library function.

Stage packages add their own sub-commands: each package listed in :data:`STAGE_CLI_MODULES` has a ``cli``
module defining ``register(app: typer.Typer) -> None``; a missing or broken one is an import error, never a
command that silently disappears.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from endoked import __version__
from endoked.cli_options import (
    ConfigOpt,
    DeviceOpt,
    DryRunOpt,
    OverwriteOpt,
    ProfileOpt,
    SetOpt,
    device_override,
)
from endoked.errors import EndokedError
from endoked.logs import setup_console
from endoked.progress import set_progress

STAGE_CLI_MODULES: tuple[str, ...] = (
    "ingest",
    "synth",
    "extract",
    "mil",
    "cam",
    "prompt_seg",
    "seg",
    "eval",
    "biopsy",
    "export",
    "report",
    "review",
)


def _flag_type_hidden(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A boolean flag takes no value: its help row shows no ``<bool>`` type."""
    return None if self.is_flag else _typer_display_type_rich(self, ctx)


_typer_display_type_rich = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type_hidden  # type: ignore[method-assign]

app = typer.Typer(
    name="endoked",
    help="Colonoscopy records (reports + images) to pixel-level polyp annotations and models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"endoked {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on the console.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on the console.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    set_progress(not no_progress)
    setup_console(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


@config_app.command("show")
def config_show(profile: ProfileOpt = None, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the resolved run config (defaults < profile < file < --set) as YAML."""
    from endoked.config import resolve_config

    typer.echo(resolve_config(profile, config, set_ or ()).to_yaml(), nl=False)


@app.command("run")
def run_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (created or resumed).")],
    archive: Annotated[Path | None, typer.Option("--archive", "-a", help="Archive: manifest file or folder.")] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    start: Annotated[str | None, typer.Option("--from", help="First stage to run.")] = None,
    stop: Annotated[str | None, typer.Option("--to", help="Last stage to run.")] = None,
    overwrite: OverwriteOpt = False,
    dry_run: DryRunOpt = False,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Run `endoked check` first; stop before any stage on problems.")
    ] = True,
    executor: Annotated[str | None, typer.Option("--executor", help="Where batch stages run: local or ray.")] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster to join: auto or HOST:PORT (with --executor ray).")
    ] = None,
    device: DeviceOpt = None,
) -> None:
    """Run the pipeline's available stages in order (resumable; finished stages are skipped)."""
    from endoked.runner import run_from_cli

    flags = [f"executor.kind={executor}"] if executor else []  # shorthands of --set (a later --set wins)
    flags += [f"executor.address={json.dumps(ray_address)}"] if ray_address else []
    flags += device_override(device)
    run_from_cli(
        out=out,
        archive=archive,
        profile=profile,
        config_file=config,
        overrides=[*flags, *(set_ or ())],
        start=start,
        stop=stop,
        overwrite=overwrite,
        dry_run=dry_run,
        check=check,
    )


@app.command("check")
def check_cmd(
    archive: Annotated[Path | None, typer.Option("--archive", "-a", help="Archive: manifest file or folder.")] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder: its config is reused and its disk checked.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First stage to check.")] = None,
    stop: Annotated[str | None, typer.Option("--to", help="Last stage to check.")] = None,
    device: DeviceOpt = None,
) -> None:
    """Check that a run can start: weights, packages, test sets, device, disk, archive. Exit 2 on problems."""
    from endoked.check import check_from_cli

    check_from_cli(archive, profile, config, [*device_override(device), *(set_ or ())], out=out, start=start, stop=stop)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the synthetic archive and the run.")] = Path(
        "endoked-demo"
    ),
    exams: Annotated[int, typer.Option("--exams", help="Number of synthetic exams.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic archive and the run.")] = 0,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = None,
) -> None:
    """Synthesise a small archive, run the pipeline with the cpu-small profile and score it."""
    from endoked.demo import run_demo

    run_demo(out=out, exams=exams, seed=seed, overrides=[*device_override(device), *(set_ or ())], overwrite=overwrite)


def _register_stage_commands() -> None:
    for name in STAGE_CLI_MODULES:
        importlib.import_module(f"endoked.{name}.cli").register(app)


_register_stage_commands()


_USER_OS_ERRORS = (PermissionError, FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _os_error_message(exc: OSError) -> str:
    """One line naming the file and the OS's reason, e.g. ``cannot write /x/y: Permission denied``."""
    from endoked.safe_read import display_name

    where = f" {display_name(exc.filename)}" if exc.filename is not None else ""
    return f"file system error at{where}: {exc.strerror or exc}" if where else f"file system error: {exc}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code instead of exiting."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="endoked", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown command, bad or missing option
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc}", err=True)
        return int(getattr(exc, "exit_code", 2))
    except EndokedError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        return 130
    except OSError as exc:  # the file system refused something no check of the package caught first
        typer.echo(f"error: {_os_error_message(exc)}", err=True)
        return 2 if isinstance(exc, _USER_OS_ERRORS) else 1
    except Exception as exc:  # a stage failed on something unforeseen: its cause, not a traceback
        logging.getLogger("endoked").debug("unexpected error", exc_info=True)
        typer.echo(f"error: {type(exc).__name__}: {exc} (run with -v for the traceback)", err=True)
        return 1
    return rv if isinstance(rv, int) else 0


def run_cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
