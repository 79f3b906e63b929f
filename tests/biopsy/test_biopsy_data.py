"""Label mapping from report fields, pre-training image selection, labelled-set reading, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.data import (
    label_class,
    mask_box,
    pathology_class,
    pretrain_items,
    read_labelled_set,
    split_indices,
    subset_indices,
)
from endoked.errors import DataFormatError


@pytest.mark.parametrize(
    ("pathology", "expected"),
    [
        ("adenoma", 1),
        ("sessile_serrated", 1),
        ("adenocarcinoma", 1),
        ("hyperplastic", 0),
        ("inflammatory", 0),
        ("other", None),
        (None, None),
        ("Adenoma ", 1),
    ],
)
def test_pathology_class_maps_report_fields(pathology: str | None, expected: int | None) -> None:
    assert pathology_class(pathology, BiopsyConfig()) == expected


def test_pathology_class_follows_config() -> None:
    cfg = BiopsyConfig(neoplastic=["adenoma"], non_neoplastic=["hyperplastic", "sessile_serrated"])
    assert pathology_class("sessile_serrated", cfg) == 0
    assert pathology_class("adenocarcinoma", cfg) is None
    with pytest.raises(ValueError, match="share"):
        BiopsyConfig(neoplastic=["adenoma"], non_neoplastic=["adenoma"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("neoplastic", 1),
        ("non_neoplastic", 0),
        ("Non-neoplastic", 0),
        ("1", 1),
        ("0", 0),
        ("hyperplastic", 0),
        ("sessile serrated", 1),
        ("polyp", None),
        ("", None),
    ],
)
def test_label_class(value: str, expected: int | None) -> None:
    assert label_class(value, BiopsyConfig()) == expected


def _tables() -> tuple[list[dict], list[dict], list[dict]]:
    labels = [
        {"exam_id": "E1", "pathology": "adenoma", "error": None},
        {"exam_id": "E2", "pathology": "hyperplastic", "error": None},
        {"exam_id": "E3", "pathology": None, "error": None},  # no pathology: not used
        {"exam_id": "E4", "pathology": "other", "error": None},  # other: not used
        {"exam_id": "E5", "pathology": "adenoma", "error": "timeout"},  # failed extraction: not used
        {"exam_id": "E6", "pathology": "inflammatory", "error": None},  # no scored image
    ]
    scores = [
        {"exam_id": "E1", "image": f"E1/{i}.jpg", "score": s, "bag_label": 1}
        for i, s in enumerate([0.2, 0.9, 0.5, 0.95, 0.9])
    ]
    scores += [
        {"exam_id": "E2", "image": "E2/0.jpg", "score": 0.7, "bag_label": 1},
        {"exam_id": "E2", "image": "E2/1.jpg", "score": None, "bag_label": 1},
        {"exam_id": "E2", "image": "E2/2.jpg", "score": 0.1, "bag_label": 1},
        {"exam_id": "E3", "image": "E3/0.jpg", "score": 0.9, "bag_label": 1},
        {"exam_id": "E5", "image": "E5/0.jpg", "score": 0.9, "bag_label": 1},
    ]
    images = [{"exam_id": r["exam_id"], "image": r["image"], "path": f"/a/{r['image']}"} for r in scores]
    return labels, scores, images


def test_pretrain_items_take_top_k_of_known_pathology() -> None:
    labels, scores, images = _tables()
    items, counts = pretrain_items(labels, scores, images, BiopsyConfig(top_k=3))
    got = [(it.group, it.image, it.label) for it in items]
    # E1: scores 0.95 (3), 0.9 (1), 0.9 (4) -> ties broken by name; E2: 0.7, 0.1 (null skipped)
    assert got == [
        ("E1", "E1/3.jpg", 1),
        ("E1", "E1/1.jpg", 1),
        ("E1", "E1/4.jpg", 1),
        ("E2", "E2/0.jpg", 0),
        ("E2", "E2/2.jpg", 0),
    ]
    assert items[0].path == "/a/E1/3.jpg"
    assert counts == {
        "exams_neoplastic": 1,
        "exams_non_neoplastic": 1,
        "exams_unknown": 3,
        "exams_without_images": 1,
        "images_neoplastic": 3,
        "images_non_neoplastic": 2,
        "images_cropped": 0,
    }


def test_pretrain_items_min_score_and_boxes() -> None:
    labels, scores, images = _tables()
    boxes = {("E1", "E1/3.jpg"): (1, 2, 10, 12)}
    items, counts = pretrain_items(labels, scores, images, BiopsyConfig(top_k=2, min_mil_score=0.5), boxes)
    assert [(it.image, it.box) for it in items] == [
        ("E1/3.jpg", (1, 2, 10, 12)),
        ("E1/1.jpg", None),
        ("E2/0.jpg", None),
    ]
    assert counts["images_cropped"] == 1


def test_mask_box_with_margin_is_clipped() -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 10:20] = True  # box x 10..20, y 5..15 (10 x 10)
    assert mask_box(mask, 0.0) == (10, 5, 20, 15)
    assert mask_box(mask, 0.2) == (8, 3, 22, 17)
    assert mask_box(mask, 1.0) == (0, 0, 30, 20)
    assert mask_box(np.zeros((4, 4), dtype=bool), 0.1) is None


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (120, 30, 30)).save(path)


def test_read_labelled_csv_records_bad_rows(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png")
    (tmp_path / "set.csv").write_text(
        "image,label,group\na.png,neoplastic,P1\nb.png,hyperplastic,\nc.png,neoplastic,P2\na.png,polyp,P1\n",
        encoding="utf-8",
    )
    items, errors = read_labelled_set(tmp_path / "set.csv", BiopsyConfig())
    assert [(it.image, it.label, it.group) for it in items] == [("a.png", 1, "P1"), ("b.png", 0, "image:b.png")]
    assert items[0].path == str(tmp_path / "a.png")
    assert [(e["row"], e["image"]) for e in errors] == [(4, "c.png"), (5, "a.png")]
    assert "file not found" in errors[0]["error"] and "unknown label" in errors[1]["error"]


def test_read_labelled_folder_and_failures(tmp_path: Path) -> None:
    _img(tmp_path / "set" / "neoplastic" / "x.jpg")
    _img(tmp_path / "set" / "non_neoplastic" / "y.jpg")
    _img(tmp_path / "set" / "misc" / "z.jpg")
    items, errors = read_labelled_set(tmp_path / "set", BiopsyConfig())
    assert sorted((Path(it.image).name, it.label) for it in items) == [("x.jpg", 1), ("y.jpg", 0)]
    assert errors == []
    (tmp_path / "bad.csv").write_text("file,class\na.png,1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="missing column"):
        read_labelled_set(tmp_path / "bad.csv", BiopsyConfig())
    (tmp_path / "none.csv").write_text("image,label\nq.png,1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no usable row"):
        read_labelled_set(tmp_path / "none.csv", BiopsyConfig())
    with pytest.raises(DataFormatError, match="not found"):
        read_labelled_set(tmp_path / "missing.csv", BiopsyConfig())


def test_split_keeps_groups_together_and_stratifies() -> None:
    labels = [1] * 12 + [0] * 8
    groups = [f"p{i // 2}" for i in range(20)]  # 10 patients of 2 images, patients 0-5 neoplastic
    tr, va = split_indices(labels, groups, 0.3, seed=3)
    assert sorted(np.r_[tr, va].tolist()) == list(range(20))
    train_groups = {groups[i] for i in tr}
    val_groups = {groups[i] for i in va}
    assert not train_groups & val_groups
    # 6 neoplastic groups -> round(1.8) = 2 in val; 4 non-neoplastic groups -> round(1.2) = 1
    assert len([g for g in val_groups if int(g[1:]) < 6]) == 2
    assert len([g for g in val_groups if int(g[1:]) >= 6]) == 1
    again = split_indices(labels, groups, 0.3, seed=3)
    assert np.array_equal(again[1], va)


def test_subset_is_stratified_with_minimum() -> None:
    labels = [1] * 90 + [0] * 10
    idx = subset_indices(labels, 0.1, seed=0)
    y = np.asarray(labels)[idx]
    assert (y == 1).sum() == 9 and (y == 0).sum() == 2  # round(1.0) = 1, raised to the minimum 2
    assert np.array_equal(idx, subset_indices(labels, 0.1, seed=0))
    assert len(subset_indices(labels, 1.0, seed=5)) == 100
