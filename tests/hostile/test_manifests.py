"""Hostile manifests: every physical row is accounted for (exams kept + exams rejected = exams in the file)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from endoked.errors import DataFormatError
from endoked.ingest.api import ingest_archive
from endoked.ingest.config import IngestConfig
from endoked.io import read_jsonl
from tests.conftest import image_bytes

SERIAL = IngestConfig(workers=1)


def _archive(root: Path, n: int) -> None:
    (root / "img").mkdir(parents=True)
    for k in range(n):
        (root / "img" / f"{k}.png").write_bytes(image_bytes("PNG"))


def _run(manifest: Path, out: Path) -> tuple[list[dict], list[dict]]:
    ingest_archive(manifest, out, SERIAL)
    exams = pq.read_table(out / "exams.parquet").to_pylist()
    rejects = [r for r in read_jsonl(out / "rejects.jsonl") if r["level"] == "exam"]
    return exams, rejects


def test_one_gbk_row_in_utf8_csv_is_rejected_alone(tmp_path: Path) -> None:
    n = 60
    _archive(tmp_path, n)
    lines = [b"exam_id,report,images\n"]
    for k in range(n):
        report = "结肠息肉 report".encode("gbk" if k == 24 else "utf-8")
        lines.append(f"E{k},".encode() + b'"' + report + b'"' + f",img/{k}.png\n".encode())
    (tmp_path / "m.csv").write_bytes(b"".join(lines))
    exams, rejects = _run(tmp_path / "m.csv", tmp_path / "out")
    assert len(exams) + len(rejects) == n
    assert len(rejects) == 1 and "not UTF-8" in rejects[0]["message"] and rejects[0]["row"] == 26
    assert [e["exam_id"] for e in exams][24:26] == ["E25", "E26"]
    assert [e["row"] for e in exams if e["exam_id"] == "E59"] == [61]


def test_unclosed_quote_does_not_swallow_later_rows(tmp_path: Path) -> None:
    n = 10
    _archive(tmp_path, n)
    quote = '"'
    rows = ["exam_id,report,images"] + [f"E{k},{quote + 'broken' if k == 3 else 'ok'},img/{k}.png" for k in range(n)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    exams, rejects = _run(tmp_path / "m.csv", tmp_path / "out")
    assert len(exams) + len(rejects) == n
    assert len(exams) == n - 1
    assert "unclosed quote" in rejects[0]["message"]


def test_bom_in_jsonl_first_row_is_kept(tmp_path: Path) -> None:
    _archive(tmp_path, 2)
    text = (
        '{"exam_id": "A", "report": "polyp", "images": ["img/0.png"]}\n'
        '{"exam_id": "B", "report": "polyp", "images": ["img/1.png"]}\n'
    )
    (tmp_path / "m.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode())
    exams, rejects = _run(tmp_path / "m.jsonl", tmp_path / "out")
    assert [e["exam_id"] for e in exams] == ["A", "B"] and rejects == []


@pytest.mark.parametrize("name", ["m.jsonl", "m.csv"])
def test_empty_manifest_is_a_data_error(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"manifest is empty \(no (rows|header row)\)"):
        ingest_archive(tmp_path / name, tmp_path / "out", SERIAL)


def test_duplicated_header_column_is_an_error(tmp_path: Path) -> None:
    _archive(tmp_path, 1)
    (tmp_path / "m.csv").write_text("exam_id,report,report,images\nA,x,y,img/0.png\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="more than once"):
        ingest_archive(tmp_path / "m.csv", tmp_path / "out", SERIAL)


def test_deeply_nested_json_row_is_rejected(tmp_path: Path) -> None:
    _archive(tmp_path, 1)
    deep = "[" * 100000 + "]" * 100000
    text = '{"exam_id": "A", "report": "polyp", "images": ["img/0.png"]}\n' + '{"x": ' + deep + "}\n"
    (tmp_path / "m.jsonl").write_text(text, encoding="utf-8")
    exams, rejects = _run(tmp_path / "m.jsonl", tmp_path / "out")
    assert len(exams) == 1 and len(rejects) == 1
