"""Saving and loading segmentation checkpoints and building the network they describe.

A checkpoint is a plain dict readable with ``torch.load(..., weights_only=True)`` (``model.pt``)::

    {"format": "endoked-seg/1", "state_dict": {...}, "encoder": "tf_efficientnet_lite0", "channel": 32,
     "decoder": "endoked", "image_size": 352, "mean": [r, g, b], "std": [r, g, b], "epoch": 12,
     "val": {"mean_dice": ...}, "config": {...SegConfig...}}

``network`` (``"polyp-pvt"`` when absent) is :class:`~endoked.seg.model.PolypPVT`, trained here, or
``"pranet"`` (:class:`~endoked.seg.pranet.PraNet`, for published PraNet weights; prediction only). ``decoder``
(``"endoked"`` when absent, as in checkpoints written before it existed) names the decoder arithmetic of
:class:`~endoked.seg.model.PolypPVT`.

The same content can be kept as safetensors (``model.safetensors``: the ``state_dict`` tensors) beside a JSON
file of everything else (``model.json``); reading that pair never unpickles anything
(:func:`save_safetensors`, :func:`read_checkpoint`).

:func:`read_checkpoint` also reads the published Polyp-PVT / EndoKED-SEG and PraNet ``.pth`` files as released
(see :mod:`endoked.seg.published`): their content is brought into this layout in memory, with ``"layout":
"Polyp-PVT"`` or ``"PraNet"``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from endoked.backbones import backbone_info
from endoked.errors import BackendUnavailableError, DataFormatError
from endoked.io import atomic_path, atomic_write_json
from endoked.seg import published
from endoked.seg.encoder import build_encoder
from endoked.seg.model import DECODERS, Decoder, PolypPVT
from endoked.seg.pranet import PraNet

logger = logging.getLogger(__name__)

FORMAT = "endoked-seg/1"
NETWORKS: tuple[str, ...] = ("polyp-pvt", "pranet")

SegNetwork = PolypPVT | PraNet
"""A network a checkpoint builds; both give inference logits ``(B, 1, H, W)`` with ``logits`` and
``predict_logits``."""
SAFETENSORS_SUFFIX = ".safetensors"
_INSTALL_HINT = "pip install 'endoked[interop]' (or pip install safetensors)"


def build_model(
    encoder: str,
    channel: int = 32,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    allow_download: bool = False,
    from_checkpoint: str | Path | None = None,
    decoder: Decoder = "endoked",
) -> PolypPVT:
    """Polyp-PVT with an encoder from the backbone registry (see :func:`endoked.seg.encoder.build_encoder`);
    ``from_checkpoint``: the network is built for the weights of that checkpoint (no weight lookup);
    ``decoder``: the decoder arithmetic (:class:`~endoked.seg.model.PolypPVT`)."""
    enc = build_encoder(
        encoder,
        pretrained=pretrained,
        weights=weights,
        allow_download=allow_download,
        from_checkpoint=from_checkpoint,
    )
    return PolypPVT(enc, channel=channel, decoder=decoder)


def unwrap(model: torch.nn.Module) -> PolypPVT:
    """The :class:`PolypPVT` inside a DDP or cached-forward wrapper."""
    while not isinstance(model, PolypPVT):
        inner = getattr(model, "module", None) or getattr(model, "model", None)
        if not isinstance(inner, torch.nn.Module):
            raise TypeError(f"no PolypPVT inside {type(model).__name__}")
        model = inner
    return model


def checkpoint_dict(model: torch.nn.Module, image_size: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint content of a trained model (tensors moved to CPU)."""
    net = unwrap(model)
    info = backbone_info(net.encoder.name)
    return {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "encoder": net.encoder.name,
        "network": "polyp-pvt",
        "channel": int(net.head_cfm.in_channels),
        "decoder": net.decoder,
        "image_size": int(image_size),
        "mean": list(info.mean),
        "std": list(info.std),
        **(extra or {}),
    }


