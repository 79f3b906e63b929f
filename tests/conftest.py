"""Shared fixtures: tiny images and archives written under tmp_path; environment restored by pytest."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ENDOKED_SHARED_DATA", REPO.parent / "shared" / "data"))
# Graphs exported for ONNX Runtime (endoked.onnxrt) are cached in a folder of this test session, not the user's.
if "ENDOKED_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="endoked-test-cache-")
    os.environ["ENDOKED_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)  # removed with the session that made it


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (48, 40), seed: int = 0) -> bytes:
    """Encoded bytes of a small random RGB image (width, height = size)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    from endoked import progress

    monkeypatch.setattr(progress, "_ENABLED", False)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
