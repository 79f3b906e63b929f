"""Second round of rules for harder reports: one family of clinical phrasing per test, on short sentences
written for these tests (expected labels follow tests/extract/data/README.md)."""

from __future__ import annotations

from typing import Any

import pytest

from endoked.extract.rules import extract_rules
from tests.extract.rules_summary import polyp_summary


def _summary(text: str) -> Any:
    return polyp_summary(text, "location")


def _sizes(text: str) -> list[float | None]:
    return sorted((p.size_mm for p in extract_rules(text).polyps), key=lambda v: (v is None, v))


# --- counts and sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "sizes"),
    [
        # "between X and Y mm" is a range for a group, not a list of two polyps.
        ("Multiple (at least 6) sessile polyps between 3 and 7 mm in the transverse colon.", None, [7.0]),
        ("Two polyps between 4 and 8 mm in the sigmoid, cold snare.", 2, [8.0, 8.0]),
        # A list of sizes still gives one polyp each.
        ("Two polyps, 4 and 6 mm, in the sigmoid.", 2, [4.0, 6.0]),
    ],
)
def test_size_ranges_and_lists(text: str, count: int | None, sizes: list[float]) -> None:
    out = extract_rules(text)
    assert (out.polyp, out.polyp_count) == ("present", count)
    assert _sizes(text) == sizes


@pytest.mark.parametrize(
    "text",
    [
        "A handful of small sessile polyps (2-4 mm) in the rectum; the three largest were removed.",
        "A cluster of small polyps in the rectum.",
        "Hundreds of polyps carpeting the rectum and sigmoid.",
    ],
)
def test_vague_quantities_leave_the_count_undetermined(text: str) -> None:
    assert extract_rules(text).polyp_count is None


def test_a_number_inside_a_vague_quantity_still_counts() -> None:
    assert _summary("A cluster of 3 polyps in the cecum.") == ("present", 3, ["cecum"] * 3)


def test_a_number_closing_a_parenthesis_is_not_an_item_number() -> None:
    # "(at least 6)" must not cut the sentence before "6)": the polyps keep their size and site.
    out = extract_rules("Multiple (at least 6) sessile polyps, 3-5 mm, in the cecum.")
    assert [(p.location, p.size_mm, p.morphology) for p in out.polyps] == [("cecum", 5.0, "sessile")]


# --- look-alikes and hedges -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "所见：横结肠见一约2.0cm黏膜下肿物，表面光滑，质软。\n诊断：横结肠黏膜下肿物（脂肪瘤？）",
        "直肠见一约0.8cm粘膜下隆起，表面光滑。",
        "A 1 cm subepithelial mass in the rectum with normal overlying mucosa.",
        "直肠见一约1.0cm黏膜下隆起性病变，表面光滑。",
        "横结肠见一约2cm黏膜下肿瘤样隆起，表面光滑，考虑脂肪瘤。",
        "Submucosal tumor in the cecum, 12 mm, pillow sign positive.",
        # a neuroendocrine tumour is a submucosal look-alike, no suspected cancer (as blind10's and blind12's writers
        # labelled it; this case expected malignancy before round 12)
        "直肠见一约1cm黏膜下肿物，考虑神经内分泌肿瘤。",
    ],
)
def test_submucosal_masses_are_look_alikes_not_cancers(text: str) -> None:
    out = extract_rules(text)
    assert (out.polyp, out.malignancy_suspected) == ("absent", False)


@pytest.mark.parametrize(
    "text",
    [
        "直肠见一约1cm黏膜下肿物，考虑神经内分泌癌。",
        "A 3 cm fungating mass in the sigmoid; submucosal invasion suspected.",
    ],
)
def test_a_named_tumour_beside_a_submucosal_lesion_is_still_malignancy(text: str) -> None:
    assert extract_rules(text).malignancy_suspected is True


@pytest.mark.parametrize(
    "text",
    [
        "诊断：降结肠小隆起，性质待定",
        "乙状结肠见一约0.4cm息肉样隆起，表面光滑，性质待定。",
        "所见：全结肠未见息肉。降结肠见一约0.3cm黏膜隆起，似为皱襞，不除外小息肉，未处理。\n诊断：降结肠小隆起，性质待定",
        "横结肠见一0.3cm隆起，考虑为皱襞可能，但不能排除息肉。",
        "横结肠见一约0.3cm扁平隆起，颜色与周围一致，考虑黏膜皱襞可能，小息肉不除外。",
        "Descending colon: small elevation, most likely a fold, but a diminutive polyp cannot be ruled out.",
    ],
)
def test_an_elevation_of_undetermined_nature_is_uncertain(text: str) -> None:
    assert _summary(text) == ("uncertain", None, [])


