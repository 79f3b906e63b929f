"""Structured findings of a synthetic exam and their report labels.

An exam's findings are sampled first (what is in the colon), then rendered as report text
(:mod:`endoked.synth.reports`) and as frames (:mod:`endoked.synth.archive`). The labels derive from the
findings with the conventions of the report-label contract:

- ``polyp``: ``present`` when a polyp (any polypoid lesion, LST, inflammatory polyp) is a current finding;
  ``absent`` for normal exams, non-polyp findings, history only and a mass alone; ``uncertain`` for hedged
  findings (then ``polyp_count`` is null and ``polyps`` is empty: nothing was confirmed).
- ``polyp_count``: the number of polyps the text states; null when a group is described as "multiple",
  "several", "数枚", "多发".
- ``polyps``: one entry per described polyp; a group with an unstated count ("multiple 2-4 mm polyps") is one
  entry whose ``size_mm`` is the largest size stated. Every described polyp has its treatment stated, so
  ``removed`` is true or false.
- ``pathology``: the most advanced category among the pathology results given for this exam, else null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from endoked.extract import LOCATIONS as LABEL_LOCATIONS
from endoked.extract import PATHOLOGY_ORDER as LABEL_PATHOLOGIES

CATEGORIES: tuple[str, ...] = ("present", "absent", "history", "uncertain", "malignancy")
LOCATIONS: tuple[str, ...] = tuple(loc for loc in LABEL_LOCATIONS if loc != "unspecified")
"""The segments a synthetic finding is placed in: the report-label contract's locations, in its order."""
_LOC_WEIGHTS = np.array([8, 12, 4, 12, 3, 9, 18, 12, 4, 1.5, 1.5, 2.5, 1.0])
PATHOLOGY_RANK: tuple[str, ...] = LABEL_PATHOLOGIES
"""Pathologies, most advanced first (the report-label contract's order)."""
OTHER_FINDINGS: tuple[str, ...] = ("diverticula", "hemorrhoids", "colitis", "melanosis")


@dataclass(frozen=True)
class PolypGroup:
    """Polyps described together: one location, one morphology, one treatment.

    Attributes:
        n: number of polyps stated (1-3), or None for "multiple"/"数枚".
        location: contract location, or ``unspecified`` when the text names none.
        sizes_mm: one size per polyp when ``n`` is given (None when unstated); for ``n=None`` the
            ``(low, high)`` range.
        morphology: contract morphology (``unspecified`` when not stated).
        removal: a removal method key (see :mod:`endoked.synth.phrases`), or ``"none"`` when the text says the
            polyp was not removed.
    """

    n: int | None
    location: str
    sizes_mm: tuple[int | None, ...]
    morphology: str
    removal: str

    @property
    def removed(self) -> bool:
        """Whether the text states removal."""
        return self.removal != "none"


@dataclass
class Findings:
    """Everything a synthetic exam shows and its report states.

    Attributes:
        category: one of :data:`CATEGORIES`.
        groups: current polyps (empty unless polyps are present).
        others: non-polyp findings (:data:`OTHER_FINDINGS`).
        history: the text mentions a previous polypectomy.
        uncertain_location: location of a hedged possible polyp (``uncertain`` exams).
        uncertain_size_mm: its stated size, or None.
        mass_location: location of a mass suspicious for malignancy, or None.
        mass_size_mm: the mass's stated size, or None.
        malignant_polyp: a polyp itself is described as suspicious for malignancy.
        pathology: pathology result categories in the order they are reported (may be empty).
        shows_polyp: frames of this exam show a polyp (for ``uncertain`` exams: whether the doubtful lesion
            is really a polyp).
    """

    category: str
    groups: list[PolypGroup] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    history: bool = False
    uncertain_location: str | None = None
    uncertain_size_mm: int | None = None
    mass_location: str | None = None
    mass_size_mm: int | None = None
    malignant_polyp: bool = False
    pathology: list[str] = field(default_factory=list)
    shows_polyp: bool = False

    def labels(self) -> dict[str, Any]:
        """Report labels in the contract: polyp, polyp_count, polyps, malignancy_suspected, pathology."""
        polyps: list[dict[str, Any]] = []
        count: int | None = 0
        for g in self.groups:
            if g.n is None:
                count = None
                hi = g.sizes_mm[-1]
                polyps.append(_entry(g, hi))
            else:
                if count is not None:
                    count += g.n
                polyps.extend(_entry(g, s) for s in g.sizes_mm)
        if self.groups:
            status = "present"
        elif self.category == "uncertain":
            status, count = "uncertain", None
        else:
            status, count = "absent", 0
        best = min((PATHOLOGY_RANK.index(p) for p in self.pathology), default=None)
        return {
            "polyp": status,
            "polyp_count": count,
            "polyps": polyps,
            "malignancy_suspected": self.mass_location is not None or self.malignant_polyp,
            "pathology": None if best is None else PATHOLOGY_RANK[best],
        }


