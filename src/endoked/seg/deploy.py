"""Deployment format of a segmentation checkpoint: ONNX, checked against PyTorch with ONNX Runtime.

The exported graph takes the image already resized to the training size and scaled to [0, 1]; normalisation
is inside the graph, so a deployment needs nothing of this package::

    image:  (B, 3, S, S) float32, RGB in [0, 1]       (B dynamic, S = the checkpoint's image_size)
    logits: (B, 1, S, S) float32, P1 + P2 of Polyp-PVT (S2 of PraNet)
    prob:   (B, 1, S, S) float32, sigmoid(logits)

Resize ``prob`` back to the original image size (bilinear) as :class:`endoked.seg.Predictor` does. The model's
``metadata_props`` record the format, network, encoder, decoder arithmetic, image size, normalisation and the source
checkpoint's sha256.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from endoked.errors import BackendUnavailableError, DataFormatError
from endoked.io import atomic_path, sha256_file
from endoked.seg.checkpoint import SegNetwork, load_model
from endoked.seg.model import PolypPVT

logger = logging.getLogger(__name__)

ONNX_FORMAT = "endoked-seg-onnx/1"
DEFAULT_OPSET = 18
_INSTALL_HINT = "pip install 'endoked[interop]' (or pip install onnx onnxscript onnxruntime)"


class DeployModel(nn.Module):
    """A network with its input normalisation: ``(B, 3, S, S)`` RGB in [0, 1] -> logits and probabilities."""

    def __init__(self, model: SegNetwork, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.model = model
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.logits((image - self.mean) / self.std)
        return logits, torch.sigmoid(logits)


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        image_size: the input's ``S``.
        max_abs_diff: the largest difference of ONNX Runtime's logits from PyTorch's on a random batch (None when
            the check was skipped).
    """

    path: Path
    image_size: int
    max_abs_diff: float | None


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(f"ONNX export needs {module}: {_INSTALL_HINT}") from exc


def compare_onnx(
    path: Path, deploy: DeployModel, image_size: int, batch_sizes: tuple[int, ...] = (1, 3), seed: int = 0
) -> float:
    """The largest absolute difference between ONNX Runtime's and PyTorch's logits on random images, over the
    given batch sizes (which also checks that the batch axis is dynamic)."""
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in batch_sizes:
        x = torch.rand(b, 3, image_size, image_size, generator=gen)
        with torch.no_grad():
            ref = deploy(x)[0].numpy()
        got = session.run(["logits"], {"image": x.numpy()})[0]
        if got.shape != ref.shape:
            raise DataFormatError(f"{path}: ONNX output shape {got.shape} differs from PyTorch's {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> OnnxExport:
    """Export a segmentation checkpoint (``.pt`` or ``.safetensors``) to ONNX with a dynamic batch axis.

    Args:
        checkpoint: the trained model.
        out: the ``.onnx`` file to write (atomically; the weights are stored inside it).
        opset: ONNX opset version.
        check: compare ONNX Runtime with PyTorch on random images (batch sizes 1 and 3) and refuse the file when
            ``|onnx - torch| > atol + rtol * |torch|`` anywhere.
        atol, rtol: the tolerance of that check.

    Raises:
        BackendUnavailableError: onnx/onnxscript (or, with ``check``, onnxruntime) is not installed.
        DataFormatError: unreadable checkpoint, or ONNX Runtime disagrees with PyTorch.
    """
    onnx = _require("onnx")
    _require("onnxscript")  # torch's exporter needs it
    checkpoint, out = Path(checkpoint), Path(out)
    model, ckpt = load_model(checkpoint)
    size = int(ckpt["image_size"])
    deploy = DeployModel(model, [float(v) for v in ckpt["mean"]], [float(v) for v in ckpt["std"]]).eval()
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=4096)
    chatter = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracing notes are not the user's concern
        try:
            program = torch.onnx.export(
                deploy,
                (example,),
                None,
                input_names=["image"],
                output_names=["logits", "prob"],
                dynamic_shapes={"image": {0: batch}},
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types
            raise DataFormatError(f"cannot export {checkpoint} to ONNX: {type(exc).__name__}: {exc}") from exc
    if program is None:  # pragma: no cover - the dynamo exporter always returns a program
        raise DataFormatError(f"the ONNX exporter returned nothing for {checkpoint}")
    logger.debug("onnx exporter output: %s", chatter.getvalue())
    proto = program.model_proto
    props = {
        "format": ONNX_FORMAT,
        "encoder": str(ckpt["encoder"]),
        "network": str(ckpt.get("network", "polyp-pvt")),
        **({"decoder": model.decoder} if isinstance(model, PolypPVT) else {}),
        "image_size": str(size),
        "mean": json.dumps([float(v) for v in ckpt["mean"]]),
        "std": json.dumps([float(v) for v in ckpt["std"]]),
        "input": "image: (B, 3, S, S) float32 RGB in [0, 1], resized to S x S",
        "outputs": "logits: (B, 1, S, S) P1 + P2 (Polyp-PVT) or S2 (PraNet); prob: sigmoid(logits)",
        "source_checkpoint": checkpoint.name,
        "source_sha256": sha256_file(checkpoint),
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    with atomic_path(out, suffix=".onnx") as tmp:
        onnx.save_model(proto, str(tmp))
    diff = None
    if check:
        diff = compare_onnx(out, deploy, size)
        with torch.no_grad():
            scale = float(deploy(example)[0].abs().max())
        if diff > atol + rtol * scale:
            out.unlink(missing_ok=True)
            raise DataFormatError(
                f"{out}: ONNX Runtime differs from PyTorch by up to {diff:.3g} (tolerance {atol:g} + {rtol:g} x "
                f"{scale:.3g}); the file was removed. Try another --opset."
            )
    logger.info("%s: ONNX opset %d, input %dx%d, max |onnx - torch| = %s", out, opset, size, size, diff)
    return OnnxExport(out, size, diff)
