"""Token scanning and a ConText-style scope engine (negation, uncertainty, history) for both languages.

Why not medspaCy/pyConText: they pull in spaCy, cover English only, and a spaCy pipeline costs far more
than the 1 ms per report this stage aims for. The rules here follow ConText (Harkema et al., J Biomed
Inform 2009): a trigger modifies targets inside its scope, which runs forward or backward to the
sentence edge or to a termination term; Chinese triggers stop at clause punctuation (，；).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from endoked.extract import lexicon as lx
from endoked.extract.vocab import Vocab, compile_lower

FIND = Vocab(
    [
        ("POLYP", lx.POLYP),
        ("MAL", lx.MALIGNANCY),
        ("MORPH", lx.MORPHOLOGY),
        ("LOC", lx.LOCATION),
        ("REM", lx.REMOVAL),
        ("SIZE", [("size", lx.SIZE)]),
        ("MIMIC", lx.MIMIC),
    ]
)
PATH = Vocab([("PATH", lx.PATHOLOGY)])
CTX = Vocab([("CTX", lx.CONTEXT)])
PREP_RE = compile_lower(lx.PREP)
PATH_CUE_RE = compile_lower(lx.PATH_CUE)
TOTAL_RE = compile_lower(lx.TOTAL)
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")


# An option of a checkbox form that was not ticked ("Location: [ ] Cecum [x] Sigmoid", "□升结肠 ■乙状结肠"):
# its words are not said of this exam.
_UNCHECKED_RE = re.compile(r"(?:\[\s?\]|\(\s?\)|[□☐])\s*$")


@dataclass(slots=True)
class Token:
    """A vocabulary hit: category (POLYP, MAL, MORPH, LOC, REM, SIZE, MIMIC, PATH), value, span, text."""

    cat: str
    value: str
    start: int
    end: int
    text: str


def scan(vocab: Vocab, low: str, orig: str, start: int, end: int) -> list[Token]:
    """All tokens of ``vocab`` (:data:`FIND` or :data:`PATH`) in ``low[start:end]``.

    Args:
        vocab: the compiled vocabulary.
        low: the normalised, ASCII-lower-cased report (what every rule runs on).
        orig: the normalised report with its case (for case-sensitive abbreviations).
        start, end: the stretch to scan (absolute offsets).
    """
    return [
        Token(cat, value, s, e, low[s:e])
        for cat, value, s, e in vocab.scan(low, orig, start, end)
        if not _UNCHECKED_RE.search(low, max(start, s - 6), s)
    ]


@dataclass(slots=True)
class Scope:
    """A trigger's reach: kind ("neg", "hedge", "hist", "vague": a hedge of vague mentions only) over
    ``[start, end)``."""

    kind: str
    start: int
    end: int


_CLAUSE_PUNCT = re.compile(r"[,;。!?]|\.(?!\d)")
_PAREN_RE = re.compile(r"[(（][^()（）]*[)）]")


def _is_cjk(s: str) -> bool:
    return _CJK_RE.search(s) is not None


def scopes_for_sentence(text: str, s: int, e: int) -> list[Scope]:
    """Compute the context scopes inside the sentence ``text[s:e]``."""
    trig: list[tuple[str, int, int, bool]] = []
    terms: list[int] = []
    for _, kind, a0, b0 in CTX.scan(text, text, s, e):
        if kind == "pseudo":
            continue
        if kind == "term":
            terms.append(a0)
            continue
        trig.append((kind, a0, b0, _is_cjk(text[a0:b0])))
    if not trig:
        return []
    parens = [(m.start() + 1, m.end() - 1) for m in _PAREN_RE.finditer(text, s, e)]
    # punctuation inside brackets ("平坦病变（SSL？）与炎症改变难以鉴别") does not end a clause outside them
    commas = [
        c for c in (m.start() for m in _CLAUSE_PUNCT.finditer(text, s, e)) if not any(p0 <= c < p1 for p0, p1 in parens)
    ]
    out: list[Scope] = []
    for kind, a, b, cjk in trig:
        base = kind.split("_")[0]
        direction = kind.split("_")[1]
        if base == "hist":  # "(ascending colon, 25 mm LST-G, 6 months ago)": the whole aside is history
            out.extend(Scope(base, p0, p1) for p0, p1 in parens if p0 <= a and b <= p1)
        # "s": back to the sentence start; "F": on to its end (both over commas)
        comma_bound = (cjk or base in ("hist", "hedge")) and direction not in ("s", "F")
        if direction == "w":
            out.append(Scope(base, a, b))
            continue
        if direction in ("f", "2", "F"):
            stop = e
            for t in terms:
                if t >= b:
                    stop = min(stop, t)
                    break
            if comma_bound:
                for c in commas:
                    if c >= b:
                        stop = min(stop, c)
                        break
            if base == "hedge" and not cjk:
                stop = min(stop, b + 40)
            if direction == "2":
                stop = min(stop, b + 30)
            out.append(Scope(base, b, stop))
        if direction in ("b", "2", "s"):
            begin = s
            for t in reversed(terms):
                if t < a:
                    begin = max(begin, t)
                    break
            if comma_bound:
                for c in reversed(commas):
                    if c < a:
                        begin = max(begin, c + 1)
                        break
            if direction == "2":
                begin = max(begin, a - 30)
            if base == "hedge":  # "平坦型病变（腺瘤可能）": a hedge in brackets is about the bracket's words
                begin = max([begin, *(p0 for p0, p1 in parens if p0 <= a and b <= p1)])
            out.append(Scope(base, begin, a))
    return out


@dataclass(slots=True)
class Status:
    """Context of one target: negated, hedged, historical (history/family/screening/hypothetical)."""

    negated: bool = False
    hedged: bool = False
    historical: bool = False

    @property
    def current(self) -> bool:
        """A finding of this exam that is not negated (it may be hedged)."""
        return not self.negated and not self.historical


# a mention that only looks like a polyp ("polypoid lesion", "polyp-like area", "息肉样隆起"), matched at its start
POLYPOID_RE = re.compile(r"polypoid|polyp-?like|息肉样", re.IGNORECASE)


def is_vague(tok: Token) -> bool:
    """A polyp mention that does not name a polyp: an elevation, a lesion, "polypoid"/"polyp-like"/"息肉样" X."""
    return tok.cat == "POLYP" and (tok.value in ("lesion", "elevation") or POLYPOID_RE.match(tok.text) is not None)


def status_of(tok: Token, scopes: list[Scope]) -> Status:
    """The context status of a token given the scopes of its sentence."""
    st = Status()
    for sc in scopes:
        if sc.start <= tok.start < sc.end or (sc.start < tok.end <= sc.end):
            if sc.kind == "neg":
                st.negated = True
            elif sc.kind == "hedge":
                st.hedged = True
            elif sc.kind == "vague":
                st.hedged = st.hedged or is_vague(tok)
            else:
                st.historical = True
    return st
