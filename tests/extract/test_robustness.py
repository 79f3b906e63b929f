"""Property test: any text gives labels in the contract with spans inside the text, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from endoked.extract.rules import extract_rules
from endoked.extract.schema import LOCATIONS, MORPHOLOGIES, PATHOLOGY_ORDER

_WORDS = [
    "polyp",
    "polyps",
    "no",
    "possible",
    "5 mm",
    "0.4×0.6cm",
    "sigmoid",
    "息肉",
    "未见",
    "可疑",
    "无蒂",
    "两枚",
    "各",
    "Findings:",
    "Impression:",
    "病理：",
    "诊断：",
    "adenoma",
    "mass",
    "癌",
    "s/p",
    "x3",
    ",",
    "。",
    "\n",
    " ",
    "【诊断】",
    "Paris 0-Is",
    "山田Ⅱ型",
    "cold snare",
    "未予处理",
    "(",
    ")",
    "?",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=6)), max_size=40).map("".join))
def test_any_text_gives_contract_labels(text: str) -> None:
    out = extract_rules(text)
    assert out.polyp in ("present", "absent", "uncertain")
    if out.polyp == "absent":
        assert out.polyp_count == 0 and out.polyps == []
    assert out.polyp_count is None or out.polyp_count >= 0
    assert out.pathology is None or out.pathology in PATHOLOGY_ORDER
    assert isinstance(out.malignancy_suspected, bool)
    for p in out.polyps:
        assert p.location in LOCATIONS and p.morphology in MORPHOLOGIES
        assert p.size_mm is None or p.size_mm > 0
    spans = [s for v in out.evidence.values() for s in v]
    spans += [s for p in out.polyps for v in p.evidence.values() for s in v]
    for s in spans:
        assert s.src == "text" and 0 <= s.start <= s.end <= len(text)