def test_a_hedge_ending_its_clause_looks_back_only_there() -> None:
    # "不除外腺瘤" looks forward at the histology: the polyp itself is definite.
    assert _summary("乙状结肠见一0.5cm息肉，不除外腺瘤，予切除。") == ("present", 1, ["sigmoid"])


def test_undetermined_nature_of_a_named_polyp_is_about_its_histology() -> None:
    assert _summary("结肠见一息肉，直径约0.5cm，表面光滑，性质待定。") == ("present", 1, ["unspecified"])


@pytest.mark.parametrize(
    "text",
    [
        'On careful inspection, the rectal "polyp" proved to be a prolapsing internal hemorrhoid. No true polyps.',
        "The sigmoid polyp turned out to be a prominent fold on closer inspection.",
        "直肠所谓息肉实为内痔，余结肠未见息肉。",
        "What appeared to be a polyp in the sigmoid was only a prominent fold.",
        'Rectum: the 5 mm "polyp" of the referral was a hypertrophied anal papilla.',
        "直肠见一“息肉”，约0.5cm，考虑内痔。",
        "乙状结肠息肉样隆起，活检证实为淋巴滤泡增生。",
    ],
)
def test_a_mention_that_proved_to_be_a_look_alike_is_not_a_polyp(text: str) -> None:
    assert _summary(text) == ("absent", 0, [])


@pytest.mark.parametrize(
    ("text", "locations"),
    [
        ("A 5 mm polyp in the sigmoid, removed; a diverticulum nearby.", ["sigmoid"]),
        ("The rectal polyp was removed; the second lesion was actually a lipoma.", ["rectum"]),
    ],
)
def test_a_look_alike_beside_a_polyp_leaves_the_polyp(text: str, locations: list[str]) -> None:
    assert _summary(text) == ("present", 1, locations)


# --- history and other studies --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Reason: Polyp seen in the rectum on rigid sigmoidoscopy.\nCecum reached. No polyps.",
        "A sigmoid polyp seen on flex sig. Colonoscopy: no polyp at that site or elsewhere.",
        "Mass found on CT in the cecum; colonoscopy to the cecum showed normal mucosa, no polyps.",
    ],
)
def test_what_another_study_showed_is_not_a_finding(text: str) -> None:
    out = extract_rules(text)
    assert (out.polyp, out.polyp_count, out.malignancy_suspected) == ("absent", 0, False)


def test_a_polyp_seen_during_this_exam_is_a_finding() -> None:
    assert _summary("A 5 mm polyp seen in the sigmoid on withdrawal, removed.") == ("present", 1, ["sigmoid"])


# --- polyp lists and telegraphic items ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "locations"),
    [
        # Items under a list introduction, with a segment and a size but no polyp noun or shape.
        (
            "Three polyps were removed:\n(1) Cecum, 3 mm, cold snare.\n(2) Transverse, 8 mm, pedunculated, hot snare."
            "\n(3) Rectum, 5 mm, cold forceps.",
            3,
            ["cecum", "rectum", "transverse"],
        ),
        ("Polyps (2):\n- sigmoid 4 mm\n- rectum 6 mm", 2, ["rectum", "sigmoid"]),
        # "Polyps: 2 (see below)" introduces the items: it is their total, not two more polyps.
        (
            "Polyps: 2 (see below)\n a) Transverse colon - 5 mm, 0-Is - CSP\n b) Sigmoid colon - 14 mm, 0-Ip - HSP",
            2,
            ["sigmoid", "transverse"],
        ),
        ("Polyps as follows:\n1. Ascending, 6 mm, CSP.\n2. Descending, 4 mm, CSP.", 2, ["ascending", "descending"]),
        ("所见：共切除息肉2枚，详见下述。\nA）盲肠 0.4cm，钳除\nB）直肠 0.3cm，钳除", 2, ["cecum", "rectum"]),
        ("Two polyps were found: a 6 mm polyp in the cecum and a 4 mm polyp in the rectum.", 2, ["cecum", "rectum"]),
        # A counted introduction and its first item in one sentence; items with a count and no noun.
        (
            "检查所见：共见息肉3枚：升结肠1枚，约0.3×0.4cm；降结肠1枚，约8mm，山田III型；直肠1枚，直径约5mm。",
            3,
            ["ascending", "descending", "rectum"],
        ),
        ("息肉2枚：升结肠0.3cm，乙状结肠0.5cm，均予冷圈套切除。", 2, ["ascending", "sigmoid"]),
        # Count lines: the total of the items that follow.
        ("Polyps removed: 3\n#1 ascending 4mm CSP\n#2 transverse 6mm CSP\n#3 sigmoid 10mm HSP", 3, None),
        ("Number of polyps: 2\n- Transverse: 5 mm (CSP)\n- Descending: 7 mm (CSP)", 2, ["descending", "transverse"]),
        ("Two polyps were removed. A 5 mm polyp in the sigmoid and a 3 mm polyp in the rectum.", 2, None),
        (
            "息肉：3枚（详见下述）\n①盲肠0.3cm，冷圈套切除；\n②横结肠0.4cm，冷圈套切除；\n③直肠0.6cm，冷圈套切除。",
            3,
            None,
        ),
        # A list number "2、" is not a count.
        ("检查所见：\n1、升结肠：0.5cm，CSP；\n2、乙状结肠：0.8cm，EMR。", 2, ["ascending", "sigmoid"]),
        # An item with a removal of this exam and no list introduction.
        ("Cecum, 3 mm, cold snare.", 1, ["cecum"]),
        ("升结肠1枚，约0.3cm，予钳除。", 1, ["ascending"]),
    ],
)
def test_items_without_a_polyp_noun(text: str, count: int, locations: list[str] | None) -> None:
    polyp, got_count, got_locations = _summary(text)
    assert (polyp, got_count) == ("present", count)
    assert len(got_locations) == count
    if locations is not None:
        assert got_locations == locations


