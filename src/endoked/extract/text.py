"""Text plumbing for the rules extractor: length-preserving normalisation, language detection, sections
and sentences. Every function keeps character offsets of the original text, so evidence spans point
into the report exactly as given."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from endoked.extract.lexicon import SECTION_HEADERS
from endoked.extract.vocab import lower_pattern


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0xFF01, 0xFF5F):  # full-width ASCII -> ASCII
        table[code] = chr(code - 0xFEE0)
    for ch in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\u2500\u30fc":
        table[ord(ch)] = "-"
    for ch in "\u3000\u00a0\u2002\u2003\u2009\u200a\u202f\t\u000b\u000c":
        table[ord(ch)] = " "
    table[ord("\r")] = "\n"
    table[ord("\u301c")] = "~"
    table[ord("\u2715")] = "x"
    table[ord("\u2573")] = "x"
    table[ord("\u3001")] = "、"
    table[ord("\u2018")] = "'"
    table[ord("\u2019")] = "'"
    return table


_FOLD = _build_fold_table()


_HAN_RE = re.compile(r"[\u3400-\u9fff]")
_SIMPLIFIED: dict[str, str] = {}  # Traditional (or variant) character -> Simplified, filled as characters are met


@functools.cache
def _t2s() -> Any:
    """OpenCC's Traditional -> Simplified converter, built once (it loads its tables)."""
    import opencc

    return opencc.OpenCC("t2s")


def _to_simplified(chars: set[str]) -> dict[int, str]:
    """Simplified forms of the Han characters ``chars``, one character for one character (OpenCC's ``t2s``
    conversion, character by character; a character it would turn into more than one is kept)."""
    new = sorted(chars.difference(_SIMPLIFIED))
    if new:
        conv = _t2s()
        for ch in new:
            out = conv.convert(ch)
            _SIMPLIFIED[ch] = out if len(out) == 1 else ch
    return {ord(ch): _SIMPLIFIED[ch] for ch in chars if _SIMPLIFIED[ch] != ch}


def normalize(text: str) -> str:
    """Fold full-width forms, dashes and odd spaces to ASCII and Traditional Chinese characters to Simplified
    ones (Hong Kong and Taiwan reports: 乙狀結腸 -> 乙状结肠), one character for one character, and the polyp's
    variant and misspelt forms 瘜肉 (Taiwan), 熄肉 and 西肉 (input-method slips) to 息肉.

    Args:
        text: the report as given.

    Returns:
        A string of exactly the same length, so offsets carry over unchanged.
    """
    folded = text.translate(_FOLD)
    han = set(_HAN_RE.findall(folded))
    if han:
        folded = folded.translate(_to_simplified(han))
    return folded.replace("瘜肉", "息肉").replace("熄肉", "息肉").replace("西肉", "息肉")


_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(text: str) -> str:
    """ "zh" when CJK characters outweigh Latin letters (a Chinese character carries about as much as a
    4-letter English word), else "en"."""
    n_cjk = len(_CJK.findall(text))
    n_lat = len(_LATIN.findall(text))
    return "zh" if n_cjk * 4 >= n_lat and n_cjk > 0 else "en"


@dataclass(frozen=True)
class Section:
    """A stretch of the report ``[start, end)`` of one kind (header text excluded)."""

    kind: str  # body | indication | findings | impression | pathology | plan | other
    start: int
    end: int


_HEADER_ALTS = "|".join(f"(?P<h{i}>{lower_pattern(pat)})" for i, (_, pat) in enumerate(SECTION_HEADERS))
_HEADER_RE = re.compile(
    r"(?:^|(?<=[\n.。;；!！])|(?<=[\n.。;；!！][ \t])|(?<=[\n.。;；!！][ \t][ \t]))[ \t]*"
    r"(?:[-=*#]{2,}[ \t]*)?"  # "---- ADDENDUM (Pathology, 03/14/2024) ----"
    # "Addendum (pathology, 2 weeks later):" names its kind inside the bracket
    r"(?:(?P<ad>addendum)\s*[-:]?\s*(?P<ab>[(（][ \t]*)?)?(?:(?P<br>[【\[])[ \t]*)?(?:" + _HEADER_ALTS + r")"
    # a bilingual header: "Findings 檢查結果:", "Findings / Constatations:", "Pathology addendum / Addenda (…):"
    r"(?:[ \t]+[\u4e00-\u9fff]{1,8}|[ \t]*/[ \t]*[^:：/\n]{1,40}?)?"
    r"(?(ad)[^:：()（）\n]{0,30}?)"  # "ADDENDUM - pathology received 03/02:"
    r"(?(ab)[^()（）\n]{0,60}[)）])(?:[ \t]*[(（][^()（）\n]{0,60}[)）])?"
    r"(?:[ \t]*[-=*#]{2,})?[ \t]*(?(br)[】\]][ \t]*[:：]?|(?:[:：]|(?=\n)|$))",
    re.MULTILINE,
)
_HEADER_KINDS = [kind for kind, _ in SECTION_HEADERS]
# A CJK header may follow any whitespace (single-line Chinese reports separate sections with spaces).
_ZH_HEADER_RE = re.compile(
    r"(?<=[ \t】\]])(?:"
    + "|".join(f"(?P<h{i}>{pat})" for i, (_, pat) in enumerate(SECTION_HEADERS) if re.search(r"[\u4e00-\u9fff]", pat))
    + r")[ \t]*[:：]"
)


