"""Rules extractor: counts, sizes, locations, morphology, removal and pathology, one family per test,
on sentences written for these tests (golden values worked out by hand)."""

from __future__ import annotations

import pytest

from endoked.extract.quantities import parse_size, zh_number
from endoked.extract.rules import extract_rules


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Three polyps were found in the sigmoid colon.", 3),
        ("Two small polyps (3 and 4 mm) in the rectum were removed.", 2),
        ("Multiple diminutive polyps in the rectosigmoid.", None),
        ("Several sessile polyps in the transverse colon, 2-4 mm.", None),
        ("Findings: A total of five polyps were removed from the colon.", 5),
        ("Polyps x 3 in the descending colon, all removed.", 3),
        ("Sigmoid colon: 2 polyps, 5 mm each, cold snare.", 2),
        ("A 5 mm sessile polyp in the cecum. A 3 mm polyp in the rectum.", 2),
        ("A 5 mm polyp and a 7 mm polyp in the sigmoid colon.", 2),
        ("Two polyps in the ascending colon and one in the rectum.", 3),
        (
            "Four polyps:\n#1 cecum 4 mm sessile\n#2 cecum 6 mm sessile\n#3 transverse 3 mm sessile\n"
            "#4 rectum 2 mm flat",
            4,
        ),
        ("直肠见息肉3枚，大小0.2-0.4cm。", 3),
        ("乙状结肠见两枚息肉。", 2),
        ("全结肠散在多发息肉，大小不等。", None),
        ("升结肠见十二枚息肉，均予钳除。", 12),
        ("横结肠、降结肠各见一枚息肉，约0.3cm。", 2),
        ("乙状结肠见数枚0.2cm息肉。", None),
        ("直肠见一枚0.4cm息肉，予钳除。乙状结肠见一枚0.6cm息肉，予圈套器切除。", 2),
        ("一枚息肉位于升结肠，大小约0.5cm。该息肉予圈套器切除。", 1),
        ("Colonic polyposis with innumerable polyps throughout.", None),
        ("诊断：结肠多发息肉（共5枚，已切除）", 5),
        ("Polyps: 3, all in the sigmoid colon, removed with cold snare.", 3),
        ("A total of 4 polyps (2 in the cecum, 2 in the rectum) were removed.", 4),
        ("直肠可见大小约0.5cm息肉1枚。", 1),
        ("升结肠见十余枚息肉。", None),
    ],
)
def test_counts(text: str, count: int | None) -> None:
    out = extract_rules(text)
    assert out.polyp == "present"
    assert out.polyp_count == count


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("一", 1),
        ("两", 2),
        ("二", 2),
        ("九", 9),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("三十五", 35),
        ("7", 7),
        ("百", None),
        ("一二", None),
        ("", None),
    ],
)
def test_chinese_numerals(word: str, value: int | None) -> None:
    assert zh_number(word) == value


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("a 1.2 cm polyp in the sigmoid colon", 12.0),
        ("直肠见一枚0.4×0.6cm息肉", 6.0),
        ("a 3-5 mm polyp in the rectum", 5.0),
        ("a polyp in the cecum measuring 8 x 10 mm", 10.0),
        ("升结肠见一枚息肉，大小约0.3-0.5cm", 5.0),
        ("横结肠见一枚息肉，直径约8mm", 8.0),
        ("At 30 cm from the anal verge there was a 5 mm polyp.", 5.0),
        ("距肛门15cm见一枚0.8cm息肉", 8.0),
        ("a 15-mm pedunculated polyp in the sigmoid colon", 15.0),
        ("a 1 cm polyp in the transverse colon", 10.0),
        ("a polyp of 0.5 cm x 6 mm in the rectum", 6.0),
        ("a 2 cm polyp with a 1 cm stalk in the sigmoid colon", 20.0),
        ("直肠见一枚约０．５ｃｍ息肉", 5.0),
        ("a 20 x 15 mm sessile polyp in the rectum", 20.0),
        ("直肠见一枚1.2cm长蒂息肉", 12.0),
        ("乙状结肠见一枚有蒂息肉，蒂长约1.0cm，头部约0.8cm", 8.0),
    ],
)
def test_sizes(text: str, size: float) -> None:
    out = extract_rules(text)
    assert max(p.size_mm or 0 for p in out.polyps) == pytest.approx(size)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("4 and 6 mm", (4.0, 6.0)),
        ("0.3cm、0.5cm", (3.0, 5.0)),
        ("3-5 mm", (5.0,)),
        ("0.4×0.6cm", (6.0,)),
        ("1.5 cm", (15.0,)),
        ("5mm x 4mm x 3mm", (5.0,)),
    ],
)
def test_parse_size_forms(text: str, values: tuple[float, ...]) -> None:
    size = parse_size(text, 0, len(text))
    assert size is not None
    assert size.values == pytest.approx(values)


