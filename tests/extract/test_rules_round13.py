"""The thirteenth round of rules, written against the errors of tests/extract/data/blind11.jsonl (a development set
since), each family on sentences written for these tests, with the cases a rule must leave alone beside them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.extract.rules_summary import polyp_summary

Summary = tuple[str, int | None, list[tuple[str, float | None, str]]]


def _summary(text: str) -> Any:
    return polyp_summary(text, "location", "size_mm", "morphology")


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
