"""A fast matcher for the vocabulary tables.

Python's ``re`` is slow on one big case-insensitive alternation with a named group per entry: at every
position it tries every entry. This module compiles the tables into one flat, case-sensitive alternation
over lower-cased text (``re`` then rejects most entries on their first character in C), and finds which
entry matched by trying only the entries that can start with the matched character. Word-boundary and
case checks that would defeat the fast path (a leading ``(?<![A-Za-z])``, ``(?-i:NET)``) are applied
after the match, and a rejected match falls through to the next entry exactly as the alternation would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

try:  # the regex parser is private API; without it every entry is simply tried at every match (slower)
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python versions without re._parser
    sre_parse = None

LEFT_BOUNDARY = r"(?<![A-Za-z])"
_LOWER_ASCII = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def lower_ascii(text: str) -> str:
    """Lower-case ASCII letters only (one character for one character, unlike ``str.lower``)."""
    return text.translate(_LOWER_ASCII)


def lower_pattern(pattern: str) -> str:
    """Lower-case the ASCII letters of a regex, keeping escapes (``\\S``, ``\\d``) and dropping
    ``(?-i:`` case switches (the text it runs on is lower-cased)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(ch.lower() if ch.isascii() else ch)
        i += 1
    return "".join(out).replace("(?-i:", "(?:")


def compile_lower(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile a pattern written in any case for use on :func:`lower_ascii` text."""
    return re.compile(lower_pattern(pattern), flags)


def split_top(pattern: str) -> list[str]:
    """Split a regex at its top-level ``|`` (outside groups and character classes)."""
    parts: list[str] = []
    depth, in_class, start, i = 0, False, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


_ANY = None


def _first(items: list[tuple[Any, Any]]) -> tuple[set[str] | None, bool]:
    """First characters a parsed sequence can start with; (chars or None for "any", can_be_empty)."""
    chars: set[str] = set()
    for op, av in items:
        name = str(op)
        if name in ("ASSERT", "ASSERT_NOT", "AT"):
            continue
        if name == "LITERAL":
            return chars | {chr(av)}, False
        if name == "NOT_LITERAL" or name == "ANY" or name == "CATEGORY":
            return _ANY, False
        if name == "IN":
            sub: set[str] = set()
            for iop, iav in av:
                iname = str(iop)
                if iname == "LITERAL":
                    sub.add(chr(iav))
                elif iname == "RANGE" and iav[1] - iav[0] < 300:
                    sub.update(chr(c) for c in range(iav[0], iav[1] + 1))
                else:
                    return _ANY, False
            return chars | sub, False
        if name == "SUBPATTERN":
            inner, empty = _first(list(av[-1]))
            if inner is _ANY:
                return _ANY, False
            chars |= inner
            if not empty:
                return chars, False
            continue
        if name == "BRANCH":
            any_empty = False
            for branch in av[1]:
                inner, empty = _first(list(branch))
                if inner is _ANY:
                    return _ANY, False
                chars |= inner
                any_empty = any_empty or empty
            if not any_empty:
                return chars, False
            continue
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, _, sub_items = av
            inner, empty = _first(list(sub_items))
            if inner is _ANY:
                return _ANY, False
            chars |= inner
            if lo > 0 and not empty:
                return chars, False
            continue
        return _ANY, False
    return chars, True


def first_chars(pattern: str) -> set[str] | None:
    """Characters a match of ``pattern`` can start with (None: could be anything or unknown)."""
    if sre_parse is None:
        return None
    chars, _ = _first(list(sre_parse.parse(pattern)))
    return chars


@dataclass(frozen=True)
class Entry:
    cat: str
    value: str
    rx: re.Pattern[str]
    left_boundary: bool
    case_rx: re.Pattern[str] | None  # original-case check for ``(?-i:...)`` entries


class Vocab:
    """Compiled vocabulary: ``scan`` yields ``(cat, value, start, end)`` in text order, leftmost first,
    earlier table rows winning at the same position (the semantics of one ordered alternation)."""

    def __init__(self, tables: list[tuple[str, list[tuple[str, str]]]]) -> None:
        entries: list[Entry] = []
        alts: list[str] = []
        for cat, table in tables:
            for value, pattern in table:
                for part in split_top(pattern):
                    lb = part.startswith(LEFT_BOUNDARY)
                    body = part[len(LEFT_BOUNDARY) :] if lb else part
                    low = lower_pattern(body)
                    case_rx = re.compile(body, re.IGNORECASE) if "(?-i:" in body else None
                    entries.append(Entry(cat, value, re.compile(low), lb, case_rx))
                    alts.append(low)
        self.entries = entries
        self.regex = re.compile("|".join(alts))
        self._by_char: dict[str, list[int]] = {}
        self._anywhere: list[int] = []
        for i, e in enumerate(entries):
            chars = first_chars(e.rx.pattern)
            if chars is None:
                self._anywhere.append(i)
            else:
                for ch in chars:
                    self._by_char.setdefault(ch, []).append(i)
        self._cache: dict[str, list[int]] = {}

    def _candidates(self, ch: str) -> list[int]:
        got = self._cache.get(ch)
        if got is None:
            got = sorted(set(self._by_char.get(ch, [])) | set(self._anywhere))
            self._cache[ch] = got
        return got

    def scan(self, low: str, orig: str, start: int, end: int) -> list[tuple[str, str, int, int]]:
        """Tokens in ``low[start:end]`` (``low``: :func:`lower_ascii` of ``orig``)."""
        out: list[tuple[str, str, int, int]] = []
        pos = start
        search = self.regex.search
        while pos < end:
            m = search(low, pos, end)
            if m is None:
                break
            s = m.start()
            hit = None
            for i in self._candidates(low[s]):
                e = self.entries[i]
                mm = e.rx.match(low, s, end)
                if mm is None or mm.end() == s:
                    continue
                if e.left_boundary and s > 0 and low[s - 1].isascii() and low[s - 1].isalpha():
                    continue
                if e.case_rx is not None and e.case_rx.match(orig, s, end) is None:
                    continue
                hit = (e.cat, e.value, s, mm.end())
                break
            if hit is None:
                pos = s + 1
                continue
            out.append(hit)
            pos = hit[3]
        return out
