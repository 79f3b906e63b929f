"""Synthetic colonoscopy reports (English and Chinese) with their gold labels.

An exam's findings are sampled (:mod:`endoked.synth.findings`), then rendered compositionally in one language
(:mod:`endoked.synth.report_en`, :mod:`endoked.synth.report_zh`): several sentence templates per finding type,
synonyms, optional section headers and boilerplate. The pathology result, when there is one, goes to the
separate ``pathology`` text or is appended to the report. Labels follow the report-label contract exactly
(see :mod:`endoked.synth.findings` for the conventions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from endoked.synth import phrases as P
from endoked.synth.findings import CATEGORIES, Findings, plan_categories, sample_findings
from endoked.synth.report_en import pick, render_en
from endoked.synth.report_zh import render_zh

LANGS: tuple[str, ...] = ("en", "zh")
DEFAULT_FRACTIONS: dict[str, float] = {
    "present": 0.45,
    "absent": 0.3,
    "history": 0.1,
    "uncertain": 0.07,
    "malignancy": 0.08,
}
_REPORT_STREAM = 0  # sub-stream of the per-exam seed used for findings and text


@dataclass(frozen=True)
class ExamReport:
    """One exam's report and truth.

    Attributes:
        findings: what the exam shows (drives the frames too).
        lang: ``en`` or ``zh``.
        text: the report text.
        pathology: the separate pathology text, or None (it may be inside ``text`` instead).
        labels: the contract labels (polyp, polyp_count, polyps, malignancy_suspected, pathology).
    """

    findings: Findings
    lang: str
    text: str
    pathology: str | None
    labels: dict[str, Any]


def _pathology_text(rng: np.random.Generator, f: Findings, lang: str) -> str:
    zh = lang == "zh"
    locs = [g.location for g in f.groups]
    if f.mass_location:
        locs = [f.mass_location, *locs]
    items = []
    for i, cat in enumerate(f.pathology):
        phrase = pick(rng, P.PATHOLOGY_TEXT[cat][1 if zh else 0])
        loc = locs[i] if i < len(locs) and locs[i] != "unspecified" and rng.random() < 0.6 else None
        if loc:
            name = pick(rng, P.LOCATION_TEXT[loc][1 if zh else 0])
            phrase = f"（{name}）{phrase}" if zh else f"{name}: {phrase}"
        items.append(phrase)
    if len(items) == 1:
        return items[0] + ("。" if zh else ".")
    if zh:
        return "；".join(f"{i}.{t}" for i, t in enumerate(items, 1)) + "。"
    return "; ".join(f"({i}) {t}" for i, t in enumerate(items, 1)) + "."


def render_exam_report(
    rng: np.random.Generator,
    category: str,
    lang: str,
    *,
    pathology_rate: float = 0.6,
    pathology_in_report: float = 0.3,
    uncertain_shows_polyp: float = 0.5,
) -> ExamReport:
    """Sample one exam of ``category`` and render its report in ``lang``.

    Args:
        rng: the exam's generator (everything random is drawn from it).
        category: one of ``present``, ``absent``, ``history``, ``uncertain``, ``malignancy``.
        lang: ``en`` or ``zh``.
        pathology_rate: probability that an exam with a biopsy or removal has a pathology result.
        pathology_in_report: probability that the result is appended to the report instead of given as
            separate pathology text.
        uncertain_shows_polyp: probability that a hedged lesion is really a polyp on the frames.
    """
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}; valid: {', '.join(LANGS)}")
    f = sample_findings(rng, category, pathology_rate=pathology_rate, uncertain_shows_polyp=uncertain_shows_polyp)
    text = render_en(rng, f) if lang == "en" else render_zh(rng, f)
    pathology = None
    if f.pathology:
        ptext = _pathology_text(rng, f, lang)
        if rng.random() < pathology_in_report:
            head = (
                pick(rng, ("病理：", "病理结果：", "【病理】"))
                if lang == "zh"
                else pick(rng, ("Pathology: ", "PATHOLOGY: ", "Path: ", "Pathology (addendum): "))
            )
            text = f"{text}\n{head}{ptext}"
        else:
            pathology = ptext
    return ExamReport(findings=f, lang=lang, text=text, pathology=pathology, labels=f.labels())


def exam_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of exam ``index`` for one purpose (``stream``: 0 report, 1 frames), from ``seed``."""
    return np.random.default_rng([seed, index, stream])


def choose_lang(seed: int, index: int, langs: Sequence[str]) -> str:
    """The report language of exam ``index`` (uniform over ``langs``, deterministic)."""
    return langs[int(np.random.default_rng([seed, index, 2]).integers(len(langs)))]


def synth_reports(
    n: int, seed: int, langs: Sequence[str] = LANGS, fractions: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """Synthetic reports with gold labels (no images), fast enough for tens of thousands.

    The i-th row is the report of exam i of a synthetic archive made with the same seed, languages and
    fractions.

    Args:
        n: number of reports.
        seed: seed; the same arguments always give the same rows.
        langs: report languages, each exam picks one uniformly (``en``, ``zh``).
        fractions: share of each exam category (defaults: :data:`DEFAULT_FRACTIONS`).

    Returns:
        Rows ``{"id", "text", "pathology" (str | None), "lang", "labels", "category"}`` where ``labels`` holds
        exactly the contract keys polyp, polyp_count, polyps, malignancy_suspected, pathology.
    """
    langs = tuple(langs)
    bad = [x for x in langs if x not in LANGS]
    if not langs or bad:
        raise ValueError(f"langs must be a non-empty subset of {LANGS}, got {langs!r}")
    cats = plan_categories(n, dict(fractions or DEFAULT_FRACTIONS), seed)
    width = max(5, len(str(n)))
    rows = []
    for i, cat in enumerate(cats):
        rep = render_exam_report(exam_rng(seed, i, _REPORT_STREAM), cat, choose_lang(seed, i, langs))
        rows.append(
            {
                "id": f"E{i + 1:0{width}d}",
                "text": rep.text,
                "pathology": rep.pathology,
                "lang": rep.lang,
                "labels": rep.labels,
                "category": cat,
            }
        )
    return rows


__all__ = [
    "CATEGORIES",
    "DEFAULT_FRACTIONS",
    "LANGS",
    "ExamReport",
    "choose_lang",
    "exam_rng",
    "render_exam_report",
    "synth_reports",
]
