"""The seg stage: Polyp-PVT-style segmentation trained on (pseudo) masks, prediction and refinement.

Library API:

* :class:`SegConfig` -- every tunable;
* :func:`build_model` / :class:`PolypPVT` -- the network on an encoder of :mod:`endoked.backbones`;
  :class:`PraNet` -- for published PraNet weights (prediction only);
* :func:`structure_loss` -- boundary-weighted BCE + weighted IoU;
* :func:`fit`, :func:`train_folder` -- train on a pool of (image, mask) pairs or a PraNet-layout folder;
* :class:`Predictor`, :func:`predict_folder` -- probability maps at the input size;
* :func:`export_onnx`, :func:`convert_checkpoint` -- ONNX for deployment, safetensors checkpoints;
* :func:`refine_prediction`, :func:`refine_pool` -- predictions -> filtered boxes -> new pseudo labels.
"""

from endoked.lazy import lazy_attributes

# Names are imported on first use so that importing the package (e.g. by the CLI) stays light.
_LAZY: dict[str, str] = {
    "PolypPVT": "endoked.seg.model",
    "PraNet": "endoked.seg.pranet",
    "Predictor": "endoked.seg.predict",
    "SegConfig": "endoked.seg.config",
    "SegItem": "endoked.seg.data",
    "TrainResult": "endoked.seg.train",
    "build_model": "endoked.seg.checkpoint",
    "convert_checkpoint": "endoked.seg.checkpoint",
    "export_onnx": "endoked.seg.deploy",
    "fit": "endoked.seg.api",
    "list_pranet_folder": "endoked.seg.data",
    "load_model": "endoked.seg.checkpoint",
    "lr_factor": "endoked.seg.train",
    "predict_folder": "endoked.seg.predict",
    "refine_pool": "endoked.seg.refine",
    "refine_prediction": "endoked.seg.refine",
    "structure_loss": "endoked.seg.loss",
    "train_folder": "endoked.seg.api",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "PolypPVT",
    "PraNet",
    "Predictor",
    "SegConfig",
    "SegItem",
    "TrainResult",
    "build_model",
    "convert_checkpoint",
    "export_onnx",
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
