"""The thirteenth round of rules, written against the errors of tests/extract/data/blind11.jsonl (a development set
since), each family on sentences written for these tests, with the cases a rule must leave alone beside them."""

from __future__ import annotations

import pytest

from endoked.extract.rules import extract_rules
from endoked.extract.text import normalize, split_sections
from endoked.extract.vocab import lower_ascii
from tests.extract.rules_summary import SiteSizeShape as Summary
from tests.extract.rules_summary import site_size_shape as _summary


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # a count field of zero
        ("Polyps: 0\nFindings: normal colonic mucosa throughout.", ("absent", 0, [])),
        # ... a Paris class or a size starting with 0 is no count of zero
        (
            "检查所见：\n1、升结肠：0.5cm，CSP；\n2、乙状结肠：0.8cm，EMR。",
            ("present", 2, [("ascending", 5.0, "unspecified"), ("sigmoid", 8.0, "unspecified")]),
        ),
        (
            "Findings:\n  Polyp #1 - Location: Rectum | Size: 4 mm | Paris: 0-IIa | Removal: CSP",
            ("present", 1, [("rectum", 4.0, "flat")]),
        ),
        # what proved to be adherent stool
        (
            "An apparent 4 mm sessile lesion in the caecum proved to be adherent stool: it washed away completely.",
            ("absent", 0, []),
        ),
        # a so-called "polyp" with a look-alike named before it
        ('Impression: Sigmoid colon lipoma (the referred "polyp"). No polyps.', ("absent", 0, [])),
        # a glimpsed polyp-like lesion that the impression calls possible and not relocated
        (
            "Findings: a small polyp-like lesion was glimpsed in the descending colon; it could not be found again.\n"
            "Conclusion: Possible small descending colon polyp, not relocated.",
            ("uncertain", None, []),
        ),
        # a form's fields about the polyp name no polyp of their own
        (
            "Polyp: Possible\nPolyp location: Transverse colon\nPolyp size: unable to estimate\n"
            "Impression: Possible transverse colon polyp, not relocated.",
            ("uncertain", None, []),
        ),
        # 息肉不能除外 in brackets hedges
        (
            "检查所见：乙状结肠见一小隆起，约0.3cm，表面光滑。\n内镜诊断：乙状结肠隆起（息肉不能除外）",
            ("uncertain", None, []),
        ),
    ],
)
def test_status(text: str, want: Summary) -> None:
    assert _summary(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # 病理结果回报（补充）opens a result, so its numbered lines are no more polyps
        (
            "检查所见：盲肠见一约0.6cm息肉，予切除；直肠见一约0.3cm息肉，予钳除。\n\n病理结果回报（补充）：\n"
            "1.（盲肠）管状腺瘤；\n2.（直肠）增生性息肉。",
            ("present", 2, [("cecum", 6.0, "unspecified"), ("rectum", 3.0, "unspecified")]),
        ),
        # input-method slips: 生结肠, 西肉
        ("生结肠见两枚约0.3cm西肉，予以钳除。", ("present", 2, [("ascending", 3.0, "unspecified")] * 2)),
    ],
)
def test_chinese_headers_and_slips(text: str, want: Summary) -> None:
    assert _summary(text) == want


@pytest.mark.parametrize(
    ("text", "mal"),
    [
        ("Colonoscopy - Hereditary GI Cancer Clinic\nFindings: three 4 mm polyps in the rectum, removed.", False),
        ("所见：乙状结肠见一处外压性隆起，表面光滑。\n诊断：乙状结肠外压性改变（考虑盆腔占位压迫）", False),
        ("所见：乙状结肠见一约3cm占位，表面溃烂。", True),
    ],
)
def test_outside_masses_and_clinic_names(text: str, mal: bool) -> None:
    assert extract_rules(text).malignancy_suspected is mal


def test_bilingual_headers_and_a_note_to_the_patient() -> None:
    text = (
        "Findings 檢查結果:\n- Rectum: 2 small sessile polyps, ~3 mm each, removed by cold forceps.\n"
        "Diagnosis 診斷: Rectal polyps x2, removed.\n"
        "病人須知：直腸有兩粒細小瘜肉，已於檢查時切除。\n"
        "Pathology 病理: Rectal polyps: hyperplastic polyps (2)."
    )
    out = extract_rules(text)
    assert (out.polyp_count, [p.location for p in out.polyps], out.pathology) == (
        2,
        ["rectum", "rectum"],
        "hyperplastic",
    )
    kinds = [s.kind for s in split_sections(lower_ascii(normalize(text)))]
    assert kinds == ["findings", "impression", "plan", "pathology"]


def test_a_block_repeated_by_an_ehr_copy_counts_once() -> None:
    block = "Findings:\nA 5 mm sessile polyp was found in the sigmoid colon. The polyp was removed with a cold snare.\n"
    out = extract_rules("Indication: screening\n" + block + block + "Impression:\n- One 5 mm polyp, removed.")
    assert (out.polyp_count, [p.location for p in out.polyps]) == (1, ["sigmoid"])
    # ... two different blocks are two findings
    other = "Findings:\nA 4 mm sessile polyp was found in the rectum, removed.\n"
    assert extract_rules(block + other).polyp_count == 2


def test_addendum_header_with_words_before_its_colon() -> None:
    text = (
        "Findings: a 3 mm polyp in the rectum, cold forceps.\n\n"
        "ADDENDUM - pathology received 03/02:\nA. Rectal polyp: hyperplastic polyp."
    )
    kinds = [s.kind for s in split_sections(lower_ascii(normalize(text)))]
    assert kinds == ["findings", "pathology"]
    assert extract_rules(text).pathology == "hyperplastic"
