"""Segmenters that run on a user-downloaded checkpoint (``sam``, ``medsam``, ``sam2``): where the package and the
file come from, and the one strict checkpoint loader.

A :class:`CheckpointSource` carries what a user has to do (install a package, download a file, set
``prompt_seg.weights``); the backends' errors and ``endoked check`` both word their fixes from it.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from endoked.errors import BackendUnavailableError, WeightsNotFoundError

WEIGHTS_KEY = "prompt_seg.weights"


@dataclass(frozen=True)
class CheckpointSource:
    """The package and the checkpoint a segmenter needs.

    Attributes:
        label: the model's name in messages (``SAM``, ``MedSAM``, ``SAM 2``).
        module: import name of the package that holds the model code.
        distribution: its name on PyPI.
        install: the install command.
        download: which checkpoint file(s) to download and from where.
        variant_key: config key of the model variant the checkpoint must match (``None``: one variant).
    """

    label: str
    module: str
    distribution: str
    install: str
    download: str
    variant_key: str | None = None

    def import_package(self, segmenter: str) -> Any:
        """The package's module; :class:`BackendUnavailableError` with the install command when it is missing."""
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise BackendUnavailableError(
                f"segmenter {segmenter!r} needs the {self.distribution} package: {self.install}"
            ) from exc

    def fix(self, weights_key: str = WEIGHTS_KEY) -> str:
        """How to provide the checkpoint: download it and set ``weights_key`` (and the variant key) to it."""
        variant = f" (with {self.variant_key} matching it)" if self.variant_key else ""
        return f"{self.download} on a machine with internet and set {weights_key} to the file{variant}"

    def resolve(self, weights: str | Path | None, segmenter: str) -> Path:
        """The local checkpoint file.

        Raises:
            WeightsNotFoundError: ``weights`` is not set or is not a file; the message says what to download and
                which key to set.
        """
        if weights is None:
            raise WeightsNotFoundError(f"segmenter {segmenter!r} needs a {self.label} checkpoint: {self.fix()}")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{self.label} checkpoint not found at {path}: {self.fix()}")
        return path


def load_checkpoint(model: torch.nn.Module, path: Path, what: str) -> None:
    """Load a checkpoint file into ``model``, every key and shape matching (strict).

    A plain state dict and a ``{"model": state_dict, ...}`` training checkpoint are both accepted.

    Args:
        model: the built model.
        path: the checkpoint file.
        what: the model in messages (e.g. ``"SAM vit_b"``).

    Raises:
        WeightsNotFoundError: the file is not a torch checkpoint, holds no state dict, or does not fit ``model``.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise WeightsNotFoundError(f"{what} checkpoint {path} cannot be read as a torch checkpoint: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise WeightsNotFoundError(f"{what} checkpoint {path} holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # torch lists the missing/unexpected keys on tab-indented lines
        raise WeightsNotFoundError(f"{what} checkpoint {path} does not fit the model: {detail}") from exc


def checkpoint_source(segmenter: str) -> CheckpointSource | None:
    """What a registered segmenter needs from the user (``None``: nothing, or its weights ship in a package)."""
    if segmenter == "sam":
        from endoked.prompt_seg.sam import SOURCE

        return SOURCE
    if segmenter == "medsam":
        from endoked.prompt_seg.medsam import SOURCE as MEDSAM

        return MEDSAM
    if segmenter == "sam2":
        from endoked.prompt_seg.sam2 import SOURCE as SAM2

        return SAM2
    return None
