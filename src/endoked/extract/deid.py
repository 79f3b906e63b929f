"""De-identification of report text before it leaves the process (LLM backends).

Replaces, in English and Chinese: person names (labelled "Name:", "患者：", titles "Dr. X", "张先生",
"李医生"), dates (ISO, US, European, month names, 2024年3月12日, 3月12日), phone numbers (Chinese
mobile and landline, North-American, international), medical record numbers and other labelled IDs
(MRN, 病历号, 住院号, 门诊号, ...), Chinese resident ID-card numbers, e-mail addresses, ages over 89, and
any unlabelled run of 6 or more digits. Years alone are kept (they carry clinical timing, "s/p
polypectomy 2019"). This is rule-based: it removes the identifiers that reports usually carry, and is
not a guarantee against every free-text identifier.

Every replacement is recorded, so spans found in the de-identified text map back to the original.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
             "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
           r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_LABELS = r"(?:MRN|DOB|ID|MD|DO|RN|PHD|AGE|SEX|MR|MS)\b"
_NAME_EN = rf"(?!{_LABELS})[A-Z][A-Za-z'\-]+(?:[ ](?:[A-Z]\.|[A-Z][a-z'\-]+|(?!{_LABELS})[A-Z]{{2,}}(?![a-z]))){{0,3}}"

# (kind, pattern); the group "v", when present, is the part replaced.
_RULES: list[tuple[str, str]] = [
    ("EMAIL", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    ("ID", r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
           r"(?![\dA-Za-z])"),
    ("ID", r"(?<![A-Za-z])(?i:(?:mrn|mr\s*#|medical\s+record(?:\s+(?:number|no\.?))?|patient\s+id|pt\s+id|"
           r"hospital\s+(?:number|no\.?)|accession(?:\s+(?:number|no\.?))?|id(?:\s+(?:number|no\.?))?)|病历号|住院号|门诊号|登记号|检查号|ID号|卡号|"
           r"身份证(?:号(?:码)?)?|就诊号|影像号|病案号|床号)\s*[:：#]?\s*"
           r"(?P<v>(?=[A-Za-z\-]*\d)[A-Za-z0-9][A-Za-z0-9\-]{2,})"),
    ("PHONE", r"(?<![\d])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"),
    ("PHONE", r"(?<![\d])0\d{2,3}[- ]\d{7,8}(?!\d)"),
    ("PHONE", r"(?<![\d])(?:\+?1[-. ]?)?\(\d{3}\)\s?\d{3}[-. ]\d{4}(?!\d)|(?<![\d/])\d{3}[-.]\d{3}[-.]\d{4}(?!\d)"),
    ("PHONE", r"\+\d{1,3}[- ]?\d(?:[\d -]{6,14}\d)"),
    ("DATE", r"(?<!\d)(?:19|20)\d{2}\s*[-/.年]\s*(?:0?[1-9]|1[0-2])\s*[-/.月]\s*(?:0?[1-9]|[12]\d|3[01])\s*日?(?!\d)"),
    ("DATE", r"(?<![\d/])(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|[12]\d|3[01])[/.](?:19|20)?\d{2}(?![\d/])"),
    ("DATE", r"(?i:" + _MONTHS + r")\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}"),
    ("DATE", r"\d{1,2}(?:st|nd|rd|th)?\s+(?i:" + _MONTHS + r")\.?,?\s+(?:19|20)\d{2}"),
    ("DATE", r"(?<!\d)(?:19|20)\d{2}\s*年\s*(?:0?[1-9]|1[0-2])\s*月(?:\s*(?:0?[1-9]|[12]\d|3[01])\s*[日号])?"),
    ("DATE", r"(?<!\d)(?:0?[1-9]|1[0-2])\s*月\s*(?:0?[1-9]|[12]\d|3[01])\s*[日号]"),
    ("DATE", r"(?i:on|dated|date|addendum|dos|seen)[ :]+(?P<v>(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\d/])"),
    ("DATE", r"(?i:date|日期|时间)\s*[:：]\s*(?P<v>[^\s,;，；]{4,20})"),
    ("NAME", r"(?i:patient(?:'s)?(?:\s+name)?|name|pt|endoscopist|physician|attending|surgeon|doctor|referring"
             r"(?:\s+(?:physician|doctor|md))?|pathologist|nurse|signed(?:\s+by)?|performed\s+by|dictated\s+by|cc)"
             r"\s*[:：]\s*(?P<v>" + _NAME_EN + ")"),
    ("NAME", r"(?i:(?:electronically\s+)?signed\s+by|performed\s+by|dictated\s+by|reviewed\s+by)\s*[:：]?\s*"
             r"(?P<v>" + _NAME_EN + ")"),
    ("NAME", r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+)(?P<v>" + _NAME_EN + ")"),
    ("NAME", r"(?P<v>" + _NAME_EN + r"),?\s+(?:MD|M\.D\.|DO|RN|PhD)\b"),
    ("NAME", r"(?:姓名|患者姓名|病人姓名|检查医[师生]|报告医[师生]|审核医[师生]|操作医[师生]|记录者|签名|"
             r"主治医[师生]|送检医[师生]|申请医[师生]|病理医[师生]|医[师生]|护士)\s*[:：]\s*(?P<v>[\u4e00-\u9fff·]{2,4})"),
    ("NAME", r"(?:患者|病人|病员)\s*(?P<v>[" + _SURNAMES + r"][\u4e00-\u9fff]{1,2})(?=[,，、\s(（]|[男女])"),
    ("NAME", r"(?P<v>[" + _SURNAMES + r"][\u4e00-\u9fff]{0,2}?)(?:先生|女士|医生|医师|主任|教授|护士|老师|同志)"),
    ("AGE", r"(?<!\d)(?:9\d|1[0-2]\d)(?=\s*(?:-|\s)?(?:years?|yrs?|yo|y/o|岁))"),
    ("ID", r"(?<![\d.])\d{6,}(?![\d.])"),
    ("ID", r"(?<![A-Za-z0-9])[A-Z]{1,3}\d{6,}(?![A-Za-z0-9])"),
]
_COMPILED = [(kind, re.compile(pat)) for kind, pat in _RULES]


@dataclass(frozen=True)
class Replacement:
    """One replaced identifier: ``[orig_start, orig_end)`` became ``[new_start, new_end)``."""

    kind: str
    orig_start: int
    orig_end: int
    new_start: int
    new_end: int


@dataclass(frozen=True)
class Deidentified:
    """The de-identified text and the replacements made."""

    text: str
    replacements: tuple[Replacement, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the de-identified text to the original text (a span touching a placeholder
        widens to the whole original identifier)."""
        return self._map(start, left=True), self._map(end, left=False)

    def _map(self, pos: int, left: bool) -> int:
        starts = [r.new_start for r in self.replacements]
        i = bisect.bisect_right(starts, pos) - 1
        if i < 0:
            return pos
        r = self.replacements[i]
        if pos >= r.new_end:
            return r.orig_end + (pos - r.new_end)
        if pos == r.new_start:
            return r.orig_start
        return r.orig_start if left else r.orig_end


