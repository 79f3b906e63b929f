"""Building registered backbones with verified pretrained weights."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from endoked.backbones.registry import backbone_info
from endoked.backbones.weights import WeightsSource, resolve_weights, to_timm_state_dict
from endoked.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

_PREFIXES = ("model.", "module.")


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    from timm.models import load_state_dict

    try:
        state = load_state_dict(str(path), use_ema=True, weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for unreadable files
        raise DataFormatError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}") from exc
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _canonical_state_dict(timm_name: str, source: WeightsSource) -> dict[str, torch.Tensor]:
    """Read ``source`` and bring it into the timm model's key layout.

    Layouts handled: timm's own keys, another implementation whose tensors map by position (checked shape by
    shape), and official releases that timm's ``checkpoint_filter_fn`` for the architecture converts.
    """
    if source.path is None:
        raise DataFormatError(f"no weight file to load for {timm_name}")
    raw = _load_file(source.path)
    reference = timm.create_model(timm_name, pretrained=False)
    ref_sd = reference.state_dict()
    state = to_timm_state_dict(raw, ref_sd, source.key_format, origin=str(source.path))
    if sum(k in ref_sd for k in state) < 0.5 * len(ref_sd):
        filter_fn = getattr(sys.modules.get(type(reference).__module__), "checkpoint_filter_fn", None)
        if callable(filter_fn):
            try:
                state = dict(filter_fn(state, reference))
            except Exception as exc:  # the filters assume their own layout and fail in many ways otherwise
                logger.debug("checkpoint filter of %s failed on %s: %s", timm_name, source.path, exc)
    return state


def _load_into(model: nn.Module, canonical: dict[str, torch.Tensor], name: str, source: WeightsSource) -> int:
    """Copy pretrained tensors into ``model`` by key; every tensor but a resized classifier must be found.

    Returns:
        The number of tensors loaded.
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    classifier = str(cfg.get("classifier", "")) if isinstance(cfg, dict) else ""
    target = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key, tensor in target.items():
        ref = canonical.get(key, canonical.get(_strip(key)))
        if ref is not None and tuple(ref.shape) == tuple(tensor.shape):
            state[key] = ref
        elif classifier and _strip(key).startswith(classifier + "."):
            state[key] = tensor  # new head (different num_classes): keep its initialisation
        else:
            missing.append(key)
    if missing:
        raise DataFormatError(
            f"backbone {name!r}: {len(missing)} tensors missing or of another shape in "
            f"{source.describe()} (first: {missing[:3]})"
        )
    model.load_state_dict(state, strict=True)
    return len(state)


def create_backbone(
    name: str,
    *,
    pretrained: bool = True,
    weights: Path | str | None = None,
    allow_download: bool = False,
    from_checkpoint: Path | str | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | list[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered backbone, with pretrained weights resolved offline first.

    Weights come from ``weights`` (a local file) if given, else the backbone's installed weight package,
    else ``$ENDOKED_WEIGHTS/<name>.pth``, else a download through timm when ``allow_download`` is true.
    The source used is logged and stored on the model as ``model.weights_source``
    (:class:`~endoked.backbones.weights.WeightsSource`); ``model.backbone_info`` holds the registry entry.

    Args:
        name: registry name (see :func:`list_backbones`).
        pretrained: load ImageNet weights; ``False`` gives a randomly initialised network.
        weights: explicit weight file (``.pth``/``.pt``/``.bin``/``.safetensors``; timm keys, the original
            release's keys when timm knows them, or any layout that maps tensor-by-tensor by position).
        allow_download: permit network access when nothing local has the weights.
        from_checkpoint: the caller loads trained weights from this checkpoint right after: the network is
            built without any weight lookup (``pretrained`` is ignored) and not reported as randomly
            initialised; ``model.weights_source`` is ``checkpoint <path>``.
        features_only: return timm's feature extractor: ``model(x: (B, 3, H, W))`` gives a list of feature
            maps ``(B, C_i, H / r_i, W / r_i)``; channels/reductions in ``model.feature_info``.
        out_indices: which feature levels ``features_only`` returns.
        **kwargs: passed to :func:`timm.create_model` (e.g. ``num_classes=0`` for pooled features,
            ``drop_path_rate``).

    Raises:
        ConfigError: unknown name, or ``weights`` given with ``pretrained=False``.
        WeightsNotFoundError: pretrained weights requested but unavailable (with install hints).
        DataFormatError: a weight file that does not fit the architecture or has the wrong sha256.
    """
    info = backbone_info(name)
    if weights is not None and from_checkpoint is not None:
        raise ConfigError(f"backbone {name!r}: weights={weights} given for checkpoint {from_checkpoint}; drop weights")
    if weights is not None and not pretrained:
        raise ConfigError(f"backbone {name!r}: weights={weights} given with pretrained=False; drop one of them")
    build_kwargs: dict[str, Any] = dict(kwargs)
    if features_only:
        build_kwargs["features_only"] = True
        if out_indices is not None:
            build_kwargs["out_indices"] = tuple(out_indices)
    if from_checkpoint is not None:
        model = timm.create_model(info.timm_name, pretrained=False, **build_kwargs)
        source = WeightsSource("checkpoint", path=Path(from_checkpoint))
        logger.debug("backbone %s: built for the weights of checkpoint %s", name, from_checkpoint)
    elif not pretrained:
        model = timm.create_model(info.timm_name, pretrained=False, **build_kwargs)
        source = WeightsSource("random")
        logger.info("backbone %s: randomly initialised", name)
    else:
        source = resolve_weights(info, weights, allow_download)
        if source.kind == "download":
            logger.info("backbone %s: downloading weights through timm", name)
            model = timm.create_model(info.timm_name, pretrained=True, **build_kwargs)
        else:
            canonical = _canonical_state_dict(info.timm_name, source)
            model = timm.create_model(info.timm_name, pretrained=False, **build_kwargs)
            n = _load_into(model, canonical, name, source)
            logger.info("backbone %s: %d tensors loaded from %s", name, n, source.describe())
    model.weights_source = source  # type: ignore[assignment]
    model.backbone_info = info  # type: ignore[assignment]
    return model


def normalize_images(images: torch.Tensor, name: str) -> torch.Tensor:
    """Normalise images for backbone ``name``.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] RGB, or uint8 in [0, 255].

    Returns:
        ``(B, 3, H, W)`` float32, ``(x - mean) / std`` with the backbone's statistics.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    info = backbone_info(name)
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean = torch.tensor(info.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