def _entry(g: PolypGroup, size: int | None) -> dict[str, Any]:
    return {
        "location": g.location,
        "size_mm": None if size is None else float(size),
        "morphology": g.morphology,
        "removed": g.removed,
    }


# ---------------------------------------------------------------------------------------------- sampling


def _location(rng: np.random.Generator, exclude: set[str] | None = None) -> str:
    w = _LOC_WEIGHTS.copy()
    if exclude:
        for i, loc in enumerate(LOCATIONS):
            if loc in exclude:
                w[i] = 0
    return str(rng.choice(LOCATIONS, p=w / w.sum()))


def _morphology(rng: np.random.Generator, size: int | None) -> str:
    big = size is not None and size >= 10
    p = [0.25, 0.3, 0.2, 0.25] if big else [0.05, 0.55, 0.12, 0.28]
    return str(rng.choice(("pedunculated", "sessile", "flat", "unspecified"), p=p))


def _size(rng: np.random.Generator, morphology: str | None = None) -> int:
    if morphology == "flat" and rng.random() < 0.5:
        return int(rng.integers(12, 41))
    if morphology == "pedunculated":
        return int(rng.integers(6, 26))
    return int(
        rng.choice(
            [2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20], p=[0.08, 0.16, 0.17, 0.15, 0.12, 0.09, 0.08, 0.06, 0.04, 0.03, 0.02]
        )
    )


def _removal(rng: np.random.Generator, size: int | None, morphology: str) -> str:
    if rng.random() < 0.1:
        return "none"
    if morphology == "pedunculated" or (size or 0) >= 15:
        return str(rng.choice(("hot_snare", "emr")))
    if (size or 0) <= 3 and rng.random() < 0.5:
        return "forceps"
    return str(rng.choice(("cold_snare", "cold_snare", "snare", "emr")))


def _polyp_groups(rng: np.random.Generator) -> list[PolypGroup]:
    r = rng.random()
    groups: list[PolypGroup] = []
    used: set[str] = set()
    if r < 0.12:  # "multiple" group, sometimes plus one described individually
        loc = _location(rng)
        lo = int(rng.integers(2, 5))
        hi = lo + int(rng.integers(1, 5))
        groups.append(
            PolypGroup(
                None,
                loc,
                (lo, hi),
                str(rng.choice(("sessile", "unspecified"), p=[0.4, 0.6])),
                str(rng.choice(("cold_snare", "forceps", "none"), p=[0.5, 0.35, 0.15])),
            )
        )
        used.add(loc)
        if rng.random() < 0.3:
            groups.append(_single_group(rng, 1, used))
        return groups
    total = int(rng.choice((1, 2, 3), p=(0.55, 0.28, 0.17)))
    while total > 0:
        n = 2 if total >= 2 and rng.random() < 0.3 else 1
        groups.append(_single_group(rng, n, used))
        used.add(groups[-1].location)
        total -= n
    return groups


