"""Ingest an archive into ``exams.parquet``, ``images.parquet`` and ``rejects.jsonl``.

Streaming and resumable: rows are read one at a time and processed in chunks of ``chunk_size`` exams;
each finished chunk is written as part files under ``<out>/parts/`` (the ``.done`` marker is written last),
so an interrupted ingest re-run skips finished chunks. Images are checked in a process pool. Memory holds
one chunk plus the exam-id set (for duplicate detection), never the whole archive.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from endoked import tables
from endoked.batching import BatchOutput, given, run_batches
from endoked.executors import current_executor
from endoked.ingest.archive import Archive, RawExam, iter_archive, locate_archive
from endoked.ingest.config import IngestConfig
from endoked.ingest.images import ImageCheck, check_image
from endoked.ingest.reasons import Reject
from endoked.ingest.validate import ExamDraft, meta_json, validate_row
from endoked.io import atomic_path, atomic_write_text, read_jsonl, write_jsonl, write_parquet
from endoked.progress import bar
from endoked.workerpool import process_pool

logger = logging.getLogger(__name__)

EXAMS_SCHEMA = tables.spec("ingest/exams").schema
IMAGES_SCHEMA = tables.spec("ingest/images").schema
IMAGE_CHECKS = "ingest/image_checks"  # a JSON record stream of the driver's chunks, not a run-folder table
CHECK_CHUNK = 256  # images per resumable chunk of image checks


@dataclass
class IngestSummary:
    """Counts of an ingest run."""

    exams_ok: int = 0
    exams_rejected: int = 0
    images_ok: int = 0
    images_rejected: int = 0
    warnings: int = 0
    duplicate_images: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    chunks_reused: int = 0

    def as_counts(self) -> dict[str, Any]:
        return {
            "exams": self.exams_ok,
            "exams_rejected": self.exams_rejected,
            "images": self.images_ok,
            "images_rejected": self.images_rejected,
            "warnings": self.warnings,
            "duplicate_images": self.duplicate_images,
            "reasons": dict(sorted(self.reasons.items())),
            "chunks_reused": self.chunks_reused,
        }


def _chunks(rows: Iterator[RawExam], size: int) -> Iterator[list[RawExam]]:
    while batch := list(islice(rows, size)):
        yield batch


def _part(parts: Path, kind: str, k: int, ext: str) -> Path:
    return parts / f"{kind}-{k:06d}.{ext}"


def _finish_exams(
    drafts: list[ExamDraft], checks: dict[str, ImageCheck], rejects: list[Reject]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    exams: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for d in drafts:
        valid = []
        for task in d.images:
            chk = checks[task.path]
            if chk.code is None:
                valid.append(
                    {
                        "exam_id": d.exam_id,
                        "image": task.image,
                        "path": task.path,
                        "width": chk.width,
                        "height": chk.height,
                        "format": chk.format,
                        "sha256": chk.sha256,
                        "bytes": chk.bytes,
                    }
                )
            else:
                rejects.append(
                    Reject(
                        chk.code,
                        f"{d.source}: exam {d.exam_id}: {chk.message}",
                        d.source,
                        d.row,
                        d.exam_id,
                        task.image,
                        "image",
                    )
                )
        if not valid:
            rejects.append(
                Reject(
                    "no_valid_images",
                    f"{d.source}: exam {d.exam_id}: none of its {d.n_listed} images is valid",
                    d.source,
                    d.row,
                    d.exam_id,
                )
            )
            continue
        images.extend(valid)
        exams.append(
            {
                "exam_id": d.exam_id,
                "report": d.report,
                "pathology": d.pathology,
                "n_images": d.n_listed,
                "n_valid_images": len(valid),
                "report_encoding": d.report_encoding,
                "report_truncated": d.report_truncated,
                "meta": meta_json(d.meta),
                "row": d.row,
                "source": d.source,
            }
        )
    return exams, images


def _chunk_intact(parts: Path, k: int) -> bool:
    """True when every part file of finished chunk ``k`` reads back (a crash or a full disk can leave a
    truncated file beside its ``.done`` marker)."""
    try:
        for kind in ("exams", "images"):
            pq.read_metadata(_part(parts, kind, k, "parquet"))
        for kind in ("rejects", "ids"):
            read_jsonl(_part(parts, kind, k, "jsonl"))
    except (OSError, ValueError, pa.ArrowException):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False
    return True


def _load_finished(parts: Path, seen_ids: dict[str, int]) -> set[int]:
    """Chunks with a .done marker whose part files are intact; their exam ids (kept and rejected) are re-added
    to ``seen_ids``. From the first damaged chunk on, chunks are dropped and recomputed (in order, so
    duplicate exam ids are still resolved in favour of the first row)."""
    done: set[int] = set()
    markers = sorted(parts.glob("chunk-*.done"))
    for pos, marker in enumerate(markers):
        k = int(marker.stem.split("-")[1])
        if not _chunk_intact(parts, k):
            dropped = [int(m.stem.split("-")[1]) for m in markers[pos:]]
            logger.warning(
                "ingest: part files of chunk %d are damaged; recomputing chunk(s) %s", k, ", ".join(map(str, dropped))
            )
            for j in dropped:
                _part(parts, "chunk", j, "done").unlink(missing_ok=True)
            break
        for rec in read_jsonl(_part(parts, "ids", k, "jsonl")):
            seen_ids.setdefault(rec["exam_id"], rec["row"])
        done.add(k)
    return done


def image_checker(cfg: IngestConfig) -> Callable[[str], ImageCheck]:
    """The batch core's state: :func:`check_image` bound to ``cfg``'s rules (picklable, for worker pools)."""
    return partial(
        check_image,
        allowed_formats=tuple(cfg.allowed_formats),
        decode=cfg.verify == "decode",
        min_side=cfg.min_side,
        max_bytes=cfg.max_image_bytes,
    )


@dataclass
class ImageChecks:
    """The state of :func:`process_batch`: the bound image check and, in this process, an optional process
    pool that spreads a batch's checks over the CPUs (never shipped to other machines)."""

    check: Callable[[str], ImageCheck]
    pool: Executor | None = None


