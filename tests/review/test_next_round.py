"""Reviewer decisions reach the next run: seg's training pool and refinement, mil's bag labels, export, the
ledger fingerprints and the run report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import reviewed
from endoked.config import RunConfig
from endoked.export.source import load_items
from endoked.io import read_jsonl, read_parquet
from endoked.mil import stage as mil_stage
from endoked.pipeline import StageContext, run_stage, stage_fingerprint
from endoked.report.build import build_report
from endoked.runfolder import RunFolder
from endoked.seg.stage import STAGE as SEG_STAGE
from tests.fakes import fake_run
from tests.seg.conftest import tiny_config
from tests.seg.test_stage import SegRunConfig, _run_folder


def _fix_mask(run: RunFolder, name: str, size: tuple[int, int] = (64, 64)) -> str:
    mask = np.zeros(size, np.uint8)
    mask[8:24, 8:24] = 255
    rel = f"review/masks/{name}.png"
    run.abs(rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(run.abs(rel))
    return rel


def test_next_seg_run_drops_rejected_and_trains_on_fixed_masks(tmp_path: Path) -> None:
    run, archive = _run_folder(tmp_path)
    fixed = _fix_mask(run, "fixed")
    reviewed.record(run.root, exam_id="E0", image="E0/0.png", action="reject", reviewer="r1")
    reviewed.record(run.root, exam_id="E1", image="E1/0.png", action="fix", reviewer="r1", mask_after=fixed,
                    mask_before="prompt_seg/masks/2.png")  # fmt: skip
    reviewed.record(run.root, exam_id="E2", image="E2/0.png", action="accept", reviewer="r1")
    reviewed.record(run.root, exam_id="U", image="U/0.png", action="reject", reviewer="r1")  # a positive w/o mask
    seg = tiny_config(optim__epochs=1, refine__rounds=1, refine__epochs=1, refine__boxes__threshold=0.3,
                      refine__boxes__max_area=0.9)  # fmt: skip
    config = SegRunConfig(device="cpu", seg=seg, ingest={"archive": str(archive)})
    status, result = run_stage(run, config, SEG_STAGE, progress=False)
    assert status == "ran" and result is not None
    # round 0 trained on 7 of the 8 pseudo masks: the rejected one left the pool
    summary = json.loads((run.root / "seg" / "round0" / "summary.json").read_text())
    assert summary["n_pool"] == 7
    # the refinement round re-predicted neither reviewed mask and did not add the rejected positive back
    records = {r["key"] for r in read_jsonl(run.root / "seg" / "round1" / "records.jsonl")}
    assert {"E0/E0/0.png", "E1/E1/0.png", "E2/E2/0.png", "U/U/0.png"}.isdisjoint(records)
    assert "U/U/1.png" in records
    table = {f"{r['exam_id']}/{r['image']}": r for r in read_parquet(run.output("seg", "pseudo_labels")).to_pylist()}
    assert "E0/E0/0.png" not in table and "U/U/0.png" not in table
    assert table["E1/E1/0.png"]["mask"] == fixed and table["E1/E1/0.png"]["source"] == "reviewed"
    assert table["E2/E2/0.png"]["mask"] == "prompt_seg/masks/4.png" and table["E2/E2/0.png"]["source"] == "reviewed"
    assert read_jsonl(run.output("seg", "pseudo_stats"))[0]["n_reviewed"] == 2


def test_fingerprints_follow_the_decisions_each_stage_reads(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    config = RunConfig()

    def fingerprint(spec_stage: str) -> tuple[str, dict[str, object]]:
        spec = mil_stage.STAGE if spec_stage == "mil" else SEG_STAGE
        for dep in spec.depends:  # the fake run lacks mil/selection; the fingerprint only needs a done entry
            if (run.entry(dep) or {}).get("status") != "done":
                run.mark_running(dep, "fp", {})
                run.mark_done(dep, {}, {}, 0.0)
        return stage_fingerprint(StageContext(run=run, config=config, stage=spec.name), spec)

    mil0, inputs = fingerprint("mil")
    seg0, _ = fingerprint("seg")
    assert "reviewed" not in inputs  # no decisions: the fingerprint of runs before review is kept
    reviewed.record(run.root, exam_id="E0", image="E0/frame 0.jpg", action="reject", reviewer="r1")
    mil1, seg1 = fingerprint("mil")[0], fingerprint("seg")[0]
    assert mil1 == mil0 and seg1 != seg0  # an image decision re-runs seg, not mil
    reviewed.record(run.root, exam_id="E0", image="E0/frame 0.jpg", action="reject", reviewer="r2")
    assert fingerprint("seg")[0] == seg1  # the same decision again changes nothing seg reads
    reviewed.record(run.root, exam_id="E1", image="", action="label", reviewer="r1", field="polyp", value="absent")
    assert fingerprint("mil")[0] != mil0 and fingerprint("seg")[0] == seg1


def test_mil_reads_the_corrected_report_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = fake_run(tmp_path)
    reviewed.record(run.root, exam_id="E1", image="", action="label", reviewer="r1", field="polyp", value="absent")
    seen: dict[str, dict[str, object]] = {}
    real_bag_labels = mil_stage.bag_labels

    class SeenError(Exception):
        pass

    def spy(labels: list[dict[str, object]], cfg: object) -> None:
        seen.update({str(r["exam_id"]): r for r in labels})
        raise SeenError

    monkeypatch.setattr(mil_stage, "bag_labels", spy)
    with pytest.raises(SeenError):
        mil_stage.run_mil(StageContext(run=run, config=RunConfig(), stage="mil"))
    assert seen["E1"]["polyp"] == "absent" and seen["E1"]["polyp_count"] == 0 and seen["E1"]["reviewed"]
    assert seen["E0"]["polyp"] == "present" and "reviewed" not in seen["E0"]
    bags, counts = real_bag_labels([seen["E0"], seen["E1"]], RunConfig().mil)
    assert bags == {"E0": 1, "E1": 0} and counts["negative"] == 1


def test_export_and_report_use_the_decisions(tmp_path: Path) -> None:
    run, _ = fake_run(tmp_path)
    fixed = _fix_mask(run, "e1", (30, 40))
    reviewed.record(run.root, exam_id="E0", image="E0/frame 0.jpg", action="reject", reviewer="r1")
    reviewed.record(run.root, exam_id="E0", image="E0/frame 1.jpg", action="accept", reviewer="r1")
    reviewed.record(run.root, exam_id="E0", image="E0/frame 1.jpg", action="accept", reviewer="r2")
    reviewed.record(run.root, exam_id="E1", image="E1/frame 0.jpg", action="fix", reviewer="r2", mask_after=fixed,
                    mask_before="prompt_seg/masks/E1/0.png")  # fmt: skip
    reviewed.record(run.root, exam_id="E1", image="", action="label", reviewer="r2", field="polyp_count", value=1)
    _, items = load_items(run)
    by = {(it.exam_id, it.image): it for it in items}
    assert ("E0", "E0/frame 0.jpg") not in by and len(items) == 3
    assert by[("E1", "E1/frame 0.jpg")].mask_path == run.abs(fixed)
    s = reviewed.summary(run.root, {"E1": {"polyp_count": 2}})
    assert (s["images_reviewed"], s["accepted"], s["rejected"], s["fixed"]) == (3, 1, 1, 1)
    assert s["machine_agreement"] == pytest.approx(1 / 3) and s["reviewer_agreement"] == 1.0
    assert s["fields_changed"] == 1 and s["reviewers"] == ["r1", "r2"]
    page = build_report(run.root, max_exams=0).read_text()
    assert 'id="review"' in page and "agreement with the machine" in page and "33.3 %" in page
