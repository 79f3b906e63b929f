"""The third round of rules, written against the errors of tests/extract/data/blind_heldout.jsonl (which is a
development set since), each family on sentences written for these tests."""

from __future__ import annotations

import pytest

from endoked.extract.rules import extract_rules


@pytest.mark.parametrize(
    ("text", "polyp", "count"),
    [
        ("Scope to caecum. Nil polyps seen. Repeat in 5 years.", "absent", 0),
        ("Polyps detected: [ ] Yes [x] No\nDiverticula: [x] Yes [ ] No", "absent", 0),
        ("全结肠见20余枚息肉，大小0.2-0.5cm。", "present", None),
        ("直肠见十多枚小息肉。", "present", None),
        ("乙状结肠见数十枚息肉。", "present", None),
        ("乙状结肠见2枚息肉，约0.3cm。", "present", 2),
        (
            "In the transverse colon a 7 mm polypoid-appearing lesion which, on closer inspection with the water "
            "jet, the cap and the closed forceps, proved to be a lipoma (pillow sign). No polyps.",
            "absent",
            0,
        ),
    ],
)
def test_negation_checkbox_and_counts(text: str, polyp: str, count: int | None) -> None:
    out = extract_rules(text)
    assert (out.polyp, out.polyp_count) == (polyp, count)


@pytest.mark.parametrize(
    ("text", "malignancy"),
    [
        ("Descending colon stricture at 40 cm, ?Ca, biopsied x6. No polyps.", True),
        ("Rectal ulcerated lesion, Ca? Biopsies taken.", True),
        ("回盲瓣黄色、质软，考虑脂肪浸润。全结肠未见息肉。", False),
        ("Mass: [ ] Yes [x] No. Polyps: none.", False),
        ("Calcium supplements stopped. No polyps.", False),
    ],
)
def test_malignancy_cues(text: str, malignancy: bool) -> None:
    assert extract_rules(text).malignancy_suspected is malignancy


@pytest.mark.parametrize(
    ("text", "pathology"),
    [
        ("横结肠见一枚0.3cm息肉，予钳除。\n病理：（横结肠）黏膜低级别上皮内瘤变。", "adenoma"),
        ("横结肠见一枚0.3cm息肉，予钳除。\n病理：（横结肠）黏膜慢性炎。", "other"),
        ("息肉切除术后复查（既往病理：管状腺瘤）。全结肠未见息肉。", None),
        (
            "Findings: 6 mm 0-Is polyp in the sigmoid, cold snare.\n\nPATHOLOGY ADDENDUM: sigmoid polyp - "
            "sessile serrated lesion without dysplasia.",
            "sessile_serrated",
        ),
    ],
)
def test_pathology_sections_and_sites(text: str, pathology: str | None) -> None:
    assert extract_rules(text).pathology == pathology


def test_a_ticked_yes_is_no_negation() -> None:
    out = extract_rules("Polyps detected: [x] Yes [ ] No\nA 4 mm sessile polyp in the rectum, cold snare.")
    assert out.polyp == "present" and "rectum" in [p.location for p in out.polyps]


def test_misspelt_segment_is_still_the_polyps_site() -> None:
    out = extract_rules("colonoscopy to cecum. 1 polyp 4mm in the asending colon, removed.")
    assert [p.location for p in out.polyps] == ["ascending"]
