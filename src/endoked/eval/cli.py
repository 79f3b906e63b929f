"""``endoked eval``: score prediction maps against masks and print one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from endoked.cli_options import add_stage_run_command
from endoked.errors import ConfigError


def parse_preds(values: list[str]) -> dict[str, Path]:
    """Turn ``--pred`` values (``DIR`` or ``NAME=DIR``) into method name -> folder.

    A single unnamed folder gets the empty name; several unnamed folders are named after the folder.

    Raises:
        ConfigError: no value, or two methods with the same name.
    """
    if not values:
        raise ConfigError("give at least one --pred DIR (or --pred NAME=DIR)")
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or Path(value).exists():
            name, path = ("" if len(values) == 1 else Path(value).name), value
        if name in out:
            raise ConfigError(f"--pred: method name {name!r} given twice; use NAME=DIR with distinct names")
        out[name] = Path(path)
    return out


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the CLI: ``endoked eval --pred ...`` scores folders, ``endoked eval run`` runs the stage."""
    eval_app = typer.Typer(
        invoke_without_command=True,
        no_args_is_help=True,
        help="Score prediction maps (endoked eval --pred ...), or run the eval stage (eval run).",
    )
    app.add_typer(eval_app, name="eval")
    add_stage_run_command(
        eval_app,
        "eval",
        "Score the run's seg model on the PraNet-layout test sets of eval.data "
        "and write eval/metrics.json, metrics.md and plots/.",
        "Run folder (seg done).",
    )

    @eval_app.callback()
    def eval_cmd(
        ctx: typer.Context,
        pred: Annotated[
            list[str] | None,
            typer.Option(
                "--pred",
                "-p",
                help="Prediction folder, or NAME=FOLDER (repeat to compare methods). With --data: "
                "a root holding <set>/<stem>.png.",
            ),
        ] = None,
        gt: Annotated[Path | None, typer.Option("--gt", help="Mask folder (one set).")] = None,
        data: Annotated[
            Path | None,
            typer.Option("--data", help="PraNet-layout root: <set>/masks (and <set>/images) for several sets."),
        ] = None,
        sets: Annotated[list[str] | None, typer.Option("--sets", help="With --data: only these sets.")] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics and curves as JSON.")] = None,
        csv_out: Annotated[Path | None, typer.Option("--csv", help="Write per-image figures as CSV.")] = None,
        plots: Annotated[Path | None, typer.Option("--plots", help="Folder for Dice curve/histogram PNGs.")] = None,
        markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
        allow_missing: Annotated[
            bool,
            typer.Option(
                "--allow-missing", help="Score missing predictions as all-zero maps (reported) instead of failing."
            ),
        ] = False,
        workers: Annotated[int | None, typer.Option("--workers", help="Scoring processes (0 = CPU cores).")] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="Named profile.")] = None,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", "-s", help="Override, e.g. --set eval.normalize=false (repeatable)."),
        ] = None,
    ) -> None:
        """Score prediction maps with the PraNet toolbox's metrics (mDice, mIoU, wFb, Sa, Em, MAE...)."""
        from endoked.config import resolve_config
        from endoked.eval.folder import evaluate_folder, evaluate_sets
        from endoked.eval.report import format_table, write_csv, write_json

        if ctx.invoked_subcommand is not None:
            return
        if (gt is None) == (data is None):
            raise ConfigError("give exactly one of --gt DIR (one set) or --data ROOT (PraNet layout)")
        if sets and data is None:
            raise ConfigError("--sets needs --data ROOT")
        cfg = resolve_config(profile, config, set_ or ()).eval.model_copy()
        if allow_missing:
            cfg.allow_missing = True
        if workers is not None:
            cfg.workers = workers
        from endoked.runfolder import lock_runs

        with lock_runs(json_out, csv_out, plots):
            methods = parse_preds(pred or [])
            if gt is not None:
                results = [evaluate_folder(folder, gt, cfg, method=name) for name, folder in methods.items()]
            elif data is not None:
                results = evaluate_sets(methods, data, cfg, sets=sets)
            else:  # unreachable: checked above
                raise ConfigError("give --gt DIR or --data ROOT")
            typer.echo(format_table(results, markdown=markdown), nl=False)
            for r in results:
                if r.missing or r.extra:
                    typer.echo(
                        f"{r.set}{' ' + r.method if r.method else ''}: {len(r.missing)} missing prediction(s) "
                        f"scored as empty, {len(r.extra)} extra prediction(s) ignored",
                        err=True,
                    )
            if json_out:
                typer.echo(f"wrote {write_json(json_out, results, cfg)}", err=True)
            if csv_out:
                typer.echo(f"wrote {write_csv(csv_out, results)}", err=True)
            if plots:
                from endoked.eval.plots import write_plots

                files = write_plots(results, plots, bins=cfg.hist_bins)
                typer.echo(f"wrote {len(files)} plot(s) to {plots}", err=True)
