"""Rules written against the harder development set (tests/extract/data/hard_dev.jsonl), one family per
test, on sentences written for these tests; and the thresholds on the two harder sets (the second round of
rules, written against hard_heldout.jsonl, is tested in test_rules_round2.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from endoked.extract.api import process_batch
from endoked.extract.evaluate import evaluate
from endoked.extract.rules import extract_rules
from endoked.io import read_jsonl

DATA = Path(__file__).parent / "data"


def _summary(text: str) -> tuple[str | None, int | None, list[str]]:
    out = extract_rules(text)
    return out.polyp, out.polyp_count, sorted(p.location for p in out.polyps)


@pytest.mark.parametrize(
    ("text", "polyp", "count", "locations"),
    [
        # A named segment beats a generic "colonic"/"全结肠" in the window.
        (
            "Ileocolic anastomosis, patent; a 4 mm sessile polyp on the colonic side of the anastomosis.",
            "present",
            1,
            ["anastomosis"],
        ),
        ("全结肠黏膜充血，横结肠见一约0.5cm息肉。", "present", 1, ["transverse"]),
        # A bare number after polyps of undetermined number picks some of them out.
        (
            "Scattered pseudopolyps in the transverse colon. Biopsies of two polyps were taken.",
            "present",
            None,
            ["transverse"],
        ),
        # An Impression without a stated number does not override an undetermined Findings count...
        (
            "所见：横结肠及降结肠见散在炎性息肉。\n诊断：溃疡性结肠炎伴炎性息肉",
            "present",
            None,
            ["descending", "transverse"],
        ),
        # ... one with a stated number does.
        ("Findings: polyps in the cecum and sigmoid, removed.\nImpression: 3 polyps removed.", "present", 3, None),
    ],
)
def test_locations_and_counts_across_mentions(
    text: str, polyp: str, count: int | None, locations: list[str] | None
) -> None:
    got_polyp, got_count, got_locations = _summary(text)
    assert (got_polyp, got_count) == (polyp, count)
    if locations is not None:
        assert got_locations == locations


@pytest.mark.parametrize(
    ("text", "count", "locations"),
    [
        (
            "Two polyps at the hepatic flexure (6 and 9 mm, Paris 0-Is) and one at the splenic flexure (4 mm).",
            3,
            ["hepatic_flexure", "hepatic_flexure", "splenic_flexure"],
        ),
        ("Three polyps: two in the ascending colon and one in the transverse colon.", 3, None),
        ("A 5 mm polyp in the sigmoid and one at the splenic flexure (8 mm), cold snare.", 2, None),
        ("Two 4 mm polyps in the cecum, and two more in the rectum, all removed.", 4, None),
    ],
)
def test_number_standing_for_a_left_out_polyp_noun(text: str, count: int, locations: list[str] | None) -> None:
    polyp, got_count, got_locations = _summary(text)
    assert (polyp, got_count) == ("present", count)
    if locations is not None:
        assert got_locations == sorted(locations)


def test_left_out_noun_keeps_its_own_size() -> None:
    out = extract_rules("A 5 mm polyp in the sigmoid and one at the splenic flexure (8 mm), cold snare.")
    assert sorted((p.location, p.size_mm) for p in out.polyps) == [("sigmoid", 5.0), ("splenic_flexure", 8.0)]


@pytest.mark.parametrize(
    ("text", "locations"),
    [
        ("Sig 6mm SSP - CSP, retrieved.", ["sigmoid"]),
        ("Rect 3mm HP-appearing, left in situ.", ["rectum"]),
        ("Sig 6mm SSP - CSP. Rect 3mm HP, left.", ["rectum", "sigmoid"]),
    ],
)
def test_polyp_abbreviations(text: str, locations: list[str]) -> None:
    assert _summary(text) == ("present", len(locations), locations)


@pytest.mark.parametrize(
    ("pathology", "category"),
    [
        ("TA (splenic flexure); SSL x2 (hepatic flexure).", "adenoma"),
        ("a) SSA/P; b) TVA.", "adenoma"),
        ("HP x2.", "hyperplastic"),
        ("SSP.", "sessile_serrated"),
    ],
)
def test_pathology_abbreviations(pathology: str, category: str) -> None:
    assert extract_rules(f"Sigmoid: 5 mm polyp, cold snare.\nPath: {pathology}").pathology == category


@pytest.mark.parametrize(
    "text",
    [
        "Impression: Polyp-free colon.",
        "The colon was free from polyps.",
        "Prep was poor. Small or flat lesions may have been missed. No polyps were seen.",
        "肠道准备差，小病变可能漏诊，所见结肠未见息肉。",
        "CT colonography (outside) reported a 7 mm sigmoid polyp. No polyp was found at this location.",
        "外院肠镜提示乙状结肠息肉。本次进镜至回盲部，未见息肉。",
        "原息肉切除处未见残留，余结肠未见息肉。",
    ],
)
def test_not_findings_of_this_exam(text: str) -> None:
    assert _summary(text) == ("absent", 0, [])


@pytest.mark.parametrize(
    ("text", "locations"),
    [
        ("Flat polyps could have been missed, but a 5 mm polyp was seen in the cecum.", ["cecum"]),
        ("CTC showed a 12 mm polyp. The 12 mm polyp was found in the transverse colon and removed.", ["transverse"]),
        ("外院肠镜提示乙状结肠息肉。本次乙状结肠见一0.5cm息肉，予切除。", ["sigmoid"]),
        ("乙状结肠原EMR瘢痕处见一约0.4cm息肉样隆起，考虑残留复发，予冷圈套切除。", ["sigmoid"]),
    ],
)
def test_current_findings_beside_history_and_disclaimers(text: str, locations: list[str]) -> None:
    assert _summary(text) == ("present", len(locations), locations)


@pytest.mark.parametrize(
    "text",
    [
        "In the sigmoid there is an inverted diverticulum mimicking a polyp.",
        "Sigmoid: an inverted diverticulum simulating a polyp.",
        "Rectum: 4 mm nodule, likely lymphoid aggregate.",
        "A 7 mm polypoid lesion in the rectum, likely a hemorrhoid.",
        "A 10 mm subepithelial lesion in the cecum with a pillow sign.",
        "Submucosal lesion in the cecum, 10 mm, lipoma.",
        "Transverse: 8 mm lipoma, sessile.",
        "回肠末端见多发小结节样隆起，直径0.1-0.2cm，表面光滑，考虑淋巴滤泡增生。",
        "乙状结肠见一约1.5cm隆起性病变，表面光滑，质软，考虑脂肪瘤。",
        "直肠末端见一0.5cm息肉样突起，考虑肛乳头肥大。",
        "乙状结肠多发憩室，其中一处憩室内翻呈息肉样，注气后复位。",
        "乙状结肠见一憩室，内翻呈息肉样，注气后复位。",
    ],
)
def test_look_alikes_are_not_polyps(text: str) -> None:
    assert _summary(text)[0] == "absent"


@pytest.mark.parametrize(
    ("text", "polyp", "locations"),
    [
        (
            "A 6 mm sessile polyp in the sigmoid; also a 1 cm submucosal lipoma in the transverse colon.",
            "present",
            ["sigmoid"],
        ),
        (
            "After submucosal injection, the 0-IIa lesion in the ascending colon was removed by EMR.",
            "present",
            ["ascending"],
        ),
        ("Rectum: internal hemorrhoids and a 3 mm polyp, cold snare.", "present", ["rectum"]),
        ("憩室旁见一0.4cm息肉，予钳除。", "present", ["unspecified"]),
        ("乙状结肠见一0.5cm隆起，表面光滑，考虑息肉，予切除。另见憩室。", "present", ["sigmoid"]),
        ("乙状结肠见一约0.5cm隆起，呈息肉样，予冷圈套切除。", "present", ["sigmoid"]),
        ("直肠见多发小隆起，考虑淋巴滤泡增生。乙状结肠见一0.6cm息肉，予冷圈套切除。", "present", ["sigmoid"]),
        ("内痔，直肠见一0.6cm隆起，似息肉。", "uncertain", []),
    ],
)
def test_polyps_beside_look_alikes(text: str, polyp: str, locations: list[str]) -> None:
    got_polyp, _, got_locations = _summary(text)
    assert (got_polyp, got_locations) == (polyp, locations)


# hard_dev: the targets of the harder-reports task (the rules reach 1.000 on every one). hard_heldout: measured
# once unseen (docs/BENCHMARKS.md, "Report labels on harder reports"), then used for development in the second
# round of rules; held at the figures reached after that round (1.000 on each), less 0.005. It no longer
# measures unseen reports.
TARGETS = {"polyp": 0.98, "polyp_count": 0.95, "location_f1": 0.93}
SECOND_ROUND = {"polyp": 0.995, "polyp_count": 0.995, "location_f1": 0.995}


def _floors(en: tuple[float, float, float], zh: tuple[float, float, float]) -> dict[str, dict[str, float]]:
    """Per-language minimum polyp status, count and location F1 of a set."""
    fields = ("polyp", "polyp_count", "location_f1")
    return {"en": dict(zip(fields, en, strict=True)), "zh": dict(zip(fields, zh, strict=True))}


# blind_heldout: written after both rounds by a writer who never saw the rules and measured unseen (en 0.941 /
# 0.897 / 0.915, zh 0.985 / 0.955 / 0.777); its errors were then used for a third round of rules
# (test_rules_round3.py), so it is a development set now, held at the figures after the latest round less 0.005.
BLIND = _floors(en=(0.980, 0.951, 0.971), zh=(0.980, 0.965, 0.977))
# blind2: written after the third round by another writer who saw neither the rules nor the other sets and measured
# unseen (en 0.969 / 0.954 / 0.961, zh 0.969 / 0.954 / 0.927); its errors were then used for a fourth round of rules
# (test_rules_round4.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND2 = _floors(en=(0.995, 0.995, 0.995), zh=(0.995, 0.995, 0.995))
# blind3: written after the fourth round by a fourth writer, measured unseen (en 0.938 / 0.877 / 0.676, zh 0.923 /
# 0.908 / 0.940; the same figures as the third round's rules); its errors were then used for a fifth round
# (test_rules_round4.py), so it too is a development set now, held at the figures after that round less 0.005.
BLIND3 = _floors(en=(0.995, 0.964, 0.946), zh=(0.995, 0.980, 0.984))
# blind4: written after the fifth round by a fifth writer who saw neither the rules nor the other sets and measured
# unseen (en 0.985 / 0.923 / 0.877, zh 0.954 / 0.938 / 0.933 with the fifth round's rules); its errors were then
# used for a sixth round (test_rules_round6.py), so it is a development set now, held at the figures after that
# round less 0.005.
BLIND4 = _floors(en=(0.995, 0.964, 0.941), zh=(0.995, 0.980, 0.985))
# blind5: written after the sixth round by a sixth writer who saw neither the rules nor the other sets and measured
# unseen (en 0.923 / 0.908 / 0.840, zh 0.923 / 0.892 / 0.909 with the sixth round's rules); its errors were then used
# for a seventh round (test_rules_round7.py), so it is a development set now, held at the figures after that round
# (1.000 on each) less 0.005.
BLIND5 = _floors(en=(0.995, 0.995, 0.995), zh=(0.995, 0.995, 0.995))
# blind6: written after the seventh round by a seventh writer, measured unseen (en 0.954 / 0.877 / 0.720, zh 0.985 /
# 0.923 / 0.928 with the seventh round's rules); its errors were then used for an eighth round (test_rules_round8.py),
# so it is a development set now, held at the figures after the latest round less 0.005.
BLIND6 = _floors(en=(0.980, 0.980, 0.963), zh=(0.995, 0.995, 0.988))
# blind7: written after the eighth round by an eighth writer, measured unseen (en 1.000 / 0.892 / 0.919, zh 0.985 /
# 0.969 / 0.967 with the eighth round's rules); its errors were then used for a ninth round (test_rules_round9.py), so
# it is a development set now, held at the figures after that round less 0.005.
BLIND7 = _floors(en=(0.995, 0.995, 0.995), zh=(0.995, 0.980, 0.987))
# blind8: written after the ninth round by a ninth writer, measured unseen (en 0.969 / 0.877 / 0.733, zh 0.969 /
# 0.938 / 0.930 with the ninth round's rules); its errors were then used for a tenth round (test_rules_round10.py), so
# it is a development set now, held at the figures after that round less 0.005.
BLIND8 = _floors(en=(0.995, 0.995, 0.989), zh=(0.995, 0.995, 0.995))
# blind9: written after the tenth round by a tenth writer asked to make the reports hard for a rule-based labeller,
# measured unseen (en 0.877 / 0.815 / 0.766, zh 0.938 / 0.846 / 0.776 with the tenth round's rules); its errors were
# then used for an eleventh round (test_rules_round11.py), so it is a development set now, held at the figures after
# that round less 0.005.
BLIND9 = _floors(en=(0.995, 0.980, 0.966), zh=(0.995, 0.995, 0.995))
# blind10: written after the eleventh round by an eleventh writer, measured unseen (en 0.954 / 0.908 / 0.909, zh 0.938 /
# 0.892 / 0.923 with the eleventh round's rules); its errors were then used for a twelfth round
# (test_rules_round12.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND10 = _floors(en=(0.995, 0.964, 0.945), zh=(0.980, 0.980, 0.986))
# blind11: written after the twelfth round by a twelfth writer, measured unseen (en 0.923 / 0.877 / 0.871, zh 0.985 /
# 0.938 / 0.942 with the twelfth round's rules); its errors were then used for a thirteenth round
# (test_rules_round13.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND11 = _floors(en=(0.995, 0.964, 0.923), zh=(0.995, 0.980, 0.987))
# blind12: written after the thirteenth round by a thirteenth writer, measured unseen (en 0.985 / 0.938 / 0.920, zh
# 0.985 / 0.969 / 0.959 with the thirteenth round's rules); its errors were then used for a fourteenth round
# (test_rules_round14.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND12 = _floors(en=(0.995, 0.980, 0.941), zh=(0.995, 0.980, 0.962))
# blind13: written after the fourteenth round by a fourteenth writer, measured unseen (en 0.969 / 0.954 / 0.940, zh
# 0.985 / 0.969 / 0.954 with the fourteenth round's rules); its errors were then used for a fifteenth round
# (test_rules_round15.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND13 = _floors(en=(0.980, 0.964, 0.972), zh=(0.995, 0.995, 0.982))
# blind14: written after the fifteenth round by a fifteenth writer, measured unseen (en 0.892 / 0.831 / 0.823, zh
# 0.969 / 0.969 / 0.959 with the fifteenth round's rules); its errors were then used for a sixteenth round
# (test_rules_round16.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND14 = _floors(en=(0.964, 0.918, 0.904), zh=(0.995, 0.995, 0.986))
# blind15: written after the sixteenth round by a sixteenth writer, measured unseen (en 0.969 / 0.923 / 0.934, zh
# 0.985 / 0.985 / 0.992 with the sixteenth round's rules); its errors were then used for a seventeenth round
# (test_rules_round17.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND15 = _floors(en=(0.995, 0.995, 0.995), zh=(0.995, 0.995, 0.995))
# blind16: written after the seventeenth round by a seventeenth writer, measured unseen (en 0.969 / 0.877 / 0.779, zh
# 0.831 / 0.815 / 0.821 with the seventeenth round's rules: Traditional Chinese reports were not read); its errors were
# then used for an eighteenth round (test_rules_round18.py), so it is a development set now, held at the figures after
# that round less 0.005.
BLIND16 = _floors(en=(0.995, 0.995, 0.995), zh=(0.995, 0.995, 0.995))
# blind17: written after the eighteenth round by an eighteenth writer, measured unseen (en 0.908 / 0.831 / 0.651, zh
# 0.954 / 0.938 / 0.963 with the eighteenth round's rules); its errors were then used for a nineteenth round
# (test_rules_round19.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND17 = _floors(en=(0.964, 0.949, 0.969), zh=(0.995, 0.995, 0.995))
# blind18: written after the nineteenth round by a nineteenth writer, measured unseen (en 0.892 / 0.846 / 0.547, zh
# 0.923 / 0.908 / 0.779 with the nineteenth round's rules); part of its errors were then used for a twentieth round
# (test_rules_round20.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND18 = _floors(en=(0.980, 0.949, 0.863), zh=(0.949, 0.933, 0.799))
# blind19: written after the twentieth round by a twentieth writer, measured unseen (en 0.892 / 0.831 / 0.866, zh
# 0.985 / 0.954 / 0.957 with the twentieth round's rules); its errors were then used for a twenty-first round
# (test_rules_round21.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND19 = _floors(en=(0.995, 0.964, 0.964), zh=(0.995, 0.980, 0.969))
# blind20: written after the twenty-first round by a twenty-first writer, measured unseen (en 0.969 / 0.938 / 0.942, zh
# 1.000 / 0.954 / 0.970 with the twenty-first round's rules); its errors were then used for a twenty-second round
# (test_rules_round22.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND20 = _floors(en=(0.995, 0.964, 0.953), zh=(0.995, 0.980, 0.985))
# blind21: written after the twenty-second round by a twenty-second writer, measured unseen (en 0.938 / 0.877 / 0.885,
# zh 0.954 / 0.923 / 0.862 with the twenty-second round's rules); part of its errors were then used for a twenty-third
# round (test_rules_round23.py), so it is a development set now, held at the figures after that round less 0.005.
BLIND21 = _floors(en=(0.980, 0.933, 0.935), zh=(0.995, 0.964, 0.882))
# blind22: written after the twenty-third round by a twenty-third writer asked for everyday reports, measured unseen
# (en 0.969 / 0.954 / 0.972, zh 1.000 / 1.000 / 1.000 with the twenty-third round's rules); its errors were then used
# for a twenty-fourth round (test_rules_round24.py), so it is a development set now, held at the figures after that
# round less 0.005.
BLIND22 = _floors(en=(0.995, 0.980, 0.985), zh=(0.995, 0.995, 0.995))
# blind23: written after the twenty-fourth round by a twenty-fourth writer, also asked for everyday reports, measured
# unseen (en 0.985 / 0.985 / 0.897, zh 1.000 / 1.000 / 1.000 with the twenty-fourth round's rules); no rule was written
# from it, so it is held at its unseen figures less 0.005.
BLIND23 = _floors(en=(0.980, 0.980, 0.892), zh=(0.995, 0.995, 0.995))
MINIMUM: dict[str, dict[str, dict[str, float]]] = {
    "hard_dev": {"en": TARGETS, "zh": TARGETS},
    "hard_heldout": {"en": SECOND_ROUND, "zh": SECOND_ROUND},
    "blind_heldout": BLIND,
    "blind2": BLIND2,
    "blind3": BLIND3,
    "blind4": BLIND4,
    "blind5": BLIND5,
    "blind6": BLIND6,
    "blind7": BLIND7,
    "blind8": BLIND8,
    "blind9": BLIND9,
    "blind10": BLIND10,
    "blind11": BLIND11,
    "blind12": BLIND12,
    "blind13": BLIND13,
    "blind14": BLIND14,
    "blind15": BLIND15,
    "blind16": BLIND16,
    "blind17": BLIND17,
    "blind18": BLIND18,
    "blind19": BLIND19,
    "blind20": BLIND20,
    "blind21": BLIND21,
    "blind22": BLIND22,
    "blind23": BLIND23,
}


@pytest.mark.parametrize("name", list(MINIMUM))
def test_hard_sets_thresholds_per_language(name: str) -> None:
    gold = read_jsonl(DATA / f"{name}.jsonl")
    report = evaluate(gold, process_batch(gold))
    assert not report["missing"]
    for lang, minimum in MINIMUM[name].items():
        figures = report["by_lang"][lang]
        assert figures["n"] >= 30 and figures["errors"] == 0
        for field, low in minimum.items():
            assert figures[field] >= low, f"{name} {lang} {field} = {figures[field]:.3f} < {low}"
