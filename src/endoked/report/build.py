"""Build ``RUN/report.html``: overview, config and environment, then one section per finished stage.

Every stage section is optional: the report shows what the run folder holds. Images are embedded as data
URIs, so the file can be mailed or opened offline.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from endoked import __version__, reviewed, tables
from endoked.health import run_warnings
from endoked.imaging import read_mask
from endoked.io import atomic_write_text, read_jsonl
from endoked.report.exams import DEFAULT_MAX_EXAMS, write_exam_pages
from endoked.report.figures import file_data_uri, overlay, png_data_uri, score_histogram
from endoked.runfolder import RunFolder
from endoked.scoring import Truth, load_truth, score_run

logger = logging.getLogger(__name__)
Block = dict[str, Any]

SECTION_TITLES = {
    "ingest": "Ingest",
    "extract": "Report labels",
    "mil": "MIL image scores",
    "cam": "CAM boxes",
    "prompt_seg": "Pseudo masks",
    "seg": "Segmentation",
    "eval": "Evaluation",
}


def _done(run: RunFolder, stage: str) -> bool:
    entry = run.entry(stage)
    return bool(entry and entry.get("status") == "done")


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else round(v, 4)
    return v


def _shown(v: Any) -> Any:
    """What the page prints for a value: ``None`` as an em dash, never the word "None"."""
    return "—" if v is None else v


def highlight(text: str, spans: list[tuple[int, int, str]]) -> Markup:
    """HTML of ``text`` with non-overlapping ``(start, end, field)`` spans wrapped in ``<mark>``."""
    out, pos = [], 0
    for start, end, field in sorted(spans):
        if start < pos or end <= start or end > len(text):
            continue
        out.append(html.escape(text[pos:start]))
        cls = field if field in ("polyp", "negated", "size", "location", "morphology", "pathology") else "other"
        out.append(f'<mark class="f-{cls}" title="{html.escape(field)}">{html.escape(text[start:end])}</mark>')
        pos = end
    out.append(html.escape(text[pos:]))
    return Markup("".join(out))


def _evidence_spans(evidence: Any, source: str = "text") -> list[tuple[int, int, str]]:
    """Collect ``(start, end, field)`` from an evidence structure: a mapping field -> span(s), where a span is
    ``[start, end]`` or ``{"start", "end", "src"}``, possibly nested in lists or per-polyp dicts.

    Only spans into ``source`` are kept: ``"text"`` (the report; also spans without ``src``) or
    ``"pathology"`` (the exam's pathology text, whose offsets do not point into the report).
    """
    spans: list[tuple[int, int, str]] = []

    def walk(node: Any, field: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("start"), int) and isinstance(node.get("end"), int):
                if str(node.get("src", "text")) == source:
                    spans.append((node["start"], node["end"], str(node.get("field", field))))
                return
            for k, v in node.items():
                walk(v, k if field in ("", "polyps") or k in SPAN_FIELDS else field)
        elif isinstance(node, list | tuple):
            if len(node) == 2 and all(isinstance(x, int) for x in node):
                if source == "text":
                    spans.append((node[0], node[1], field))
            else:
                for v in node:
                    walk(v, field)

    walk(evidence, "")
    return spans


SPAN_FIELDS = {
    "polyp",
    "negated",
    "size",
    "size_mm",
    "location",
    "morphology",
    "pathology",
    "removed",
    "polyp_count",
    "malignancy_suspected",
}


def _ingest_section(run: RunFolder) -> list[Block]:
    rejects = read_jsonl(run.output("ingest", "rejects"))
    codes = Counter((r["code"], r["level"], r["severity"]) for r in rejects)
    blocks: list[Block] = []
    if rejects:
        blocks.append(
            {
                "kind": "table",
                "title": "Rejects by reason",
                "header": ["code", "level", "severity", "count"],
                "rows": [[c, lv, sv, n] for (c, lv, sv), n in codes.most_common()],
            }
        )
        first = [[r["source"], r["exam_id"] or "", r["image"] or "", r["message"]] for r in rejects[:15]]
        blocks.append(
            {"kind": "table", "title": "First rejects", "header": ["source", "exam", "image", "message"], "rows": first}
        )
    else:
        blocks.append({"kind": "text", "text": "Every exam and image passed validation."})
    return blocks


def _extract_section(run: RunFolder) -> list[Block]:
    labels = tables.rows(run, "extract/labels")
    status = Counter(r["polyp"] for r in labels)
    path_counts = Counter(r.get("pathology") or "none" for r in labels)
    blocks: list[Block] = [
        {"kind": "table", "title": "Polyp status", "header": ["polyp", "exams"], "rows": sorted(status.items())},
        {"kind": "table", "title": "Pathology", "header": ["pathology", "exams"], "rows": path_counts.most_common()},
    ]
    errors = [r for r in labels if r.get("error")]
    if errors:
        blocks.append(
            {
                "kind": "table",
                "title": "Extraction errors",
                "header": ["exam", "error"],
                "rows": [[r["exam_id"], r["error"]] for r in errors[:20]],
            }
        )
    exams = {str(r["exam_id"]): r for r in tables.rows(run, "ingest/exams")}
    try:
        rich = read_jsonl(run.output("extract", "labels_jsonl"))
    except Exception:  # an older run without the JSONL output
        rich = []
    picked: list[dict[str, Any]] = []
    seen_status: Counter[str | None] = Counter()
    for rec in rich:
        st = rec.get("polyp")
        if seen_status[st] >= 2 or rec.get("error"):
            continue
        seen_status[st] += 1
        exam_id = str(rec.get("id", rec.get("exam_id")))
        picked.append({"exam_id": exam_id, **_report_entry(rec, exams.get(exam_id, {}))})
    if picked:
        blocks.append({"kind": "reports", "title": "Examples with evidence spans highlighted", "entries": picked})
    return blocks


def _report_entry(rec: dict[str, Any], exam: dict[str, Any]) -> dict[str, Any]:
    """A report's labels, its text and its pathology text, each with the evidence spans that point into it."""
    evidence = rec.get("evidence") or {}
    pathology_text = exam.get("pathology") or ""
    lang = evidence.get("lang") if isinstance(evidence, dict) else None
    return {
        "polyp": rec.get("polyp"),
        "count": rec.get("polyp_count"),
        "pathology": rec.get("pathology"),
        "lang": lang if isinstance(lang, str) else "",
        "html": highlight(exam.get("report") or "", _evidence_spans(evidence, "text")),
        "pathology_html": highlight(pathology_text, _evidence_spans(evidence, "pathology")) if pathology_text else "",
    }


def _gallery(
    run: RunFolder, rows: list[dict[str, Any]], caption: Any, boxes: dict[tuple[str, str], list[list[float]]]
) -> list[dict[str, str]]:
    paths = tables.image_paths(run)
    out = []
    for r in rows:
        key = (str(r["exam_id"]), str(r["image"]))
        if key not in paths:
            continue
        out.append(
            {"uri": png_data_uri(overlay(paths[key], boxes=boxes.get(key, []), side=160)), "caption": caption(r)}
        )
    return out


def _boxes_by_image(run: RunFolder) -> dict[tuple[str, str], list[list[float]]]:
    boxes: dict[tuple[str, str], list[list[float]]] = {}
    if _done(run, "cam"):
        for b in tables.boxes(run):
            boxes.setdefault((b["exam_id"], b["image"]), []).append([b["x0"], b["y0"], b["x1"], b["y1"]])
    return boxes


def _mil_section(run: RunFolder, max_figures: int) -> list[Block]:
    rows = tables.rows(run, "mil/image_scores")
    names: dict[Any, str] = {1: "positive bags", 0: "negative bags", -1: "excluded (uncertain)"}
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get("score") is not None:
            groups.setdefault(names.get(r.get("bag_label"), str(r.get("bag_label"))), []).append(float(r["score"]))
    blocks: list[Block] = [
        {"kind": "image", "title": "Image scores by bag label", "uri": score_histogram(groups, "MIL image scores")}
    ]
    entry = run.entry("mil") or {}
    if "metrics" in entry.get("outputs", {}):
        metrics = json.loads(run.output("mil", "metrics").read_text())
        flat = [[k, _fmt(v)] for k, v in metrics.items() if not isinstance(v, dict | list)]
        blocks.append({"kind": "table", "title": "Training metrics", "header": ["metric", "value"], "rows": flat})
    if "selection" in entry.get("outputs", {}):
        sel = tables.selection(run)
        c = Counter(int(r["label"]) for r in sel)
        blocks.append(
            {
                "kind": "table",
                "title": "Selection for the CAM stage",
                "header": ["label", "images"],
                "rows": [["positive", c.get(1, 0)], ["negative", c.get(0, 0)]],
            }
        )
    scored = sorted((r for r in rows if r.get("score") is not None), key=lambda r: -float(r["score"]))
    n = max(1, max_figures // 2)
    label: dict[Any, str] = {1: "positive bag", 0: "negative bag", -1: "uncertain"}

    def cap(r: dict[str, Any]) -> str:
        return f"{r['exam_id']}/{r['image']} · {float(r['score']):.2f} · {label.get(r.get('bag_label'), '?')}"

    if scored:
        boxes = _boxes_by_image(run)
        blocks.append(
            {
                "kind": "grid",
                "title": "Top-scored images",
                "legend": "highest MIL image scores · yellow: CAM box",
                "figures": _gallery(run, scored[:n], cap, boxes),
            }
        )
        blocks.append(
            {
                "kind": "grid",
                "title": "Bottom-scored images",
                "legend": "lowest MIL image scores",
                "figures": _gallery(run, scored[-n:][::-1], cap, boxes),
            }
        )
    return blocks


def _cam_section(run: RunFolder) -> list[Block]:
    blocks: list[Block] = []
    boxes = tables.boxes(run)
    blocks.append(
        {"kind": "text", "text": f"{len(boxes)} boxes on {len({(b['exam_id'], b['image']) for b in boxes})} images."}
    )
    entry = run.entry("cam") or {}
    if "dropped" in entry.get("outputs", {}):
        dropped = tables.rows(run, "cam/dropped")
        reasons = Counter(r["reason"] for r in dropped)
        blocks.append(
            {
                "kind": "table",
                "title": "Images dropped by the box filters",
                "header": ["reason", "images"],
                "rows": reasons.most_common(),
            }
        )
    return blocks


def _pseudo_section(run: RunFolder, truth: Truth | None, max_figures: int) -> list[Block]:
    rows = tables.pseudo_labels(run)
    paths = tables.image_paths(run)
    boxes = _boxes_by_image(run)
    figures = []
    for r in rows[:max_figures]:
        key = (r["exam_id"], r["image"])
        mask = read_mask(run.abs(r["mask"]))
        gt = truth.mask(*key) if truth else None
        img = overlay(paths[key], mask=mask, boxes=boxes.get(key, []), truth=gt)
        cap = f"{r['exam_id']}/{r['image']}"
        if r.get("score") is not None:
            cap += f" · score {float(r['score']):.2f}"
        figures.append({"uri": png_data_uri(img), "caption": cap})
    legend = "yellow: CAM box · green: pseudo mask" + (" · red: true mask" if truth else "")
    blocks: list[Block] = [
        {"kind": "text", "text": f"{len(rows)} images received a pseudo mask."},
        {"kind": "grid", "title": "Samples", "legend": legend, "figures": figures},
    ]
    entry = run.entry("prompt_seg") or {}
    if "rejected" in entry.get("outputs", {}):
        rejected = tables.rows(run, "prompt_seg/rejected")
        if rejected:
            reasons = Counter(str(r["reason"]) for r in rejected)
            blocks.append(
                {
                    "kind": "table",
                    "title": f"Rejected masks ({len(rejected)} images)",
                    "header": ["reason", "images"],
                    "rows": reasons.most_common(),
                }
            )
            blocks.append(
                {
                    "kind": "grid",
                    "title": "Rejected images",
                    "legend": "yellow: CAM box; the caption gives the filter that rejected the mask",
                    "figures": _gallery(
                        run, rejected[:max_figures], lambda r: f"{r['exam_id']}/{r['image']} · {r['reason']}", boxes
                    ),
                }
            )
        else:
            blocks.append({"kind": "text", "text": "No mask was rejected by the filters."})
    pngs = sorted((run.root / "prompt_seg").glob("overlays/*.png"))[:max_figures]
    if pngs:
        blocks.append(
            {
                "kind": "grid",
                "title": "CAM overlays",
                "legend": "written by the prompt-seg stage",
                "figures": [{"uri": file_data_uri(p), "caption": p.stem} for p in pngs],
            }
        )
    return blocks


def _seg_section(run: RunFolder) -> list[Block]:
    blocks: list[Block] = []
    metrics = json.loads(run.output("seg", "metrics").read_text())
    rounds = [r for r in metrics.get("rounds") or [] if isinstance(r, dict)]
    if rounds:
        blocks.append(
            {
                "kind": "table",
                "title": "Training rounds",
                "header": ["round", "pseudo masks", "polyp-free", "train", "validation", "best epoch", "best val"],
                "rows": [
                    [
                        i,
                        r.get("n_pool"),
                        r.get("n_negatives"),
                        r.get("n_train"),
                        r.get("n_val"),
                        r.get("best_epoch"),
                        ", ".join(f"{k}={_fmt(v)}" for k, v in (r.get("best_val") or {}).items()) or "not validated",
                    ]
                    for i, r in enumerate(rounds)
                ],
            }
        )
    refine = [r for r in metrics.get("pseudo_label_rounds") or [] if isinstance(r, dict)]
    if refine:
        keys = [k for k in refine[0] if not isinstance(refine[0][k], dict | list)]
        blocks.append(
            {
                "kind": "table",
                "title": "Refinement rounds (pseudo labels)",
                "header": keys,
                "rows": [[_fmt(r.get(k)) for k in keys] for r in refine],
            }
        )
    for png in sorted((run.root / "seg").glob("*.png"))[:6]:
        blocks.append({"kind": "image", "title": png.stem.replace("_", " "), "uri": file_data_uri(png)})
    return blocks


def _eval_section(run: RunFolder) -> list[Block]:
    from endoked.eval import REPORT_COLUMNS as COLUMNS

    metrics = json.loads(run.output("eval", "metrics").read_text())
    if metrics.get("skipped"):
        return [{"kind": "text", "text": f"Not evaluated: {metrics['skipped']}."}]
    blocks: list[Block] = [{"kind": "text", "text": f"Test sets from {metrics.get('data')}."}]
    results = [r for r in metrics.get("results") or [] if isinstance(r, dict)]
    if results:
        with_method = any(r.get("method") for r in results)
        header = ["set", *(["method"] if with_method else []), "n", *(h for _, h in COLUMNS)]
        rows = []
        for r in results:
            m = r.get("metrics") or {}
            rows.append(
                [
                    r.get("set"),
                    *([r.get("method")] if with_method else []),
                    m.get("n"),
                    *(_fmt(m.get(k)) for k, _ in COLUMNS),
                ]
            )
        blocks.append({"kind": "table", "title": "Metrics per test set", "header": header, "rows": rows})
    else:
        blocks.append({"kind": "text", "text": "No test set was scored."})
    for png in sorted((run.root / "eval" / "plots").glob("*.png"))[:12]:
        blocks.append({"kind": "image", "title": png.stem.replace("_", " "), "uri": file_data_uri(png)})
    return blocks


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _review_section(run: RunFolder) -> list[Block]:
    """How many labels reviewers decided and how often they agreed with the machine (and with each other)."""
    machine = tables.labels_by_exam(run) if _done(run, "extract") else {}
    s = reviewed.summary(run.root, machine, mask_reader=read_mask)
    if not s["decisions"]:
        return [{"kind": "text", "text": "No reviewer decision yet (endoked review RUN)."}]
    rows = [
        ["decisions recorded", s["decisions"]],
        ["reviewers", ", ".join(s["reviewers"])],
        ["images reviewed", s["images_reviewed"]],
        ["accepted / rejected / fixed", f"{s['accepted']} / {s['rejected']} / {s['fixed']}"],
        ["agreement with the machine (accepted / reviewed)", _pct(s["machine_agreement"])],
        ["mean Dice of fixed masks against the automatic ones", _fmt(s["fix_dice"]) if s["fix_dice"] else "n/a"],
        ["exams with corrected report fields", s["exams_corrected"]],
        ["report fields changed by a correction", s["fields_changed"]],
        ["images reviewed by several reviewers", s["images_multi_reviewer"]],
        ["agreement between reviewers", _pct(s["reviewer_agreement"])],
    ]
    return [
        {
            "kind": "text",
            "text": "Reviewed labels outrank the automatic ones in the next run's refinement and in export; "
            "corrected report fields become the mil stage's bag labels.",
        },
        {"kind": "table", "title": "Reviewer decisions", "header": ["", "value"], "rows": rows},
    ]


def _stage_pngs_and_metrics(run: RunFolder, stage: str) -> list[Block]:
    """PNGs and flat ``metrics*.json`` figures of a stage the report has no own section builder for."""
    blocks: list[Block] = []
    folder = run.root / stage
    for png in sorted(folder.glob("*.png"))[:6]:
        blocks.append({"kind": "image", "title": png.stem.replace("_", " "), "uri": file_data_uri(png)})
    for js in sorted(folder.glob("metrics*.json"))[:3]:
        data = json.loads(js.read_text())
        flat = [[k, _fmt(v)] for k, v in data.items() if not isinstance(v, dict | list)]
        if flat:
            blocks.append({"kind": "table", "title": js.name, "header": ["metric", "value"], "rows": flat})
    return blocks


def build_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    max_figures: int = 12,
    max_exams: int = DEFAULT_MAX_EXAMS,
) -> Path:
    """Write the run's HTML report (default ``RUN/report.html``) and return its path.

    Up to ``max_exams`` exams also get a page of their own in ``exams/`` next to the report (see
    :mod:`endoked.report.exams`); 0 writes none.
    """
    run = RunFolder(run_dir)
    ledger = run.ledger()["stages"]
    env = json.loads((run.root / "env.json").read_text()) if (run.root / "env.json").is_file() else {}
    config_yaml = run.config_path.read_text() if run.config_path.is_file() else ""
    import yaml

    cfg = yaml.safe_load(config_yaml) or {}
    archive = (cfg.get("ingest") or {}).get("archive")
    truth = load_truth(archive) if archive and Path(archive).exists() else None
    stages = [
        {
            "name": name,
            "status": e.get("status", "?"),
            "seconds": float(e.get("seconds", 0.0) or 0.0),
            "counts": ", ".join(
                f"{k}={_fmt(_shown(v))}" for k, v in e.get("counts", {}).items() if not isinstance(v, dict | list)
            ),
            "error": e.get("error") if e.get("status") == "failed" else None,
        }
        for name, e in ledger.items()
    ]
    sections: list[dict[str, Any]] = [
        {"id": "overview", "title": "Overview"},
        {"id": "environment", "title": "Environment"},
    ]
    builders = {
        "ingest": lambda: _ingest_section(run),
        "extract": lambda: _extract_section(run),
        "mil": lambda: _mil_section(run, max_figures),
        "cam": lambda: _cam_section(run),
        "prompt_seg": lambda: _pseudo_section(run, truth, max_figures),
        "seg": lambda: _seg_section(run),
        "eval": lambda: _eval_section(run),
    }
    for stage in ledger:
        entry = ledger[stage]
        if entry.get("status") == "failed":
            blocks: list[Block] = [{"kind": "failure", "text": str(entry.get("error") or "no message recorded")}]
        elif not _done(run, stage):
            continue
        else:
            try:
                blocks = builders[stage]() if stage in builders else _stage_pngs_and_metrics(run, stage)
            except Exception as exc:  # a report must never take a finished run down with it
                logger.warning("report: section %s skipped (%s: %s)", stage, type(exc).__name__, exc)
                blocks = [{"kind": "text", "text": f"This section could not be rendered: {exc}"}]
        sections.append({"id": stage, "title": SECTION_TITLES.get(stage, stage), "blocks": blocks})
    try:
        warnings = [str(w) for w in run_warnings(run, archive if truth else None)]
    except Exception as exc:  # warnings are advice; a run folder they cannot read still gets its report
        logger.warning("report: warnings skipped (%s: %s)", type(exc).__name__, exc)
        warnings = []
    scores = (
        {k: {m: _fmt(v) for m, v in vals.items()} for k, vals in score_run(run, archive).items()}
        if archive and truth
        else {}
    )
    env_rows = {
        "profile": cfg.get("profile", "?"),
        "seed": env.get("seed"),
        "device": env.get("device"),
        "endoked": env.get("endoked"),
        "python": env.get("python"),
        "git": env.get("git_sha"),
        "platform": env.get("platform"),
        "packages": ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v),
    }
    jenv = Environment(
        loader=PackageLoader("endoked.report", "."),
        autoescape=select_autoescape(["html", "j2"]),
        finalize=_shown,
    )
    dest = Path(out) if out else run.root / "report.html"
    try:
        exam_blocks = write_exam_pages(
            run,
            dest.parent,
            jenv.get_template("exam.html.j2").render,
            dest.name,
            truth=truth,
            max_exams=max_exams,
            report_entry=_report_entry,
        )
    except Exception as exc:  # a report must never take a finished run down with it
        logger.warning("report: exam pages skipped (%s: %s)", type(exc).__name__, exc)
        exam_blocks = [{"kind": "text", "text": f"The exam pages could not be written: {exc}"}]
    if exam_blocks:
        sections.append({"id": "exams", "title": "Exams", "blocks": exam_blocks})
    if reviewed.db_path(run.root).is_file():
        try:
            review_blocks = _review_section(run)
        except Exception as exc:  # a report must never take a finished run down with it
            logger.warning("report: review section skipped (%s: %s)", type(exc).__name__, exc)
            review_blocks = [{"kind": "text", "text": f"This section could not be rendered: {exc}"}]
        sections.append({"id": "review", "title": "Review", "blocks": review_blocks})
    page = jenv.get_template("template.html.j2").render(
        run_name=run.root.name,
        run_path=str(run.root),
        env=env_rows,
        config_yaml=config_yaml,
        stages=stages,
        sections=sections,
        scores=scores,
        warnings=warnings,
        version=__version__,
        generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    atomic_write_text(dest, page)
    return dest
