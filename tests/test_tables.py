"""The run-folder table contract: stage writers' schemas match it; a wrong file fails naming file and column."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from endoked import tables
from endoked.cam import stage as cam_stage
from endoked.extract import stage as extract_stage
from endoked.ingest import api as ingest_api
from endoked.mil import stage as mil_stage
from endoked.prompt_seg import stage as prompt_stage


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("ingest/exams", ingest_api.EXAMS_SCHEMA),
        ("ingest/images", ingest_api.IMAGES_SCHEMA),
        ("extract/labels", extract_stage.LABELS_SCHEMA),
        ("mil/image_scores", mil_stage.SCORES_SCHEMA),
        ("mil/selection", mil_stage.SELECTION_SCHEMA),
        ("cam/boxes", cam_stage.BOXES_SCHEMA),
        ("cam/dropped", cam_stage.DROPPED_SCHEMA),
        ("cam/cams", cam_stage.CAMS_SCHEMA),
        ("prompt_seg/pseudo_labels", prompt_stage.PSEUDO_SCHEMA),
        ("prompt_seg/rejected", prompt_stage.REJECTED_SCHEMA),
    ],
)
def test_writer_schema_is_the_contract(name: str, schema: pa.Schema) -> None:
    # Stages write with the contract's own schema object, not a copy that could drift from it.
    assert schema is tables.spec(name).schema


def _write(path: Path, schema: pa.Schema, row: dict[str, object]) -> Path:
    pq.write_table(pa.Table.from_pylist([row], schema=schema), path)
    return path


def test_good_table_reads(tmp_path: Path) -> None:
    s = tables.spec("mil/selection").schema
    path = _write(
        tmp_path / "s.parquet",
        tables.with_version(s, "mil/selection"),
        {"exam_id": "E1", "image": "a.jpg", "label": 1, "score": 0.9, "by": "mil"},
    )
    assert tables.read(path, "mil/selection").to_pylist()[0]["image"] == "a.jpg"


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    schema = pa.schema([("exam_id", pa.string()), ("image", pa.string()), ("label", pa.int8())])
    path = _write(tmp_path / "sel.parquet", schema, {"exam_id": "E1", "image": "a.jpg", "label": 1})
    with pytest.raises(tables.TableSchemaError, match=r"sel\.parquet.*'score'"):
        tables.read(path, "mil/selection")


def test_wrong_type_names_column(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("exam_id", pa.string()),
            ("image", pa.string()),
            ("label", pa.string()),
            ("score", pa.float32()),
            ("by", pa.string()),
        ]
    )
    path = _write(
        tmp_path / "sel.parquet", schema, {"exam_id": "E1", "image": "a.jpg", "label": "yes", "score": 0.5, "by": "mil"}
    )
    with pytest.raises(tables.TableSchemaError, match=r"sel\.parquet.*'label' is string, expected int8"):
        tables.read(path, "mil/selection")


def test_wrong_version_is_refused(tmp_path: Path) -> None:
    s = tables.spec("cam/dropped").schema.with_metadata({tables.VERSION_KEY: b"0"})
    path = _write(tmp_path / "d.parquet", s, {"exam_id": "E1", "image": "a", "reason": "r", "class_prob": 0.1})
    with pytest.raises(tables.TableSchemaError, match=r"d\.parquet.*schema version 0"):
        tables.read(path, "cam/dropped")


def test_unknown_table_is_named() -> None:
    with pytest.raises(KeyError, match="no table 'cam/nope'"):
        tables.spec("cam/nope")


def test_write_fills_missing_columns_tags_version_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "sel.parquet"
    tables.write(
        path,
        "mil/selection",
        [
            {"exam_id": "E1", "image": "a.png", "label": 1, "extra": "x"},
            {"exam_id": "E2", "image": "b.png", "label": 0, "score": 0.25},
        ],
    )
    meta = pq.read_schema(path).metadata
    assert meta[tables.VERSION_KEY] == tables.SCHEMA_VERSION.encode() and meta[tables.TABLE_KEY] == b"mil/selection"
    got = tables.read(path, "mil/selection")
    assert got.schema.names[:5] == ["exam_id", "image", "label", "score", "by"] and got.schema.names[5:] == ["extra"]
    assert got.schema.field("label").type == pa.int8()
    assert got.to_pylist() == [
        {"exam_id": "E1", "image": "a.png", "label": 1, "score": None, "by": None, "extra": "x"},
        {"exam_id": "E2", "image": "b.png", "label": 0, "score": 0.25, "by": None, "extra": None},
    ]


def test_write_refuses_a_value_of_the_wrong_type(tmp_path: Path) -> None:
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        tables.write(tmp_path / "x.parquet", "mil/selection", [{"exam_id": "E1", "image": "a", "label": "yes"}])
    assert not (tmp_path / "x.parquet").exists()


def test_switched_readers_refuse_a_wrong_upstream_table(tmp_path: Path) -> None:
    # Stages and tools read upstream tables through the contract: a table missing a column or holding a
    # column of another type fails naming the file and the column, instead of a KeyError deep inside.
    from endoked.export.source import load_items
    from endoked.scoring import score_mil
    from tests.fakes import fake_run

    run, _ = fake_run(tmp_path)
    images = run.output("ingest", "images")
    pq.write_table(pq.read_table(images).drop_columns(["path"]), images)
    with pytest.raises(tables.TableSchemaError, match=r"images\.parquet.*'path'"):
        load_items(run)
    scores = run.output("mil", "image_scores")
    bad = pq.read_table(scores)
    pq.write_table(bad.set_column(bad.schema.get_field_index("score"), "score", bad["score"].cast(pa.string())), scores)
    with pytest.raises(tables.TableSchemaError, match=r"image_scores\.parquet.*'score' is string"):
        score_mil(None, scores)  # type: ignore[arg-type]
