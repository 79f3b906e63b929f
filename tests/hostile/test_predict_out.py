"""``endoked predict`` refuses an output folder that would overwrite its inputs, or that is a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked.errors import DataFormatError
from endoked.seg.predict import predict_folder


def _image(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "a.png"
    Image.fromarray(np.full((8, 8, 3), 77, np.uint8)).save(path)
    return path


def test_out_equal_to_images_is_refused_and_images_untouched(tmp_path: Path) -> None:
    img = _image(tmp_path / "imgs")
    before = img.read_bytes()
    with pytest.raises(DataFormatError, match="is the image folder itself"):
        predict_folder(tmp_path / "no-model.pt", tmp_path / "imgs", tmp_path / "imgs" / ".." / "imgs")
    assert img.read_bytes() == before


def test_out_an_existing_file_is_refused(tmp_path: Path) -> None:
    _image(tmp_path / "imgs")
    (tmp_path / "maps").write_text("not a folder")
    with pytest.raises(DataFormatError, match="is an existing file"):
        predict_folder(tmp_path / "no-model.pt", tmp_path / "imgs", tmp_path / "maps")
