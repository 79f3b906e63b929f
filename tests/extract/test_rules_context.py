"""Rules extractor: polyp status under negation, history, hedging; malignancy; Findings/Impression
de-duplication; mixed-language reports. Every sentence here is written for these tests."""

from __future__ import annotations

import pytest

from endoked.extract.rules import extract_rules


def status(text: str) -> str | None:
    return extract_rules(text).polyp


@pytest.mark.parametrize(
    "text",
    [
        "No polyps, masses or vascular lesions were seen.",
        "The colon was examined to the cecum without evidence of polyps.",
        "Polyps: none.",
        "Polyps were not identified on careful withdrawal.",
        "There was no evidence of neoplasia or polyps.",
        "Examined to the terminal ileum. Normal mucosa throughout; no polyp.",
        "全结肠黏膜光滑，血管纹理清晰，未见息肉及肿物。",
        "结肠未发现息肉，直肠未见异常。",
        "息肉：无",
        "退镜观察全结肠，无息肉，无溃疡。",
    ],
)
def test_negated_polyps_are_absent(text: str) -> None:
    out = extract_rules(text)
    assert out.polyp == "absent"
    assert out.polyp_count == 0
    assert out.polyps == []


@pytest.mark.parametrize(
    "text",
    [
        "History of adenomatous polyps. Today the colon was normal.",
        "S/p polypectomy in 2018. The colon was otherwise unremarkable.",
        "Indication: surveillance for prior tubular adenoma.\nFindings: normal examination to the cecum.",
        "Polyps were removed at the last colonoscopy. None seen today.",
        "Prior polypectomy scar in the sigmoid colon without residual polyp.",
        "Family history of colonic polyps in his father; the examination was normal.",
        "既往结肠息肉切除术后，本次检查未见异常。",
        "3年前行结肠息肉切除，现复查，肠腔通畅，黏膜光滑。",
        "临床诊断：结肠息肉术后复查\n检查所见：全结肠黏膜光滑。",
        "原息肉切除处可见白色瘢痕，余结肠未见异常。",
    ],
)
def test_history_only_is_absent(text: str) -> None:
    assert status(text) == "absent"


@pytest.mark.parametrize(
    "text",
    [
        "Possible 3 mm polyp in the cecum, partly obscured by stool.",
        "A questionable flat lesion in the transverse colon could not be confirmed.",
        "Cannot exclude a small polyp behind a fold in the ascending colon.",
        "Impression: prominent fold versus polyp at the splenic flexure.",
        "横结肠可疑息肉，约0.2cm，未处理。",
        "升结肠见一处黏膜隆起，考虑息肉可能。",
        "降结肠疑似小息肉，冲洗后观察不清。",
        "直肠见一小隆起（息肉待排）。",
    ],
)
def test_hedged_polyps_are_uncertain(text: str) -> None:
    out = extract_rules(text)
    assert out.polyp == "uncertain"
    assert out.polyp_count is None
    assert out.polyps == []
    assert out.evidence["polyp"], "the hedged mention is the evidence"


@pytest.mark.parametrize(
    "text",
    [
        "Small polyps cannot be excluded because of the poor preparation.",
        "Bowel preparation was inadequate; lesions smaller than 5 mm may have been missed.",
    ],
)
def test_prep_disclaimers_are_not_findings(text: str) -> None:
    assert status(text) == "absent"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A 4 mm polyp was seen in the rectum; no other polyps were found.", "present"),
        ("No bleeding after removal of the 6 mm sigmoid polyp.", "present"),
        ("无蒂息肉一枚，位于直肠，大小约0.4cm，予钳除。", "present"),
        ("History of polyps. Today a 5 mm polyp was found in the sigmoid colon.", "present"),
        ("A 6 mm hyperplastic-appearing polyp, probably hyperplastic, in the rectum.", "present"),
        ("A 25 mm laterally spreading tumor (LST-G) in the cecum.", "present"),
        ("Numerous inflammatory pseudopolyps in the descending colon.", "present"),
        ("升结肠见侧向发育型肿瘤，约3.0cm。", "present"),
    ],
)
def test_current_polyps_are_present(text: str, expected: str) -> None:
    assert status(text) == expected


