"""Per-exam pages of the run report: chosen exams, their frames with scores, CAMs, boxes and pseudo masks, safe
file names and escaped ids for hostile exam ids, rendered in headless Chromium."""

from __future__ import annotations

import html
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from endoked import tables
from endoked.cli import main
from endoked.report.build import build_report
from endoked.report.exams import safe_name
from endoked.runfolder import RunFolder
from tests.browser import CHROMIUM, FLAGS
from tests.fakes import fake_run

HOSTILE = '<script>alert("x")</script>/../../息肉 E'
HOSTILE_REPORT = "乙状结肠见一枚 6 mm 息肉 <img src=x onerror=alert(1)>"


def _add_rows(run: RunFolder, name: str, rows: list[dict[str, object]]) -> None:
    tables.write(run.output(*name.split("/")), name, [*tables.rows(run, name), *rows])


def _hostile_run(tmp_path: Path) -> RunFolder:
    """The fake run plus an exam with a hostile id (three frames, one with a saved CAM) and a negative exam."""
    run, _ = fake_run(tmp_path)
    rng = np.random.default_rng(1)
    images, scores = [], []
    for exam_id, n, score in ((HOSTILE, 3, 0.95), ("N0", 1, 0.99)):
        for i in range(n):
            path = tmp_path / "archive" / f"h{exam_id == HOSTILE}{i}.png"
            Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
            ident = {"exam_id": exam_id, "image": f"frame<{i}>.png"}
            images.append({**ident, "path": str(path), "width": 40, "height": 30})
            scores.append({**ident, "score": score - 0.1 * i, "bag_label": 1})
    _add_rows(run, "ingest/images", images)
    _add_rows(run, "ingest/exams", [{"exam_id": HOSTILE, "report": HOSTILE_REPORT}, {"exam_id": "N0", "report": "x"}])
    _add_rows(
        run,
        "extract/labels",
        [{"exam_id": HOSTILE, "polyp": "present", "polyp_count": 1}, {"exam_id": "N0", "polyp": "absent"}],
    )
    _add_rows(run, "mil/image_scores", scores)
    _add_rows(run, "cam/boxes", [{"exam_id": HOSTILE, "image": "frame<0>.png", "box_id": 0, "x0": 2.0, "y0": 3.0,
                                  "x1": 20.0, "y1": 15.0, "cam_score": 0.7}])  # fmt: skip
    heat = np.zeros((8, 10), np.uint8)
    heat[2:5, 2:6] = 255
    buf = io.BytesIO()
    np.savez_compressed(buf, c0=heat)
    (run.root / "cam" / "chunks").mkdir(parents=True, exist_ok=True)
    (run.root / "cam" / "chunks" / "cams-0.npz").write_bytes(buf.getvalue())
    tables.write(
        run.stage_dir("cam") / "cams.parquet",
        "cam/cams",
        [{"exam_id": HOSTILE, "image": "frame<0>.png", "file": "cam/chunks/cams-0.npz", "key": "c0"}],
    )
    for stage in ("ingest", "extract", "mil", "cam"):  # the ledger records the rewritten files
        outputs = {k: v["path"] if isinstance(v, dict) else v for k, v in (run.entry(stage) or {})["outputs"].items()}
        if stage == "cam":
            outputs["cams"] = "cam/cams.parquet"
        run.mark_running(stage, "fp", {})
        run.mark_done(stage, outputs, {"n": 1}, 0.5)
    return run


def test_safe_names_stay_in_the_folder_and_differ() -> None:
    ids = [HOSTILE, "../x", "a/b", "a_b", "..", "", "息肉", "息", "E0"]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]+-[0-9a-f]{10}\.html", name), name


def test_pages_chosen_positives_first_then_by_mil_score_and_capped(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    page = build_report(run.root, max_exams=3).read_text()
    links = re.findall(r'<a href="(exams/[^"]+)">([^<]*)</a>', page)
    # report-positive exams by top MIL score (E1 1.1, HOSTILE 0.95, E0 0.5); N0 (0.99) is negative: past the cap
    assert [html.unescape(t) for _, t in links] == ["E1", HOSTILE, "E0"]
    assert "3 of 4 exams have a page" in page
    for href, _ in links:
        assert (run.root / href).is_file()
    assert sorted(p.name for p in (run.root / "exams").iterdir()) == sorted(h.split("/")[1] for h, _ in links)
    assert not (run.root / "exams" / safe_name("N0")).exists()
    assert not list(tmp_path.rglob("*息肉*"))  # nothing named after the id, nowhere outside exams/
    build_report(run.root, out=tmp_path / "elsewhere" / "r.html", max_exams=0)
    assert not (tmp_path / "elsewhere" / "exams").exists()


def test_exam_page_has_frames_scores_cam_box_and_mask(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    build_report(run.root)
    page = (run.root / "exams" / safe_name(HOSTILE)).read_text()
    assert page.count('<div class="frame">') == 3
    assert "MIL score 0.950 (positive bag)" in page and "MIL score 0.750" in page
    assert 'alt="CAM and boxes"' in page and "1 CAM box" in page
    assert "<script>" not in page and "<img src=x" not in page
    assert str(escape(HOSTILE)) in page
    assert "frame&lt;0&gt;.png" in page
    e0 = (run.root / "exams" / safe_name("E0")).read_text()
    assert 'alt="pseudo mask"' in e0 and "pseudo mask score 0.900" in e0
    assert "sessile polyp</mark>" in e0 and "pathology</th><td>adenoma" in e0
    assert '<a href="../report.html">' in e0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package 'chromium')")
def test_exam_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    assert main(["report", str(run.root), "--max-exams", "10"]) == 0
    page = run.root / "exams" / safe_name(HOSTILE)
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "<script" not in dom  # the id is text: no script element, no injected image
    assert not re.search(r"<img(?![^>]+src=\"data:image/png;base64,)", dom)
    title = re.search(r'<span class="exam-id">(.*?)</span>', dom, re.S)
    assert title and html.unescape(title.group(1)) == HOSTILE
    assert dom.count('<div class="frame">') == 3
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 3 + 1  # 3 frames + CAM on frame 0
    assert html.escape(HOSTILE_REPORT, quote=False) in dom