@pytest.mark.parametrize(
    "text",
    [
        "at 25 cm a polyp",
        "距肛门约20cm",
        "polyp < 5 mm",
        "less than 5 mm",
        "sigmoid (35 cm)",
    ],
)
def test_not_sizes(text: str) -> None:
    import re

    m = re.search(r"\d+(?:\.\d+)?\s*(?:mm|cm)", text)
    assert m is not None
    assert parse_size(text, m.start(), m.end()) is None


def test_size_list_gives_one_value_per_polyp() -> None:
    out = extract_rules("Two sessile polyps measuring 4 and 6 mm in the ascending colon.")
    assert sorted(p.size_mm or 0 for p in out.polyps) == [4.0, 6.0]


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("A 5 mm polyp in the asc colon.", "ascending"),
        ("A 5 mm polyp in the sig colon.", "sigmoid"),
        ("A 5 mm polyp in the desc. colon.", "descending"),
        ("A cecal polyp, 4 mm.", "cecum"),
        ("A 3 mm rectal polyp.", "rectum"),
        ("A polyp at the hepatic flexure.", "hepatic_flexure"),
        ("A polyp at the splenic flexure.", "splenic_flexure"),
        ("A 4 mm polyp at the recto-sigmoid junction.", "rectosigmoid"),
        ("A small polyp on the ileocecal valve.", "ileocecal_valve"),
        ("A diminutive polyp in the terminal ileum.", "ileum"),
        ("A flat polyp next to the appendiceal orifice.", "appendiceal_orifice"),
        ("A 6 mm polyp at the colorectal anastomosis.", "anastomosis"),
        ("A 5 mm polyp 10 cm from the ileocecal valve in the ascending colon.", "ascending"),
        ("回盲部见一枚息肉。", "cecum"),
        ("升结肠见一枚息肉。", "ascending"),
        ("结肠肝曲见一枚息肉。", "hepatic_flexure"),
        ("横结肠见一枚息肉。", "transverse"),
        ("脾曲见一枚息肉。", "splenic_flexure"),
        ("降结肠见一枚息肉。", "descending"),
        ("乙状结肠见一枚息肉。", "sigmoid"),
        ("直乙交界处见一枚息肉。", "rectosigmoid"),
        ("直肠见一枚息肉。", "rectum"),
        ("阑尾开口旁见一枚息肉。", "appendiceal_orifice"),
        ("回盲瓣见一枚息肉。", "ileocecal_valve"),
        ("末端回肠见一枚息肉。", "ileum"),
        ("吻合口见一枚息肉。", "anastomosis"),
        ("见一枚息肉。", "unspecified"),
        ("A 4 mm polyp in the S-colon.", "sigmoid"),
        ("A 4 mm polyp in the T-colon.", "transverse"),
        ("结直肠见一枚息肉。", "unspecified"),
    ],
)
def test_locations(text: str, location: str) -> None:
    out = extract_rules(text)
    assert [p.location for p in out.polyps] == [location]


@pytest.mark.parametrize(
    ("text", "morph"),
    [
        ("A 12 mm polyp, Paris 0-Ip, in the sigmoid colon.", "pedunculated"),
        ("A 6 mm 0-Isp polyp in the rectum.", "sessile"),
        ("A 10 mm Paris 0-IIa polyp in the cecum.", "flat"),
        ("A 30 mm LST-G in the rectum.", "flat"),
        ("A 10 mm semipedunculated polyp in the sigmoid colon.", "sessile"),
        ("A polyp on a long stalk in the sigmoid colon.", "pedunculated"),
        ("A 4 mm sessile polyp in the cecum.", "sessile"),
        ("乙状结肠见一枚山田IV型息肉。", "pedunculated"),
        ("乙状结肠见一枚山田Ⅱ型息肉。", "sessile"),
        ("直肠见一枚0.5cm亚蒂息肉。", "sessile"),
        ("横结肠见一枚1.0cm有蒂息肉。", "pedunculated"),
        ("升结肠见一枚0.8cm扁平息肉。", "flat"),
        ("降结肠见一枚0.3cm息肉。", "unspecified"),
    ],
)
def test_morphology(text: str, morph: str) -> None:
    out = extract_rules(text)
    assert [p.morphology for p in out.polyps] == [morph]


