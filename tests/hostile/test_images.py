"""A phone-captured JPEG whose pixels are stored sideways with an EXIF orientation tag: every reader sees it
upright, and ingest records the size the readers return (it used to record the stored, sideways size while
readers returned sideways pixels that no viewer shows)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from endoked.imaging import ORIENTATION, copy_upright, load_image, open_image, read_grey, read_rgb
from endoked.ingest.api import ingest_archive
from endoked.ingest.config import IngestConfig


def _sideways_jpeg(width: int = 64, height: int = 40, orientation: int = 6) -> tuple[bytes, np.ndarray]:
    """A JPEG stored ``width`` x ``height`` with the given EXIF orientation, and its stored pixels as decoded."""
    rng = np.random.default_rng(0)
    arr = np.kron(rng.integers(0, 255, (height // 8, width // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    arr[:8, :8] = (255, 0, 0)  # a red top-left corner in the stored frame
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, exif=exif)
    stored = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return buf.getvalue(), stored


def test_exif_orientation_is_applied_on_read_and_in_ingest_sizes(tmp_path: Path) -> None:
    data, stored = _sideways_jpeg()
    assert stored.shape == (40, 64, 3)
    path = tmp_path / "img" / "phone.jpg"
    path.parent.mkdir()
    path.write_bytes(data)
    upright = np.rot90(stored, k=-1)  # orientation 6: the stored frame is shown turned 90 degrees clockwise
    rgb = read_rgb(path)
    assert rgb.shape == (64, 40, 3)
    np.testing.assert_array_equal(rgb, upright)
    assert tuple(rgb[2, -3]) > (200, 0, 0) and rgb[2, -3, 1] < 60  # the red corner is now top-right
    assert np.asarray(open_image(path)).shape == (64, 40, 3)
    np.testing.assert_array_equal(
        read_grey(path), np.asarray(Image.fromarray(np.ascontiguousarray(upright)).convert("L"))
    )
    # decoded at a model's size and cropped: the box is in the upright frame
    crop = load_image(path, 16, box=(20, 0, 40, 20))
    assert crop.shape == (3, 16, 16) and crop[0].mean() > 100 and crop[1].mean() < 120
    # ingest records the size the readers return
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"exam_id": "A", "report": "polyp", "images": ["img/phone.jpg"]}) + "\n", encoding="utf-8"
    )
    ingest_archive(tmp_path / "m.jsonl", tmp_path / "out", IngestConfig(workers=1))
    row = pq.read_table(tmp_path / "out" / "images.parquet").to_pylist()[0]
    assert (row["height"], row["width"]) == rgb.shape[:2]


def test_a_mask_without_exif_is_read_as_stored(tmp_path: Path) -> None:
    mask = np.zeros((40, 64), np.uint8)
    mask[:8, :8] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_grey(tmp_path / "m.png"), mask)


def test_copies_for_other_tools_are_upright(tmp_path: Path) -> None:
    """Exports hand image files to tools that may ignore EXIF: a turned file is re-encoded upright (so it lines
    up with its exported mask), an upright one is copied byte for byte."""
    data, stored = _sideways_jpeg()
    src = tmp_path / "phone.jpg"
    src.write_bytes(data)
    copy_upright(src, tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.format == "JPEG" and im.getexif().get(ORIENTATION, 1) == 1
        raw = np.asarray(im.convert("RGB"))  # as a reader that ignores EXIF sees it
    assert raw.shape == (64, 40, 3)
    assert np.abs(raw.astype(int) - np.rot90(stored, k=-1).astype(int)).mean() < 8  # one more JPEG generation
    assert raw[2, -3, 0] > 200 and raw[2, -3, 1] < 60  # the red corner is top-right in the file itself
    flat = tmp_path / "flat.png"
    Image.fromarray(stored).save(flat)
    copy_upright(flat, tmp_path / "flat_copy.png")
    assert (tmp_path / "flat_copy.png").read_bytes() == flat.read_bytes()
