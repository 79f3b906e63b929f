"""The ingest stage of the pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from endoked.errors import StageError
from endoked.ingest.api import ingest_archive
from endoked.ingest.archive import iter_archive, locate_archive
from endoked.io import sha256_file, sha256_json
from endoked.pipeline import StageContext, StageResult, StageSpec


def _archive_path(ctx: StageContext) -> Path:
    if not ctx.config.ingest.archive:
        raise StageError(
            "no archive given: pass --archive PATH (manifest file or archive folder) or set "
            "ingest.archive in the config"
        )
    return Path(ctx.config.ingest.archive)


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path (the row is rejected by validation)
        return None
    return st.st_size, st.st_mtime_ns


def archive_fingerprint(ctx: StageContext) -> dict[str, Any]:
    """What identifies the archive's content without reading every image: the manifest's hash plus
    (size, mtime) of every referenced image; for a folder layout, the same for every file in it (the run
    folder excluded, should it lie inside the archive)."""
    arch = locate_archive(_archive_path(ctx))
    listing: list[Any] = []
    if arch.manifest is not None:
        for raw in iter_archive(arch):
            images = (raw.data or {}).get("images")
            if isinstance(images, list):
                for entry in images:
                    if isinstance(entry, str):
                        listing.append((entry, _stat(os.path.join(arch.root, entry))))
    else:
        skip = str(ctx.run.root)
        for dirpath, dirnames, filenames in os.walk(arch.root):
            dirnames[:] = sorted(d for d in dirnames if os.path.join(dirpath, d) != skip)
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                listing.append((os.path.relpath(full, arch.root), _stat(full)))
    return {
        "root": str(arch.root),
        "manifest": sha256_file(arch.manifest) if arch.manifest else None,
        "files": sha256_json(listing),
    }


def run_ingest(ctx: StageContext) -> StageResult:
    summary = ingest_archive(_archive_path(ctx), ctx.work_dir, ctx.config.ingest, progress=ctx.progress)
    if summary.exams_ok == 0:
        raise StageError(
            f"ingest: no valid exam in the archive ({summary.exams_rejected} rejected); see "
            f"{ctx.work_dir / 'rejects.jsonl'}"
        )
    return StageResult(
        outputs={
            name: ctx.run.rel(ctx.work_dir / f)
            for name, f in (("exams", "exams.parquet"), ("images", "images.parquet"), ("rejects", "rejects.jsonl"))
        },
        counts=summary.as_counts(),
    )


STAGE = StageSpec(name="ingest", run=run_ingest, external_inputs=archive_fingerprint, config_sections=("ingest",))