@pytest.mark.parametrize(
    ("text", "removed"),
    [
        ("A 5 mm polyp in the cecum was removed with a cold snare.", True),
        ("A 4 mm rectal polyp, cold forceps polypectomy.", True),
        ("A 20 mm polyp in the rectum, biopsied only and referred for ESD.", False),
        ("A 15 mm polyp in the ascending colon, removed by EMR.", True),
        ("A 2 mm rectal polyp was left in situ.", False),
        ("A 6 mm polyp in the sigmoid colon.", None),
        ("A 4 mm sigmoid polyp. Removed with a cold snare.", True),
        ("直肠见一枚0.3cm息肉，予以钳除。", True),
        ("直肠见一枚0.3cm息肉，未予处理。", False),
        ("乙状结肠见一枚1.0cm息肉，予EMR切除。", True),
        ("升结肠见一枚0.2cm息肉，予APC灼除。", True),
    ],
)
def test_removal(text: str, removed: bool | None) -> None:
    out = extract_rules(text)
    assert [p.removed for p in out.polyps] == [removed]


@pytest.mark.parametrize(
    ("text", "pathology"),
    [
        ("A polyp was removed.\nPathology: tubular adenoma and hyperplastic polyp.", "adenoma"),
        ("A polyp was removed.\nPathology: sessile serrated lesion without dysplasia.", "sessile_serrated"),
        (
            "A polyp was removed.\nPathology: tubulovillous adenoma with focal invasive adenocarcinoma.",
            "adenocarcinoma",
        ),
        ("A polyp was removed.\nPathology: hyperplastic polyp, negative for dysplasia.", "hyperplastic"),
        ("A polyp was removed.\nPathology: pending.", None),
        ("A polyp was removed.", None),
        ("A polyp was removed.\nPathology: inflammatory polyp.", "inflammatory"),
        ("A polyp was removed.\nPathology: lipoma.", "other"),
        ("A polyp was removed.\nPathology: benign colonic mucosa, no adenomatous change.", "other"),
        ("A polyp was removed.\nPathology: traditional serrated adenoma.", "adenoma"),
        ("A polyp was removed. Histology showed a tubular adenoma.", "adenoma"),
        ("直肠见一枚息肉，予钳除。\n病理：（直肠）增生性息肉。", "hyperplastic"),
        ("直肠见一枚息肉，予钳除。\n病理：管状腺瘤伴高级别上皮内瘤变。", "adenoma"),
        ("直肠见一枚息肉，予钳除。\n病理：（直肠）黏膜慢性炎。", "other"),
        ("直肠见一枚息肉，予钳除。\n病理：待回报。", None),
        ("直肠见一枚息肉，予钳除。\n病理：无蒂锯齿状病变。", "sessile_serrated"),
        ("直肠见一枚息肉，予钳除。\n病理：腺瘤，局灶癌变。", "adenocarcinoma"),
        ("直肠见一枚息肉，予钳除，病理示炎性息肉。", "inflammatory"),
    ],
)
def test_pathology_precedence(text: str, pathology: str | None) -> None:
    out = extract_rules(text)
    assert out.pathology == pathology
    if pathology is not None:
        assert out.evidence["pathology"]
    if pathology == "adenocarcinoma":
        assert out.malignancy_suspected is True


def test_pathology_field_is_used_with_its_own_spans() -> None:
    text = "A 6 mm polyp in the sigmoid colon, cold snare."
    path = "Sigmoid polyp: tubular adenoma."
    out = extract_rules(text, pathology=path)
    assert out.pathology == "adenoma"
    span = out.evidence["pathology"][0]
    assert span.src == "pathology"
    assert path[span.start : span.end] == "tubular adenoma"