@pytest.mark.parametrize(
    ("text", "mal", "polyp"),
    [
        ("A fungating, ulcerated mass in the rectum, biopsied.", True, "absent"),
        ("No masses. Normal colon.", False, "absent"),
        ("A 30 mm polyp in the sigmoid colon, suspicious for malignancy.", True, "present"),
        ("History of rectal cancer s/p low anterior resection; the anastomosis was normal.", False, "absent"),
        ("Indication: screening for colorectal cancer.\nFindings: normal colon.", False, "absent"),
        ("A 25 mm laterally spreading tumor in the ascending colon, removed piecemeal.", False, "present"),
        ("直肠见一菜花样肿物，表面溃烂，质脆，取活检4块。", True, "absent"),
        ("全结肠未见肿物及息肉。", False, "absent"),
        ("直肠癌术后复查，吻合口通畅。", False, "absent"),
        ("升结肠侧向发育型肿瘤，约2.5cm。", False, "present"),
        ("乙状结肠见一占位，肠腔狭窄，内镜无法通过。", True, "absent"),
        ("Rectal polyp with NICE type 3 surface pattern, biopsied.", True, "present"),
    ],
)
def test_malignancy(text: str, mal: bool, polyp: str) -> None:
    out = extract_rules(text)
    assert out.malignancy_suspected is mal
    assert out.polyp == polyp
    if mal:
        assert out.evidence["malignancy_suspected"]


@pytest.mark.parametrize(
    ("text", "count", "locations"),
    [
        (
            "Findings: A 6 mm sessile polyp in the descending colon, removed with cold snare.\n"
            "Impression: Descending colon polyp, removed.",
            1,
            ["descending"],
        ),
        (
            "Findings: Two polyps in the ascending colon, 3 and 5 mm.\nImpression: Two ascending colon polyps, "
            "removed.",
            2,
            ["ascending", "ascending"],
        ),
        (
            "Findings: A 7 mm polyp in the transverse colon. The polyp was removed with a hot snare.\n"
            "Impression: Transverse colon polyp.",
            1,
            ["transverse"],
        ),
        (
            "Findings: A 4 mm polyp in the cecum and a 6 mm polyp in the rectum.\nImpression: Two small polyps "
            "(cecum, rectum), removed.",
            2,
            ["cecum", "rectum"],
        ),
        ("检查所见：直肠见一枚0.5cm息肉，予钳除。\n诊断：直肠息肉（已钳除）", 1, ["rectum"]),
        ("检查所见：乙状结肠见一枚息肉，大小约0.6cm。该息肉予圈套器切除。\n诊断：乙状结肠息肉", 1, ["sigmoid"]),
        (
            "Findings: A 5 mm polyp in the sigmoid colon.\nImpression: Sigmoid polyp. Also a rectal polyp seen "
            "on retroflexion.",
            2,
            ["sigmoid", "rectum"],
        ),
        ("【检查所见】横结肠：0.4cm息肉，予冷圈套切除。\n【诊断】横结肠息肉（已切除）", 1, ["transverse"]),
        ("[Findings] A 6 mm polyp in the cecum, cold snare.\n[Impression] Cecal polyp, removed.", 1, ["cecum"]),
        ("所见：升结肠见1个约0.4cm息肉，予钳除。\n内镜诊断：结直肠息肉（已切除）", 1, ["ascending"]),
    ],
)
def test_findings_and_impression_count_once(text: str, count: int, locations: list[str]) -> None:
    out = extract_rules(text)
    assert out.polyp == "present"
    assert out.polyp_count == count
    assert sorted(p.location for p in out.polyps) == sorted(locations)


