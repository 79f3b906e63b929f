"""Optical biopsy: a neoplastic vs non-neoplastic polyp classifier, pre-trained on report-derived labels
(pathology of an exam -> its top MIL-scored images) and fine-tuned on a few labelled images.

Public API:

- :class:`BiopsyConfig` (``endoked.biopsy.config``);
- :func:`train_classifier`, :func:`predict_images`, :func:`evaluate_model`, :func:`pretrain_set_from_run`
  (``endoked.biopsy.api``);
- :func:`pathology_class`, :func:`pretrain_items`, :func:`read_labelled_set`, :func:`split_indices`
  (``endoked.biopsy.data``);
- :func:`evaluate`, :func:`bootstrap_ci`, :func:`roc_curve`, :func:`plot_roc` (``endoked.biopsy.metrics``;
  AUROC is :func:`endoked.stats.auroc`);
- :func:`finetune` (the fine-tuning recipe: L2-SP anchor, choice of weights on validation),
  :func:`select_weights` (``endoked.biopsy.train``);
- :func:`data_efficiency` (``endoked.biopsy.curve``).
"""

from endoked.biopsy.config import BiopsyConfig

__all__ = ["BiopsyConfig"]
