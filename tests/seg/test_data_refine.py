from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from endoked.errors import DataFormatError
from endoked.prompt_seg.base import create_segmenter
from endoked.seg.data import PairStore, augment, list_pranet_folder
from endoked.seg.refine import dice, refine_prediction, round_stats
from tests.seg.conftest import tiny_config, write_pranet


def test_pranet_listing_reports_images_without_masks(tmp_path: Path) -> None:
    root = write_pranet(tmp_path / "d", 3)
    (root / "masks" / "s01.png").unlink()
    items, errors = list_pranet_folder(root)
    assert [i.key for i in items] == ["s00", "s02"]
    assert [e["key"] for e in errors] == ["s01"]
    with pytest.raises(DataFormatError, match="masks"):
        list_pranet_folder(tmp_path)


def test_store_skips_unusable_pairs_with_records(tmp_path: Path) -> None:
    root = write_pranet(tmp_path / "d", 3)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "s01.png")  # wrong size
    (root / "images" / "s02.png").write_bytes(b"broken")
    items, _ = list_pranet_folder(root)
    store = PairStore(items, 32)
    errors = store.check_all()
    assert [e["key"] for e in errors] == ["s01", "s02"]
    assert "size" in errors[0]["reason"] and "cannot read" in errors[1]["reason"]
    imgs, masks = store.batch([0])
    assert imgs.shape == (1, 3, 32, 32) and masks.shape == (1, 1, 32, 32) and imgs.dtype == torch.uint8


def test_augment_keeps_image_and_mask_aligned() -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(6, 1, 32, 32)
    images = base.repeat(1, 3, 1, 1)
    out_i, out_m = augment(
        images, base.clone(), gen, hflip=0.5, vflip=0.5, rotate90=0.5, crop_scale=0.7, color_jitter=0.0
    )
    assert out_i.shape == images.shape and out_m.shape == base.shape
    assert torch.allclose(out_i[:, :1], out_m, atol=1e-6)
    assert not torch.allclose(out_m, base)
    again = augment(
        images,
        base.clone(),
        torch.Generator().manual_seed(0),
        hflip=0.5,
        vflip=0.5,
        rotate90=0.5,
        crop_scale=0.7,
        color_jitter=0.0,
    )
    assert torch.equal(again[1], out_m)


def _disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.float32)


def test_refine_filters_follow_the_box_rules() -> None:
    cfg = tiny_config(refine__boxes__drop_border=True, refine__boxes__max_area=0.35)  # the CAM stage's filters
    ok = refine_prediction(0.9 * _disk(100, 100, 50, 50, 15), cfg)
    assert ok.reason is None and ok.mask is not None
    assert dice(ok.mask, _disk(100, 100, 50, 50, 15) > 0) == pytest.approx(1.0)
    assert ok.score == pytest.approx(0.9) and ok.boxes_xyxy.shape == (1, 4)
    assert refine_prediction(np.zeros((100, 100)), cfg).reason == "no_foreground"
    assert refine_prediction(_disk(100, 100, 5, 50, 15), cfg).reason == "touches_border"
    assert refine_prediction(_disk(100, 100, 50, 50, 4), cfg).reason == "box_too_small"
    assert refine_prediction(_disk(100, 100, 50, 50, 40), cfg).reason == "box_too_large"
    three = _disk(100, 100, 25, 25, 8) + _disk(100, 100, 70, 30, 8) + _disk(100, 100, 50, 75, 8)
    assert refine_prediction(three, cfg).reason == "too_many_components"
    two = _disk(100, 100, 30, 30, 10) + _disk(100, 100, 70, 70, 10)
    kept = refine_prediction(two, cfg)
    assert kept.reason is None and kept.boxes_xyxy.shape == (2, 4)


def test_refine_defaults_keep_large_and_border_touching_polyps() -> None:
    cfg = tiny_config()
    at_border = refine_prediction(_disk(100, 100, 5, 50, 15), cfg)
    assert at_border.reason is None and at_border.mask is not None
    large = refine_prediction(_disk(100, 100, 50, 50, 40), cfg)  # box 0.64 of the frame
    assert large.reason is None and large.mask is not None
    assert refine_prediction(_disk(100, 100, 50, 50, 48), cfg).reason == "box_too_large"  # box 0.92


def test_refine_with_box_prompted_segmenter() -> None:
    cfg = tiny_config()
    prob = np.zeros((80, 100), np.float32)
    prob[20:60, 30:70] = 0.8  # a square prediction; the ellipse backend fills its box with an ellipse
    img = np.zeros((80, 100, 3), np.uint8)
    res = refine_prediction(prob, cfg, img, create_segmenter("ellipse"))
    assert res.mask is not None and res.mask.shape == (80, 100)
    assert res.mask[40, 50] and not res.mask[21, 31]
    assert res.mask[:, :30].sum() == 0 and res.mask[:, 70:].sum() == 0


