"""The run report's sections, one test per bug it once had: evaluation metrics and plots, evidence spans
painted on the text they point into, failure messages, no Python ``None``, one MIL metrics table, prompt_seg's
rejections, a CJK font stack, warnings about degenerate figures, tables read through their contract."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from endoked import tables
from endoked.io import atomic_write_json, write_jsonl
from endoked.report.build import build_report
from endoked.runfolder import RunFolder
from tests.fakes import fake_run

REPORT = "Findings: a 6 mm sessile polyp in the sigmoid colon, removed by cold snare. No other polyps."
PATHOLOGY = "Tubular adenoma, low grade."


def _stage(run: RunFolder, stage: str, files: dict[str, str], counts: dict[str, object]) -> None:
    run.mark_running(stage, "fp", {})
    run.mark_done(stage, files, counts, 0.5)


def _with_pathology(run: RunFolder) -> None:
    """Exam E0 gets a pathology text, and its evidence a span into it (offsets 0-15: "Tubular adenoma")."""
    exams = tables.rows(run, "ingest/exams")
    for r in exams:
        r["pathology"] = PATHOLOGY if r["exam_id"] == "E0" else None
    tables.write(run.output("ingest", "exams"), "ingest/exams", exams)
    rich = [
        {
            "id": "E0",
            "polyp": "present",
            "polyp_count": None,
            "pathology": "adenoma",
            "evidence": {
                "lang": "en",
                "polyp": [{"src": "text", "start": REPORT.index("sessile"), "end": REPORT.index(" in the")}],
                "pathology": [{"src": "pathology", "start": 0, "end": 15}],
            },
        }
    ]
    write_jsonl(run.output("extract", "labels_jsonl"), rich)


def test_pathology_evidence_is_painted_on_the_pathology_text_not_the_report(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    _with_pathology(run)
    page = build_report(run.root).read_text()
    # the report text carries the polyp span only; offsets 0-15 of the report ("Findings: a 6 m") are not marked
    assert '<mark class="f-pathology" title="pathology">Findings: a 6 m</mark>' not in page
    assert '<mark class="f-polyp" title="polyp">sessile polyp</mark>' in page
    assert '<mark class="f-pathology" title="pathology">Tubular adenoma</mark>, low grade.' in page


def test_no_python_none_on_the_page(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    _with_pathology(run)  # polyp_count None in the example, pathology None for E1
    page = build_report(run.root).read_text()
    text = re.sub(r"<[^>]+>", " ", page.split("<details>")[0] + page.split("</details>")[-1])
    assert not re.search(r"\bNone\b", text)
    assert "count —" in page


def test_failed_stage_shows_its_message(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    run.mark_running("seg", "fp", {})
    run.mark_failed("seg", "StageError: seg: too few pseudo masks to train on: 0 usable (the minimum is 1)")
    page = build_report(run.root).read_text()
    assert '<section id="seg">' in page
    assert page.count("seg: too few pseudo masks to train on: 0 usable (the minimum is 1)") == 2  # overview+section


def test_eval_section_shows_metrics_and_plots(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    ev = run.stage_dir("eval")
    metrics = {
        "data": "/data/TestDataset",
        "endoked_version": "0.1.0",
        "config": {},
        "results": [
            {"set": "Kvasir", "method": "", "metrics": {"n": 100, "mean_dice": 0.8123, "mean_iou": 0.7}, "curves": {}}
        ],
    }
    atomic_write_json(ev / "metrics.json", metrics)
    (ev / "plots").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(ev / "plots" / "Kvasir_dice_curve.png")
    _stage(run, "eval", {"metrics": "eval/metrics.json"}, {"sets": 1})
    page = build_report(run.root).read_text()
    section = page.split('<section id="eval">')[1].split("</section>")[0]
    assert "<th>mDice</th>" in section and ">Kvasir<" in section and ">0.8123<" in section
    assert "Kvasir dice curve" in section and 'src="data:image/png;base64,' in section


def test_mil_metrics_table_appears_once(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    entry = run.entry("mil") or {}
    atomic_write_json(run.root / "mil" / "metrics.json", {"best_epoch": 3, "val_bag_auroc": 0.91})
    run.mark_done("mil", {**{k: v["path"] for k, v in entry["outputs"].items()}, "metrics": "mil/metrics.json"}, {}, 1)
    page = build_report(run.root).read_text()
    section = page.split('<section id="mil">')[1].split("</section>")[0]
    assert section.count(">val_bag_auroc<") == 1
    assert "Top-scored images" in section and "Bottom-scored images" in section


def test_prompt_seg_rejections_with_reasons_and_gallery(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    entry = run.entry("prompt_seg") or {}
    rejected = [{"exam_id": "E1", "image": "E1/frame 0.jpg", "reason": "area_too_large"}]
    tables.write(run.root / "prompt_seg" / "rejected.parquet", "prompt_seg/rejected", rejected)
    files = {**{k: v["path"] for k, v in entry["outputs"].items()}, "rejected": "prompt_seg/rejected.parquet"}
    run.mark_done("prompt_seg", files, {}, 1)
    page = build_report(run.root).read_text()
    section = page.split('<section id="prompt_seg">')[1].split("</section>")[0]
    assert "Rejected masks (1 images)" in section
    assert "<td>area_too_large</td>" in section
    assert "E1/E1/frame 0.jpg · area_too_large" in section  # the gallery caption


def test_cjk_font_fallback_and_lang(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    page = build_report(run.root).read_text()
    css = page.split("<style>")[1].split("</style>")[0]
    assert '"Noto Sans CJK SC"' in css and '"Microsoft YaHei"' in css


def test_warnings_in_the_overview(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)  # 4 pseudo masks
    page = build_report(run.root).read_text()
    overview = page.split('<section id="overview">')[1].split("</section>")[0]
    assert "[prompt_seg] pseudo masks on" in overview


def test_tables_are_read_through_their_contract(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    import pyarrow as pa

    from endoked.io import write_parquet

    write_parquet(
        run.output("mil", "image_scores"),
        pa.table({"exam_id": ["E0"], "image": ["x"], "score": pa.array([0.5], pa.float32())}),
    )
    page = build_report(run.root).read_text()
    section = page.split('<section id="mil">')[1].split("</section>")[0]
    assert "lacks column &#39;bag_label&#39;" in section