def test_a_count_line_beside_more_polyps_than_it_says_still_counts() -> None:
    # What follows does not add up to the counted line: it is not their total.
    assert _summary("Two polyps were removed. A third, 8 mm polyp in the sigmoid was left for EMR.")[1] == 3


def test_items_keep_their_own_sizes() -> None:
    out = extract_rules("Two polyps were removed:\n(1) Cecum, 3 mm, cold snare.\n(2) Rectum, 5 mm, cold snare.")
    assert sorted((p.location, p.size_mm) for p in out.polyps) == [("cecum", 3.0), ("rectum", 5.0)]


@pytest.mark.parametrize(
    "text",
    [
        # A distance is not a size: the flat scar is no telegraphic polyp item.
        "The mucosectomy scar in the rectum at 7 cm from the AV is flat and white. No residual polyp.",
        # A size that a scar, resection wound or ulcer owns.
        "乙状结肠距肛门约30cm见EMR术后创面，约1.5cm，予钛夹4枚夹闭，止血成功。未见息肉。",
        "Sigmoid: EMR scar, 10 mm, flat, no residual tissue.",
        "Rectum: ulcer, 6 mm, biopsied.",
        # A segment and a size with neither a list, a count nor a removal.
        "Rectum 5 mm from the dentate line, normal.",
        # Vascular lesions treated with APC are look-alikes.
        "Three angioectasias in the ascending colon (2-5 mm), treated with APC.",
        "升结肠见2处血管扩张，约0.3cm，予APC治疗。",
        # Ablation treats more than polyps.
        "Rectum: 5 mm, APC of radiation proctitis.",
        "直肠：0.5cm，予氩气刀电凝治疗。",
    ],
)
def test_sized_items_that_are_not_polyps(text: str) -> None:
    assert _summary(text) == ("absent", 0, [])


def test_sized_lines_after_a_polyp_list_that_are_not_polyps() -> None:
    text = (
        "Two polyps were removed:\n(1) Cecum, 3 mm, cold snare.\n(2) Rectum, 5 mm, cold snare.\n"
        "Sigmoid: 2 cm stricture, passable.\nDescending: tattoo 3 cm distal to the site.\n"
        "Terminal ileum: intubated 10 cm, normal."
    )
    assert _summary(text) == ("present", 2, ["cecum", "rectum"])


def test_a_wound_after_todays_resection_keeps_the_polyp() -> None:
    assert _summary("乙状结肠0.8cm，0-IIa，EMR切除，创面钛夹夹闭。") == ("present", 1, ["sigmoid"])


@pytest.mark.parametrize(
    ("text", "count", "sizes"),
    [
        # "各" after a list of sizes at one segment: one polyp per size.
        ("2.横结肠：约0.3cm、0.5cm息肉各1枚，CSP；", 2, [3.0, 5.0]),
        ("Sigmoid: polyps of 4 and 6 mm, one each, cold snare.", 2, [4.0, 6.0]),
        # "各" over several segments: one per segment, as before.
        ("升结肠、横结肠各见一枚息肉，约0.3cm。", 2, [3.0, 3.0]),
    ],
)
def test_each_over_a_list_of_sizes(text: str, count: int, sizes: list[float]) -> None:
    assert extract_rules(text).polyp_count == count
    assert _sizes(text) == sizes