def test_round_stats_counts_and_means() -> None:
    records = [
        {
            "key": "a",
            "kept": True,
            "reason": None,
            "score": 0.8,
            "dice_prev": 0.5,
            "area": 0.1,
            "dice_truth": 0.9,
            "dice_truth_prev": 0.7,
        },
        {
            "key": "b",
            "kept": False,
            "reason": "touches_border",
            "score": 0.0,
            "dice_truth": 0.6,
            "dice_truth_prev": 0.6,
        },
    ]
    stats = round_stats(records)
    assert stats["n_updated"] == 1 and stats["n_dropped"] == 1 and stats["drop_reasons"] == {"touches_border": 1}
    assert stats["mean_dice_truth_after"] == pytest.approx(0.75)
    assert stats["mean_dice_truth_before"] == pytest.approx(0.65)
    assert stats["mean_dice_vs_previous"] == pytest.approx(0.5)


class _DiskPredictor:
    """Stands in for the network: predicts a disk of a fixed probability at each image's centre."""

    def __init__(self, prob: float) -> None:
        self.prob = prob

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self.prob * _disk(im.shape[0], im.shape[1], im.shape[0] // 2, im.shape[1] // 2, 15) for im in images]


def _png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


@pytest.mark.parametrize(("prob", "added"), [(0.95, 1), (0.6, 0)])
def test_refine_pool_adds_unlabelled_positives_that_score_high_enough(tmp_path: Path, prob: float, added: int) -> None:
    from endoked.seg.data import SegItem
    from endoked.seg.refine import refine_pool

    img = np.zeros((100, 100, 3), np.uint8)
    disk = (_disk(100, 100, 50, 50, 15) * 255).astype(np.uint8)
    old_mask = np.zeros((100, 100), np.uint8)
    old_mask[35:65, 35:65] = 255  # a box-shaped previous pseudo mask
    item = SegItem("E/0", _png(tmp_path / "a.png", img), _png(tmp_path / "a_mask.png", old_mask))
    truth = {"E/0": _png(tmp_path / "t0.png", disk), "E/1": _png(tmp_path / "t1.png", disk)}
    cfg = tiny_config(refine__min_score_new=0.9, refine__boxes__threshold=0.5)
    pool, records, stats = refine_pool(
        [item],
        _DiskPredictor(prob),
        cfg,
        tmp_path / "out",
        truth=truth,
        progress=False,
        unlabelled=[("E/1", _png(tmp_path / "b.png", img))],
    )
    by_key = {r["key"]: r for r in records}
    assert by_key["E/0"]["new"] is False and by_key["E/0"]["kept"]  # the pool's image is always updated
    assert by_key["E/1"]["new"] is True and by_key["E/1"]["kept"] == bool(added)
    assert stats["n_added"] == added and stats["n_updated"] == 1 and len(pool) == 1 + added
    assert [it.key for it in pool] == ["E/0", "E/1"][: 1 + added]
    # truth Dice before the round covers the old pool only; after, every image now in the pool
    box_dice = dice(old_mask > 0, disk > 0)
    assert stats["mean_dice_truth_before"] == pytest.approx(box_dice)
    assert stats["mean_dice_truth_after"] == pytest.approx(1.0)
    if not added:
        assert by_key["E/1"]["reason"] == "low_score" and by_key["E/1"]["dice_truth"] is None
    # the refused prediction is still measured, so a truth sample shows what a lower threshold would add
    assert by_key["E/1"]["dice_truth_candidate"] == pytest.approx(1.0)


def test_polyp_free_item_loads_an_empty_mask_and_fit_refuses_it_in_the_pool(tmp_path: Path) -> None:
    from endoked.seg.api import fit
    from endoked.seg.data import SegItem, load_pair
    from tests.seg.conftest import disk_pair

    img, _mask = disk_pair((40, 48), 3)
    Image.fromarray(img).save(tmp_path / "n.png")
    image, mask = load_pair(SegItem("n", tmp_path / "n.png", None), 32)
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32) and int(mask.max()) == 0
    with pytest.raises(DataFormatError, match="negatives"):
        fit([SegItem("n", tmp_path / "n.png", None)], tmp_path / "out", tiny_config(optim__epochs=1), progress=False)