@pytest.mark.parametrize(
    ("text", "count", "location", "size"),
    [
        ("检查所见：sigmoid colon 见一枚 5 mm polyp，予 cold snare 切除。\n诊断：乙状结肠息肉", 1, "sigmoid", 5.0),
        ("Findings: 直肠见一枚0.3cm息肉。\nImpression: rectal polyp, removed.", 1, "rectum", 3.0),
        ("Transverse colon: 见一枚8mm亚蒂息肉, hot snare polypectomy.", 1, "transverse", 8.0),
    ],
)
def test_mixed_language_reports(text: str, count: int, location: str, size: float) -> None:
    out = extract_rules(text)
    assert (out.polyp, out.polyp_count) == ("present", count)
    assert out.polyps[0].location == location
    assert out.polyps[0].size_mm == pytest.approx(size)


def test_evidence_spans_point_at_the_words() -> None:
    text = "Findings: In the sigmoid colon there was a 12 mm pedunculated polyp, removed with a hot snare."
    out = extract_rules(text)
    ev = out.evidence["polyp"]
    assert [text[s.start : s.end] for s in ev] == ["polyp"]
    p = out.polyps[0]
    assert text[p.evidence["location"][0].start : p.evidence["location"][0].end] == "sigmoid colon"
    assert text[p.evidence["size_mm"][0].start : p.evidence["size_mm"][0].end] == "12 mm"
    assert text[p.evidence["morphology"][0].start : p.evidence["morphology"][0].end] == "pedunculated"
    assert p.removed is True


def test_full_width_text_keeps_offsets() -> None:
    text = "检查所见：直肠见一枚０．５ｃｍ息肉，予圈套器切除。"
    out = extract_rules(text)
    assert out.polyps[0].size_mm == pytest.approx(5.0)
    span = out.polyps[0].evidence["size_mm"][0]
    assert text[span.start : span.end] == "０．５ｃｍ"


@pytest.mark.parametrize(
    ("text", "polyp", "count"),
    [
        ("No polyps were found except for a 5 mm polyp in the rectum.", "present", 1),
        ("直肠距肛缘5cm处见一0.5cm×0.6cm广基息肉，予EMR切除。", "present", 1),
        ("结肠镜检查未见明显异常。", "absent", 0),
        (
            "s/p right hemicolectomy with ileocolic anastomosis. A 4 mm polyp at the anastomosis, cold snare.",
            "present",
            1,
        ),
        ("Colon: unremarkable. Rectum: 2 small polyps, cold forceps.", "present", 2),
        ("见2枚息肉，分别位于升结肠及横结肠，均予钳除。", "present", 2),
        (
            "The patient has a history of colon cancer. Today: a 6 mm polyp in the transverse colon, removed.",
            "present",
            1,
        ),
        ("There is a 1.5 x 1.2 cm polypoid mass in the cecum, biopsied.", "absent", 0),
        ("A small polyp was noted in the sigmoid colon but could not be retrieved.", "present", 1),
        ("Impression: 1. Two sigmoid polyps, removed. 2. Diverticulosis.", "present", 2),
        ("直肠见数个米粒大小息肉，予APC治疗。", "present", None),
        ("Findings: Normal colon.\nImpression: No polyps; hemorrhoids.", "absent", 0),
        ("降结肠可见一枚约0.3cm息肉，未见出血。乙状结肠未见息肉。", "present", 1),
        ("Scattered diminutive polyps in the rectum, not removed (hyperplastic appearing).", "present", None),
        ("A 7 mm polyp in the cecum. A second 4 mm polyp in the cecum. Both removed with cold snare.", "present", 2),
        ("ESD术后复查，原创面愈合良好，未见残留。", "absent", 0),
        ("结肠见一息肉，直径约0.5cm，性质待定。", "present", 1),
        ("A 2 cm flat lesion (LST-NG) in the transverse colon, referred for ESD.", "present", 1),
    ],
)
def test_assorted_report_sentences(text: str, polyp: str, count: int | None) -> None:
    out = extract_rules(text)
    assert (out.polyp, out.polyp_count) == (polyp, count)