# --- locations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "locations"),
    [
        # Where the scope reached is not where the polyps are.
        ("所见：进镜至回盲部，退镜观察：升结肠见2枚息肉，大小0.3cm、0.4cm，冷圈套切除。", ["ascending", "ascending"]),
        (
            "Scope advanced to the cecum; two 4 mm polyps in the ascending colon were removed.",
            ["ascending", "ascending"],
        ),
        ("Cecum reached, and two polyps in the transverse colon were snared.", ["transverse", "transverse"]),
        ("所见：进镜80cm达回盲部，横结肠见两枚息肉，0.3cm、0.6cm，予冷圈套切除。", ["transverse", "transverse"]),
        # With no other segment named, the landmark is still the best guess.
        ("进镜至回盲部见一0.3cm息肉，予钳除。", ["cecum"]),
    ],
)
def test_how_far_the_scope_went_is_no_polyp_site(text: str, locations: list[str]) -> None:
    assert sorted(p.location for p in extract_rules(text).polyps) == sorted(locations)


@pytest.mark.parametrize(
    ("text", "location"),
    [
        # A sentence that only names a segment sets the scene for the next one.
        (
            "The previously tattooed segment of the ascending colon was examined. At the edge of the EMR scar "
            "there was a 5 mm island of residual adenoma-appearing tissue, removed by cold snare.",
            "ascending",
        ),
        ("升结肠：\n见一0.5cm息肉，予切除。", "ascending"),
        # Not from a landmark, a normal or a negated segment, nor for an anaphor.
        ("Cecum reached. A 5 mm polyp was removed.", "unspecified"),
        ("Cecal landmarks photographed. A 5 mm polyp was removed.", "unspecified"),
        ("Retroflexion in the rectum. A 5 mm polyp was removed.", "unspecified"),
        ("The ascending colon was normal. A 5 mm polyp was removed.", "unspecified"),
        ("No polyps in the ascending colon. A 5 mm polyp was removed.", "unspecified"),
        ("A 6 mm polyp in the sigmoid. The transverse colon was examined. The polyp was retrieved.", "sigmoid"),
    ],
)
def test_a_segment_named_alone_sets_the_scene(text: str, location: str) -> None:
    assert [p.location for p in extract_rules(text).polyps] == [location]


# --- morphology of polyps described together ------------------------------------------------------


def _morphs(text: str) -> list[tuple[str, float | None, str]]:
    return sorted((p.location, p.size_mm or 0.0, p.morphology) for p in extract_rules(text).polyps)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A shape inside one segment's parenthesis is that polyp's.
        (
            "Polyps in the cecum (5 mm), transverse colon (8 mm, pedunculated) and sigmoid colon (3 mm) were removed.",
            [("cecum", 5.0, "unspecified"), ("sigmoid", 3.0, "unspecified"), ("transverse", 8.0, "pedunculated")],
        ),
        # "大者有蒂": the larger one's.
        (
            "乙状结肠见两枚息肉，大小约0.3cm及1.2cm，小者冷圈套切除，大者有蒂，热圈套切除。",
            [("sigmoid", 3.0, "unspecified"), ("sigmoid", 12.0, "pedunculated")],
        ),
        (
            "Two sigmoid polyps, 4 and 9 mm; the larger one pedunculated.",
            [("sigmoid", 4.0, "unspecified"), ("sigmoid", 9.0, "pedunculated")],
        ),
        # "均为广基": all polyps of the sentence.
        (
            "直肠见一枚0.5cm息肉，乙状结肠见一枚0.6cm息肉，均为广基，均予冷圈套切除。",
            [("rectum", 5.0, "sessile"), ("sigmoid", 6.0, "sessile")],
        ),
        # Said before or after every segment: all of them.
        ("Two sessile polyps in the cecum and sigmoid.", [("cecum", 0.0, "sessile"), ("sigmoid", 0.0, "sessile")]),
        ("乙状结肠及直肠见2枚息肉，亚蒂。", [("rectum", 0.0, "sessile"), ("sigmoid", 0.0, "sessile")]),
        # A negated shape is nobody's.
        (
            "Scattered pseudopolyps in the transverse colon, 2-6 mm. No flat or raised dysplastic lesions.",
            [("transverse", 6.0, "unspecified")],
        ),
    ],
)
def test_morphology_goes_to_the_polyp_it_describes(text: str, expected: list[tuple[str, float, str]]) -> None:
    assert _morphs(text) == expected


def test_removal_said_of_all_goes_to_each() -> None:
    out = extract_rules("直肠见一枚0.5cm息肉，乙状结肠见一枚0.6cm息肉，均予冷圈套切除回收。")
    assert [p.removed for p in out.polyps] == [True, True]
