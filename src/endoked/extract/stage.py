"""The extract stage of the pipeline: ``ingest/exams.parquet`` -> ``extract/labels.parquet`` +
``extract/labels.jsonl``.

Work is done in chunks of ``extract.chunk_size`` exams by the generic driver (:mod:`endoked.batching`);
each finished chunk is written atomically to ``extract/chunks/part-NNNNN.records.jsonl`` and reused when an
interrupted run resumes (the runner keeps the folder only when the inputs and config are unchanged).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from endoked import tables
from endoked.batching import BatchOutput, run_batches
from endoked.extract.api import Extractor, create_extractor, process_batch
from endoked.extract.batch import summarize
from endoked.extract.config import ExtractConfig
from endoked.io import write_jsonl, write_parquet_chunks
from endoked.pipeline import StageContext, StageResult, StageSpec

LABELS_SCHEMA = tables.spec("extract/labels").schema
RECORDS = "extract/records"  # the full record per exam (evidence spans, errors): a JSON stream, not a table


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "exam_id": str(row["id"]),
        "polyp": row.get("polyp"),
        "polyp_count": row.get("polyp_count"),
        "polyps": json.dumps(row.get("polyps") or [], ensure_ascii=False),
        "malignancy_suspected": row.get("malignancy_suspected"),
        "pathology": row.get("pathology"),
        "error": row.get("error"),
    }


def setup(cfg: ExtractConfig) -> Extractor:
    """The batch core's state: the configured backend."""
    return create_extractor(None, cfg)


def batch_core(cfg: ExtractConfig) -> Callable[[list[dict[str, Any]], Extractor], BatchOutput]:
    """``process_batch(exams, extractor)``: one full record (``extract/records``) per exam row, in order."""

    def process(rows: list[dict[str, Any]], extractor: Extractor) -> BatchOutput:
        return BatchOutput(tables={RECORDS: process_batch(rows, extractor, cfg)})

    return process


def run_extract(ctx: StageContext) -> StageResult:
    """Label every exam's report (see the module docstring)."""
    cfg = ctx.config.extract
    exams = tables.read_run(ctx.run, "ingest/exams").select(["exam_id", "report", "pathology"]).to_pylist()
    done = run_batches(
        exams,
        setup=lambda: setup(cfg),
        process_batch=batch_core(cfg),
        outputs=(RECORDS,),
        chunk_dir=ctx.work_dir / "chunks",
        run_root=ctx.run.root,
        chunk_size=cfg.chunk_size,
        desc="extract",
        progress=ctx.progress,
        unit="report",
        teardown=lambda ex: ex.close(),
        collect=False,
    )
    # streamed back from the chunk parts, one chunk in memory at a time; the table pass also counts
    write_jsonl(ctx.work_dir / "labels.jsonl", done.rows(RECORDS))
    summary: Counter[str] = Counter()

    def table_chunks() -> Iterator[list[dict[str, Any]]]:
        for chunk in done.chunk_rows(RECORDS):
            summary.update(summarize(chunk))
            yield [_table_row(r) for r in chunk]

    write_parquet_chunks(ctx.work_dir / "labels.parquet", table_chunks(), schema=LABELS_SCHEMA)
    counts: dict[str, Any] = {**summarize([]), **summary, "backend": cfg.backend, "chunks_reused": done.chunks_reused}
    ctx.logger.info("extract: %s", counts)
    return StageResult(
        outputs={
            "labels": ctx.run.rel(ctx.work_dir / "labels.parquet"),
            "labels_jsonl": ctx.run.rel(ctx.work_dir / "labels.jsonl"),
        },
        counts=counts,
    )


STAGE = StageSpec(name="extract", run=run_extract, depends=("ingest",), config_sections=("extract",))
