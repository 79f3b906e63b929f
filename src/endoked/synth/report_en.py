"""English report text rendered from sampled findings (see :mod:`endoked.synth.reports`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from endoked.synth import phrases as P
from endoked.synth.findings import Findings, PolypGroup


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def cm_text(mm: int) -> str:
    """``mm`` as centimetres with one decimal ("0.6", "1.0")."""
    return f"{mm / 10:.1f}"


# ------------------------------------------------------------------------------------------------ English


def _en_size(rng: np.random.Generator, mm: int) -> str:
    r = rng.random()
    if r < 0.45:
        return pick(rng, (f"{mm} mm", f"{mm}mm", f"approximately {mm} mm", f"about {mm} mm"))
    if r < 0.7:
        cm = cm_text(mm) if mm % 10 or rng.random() < 0.5 else str(mm // 10)
        return pick(rng, (f"{cm} cm", f"{cm}cm", f"approximately {cm} cm"))
    other = max(1, round(float(mm * rng.uniform(0.5, 0.9))))
    a, b = (other, mm) if rng.random() < 0.5 else (mm, other)
    if rng.random() < 0.6:
        return pick(rng, (f"{a} x {b} mm", f"{a}x{b}mm", f"{a} × {b} mm"))
    return f"{cm_text(a)} x {cm_text(b)} cm"


def _en_range(rng: np.random.Generator, lo: int, hi: int) -> str:
    return pick(
        rng,
        (
            f"{lo}-{hi} mm",
            f"{lo} to {hi} mm",
            f"up to {hi} mm",
            f"{cm_text(lo)}-{cm_text(hi)} cm",
            f"ranging from {lo} to {hi} mm",
            f"{lo}-{hi}mm",
        ),
    )


def _an(word: str) -> str:
    first = word.split(" ", 1)[0].lower()
    vowel = first[:1] in ("a", "e", "i", "o", "u") or first.startswith(("8", "11", "18"))
    return "an" if vowel else "a"


def _en_loc(rng: np.random.Generator, loc: str) -> str:
    return pick(rng, P.LOCATION_TEXT[loc][0])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _en_group(rng: np.random.Generator, g: PolypGroup, with_removal: bool) -> str:
    """One sentence describing a polyp group (with its treatment unless ``with_removal`` is false)."""
    morph = pick(rng, P.MORPHOLOGY_TEXT[g.morphology][0]) + " " if g.morphology != "unspecified" else ""
    noun = "polypoid lesion" if rng.random() < 0.1 else "polyp"
    rem = pick(rng, P.REMOVAL_TEXT[g.removal][0])
    where = "" if g.location == "unspecified" else _en_loc(rng, g.location)
    in_loc = f" in the {where}" if where else ""
    options: list[str]
    if g.n == 1:
        known = g.sizes_mm[0] is not None
        size = _en_size(rng, g.sizes_mm[0]) if g.sizes_mm[0] is not None else pick(rng, ("small", "diminutive"))
        desc = f"{size} {morph}{noun}"
        a_desc = f"{_an(desc)} {desc}"
        bare = f"{morph}{noun}"
        if with_removal:
            options = [f"{_cap(a_desc)} was found{in_loc} and {rem}.", f"Found {a_desc}{in_loc}. It was {rem}."]
            if where:
                options += [f"In the {where}, there was {a_desc}, which was {rem}.", f"{_cap(where)}: {desc}, {rem}."]
            if known:
                options.append(f"There was {_an(bare)} {bare}{in_loc} measuring {size}; it was {rem}.")
        else:
            options = [f"{_cap(a_desc)} was seen{in_loc}.", f"There was {a_desc}{in_loc}."]
            if where:
                options.append(f"{_cap(where)}: {desc}.")
        return pick(rng, options)
    plural = noun + "s"
    if g.n is None:
        count = pick(rng, P.EN_MULTI)
        sizes = _en_range(rng, g.sizes_mm[0] or 2, g.sizes_mm[-1] or 4)
    else:
        count = pick(rng, P.EN_NUM[g.n])
        known_sizes = [s for s in g.sizes_mm if s is not None]
        if not known_sizes:
            sizes = ""
        elif len(set(known_sizes)) == 1:
            sizes = f"each {_en_size(rng, known_sizes[0])}"
        else:
            parts = [_en_size(rng, s) for s in known_sizes]
            sizes = ", ".join(parts[:-1]) + " and " + parts[-1]
    rem_all = f", all {rem}" if with_removal else ""
    paren = f" ({sizes})" if sizes else ""
    comma = f", {sizes}" if sizes else ""
    options = [
        f"{_cap(count)} {morph}{plural}{paren} were found{in_loc}{rem_all}.",
        f"{_cap(count)} {morph}{plural}{in_loc}{comma}{rem_all}.",
    ]
    if where:
        options.append(f"In the {where}, there were {count} {morph}{plural}{paren}{rem_all}.")
    return pick(rng, options)


def _en_findings(rng: np.random.Generator, f: Findings) -> tuple[list[str], list[str]]:
    """English findings sentences and impression lines."""
    out: list[str] = []
    imp: list[str] = []
    if f.history and rng.random() < 0.5:
        out.append(pick(rng, P.EN_SCAR).format(loc=_en_loc(rng, "sigmoid")))
    groups = f.groups
    joint = len(groups) > 1 and len({g.removal for g in groups}) == 1 and rng.random() < 0.4
    for g in groups:
        if f.malignant_polyp:
            desc = _en_size(rng, g.sizes_mm[0] or 25)
            rem = pick(rng, P.REMOVAL_TEXT[g.removal][0])
            out.append(
                f"In the {_en_loc(rng, g.location)} there was {_an(desc)} {desc} polyp with a depressed "
                f"centre and irregular surface pattern, suspicious for malignancy; it was {rem}."
            )
            imp.append(pick(rng, ("Large polyp suspicious for malignancy.", "Malignant-appearing polyp.")))
        else:
            out.append(_en_group(rng, g, not joint))
    if joint:
        out.append(f"All polyps were {pick(rng, P.REMOVAL_TEXT[groups[0].removal][0])}.")
    if groups and not f.malignant_polyp:
        imp.append(_en_polyp_impression(rng, f))
    if f.category == "uncertain":
        loc = _en_loc(rng, f.uncertain_location or "sigmoid")
        size = f"{_en_size(rng, f.uncertain_size_mm)} " if f.uncertain_size_mm else "small "
        out.append(
            pick(
                rng,
                (
                    f"A possible {size}polyp versus prominent fold was seen in the {loc}; it could not be confirmed "
                    "on re-inspection.",
                    f"Questionable {size}polypoid lesion in the {loc}, likely a fold; not removed.",
                    f"Subtle mucosal elevation in the {loc}, suspicious for a small flat polyp vs. normal fold.",
                    f"In the {loc}, an equivocal ?polyp was seen briefly during withdrawal - not confirmed.",
                ),
            )
        )
        imp.append(
            pick(
                rng,
                (
                    f"Possible polyp vs fold in the {loc}.",
                    f"Equivocal {loc} lesion - possible polyp.",
                    f"Questionable small polyp in the {loc}.",
                ),
            )
        )
    if f.mass_location:
        loc = _en_loc(rng, f.mass_location)
        size = f", measuring about {f.mass_size_mm // 10} cm" if f.mass_size_mm else ""
        kind = pick(
            rng, ("fungating", "ulcerated", "circumferential, friable", "large ulcerated, partially obstructing")
        )
        out.append(
            f"A {kind} mass was found in the {loc}{size}. "
            + pick(
                rng,
                (
                    "Multiple biopsies were taken.",
                    "Biopsies obtained; the area was tattooed.",
                    "Cold forceps biopsies x6.",
                ),
            )
        )
        imp.append(
            pick(
                rng,
                (
                    f"{loc[0].upper() + loc[1:]} mass, suspicious for malignancy.",
                    f"Mass in the {loc} - likely colon cancer; biopsied.",
                    f"Malignant-appearing tumor in the {loc}.",
                ),
            )
        )
    for other in f.others:
        out.append(pick(rng, P.OTHER_TEXT[other][0]))
        imp.append(pick(rng, P.OTHER_TEXT[other][2]))
    lesion = bool(groups or f.mass_location or f.others or f.category == "uncertain")
    if not groups and f.category != "uncertain" and (not f.mass_location or rng.random() < 0.5):
        out.append(pick(rng, P.EN_NO_POLYP_ONLY if f.mass_location else P.EN_NO_POLYP))
    elif rng.random() < 0.5:
        out.append(pick(rng, P.EN_NO_OTHER_POLYP))
    if rng.random() < 0.4:
        out.append(pick(rng, P.EN_REMAINDER_NORMAL if lesion else P.EN_NORMAL))
    if not imp:
        imp.append(pick(rng, ("Normal colonoscopy.", "Normal colonoscopy to the cecum.", "No polyps.")))
        if f.history:
            imp[-1] = pick(
                rng,
                (
                    "Surveillance after polypectomy; no recurrence.",
                    "History of colonic polyps. No polyps on this exam.",
                ),
            )
    return out, imp


def _en_polyp_impression(rng: np.random.Generator, f: Findings) -> str:
    labels_count = f.labels()["polyp_count"]
    removed = all(g.removed for g in f.groups)
    action = pick(rng, ("removed", "resected", "s/p polypectomy")) if removed else "biopsied/removed"
    if labels_count is None:
        return pick(rng, (f"Multiple colonic polyps, {action}.", f"Several polyps, {action}."))
    plural = labels_count > 1
    noun = "polyps" if plural else "polyp"
    if rng.random() < 0.5:
        count = pick(rng, P.EN_NUM_CAP[labels_count]) if labels_count in P.EN_NUM_CAP else str(labels_count)
        return f"{count} colonic {noun}, {action}."
    return f"Colonic {noun}, {action}." if rng.random() < 0.5 else f"Colorectal {noun} ({action})."


def render_en(rng: np.random.Generator, f: Findings) -> str:
    """English report text for ``f``."""
    lines: list[str] = []
    if rng.random() < 0.7:
        ind = (
            pick(rng, ("surveillance after polypectomy",))
            if f.history and rng.random() < 0.5
            else pick(rng, P.EN_INDICATION)
        )
        lines.append(f"{pick(rng, ('Indication', 'INDICATION', 'Reason for exam'))}: {ind}.")
    if f.history:
        lines.append(pick(rng, P.EN_HISTORY).format(y=int(rng.integers(2012, 2024))))
    boiler = []
    if rng.random() < 0.7:
        boiler.append(pick(rng, P.EN_PREP).format(q=pick(rng, P.EN_QUALITY), b=int(rng.integers(6, 10))))
    if rng.random() < 0.6:
        boiler.append(pick(rng, P.EN_EXTENT))
    if rng.random() < 0.4:
        boiler.append(pick(rng, P.EN_WITHDRAWAL).format(m=int(rng.integers(6, 16))))
    findings, imp = _en_findings(rng, f)
    heads = (("Findings:", "Impression:"), ("FINDINGS:", "IMPRESSION:"), ("Description:", "Diagnosis:"), ("", ""))
    fh, ih = heads[int(rng.integers(len(heads)))]
    sep = "\n" if rng.random() < 0.4 else " "
    lines.extend(boiler)
    lines.append((fh + (sep if fh else "")) + sep.join(findings))
    if ih or rng.random() < 0.5:
        lines.append(f"{ih or 'Impression:'} " + " ".join(imp))
    if rng.random() < 0.5:
        lines.append(
            pick(
                rng,
                (
                    "Recommendation: repeat colonoscopy in {y} years.",
                    "Plan: await pathology.",
                    "Recommendations: follow up in clinic; repeat colonoscopy in {y} years.",
                ),
            ).format(y=int(rng.choice((3, 5, 10))))
        )
    return "\n".join(lines)
