"""Batch cores and the one local driver that runs them in resumable chunks.

A batch stage is split into two pure-ish parts:

- ``setup() -> state``: builds what every batch needs (models on their device, lookup tables). It is called
  once, and only when some chunk has work left, so a fully resumed stage loads no model.
- ``process_batch(rows, state) -> BatchOutput``: turns a list of input rows into output rows for one or more
  contract tables (:mod:`endoked.tables`; any other output name is a JSON record stream, such as extract's
  full records) plus files (run-relative path -> bytes). It writes nothing itself,
  so the same function can run in this process, in a worker pool or on a cluster.

:func:`run_batches` is the local driver: it cuts the input into chunks of ``chunk_size`` rows, skips chunks
that finished before (a resumed stage redoes nothing that finished), writes each chunk's files, then its parts,
then a marker naming the digest of the chunk's input rows, all atomically; a chunk is reused only when its
marker matches its inputs and every part reads back (a chunk interrupted half-way, truncated by a crash or cut
from other inputs is recomputed). It shows progress (items/s, ETA) and returns the rows in input order, or,
with ``collect=False``, leaves them in the parts and streams them back one chunk at a time.

Where the pending chunks run is the executor's business (:mod:`endoked.executors`: this process, or a pool of
Ray actors); the driver alone writes, as each chunk's result arrives, so the chunk folder and the resume rule do
not depend on the executor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from endoked import tables
from endoked.executors import Executor, current_executor
from endoked.io import atomic_write_bytes, atomic_write_json, read_jsonl, sha256_json, write_jsonl
from endoked.progress import bar

logger = logging.getLogger(__name__)

S = TypeVar("S")
Row = dict[str, Any]


@dataclass
class BatchOutput:
    """What one batch produced: rows per output table (contract name, e.g. ``cam/boxes``) and files."""

    tables: dict[str, list[Row]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class BatchRun:
    """The result of :func:`run_batches`: every output table's rows in input order (unless the run was asked
    not to collect them), the chunk part files in input order, and chunk counts."""

    tables: dict[str, list[Row]]
    chunks: int
    chunks_reused: int
    chunks_recomputed: int = 0
    parts: list[dict[str, Path]] = field(default_factory=list)
    collected: bool = True

    def chunk_rows(self, name: str) -> Iterator[list[Row]]:
        """The rows of output ``name`` chunk by chunk, in input order: from memory when they were collected,
        otherwise read back from the chunk parts one chunk at a time (memory bounded by one chunk)."""
        if self.collected:
            yield self.tables[name]
            return
        for part in self.parts:
            yield _read_part(part[name], name)

    def rows(self, name: str) -> Iterator[Row]:
        """The rows of output ``name`` one by one, in input order (see :meth:`chunk_rows`)."""
        for chunk in self.chunk_rows(name):
            yield from chunk


def given(obj: Any) -> Any:
    """A batch ``setup`` that returns state built beforehand: ``partial(given, obj)`` (picklable when ``obj``
    is, so the Ray executor can ship it)."""
    return obj


def _part_name(table: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", table.split("/", 1)[-1])


def chunk_parts(chunk_dir: Path, index: int, outputs: Sequence[str]) -> dict[str, Path]:
    """The part files of chunk ``index``: one Parquet file per contract table, one JSONL file per record stream."""
    return {
        name: chunk_dir / f"part-{index:05d}.{_part_name(name)}.{'parquet' if name in tables.TABLES else 'jsonl'}"
        for name in outputs
    }


def _read_part(path: Path, name: str) -> list[Row]:
    if name in tables.TABLES:
        return tables.read(path, name).to_pylist()
    return read_jsonl(path)


def _write_part(path: Path, name: str, rows: list[Row]) -> None:
    if name in tables.TABLES:
        tables.write(path, name, rows)
    else:
        write_jsonl(path, rows)


def _marker(chunk_dir: Path, index: int) -> Path:
    return chunk_dir / f"part-{index:05d}.done.json"


def _read_parts(parts: Mapping[str, Path], marker: Path, digest: str) -> dict[str, list[Row]] | None:
    """The rows of a finished chunk, or None when it is not finished, was cut from other inputs or a part is
    unreadable (then it is recomputed)."""
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("inputs") != digest:
            return None
    except (OSError, ValueError, AttributeError):
        return None
    if not all(p.is_file() for p in parts.values()):
        return None
    out: dict[str, list[Row]] = {}
    for name, path in parts.items():
        try:
            out[name] = _read_part(path, name)
        except (tables.TableSchemaError, OSError, ValueError) as exc:
            logger.warning("chunk part %s is unreadable (%s); recomputing the chunk", path, exc)
            return None
    return out


def run_batches(
    rows: Sequence[Row],
    *,
    setup: Callable[[], S],
    process_batch: Callable[[list[Row], S], BatchOutput],
    outputs: Sequence[str],
    chunk_dir: Path,
    run_root: Path,
    chunk_size: int,
    desc: str,
    progress: bool = True,
    unit: str = "img",
    teardown: Callable[[S], None] | None = None,
    executor: Executor | None = None,
    collect: bool = True,
) -> BatchRun:
    """Run ``process_batch`` over ``rows`` in resumable chunks (see the module docstring).

    Args:
        rows: the input rows, in the order the outputs should keep.
        setup: builds the state (called at most once per process that runs chunks, only if a chunk has work
            left).
        process_batch: the batch core.
        outputs: contract names of the tables ``process_batch`` returns (a table it leaves out is empty).
        chunk_dir: folder for the chunk parts (inside the stage's work folder).
        run_root: the run folder; :attr:`BatchOutput.files` paths are relative to it.
        chunk_size: rows per chunk (> 0).
        desc: progress-bar label.
        teardown: releases the state (closes clients) when it was built, also after an error.
        executor: where the chunks run (:mod:`endoked.executors`); default: the active one
            (:func:`endoked.executors.current_executor`, local unless the run config says otherwise). Whatever
            runs them, this driver writes every chunk's files, parts and marker, so the chunk folder is the
            same under every executor.
        collect: keep every output row in memory (:attr:`BatchRun.tables`). With ``False`` the driver keeps
            none: the rows stay in the chunk parts and :meth:`BatchRun.rows` streams them back, so a stage over
            10^6 images holds one chunk's rows at a time (the chunk folder must then live until they are read).

    Raises:
        ValueError: ``chunk_size`` < 1, or ``process_batch`` returned a table not in ``outputs``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    executor = executor if executor is not None else current_executor()
    out = BatchRun(tables={name: [] for name in outputs}, chunks=0, chunks_reused=0, collected=collect)
    finished: dict[int, dict[str, list[Row]]] = {}
    pending: list[tuple[int, list[Row]]] = []
    digests: dict[int, str] = {}
    with bar(len(rows), desc=desc, unit=unit, enabled=progress) as pb:
        for n, start in enumerate(range(0, len(rows), chunk_size)):
            out.chunks += 1
            chunk = list(rows[start : start + chunk_size])
            parts, marker = chunk_parts(chunk_dir, n, outputs), _marker(chunk_dir, n)
            out.parts.append(parts)
            digests[n] = sha256_json(chunk)
            done = _read_parts(parts, marker, digests[n])
            if done is not None:
                out.chunks_reused += 1
                if collect:
                    finished[n] = done
                pb.update(len(chunk))
            else:
                out.chunks_recomputed += marker.exists() or any(p.exists() for p in parts.values())
                pending.append((n, chunk))
        sizes = {n: len(chunk) for n, chunk in pending}
        with contextlib.closing(executor.map_chunks(pending, setup, process_batch, teardown)) as results:
            for n, result in results:
                done = _write_chunk(n, result, digests[n], sizes[n], outputs, chunk_dir, run_root, desc)
                if collect:
                    finished[n] = done
                pb.update(sizes[n])
    if collect:
        for n in range(out.chunks):
            for name in outputs:
                out.tables[name].extend(finished[n][name])
    return out


def _write_chunk(
    n: int,
    result: BatchOutput,
    digest: str,
    size: int,
    outputs: Sequence[str],
    chunk_dir: Path,
    run_root: Path,
    desc: str,
) -> dict[str, list[Row]]:
    """Write chunk ``n``'s files, then its parts, then its marker (each atomically); its rows as read back."""
    unknown = set(result.tables) - set(outputs)
    if unknown:
        raise ValueError(f"process_batch returned tables {sorted(unknown)} not in outputs {list(outputs)}")
    parts, marker = chunk_parts(chunk_dir, n, outputs), _marker(chunk_dir, n)
    for rel, data in result.files.items():
        atomic_write_bytes(run_root / rel, data)
    for name, path in parts.items():
        _write_part(path, name, result.tables.get(name, []))
    atomic_write_json(marker, {"inputs": digest, "rows": size})
    done = _read_parts(parts, marker, digest)  # read back: typed as a resumed chunk
    if done is None:
        raise OSError(f"chunk {n} of {desc} could not be read back from {chunk_dir}")
    return done
