"""Metrics with golden values: AUROC, ROC points, operating points, bootstrap CIs, temperature scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.metrics import (
    bootstrap_aurocs,
    bootstrap_ci,
    evaluate,
    percentile_ci,
    plot_roc,
    point_metrics,
    roc_curve,
    threshold_for_sensitivity,
    threshold_youden,
)
from endoked.biopsy.train import choose_threshold, fit_temperature


def test_roc_curve_points() -> None:
    fpr, tpr, thr = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_operating_points() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9])
    # Youden: at 0.6 sens 3/4 spec 4/4 (J 0.75); at 0.35 sens 1 spec 3/4 (J 0.75): the larger threshold wins
    assert threshold_youden(y, p) == pytest.approx(0.6)
    assert threshold_for_sensitivity(y, p, 1.0) == pytest.approx(0.35)
    assert threshold_for_sensitivity(y, p, 0.5) == pytest.approx(0.7)
    m = point_metrics(y, p, 0.6)
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (3, 4, 0, 1)
    assert m["accuracy"] == pytest.approx(7 / 8) and m["specificity"] == 1.0 and m["sensitivity"] == 0.75
    cfg = BiopsyConfig(operating_point="sensitivity", target_sensitivity=1.0)
    assert choose_threshold(y, p, cfg) == (pytest.approx(0.35), "sensitivity")
    thr, how = choose_threshold(np.ones(3), np.array([0.2, 0.5, 0.9]), BiopsyConfig(threshold=0.4))
    assert thr == 0.4 and how.startswith("fixed (fallback")


def test_bootstrap_ci_of_accuracy_matches_binomial() -> None:
    """Resampling n cases of which k are correct makes the accuracy Binomial(n, k/n) / n exactly."""
    n, k = 24, 20
    y = np.ones(n, dtype=int)
    p = np.r_[np.full(k, 0.9), np.full(n - k, 0.1)]  # k correct at threshold 0.5
    lo_exact = binom.ppf(0.025, n, k / n) / n
    hi_exact = binom.ppf(0.975, n, k / n) / n
    # the golden quantiles sit well inside their binomial steps, so the bootstrap estimate lands on them
    assert (lo_exact, hi_exact) == (16 / 24, 23 / 24)
    for q, golden in ((0.025, lo_exact * n), (0.975, hi_exact * n)):
        assert binom.cdf(golden, n, k / n) - q > 0.009 and q - binom.cdf(golden - 1, n, k / n) > 0.009
    ci = bootstrap_ci(y, p, 0.5, n_boot=4000, seed=1, metrics=("accuracy", "sensitivity"))
    assert ci["accuracy"] == (pytest.approx(lo_exact), pytest.approx(hi_exact))
    assert ci["sensitivity"] == ci["accuracy"]  # all cases positive
    assert bootstrap_ci(y, p, 0.5, n_boot=300, seed=7) == bootstrap_ci(y, p, 0.5, n_boot=300, seed=7)


def test_bootstrap_ci_degenerate_and_multi_model() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])  # perfect separation
    ci = bootstrap_ci(y, p, 0.5, n_boot=200, seed=0)
    assert ci["auroc"] == (1.0, 1.0) and ci["accuracy"] == (1.0, 1.0)
    # two models on the same cases: the figure is their mean; a perfect and an inverted model average to 0.5
    ci2 = bootstrap_ci(y, np.stack([p, 1 - p]), [0.5, 0.5], n_boot=200, seed=0)
    assert ci2["auroc"] == (pytest.approx(0.5), pytest.approx(0.5))
    assert ci2["accuracy"] == (pytest.approx(0.5), pytest.approx(0.5))


def test_evaluate_is_json_ready(tmp_path: Path) -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.8, 0.6, 0.4])
    res = evaluate(y, p, 0.5, n_boot=50, seed=0)
    assert res["auroc"] == pytest.approx(0.75) and res["accuracy"] == 0.5
    assert len(res["auroc_ci"]) == 2 and res["bootstrap"] == 50
    out = plot_roc(tmp_path / "roc.png", {"m": (y, p)}, points={"op": (0.5, 0.5)})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_temperature_scaling_recovers_temperature() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, size=20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z / 2.5))).astype(int)  # true temperature 2.5
    assert fit_temperature(z, y) == pytest.approx(2.5, rel=0.05)
    assert fit_temperature(z[:5], np.ones(5)) == 1.0


def test_bootstrap_aurocs_are_the_resamples_of_bootstrap_ci() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(80) < 0.6).astype(int)
    p = rng.random((3, 80)) + 0.4 * y
    per = bootstrap_aurocs(y, p, 200, seed=5)
    assert per.shape == (200, 3)
    assert percentile_ci(per.mean(axis=1), 0.9) == bootstrap_ci(y, p, 0.5, 200, 0.9, 5, ("auroc",))["auroc"]
    assert np.isnan(bootstrap_aurocs(np.ones(5, dtype=int), np.arange(5.0), 3)).all()  # one class
    assert np.isnan(percentile_ci([np.nan, np.inf])).all()
