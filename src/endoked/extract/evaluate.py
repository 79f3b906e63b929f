"""Scoring predicted report labels against gold labels, per language.

Fields and how they are scored (one row per report; a missing or failed prediction is wrong on every
field):

- ``polyp``: accuracy, plus the 3x3 confusion matrix (rows gold, columns predicted; "error" column for
  failed or missing rows).
- ``polyp_count``: exact match (null == null counts as a match).
- ``location``: micro F1 over the multiset of polyp locations per report.
- ``morphology``: micro F1 over the multiset of polyp morphologies per report.
- ``size``: the largest ``size_mm`` per report within 1 mm, over reports where gold or prediction states
  a size (both null is not counted).
- ``malignancy_suspected`` and ``pathology``: accuracy (null == null for pathology).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from endoked.extract.schema import CONTRACT_KEYS, POLYP_STATUS
from endoked.extract.text import detect_lang

FIELDS: tuple[str, ...] = (
    "polyp",
    "polyp_count",
    "location_f1",
    "size_within_1mm",
    "malignancy_suspected",
    "pathology",
    "morphology_f1",
)


def gold_labels(row: Mapping[str, Any]) -> dict[str, Any]:
    """The gold label dict of a gold row: ``row["gold"]``, ``row["labels"]`` or the row itself."""
    for key in ("gold", "labels"):
        if isinstance(row.get(key), Mapping):
            return dict(row[key])
    return {k: row.get(k) for k in CONTRACT_KEYS}


def row_id(row: Mapping[str, Any]) -> str:
    """The id of a row as a string (``id`` or ``exam_id``)."""
    return str(row.get("id", row.get("exam_id")))


def row_lang(row: Mapping[str, Any]) -> str:
    """Language of a gold row: its ``lang`` key, else detected from its text, else "all"."""
    lang = row.get("lang")
    if isinstance(lang, str) and lang:
        return lang
    text = row.get("text", row.get("report"))
    return detect_lang(text) if isinstance(text, str) and text.strip() else "unknown"


def max_size(polyps: Any) -> float | None:
    """Largest stated ``size_mm`` of a polyp list (None when none is stated)."""
    sizes = [p.get("size_mm") for p in polyps or [] if isinstance(p, Mapping)]
    nums = [float(s) for s in sizes if isinstance(s, int | float) and not isinstance(s, bool)]
    return max(nums) if nums else None


def _multiset(polyps: Any, key: str) -> Counter[str]:
    return Counter(str(p.get(key)) for p in polyps or [] if isinstance(p, Mapping))


@dataclass
class _Acc:
    n: int = 0
    polyp: int = 0
    count: int = 0
    malignancy: int = 0
    pathology: int = 0
    size_hit: int = 0
    size_n: int = 0
    errors: int = 0
    loc: list[int] = field(default_factory=lambda: [0, 0, 0])  # tp, fp, fn
    morph: list[int] = field(default_factory=lambda: [0, 0, 0])
    confusion: dict[str, Counter[str]] = field(default_factory=dict)

    def f1(self, c: list[int]) -> float | None:
        tp, fp, fn = c
        if tp + fp + fn == 0:
            return None
        return 2 * tp / (2 * tp + fp + fn)

    def summary(self) -> dict[str, Any]:
        n = max(self.n, 1)
        return {
            "n": self.n,
            "errors": self.errors,
            "polyp": self.polyp / n,
            "polyp_count": self.count / n,
            "location_f1": self.f1(self.loc),
            "size_within_1mm": self.size_hit / self.size_n if self.size_n else None,
            "size_n": self.size_n,
            "malignancy_suspected": self.malignancy / n,
            "pathology": self.pathology / n,
            "morphology_f1": self.f1(self.morph),
            "polyp_confusion": {g: dict(c) for g, c in sorted(self.confusion.items())},
        }


def _f1_update(c: list[int], gold: Counter[str], pred: Counter[str]) -> None:
    tp = sum((gold & pred).values())
    c[0] += tp
    c[1] += sum(pred.values()) - tp
    c[2] += sum(gold.values()) - tp


def evaluate(
    gold_rows: Iterable[Mapping[str, Any]], pred_rows: Iterable[Mapping[str, Any]], max_disagreements: int = 1000
) -> dict[str, Any]:
    """Score predictions against gold labels.

    Args:
        gold_rows: rows with an id, optional ``lang``/``text`` and the gold labels (see :func:`gold_labels`).
        pred_rows: output rows of ``endoked extract`` (id, contract keys, optional ``error``).
        max_disagreements: cap on the listed disagreements.

    Returns:
        ``{"by_lang": {lang: summary, ..., "all": summary}, "disagreements": [...], "missing": [...]}``.
    """
    preds = {row_id(r): r for r in pred_rows}
    accs: dict[str, _Acc] = {}
    disagreements: list[dict[str, Any]] = []
    missing: list[str] = []
    for grow in gold_rows:
        rid = row_id(grow)
        gold = gold_labels(grow)
        lang = row_lang(grow)
        pred = preds.get(rid)
        if pred is None:
            missing.append(rid)
        failed = pred is None or bool(pred.get("error"))
        p = {} if failed or pred is None else pred
        for acc in (accs.setdefault(lang, _Acc()), accs.setdefault("all", _Acc())):
            acc.n += 1
            acc.errors += int(failed)
            g_status = str(gold.get("polyp"))
            acc.confusion.setdefault(g_status, Counter())[str(p.get("polyp")) if not failed else "error"] += 1
            acc.polyp += int(not failed and p.get("polyp") == gold.get("polyp"))
            acc.count += int(not failed and p.get("polyp_count") == gold.get("polyp_count"))
            acc.malignancy += int(not failed and p.get("malignancy_suspected") == gold.get("malignancy_suspected"))
            acc.pathology += int(not failed and p.get("pathology") == gold.get("pathology"))
            gs, ps = max_size(gold.get("polyps")), max_size(p.get("polyps"))
            if gs is not None or ps is not None:
                acc.size_n += 1
                acc.size_hit += int(gs is not None and ps is not None and abs(gs - ps) <= 1.0)
            _f1_update(acc.loc, _multiset(gold.get("polyps"), "location"), _multiset(p.get("polyps"), "location"))
            _f1_update(acc.morph, _multiset(gold.get("polyps"), "morphology"), _multiset(p.get("polyps"), "morphology"))
        if len(disagreements) < max_disagreements:
            disagreements.extend(_disagreements(rid, lang, gold, p, failed, pred))
    return {
        "by_lang": {k: accs[k].summary() for k in sorted(accs, key=lambda k: (k == "all", k))},
        "disagreements": disagreements[:max_disagreements],
        "missing": missing,
    }


def _disagreements(
    rid: str, lang: str, gold: Mapping[str, Any], p: Mapping[str, Any], failed: bool, pred: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    if failed:
        return [
            {
                "id": rid,
                "lang": lang,
                "field": "error",
                "gold": None,
                "pred": (pred or {}).get("error", "missing prediction"),
            }
        ]
    out = []
    for key in ("polyp", "polyp_count", "malignancy_suspected", "pathology"):
        if p.get(key) != gold.get(key):
            out.append({"id": rid, "lang": lang, "field": key, "gold": gold.get(key), "pred": p.get(key)})
    if _multiset(gold.get("polyps"), "location") != _multiset(p.get("polyps"), "location"):
        out.append(
            {
                "id": rid,
                "lang": lang,
                "field": "locations",
                "gold": sorted(_multiset(gold.get("polyps"), "location").elements()),
                "pred": sorted(_multiset(p.get("polyps"), "location").elements()),
            }
        )
    gs, ps = max_size(gold.get("polyps")), max_size(p.get("polyps"))
    if (gs is not None or ps is not None) and (gs is None or ps is None or abs(gs - ps) > 1.0):
        out.append({"id": rid, "lang": lang, "field": "max_size_mm", "gold": gs, "pred": ps})
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def figures_table(
    by_lang: Mapping[str, Mapping[str, Any]], title: str = "field", rows: Sequence[tuple[str, str]] | None = None
) -> list[str]:
    """Markdown lines of one table: a row per figure (``rows``: ``(key, label)``; default every figure by its
    key), a column per language in ``by_lang``'s order (:func:`evaluate` puts ``all`` last)."""
    langs = list(by_lang)
    rows = rows if rows is not None else [(k, k) for k in ("n", "errors", *FIELDS)]
    lines = [f"| {title} | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    for key, label in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(by_lang[lg].get(key)) for lg in langs) + " |")
    return lines


def to_markdown(report: Mapping[str, Any]) -> str:
    """A Markdown rendering: per-language table, polyp confusion matrices, disagreements."""
    by_lang = report["by_lang"]
    langs = list(by_lang)
    lines = figures_table(by_lang)
    for lg in langs:
        conf = by_lang[lg]["polyp_confusion"]
        cols = [*POLYP_STATUS, "error"]
        lines += [
            "",
            f"polyp confusion ({lg}; rows gold, columns predicted):",
            "",
            "| gold \\ pred | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for g in POLYP_STATUS:
            row = conf.get(g, {})
            lines.append(f"| {g} | " + " | ".join(str(row.get(c, 0)) for c in cols) + " |")
    dis = report.get("disagreements", [])
    lines += ["", f"disagreements: {len(dis)}"]
    if dis:
        lines += ["", "| id | lang | field | gold | pred |", "|---|---|---|---|---|"]
        lines += [f"| {d['id']} | {d['lang']} | {d['field']} | {d['gold']} | {d['pred']} |" for d in dis]
    if report.get("missing"):
        lines += ["", f"missing predictions: {', '.join(report['missing'][:50])}"]
    return "\n".join(lines) + "\n"
