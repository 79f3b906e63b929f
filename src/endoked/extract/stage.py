"""The extract stage of the pipeline: ``ingest/exams.parquet`` -> ``extract/labels.parquet`` +
``extract/labels.jsonl``.

Work is done in chunks of ``extract.chunk_size`` exams; each finished chunk is written atomically to
``extract/chunks/part-NNNNN.jsonl`` and reused when an interrupted run resumes (the runner keeps the
folder only when the inputs and config are unchanged).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from endoked import tables
from endoked.errors import StageError
from endoked.extract.api import create_extractor, process_batch
from endoked.extract.batch import summarize
from endoked.io import read_jsonl, read_parquet, write_jsonl, write_parquet
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.progress import bar

LABELS_SCHEMA = tables.spec("extract/labels").schema


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"exam_id": str(row["id"]), "polyp": row.get("polyp"), "polyp_count": row.get("polyp_count"),
            "polyps": json.dumps(row.get("polyps") or [], ensure_ascii=False),
            "malignancy_suspected": row.get("malignancy_suspected"), "pathology": row.get("pathology"),
            "error": row.get("error")}


def _load_chunk(path: Path, ids: list[str]) -> list[dict[str, Any]] | None:
    """A finished chunk file, if it exists and holds exactly these exams in order."""
    if not path.is_file():
        return None
    try:
        rows = read_jsonl(path)
    except (OSError, ValueError):
        return None
    return rows if [str(r.get("id")) for r in rows] == ids else None


def _run_chunks(exams: list[dict[str, Any]], extractor: Any, cfg: Any, chunk_dir: Path,
                progress: bool) -> tuple[list[dict[str, Any]], int]:
    results: list[dict[str, Any]] = []
    reused = 0
    with bar(len(exams), desc="extract", unit="report", enabled=progress) as pb:
        for k, i in enumerate(range(0, len(exams), cfg.chunk_size)):
            chunk = exams[i:i + cfg.chunk_size]
            ids = [str(e["exam_id"]) for e in chunk]
            part = chunk_dir / f"part-{k:05d}.jsonl"
            done = _load_chunk(part, ids)
            if done is None:
                done = process_batch(chunk, extractor, cfg)
                write_jsonl(part, done)
            else:
                reused += 1
            results.extend(done)
            pb.update(len(chunk))
    return results, reused


def run_extract(ctx: StageContext) -> StageResult:
    """Label every exam's report (see the module docstring)."""
    cfg = ctx.config.extract
    exams_path = ctx.upstream("ingest", "exams")
    table = read_parquet(exams_path)
    missing = {"exam_id", "report"} - set(table.column_names)
    if missing:
        raise StageError(f"{exams_path} lacks column(s) {sorted(missing)}; re-run ingest")
    cols = ["exam_id", "report"] + (["pathology"] if "pathology" in table.column_names else [])
    exams = table.select(cols).to_pylist()
    extractor = create_extractor(None, cfg)
    try:
        results, reused = _run_chunks(exams, extractor, cfg, ctx.work_dir / "chunks", ctx.progress)
    finally:
        extractor.close()
    write_jsonl(ctx.work_dir / "labels.jsonl", results)
    write_parquet(ctx.work_dir / "labels.parquet", [_table_row(r) for r in results], schema=LABELS_SCHEMA)
    counts: dict[str, Any] = {**summarize(results), "backend": cfg.backend, "chunks_reused": reused}
    ctx.logger.info("extract: %s", counts)
    return StageResult(outputs={"labels": ctx.run.rel(ctx.work_dir / "labels.parquet"),
                                "labels_jsonl": ctx.run.rel(ctx.work_dir / "labels.jsonl")},
                       counts=counts)


STAGE = StageSpec(name="extract", run=run_extract, depends=("ingest",), config_sections=("extract",))
