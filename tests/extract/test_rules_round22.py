"""The twenty-second round of rules, written against the errors of tests/extract/data/blind20.jsonl (a development set
since), each family on sentences written for these tests, with the cases a rule must leave alone beside them."""

from __future__ import annotations

import pytest

from tests.extract.rules_summary import SiteSizeShape as Summary
from tests.extract.rules_summary import site_size_shape as _summary

DISCHARGE = (
    "Reason for admission: rectal bleeding.\n"
    "Past medical history: hypertension; colonic polyps removed in 2019 (tubular adenomas per outside records).\n"
    "Hospital course: colonoscopy showed sigmoid diverticulosis with a clot in one diverticulum. "
    "No polyps were seen to the caecum."
)
WARD_NOTE = (
    '患者因"外院肠镜发现结肠息肉2周"入院，入院诊断：结肠息肉。\n'
    "今日行结肠镜下治疗：横结肠见一枚约1.2cm亚蒂息肉，予EMR完整切除。余结肠未见息肉。"
)
DISCHARGE_ZH = (
    "入院诊断：1.结肠息肉 2.高血压病\n"
    "诊疗经过：行结肠镜检查：升结肠见1枚约0.6cm息肉，予冷圈套切除。\n"
    "出院诊断：1.结肠息肉（内镜下切除术后） 2.高血压病"
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # a discharge summary's medical history, and polyps known only from another unit's records
        (DISCHARGE, ("absent", 0, [])),
        # a finding quoted from another unit's sigmoidoscopy, and the "referral polyp" it names
        (
            'Indication: referred with a "polyp at 25 cm" on an outside flexible sigmoidoscopy.\n'
            "Findings: only a prominent fold at 25 cm in the sigmoid colon. No polyps to the caecum.\n"
            "Impression: referral polyp not confirmed.",
            ("absent", 0, []),
        ),
        # a ward note's admission diagnosis, written inside its sentence, precedes the exam
        (WARD_NOTE, ("present", 1, [("transverse", 12.0, "sessile")])),
        # a Chinese discharge summary: the admission diagnosis precedes the exam, the discharge diagnosis restates it
        (DISCHARGE_ZH, ("present", 1, [("ascending", 6.0, "unspecified")])),
        # left alone: a polyp found today on the exam of this unit, and a history field with no polyp
        (
            "Past medical history: diabetes.\nFindings: a 5 mm sessile polyp in the rectum, cold snare.",
            ("present", 1, [("rectum", 5.0, "sessile")]),
        ),
        (
            "History: FIT positive.\nFindings: two 4 mm polyps in the sigmoid colon, cold snare.",
            ("present", 2, [("sigmoid", 4.0, "unspecified"), ("sigmoid", 4.0, "unspecified")]),
        ),
    ],
)
def test_status_and_sites(text: str, want: Summary) -> None:
    assert _summary(text) == want