@pytest.mark.parametrize(
    ("update", "min_agreement", "replaced"),
    [("always", 0.0, True), ("agree", 0.8, True), ("agree", 0.95, False), ("never", 0.0, False)],
)
def test_refine_update_rule_decides_whether_a_pool_mask_is_replaced(
    tmp_path: Path, update: str, min_agreement: float, replaced: bool
) -> None:
    from endoked.seg.data import SegItem
    from endoked.seg.refine import refine_pool

    img = np.zeros((100, 100, 3), np.uint8)
    disk = _disk(100, 100, 50, 50, 15) > 0
    old_mask = np.zeros((100, 100), np.uint8)
    old_mask[35:65, 35:65] = 255
    agreement = dice(disk, old_mask > 0)  # the predicted disk inside the old square: about 0.88
    assert 0.8 < agreement < 0.95
    item = SegItem("E/0", _png(tmp_path / "a.png", img), _png(tmp_path / "a_mask.png", old_mask))
    cfg = tiny_config(refine__update=update, refine__min_agreement=min_agreement, refine__min_score_new=0.9)
    pool, records, stats = refine_pool(
        [item],
        _DiskPredictor(0.95),
        cfg,
        tmp_path / "out",
        progress=False,
        unlabelled=[("E/1", _png(tmp_path / "b.png", img))],
    )
    assert [it.key for it in pool] == ["E/0", "E/1"]  # new images join under every rule
    assert records[0]["dice_prev"] == pytest.approx(agreement)
    assert (pool[0].mask != item.mask) is replaced
    assert records[0]["kept"] is replaced and stats["n_updated"] == int(replaced)
    if not replaced:
        assert records[0]["reason"] == "kept_previous"
        assert np.array_equal(np.asarray(Image.open(pool[0].mask)) > 0, old_mask > 0)


@pytest.mark.parametrize("keep_previous", [True, False])
def test_gated_round_records_predictions_but_changes_no_mask(tmp_path: Path, keep_previous: bool) -> None:
    from endoked.seg.data import SegItem
    from endoked.seg.refine import refine_pool

    img = np.zeros((100, 100, 3), np.uint8)
    old_mask = np.zeros((100, 100), np.uint8)
    old_mask[35:65, 35:65] = 255
    items = [
        SegItem(f"E/{i}", _png(tmp_path / f"a{i}.png", img), _png(tmp_path / f"m{i}.png", old_mask)) for i in (0, 1)
    ]
    truth = {"E/0": _png(tmp_path / "t.png", (_disk(100, 100, 50, 50, 15) * 255).astype(np.uint8))}
    cfg = tiny_config(refine__update="always", refine__keep_previous=keep_previous, refine__min_score_new=0.5)
    pool, records, stats = refine_pool(
        items,
        _DiskPredictor(0.95),
        cfg,
        tmp_path / "out",
        truth=truth,
        progress=False,
        unlabelled=[("E/2", _png(tmp_path / "b.png", img))],
        gated=True,
    )
    assert [(it.key, it.mask) for it in pool] == [(it.key, it.mask) for it in items]  # nothing replaced or added
    by_key = {r["key"]: r for r in records}
    assert by_key["E/0"]["reason"] == "kept_previous" and by_key["E/2"]["reason"] == "round_gated"
    assert stats["n_updated"] == 0 and stats["n_added"] == 0
    # the refused candidate is still measured against the truth, so a gate can be judged afterwards
    assert by_key["E/0"]["dice_truth_candidate"] == pytest.approx(1.0)
    assert by_key["E/0"]["dice_truth"] == pytest.approx(by_key["E/0"]["dice_truth_prev"])


def test_zoom_out_shrinks_the_sample_onto_a_black_canvas() -> None:
    from endoked.seg.data import augment

    s = 64
    images = torch.full((4, 3, s, s), 0.5)
    masks = torch.from_numpy(_disk(s, s, 32, 32, 20))[None, None].repeat(4, 1, 1, 1)
    kw = {"hflip": 0.0, "vflip": 0.0, "rotate90": 0.0, "crop_scale": 1.0, "color_jitter": 0.0}
    out_i, out_m = augment(images, masks.clone(), torch.Generator().manual_seed(3), zoom_out=1.0, zoom_min=0.5, **kw)
    for img, msk in zip(out_i, out_m, strict=True):
        content = img[0] > 0  # the shrunk frame; the canvas around it is black
        side = int(content.any(0).sum())
        assert 32 <= side < 64 and int(content.any(1).sum()) == side  # shrunk, square, at least zoom_min
        assert float(msk.sum()) == pytest.approx(float(masks[0].sum()) * (side / s) ** 2, rel=0.12)
        assert not bool((msk[0] > 0)[~content].any())  # the mask moved with the image
    gen = torch.Generator().manual_seed(3)
    same_i, same_m = augment(images, masks.clone(), gen, zoom_out=0.0, **kw)
    assert torch.equal(same_i, images) and torch.equal(same_m, masks)  # off: nothing changes
    ref = torch.Generator().manual_seed(3)  # ... and the generator advanced exactly as before the option existed
    torch.rand(4, 8, generator=ref)
    torch.randint(1, 4, (4,), generator=ref)
    assert torch.equal(gen.get_state(), ref.get_state())
