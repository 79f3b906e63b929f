"""Image and mask I/O: PNG round trips, the mask threshold, unreadable files, decoding at a model's size."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked.errors import DataFormatError
from endoked.imaging import (
    MASK_THRESHOLD,
    encode_png,
    load_image,
    mask_to_u8,
    open_image,
    read_grey,
    read_mask,
    read_mask_u8,
    read_rgb,
    resize_map,
    write_png,
)


def _rgb(h: int = 23, w: int = 31, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("library", ["pillow", "opencv"])
def test_rgb_png_round_trip(tmp_path: Path, library: str) -> None:
    rgb = _rgb()
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(rgb, library=library))  # type: ignore[arg-type]
    back = read_rgb(path)
    assert back.dtype == np.uint8 and back.shape == (23, 31, 3)
    np.testing.assert_array_equal(back, rgb)  # the opencv path must not swap red and blue


def test_write_png_then_read_back(tmp_path: Path) -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    dest = write_png(tmp_path / "sub" / "g.png", grey)
    assert dest == tmp_path / "sub" / "g.png" and not list((tmp_path / "sub").glob(".*"))  # no temp file left
    np.testing.assert_array_equal(read_grey(dest), grey)
    with Image.open(dest) as im:
        assert im.mode == "L" and im.format == "PNG"


def test_encoders_give_the_same_pixels_not_the_same_bytes() -> None:
    grey = (np.indices((40, 40)).sum(0) % 7 * 30).astype(np.uint8)
    a, b = encode_png(grey), encode_png(grey, library="opencv")
    assert a.startswith(b"\x89PNG") and b.startswith(b"\x89PNG")
    for data in (a, b, encode_png(grey, optimize=True)):
        with Image.open(io.BytesIO(data)) as im:
            np.testing.assert_array_equal(np.asarray(im), grey)


def test_encode_png_accepts_a_pil_image() -> None:
    rgb = _rgb(5, 6)
    assert encode_png(Image.fromarray(rgb)) == encode_png(rgb)


def test_mask_threshold_127_128(tmp_path: Path) -> None:
    assert MASK_THRESHOLD == 127
    grey = np.array([[0, 1, 126, 127, 128, 255]], dtype=np.uint8)
    write_png(tmp_path / "m.png", grey)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[False, False, False, False, True, True]])
    np.testing.assert_array_equal(read_mask_u8(tmp_path / "m.png"), [[0, 0, 0, 0, 255, 255]])


def test_mask_round_trip_and_zero_one_masks(tmp_path: Path) -> None:
    mask = np.random.default_rng(1).random((19, 27)) > 0.5
    write_png(tmp_path / "m.png", mask_to_u8(mask))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)
    write_png(tmp_path / "01.png", mask.astype(np.uint8))  # a 0/1 mask: only read_mask_u8 takes 1 as foreground
    np.testing.assert_array_equal(read_mask_u8(tmp_path / "01.png"), mask_to_u8(mask))
    assert not read_mask(tmp_path / "01.png").any()
    write_png(tmp_path / "empty.png", np.zeros((4, 4), np.uint8))
    assert read_mask_u8(tmp_path / "empty.png").max() == 0


def test_colour_mask_is_read_as_grey(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = 255
    rgb[1, 1] = (0, 255, 0)  # grey 150 (ITU-R 601-2 luma): foreground
    rgb[0, 1] = (0, 0, 255)  # grey 29: background
    write_png(tmp_path / "c.png", rgb)
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), [[True, False], [False, True]])


@pytest.mark.parametrize("reader", [read_rgb, read_grey, read_mask, read_mask_u8, open_image])
def test_unreadable_file_names_the_path(tmp_path: Path, reader: object) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DataFormatError, match=re.escape(str(bad))):
        reader(bad)  # type: ignore[operator]
    missing = tmp_path / "missing.png"
    with pytest.raises(DataFormatError, match=re.escape(str(missing))):
        reader(missing)  # type: ignore[operator]


def test_open_image_keeps_mode_and_closes(tmp_path: Path) -> None:
    grey16 = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    Image.fromarray(grey16).save(tmp_path / "w.png")
    im = open_image(tmp_path / "w.png")
    assert im.mode.startswith("I")
    np.testing.assert_array_equal(np.asarray(im), grey16)
    (tmp_path / "w.png").unlink()  # the file is not held open
    assert np.asarray(im).shape == (3, 4)


def test_load_image_resizes_and_crops(tmp_path: Path) -> None:
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[10:30, 20:40] = (200, 10, 90)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    whole = load_image(tmp_path / "a.png", 8)
    assert whole.shape == (3, 8, 8) and whole.dtype == np.uint8 and whole.flags.c_contiguous
    crop = load_image(tmp_path / "a.png", 8, (20, 10, 40, 30))  # exactly the coloured block
    np.testing.assert_array_equal(crop, np.broadcast_to(np.array([200, 10, 90], np.uint8)[:, None, None], (3, 8, 8)))
    with pytest.raises(OSError):  # the decoder's own error: callers record it per image
        load_image(tmp_path / "missing.png", 8)


def test_resize_map_bilinear_shape_and_values() -> None:
    small = np.array([[0.0, 1.0], [1.0, 0.0]])
    big = resize_map(small, (4, 6))
    assert big.shape == (4, 6) and big.dtype == np.float32
    assert big.min() >= 0.0 and big.max() <= 1.0
    np.testing.assert_allclose(resize_map(np.full((3, 3), 0.25), (5, 7)), 0.25)
    np.testing.assert_array_equal(resize_map(small, (2, 2)), small.astype(np.float32))


def test_16_bit_and_float_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    from PIL import Image

    from endoked.imaging import load_image, read_rgb

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "a16.png")
    rgb = read_rgb(tmp_path / "a16.png")
    assert rgb.shape == (64, 64, 3) and np.array_equal(rgb[..., 0], (ramp >> 8).astype(np.uint8))
    frac = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    Image.fromarray(frac).save(tmp_path / "f.tif")
    grey = read_rgb(tmp_path / "f.tif")[..., 0]
    assert grey[0, 0] == 0 and grey[-1, -1] == 255 and abs(float(grey.mean()) - 127.5) < 1.0
    assert load_image(tmp_path / "a16.png", 32).max() > 200  # the model input sees the range too