def deidentify(text: str) -> Deidentified:
    """Replace identifiers in ``text`` with ``[NAME]``, ``[DATE]``, ``[PHONE]``, ``[ID]``, ``[EMAIL]``,
    ``[AGE]``."""
    spans: list[tuple[int, int, str]] = []
    for kind, rx in _COMPILED:
        for m in rx.finditer(text):
            s, e = m.span("v") if "v" in rx.groupindex and m.group("v") is not None else m.span()
            if e > s:
                spans.append((s, e, kind))
    spans.sort(key=lambda t: (t[0], -(t[1] - t[0])))
    kept: list[tuple[int, int, str]] = []
    for s, e, kind in spans:
        if kept and s < kept[-1][1]:
            if e > kept[-1][1]:  # overlapping identifiers: cover both
                ps, _, pk = kept[-1]
                kept[-1] = (ps, e, pk)
            continue
        kept.append((s, e, kind))
    out: list[str] = []
    reps: list[Replacement] = []
    pos = 0
    new_len = 0
    for s, e, kind in kept:
        out.append(text[pos:s])
        new_len += s - pos
        token = f"[{kind}]"
        reps.append(Replacement(kind, s, e, new_len, new_len + len(token)))
        out.append(token)
        new_len += len(token)
        pos = e
    out.append(text[pos:])
    return Deidentified("".join(out), tuple(reps))
