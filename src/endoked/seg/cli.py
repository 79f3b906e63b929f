"""``endoked predict`` and ``endoked seg ...``: thin shims over :mod:`endoked.seg`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from endoked.cli_options import ConfigOpt, DryRunOpt, ProfileOpt, SetOpt, add_stage_run_command


def check_device(name: str) -> str:
    """Refuse device names other than auto, cpu, cuda, cuda:N and mps (ConfigError)."""
    from endoked.errors import ConfigError

    base, _, index = name.partition(":")
    if base not in ("auto", "cpu", "cuda", "mps") or (index and (base != "cuda" or not index.isdigit())):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return name


DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps (default: the config's).")]


def register(app: typer.Typer) -> None:
    """Add ``predict`` and the ``seg`` group (``seg train``, ``seg run``, ``seg export-onnx``, ``seg convert``)."""
    seg_app = typer.Typer(
        help="Segmentation network: train, run the stage, export for deployment.", no_args_is_help=True
    )
    app.add_typer(seg_app, name="seg")

    @app.command("predict")
    def predict_cmd(
        model: Annotated[
            Path,
            typer.Option(
                "--model",
                "-m",
                help="Segmentation checkpoint (model.pt), or a published Polyp-PVT / EndoKED-SEG or PraNet .pth.",
            ),
        ],
        images: Annotated[Path, typer.Option("--images", "-i", help="Folder of images.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for <stem>.png probability maps.")],
        device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
        tta: Annotated[bool, typer.Option("--tta/--no-tta", help="Average with the flipped image's map.")] = False,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")] = 8,
    ) -> None:
        """Write one probability map <stem>.png (0-255, the image's size) per image."""
        from endoked.progress import progress_enabled
        from endoked.runfolder import lock_runs
        from endoked.seg.predict import predict_folder

        with lock_runs(out):
            summary = predict_folder(
                model,
                images,
                out,
                device=check_device(device),
                tta_flip=tta,
                batch_size=batch_size,
                progress=progress_enabled(),
            )
        typer.echo(
            f"{len(summary.written)} maps written to {out}"
            + (f"; {len(summary.errors)} images skipped (see {out / 'errors.jsonl'})" if summary.errors else "")
        )

    @seg_app.command("train")
    def train_cmd(
        data: Annotated[Path, typer.Option("--data", "-d", help="PraNet-layout folder: images/ and masks/.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumed when it holds last.pt).")],
        init: Annotated[
            Path | None,
            typer.Option(
                "--init",
                help="Start from this checkpoint (model.pt, model.safetensors, or a published Polyp-PVT / "
                "EndoKED-SEG .pth); it decides the architecture. Same as --set seg.model.init=PATH.",
            ),
        ] = None,
        profile: ProfileOpt = None,
        config: ConfigOpt = None,
        set_: SetOpt = None,
        device: DeviceOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Fully supervised training on real masks (the same code path as pseudo-label training)."""
        import yaml

        from endoked.device import resolve_device
        from endoked.progress import progress_enabled
        from endoked.runfolder import lock_runs
        from endoked.seg.api import train_folder
        from endoked.seg.stage import resolve_seg_config
        from endoked.seg.train import dist_info

        if device is not None:
            check_device(device)
        cfg, run_cfg = resolve_seg_config(profile, config, set_ or ())
        if init is not None:
            cfg.model.init = str(init)
        if dry_run:
            typer.echo(yaml.safe_dump({"seg": cfg.model_dump(mode="json")}, sort_keys=False), nl=False)
            return
        dev = resolve_device(device or cfg.device or run_cfg.device)
        with lock_runs(out):
            result = train_folder(
                data, out, cfg, seed=run_cfg.seed, device=dev, workers=run_cfg.workers, progress=progress_enabled()
            )
        val = result.best_val.get("mean_dice")
        if dist_info()[1] != 0:  # other torchrun processes stay quiet
            return
        typer.echo(
            f"checkpoint: {result.checkpoint} (epoch {result.best_epoch}"
            + (f", validation mean Dice {val:.4f})" if val is not None else ")")
        )

    @seg_app.command("export-onnx")
    def export_onnx_cmd(
        model: Annotated[Path, typer.Argument(help="Segmentation checkpoint (model.pt or model.safetensors).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
        opset: Annotated[int, typer.Option("--opset", min=14, help="ONNX opset version.")] = 18,
        check: Annotated[
            bool, typer.Option("--check/--no-check", help="Compare ONNX Runtime with PyTorch on random images.")
        ] = True,
    ) -> None:
        """Export a checkpoint to ONNX (dynamic batch axis; input RGB in [0, 1] at the training size)."""
        from endoked.seg.deploy import export_onnx

        result = export_onnx(model, out, opset=opset, check=check)
        checked = f"; max |onnx - torch| {result.max_abs_diff:.2g}" if result.max_abs_diff is not None else ""
        typer.echo(f"{result.path}: input (B, 3, {result.image_size}, {result.image_size}){checked}")

    @seg_app.command("convert")
    def convert_cmd(
        model: Annotated[Path, typer.Argument(help="Segmentation checkpoint (model.pt or model.safetensors).")],
        out: Annotated[
            Path, typer.Option("--out", "-o", help="model.safetensors (+ model.json beside it) or model.pt.")
        ],
    ) -> None:
        """Convert a checkpoint between model.pt and model.safetensors + model.json (read without unpickling)."""
        from endoked.seg.checkpoint import config_path, convert_checkpoint

        dest = convert_checkpoint(model, out)
        extra = f" and {config_path(dest)}" if dest.suffix == ".safetensors" else ""
        typer.echo(f"wrote {dest}{extra}")

    add_stage_run_command(
        seg_app,
        "seg",
        "Run the seg stage of a run folder: train on its pseudo labels, refine, write seg/model.pt.",
        "Run folder whose upstream stages are done.",
    )
