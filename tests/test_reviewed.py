"""The reviewer-decision store: decisions persist, the latest wins, and they reshape the pseudo-label pool."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from endoked import reviewed

POOL = [
    {"exam_id": "E1", "image": "E1/a.png", "mask": "prompt_seg/masks/a.png", "source": "prompt_seg", "score": 0.4},
    {"exam_id": "E1", "image": "E1/b.png", "mask": "prompt_seg/masks/b.png", "source": "prompt_seg", "score": 0.5},
    {"exam_id": "E2", "image": "E2/c.png", "mask": "prompt_seg/masks/c.png", "source": "prompt_seg", "score": 0.6},
]


def test_no_store_leaves_the_pool_unchanged(tmp_path: Path) -> None:
    assert reviewed.apply_decisions(tmp_path, POOL) == POOL
    assert reviewed.decisions_hash(tmp_path) == ""


def test_rejected_mask_leaves_the_pool_and_fixed_one_replaces_it(tmp_path: Path) -> None:
    reviewed.record(tmp_path, exam_id="E1", image="E1/a.png", action="reject", reviewer="r1")
    reviewed.record(
        tmp_path,
        exam_id="E1",
        image="E1/b.png",
        action="fix",
        reviewer="r1",
        mask_before="prompt_seg/masks/b.png",
        mask_after="review/masks/b.png",
    )
    out = reviewed.apply_decisions(tmp_path, POOL)
    assert [r["image"] for r in out] == ["E1/b.png", "E2/c.png"]
    assert out[0]["mask"] == "review/masks/b.png" and out[0]["source"] == "reviewed" and out[0]["score"] == 1.0
    assert out[1] == POOL[2]


def test_latest_decision_per_image_wins(tmp_path: Path) -> None:
    reviewed.record(tmp_path, exam_id="E2", image="E2/c.png", action="reject", reviewer="r1")
    reviewed.record(tmp_path, exam_id="E2", image="E2/c.png", action="accept", reviewer="r2")
    out = reviewed.apply_decisions(tmp_path, POOL)
    assert len(out) == 3 and out[2]["source"] == "reviewed" and out[2]["mask"] == POOL[2]["mask"]


def test_bad_decisions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown review action"):
        reviewed.record(tmp_path, exam_id="E1", image="E1/a.png", action="delete", reviewer="r1")
    with pytest.raises(ValueError, match="mask_after"):
        reviewed.record(tmp_path, exam_id="E1", image="E1/a.png", action="fix", reviewer="r1")
    assert reviewed.all_decisions(tmp_path) == []


def test_label_corrections_and_hash_follow_the_decisions(tmp_path: Path) -> None:
    reviewed.record(tmp_path, exam_id="E1", image="", action="label", reviewer="r1", field="polyp", value="absent")
    h1 = reviewed.decisions_hash(tmp_path)
    reviewed.record(tmp_path, exam_id="E1", image="", action="label", reviewer="r1", field="polyp_count", value=0)
    reviewed.record(tmp_path, exam_id="E1", image="", action="label", reviewer="r2", field="polyp", value="present")
    assert reviewed.label_corrections(tmp_path) == {"E1": {"polyp": "present", "polyp_count": 0}}
    assert h1 and reviewed.decisions_hash(tmp_path) not in ("", h1)
    # a label correction is not an image decision
    assert reviewed.apply_decisions(tmp_path, POOL) == POOL


def test_export_table_round_trips(tmp_path: Path) -> None:
    reviewed.record(tmp_path, exam_id="E1", image="E1/a.png", action="reject", reviewer="r1")
    reviewed.record(tmp_path, exam_id="E1", image="", action="label", reviewer="r1", field="polyp", value="absent")
    rows = pq.read_table(reviewed.export_table(tmp_path)).to_pylist()
    assert [(r["exam_id"], r["action"], r["field"]) for r in rows] == [("E1", "reject", None), ("E1", "label", "polyp")]
    assert rows[1]["value"] == '"absent"'


def test_two_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    reviewed.connect(tmp_path).close()

    def write(who: str) -> None:
        for i in range(40):
            reviewed.record(tmp_path, exam_id=who, image=f"{who}/{i}.png", action="accept", reviewer=who)

    threads = [threading.Thread(target=write, args=(w,)) for w in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = {(d["exam_id"], d["image"]) for d in reviewed.all_decisions(tmp_path)}
    assert got == {(w, f"{w}/{i}.png") for w in ("A", "B") for i in range(40)}
