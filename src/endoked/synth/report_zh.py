"""Chinese report text rendered from sampled findings (see :mod:`endoked.synth.reports`)."""

from __future__ import annotations

import numpy as np

from endoked.synth import phrases as P
from endoked.synth.findings import Findings, PolypGroup
from endoked.synth.report_en import cm_text, pick

# morphology words that read naturally in front of 息肉; the others (山田/Paris types) go in their own clause
_ZH_PREFIX_MORPH = ("有蒂", "长蒂", "无蒂", "广基", "亚蒂", "平坦", "扁平隆起")


def _zh_size(rng: np.random.Generator, mm: int) -> str:
    r = rng.random()
    if r < 0.55:
        return f"{cm_text(mm)}cm"
    if r < 0.7:
        return f"{mm}mm"
    other = max(1, round(float(mm * rng.uniform(0.5, 0.9))))
    a, b = (other, mm) if rng.random() < 0.5 else (mm, other)
    return pick(rng, (f"{cm_text(a)}×{cm_text(b)}cm", f"{cm_text(a)}cm×{cm_text(b)}cm", f"{a}×{b}mm"))


def _zh_range(rng: np.random.Generator, lo: int, hi: int) -> str:
    return pick(rng, (f"{cm_text(lo)}-{cm_text(hi)}cm", f"{cm_text(lo)}～{cm_text(hi)}cm", f"{lo}-{hi}mm"))


def _zh_loc(rng: np.random.Generator, loc: str) -> str:
    return pick(rng, P.LOCATION_TEXT[loc][1])


def _zh_group(rng: np.random.Generator, g: PolypGroup, with_removal: bool) -> str:
    """One clause sequence describing a polyp group, ending with "。" (or "；" in list style)."""
    morph_word = pick(rng, P.MORPHOLOGY_TEXT[g.morphology][1]) if g.morphology != "unspecified" else ""
    if morph_word in _ZH_PREFIX_MORPH:
        prefix, clause = morph_word, ""
    else:
        prefix, clause = "", f"{morph_word}，" if morph_word else ""
    noun = "息肉样隆起" if rng.random() < 0.08 else "息肉"
    rem = pick(rng, P.REMOVAL_TEXT[g.removal][1]) if with_removal else ""
    where = "结肠" if g.location == "unspecified" else _zh_loc(rng, g.location)
    if g.location in ("rectum", "sigmoid") and rng.random() < 0.2:
        where = (
            f"距肛门约{int(rng.integers(5, 30))}cm{where}"
            if g.location == "sigmoid"
            else f"{where}距肛缘约{int(rng.integers(3, 12))}cm处"
        )
    end = f"{rem}。" if rem else "。"
    if g.n == 1:
        cnt = pick(rng, P.ZH_NUM[1])
        mm = g.sizes_mm[0]
        if mm is None:
            return pick(
                rng,
                (
                    f"{where}见{cnt}小{prefix}{noun}，{clause}{end}",
                    f"{where}可见{cnt}{prefix}{noun}，体积小，{clause}{end}",
                ),
            )
        size = _zh_size(rng, mm)
        return pick(
            rng,
            (
                f"{where}见{cnt}约{size}{prefix}{noun}，{clause}{end}",
                f"{where}可见{cnt}{prefix}{noun}，大小约{size}，{clause}{end}",
                f"于{where}见{cnt}{prefix}{noun}，直径约{size}，表面光滑，{clause}{end}",
                f"{where}：{size}{prefix}{noun}，{clause}{end}",
            ),
        ).replace("，。", "。")
    both = "均" if with_removal else ""
    if g.n is None:
        cnt = pick(rng, P.ZH_MULTI)
        size = _zh_range(rng, g.sizes_mm[0] or 2, g.sizes_mm[-1] or 4)
        text = pick(
            rng,
            (
                f"{where}见{cnt}{prefix}{noun}，大小{size}，{clause}{both}{end}",
                f"{where}可见{cnt}{size}{prefix}{noun}，{clause}{both}{end}",
            ),
        )
    else:
        cnt = pick(rng, P.ZH_NUM[g.n])
        known = [s for s in g.sizes_mm if s is not None]
        if not known:
            text = f"{where}见{cnt}小{prefix}{noun}，{clause}{both}{end}"
        elif len(set(known)) == 1:
            text = f"{where}见{cnt}{prefix}{noun}，大小均约{_zh_size(rng, known[0])}，{clause}{both}{end}"
        else:
            sizes = "、".join(_zh_size(rng, s) for s in known)
            text = f"{where}见{cnt}{prefix}{noun}，大小分别约{sizes}，{clause}{both}{end}"
    return text.replace("，。", "。").replace("，均。", "。")


