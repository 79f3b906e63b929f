"""ingest's batch core: image checks as records, one per input row, bad files with their reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from endoked.ingest.api import image_checker, process_batch
from endoked.ingest.config import IngestConfig


def test_image_checks_batch_core(tmp_path: Path) -> None:
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    rows = [{"path": str(tmp_path / "ok.png")}, {"path": str(tmp_path / "bad.jpg")}]
    out = process_batch(rows, image_checker(IngestConfig(min_side=8))).tables["ingest/image_checks"]
    assert [r["path"] for r in out] == [r["path"] for r in rows]
    assert out[0]["code"] is None and (out[0]["width"], out[0]["height"], out[0]["format"]) == (50, 40, "PNG")
    assert out[1]["code"] is not None and out[1]["message"]
