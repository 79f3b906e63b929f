"""File-level driver: read report rows, label them in chunks with a progress bar, write JSONL."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from endoked.extract.api import create_extractor, process_batch
from endoked.extract.config import ExtractConfig
from endoked.extract.reports_io import iter_report_rows
from endoked.io import write_jsonl
from endoked.progress import bar

logger = logging.getLogger(__name__)


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Counts of an output (one pass, so a stream will do): n, present/absent/uncertain, errors."""
    c: Counter[str] = Counter()
    n = errors = 0
    for r in rows:
        n += 1
        if r.get("error"):
            errors += 1
        else:
            c[str(r.get("polyp"))] += 1
    return {"n": n, "present": c["present"], "absent": c["absent"], "uncertain": c["uncertain"], "errors": errors}


def extract_file(
    inp: str | Path, out: str | Path, config: ExtractConfig | None = None, progress: bool | None = None
) -> dict[str, int]:
    """Label every row of ``inp`` and write ``out`` (JSONL, one line per input row, atomically).

    Returns:
        The counts of :func:`summarize`.
    """
    config = config or ExtractConfig()
    extractor = create_extractor(None, config)
    rows = list(iter_report_rows(inp))
    results: list[dict[str, Any]] = []
    step = max(1, min(config.chunk_size, 256))
    try:
        with bar(len(rows), desc="extract", unit="report", enabled=progress) as pb:
            for i in range(0, len(rows), step):
                chunk = rows[i : i + step]
                results.extend(process_batch(chunk, extractor, config))
                pb.update(len(chunk))
    finally:
        extractor.close()
    write_jsonl(out, results)
    summary = summarize(results)
    logger.info("extract: %s", summary)
    return summary