def _zh_findings(rng: np.random.Generator, f: Findings) -> tuple[list[str], list[str]]:
    """Chinese findings sentences and diagnosis items."""
    out: list[str] = []
    diag: list[str] = []
    if f.history and rng.random() < 0.5:
        out.append(pick(rng, P.ZH_SCAR).format(loc=_zh_loc(rng, "sigmoid")))
    groups = f.groups
    joint = len(groups) > 1 and len({g.removal for g in groups}) == 1 and rng.random() < 0.4
    for g in groups:
        if f.malignant_polyp:
            size = _zh_size(rng, g.sizes_mm[0] or 25)
            loc = _zh_loc(rng, g.location)
            rem = pick(rng, P.REMOVAL_TEXT[g.removal][1])
            out.append(f"{loc}见一约{size}息肉，表面结构紊乱，中央凹陷，考虑癌变可能，{rem}。")
            diag.append(pick(rng, (f"{loc}息肉（癌变？）", f"{loc}息肉，癌变可能")))
        else:
            out.append(_zh_group(rng, g, not joint))
    if joint:
        out.append(f"以上息肉均{pick(rng, P.REMOVAL_TEXT[groups[0].removal][1])}。")
    if groups and not f.malignant_polyp:
        diag.append(_zh_polyp_diagnosis(rng, f))
    if f.category == "uncertain":
        loc = _zh_loc(rng, f.uncertain_location or "sigmoid")
        size = f"约{_zh_size(rng, f.uncertain_size_mm)}" if f.uncertain_size_mm else ""
        out.append(
            pick(
                rng,
                (
                    f"{loc}见一{size}小隆起，可疑息肉，反复观察考虑皱襞可能，未予处理。",
                    f"{loc}似见一{size}息肉样隆起，息肉待排。",
                    f"{loc}黏膜局部稍隆起，不除外小息肉，观察不清。",
                    f"{loc}见一{size}隆起，考虑息肉可能，未予处理。",
                ),
            )
        )
        diag.append(pick(rng, (f"{loc}可疑息肉", f"{loc}小隆起（息肉待排）", f"{loc}隆起性质待定（息肉？）")))
    if f.mass_location:
        loc = _zh_loc(rng, f.mass_location)
        size = f"大小约{f.mass_size_mm // 10}.0cm，" if f.mass_size_mm else ""
        kind = pick(rng, ("菜花样", "溃疡型", "不规则", "环周生长的"))
        frac = pick(rng, ("1/2", "2/3", "3/4", "1/3"))
        pieces = int(rng.integers(3, 9))
        out.append(f"{loc}见一{kind}肿物，{size}表面糜烂出血，占据肠腔约{frac}周，质脆，取活检{pieces}块。")
        diag.append(pick(rng, (f"{loc}占位，结肠癌可能", f"{loc}癌", f"{loc}恶性肿瘤？", f"{loc}新生物（癌？）")))
    for other in f.others:
        out.append(pick(rng, P.OTHER_TEXT[other][1]))
        diag.append(pick(rng, P.OTHER_TEXT[other][3]))
    lesion = bool(groups or f.mass_location or f.others or f.category == "uncertain")
    if not groups and f.category != "uncertain" and (not f.mass_location or rng.random() < 0.5):
        out.append(pick(rng, P.ZH_NO_POLYP_ONLY if f.mass_location else P.ZH_NO_POLYP))
    elif rng.random() < 0.5:
        out.append(pick(rng, P.ZH_NO_OTHER_POLYP))
    if rng.random() < 0.4:
        out.append(pick(rng, P.ZH_REMAINDER_NORMAL if lesion else P.ZH_NORMAL))
    if not diag:
        diag.append(
            pick(rng, ("结肠息肉切除术后，未见复发", "结肠息肉术后复查，未见异常"))
            if f.history
            else pick(rng, ("结肠镜检查未见明显异常", "全结肠未见异常", "大致正常结肠镜像"))
        )
    return out, diag


def _zh_polyp_diagnosis(rng: np.random.Generator, f: Findings) -> str:
    count = f.labels()["polyp_count"]
    removed = all(g.removed for g in f.groups)
    status = (
        pick(
            rng,
            ("（已切除）", "（EMR术后）" if any(g.removal == "emr" for g in f.groups) else "（已切除）", "，已切除"),
        )
        if removed
        else ""
    )
    if count is None:
        return pick(rng, ("结肠多发息肉", "结直肠多发息肉")) + status
    if count == 1 and f.groups[0].location != "unspecified":
        return f"{_zh_loc(rng, f.groups[0].location)}息肉{status}"
    return pick(rng, (f"结肠息肉{status}", f"结直肠息肉{status}", f"结肠息肉（{count}枚）{status}"))


def render_zh(rng: np.random.Generator, f: Findings) -> str:
    """Chinese report text for ``f``."""
    lines: list[str] = []
    if rng.random() < 0.5:
        lines.append(f"{pick(rng, ('检查指征', '临床诊断', '主诉'))}：{pick(rng, P.ZH_INDICATION)}")
    if f.history:
        lines.append(pick(rng, P.ZH_HISTORY).format(k=int(rng.integers(1, 6)), y=int(rng.integers(2012, 2024))))
    if rng.random() < 0.4:
        lines.append(pick(rng, ("无痛肠镜，静脉麻醉。", "麻醉：静脉麻醉。", "普通肠镜。")))
    if rng.random() < 0.7:
        lines.append(pick(rng, P.ZH_PREP).format(q=pick(rng, P.ZH_QUALITY), b=int(rng.integers(5, 10))))
    findings, diag = _zh_findings(rng, f)
    pre = []
    if rng.random() < 0.6:
        pre.append(pick(rng, P.ZH_EXTENT))
    if rng.random() < 0.4:
        findings.append(pick(rng, P.ZH_WITHDRAWAL).format(m=int(rng.integers(6, 16))))
    heads = (
        ("检查所见：", "诊断："),
        ("所见：", "内镜诊断："),
        ("镜下所见：", "镜下诊断："),
        ("【检查所见】", "【诊断】"),
    )
    fh, dh = heads[int(rng.integers(len(heads)))]
    lines.append(fh + "".join(pre + findings))
    if len(diag) > 1 and rng.random() < 0.7:
        lines.append(dh + " ".join(f"{i}.{d}" for i, d in enumerate(diag, 1)))
    else:
        lines.append(dh + "；".join(diag))
    if rng.random() < 0.5:
        years = int(rng.choice((1, 3, 5)))
        lines.append("建议：" + pick(rng, ("待病理回报。", f"{years}年后复查肠镜。", "定期复查。")))
    return "\n".join(lines)