def save_checkpoint(path: Path, content: dict[str, Any]) -> Path:
    """Write a checkpoint dict atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(content, tmp)
    return path


def config_path(weights: str | Path) -> Path:
    """The JSON file that goes with a safetensors checkpoint: ``model.safetensors`` -> ``model.json``."""
    return Path(weights).with_suffix(".json")


def save_safetensors(path: Path, content: dict[str, Any]) -> Path:
    """Write a checkpoint dict as ``path`` (safetensors, the ``state_dict``) plus :func:`config_path` (JSON, the
    rest), both atomically; the JSON is written last, so a reader never finds a config without its weights.

    Raises:
        BackendUnavailableError: safetensors is not installed.
        DataFormatError: ``path`` does not end in ``.safetensors`` or the content is not a checkpoint.
    """
    try:
        from safetensors.torch import save_file
    except ImportError as exc:
        raise BackendUnavailableError(f"saving safetensors checkpoints needs safetensors: {_INSTALL_HINT}") from exc
    path = Path(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        raise DataFormatError(f"{path}: a safetensors checkpoint must end in {SAFETENSORS_SUFFIX}")
    if content.get("format") != FORMAT or not isinstance(content.get("state_dict"), dict):
        raise DataFormatError(f"not a segmentation checkpoint (format {FORMAT}); cannot save it as {path}")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in content["state_dict"].items()}
    meta = {k: v for k, v in content.items() if k != "state_dict"}
    with atomic_path(path, suffix=SAFETENSORS_SUFFIX) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "config": config_path(path).name})
    atomic_write_json(config_path(path), meta)
    return path


def _read_safetensors(path: Path) -> dict[str, Any]:
    """A checkpoint dict from ``path`` and its JSON config (no unpickling)."""
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError as exc:
        raise BackendUnavailableError(f"reading {path} needs safetensors: {_INSTALL_HINT}") from exc
    cfg_file = config_path(path)
    if not cfg_file.is_file():
        raise DataFormatError(f"{path}: its config {cfg_file.name} is missing beside it; copy both files together")
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"cannot read checkpoint config {cfg_file}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataFormatError(f"{cfg_file} is not the config of a segmentation checkpoint (format {FORMAT})")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    return {**meta, "state_dict": state}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint file: ``model.pt`` (``torch.load`` with ``weights_only=True``) or
    ``model.safetensors`` with its ``model.json`` (see :func:`save_safetensors`).

    Raises:
        DataFormatError: missing file, unreadable, or not a segmentation checkpoint of this package.
        BackendUnavailableError: a safetensors file without safetensors installed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"checkpoint not found: {path}")
    if path.suffix == SAFETENSORS_SUFFIX:
        return _read_safetensors(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise DataFormatError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        return dict(ckpt)
    return _read_published(path, ckpt)


ACCEPTED = (
    f"accepted are {FORMAT} checkpoints (model.pt, or model.safetensors with its model.json, written by "
    "'endoked seg train' or the seg stage) and the published weights of Polyp-PVT / EndoKED-SEG (the state dict "
    "of Polyp-PVT's PolypPVT: backbone.*, Translayer*, CFM.*, ca.*, sa.*, SAM.*, out_CFM.*, out_SAM.*) and of "
    "PraNet (resnet.*, rfb*, agg1.*, ra*_conv*), raw or under 'state_dict' or 'model', DataParallel 'module.' "
    "prefixes allowed"
)


def _read_published(path: Path, obj: Any) -> dict[str, Any]:
    """A checkpoint dict from a published release (:mod:`endoked.seg.published`), or DataFormatError."""
    state = published.tensor_state(obj)
    layout = published.detect(state) if state is not None else None
    if state is not None and layout is not None:
        extra = published.unexpected(layout, state)
        if extra:
            raise DataFormatError(
                f"{path} has the {layout.name} layout but {len(extra)} of its tensors are not part of it "
                f"(first: {', '.join(extra[:3])}); {ACCEPTED}"
            )
        content = {"format": FORMAT, **published.to_checkpoint(layout, state)}
        arithmetic = " with the official code's arithmetic" if layout.decoder == "official" else ""
        logger.info(
            "%s: published %s weights (official key layout, %d tensors): encoder %s, decoder width %d%s; input "
            "%d x %d, ImageNet mean/std",
            path,
            layout.name,
            len(state),
            content["encoder"],
            content["channel"],
            arithmetic,
            content["image_size"],
            content["image_size"],
        )
        return content
    if state is None:
        what = f"a {type(obj).__name__} without tensors"
        if isinstance(obj, dict) and "format" in obj:
            what = f"format {obj['format']!r}"
        raise DataFormatError(f"{path} is not a segmentation checkpoint this package reads ({what}); {ACCEPTED}")
    foreign = [k for k in state if all(lay.from_official(k) is None for lay in published.LAYOUTS)]
    missing = "; ".join(
        f"missing for {lay.name}: {', '.join([k for k in lay.signature if k not in state][:3])}"
        for lay in published.LAYOUTS
    )
    raise DataFormatError(
        f"{path} is not a segmentation checkpoint this package reads: none of its known layouts fits its "
        f"{len(state)} tensors (unexpected: {', '.join(foreign[:3])}; {missing}); {ACCEPTED}"
    )


def convert_checkpoint(src: str | Path, dest: str | Path) -> Path:
    """Copy a checkpoint into the format ``dest``'s suffix names: ``.safetensors`` (plus its ``.json``) or
    ``.pt``. The weights are checked to fit their architecture first.

    Raises:
        DataFormatError: unreadable source, a source that does not fit its architecture, or an unknown suffix.
    """
    dest = Path(dest)
    if dest.suffix not in (SAFETENSORS_SUFFIX, ".pt", ".pth"):
        raise DataFormatError(f"{dest}: choose a .safetensors or .pt file name")
    _model, ckpt = load_model(src)
    if dest.suffix == SAFETENSORS_SUFFIX:
        return save_safetensors(dest, ckpt)
    return save_checkpoint(dest, ckpt)


def checkpoint_decoder(ckpt: dict[str, Any], path: str | Path) -> Decoder:
    """The decoder arithmetic a checkpoint was trained with (``"endoked"`` when it does not say).

    Raises:
        DataFormatError: an unknown name.
    """
    decoder = ckpt.get("decoder", "endoked")
    if decoder not in DECODERS:
        raise DataFormatError(f"checkpoint {path}: unknown decoder {decoder!r} (known: {', '.join(DECODERS)})")
    return decoder  # type: ignore[no-any-return]


def checkpoint_network(ckpt: dict[str, Any], path: str | Path) -> str:
    """The network a checkpoint builds (``"polyp-pvt"`` when it does not say).

    Raises:
        DataFormatError: an unknown name.
    """
    network = str(ckpt.get("network", "polyp-pvt"))
    if network not in NETWORKS:
        raise DataFormatError(f"checkpoint {path}: unknown network {network!r} (known: {', '.join(NETWORKS)})")
    return network


def load_weights(model: torch.nn.Module, ckpt: dict[str, Any], path: str | Path) -> None:
    """Load a checkpoint's weights into ``model``: every tensor used, none missing, shapes equal.

    Raises:
        DataFormatError: names or shapes differ; a few are listed, with the names of the file's own layout.
    """
    state: dict[str, torch.Tensor] = ckpt["state_dict"]
    target = model.state_dict()
    layout = published.layout_named(ckpt.get("layout"))

    def name(key: str) -> str:  # as the file names it
        return (layout.to_official(key) or key) if layout is not None else key

    missing = [name(k) for k in target if k not in state]
    extra = [name(k) for k in state if k not in target]
    shapes = [
        f"{name(k)} {tuple(v.shape)} (needs {tuple(target[k].shape)})"
        for k, v in state.items()
        if k in target and tuple(v.shape) != tuple(target[k].shape)
    ]
    if missing or extra or shapes:
        parts = [
            f"{len(found)} {what} (first: {', '.join(found[:3])})"
            for what, found in (("missing", missing), ("unexpected", extra), ("of another shape", shapes))
            if found
        ]
        arch = f"encoder {ckpt['encoder']}, decoder width {ckpt['channel']}"
        raise DataFormatError(f"checkpoint {path} does not fit its architecture ({arch}): tensors {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)


def load_model(path: str | Path) -> tuple[SegNetwork, dict[str, Any]]:
    """Build the network of a checkpoint and load its weights (eval mode, CPU).

    Returns:
        The model and the checkpoint dict (for ``image_size``, ``mean``, ``std``...).
    """
    ckpt = read_checkpoint(path)
    model: SegNetwork
    if checkpoint_network(ckpt, path) == "pranet":
        model = PraNet(int(ckpt["channel"]), from_checkpoint=path)
    else:
        model = build_model(
            str(ckpt["encoder"]), int(ckpt["channel"]), from_checkpoint=path, decoder=checkpoint_decoder(ckpt, path)
        )
    load_weights(model, ckpt, path)
    model.eval()
    logger.info(
        "seg model: %d tensors loaded from checkpoint %s (encoder %s, epoch %s)",
        len(ckpt["state_dict"]),
        path,
        ckpt["encoder"],
        ckpt.get("epoch", "?"),
    )
    return model, ckpt
