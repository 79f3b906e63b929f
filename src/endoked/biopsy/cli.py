"""``endoked biopsy train|predict|eval``: the optical-biopsy classifier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from endoked.biopsy.config import BiopsyConfig
from endoked.errors import ConfigError

ConfigFileOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML file: biopsy fields at the top level or under a 'biopsy:' section."),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override, e.g. --set biopsy.top_k=5 (or top_k=5); repeatable.")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Image decoding threads.")]
TtaOpt = Annotated[bool, typer.Option("--tta/--no-tta", help="Average over the original and flipped views.")]


def build_config(config_file: Path | None = None, overrides: Sequence[str] = ()) -> BiopsyConfig:
    """Defaults < YAML file < ``--set`` overrides.

    Raises:
        ConfigError: unreadable file, malformed override, unknown field or invalid value.
    """
    from endoked.config import deep_merge, load_yaml_file, parse_overrides

    data: dict[str, Any] = {}
    if config_file is not None:
        file_data = load_yaml_file(config_file)
        section = file_data.get("biopsy", file_data) if isinstance(file_data.get("biopsy"), dict) else file_data
        data = deep_merge(data, section)
    parsed = parse_overrides(list(overrides))
    data = deep_merge(data, parsed.pop("biopsy", {}) if isinstance(parsed.get("biopsy"), dict) else {})
    data = deep_merge(data, parsed)
    try:
        return BiopsyConfig.model_validate(data)
    except ValidationError as exc:
        lines = ["invalid biopsy configuration:"]
        for err in exc.errors():
            lines.append(f"  biopsy.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from exc


def register(app: typer.Typer) -> None:
    """Add the ``biopsy`` command group to ``app``."""
    biopsy_app = typer.Typer(
        help="Optical biopsy: neoplastic vs non-neoplastic polyp classifier.", no_args_is_help=True
    )
    app.add_typer(biopsy_app, name="biopsy")

    @biopsy_app.command("train")
    def train_cmd(
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (model.pt, train.json, splits.csv).")],
        run: Annotated[
            Path | None, typer.Option("--run", help="Run folder to pre-train from (extract labels + MIL scores).")
        ] = None,
        labels: Annotated[
            Path | None,
            typer.Option(
                "--labels", "-l", help="Labelled set to fine-tune on: CSV (image,label[,group]) or class folders."
            ),
        ] = None,
        config: ConfigFileOpt = None,
        set_: SetOpt = None,
        device: DeviceOpt = "auto",
        workers: WorkersOpt = 2,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit.")] = False,
    ) -> None:
        """Pre-train on report-derived labels of a run and/or fine-tune on a labelled set; calibrate; save."""
        cfg = build_config(config, set_ or ())
        if dry_run:
            import yaml

            typer.echo(yaml.safe_dump({"biopsy": cfg.model_dump(mode="json")}, sort_keys=False), nl=False)
            return
        from endoked.biopsy.api import train_classifier
        from endoked.runfolder import lock_runs

        with lock_runs(out, run):
            summary = train_classifier(cfg, out, run_dir=run, labels=labels, device=device, workers=workers)
        cal = summary["calibration"]
        typer.echo(
            f"wrote {out / 'model.pt'} (temperature {cal['temperature']:.3f}, threshold "
            f"{cal['threshold']:.3f} from {cal['threshold_from']})"
        )

    @biopsy_app.command("predict")
    def predict_cmd(
        model: Annotated[Path, typer.Option("--model", "-m", help="model.pt written by `biopsy train`.")],
        images: Annotated[
            Path, typer.Option("--images", "-i", help="Image file, image folder, labelled CSV or class folders.")
        ],
        out: Annotated[Path, typer.Option("--out", "-o", help="Predictions CSV.")],
        device: DeviceOpt = "auto",
        workers: WorkersOpt = 2,
        tta: TtaOpt = False,
    ) -> None:
        """Write the calibrated probability of neoplastic and the predicted class per image."""
        from endoked.biopsy.api import predict_images, write_predictions
        from endoked.runfolder import lock_runs

        with lock_runs(out):
            rows = predict_images(model, images, device, workers, tta)
            write_predictions(out, rows)
        bad = sum(r["prob_neoplastic"] is None for r in rows)
        typer.echo(f"wrote {out}: {len(rows) - bad} scored" + (f", {bad} unreadable/unusable" if bad else ""))

    @biopsy_app.command("eval")
    def eval_cmd(
        model: Annotated[Path, typer.Option("--model", "-m", help="model.pt written by `biopsy train`.")],
        labels: Annotated[
            Path, typer.Option("--labels", "-l", help="Labelled test set: CSV (image,label) or class folders.")
        ],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Folder for metrics.json, predictions.csv and roc.png.")
        ] = None,
        set_: SetOpt = None,
        device: DeviceOpt = "auto",
        workers: WorkersOpt = 2,
        tta: TtaOpt = False,
    ) -> None:
        """AUROC, accuracy, sensitivity, specificity at the model's threshold, with bootstrap CIs."""
        from endoked.biopsy.api import evaluate_model
        from endoked.runfolder import lock_runs

        cfg = build_config(None, set_) if set_ else None
        with lock_runs(out):
            result = evaluate_model(model, labels, out, device, workers, tta, cfg_override=cfg)
        for m in ("auroc", "accuracy", "sensitivity", "specificity"):
            ci = result.get(f"{m}_ci")
            ci_txt = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            typer.echo(f"{m:12s} {result[m]:.3f}{ci_txt}")
        typer.echo(f"threshold    {result['threshold']:.3f}  (n={result['n']})")
        if out is not None:
            typer.echo(f"wrote {out / 'metrics.json'}, predictions.csv, roc.png", err=True)
        else:
            typer.echo(json.dumps({k: result[k] for k in ("tp", "tn", "fp", "fn")}), err=True)
