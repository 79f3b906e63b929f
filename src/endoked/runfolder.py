"""Run folder: one folder per run holding ``config.yaml``, ``env.json``, ``log.txt``, the stage ledger
``ledger.json`` and every stage's outputs under ``<stage>/``.

The ledger records, per stage, its status (``running``/``done``/``failed``), the fingerprint of what went
in (stage config + upstream outputs + external inputs), and what came out (paths relative to the run
folder and their sha256). A stage whose fingerprint and outputs are unchanged is skipped; a stage left
``running`` with the same fingerprint resumes from the partial work in its folder; anything else starts
that stage afresh.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from endoked import __version__
from endoked.errors import EndokedError, StageError
from endoked.io import atomic_write_json, atomic_write_text, sha256_file

LEDGER = "ledger.json"
LOCK = ".lock"

logger = logging.getLogger(__name__)


class RunLockedError(EndokedError):
    """Another process holds the run folder's lock."""

    exit_code = 2


class CorruptLedgerError(StageError):
    """``ledger.json`` cannot be parsed or does not hold a ledger."""


def peak_rss_mb() -> float | None:
    """Peak resident memory so far of this process and of its finished child processes (worker pools), in MiB
    (the larger of the two; Linux and macOS units). Recorded when a stage finishes: a stage that raised the
    process's peak shows a higher figure than the stage before it. None where the platform cannot say."""
    import sys

    try:
        import resource
    except ImportError:  # Windows
        return None

    scale = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024  # bytes on macOS, KiB on Linux
    usage = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    return round(usage * scale, 1)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def git_sha(path: Path | None = None) -> str | None:
    """The git commit of the installed source tree, when it is a checkout."""
    here = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_info(seed: int, device: str) -> dict[str, Any]:
    """Versions, platform, git sha, seed and device, for ``env.json``."""
    info: dict[str, Any] = {
        "endoked": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "git_sha": git_sha(),
        "seed": seed,
        "device": device,
        "created": _now(),
        "packages": {},
    }
    from importlib import metadata

    for pkg in (
        "numpy",
        "torch",
        "torchvision",
        "timm",
        "pyarrow",
        "pydantic",
        "pillow",
        "opencv-python-headless",
        "pysodmetrics",
    ):
        try:
            info["packages"][pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info["packages"][pkg] = None
    try:
        import torch

        info["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return info


def enclosing_run(path: str | Path) -> Path | None:
    """The run folder that ``path`` is, or lies in: the nearest of ``path`` and its parents holding a ledger or a
    lock file; None when there is none. ``path`` need not exist yet (an output about to be written)."""
    here = Path(path).resolve()
    for folder in (here, *here.parents):
        if (folder / LEDGER).is_file() or (folder / LOCK).is_file():
            return folder
    return None


@contextlib.contextmanager
def lock_runs(*paths: str | Path | None) -> Iterator[None]:
    """Hold the lock of every run folder one of ``paths`` is or lies in, for the block.

    Commands that read a whole run or write into one outside the pipeline runner (``export``, ``report``,
    ``biopsy``, ``seg train``, ``predict``, ``mil score``, ...) take the same exclusive lock as a run, so they
    never see a stage half-written, nor write beside one; a second writer fails at once with
    :class:`RunLockedError` naming the holder's PID. Paths outside any run folder take no lock.
    """
    runs = sorted({run for p in paths if p is not None and (run := enclosing_run(p)) is not None})
    with contextlib.ExitStack() as stack:
        for run in runs:
            stack.enter_context(RunFolder(run).lock())
        yield


class RunFolder:
    """A run folder on disk. Cheap to construct; nothing is written until asked."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # -- layout -------------------------------------------------------------------------------------
    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER

    @property
    def log_path(self) -> Path:
        return self.root / "log.txt"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    def stage_dir(self, stage: str, create: bool = True) -> Path:
        """The folder a stage writes into (``<run>/<stage>``)."""
        path = self.root / stage.replace("-", "_")
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def rel(self, path: str | Path) -> str:
        """A path relative to the run folder, POSIX style (how tables and the ledger store paths)."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def abs(self, rel: str | Path) -> Path:
        """Absolute path of a run-relative path."""
        return self.root / Path(rel)

    # -- metadata -----------------------------------------------------------------------------------
    def init(self, config_yaml: str, seed: int, device: str) -> None:
        """Create the folder and write ``config.yaml`` and ``env.json`` (atomically)."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, config_yaml)
        atomic_write_json(self.root / "env.json", environment_info(seed, device))

    # -- lock ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run folder (``RUN/.lock``, holding the holder's PID) for the block.

        A second process asking for it fails at once with :class:`RunLockedError` naming the holder's PID.
        The lock is an ``flock`` on the open file: the kernel drops it when the holder exits, however it
        exits, so a lock file left by a dead process never blocks a later run.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip() or "unknown"
                raise RunLockedError(
                    f"run folder {self.root} is in use by another endoked process (PID {holder}); "
                    "wait for it to finish, or use another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- ledger -------------------------------------------------------------------------------------
    def _read_ledger(self) -> dict[str, Any]:
        try:
            text = self.ledger_path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptLedgerError(
                f"run ledger {self.ledger_path} is corrupt ({exc}); re-run with --overwrite "
                "to set it aside and run the stages again"
            ) from None
        except OSError as exc:
            raise StageError(f"cannot read run ledger {self.ledger_path}: {exc.strerror or exc}") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.setdefault("stages", {}), dict)
            or not all(isinstance(v, dict) for v in data["stages"].values())
        ):
            raise CorruptLedgerError(
                f"run ledger {self.ledger_path} does not hold a ledger (expected an object "
                "with a 'stages' object); re-run with --overwrite to set it aside and run the "
                "stages again"
            )
        return dict(data)

    def ledger(self) -> dict[str, Any]:
        """The ledger as a dict (``{"stages": {...}}``); empty when the run is new.

        Raises:
            CorruptLedgerError: the file is truncated, not JSON, or not a ledger (see :meth:`recover_ledger`).
        """
        if not self.ledger_path.exists():
            return {"stages": {}}
        return self._read_ledger()

    def recover_ledger(self) -> Path | None:
        """Set a corrupt ledger aside as ``ledger.json.corrupt-<timestamp>`` (with a warning), so every stage
        counts as not done and the ledger is rebuilt as the stages run again.

        Returns:
            Where the corrupt ledger went, or None when the ledger was fine (or absent).
        """
        if not self.ledger_path.exists():
            return None
        try:
            self._read_ledger()
            return None
        except CorruptLedgerError as exc:
            stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            aside = self.ledger_path.with_name(f"{LEDGER}.corrupt-{stamp}")
            os.replace(self.ledger_path, aside)
            logger.warning("%s; it was moved to %s and every stage will run again", exc, aside.name)
            return aside

    def verify_outputs(self, stage: str) -> None:
        """Check that a finished stage's recorded outputs exist with their recorded sha256.

        Raises:
            StageError: naming the damaged file and the stage to re-run.
        """
        entry = self.entry(stage) or {}
        for name, out in sorted(entry.get("outputs", {}).items()):
            path = self.abs(out["path"])
            if not path.is_file():
                why = "is missing"
            elif sha256_file(path) != out["sha256"]:
                why = "does not match the sha256 recorded in the ledger (damaged or edited)"
            else:
                continue
            raise StageError(
                f"output {name!r} of stage {stage!r} ({path}) {why}; re-run that stage: "
                f"endoked run --out {self.root} --from {stage}"
            )

    def entry(self, stage: str) -> dict[str, Any] | None:
        """The ledger entry of one stage, if any."""
        entry = self.ledger()["stages"].get(stage)
        return dict(entry) if entry else None

    def _update(self, stage: str, entry: dict[str, Any] | None) -> None:
        data = self.ledger()
        if entry is None:
            data["stages"].pop(stage, None)
        else:
            data["stages"][stage] = entry
        atomic_write_json(self.ledger_path, data)

    def mark_running(self, stage: str, fingerprint: str, inputs: dict[str, Any]) -> None:
        prev = self.entry(stage) or {}
        self._update(
            stage,
            {
                "status": "running",
                "fingerprint": fingerprint,
                "inputs": inputs,
                "started": _now(),
                "attempts": int(prev.get("attempts", 0)) + 1,
            },
        )

    def mark_done(self, stage: str, outputs: dict[str, str], counts: dict[str, Any], seconds: float) -> None:
        entry = self.entry(stage)
        if entry is None:
            raise StageError(f"stage {stage} finished but was never marked running")
        entry.update(
            {
                "status": "done",
                "finished": _now(),
                "seconds": round(seconds, 3),
                "peak_rss_mb": peak_rss_mb(),
                "outputs": {name: {"path": rel, "sha256": sha256_file(self.abs(rel))} for name, rel in outputs.items()},
                "counts": counts,
            }
        )
        self._update(stage, entry)

    def mark_failed(self, stage: str, error: str) -> None:
        entry = self.entry(stage) or {}
        entry.update({"status": "failed", "error": error, "finished": _now()})
        self._update(stage, entry)

    def forget(self, stage: str, remove_outputs: bool = True) -> None:
        """Drop a stage from the ledger and (by default) delete its folder."""
        self._update(stage, None)
        if remove_outputs:
            shutil.rmtree(self.stage_dir(stage, create=False), ignore_errors=True)

    def outputs_intact(self, stage: str) -> bool:
        """True when the stage is done and every recorded output still exists with its recorded hash."""
        entry = self.entry(stage)
        if not entry or entry.get("status") != "done":
            return False
        for out in entry.get("outputs", {}).values():
            path = self.abs(out["path"])
            if not path.is_file() or sha256_file(path) != out["sha256"]:
                return False
        return True

    def output(self, stage: str, name: str) -> Path:
        """Absolute path of a finished stage's named output, or a StageError saying what to run."""
        entry = self.entry(stage)
        if not entry or entry.get("status") != "done":
            raise StageError(
                f"stage {stage!r} has not finished in run {self.root}; run it first (endoked run --to {stage})"
            )
        try:
            return self.abs(entry["outputs"][name]["path"])
        except KeyError as exc:
            raise StageError(f"stage {stage!r} has no output {name!r} in run {self.root}") from exc
