"""Device selection and mixed-precision policy, shared by every model stage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from endoked.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda > mps > cpu; an explicit device that is not available is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use device=cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available; use device=cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from exc


@contextlib.contextmanager
def autocast_for(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Mixed precision only where it pays and is safe: fp16 autocast on CUDA, nothing elsewhere."""
    if enabled and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            yield
    else:
        yield
