"""Recall of the de-identifier per PHI category and language, its false positives on clinical text, and the
report labels of the ``rules`` extractor before and after de-identification.

Usage:
    python benchmarks/bench_deid.py [--n 600] [--seed 0] [--json out.json] [--dev reports.jsonl]

Reports: ``endoked.synth.reports.synth_reports(n, seed)`` (English and Chinese, gold labels), each with PHI
lines and sentences inserted between its lines at known character positions: names (labelled, after a
title or role, with particles, in Title, lower or UPPER case; Chinese names after a label, 患者 or before a
title), dates in 10+ formats per language, labelled and unlabelled ids (MRN, SSN, account, accession,
病历号, 住院号, 身份证号 ...), phone numbers, e-mails, URLs, IP addresses, street addresses and ages over 89.
Values are drawn from pools of the benchmark's own (names include ones outside the de-identifier's lists).

A PHI span counts as caught when every one of its characters lies inside a replaced span (it became part of
a placeholder) and, for values of 3 or more characters, the value appears nowhere in the de-identified
text (a one-character surname or a two-digit age also occurs in ordinary text). ``NAME_NO_CUE`` are full names
in free text with no title, label or credential ("seen together with mary o'neill", "与王伟一同就诊"):
reported on their own, since only names in the de-identifier's name lists (or, in Chinese, a surname in a
person-only context) can be found there.

False positives: placeholders that overlap no inserted PHI span, on the PHI reports and on the plain
synthetic reports; clinical tokens (sizes, distances, Paris classes, counts) lost by de-identification.

Labels: the ``rules`` extractor on the PHI report and on its de-identified text, scored against the
synthetic truth with :func:`endoked.extract.evaluate.evaluate`; the script also counts reports whose labels
differ between the two.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

EN_GIVEN = [
    "John",
    "Mary",
    "Robert",
    "Linda",
    "Ahmed",
    "Priya",
    "Olga",
    "Tomasz",
    "Keiko",
    "Chidi",
    "Ingrid",
    "Rafael",
    "Siobhan",
    "Dmitri",
    "Aisha",
    "Bartholomew",
    "Jane",
    "Michael",
    "Fatima",
    "Luca",
]
EN_SURNAME = [
    "Smith",
    "Jones",
    "de la Cruz",
    "O'Neill",
    "McAllister",
    "van der Berg",
    "von Trapp",
    "Ratched",
    "Nakamura",
    "Kowalski",
    "Okonkwo",
    "Haddad",
    "Smith-Jones",
    "D'Angelo",
    "MacLeod",
    "Johansson",
    "Garcia",
    "Nguyen",
    "Fitzgerald",
    "Abernathy",
    "da Silva",
    "Le Blanc",
    "St. John",
]
ZH_SURNAME = [
    "张",
    "王",
    "李",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "周",
    "吴",
    "徐",
    "孙",
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "郑",
    "谢",
    "韩",
    "冯",
    "蒋",
    "沈",
    "田",
    "潘",
    "罗",
]
ZH_GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "建国",
    "小明",
    "淑珍",
    "志强",
    "海燕",
    "晓东",
    "桂兰",
    "文博",
    "思远",
    "子涵",
]
ZH_MINORITY = ["阿卜杜·热合曼", "买买提·艾力", "古丽·努尔"]
EN_STREETS = [
    "Oak",
    "Maple",
    "Elm",
    "Washington",
    "Lincoln",
    "Park",
    "Cedar",
    "Lake",
    "Hill",
    "Pine",
    "Sunset",
    "Highland",
    "Church",
    "Mill",
]
EN_SUFFIX = [
    "Street",
    "St.",
    "Avenue",
    "Ave",
    "Road",
    "Rd.",
    "Boulevard",
    "Blvd",
    "Lane",
    "Drive",
    "Court",
    "Place",
    "Way",
    "Terrace",
]
EN_CITIES = [("Springfield", "IL"), ("Portland", "OR"), ("Austin", "TX"), ("Boston", "MA"), ("Madison", "WI")]
ZH_PROV = [
    ("浙江省", "杭州市", "西湖区"),
    ("江苏省", "南京市", "鼓楼区"),
    ("广东省", "深圳市", "南山区"),
    ("四川省", "成都市", "武侯区"),
    ("湖北省", "武汉市", "洪山区"),
]
ZH_CITY = [("北京市", "朝阳区"), ("上海市", "浦东新区"), ("天津市", "和平区"), ("重庆市", "渝中区")]
ZH_ROADS = ["文三路", "中山路", "人民大道", "解放街", "建设路", "南京东路", "长安街", "学院路", "幸福巷"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ZH_NUM = "〇一二三四五六七八九"
CATEGORIES = ("NAME", "DATE", "ID", "PHONE", "EMAIL", "URL", "IP", "ADDRESS", "AGE")


@dataclass(frozen=True)
class PHI:
    """One inserted identifier: ``[start, end)`` in the report text."""

    category: str
    start: int
    end: int
    value: str
    form: str


def _case(rng: np.random.Generator, name: str) -> str:
    r = rng.random()
    return name.lower() if r < 0.3 else (name.upper() if r < 0.4 else name)


def _en_name(rng: np.random.Generator) -> str:
    given, sur = EN_GIVEN[rng.integers(len(EN_GIVEN))], EN_SURNAME[rng.integers(len(EN_SURNAME))]
    r = rng.random()
    if r < 0.15:
        return sur
    if r < 0.3:
        return f"{given} {chr(65 + int(rng.integers(26)))}. {sur}"
    return f"{given} {sur}"


def _zh_name(rng: np.random.Generator) -> str:
    if rng.random() < 0.06:
        return ZH_MINORITY[rng.integers(len(ZH_MINORITY))]
    return ZH_SURNAME[rng.integers(len(ZH_SURNAME))] + ZH_GIVEN[rng.integers(len(ZH_GIVEN))]


def _date_parts(rng: np.random.Generator) -> tuple[int, int, int]:
    return int(rng.integers(1930, 2026)), int(rng.integers(1, 13)), int(rng.integers(1, 29))


def _en_date(rng: np.random.Generator) -> tuple[str, str]:
    y, m, d = _date_parts(rng)
    mon = MONTHS[m - 1]
    forms = [
        ("iso", f"{y}-{m:02d}-{d:02d}"),
        ("dmy-mon", f"{d:02d}-{mon[:3]}-{y}"),
        ("mdy-long", f"{mon} {d}, {y}"),
        ("dmy-slash", f"{d:02d}/{m:02d}/{y}"),
        ("mdy-short", f"{m}/{d}/{y % 100:02d}"),
        ("dmy-dot", f"{d:02d}.{m:02d}.{y}"),
        ("dmy-long", f"{d} {mon} {y}"),
        ("mon-d", f"{mon[:3]} {d}"),
        ("iso-time", f"{y}-{m:02d}-{d:02d} 10:{d:02d}"),
        ("ordinal", f"the {d}{'th' if d > 3 else ['st', 'nd', 'rd'][d - 1]} of {mon} {y}"),
        ("mon-y", f"{mon} {y}"),
        ("mdy-dash", f"{m:02d}-{d:02d}-{y}"),
        ("y-mon-d", f"{y}-{mon[:3]}-{d:02d}"),
    ]
    form, val = forms[rng.integers(len(forms))]
    if form == "ordinal":
        val = val[4:]  # "the" is context
    return form, val


def _zh_date(rng: np.random.Generator) -> tuple[str, str]:
    y, m, d = _date_parts(rng)
    cn_y = "".join(ZH_NUM[int(c)] for c in str(y))
    cn = "一二三四五六七八九十"
    cn_m = cn[m - 1] if m <= 10 else "十" + cn[m - 11]
    cn_d = (
        cn[d - 1]
        if d <= 10
        else (("二十" if d >= 20 else "十") + (cn[d % 10 - 1] if d % 10 else "") if d != 20 else "二十")
    )
    forms = [
        ("ymd-zh", f"{y}年{m}月{d}日"),
        ("iso", f"{y}-{m:02d}-{d:02d}"),
        ("ymd-dot", f"{y}.{m:02d}.{d:02d}"),
        ("ymd-slash", f"{y}/{m}/{d}"),
        ("md-zh", f"{m}月{d}日"),
        ("ym-zh", f"{y}年{m}月"),
        ("cn-numerals", f"{cn_y}年{cn_m}月{cn_d}日"),
        ("ymd-zh-spaced", f"{y} 年 {m} 月 {d} 日"),
        ("iso-time", f"{y}-{m:02d}-{d:02d} 09:{d:02d}:00"),
        ("md-hao", f"{m}月{d}号"),
    ]
    return forms[rng.integers(len(forms))]


def _digits(rng: np.random.Generator, n: int) -> str:
    return str(int(rng.integers(1, 10))) + "".join(str(int(x)) for x in rng.integers(0, 10, n - 1))


def _cn_id(rng: np.random.Generator) -> str:
    y, m, d = _date_parts(rng)
    body = _digits(rng, 6) + f"{y}{m:02d}{d:02d}" + _digits(rng, 3)
    return body + ("X" if rng.random() < 0.3 else str(int(rng.integers(10))))


def _phone(rng: np.random.Generator, zh: bool) -> tuple[str, str]:
    a, b, c = _digits(rng, 3), _digits(rng, 3), _digits(rng, 4)
    mob = "1" + str(int(rng.integers(3, 10))) + _digits(rng, 9)[:9]
    en = [
        ("paren", f"({a}) {b}-{c}"),
        ("dash", f"{a}-{b}-{c}"),
        ("dot", f"{a}.{b}.{c}"),
        ("intl-1", f"+1 {a} {b} {c}"),
        ("intl-44", f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}"),
        ("ext", f"{a}-{b}-{c} ext. {int(rng.integers(10, 999))}"),
    ]
    cn = [
        ("mobile", mob),
        ("mobile+86", f"+86 {mob[:3]} {mob[3:7]} {mob[7:]}"),
        ("mobile-dash", f"{mob[:3]}-{mob[3:7]}-{mob[7:]}"),
        ("landline", f"0{_digits(rng, 2)}-{_digits(rng, 8)}"),
        ("landline-paren", f"(0{_digits(rng, 3)}){_digits(rng, 7)}"),
    ]
    pool = cn if zh else en
    return pool[rng.integers(len(pool))]


def _en_address(rng: np.random.Generator) -> tuple[str, str]:
    num = str(int(rng.integers(1, 9999)))
    street = EN_STREETS[rng.integers(len(EN_STREETS))]
    if rng.random() < 0.3:
        street = f"{['North', 'South', 'East', 'West'][rng.integers(4)]} {street}"
    suf = EN_SUFFIX[rng.integers(len(EN_SUFFIX))]
    addr = f"{num} {street} {suf}"
    form = "street"
    if rng.random() < 0.3:
        addr += f", Apt {int(rng.integers(1, 40))}{'ABCD'[rng.integers(4)]}"
        form = "street+unit"
    if rng.random() < 0.5:
        city, st = EN_CITIES[rng.integers(len(EN_CITIES))]
        addr += f", {city}, {st} {_digits(rng, 5)}"
        form += "+city"
    if rng.random() < 0.15:
        addr, form = addr.lower(), form + "-lower"
    return form, addr


def _zh_address(rng: np.random.Generator) -> tuple[str, str]:
    road = ZH_ROADS[rng.integers(len(ZH_ROADS))]
    tail = f"{road}{int(rng.integers(1, 999))}号"
    if rng.random() < 0.4:
        tail += f"{int(rng.integers(1, 30))}栋{int(rng.integers(1, 6))}单元{int(rng.integers(101, 2999))}室"
    if rng.random() < 0.6:
        p, c, d = ZH_PROV[rng.integers(len(ZH_PROV))]
        return "prov-city-district", f"{p}{c}{d}{tail}"
    c, d = ZH_CITY[rng.integers(len(ZH_CITY))]
    return "city-district", f"{c}{d}{tail}"


def _phi_items(rng: np.random.Generator, zh: bool) -> list[tuple[str, str, str, str]]:
    """``(category, form, template, value)`` for every category, in a random order; the template holds ``{}``."""
    items: list[tuple[str, str, str, str]] = []
    if zh:
        n = _zh_name(rng)
        ctx = [
            ("label", "姓名：{}"),
            ("label-nospace", "姓名：{}性别：男"),
            ("patient", "患者{}，男，因便血就诊"),
            ("doctor-label", "检查医师：{}"),
            ("report-label", "报告医师：{}"),
            ("family", "家属：{}"),
            ("nurse-label", "护士：{}"),
            ("pinyin-dr", "Dr. {}"),
        ]
        form, tpl = ctx[rng.integers(len(ctx))]
        if form == "pinyin-dr":
            n = _case(rng, EN_SURNAME[rng.integers(len(EN_SURNAME))])
        items.append(("NAME", form, tpl, n))
        if rng.random() < 0.5:  # surname + title
            sur = ZH_SURNAME[rng.integers(len(ZH_SURNAME))]
            title = ["医生", "主任", "先生", "女士", "教授"][rng.integers(5)]
            items.append(("NAME", "surname+title", "由{}" + title + "复核", sur))
        # a bare name (no label or title), from a generator of its own so the other items stay as they were
        sub = np.random.default_rng(int(rng.bit_generator.state["state"]["state"]))
        if sub.random() < 0.5:
            ctx = ["与{}一同就诊", "由{}陪同来院", "{}陪同检查", "检查结果已告知{}", "嘱{}按时复查"]
            items.append(("NAME_NO_CUE", "no-cue", ctx[sub.integers(len(ctx))], _zh_name(sub)))
        form, d = _zh_date(rng)
        dctx = ["检查日期：{}", "{}行结肠镜检查", "出生日期：{}", "报告日期：{}", "于{}复诊"]
        items.append(("DATE", form, dctx[rng.integers(len(dctx))], d))
        ids = [
            ("病历号", "病历号：{}", _digits(rng, 8)),
            ("住院号", "住院号：ZY{}", _digits(rng, 7)),
            ("身份证号", "身份证号：{}", _cn_id(rng)),
            ("门诊号", "门诊号 {}", _digits(rng, 6)),
            ("医保卡号", "医保卡号：{}", _digits(rng, 10)),
            ("病理号", "病理号：B{}-{}", ""),
            ("unlabelled", "（{}）", _digits(rng, 9)),
            ("身份证-bare", "证件{}", _cn_id(rng)),
        ]
        form, tpl, v = ids[rng.integers(len(ids))]
        if form == "住院号":
            tpl, v = "住院号：{}", "ZY" + v
        if form == "病理号":
            tpl, v = "病理号：{}", f"B{rng.integers(20, 26)}-{_digits(rng, 5)}"
        items.append(("ID", form, tpl, v))
        form, p = _phone(rng, True)
        items.append(("PHONE", form, ["联系电话：{}", "手机{}", "电话：{}", "联系方式 {}"][rng.integers(4)], p))
        form, a = _zh_address(rng)
        items.append(("ADDRESS", form, ["住址：{}", "家住{}", "地址：{}", "现住址{}"][rng.integers(4)], a))
        age = str(int(rng.integers(90, 106)))
        items.append(("AGE", "age", ["年龄：{}岁", "患者{}岁", "{}周岁", "年龄：{}"][rng.integers(4)], age))
    else:
        n = _case(rng, _en_name(rng))
        ctx = [
            ("label", "Patient name: {}"),
            ("label", "Name: {}"),
            ("pt-label", "Pt. name: {}"),
            ("dr", "Dr. {}"),
            ("dr-nodot", "seen by Dr {}"),
            ("mr", "Mr. {}"),
            ("mrs", "Mrs. {}"),
            ("ms", "Ms. {}"),
            ("nurse", "Nurse {}"),
            ("prof", "Prof. {}"),
            ("endoscopist", "Endoscopist: {}"),
            ("signed", "Signed by: {}"),
            ("credential", "{}, MD"),
            ("referring", "Referring physician: {}"),
            ("cc", "cc: {}"),
        ]
        form, tpl = ctx[rng.integers(len(ctx))]
        if form in ("nurse", "credential") and n.islower():
            n = n.title()  # "Nurse {}" / "{}, MD" with a lower-case name is ambiguous with plain words
        items.append(("NAME", form, tpl, n))
        if rng.random() < 0.5:
            given, sur = EN_GIVEN[rng.integers(len(EN_GIVEN))], EN_SURNAME[rng.integers(len(EN_SURNAME))]
            items.append(("NAME_NO_CUE", "no-cue", "Seen together with {} today", _case(rng, f"{given} {sur}")))
        form, d = _en_date(rng)
        dctx = ["Date of procedure: {}", "Seen on {}", "DOB: {}", "Follow-up visit {}", "Procedure performed {}"]
        tpl = dctx[rng.integers(len(dctx))]
        if form == "ordinal":
            tpl = tpl.replace("{}", "the {}")
        items.append(("DATE", form, tpl, d))
        ids = [
            ("mrn", "MRN: {}", _digits(rng, 7)),
            ("mrn-letters", "MRN {}", f"A{_digits(rng, 6)}"),
            ("ssn", "SSN {}", f"{_digits(rng, 3)}-{_digits(rng, 2)}-{_digits(rng, 4)}"),
            ("ssn-bare", "({})", f"{_digits(rng, 3)}-{_digits(rng, 2)}-{_digits(rng, 4)}"),
            ("acct", "Acct {}", _digits(rng, 4)),
            ("account", "Account no. {}", _digits(rng, 5)),
            ("record", "Record no. {}", _digits(rng, 5)),
            ("medical-record", "Medical record number: {}", _digits(rng, 8)),
            ("accession", "Accession #: {}", f"S{rng.integers(20, 26)}-{_digits(rng, 5)}"),
            ("patient-id", "Patient ID: {}", f"P-{_digits(rng, 5)}"),
            ("unlabelled", "ref {}", _digits(rng, 9)),
            ("insurance", "Insurance ID: {}", f"XK{_digits(rng, 8)}"),
        ]
        form, tpl, v = ids[rng.integers(len(ids))]
        items.append(("ID", form, tpl, v))
        form, p = _phone(rng, False)
        items.append(("PHONE", form, ["Tel: {}", "Phone {}", "call {}", "Contact: {}", "Fax: {}"][rng.integers(5)], p))
        form, a = _en_address(rng)
        items.append(("ADDRESS", form, ["Address: {}", "Lives at {}", "Home address: {}"][rng.integers(3)], a))
        age = str(int(rng.integers(90, 106)))
        items.append(
            (
                "AGE",
                "age",
                ["A {}-year-old man", "{} year old woman", "age {}", "aged {}", "{} yo", "Age: {}", "{} y/o female"][
                    rng.integers(7)
                ],
                age,
            )
        )
    user = f"{['j', 'mary', 'pt', 'wl', 'kim'][rng.integers(5)]}{_digits(rng, 3)}"
    items.append(
        (
            "EMAIL",
            "email",
            ("邮箱：{}" if zh else "Email: {}"),
            f"{user}@{['example.com', 'hosp.org.cn', 'mail.example.net'][rng.integers(3)]}",
        )
    )
    if rng.random() < 0.5:
        items.append(
            (
                "URL",
                "url",
                ("见{}" if zh else "See {}"),
                ["https://portal.example.org/pt/", "http://www.hosp.example.cn/r?id=", "www.example.com/u/"][
                    rng.integers(3)
                ]
                + _digits(rng, 5),
            )
        )
    else:
        ip = ".".join(str(int(x)) for x in rng.integers(1, 255, 4))
        if rng.random() < 0.2:
            ip = ":".join(f"{int(x):x}" for x in rng.integers(1, 65535, 8))
        items.append(("IP", "ip", ("终端{}" if zh else "Workstation {}"), ip))
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def phi_report(rng: np.random.Generator, text: str, lang: str) -> tuple[str, list[PHI]]:
    """``text`` with PHI sentences inserted between its lines (and before/after it); the spans inserted."""
    zh = lang == "zh"
    lines = text.split("\n")
    slots: dict[int, list[tuple[str, str, str, str]]] = defaultdict(list)
    for it in _phi_items(rng, zh):
        slots[int(rng.integers(0, len(lines) + 1))].append(it)
    out, spans = "", []
    for k in range(len(lines) + 1):
        for cat, form, tpl, val in slots.get(k, []):
            pre, post = tpl.split("{}")
            start = len(out) + len(pre)
            out += pre + val + post + ("。" if zh else ".") + "\n"
            spans.append(PHI(cat, start, start + len(val), val, form))
        if k < len(lines):
            out += lines[k] + "\n"
    return out.rstrip("\n"), spans


_CLINICAL = re.compile(
    r"\d+(?:\.\d+)?\s*(?:[x×*]\s*\d+(?:\.\d+)?\s*)?(?:mm|cm|毫米|厘米)|0-I[a-cps]+|0-II[a-c]?|"
    r"BBPS\s*\d[/+]\d[/+]\d|\d+\s*(?:枚|个|polyps?)|距肛门\s*\d+"
)


def run(n: int, seed: int) -> dict[str, Any]:
    """The benchmark on ``n`` reports made with ``seed``."""
    from endoked.extract import create_extractor, process_batch
    from endoked.extract.deid import deidentify
    from endoked.extract.evaluate import evaluate
    from endoked.synth.reports import synth_reports

    rows = synth_reports(n, seed)
    rng = np.random.default_rng([seed, 77])
    caught: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    misses: list[dict[str, str]] = []
    kind_ok = Counter()
    fp_phi, fp_plain, lost = Counter(), Counter(), Counter()
    orig_rows, deid_rows = [], []
    t_deid = 0.0
    n_chars = 0
    for r in rows:
        text, spans = phi_report(rng, r["text"], r["lang"])
        t0 = time.process_time()
        d = deidentify(text)
        t_deid += time.process_time() - t0
        n_chars += len(text)
        covered = np.zeros(len(text) + 1, bool)
        kinds = [""] * (len(text) + 1)
        for rep in d.replacements:
            covered[rep.orig_start : rep.orig_end] = True
            for i in range(rep.orig_start, rep.orig_end):
                kinds[i] = rep.kind
        for sp in spans:
            cat = "NAME_NO_CUE" if sp.category == "NAME_NO_CUE" else sp.category
            ok = bool(covered[sp.start : sp.end].all()) and (len(sp.value) < 3 or sp.value not in d.text)
            c = caught[(cat, r["lang"])]
            c[0] += ok
            c[1] += 1
            if ok and kinds[sp.start] == ("NAME" if cat == "NAME_NO_CUE" else cat):
                kind_ok[(cat, r["lang"])] += 1
            if not ok and sum(m["category"] == cat for m in misses) < 10:
                misses.append(
                    {
                        "category": cat,
                        "lang": r["lang"],
                        "form": sp.form,
                        "value": sp.value,
                        "line": text[text.rfind("\n", 0, sp.start) + 1 : text.find("\n", sp.end)],
                    }
                )
        for rep in d.replacements:
            if not any(rep.orig_start < sp.end and sp.start < rep.orig_end for sp in spans):
                fp_phi[(rep.kind, text[rep.orig_start : rep.orig_end])] += 1
        for m in _CLINICAL.finditer(text):
            if covered[m.start() : m.end()].any():
                lost[m.group()] += 1
        plain = deidentify(r["text"])
        for rep in plain.replacements:
            fp_plain[(rep.kind, r["text"][rep.orig_start : rep.orig_end])] += 1
        d_path = deidentify(r["pathology"]).text if r["pathology"] else None
        base = {"lang": r["lang"], "labels": r["labels"]}
        orig_rows.append({"id": r["id"], "text": text, "pathology": r["pathology"], **base})
        deid_rows.append({"id": r["id"], "text": d.text, "pathology": d_path, **base})
    ex = create_extractor("rules")
    pred_plain = process_batch(rows, ex)
    pred_orig = process_batch(orig_rows, ex)
    pred_deid = process_batch(deid_rows, ex)
    keys = ("polyp", "polyp_count", "polyps", "malignancy_suspected", "pathology")
    changed = [o["id"] for o, dd in zip(pred_orig, pred_deid, strict=True) if any(o[k] != dd[k] for k in keys)]

    def acc(pred: list[dict[str, Any]], gold: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        rep = evaluate(gold, pred)["by_lang"]
        return {
            lang: {k: round(v, 4) for k, v in figs.items() if isinstance(v, float)}
            for lang, figs in rep.items()
            if lang != "all"
        }

    recall = {
        f"{cat}/{lang}": {
            "caught": c[0],
            "n": c[1],
            "recall": round(c[0] / c[1], 4),
            "placeholder_kind_matches": kind_ok[(cat, lang)],
        }
        for (cat, lang), c in sorted(caught.items())
    }
    return {
        "n_reports": n,
        "seed": seed,
        "n_phi_spans": sum(c[1] for c in caught.values()),
        "recall": recall,
        "misses": misses,
        "false_positives_on_phi_reports": sum(fp_phi.values()),
        "false_positive_examples": [f"{k}: {v!r} x{c}" for (k, v), c in fp_phi.most_common(15)],
        "false_positives_on_plain_reports": sum(fp_plain.values()),
        "plain_examples": [f"{k}: {v!r} x{c}" for (k, v), c in fp_plain.most_common(15)],
        "clinical_tokens_lost": sum(lost.values()),
        "lost_examples": lost.most_common(10),
        "labels_changed_by_deid": len(changed),
        "changed_ids": changed[:20],
        "accuracy_plain": acc(pred_plain, rows),
        "accuracy_phi": acc(pred_orig, orig_rows),
        "accuracy_deid": acc(pred_deid, deid_rows),
        "deid_reports_per_s_cpu": round(n / t_deid, 1),
        "mean_chars": round(n_chars / n, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="number of reports (>= 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--dev", default=None, help="a JSON Lines report set: list what is replaced in it")
    args = ap.parse_args(argv)
    result = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), **run(args.n, args.seed)}
    if args.dev:
        from endoked.extract.deid import deidentify
        from endoked.io import read_jsonl

        found = Counter()
        for row in read_jsonl(args.dev):
            for t in (row.get("text") or "", row.get("pathology") or ""):
                for rep in deidentify(t).replacements:
                    found[f"{rep.kind}: {t[rep.orig_start : rep.orig_end]!r}"] += 1
        result["dev_replacements"] = dict(found.most_common())
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
