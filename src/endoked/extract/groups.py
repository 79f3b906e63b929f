"""Polyp groups: one described polyp, or several described together ("two 4 mm polyps in the sigmoid"),
with the attributes read from its window of text; and how groups become contract polyp entries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from endoked.extract.context import Token
from endoked.extract.schema import PolypLabel, Span

_LANDMARK_RE = re.compile(
    r"(?:from|above|below|beyond|distal\s+to|proximal\s+to|opposite(?:\s+to)?|across\s+from|"
    r"near|adjacent\s+to|距(?:离)?|离|近|以|"  # "全结肠散在多发小息肉，以横结肠为多": where most are, not a site
    # how far the scope went ("进镜至回盲部", "advanced to the cecum"): where the exam reached, not a site
    r"(?:advanced|inserted|intubated|passed|reached)(?:\s+(?:up\s+)?to)?|进镜[^,;，；。]{0,8}?(?:至|到|达)|插(?:镜)?至|(?:到|抵)达)"
    r"\s*(?:the\s+)?(?:approximately\s+)?$",
    re.IGNORECASE,
)
_REACHED_AFTER_RE = re.compile(
    r"\s*(?:was\s+|were\s+)?(?:reached|intubated)(?![A-Za-z])|\s*(?:已)?(?:到达|插入)", re.IGNORECASE
)
_ROMAN = {
    "i": 1,
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "ⅰ": 1,
    "ⅱ": 2,
    "ⅲ": 3,
    "ⅳ": 4,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
}
_PARIS_RE = re.compile(r"(?:0\s*-\s*|paris\s*(?:class(?:ification)?\s*)?(?:type\s*)?)(I{1,3})([abcps]*)", re.IGNORECASE)
_YAMADA_RE = re.compile(r"(IV|I{1,3}|[1-4一二三四ⅠⅡⅢⅣ])", re.IGNORECASE)
# Neighbouring segments: an Impression phrase at one of these is the same polyp as a Findings one.
_NEIGHBOURS: dict[str, set[str]] = {
    "cecum": {"ascending", "ileocecal_valve", "appendiceal_orifice"},
    "ascending": {"cecum", "hepatic_flexure", "ileocecal_valve"},
    "hepatic_flexure": {"ascending", "transverse"},
    "transverse": {"hepatic_flexure", "splenic_flexure"},
    "splenic_flexure": {"transverse", "descending"},
    "descending": {"splenic_flexure", "sigmoid"},
    "sigmoid": {"descending", "rectosigmoid"},
    "rectosigmoid": {"sigmoid", "rectum"},
    "rectum": {"rectosigmoid", "anastomosis"},
    "ileum": {"ileocecal_valve"},
    "ileocecal_valve": {"cecum", "ileum", "ascending"},
    "appendiceal_orifice": {"cecum"},
    "anastomosis": {"rectum"},
}


def paris_morphology(major: str, minor: str) -> str:
    """Contract morphology of Paris class ``major`` (I, II, III) with suffix ``minor`` ("p", "s", "sp", "a", ...)."""
    if major.upper() == "I":
        return "pedunculated" if minor.lower() == "p" else "sessile"
    return "flat"


def morph_value(tok: Token) -> str:
    """Contract morphology of a MORPH token (Paris and Yamada classes resolved)."""
    if tok.value == "paris":
        m = _PARIS_RE.search(tok.text)
        return paris_morphology(m.group(1), m.group(2)) if m else "unspecified"
    if tok.value == "yamada":
        m = _YAMADA_RE.search(tok.text.replace("山田", ""))
        n = _ROMAN.get(m.group(1).lower(), 0) if m else 0
        return {1: "flat", 2: "sessile", 3: "sessile", 4: "pedunculated"}.get(n, "unspecified")
    return tok.value


def is_landmark(text: str, tok: Token) -> bool:
    """A location used as a reference point ("10 cm from the ileocecal valve", "距肛门") or naming how far
    the scope went ("进镜至回盲部", "advanced to the cecum", "cecum reached")."""
    return (
        _LANDMARK_RE.search(text, max(0, tok.start - 22), tok.start) is not None
        or _REACHED_AFTER_RE.match(text, tok.end) is not None
    )


def compatible(a: str, b: str) -> bool:
    """Same segment, a neighbouring one, or one of them unspecified."""
    return a == b or "unspecified" in (a, b) or b in _NEIGHBOURS.get(a, set())


@dataclass
class Group:
    """Polyps described together. ``count`` None = stated as several/multiple (not determinable)."""

    kind: str
    section: str
    hedged: bool
    count: int | None = 1
    count_explicit: bool = False
    plural: bool = False
    each: bool = False
    summary: bool = False
    locations: list[tuple[str, Span, int]] = field(default_factory=list)  # value, span, distance
    sizes: list[float] = field(default_factory=list)
    size_spans: list[Span] = field(default_factory=list)
    morph: str | None = None
    morph_spans: list[Span] = field(default_factory=list)
    # Whose morphology it is when the group lists several polyps: None (all), a location value
    # ("transverse colon (8 mm, pedunculated)"), or "max"/"min" ("大者有蒂", "the smaller one sessile").
    morph_of: str | None = None
    shared: set[str] = field(default_factory=set)  # attributes said of all polyps of the sentence ("均为广基")
    removed: bool | None = None
    removed_spans: list[Span] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    count_spans: list[Span] = field(default_factory=list)
    # a count per segment ("升结肠见2枚、横结肠见1枚、乙状结肠见3枚息肉"), in the order named; sums to ``count``
    location_counts: list[tuple[str, Span, int]] = field(default_factory=list)

    def location_values(self) -> list[str]:
        return [v for v, _, _ in self.locations]

    def set_removed(self, value: bool, span: Span) -> None:
        """Any 'removed' wins over 'not removed' (biopsied, then snared)."""
        if self.removed is None or (value and not self.removed):
            self.removed = value
            self.removed_spans = [span]
        elif value == self.removed:
            self.removed_spans.append(span)

    def absorb(self, other: Group, part: bool = False) -> None:
        """Fill what this group lacks from another description of the same polyps; ``part``: of some of them
        ("the largest measured 12 mm"), whose sizes add to those already given, up to the group's count."""
        if part and other.sizes and self.count is not None and len(self.sizes) + len(other.sizes) <= self.count:
            self.sizes.extend(other.sizes)
            self.size_spans.extend(other.size_spans)
        elif not self.sizes and other.sizes:
            self.sizes, self.size_spans = list(other.sizes), list(other.size_spans)
        if self.morph is None and other.morph is not None:
            self.morph, self.morph_spans, self.morph_of = other.morph, list(other.morph_spans), other.morph_of
        if other.removed is not None and other.removed_spans:
            self.set_removed(other.removed, other.removed_spans[0])
        if not self.locations and other.locations:
            self.locations = list(other.locations)
        self.spans.extend(other.spans)


