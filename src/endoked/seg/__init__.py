"""The seg stage: Polyp-PVT-style segmentation trained on (pseudo) masks, prediction and refinement.

Library API:

* :class:`SegConfig` -- every tunable;
* :func:`build_model` / :class:`PolypPVT` -- the network on an encoder of :mod:`endoked.backbones`;
* :func:`structure_loss` -- boundary-weighted BCE + weighted IoU;
* :func:`fit`, :func:`train_folder` -- train on a pool of (image, mask) pairs or a PraNet-layout folder;
* :class:`Predictor`, :func:`predict_folder` -- probability maps at the input size;
* :func:`refine_prediction`, :func:`refine_pool` -- predictions -> filtered boxes -> new pseudo labels.
"""

from endoked.seg.api import fit, train_folder
from endoked.seg.checkpoint import build_model, load_model
from endoked.seg.config import SegConfig
from endoked.seg.data import SegItem, list_pranet_folder
from endoked.seg.loss import structure_loss
from endoked.seg.model import PolypPVT
from endoked.seg.predict import Predictor, predict_folder
from endoked.seg.refine import refine_pool, refine_prediction
from endoked.seg.train import TrainResult, lr_factor

__all__ = [
    "PolypPVT",
    "Predictor",
    "SegConfig",
    "SegItem",
    "TrainResult",
    "build_model",
    "fit",
    "list_pranet_folder",
    "load_model",
    "lr_factor",
    "predict_folder",
    "refine_pool",
    "refine_prediction",
    "structure_loss",
    "train_folder",
]