def _header_kind(m: re.Match[str]) -> str:
    for name, value in m.groupdict().items():
        if value is not None and name.startswith("h"):
            return _HEADER_KINDS[int(name[1:])]
    return "other"  # pragma: no cover - a match always has one group


def split_sections(text: str) -> list[Section]:
    """Cut a normalised, lower-cased report (:func:`endoked.extract.vocab.lower_ascii`) into sections at
    known headers ("findings:", "impression", "诊断：", ...).

    Text before the first header is "body" (treated like findings). One-line sections (an inline
    "Indication: ...", "Prep: ...", "Plan: ...") end with their line. After a pathology header, the
    "Clinical history:" / "Diagnosis:" lines of the pathology report stay pathology.
    """
    hits: list[tuple[int, int, str]] = []
    for m in _HEADER_RE.finditer(text):
        hits.append((m.start(), m.end(), _header_kind(m)))
    for m in _ZH_HEADER_RE.finditer(text):
        hits.append((m.start(), m.end(), _header_kind(m)))
    hits.sort()
    sections: list[Section] = []
    pos, kind, inline = 0, "body", False
    last_end = -1
    in_pathology = False
    for start, end, new_kind in hits:
        if start < last_end:
            continue
        if in_pathology and new_kind in ("impression", "indication", "other"):
            new_kind = "pathology"  # "Clinical history:", "Diagnosis:" lines of a pathology report
        in_pathology = new_kind == "pathology"
        _close(text, sections, kind, pos, start, inline)
        nl = text.find("\n", end)
        inline = bool(text[end : nl if nl >= 0 else len(text)].strip())
        pos, kind, last_end = end, new_kind, end
    _close(text, sections, kind, pos, len(text), inline)
    return [s for s in sections if text[s.start : s.end].strip()]


_ONE_LINE_KINDS = frozenset({"indication", "other", "plan"})


def _close(text: str, sections: list[Section], kind: str, start: int, end: int, inline: bool) -> None:
    """Append a section; an inline "Indication: ..." / "Prep: ..." / "Plan: ..." ends with its line, the
    lines after it (up to the next header) are body text."""
    if start >= end:
        return
    if kind in _ONE_LINE_KINDS and inline:
        nl = text.find("\n", start, end)
        if nl >= 0:
            sections.append(Section(kind, start, nl))
            sections.append(Section("body", nl, end))
            return
    sections.append(Section(kind, start, end))


_ABBREV = frozenset(
    {
        "approx",
        "vs",
        "dr",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "cf",
        "asc",
        "desc",
        "sig",
        "rect",
        "trans",
        "ca",
        "incl",
        "no",
        "fig",
        "mr",
        "mrs",
        "ms",
        "st",
        "pt",
        "hx",
        "dx",
        "sx",
        "est",
    }
)
_BOUNDARY = re.compile(r"[.!。！;；\n]|(?<=[ \t])(?=\d{1,2}[.、)](?!\d))")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_TIMES_BEFORE = re.compile(r"(?<![A-Za-z])[x×][ \t]+$", re.IGNORECASE)


def split_sentences(text: str, start: int, end: int, orig: str | None = None) -> list[tuple[int, int]]:
    """Sentence spans inside ``text[start:end]``.

    Boundaries: 。！；; newlines, in-line list numbers (" 2. ", " 3、", not "(at least 6)"), and "." / "!"
    followed by a space or the end, unless the period ends a known abbreviation ("approx.", "asc.") or
    the next word starts in lower case. Decimal points never
    split. "?" does not split (it is an uncertainty marker in reports). ``orig`` is the text with its
    case when ``text`` is lower-cased.
    """
    cased = text if orig is None else orig
    spans: list[tuple[int, int]] = []
    s = start
    for m in _BOUNDARY.finditer(text, start, end):
        i = m.start()
        if m.end() == i:  # " 2. item" numbering inside a line: split before the number
            if text.rfind("(", s, i) > text.rfind(")", s, i):
                continue  # "multiple (at least 6) polyps": a number closing a parenthesis is no item number
            if _TIMES_BEFORE.search(text, max(start, i - 4), i):
                continue  # "Polyps x 3.": a multiplier is no item number
            if i > s:
                spans.append((s, i))
            s = i
            continue
        ch = text[i]
        if ch in ".!":
            nxt = text[i + 1] if i + 1 < end else " "
            if not nxt.isspace():
                continue
            if ch == ".":
                w = _WORD_BEFORE.search(text, max(start, i - 12), i)
                if w and w.group(1).lower().rstrip(".") in _ABBREV:
                    continue
                j = i + 1
                while j < end and text[j] == " ":
                    j += 1
                if j < end and cased[j].islower():
                    continue
        if i > s:
            spans.append((s, i))
        s = i + 1
    if s < end:
        spans.append((s, end))
    return [(a, b) for a, b in spans if text[a:b].strip()]
