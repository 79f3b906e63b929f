"""A small run folder for the review app: the hand-written fake run plus an exam whose id and report carry
markup, and a server fixture (fake segmenter: the registry's ``ellipse``, no weights)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import tables
from endoked.runfolder import RunFolder
from tests.fakes import fake_run

pytest.importorskip("fastapi", reason="the review extra (fastapi, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the review extra (fastapi, uvicorn) is not installed")

HOSTILE_ID = "X<b>1</b>"
HOSTILE_REPORT = 'Polyp <script>document.title="pwned"</script><img src=x onerror="document.title=1"> in rectum.'
TOKEN = "test-token-123"
BOX = {"box_x0": 10.0, "box_y0": 10.0, "box_x1": 30.0, "box_y1": 20.0}


def _add_rows(run: RunFolder, name: str, rows: list[dict[str, object]]) -> None:
    tables.write(run.output(*name.split("/")), name, [*tables.rows(run, name), *rows])


def review_run(tmp_path: Path) -> RunFolder:
    """fake_run's 2 exams x 2 frames with pseudo masks, plus exam ``HOSTILE_ID`` (1 frame, a pseudo mask)."""
    run, _ = fake_run(tmp_path)
    path = tmp_path / "archive" / "x.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    ident = {"exam_id": HOSTILE_ID, "image": "<i>x</i>.png"}
    _add_rows(run, "ingest/images", [{**ident, "path": str(path), "width": 40, "height": 30, "format": "PNG"}])
    _add_rows(run, "ingest/exams", [{"exam_id": HOSTILE_ID, "report": HOSTILE_REPORT}])
    _add_rows(run, "extract/labels", [{"exam_id": HOSTILE_ID, "polyp": "uncertain", "polyp_count": None}])
    _add_rows(run, "mil/image_scores", [{**ident, "score": 0.7, "bag_label": -1}])
    mask = np.zeros((30, 40), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(run.root / "prompt_seg" / "masks" / "x.png")
    _add_rows(
        run,
        "prompt_seg/pseudo_labels",
        [{**ident, "mask": "prompt_seg/masks/x.png", "score": 0.4, "source": "ellipse", **BOX}],
    )
    for stage in ("ingest", "extract", "mil", "prompt_seg"):  # the ledger records the rewritten files
        outputs = {k: v["path"] if isinstance(v, dict) else v for k, v in (run.entry(stage) or {})["outputs"].items()}
        run.mark_running(stage, "fp", {})
        run.mark_done(stage, outputs, {"n": 1}, 0.5)
    return run


@pytest.fixture
def run_folder(tmp_path: Path) -> RunFolder:
    return review_run(tmp_path)


@pytest.fixture
def server(run_folder: RunFolder) -> Iterator[object]:
    from endoked.review.server import build_server

    srv = build_server(run_folder.root, reviewer="tester", segmenter="ellipse", token=TOKEN)
    with srv:
        yield srv
