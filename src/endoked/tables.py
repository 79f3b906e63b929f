"""The run-folder table contract: every stage table's pyarrow schema and a validating reader.

Each table is named ``<stage>/<output>`` as in the ledger (``RunFolder.output(stage, output)``). A reader
that meets a file missing a column, holding a column of another type, or written under another schema
version fails with :class:`TableSchemaError`, naming the file and the column. Columns beyond the contract
are kept (tables are extended compatibly). ``docs/run-folder.md`` documents every table.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from endoked.errors import EndokedError, StageError

if TYPE_CHECKING:
    from endoked.runfolder import RunFolder

SCHEMA_VERSION = "1"
VERSION_KEY = b"endoked.schema_version"
TABLE_KEY = b"endoked.table"


class TableSchemaError(StageError):
    """A run-folder table does not match its contract."""


@dataclass(frozen=True)
class TableSpec:
    """One run-folder table: where it lives, its schema, its key columns."""

    stage: str
    output: str
    schema: pa.Schema
    keys: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.output}"


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(list(fields))


_S, _I32, _I64, _I8, _F32, _F64, _B = (
    pa.string(),
    pa.int32(),
    pa.int64(),
    pa.int8(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        TableSpec(
            "ingest",
            "exams",
            _schema(
                ("exam_id", _S),
                ("report", _S),
                ("pathology", _S),
                ("n_images", _I32),
                ("n_valid_images", _I32),
                ("report_encoding", _S),
                ("report_truncated", _B),
                ("meta", _S),
                ("row", _I64),
                ("source", _S),
            ),
            ("exam_id",),
        ),
        TableSpec(
            "ingest",
            "images",
            _schema(
                ("exam_id", _S),
                ("image", _S),
                ("path", _S),
                ("width", _I32),
                ("height", _I32),
                ("format", _S),
                ("sha256", _S),
                ("bytes", _I64),
            ),
            ("exam_id", "image"),
        ),
        TableSpec(
            "extract",
            "labels",
            _schema(
                ("exam_id", _S),
                ("polyp", _S),
                ("polyp_count", _I64),
                ("polyps", _S),
                ("malignancy_suspected", _B),
                ("pathology", _S),
                ("error", _S),
            ),
            ("exam_id",),
        ),
        TableSpec(
            "mil",
            "image_scores",
            _schema(("exam_id", _S), ("image", _S), ("score", _F32), ("bag_label", _I8)),
            ("exam_id", "image"),
        ),
        TableSpec(
            "mil",
            "selection",
            _schema(("exam_id", _S), ("image", _S), ("label", _I8), ("score", _F32), ("by", _S)),
            ("exam_id", "image"),
        ),
        TableSpec(
            "cam",
            "boxes",
            _schema(
                ("exam_id", _S),
                ("image", _S),
                ("box_id", _I64),
                ("x0", _F64),
                ("y0", _F64),
                ("x1", _F64),
                ("y1", _F64),
                ("cam_score", _F64),
                ("class_prob", _F64),
                ("area_fraction", _F64),
            ),
            ("exam_id", "image", "box_id"),
        ),
        TableSpec(
            "cam",
            "dropped",
            _schema(("exam_id", _S), ("image", _S), ("reason", _S), ("class_prob", _F64)),
            ("exam_id", "image"),
        ),
        TableSpec(
            "cam", "cams", _schema(("exam_id", _S), ("image", _S), ("file", _S), ("key", _S)), ("exam_id", "image")
        ),
        TableSpec(
            "prompt_seg",
            "pseudo_labels",
            _schema(
                ("exam_id", _S),
                ("image", _S),
                ("mask", _S),
                ("score", _F64),
                ("source", _S),
                ("segmenter_score", _F64),
                ("cam_agreement", _F64),
                ("area_fraction", _F64),
                ("box_fill", _F64),
                ("n_boxes", _I64),
                ("box_x0", _F64),
                ("box_y0", _F64),
                ("box_x1", _F64),
                ("box_y1", _F64),
                ("consensus", _F64),
                ("rank", _F64),
                ("rescued", _B),
            ),
            ("exam_id", "image"),
        ),
        TableSpec(
            "prompt_seg", "rejected", _schema(("exam_id", _S), ("image", _S), ("reason", _S)), ("exam_id", "image")
        ),
        TableSpec(
            "review",
            "decisions",
            _schema(
                ("id", _I64),
                ("exam_id", _S),
                ("image", _S),
                ("action", _S),
                ("reviewer", _S),
                ("at", _S),
                ("mask_before", _S),
                ("mask_after", _S),
                ("field", _S),
                ("value", _S),
            ),
            ("id",),
        ),
    ]
}


def spec(name: str) -> TableSpec:
    """The contract of table ``<stage>/<output>``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no table {name!r} in the run-folder contract; known: {', '.join(sorted(TABLES))}") from None


