"""Ranking statistics with golden values, argument order ``(labels, scores)`` and the failure modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from endoked.stats import auroc, average_precision


def test_auroc_golden() -> None:
    # scikit-learn's documented example: 0.75
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    # positives 0.9, 0.4; negatives 0.5, 0.1 -> pairs won: (0.9>0.5),(0.9>0.1),(0.4>0.1) = 3 of 4
    assert auroc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    # ties count one half: pairs (pos, neg) = (0.5, 0.5) tie, (0.5, 0.2) win, (0.9, *) wins -> 3.5 / 4
    assert auroc(np.array([1, 1, 0, 0]), np.array([0.5, 0.9, 0.5, 0.2])) == pytest.approx(0.875)
    assert auroc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_auroc_argument_order_matters() -> None:
    labels, scores = [1, 0, 0], [0.9, 0.2, 0.1]
    assert auroc(labels, scores) == 1.0
    assert auroc([0, 1, 1], scores) == 0.0  # the same scores against the opposite labels
    with pytest.raises(ValueError, match="0/1"):
        auroc(scores, labels)  # swapped: scores are not 0/1 labels


def test_auroc_one_class_is_nan_and_bad_input_raises() -> None:
    assert math.isnan(auroc([1, 1], [0.1, 0.2]))
    assert math.isnan(auroc([], []))
    with pytest.raises(ValueError, match="length"):
        auroc([1, 0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0/1"):
        auroc([2, 0], [0.1, 0.2])


def test_auroc_flattens_and_accepts_bool_labels() -> None:
    assert auroc(np.array([[True], [False]]), np.array([[0.7], [0.3]])) == 1.0


def test_average_precision_golden() -> None:
    # ranking 0.9(+), 0.5(-), 0.4(+), 0.1(-): AP = 0.5*1 + 0.5*(2/3)
    assert average_precision([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.5 + 1 / 3)
    # tied scores form one threshold: all four at once -> precision 0.5 at recall 1
    assert average_precision([1, 0, 1, 0], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)
    assert average_precision([0, 1], [0.9, 0.1]) == pytest.approx(0.5)  # the positive ranked last
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))
