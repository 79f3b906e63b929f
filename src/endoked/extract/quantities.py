"""Numbers in reports: polyp counts (digits, English words, Chinese numerals, "multiple"/"数枚") and
sizes (mm/cm, ranges, products, lists), with distances from the anal verge told apart from sizes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from endoked.extract import lexicon as lx

_FLAGS = re.IGNORECASE
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def zh_number(s: str) -> int | None:
    """Integer value of a Chinese numeral up to 99 ("三" 3, "十二" 12, "二十" 20, "两" 2) or digits."""
    s = s.strip()
    if s.isdigit():
        return int(s)
    if not s or any(ch not in _ZH_DIGITS and ch != "十" for ch in s):
        return None
    if "十" not in s:
        if len(s) != 1:
            return None
        return _ZH_DIGITS[s]
    tens_str, _, ones_str = s.partition("十")
    tens = _ZH_DIGITS.get(tens_str, -1) if tens_str else 1
    ones = _ZH_DIGITS.get(ones_str, -1) if ones_str else 0
    if tens < 0 or ones < 0:
        return None
    return tens * 10 + ones


_EN_COUNT_RE = re.compile(lx.EN_COUNT, _FLAGS)
_ZH_COUNT_RE = re.compile(lx.ZH_COUNT, _FLAGS)
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_POST_EN_RE = re.compile(
    r"\s*[(\[]?\s*(?:[x×]\s*(?P<n>\d{1,2})|(?:total\s+(?:of\s+)?)?(?P<p>\d{1,2})\s*"
    r"(?:in\s+(?:number|total))?\s*[)\]])|"
    r"\s*(?:(?:removed|resected|found|seen|detected|retrieved|identified)\s*)?[:：]\s*(?P<c>\d{1,2})"
    r"(?![\d.]|\s*(?:mm|cm))|"
    # "0-Is polyp 6-8 mm x2": a size, then how many (not "6 mm x 4 mm", a product)
    r"\s*(?:\d+(?:\.\d+)?\s*(?:-|to)\s*)?\d+(?:\.\d+)?\s*(?:mm|cm)\s*[x×]\s*(?P<s>\d{1,2})(?![\d.]|\s*(?:mm|cm))",
    _FLAGS,
)
# after the mention ("息肉2枚", "（共3枚）"; after a segment standing for its polyps, "乙状结肠另见两枚")
_POST_ZH_RE = re.compile(
    rf"\s*[:：]?\s*[(（]?\s*(?:(?:另|亦|又)?(?:可见|见))?\s*(?:共计|共|计|约)?\s*(?:{lx.ZH_COUNT})", _FLAGS
)
_CLAUSE_END = re.compile(r"[,;。，；]|\.(?!\d)")
_SENT_END = re.compile(r"[;。；]|\.(?!\d)")
# the number of an item ("Finding 3:", "Polyp 2 -", "Lesion #1") is no count
_ITEM_NUMBER_RE = re.compile(r"(?:finding|polyp|lesion|item|specimen|site)\s*(?:no\.?|#)?\s*$", re.IGNORECASE)
# "one each in the sigmoid and rectum"; not "three polyps in the caecum, ... (one in each)": that count is the total
_EACH_RE = re.compile(r"各|(?<![A-Za-z])(?<!in\s)(?<!at\s)(?<!of\s)each(?![A-Za-z])", _FLAGS)


def _row_number(text: str, start: int, end: int) -> bool:
    """Digits that open a line and are followed by a column gap are a table row's number (" 3  Transverse  6 mm"),
    not a count."""
    line_start = text.rfind("\n", 0, start) + 1
    return (
        text[start:end].isdigit() and not text[line_start:start].strip() and _COLUMN_GAP_RE.match(text, end) is not None
    )


_COLUMN_GAP_RE = re.compile(r"(?: {2,}|\t)")


@dataclass(frozen=True)
class Count:
    """A count found near a polyp mention: ``value`` None means "several/multiple" (not determinable)."""

    value: int | None
    start: int
    end: int


def _en_value(m: re.Match[str]) -> int | None:
    if m.group("times"):
        return int(m.group("times")[1:].strip())
    if m.group("none"):
        return None
    word = re.sub(r"\s+", " ", m.group("num").lower())
    if word.isdigit():
        return int(word)
    return lx.EN_NUMBERS.get(word)


def _zh_value(m: re.Match[str]) -> int | None:
    if m.group("one"):
        return 1
    if m.group("num"):
        return zh_number(m.group("num"))
    return None


def _overlaps(a: int, b: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < e and s < b for s, e in spans)


def find_count(
    text: str,
    zone_start: int,
    mention_start: int,
    mention_end: int,
    zone_end: int,
    exclude: list[tuple[int, int]] | None = None,
) -> Count | None:
    """The count attached to a polyp mention.

    Looks in the words just before the mention ("two 5 mm sessile polyps", "见数枚息肉") and right after
    it ("polyps (x3)", "息肉2枚", "息肉多发"); the nearest count wins.

    Args:
        text: the normalised report.
        zone_start: where the mention's window begins (a count before it belongs to another mention).
        mention_start, mention_end: the mention span.
        zone_end: where the window ends.
        exclude: spans whose numbers are not counts (sizes: the "5" of "a 5 mm polyp").
    """
    exclude = exclude or []
    post = text[mention_end : min(zone_end, mention_end + 20)]
    m = _POST_ZH_RE.match(post)
    if m:
        return Count(_zh_value(m), mention_end + m.start(), mention_end + m.end())
    m = _POST_EN_RE.match(post)
    if m:
        n = m.group("n") or m.group("p") or m.group("c") or m.group("s")
        return Count(int(n), mention_end + m.start(), mention_end + m.end())
    lo = max(zone_start, mention_start - 60)
    best: tuple[Count, int] | None = None
    for m in _ZH_COUNT_RE.finditer(text, lo, mention_start):
        gap = text[m.end() : mention_start]
        if len(gap) <= 14 and not _CLAUSE_END.search(gap) and not _overlaps(m.start(), m.end(), exclude):
            best = (Count(_zh_value(m), m.start(), m.end()), m.end())
    if best is None:
        for m in _EN_COUNT_RE.finditer(text, lo, mention_start):
            gap = text[m.end() : mention_start]
            if (
                len(_WORD_RE.findall(gap)) <= 6
                and not _SENT_END.search(gap)
                and not _overlaps(m.start(), m.end(), exclude)
                and not (m.group("num") and _ITEM_NUMBER_RE.search(text, max(0, m.start() - 12), m.start()))
                and not (m.group("num") and _row_number(text, m.start(), m.end()))
            ):
                best = (Count(_en_value(m), m.start(), m.end()), m.end())
    if best is None or best[0].value == 0:
        return None
    return best[0]


def has_each(text: str, start: int, end: int) -> bool:
    """True when the window says "each"/"各" ("one each in the sigmoid and rectum", "各见一枚")."""
    return _EACH_RE.search(text, start, end) is not None


# ---------------------------------------------------------------------------------------------------
_SIZE_PART_RE = re.compile(
    rf"(?P<num>{lx.NUM})\s*-?\s*(?P<unit>{lx.UNIT})?|(?P<op>[x×*✕]|by|-|~|to|至|到|and|"
    rf"or|和|及|与|、)",
    _FLAGS,
)
_LIST_OPS = {"and", "or", "和", "及", "与", "、"}
_DISTANCE_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])at|距(?:离)?(?:肛门|肛缘|肛|齿状线|回盲瓣|回盲部|吻合口)?(?:口)?|进镜|insert(?:ed|ion)(?:\s+to)?|advanced(?:\s+to)?|"
    r"withdrawn(?:\s+to)?|蒂长|stalk(?:\s+length)?(?:\s+of)?|stalk\s+measuring)\s*"
    r"(?:approximately|approx\.?|about|around|~|约)?\s*$",
    _FLAGS,
)
_DISTANCE_AFTER = re.compile(  # "20 cm from the anal verge", "5 cm distal to the valve"
    r"\s*(?:from\s+(?:the\s+)?(?:anal|anus|dentate|AV|verge|(?:ileo-?ca?ecal\s+)?valve|ICV|anastomo|appendi)|away|"
    r"处|in\s+length|长(?!蒂)|"
    r"(?:distal|proximal|beyond|above|below|short\s+of)\s+(?:to\s+|from\s+)?(?:the\s+)?[a-z])",
    _FLAGS,
)
# an upper bound is no size; a lower bound (">3 cm", 直径大于2cm) is the least the polyp measures, its size, but
# "over" is as often an extent ("clustered over about 5 cm") and stays no size
_BOUND_BEFORE = re.compile(
    r"(?:<|＜|less\s+than|smaller\s+than|under|below|小于|不足|(?<![A-Za-z])over)\s*(?:approximately|about|约)?\s*$",
    _FLAGS,
)

# an upper limit given for a whole group ("all under 5 mm", "均小于0.5cm") is the group's size
_GROUP_CAP_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])(?:all|each|both)\s+(?:(?:were|are|being|measuring)\s+)?|[均都皆]\s*)"
    r"(?:<|＜|less\s+than|smaller\s+than|under|below|小于|不足)\s*(?:approximately|about|约)?\s*$",
    _FLAGS,
)
_BETWEEN_BEFORE = re.compile(r"(?<![A-Za-z])between\s+(?:approximately\s+|about\s+)?$|介于\s*$", _FLAGS)


@dataclass(frozen=True)
class Size:
    """Sizes in mm read from one size expression: one value per listed polyp ("4 and 6 mm" -> [4, 6])."""

    values: tuple[float, ...]
    start: int
    end: int


def to_mm(value: float, unit: str) -> float:
    """``value`` in mm, given in ``unit`` (mm, cm, 毫米, 厘米, 公分, ㎜, ㎝)."""
    u = unit.lower()
    return value * 10.0 if u.startswith(("c", "厘", "公", "㎝")) else value


def parse_size(text: str, start: int, end: int) -> Size | None:
    """Read a size expression ``text[start:end]`` (a SIZE token) as mm.

    Ranges ("3-5 mm", "0.3~0.5cm", "between 3 and 7 mm") and products ("0.4×0.6 cm", "5 x 6 mm") give
    their largest number; lists ("4 and 6 mm", "0.3cm、0.5cm") give one value each. Units missing on a
    number are taken from the next number that has one. Returns None for distances ("at 25 cm",
    "距肛门15cm", "20 cm from the anal verge"), upper bounds ("<5 mm", but not a group's upper limit: "all under
    5 mm" is 5 mm; a lower bound, ">3 cm", is the size), stalk lengths and implausible polyp
    sizes (> 6 cm, in practice distances such as "sigmoid (25 cm)").
    """
    before = text[max(0, start - 24) : start]
    if _DISTANCE_BEFORE.search(before) or (_BOUND_BEFORE.search(before) and not _GROUP_CAP_BEFORE.search(before)):
        return None
    if _DISTANCE_AFTER.match(text, end):
        return None
    nums: list[list[float | str | None]] = []  # [value, unit]
    segments: list[list[int]] = [[]]
    between = _BETWEEN_BEFORE.search(before) is not None  # "between 3 and 7 mm" is a range, not a list
    for m in _SIZE_PART_RE.finditer(text, start, end):
        if m.group("num"):
            nums.append([float(m.group("num").replace(",", ".")), m.group("unit")])
            segments[-1].append(len(nums) - 1)
        elif m.group("op") and m.group("op").lower() in _LIST_OPS and not between:
            segments.append([])
    if not nums:
        return None
    unit: str | None = None
    for item in reversed(nums):
        if item[1]:
            unit = str(item[1])
        item[1] = unit
    if unit is None and nums[-1][1] is None:
        return None
    values: list[float] = []
    for seg in segments:
        if not seg:
            continue
        mm = [to_mm(float(nums[i][0] or 0.0), str(nums[i][1] or "mm")) for i in seg]
        values.append(max(mm))
    if not values or max(values) <= 0 or max(values) > 60:
        return None
    return Size(tuple(v for v in values if v > 0), start, end)
