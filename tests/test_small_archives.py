"""Runs on 6- and 15-exam synthetic archives end with a clear, true message: exit 0 with warnings naming
each degenerate figure, or exit 1 naming what was too few; never a dangling file reference or a silent NaN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from endoked.cli import main
from endoked.health import STAGE_MINIMUMS, ledger_warnings
from endoked.runfolder import RunFolder

FAST = [
    "mil.epochs=2",
    "mil.image_size=96",
    "cam.epochs=2",
    "cam.image_size=96",
    "cam.scales=[1.0]",
    "prompt_seg.segmenter=ellipse",
    "seg.image_size=96",
    "seg.optim.epochs=1",
    "seg.refine.rounds=0",
]


def _run(tmp_path: Path, exams: int, extra: list[str]) -> tuple[int, RunFolder]:
    archive = tmp_path / "archive"
    assert main(["--no-progress", "-q", "synth", "-o", str(archive), "--exams", str(exams), "--size", "96"]) == 0
    sets = [x for s in [*FAST, *extra] for x in ("--set", s)]
    rc = main(
        ["--no-progress", "-q", "run", "--profile", "cpu-small", "-a", str(archive), "-o", str(tmp_path / "run"), *sets]
    )
    return rc, RunFolder(tmp_path / "run")


def _paths_in(text: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"(/\S+?\.(?:jsonl|parquet|json|txt|html))\b", text)]


@pytest.mark.slow
def test_six_exams_without_pseudo_masks_fail_naming_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # every mask dropped by the CAM-agreement filter: seg has nothing to train on
    rc, run = _run(tmp_path, 6, ["prompt_seg.min_cam_agreement=1.0"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "seg: too few pseudo masks to train on: 0 usable (the minimum is 1)" in err
    assert "prompt_seg.rescue_dropped" in err  # what to change
    assert "Traceback" not in err
    for path in _paths_in(err):  # every file the message names exists
        assert path.exists(), path
    page = (run.root / "report.html").read_text()
    assert "too few pseudo masks to train on" in page  # the failure message, not only "failed"


@pytest.mark.slow
def test_fifteen_exams_finish_with_warnings_not_a_silent_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, run = _run(tmp_path, 15, ["seg.val_fraction=0.0"])  # no validation image, as with 224-px frames
    captured = capsys.readouterr()
    assert rc == 0
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    text = "\n".join(warnings)
    assert "[prompt_seg] pseudo masks on" in text
    assert "[seg] the segmentation model was not validated (val_mean_dice=nan, 0 validation images)" in text
    for line in captured.out.splitlines():  # every NaN figure of the summary has its warning
        if "=nan" in line:
            stage = line.split()[0]
            assert f"[{stage}]" in text, line
    assert "[mil] validation AUROC" in text  # 2 validation bags
    assert "[eval] no test set was scored" in text
    page = (run.root / "report.html").read_text()
    assert "[prompt_seg] pseudo masks on" in page  # the report carries the same warnings
    for path in _paths_in(captured.err + captured.out):
        assert path.exists(), path


def test_ledger_warnings_flag_chance_and_nan() -> None:
    stages = {
        "mil": {"status": "done", "counts": {"positive": 40, "negative": 40, "val_bags": 16, "val_bag_auroc": 0.32}},
        "prompt_seg": {"status": "done", "counts": {"pseudo_labels": 300}},
        "seg": {"status": "done", "counts": {"val_mean_dice": float("nan")}},
    }
    got = [str(w) for w in ledger_warnings(stages)]
    assert any("bag classifier at chance: validation bag AUROC 0.32" in w for w in got)
    assert any("val_mean_dice=nan" in w for w in got)
    assert not any("pseudo masks on" in w for w in got)  # 300 masks are enough
    healthy = {**stages, "mil": {**stages["mil"], "counts": {**stages["mil"]["counts"], "val_bag_auroc": 0.9}}}
    healthy["seg"] = {"status": "done", "counts": {"val_mean_dice": 0.7}}
    assert ledger_warnings(healthy) == []
    assert set(STAGE_MINIMUMS) == {"ingest", "extract", "mil", "cam", "prompt_seg", "seg", "eval"}


def test_ledger_warns_when_cam_boxes_few_of_many_selected_images() -> None:
    drops = {"too_many_components": 140, "touches_border": 14}
    cam = {"images": 154, "images_with_boxes": 0, "drop_reasons": drops}
    got = [str(w) for w in ledger_warnings({"cam": {"status": "done", "counts": cam}})]
    assert len(got) == 1 and "CAM boxes on 0 of 154 MIL-selected images (0%" in got[0]
    assert "too_many_components 140, touches_border 14" in got[0] and "add exams" not in got[0]
    # 204 of 291 boxed (70 %): healthy; 30 of 200 (15 %): flagged; 5 of 10: too few images, the old advice
    ok = {"images": 291, "images_with_boxes": 204}
    assert ledger_warnings({"cam": {"status": "done", "counts": ok}}) == []
    low = {"images": 200, "images_with_boxes": 30}
    assert "30 of 200" in str(ledger_warnings({"cam": {"status": "done", "counts": low}})[0])
    few = {"images": 10, "images_with_boxes": 5}
    assert "add exams" in str(ledger_warnings({"cam": {"status": "done", "counts": few}})[0])