def process_batch(rows: list[dict[str, Any]], state: ImageChecks | Callable[[str], ImageCheck]) -> BatchOutput:
    """The batch core of ingest's image checks: rows ``path`` -> ``ingest/image_checks`` records (the
    :class:`ImageCheck` fields: ``code`` None for a valid image, else the reject reason). The per-exam rules
    (ids, duplicates across the archive) stay in the driver, which holds the archive-wide state."""
    checks = state if isinstance(state, ImageChecks) else ImageChecks(state)
    paths = [str(r["path"]) for r in rows]
    if checks.pool is not None and len(paths) > 8:
        results = list(checks.pool.map(checks.check, paths, chunksize=max(1, len(paths) // 32)))
    else:
        results = [checks.check(p) for p in paths]
    return BatchOutput(tables={IMAGE_CHECKS: [asdict(r) for r in results]})


def ingest_archive(
    archive: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: IngestConfig | None = None,
    progress: bool | None = None,
    executor: Executor | None = None,
) -> IngestSummary:
    """Validate ``archive`` and write ``exams.parquet``, ``images.parquet``, ``rejects.jsonl`` into ``out_dir``.

    Args:
        archive: manifest file (.jsonl/.csv/.parquet), folder holding ``manifest.*``, or folder-layout archive.
        out_dir: destination folder; ``out_dir/parts`` keeps finished chunks for resumption.
        config: ingest settings (defaults when None).
        progress: show a progress bar (None: the process-wide setting).
        executor: image-check executor to use instead of a fresh process pool.

    Returns:
        An :class:`IngestSummary`.
    """
    cfg = config or IngestConfig()
    arch: Archive = locate_archive(archive)
    out = Path(out_dir)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    seen_ids: dict[str, int] = {}
    finished = _load_finished(parts, seen_ids)
    summary = IngestSummary(chunks_reused=len(finished))
    if finished:
        logger.info("ingest: resuming, %d finished chunk(s) reused", len(finished))
    workers = cfg.workers or os.cpu_count() or 1
    # the checks run under the active batch executor; locally a process pool spreads each batch over the CPUs
    local = current_executor().kind == "local"
    own_pool = executor is None and workers > 1 and local
    pool: Executor | None = process_pool(workers) if own_pool else executor if local else None
    check = ImageChecks(image_checker(cfg), pool)
    logger.info("ingest: reading %s", arch.describe())
    try:
        with bar(None, desc="ingest", unit="exam", enabled=progress) as pbar:
            for k, batch in enumerate(_chunks(iter_archive(arch, cfg.max_report_file_bytes), cfg.chunk_size)):
                if k in finished:
                    pbar.update(len(batch))
                    continue
                _process_chunk(k, batch, arch, cfg, seen_ids, parts, check)
                pbar.update(len(batch))
    finally:
        if own_pool and pool is not None:
            pool.shutdown()
    _merge(parts, out, summary)
    shutil.rmtree(parts, ignore_errors=True)
    return summary


def _process_chunk(
    k: int,
    batch: list[RawExam],
    arch: Archive,
    cfg: IngestConfig,
    seen_ids: dict[str, int],
    parts: Path,
    checks: ImageChecks,
) -> None:
    drafts: list[ExamDraft] = []
    rejects: list[Reject] = []
    ids: list[dict[str, Any]] = []
    for raw in batch:
        draft, rej = validate_row(raw, arch.root, cfg, seen_ids)
        rejects.extend(rej)
        if draft is not None:
            drafts.append(draft)
            ids.append({"exam_id": draft.exam_id, "row": draft.row})
    paths = sorted({t.path for d in drafts for t in d.images})
    done = run_batches(
        [{"path": p} for p in paths],
        setup=partial(given, checks),
        process_batch=process_batch,
        outputs=(IMAGE_CHECKS,),
        chunk_dir=parts / f"checks-{k:06d}",
        run_root=parts,
        chunk_size=CHECK_CHUNK,
        desc="ingest image checks",
        progress=False,
    )
    results = {p: ImageCheck(**r) for p, r in zip(paths, done.tables[IMAGE_CHECKS], strict=True)}
    exams, images = _finish_exams(drafts, results, rejects)
    write_parquet(_part(parts, "exams", k, "parquet"), exams, schema=EXAMS_SCHEMA)
    write_parquet(_part(parts, "images", k, "parquet"), images, schema=IMAGES_SCHEMA)
    rejects.sort(key=lambda r: (r.row or 0, r.level != "exam", r.image or ""))
    write_jsonl(_part(parts, "rejects", k, "jsonl"), (r.to_dict() for r in rejects))
    write_jsonl(_part(parts, "ids", k, "jsonl"), ids)
    atomic_write_text(_part(parts, "chunk", k, "done"), "ok\n")


def _merge(parts: Path, out: Path, summary: IngestSummary) -> None:
    ks = sorted(int(p.stem.split("-")[1]) for p in parts.glob("chunk-*.done"))
    with atomic_path(out / "exams.parquet", suffix=".parquet") as tmp, pq.ParquetWriter(tmp, EXAMS_SCHEMA) as writer:
        for k in ks:
            t = pq.read_table(_part(parts, "exams", k, "parquet"), schema=EXAMS_SCHEMA)
            summary.exams_ok += t.num_rows
            writer.write_table(t)
    images = (
        pa.concat_tables([pq.read_table(_part(parts, "images", k, "parquet"), schema=IMAGES_SCHEMA) for k in ks])
        if ks
        else IMAGES_SCHEMA.empty_table()
    )
    images = images.append_column("duplicate_of", _duplicate_of(images))
    summary.images_ok = images.num_rows
    summary.duplicate_images = images.num_rows - images["duplicate_of"].null_count
    write_parquet(out / "images.parquet", images)
    reasons: Counter[str] = Counter()

    def _rejects() -> Iterator[dict[str, Any]]:
        for k in ks:
            for rec in read_jsonl(_part(parts, "rejects", k, "jsonl")):
                reasons[rec["code"]] += 1
                if rec["severity"] == "warning":
                    summary.warnings += 1
                elif rec["level"] == "image":
                    summary.images_rejected += 1
                else:
                    summary.exams_rejected += 1
                yield rec

    write_jsonl(out / "rejects.jsonl", _rejects())
    summary.reasons = dict(reasons)


def _duplicate_of(images: pa.Table) -> pa.Array:
    """For each image, ``exam_id/image`` of the first earlier image with the same content hash, else null."""
    n = images.num_rows
    if n == 0:
        return pa.array([], type=pa.string())
    order = pc.sort_indices(
        pa.table({"h": images["sha256"], "i": pa.array(range(n))}), sort_keys=[("h", "ascending"), ("i", "ascending")]
    ).to_pylist()
    hashes = images["sha256"].to_pylist()
    keys = [f"{e}/{i}" for e, i in zip(images["exam_id"].to_pylist(), images["image"].to_pylist(), strict=True)]
    out: list[str | None] = [None] * n
    first = -1
    for pos, idx in enumerate(order):
        if pos == 0 or hashes[idx] != hashes[order[pos - 1]]:
            first = idx
        else:
            out[idx] = keys[first]
    return pa.array(out, type=pa.string())
