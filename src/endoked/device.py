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
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (``None``: as they are) and restore the process's count after
    it, so that one stage's setting does not carry over into the next stage or the next run in the same process."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def autocast_for(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Mixed precision only where it pays and is safe: fp16 autocast on CUDA, nothing elsewhere."""
    if enabled and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            yield
    else:
        yield


def native_low_precision(device: torch.device, cpu_flags: str | None = None) -> torch.dtype | None:
    """The reduced-precision dtype ``device`` computes natively, or ``None`` where it has none.

    CPU: bfloat16 when the CPU has AVX512-BF16 or AMX-BF16 (read from ``cpu_flags``, by default the flags
    of ``/proc/cpuinfo``, falling back to torch's reported CPU capability); CUDA: bfloat16 from compute
    capability 8.0, float16 below it; anything else: ``None``.
    """
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type != "cpu":
        return None
    if cpu_flags is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                cpu_flags = fh.read()
        except OSError:
            cpu_flags = ""
        if not cpu_flags:
            capability = str(torch.backends.cpu.get_cpu_capability()).lower()
            return torch.bfloat16 if "amx" in capability else None
    flags = set(cpu_flags.split())
    return torch.bfloat16 if flags & {"avx512_bf16", "amx_bf16"} else None


def use_low_precision(requested: bool | None, device: torch.device, cpu_flags: str | None = None) -> bool:
    """Whether to run a model under reduced-precision autocast: ``requested`` when it is a bool; ``None`` (auto):
    only where ``device`` computes a reduced precision natively (:func:`native_low_precision`), so a CPU
    without AVX512-BF16/AMX stays in fp32, where emulated bf16 is slower and less exact."""
    if requested is not None:
        return bool(requested)
    return native_low_precision(device, cpu_flags) is not None
