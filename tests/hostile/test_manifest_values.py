"""Hostile values inside manifest rows: NUL bytes, lone surrogates, one image under two spellings, and a
truncated chunk file left by a crash. Each is a recorded reject (or a recomputed chunk), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from endoked.cli import main
from endoked.ingest import api
from endoked.ingest.api import ingest_archive
from endoked.ingest.config import IngestConfig
from endoked.io import read_jsonl
from tests.conftest import image_bytes

SERIAL = IngestConfig(workers=1)


def _manifest(root: Path, rows: list[str], n_images: int = 4) -> Path:
    (root / "img").mkdir(parents=True)
    for k in range(n_images):
        (root / "img" / f"{k}.png").write_bytes(image_bytes("PNG", seed=k))
    (root / "m.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "m.jsonl"


def _rows(out: Path) -> tuple[list[dict], list[dict], list[dict]]:
    exams = pq.read_table(out / "ingest" / "exams.parquet").to_pylist()
    rejects = read_jsonl(out / "ingest" / "rejects.jsonl")
    return exams, [r for r in rejects if r["level"] == "exam"], [r for r in rejects if r["level"] == "image"]


def test_nul_bytes_and_lone_surrogates_are_rejects_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        '{"exam_id": "OK", "report": "polyp", "images": ["img/0.png"]}',
        '{"exam_id": "NULPATH", "report": "polyp", "images": ["img/1.png\\u0000.jpg", "img/1.png"]}',
        '{"exam_id": "E\\u0000X", "report": "polyp", "images": ["img/2.png"]}',
        '{"exam_id": "SURR\\ud800", "report": "polyp", "images": ["img/2.png"]}',
        '{"exam_id": "REPSURR", "report": "polyp \\udcff", "images": ["img/3.png"]}',
        '{"exam_id": "IMGSURR", "report": "polyp", "images": ["img/\\udcff.png", "img/3.png"]}',
    ]
    man = _manifest(tmp_path / "a", rows)
    out = tmp_path / "run"
    assert main(["--no-progress", "ingest", "--archive", str(man), "--out", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    exams, exam_rejects, image_rejects = _rows(out)
    assert len(exams) + len(exam_rejects) == len(rows)
    assert [e["exam_id"] for e in exams] == ["OK", "NULPATH", "IMGSURR"]
    assert {(r["row"], r["code"]) for r in exam_rejects} == {(3, "bad_exam_id"), (4, "bad_text"), (5, "bad_text")}
    assert "\\x00" in next(r for r in exam_rejects if r["row"] == 3)["message"]
    assert sorted((r["exam_id"], r["code"]) for r in image_rejects) == [
        ("IMGSURR", "bad_image_entry"),
        ("NULPATH", "bad_image_entry"),
    ]


def test_same_image_under_two_spellings_is_kept_once(tmp_path: Path) -> None:
    rows = ['{"exam_id": "A", "report": "polyp", "images": ["img/0.png", "./img/0.png", "img//0.png", "img/1.png"]}']
    man = _manifest(tmp_path / "a", rows)
    ingest_archive(man, tmp_path / "out", SERIAL)
    images = pq.read_table(tmp_path / "out" / "images.parquet").to_pylist()
    assert [i["image"] for i in images] == ["img/0.png", "img/1.png"]
    dups = [r for r in read_jsonl(tmp_path / "out" / "rejects.jsonl") if r["code"] == "duplicate_image_in_exam"]
    assert [r["image"] for r in dups] == ["./img/0.png", "img//0.png"]
    assert "as img/0.png and ./img/0.png" in dups[0]["message"]
    exam = pq.read_table(tmp_path / "out" / "exams.parquet").to_pylist()[0]
    assert exam["n_images"] == 4 and exam["n_valid_images"] == 2


def test_truncated_chunk_file_is_recomputed_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [json.dumps({"exam_id": f"E{k}", "report": f"polyp {k}", "images": [f"img/{k % 4}.png"]}) for k in range(7)]
    man = _manifest(tmp_path / "a", rows)
    cfg = IngestConfig(workers=1, chunk_size=2)
    clean = tmp_path / "clean"
    ingest_archive(man, clean, cfg)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(api, "_merge", crash)
        with pytest.raises(KeyboardInterrupt):
            ingest_archive(man, out, cfg)
    part = out / "parts" / "exams-000001.parquet"
    part.write_bytes(part.read_bytes()[:40])  # a crash mid-write of a part file
    summary = ingest_archive(man, out, cfg)
    assert summary.chunks_reused == 1  # chunk 0 reused; chunk 1 and the ones after it recomputed
    for name in ("exams.parquet", "images.parquet"):
        assert pq.read_table(out / name).to_pylist() == pq.read_table(clean / name).to_pylist()
    assert summary.exams_ok == 7
