"""Small I/O helpers shared by every stage: atomic writes, hashing, Parquet and JSON Lines tables.

Atomic means: the data is written to a temporary file in the destination folder, flushed and fsync'ed,
then renamed over the destination, so a reader never sees a half-written file and a crash leaves either
the old file or the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_CHUNK = 1 << 20


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give; mkstemp alone gives 0600


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``, on error remove it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def ensure_writable_dir(path: str | os.PathLike[str], what: str = "--out", create: bool = True) -> Path:
    """Check that folder ``path`` can take new files, creating it when ``create`` (otherwise its nearest
    existing parent folder must be writable).

    Raises:
        DataFormatError: ``path`` is an existing file, cannot be created, or is not writable; the message
            names the folder (a user error, exit code 2, instead of a PermissionError traceback later).
    """
    from endoked.errors import DataFormatError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataFormatError(f"{what} {path} is an existing file, not a folder; give a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataFormatError(f"{what} {path}: cannot create the folder ({exc.strerror or exc})") from None
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise DataFormatError(f"{what} {path} is not writable (permission denied at {probe}); give a writable folder")
    return path


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically and return the destination path."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``dest`` atomically."""
    return atomic_write_bytes(dest, text.encode("utf-8"))


def atomic_write_json(dest: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON atomically."""
    return atomic_write_text(dest, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(dest: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as JSON Lines atomically."""
    with atomic_path(dest) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return Path(dest)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON Lines file into a list of dicts (blank lines skipped)."""
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
    return out


def write_parquet(
    dest: str | os.PathLike[str], table: pa.Table | list[dict[str, Any]], schema: pa.Schema | None = None
) -> Path:
    """Write a pyarrow table (or a list of row dicts with an optional schema) to Parquet atomically."""
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pylist(table, schema=schema)
    with atomic_path(dest, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)
    return Path(dest)


def write_parquet_chunks(
    dest: str | os.PathLike[str], chunks: Iterable[list[dict[str, Any]]], schema: pa.Schema
) -> tuple[Path, int]:
    """Write row-dict chunks to one Parquet file atomically, one row group per non-empty chunk, holding one
    chunk in memory at a time. Returns the path and the number of rows written."""
    n = 0
    with atomic_path(dest, suffix=".parquet") as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for rows in chunks:
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                n += len(rows)
    return Path(dest), n


def read_parquet(path: str | os.PathLike[str]) -> pa.Table:
    """Read a Parquet file into a pyarrow table."""
    return pq.read_table(path)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical (sorted-keys) JSON of ``obj``; lone surrogates (file names that are not
    UTF-8) are hashed as their code points instead of failing."""
    text = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return sha256_bytes(text.encode("utf-8", errors="surrogatepass"))