def _single_group(rng: np.random.Generator, n: int, used: set[str]) -> PolypGroup:
    loc = "unspecified" if rng.random() < 0.05 else _location(rng, used)
    morph = _morphology(rng, None)
    sizes: list[int | None] = []
    stated = rng.random() > 0.08
    for _ in range(n):
        sizes.append(_size(rng, morph) if stated else None)
    if morph == "unspecified" and sizes[0] is not None:
        morph = _morphology(rng, sizes[0]) if rng.random() < 0.3 else morph
    return PolypGroup(n, loc, tuple(sizes), morph, _removal(rng, max((s or 0) for s in sizes), morph))


def _pathology_for_polyps(rng: np.random.Generator, groups: list[PolypGroup]) -> list[str]:
    out = []
    for g in groups:
        if g.removed or rng.random() < 0.5:
            out.append(
                str(
                    rng.choice(
                        ("adenoma", "hyperplastic", "sessile_serrated", "inflammatory"), p=(0.6, 0.2, 0.13, 0.07)
                    )
                )
            )
    return out


def sample_findings(
    rng: np.random.Generator, category: str, *, pathology_rate: float = 0.6, uncertain_shows_polyp: float = 0.5
) -> Findings:
    """Sample the findings of one exam of ``category`` (one of :data:`CATEGORIES`)."""
    f = Findings(category=category)
    if rng.random() < 0.3:
        f.others = sorted({str(x) for x in rng.choice(OTHER_FINDINGS, size=int(rng.integers(1, 3)))})
    if category == "present":
        f.groups = _polyp_groups(rng)
        f.history = rng.random() < 0.12
        f.shows_polyp = True
        if rng.random() < pathology_rate:
            f.pathology = _pathology_for_polyps(rng, f.groups)
    elif category == "absent":
        if rng.random() < 0.5:
            f.others = sorted({str(x) for x in rng.choice(OTHER_FINDINGS, size=int(rng.integers(1, 3)))})
        if "colitis" in f.others and rng.random() < 0.5:
            f.pathology = ["other"]
    elif category == "history":
        f.history = True
    elif category == "uncertain":
        f.uncertain_location = _location(rng)
        f.uncertain_size_mm = int(rng.integers(2, 6)) if rng.random() < 0.6 else None
        f.shows_polyp = rng.random() < uncertain_shows_polyp
    elif category == "malignancy":
        if rng.random() < 0.2:  # a polyp that itself looks malignant
            size = int(rng.integers(20, 45))
            morph = str(rng.choice(("sessile", "flat", "unspecified")))
            f.groups = [PolypGroup(1, _location(rng), (size,), morph, str(rng.choice(("emr", "none"))))]
            f.malignant_polyp = True
            f.shows_polyp = True
        else:
            f.mass_location = _location(rng, {"ileum", "appendiceal_orifice", "anastomosis"})
            f.mass_size_mm = int(rng.integers(2, 7)) * 10 if rng.random() < 0.7 else None
            if rng.random() < 0.3:
                f.groups = _polyp_groups(rng)
                f.shows_polyp = True
        if rng.random() < pathology_rate:
            f.pathology = ["adenocarcinoma"] + (_pathology_for_polyps(rng, f.groups) if rng.random() < 0.5 else [])
    else:
        raise ValueError(f"unknown exam category {category!r}; valid: {', '.join(CATEGORIES)}")
    return f


def plan_categories(n: int, fractions: dict[str, float], seed: int) -> list[str]:
    """Assign a category to each of ``n`` exams: counts follow ``fractions`` (largest remainder), order shuffled
    deterministically from ``seed``."""
    total = sum(fractions.get(c, 0.0) for c in CATEGORIES)
    if total <= 0:
        raise ValueError("category fractions must not all be zero")
    exact = np.array([fractions.get(c, 0.0) / total * n for c in CATEGORIES])
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - int(counts.sum())]:
        counts[i] += 1
    cats = [c for c, k in zip(CATEGORIES, counts, strict=True) for _ in range(int(k))]
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return [cats[i] for i in order]
