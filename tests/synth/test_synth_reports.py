"""Synthetic reports: determinism, contract, and that the labels say what the text says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from endoked.synth.findings import CATEGORIES, plan_categories
from endoked.synth.reports import synth_reports

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO.parent / "shared" / "tools" / "check_report_labels.py"
LABEL_KEYS = {"polyp", "polyp_count", "polyps", "malignancy_suspected", "pathology"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return synth_reports(400, seed=7)


def _full_text(row: dict) -> str:
    return row["text"] + "\n" + (row["pathology"] or "")


def test_deterministic_and_seed_dependent() -> None:
    a = synth_reports(50, seed=3)
    assert a == synth_reports(50, seed=3)
    assert [r["text"] for r in a] != [r["text"] for r in synth_reports(50, seed=4)]


def test_rows_have_contract_labels(rows: list[dict]) -> None:
    for r in rows:
        assert set(r) >= {"id", "text", "pathology", "lang", "labels"}
        assert set(r["labels"]) == LABEL_KEYS
        lab = r["labels"]
        if lab["polyp"] == "absent":
            assert lab["polyp_count"] == 0 and lab["polyps"] == []
        if lab["polyp"] == "uncertain":
            assert lab["polyp_count"] is None and lab["polyps"] == []
        if lab["polyp"] == "present" and lab["polyp_count"] is not None:
            assert lab["polyp_count"] == len(lab["polyps"])


@pytest.mark.skipif(not CHECKER.exists(), reason="report-label checker not available")
def test_contract_checker_accepts_labels(rows: list[dict], tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"id": r["id"], **r["labels"]}) + "\n" for r in rows), encoding="utf-8")
    res = subprocess.run([sys.executable, str(CHECKER), str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout


def test_both_languages_and_single_language(rows: list[dict]) -> None:
    langs = {r["lang"] for r in rows}
    assert langs == {"en", "zh"}
    for r in rows:
        assert bool(CJK.search(r["text"])) == (r["lang"] == "zh")
    en_only = synth_reports(60, seed=1, langs=("en",))
    assert all(r["lang"] == "en" and not CJK.search(_full_text(r)) for r in en_only)


def test_phrasing_is_varied(rows: list[dict]) -> None:
    sentences: set[str] = set()
    for r in rows[:200]:
        sentences.update(s.strip() for s in re.split(r"[.。\n；;]", r["text"]) if len(s.strip()) > 8)
    assert len(sentences) > 500
    # the same findings category is phrased in many different ways
    present_en = [r["text"] for r in rows if r["lang"] == "en" and r["labels"]["polyp"] == "present"]
    assert len(set(present_en)) == len(present_en)


def test_categories_follow_their_labels(rows: list[dict]) -> None:
    hedge = re.compile(r"possible|questionable|equivocal|suspicious|可疑|待排|不除外|可能|？", re.I)
    history = re.compile(r"polypectomy|s/p|hx of|history|prior|既往|术后|曾行", re.I)
    mass = re.compile(r"mass|malignan|肿物|癌|恶性|tumor", re.I)
    for r in rows:
        lab, text = r["labels"], r["text"]
        if r["category"] == "uncertain":
            assert lab["polyp"] == "uncertain" and hedge.search(text), text
        elif r["category"] == "history":
            assert lab["polyp"] == "absent" and history.search(text), text
        elif r["category"] == "malignancy":
            assert lab["malignancy_suspected"] and mass.search(text), text
        elif r["category"] == "absent":
            assert lab == {
                "polyp": "absent",
                "polyp_count": 0,
                "polyps": [],
                "malignancy_suspected": False,
                "pathology": lab["pathology"],
            }
            assert lab["pathology"] in (None, "other")
        else:
            assert lab["polyp"] == "present" and not lab["malignancy_suspected"]


def _size_forms(mm: float) -> list[str]:
    m = int(mm)
    return [
        f"{m} mm",
        f"{m}mm",
        f"{m} x",
        f"{m}x",
        f"{m} ×",
        f"x {m} mm",
        f"× {m} mm",
        f"x{m}mm",
        f"{m}×",
        f"×{m}mm",
        f"{m / 10:.1f}",
        f"{m // 10} cm" if m % 10 == 0 else "\0",
        f"-{m}",
        f"to {m} mm",
        f"up to {m} mm",
    ]


def test_stated_sizes_appear_in_text(rows: list[dict]) -> None:
    checked = 0
    for r in rows:
        for p in r["labels"]["polyps"]:
            if p["size_mm"] is not None:
                assert any(form in r["text"] for form in _size_forms(p["size_mm"])), (p, r["text"])
                checked += 1
    assert checked > 100


def test_multiple_means_null_count(rows: list[dict]) -> None:
    multi = re.compile(r"multiple|several|numerous|a few|数枚|多发|多枚|散在多个", re.I)
    seen_null = 0
    for r in rows:
        if r["labels"]["polyp"] == "present" and r["labels"]["polyp_count"] is None:
            seen_null += 1
            assert multi.search(r["text"]), r["text"]
    assert seen_null > 5


def test_pathology_label_needs_pathology_text(rows: list[dict]) -> None:
    marker = re.compile(r"pathology|path:|病理", re.I)
    with_path = 0
    for r in rows:
        stated = r["pathology"] is not None or bool(marker.search(r["text"]))
        if r["labels"]["pathology"] is not None:
            with_path += 1
            assert stated, r
        else:
            assert r["pathology"] is None
    assert with_path > 50


def test_plan_categories_honours_fractions() -> None:
    fr = {"present": 0.5, "absent": 0.2, "history": 0.1, "uncertain": 0.1, "malignancy": 0.1}
    cats = plan_categories(1000, fr, seed=0)
    for c in CATEGORIES:
        assert cats.count(c) == round(fr[c] * 1000)
    assert cats != sorted(cats)  # shuffled
    small = plan_categories(7, fr, seed=0)
    assert len(small) == 7 and small.count("present") in (3, 4)
    with pytest.raises(ValueError, match="zero"):
        plan_categories(5, {c: 0.0 for c in CATEGORIES}, seed=0)


def test_bad_language_rejected() -> None:
    with pytest.raises(ValueError, match="langs"):
        synth_reports(3, seed=0, langs=("fr",))