def _owns_morph(group: Group, location: str | None, size: float | None) -> bool:
    """Whether a polyp entry of the group (at ``location``, of ``size``) has the group's morphology."""
    owner = group.morph_of
    if owner is None:
        return True
    if owner in ("max", "min"):
        if size is None or not group.sizes:
            return True
        return size == (max(group.sizes) if owner == "max" else min(group.sizes))
    return location == owner


def expand(group: Group) -> list[PolypLabel]:
    """Contract entries of a group: one per polyp when the number is known, else one per location."""
    if group.location_counts and group.count == sum(n for _, _, n in group.location_counts):
        per = [(v, sp) for v, sp, n in group.location_counts for _ in range(n)]
        return [_entry(group, loc, _size_of(group, i, len(per))) for i, loc in enumerate(per)]
    locs: list[tuple[str, Span]] = []
    seen: set[str] = set()
    single = group.count == 1 and not group.each
    for value, span, _ in sorted(group.locations, key=lambda t: t[2]) if single else group.locations:
        if value not in seen:
            seen.add(value)
            locs.append((value, span))
    if single:
        locs = locs[:1]
    n_locs = max(1, len(locs))
    if group.count is None:
        n = n_locs
    elif group.each:
        n = group.count * n_locs
    else:
        n = group.count
    out: list[PolypLabel] = []
    for i in range(n):
        if group.each and group.count is not None:
            loc = locs[i // group.count] if locs else None
        else:
            loc = locs[i % len(locs)] if locs else None
        out.append(_entry(group, loc, _size_of(group, i, n)))
    return out


def _size_of(group: Group, i: int, n: int) -> float | None:
    """The size of the group's ``i``-th of ``n`` entries: one size each when listed, else the one size for all."""
    if len(group.sizes) == n or len(group.sizes) > 1:
        return group.sizes[i] if i < len(group.sizes) else None
    return group.sizes[0] if group.sizes else None


def _entry(group: Group, loc: tuple[str, Span] | None, size: float | None) -> PolypLabel:
    morph = group.morph if _owns_morph(group, loc[0] if loc else None, size) else None
    morph = morph or ("flat" if group.kind == "lst" else "unspecified")
    ev: dict[str, list[Span]] = {
        "location": [loc[1]] if loc else [],
        "size_mm": list(group.size_spans),
        "morphology": list(group.morph_spans),
        "removed": list(group.removed_spans),
    }
    return PolypLabel(
        location=loc[0] if loc else "unspecified", size_mm=size, morphology=morph, removed=group.removed, evidence=ev
    )