def with_version(schema: pa.Schema, name: str) -> pa.Schema:
    """``schema`` with the contract's version and table name in its metadata (as writers store it)."""
    return schema.with_metadata(
        {**(schema.metadata or {}), VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: name.encode()}
    )


def check(table: pa.Table | pa.Schema, name: str, path: str | os.PathLike[str]) -> None:
    """Raise :class:`TableSchemaError` naming ``path`` and the column when ``table`` breaks the contract."""
    want = spec(name).schema
    got = table if isinstance(table, pa.Schema) else table.schema
    version = (got.metadata or {}).get(VERSION_KEY)
    if version is not None and version.decode() != SCHEMA_VERSION:
        raise TableSchemaError(
            f"{path}: table {name} has schema version {version.decode()}, "
            f"this endoked reads version {SCHEMA_VERSION}; re-run stage {spec(name).stage}"
        )
    for field in want:
        idx = got.get_field_index(field.name)
        if idx < 0:
            raise TableSchemaError(f"{path}: table {name} lacks column {field.name!r} ({field.type})")
        have = got.field(idx).type
        if have != field.type and not (pa.types.is_null(have)):
            raise TableSchemaError(f"{path}: table {name} column {field.name!r} is {have}, expected {field.type}")


def read(path: str | os.PathLike[str], name: str) -> pa.Table:
    """Read the Parquet file at ``path`` as table ``name``, checked against its contract."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise TableSchemaError(f"{path}: cannot read table {name}: {exc}") from exc
    check(schema, name, path)
    return pq.read_table(path)


def to_table(rows: list[dict[str, Any]] | pa.Table, name: str) -> pa.Table:
    """Rows (dicts; a missing contract column is null) or a table as table ``name``: the contract's columns
    first, in its order and types, then any extra columns, with the schema version in the metadata."""
    want = spec(name).schema
    if isinstance(rows, pa.Table):
        table = rows
    else:
        extra = [k for k in dict.fromkeys(k for r in rows for k in r) if want.get_field_index(k) < 0]
        cols = {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in want}
        for k in extra:
            cols[k] = pa.array([r.get(k) for r in rows])
        table = pa.table(cols)
    check(table, name, f"<table {name} being written>")
    return table.replace_schema_metadata(with_version(table.schema, name).metadata)


def write(path: str | os.PathLike[str], name: str, rows: list[dict[str, Any]] | pa.Table) -> Path:
    """Write table ``name`` to ``path`` atomically, checked against and tagged with its contract."""
    from endoked.io import write_parquet

    return write_parquet(path, to_table(rows, name))


def read_run(run: RunFolder, name: str) -> pa.Table:
    """Table ``name`` (``<stage>/<output>``) of a run folder, checked against its contract."""
    s = spec(name)
    return read(run.output(s.stage, s.output), name)


def rows(run: RunFolder, name: str) -> list[dict[str, Any]]:
    """Table ``name`` of a run folder as a list of row dicts."""
    return read_run(run, name).to_pylist()


def finished_rows(run: RunFolder, name: str, reader: str) -> list[dict[str, Any]]:
    """Rows of table ``name`` when the stage that writes it finished and listed it, else ``[]`` (a page that shows
    less rather than none); an unreadable table is logged as a warning naming ``reader`` and gives ``[]``."""
    stage, output = name.split("/", 1)
    entry = run.entry(stage) or {}
    if entry.get("status") != "done" or output not in entry.get("outputs", {}):
        return []
    try:
        return rows(run, name)
    except (EndokedError, OSError) as exc:
        logging.getLogger(__name__).warning("%s: %s not read (%s)", reader, name, exc)
        return []


def image_paths(run: RunFolder) -> dict[tuple[str, str], Path]:
    """The join ``(exam_id, image) -> absolute image path`` from ``ingest/images``."""
    return {(str(r["exam_id"]), str(r["image"])): Path(r["path"]) for r in rows(run, "ingest/images")}


def selection(run: RunFolder) -> list[dict[str, Any]]:
    """``mil/selection``: images chosen as CAM training positives/negatives."""
    return rows(run, "mil/selection")


def boxes(run: RunFolder) -> list[dict[str, Any]]:
    """``cam/boxes``: one row per kept box."""
    return rows(run, "cam/boxes")


def pseudo_labels(run: RunFolder) -> list[dict[str, Any]]:
    """``prompt_seg/pseudo_labels``: one row per image that received a pseudo mask."""
    return rows(run, "prompt_seg/pseudo_labels")


def images(run: RunFolder) -> dict[tuple[str, str], dict[str, Any]]:
    """``ingest/images`` keyed by ``(exam_id, image)``: the whole row (path, size, hash) per image."""
    return {(str(r["exam_id"]), str(r["image"])): r for r in rows(run, "ingest/images")}


def labels_by_exam(run: RunFolder) -> dict[str, dict[str, Any]]:
    """``extract/labels`` keyed by ``exam_id``: the report labels of every exam."""
    return {str(r["exam_id"]): r for r in rows(run, "extract/labels")}
