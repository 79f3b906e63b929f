"""Every ingest fault gives its reason code, and every valid row arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from endoked.errors import DataFormatError
from endoked.ingest import api
from endoked.ingest.api import ingest_archive
from endoked.ingest.config import IngestConfig
from endoked.io import read_jsonl
from tests.conftest import image_bytes

SERIAL = IngestConfig(workers=1)


def _write(root: Path, rel: str, data: bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def _manifest(root: Path, rows: list[Any], name: str = "manifest.jsonl") -> Path:
    path = root / name
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def _run(archive: Path, out: Path, cfg: IngestConfig = SERIAL) -> tuple[list[dict], list[dict], list[dict]]:
    ingest_archive(archive, out, cfg)
    exams = pq.read_table(out / "exams.parquet").to_pylist()
    images = pq.read_table(out / "images.parquet").to_pylist()
    return exams, images, read_jsonl(out / "rejects.jsonl")


def _codes(rejects: list[dict]) -> dict[tuple[str | None, str | None], set[str]]:
    out: dict[tuple[str | None, str | None], set[str]] = {}
    for r in rejects:
        out.setdefault((r["exam_id"], r["image"]), set()).add(r["code"])
    return out


@pytest.fixture
def faulty_archive(tmp_path: Path) -> Path:
    root = tmp_path / "arch"
    good = image_bytes("JPEG", seed=1)
    for i in range(3):
        _write(root, f"ok/{i}.jpg", image_bytes("JPEG", seed=10 + i))
    _write(root, "ok/3.png", image_bytes("PNG", seed=20))
    _write(root, "dup/a.jpg", good)
    _write(root, "dup/b.jpg", good)  # same bytes as a.jpg: a duplicate frame, still valid
    _write(root, "bad/empty.jpg", b"")
    full = image_bytes("JPEG", size=(64, 64), seed=3)
    _write(root, "bad/truncated.jpg", full[: len(full) // 2])
    png = image_bytes("PNG", size=(64, 64), seed=4)
    _write(root, "bad/truncated.png", png[: len(png) // 2])
    _write(root, "bad/garbage.jpg", b"\x00\x01not an image at all" * 10)
    _write(root, "bad/anim.gif", image_bytes("GIF", seed=5))
    _write(root, "bad/notes.txt", b"some text")
    _write(root, "bad/tiny.png", image_bytes("PNG", size=(4, 4), seed=6))
    _write(tmp_path, "outside.jpg", good)
    rows: list[Any] = [
        {
            "exam_id": "E_OK",
            "report": "Findings: 5 mm polyp in the sigmoid colon.",
            "pathology": "tubular adenoma",
            "images": ["ok/0.jpg", "ok/1.jpg", "ok/3.png", "ok/missing.jpg"],
            "site": "A",
        },
        {"exam_id": "E_OK", "report": "again", "images": ["ok/2.jpg"]},  # duplicate id
        {"report": "no id", "images": ["ok/2.jpg"]},
        {"exam_id": "E_NOREPORT", "images": ["ok/2.jpg"]},
        {"exam_id": "E_NOIMAGES", "report": "text"},
        {"exam_id": "E_BLANK", "report": "   \n\t ", "images": ["ok/2.jpg"]},
        {"exam_id": "E_EMPTYLIST", "report": "text", "images": []},
        {"exam_id": "E_BADLIST", "report": "text", "images": "ok/2.jpg"},
        {"exam_id": "E_BINARY", "report": "abc\u0000\u0001\u0002def", "images": ["ok/2.jpg"]},
        {
            "exam_id": "E_BAD",
            "report": "all bad",
            "images": [
                "bad/empty.jpg",
                "bad/truncated.jpg",
                "bad/truncated.png",
                "bad/garbage.jpg",
                "bad/anim.gif",
                "bad/notes.txt",
                "bad/tiny.png",
                "../outside.jpg",
                "bad",
                7,
                "bad/empty.jpg",
            ],
        },
        {"exam_id": "E_DUP", "report": "two identical frames", "images": ["dup/a.jpg", "dup/b.jpg", "ok/2.jpg"]},
        {"exam_id": 12345, "report": "numeric id", "images": ["ok/2.jpg"]},
        {"exam_id": "a/b", "report": "slash id", "images": ["ok/2.jpg"]},
        "{broken json",
        "[1, 2]",
    ]
    return _manifest(root, rows)


def test_every_fault_has_its_reason_and_valid_rows_arrive(faulty_archive: Path, tmp_path: Path) -> None:
    exams, images, rejects = _run(faulty_archive, tmp_path / "out")
    assert [e["exam_id"] for e in exams] == ["E_OK", "E_DUP", "12345"]
    ok = exams[0]
    assert ok["pathology"] == "tubular adenoma" and ok["n_images"] == 4 and ok["n_valid_images"] == 3
    assert json.loads(ok["meta"]) == {"site": "A"}
    assert ok["report"].startswith("Findings: 5 mm polyp")

    codes = _codes(rejects)
    expected = {
        ("E_OK", "ok/missing.jpg"): "missing_file",
        ("E_NOREPORT", None): "missing_key",
        ("E_NOIMAGES", None): "missing_key",
        ("E_BLANK", None): "empty_report",
        ("E_EMPTYLIST", None): "no_images",
        ("E_BADLIST", None): "bad_images_field",
        ("E_BINARY", None): "report_binary",
        ("E_BAD", "bad/truncated.jpg"): "corrupt_image",
        ("E_BAD", "bad/truncated.png"): "corrupt_image",
        ("E_BAD", "bad/garbage.jpg"): "corrupt_image",
        ("E_BAD", "bad/anim.gif"): "unsupported_format",
        ("E_BAD", "bad/notes.txt"): "unsupported_format",
        ("E_BAD", "bad/tiny.png"): "too_small",
        ("E_BAD", "../outside.jpg"): "path_escapes_root",
        ("E_BAD", "bad"): "not_a_file",
        ("E_BAD", None): "no_valid_images",
        ("a/b", None): "bad_exam_id",
    }
    for key, code in expected.items():
        assert code in codes.get(key, set()), (key, code, codes.get(key))
    by_source = {r["source"]: r["code"] for r in rejects if r["exam_id"] is None}
    assert by_source == {
        "manifest.jsonl:3": "missing_key",
        "manifest.jsonl:14": "bad_json",
        "manifest.jsonl:15": "bad_row",
    }
    all_codes = [r["code"] for r in rejects]
    assert "bad_image_entry" in all_codes
    empty = sorted(r["code"] for r in rejects if r["image"] == "bad/empty.jpg")
    assert empty == ["duplicate_image_in_exam", "empty_file"]  # listed twice: each mention has its reason
    assert all_codes.count("bad_json") == 1 and all_codes.count("bad_row") == 1
    dup = [r for r in rejects if r["code"] == "duplicate_exam_id"]
    assert len(dup) == 1 and "row 1" in dup[0]["message"] and dup[0]["source"] == "manifest.jsonl:2"
    for r in rejects:  # every line is self-explanatory
        assert r["message"] and r["source"] and r["level"] in ("exam", "image")

    by_key = {(i["exam_id"], i["image"]): i for i in images}
    assert by_key[("E_OK", "ok/3.png")]["format"] == "PNG"
    assert (by_key[("E_OK", "ok/0.jpg")]["width"], by_key[("E_OK", "ok/0.jpg")]["height"]) == (48, 40)
    assert by_key[("E_DUP", "dup/b.jpg")]["duplicate_of"] == "E_DUP/dup/a.jpg"
    assert by_key[("E_DUP", "dup/a.jpg")]["duplicate_of"] is None
    assert by_key[("12345", "ok/2.jpg")]["duplicate_of"] == "E_DUP/ok/2.jpg"
    assert Path(by_key[("E_OK", "ok/1.jpg")]["path"]).is_file()
    import hashlib

    assert (
        by_key[("E_OK", "ok/1.jpg")]["sha256"]
        == hashlib.sha256((faulty_archive.parent / "ok/1.jpg").read_bytes()).hexdigest()
    )


def test_parallel_and_serial_agree(faulty_archive: Path, tmp_path: Path) -> None:
    serial = _run(faulty_archive, tmp_path / "s", IngestConfig(workers=1))
    parallel = _run(faulty_archive, tmp_path / "p", IngestConfig(workers=2, chunk_size=3))
    assert serial[0] == parallel[0] and serial[1] == parallel[1]
    assert sorted(map(json.dumps, serial[2])) == sorted(map(json.dumps, parallel[2]))


def test_huge_report_truncate_or_reject(tmp_path: Path) -> None:
    root = tmp_path / "a"
    _write(root, "x/1.jpg", image_bytes())
    huge = "polyp " * 400_000  # 2.4 MB
    man = _manifest(root, [{"exam_id": "H", "report": huge, "images": ["x/1.jpg"]}])
    exams, _, rejects = _run(man, tmp_path / "t", IngestConfig(workers=1))
    assert len(exams) == 1 and exams[0]["report_truncated"]
    assert len(exams[0]["report"].encode()) <= 1_000_000
    assert rejects[0]["code"] == "report_truncated" and rejects[0]["severity"] == "warning"
    exams, _, rejects = _run(man, tmp_path / "r", IngestConfig(workers=1, huge_report="reject"))
    assert exams == [] and rejects[0]["code"] == "report_too_large"


def test_truncation_never_splits_a_character(tmp_path: Path) -> None:
    root = tmp_path / "a"
    _write(root, "x/1.jpg", image_bytes())
    man = _manifest(root, [{"exam_id": "Z", "report": "息肉" * 2000, "images": ["x/1.jpg"]}])
    exams, _, _ = _run(man, tmp_path / "o", IngestConfig(workers=1, max_report_bytes=1024 + 1))
    assert exams[0]["report"] == "息肉" * 170 + "息"  # 341 chars x 3 bytes = 1023 <= 1025


def test_folder_layout_with_gbk_report(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    text = "内镜所见：乙状结肠见一枚0.5cm息肉，予以圈套切除。"
    _write(root, "E1/report.txt", text.encode("gbk"))
    _write(root, "E1/pathology.txt", "管状腺瘤".encode("gb18030"))
    _write(root, "E1/001.jpg", image_bytes(seed=1))
    _write(root, "E1/002.png", image_bytes("PNG", seed=2))
    _write(root, "E2/report.txt", b"Normal colonoscopy. No polyps.")
    _write(root, "E2/001.jpg", image_bytes(seed=3))
    _write(root, "E3/001.jpg", image_bytes(seed=4))  # no report.txt
    _write(root, "E4/report.txt", b"\xff\xfe\x00\x00\xff" * 3)  # neither UTF-8 nor GB18030
    _write(root, "E4/001.jpg", image_bytes(seed=5))
    exams, images, rejects = _run(root, tmp_path / "out")
    by_id = {e["exam_id"]: e for e in exams}
    assert set(by_id) == {"E1", "E2"}
    assert by_id["E1"]["report"] == text and by_id["E1"]["report_encoding"] == "gb18030"
    assert by_id["E1"]["pathology"] == "管状腺瘤"
    assert by_id["E2"]["report_encoding"] == "utf-8" and by_id["E2"]["pathology"] is None
    assert sorted(i["image"] for i in images if i["exam_id"] == "E1") == ["E1/001.jpg", "E1/002.png"]
    codes = _codes(rejects)
    assert codes[("E3", None)] == {"missing_report"}
    assert codes[("E4", None)] & {"report_undecodable", "report_binary"}


def test_csv_and_parquet_manifests_match_jsonl(tmp_path: Path) -> None:
    root = tmp_path / "a"
    for i in range(4):
        _write(root, f"E{i}/1.jpg", image_bytes(seed=i))
    rows = [{"exam_id": f"E{i}", "report": f"report {i}, with comma", "images": [f"E{i}/1.jpg"]} for i in range(4)]
    rows[1]["pathology"] = "hyperplastic polyp"
    jsonl = _manifest(root, rows)
    import csv

    csv_path = root / "m.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["exam_id", "report", "pathology", "images"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "images": ";".join(r["images"])})
    pq_path = root / "m.parquet"
    pq.write_table(pa.Table.from_pylist([{"pathology": None, **r} for r in rows]), pq_path)
    ref = _run(jsonl, tmp_path / "j")
    for path, name in ((csv_path, "c"), (pq_path, "p")):
        got = _run(path, tmp_path / name)
        strip = [{k: v for k, v in e.items() if k not in ("source", "row")} for e in got[0]]
        assert strip == [{k: v for k, v in e.items() if k not in ("source", "row")} for e in ref[0]]
        assert got[1] == ref[1]


def test_unknown_archive_types_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        ingest_archive(tmp_path / "nope.jsonl", tmp_path / "o")
    (tmp_path / "m.xlsx").write_bytes(b"x")
    with pytest.raises(DataFormatError, match="unknown manifest type"):
        ingest_archive(tmp_path / "m.xlsx", tmp_path / "o")


def _many_exams(root: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        _write(root, f"E{i:03d}/1.jpg", image_bytes(seed=i))
        rows.append({"exam_id": f"E{i:03d}", "report": f"report {i}", "images": [f"E{i:03d}/1.jpg"]})
    rows.append({"exam_id": "E000", "report": "late duplicate", "images": ["E001/1.jpg"]})
    return _manifest(root, rows)


def test_interrupted_ingest_resumes_without_redoing_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    man = _many_exams(tmp_path / "a", 20)
    cfg = IngestConfig(workers=1, chunk_size=3)
    reference = _run(man, tmp_path / "ref", cfg)

    # a real hard kill (SIGKILL, no clean-up) in a child process while chunk 4 is being processed
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from endoked.ingest import api
        from endoked.ingest.config import IngestConfig
        real = api._process_chunk
        def dying(k, *a, **kw):
            if k == 4:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(k, *a, **kw)
        api._process_chunk = dying
        api.ingest_archive({str(man)!r}, {str(out)!r}, IngestConfig(workers=1, chunk_size=3), progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, env={**os.environ}, check=False)
    assert proc.returncode == -9
    assert len(list((out / "parts").glob("chunk-*.done"))) == 4
    assert not (out / "exams.parquet").exists()

    processed: list[int] = []
    real = api._process_chunk

    def counting(k: int, *a: Any, **kw: Any) -> None:
        processed.append(k)
        real(k, *a, **kw)

    monkeypatch.setattr(api, "_process_chunk", counting)
    summary = ingest_archive(man, out, cfg)
    assert processed == [4, 5, 6]  # chunks 0-3 were reused
    assert summary.chunks_reused == 4
    resumed = (
        pq.read_table(out / "exams.parquet").to_pylist(),
        pq.read_table(out / "images.parquet").to_pylist(),
        read_jsonl(out / "rejects.jsonl"),
    )
    assert resumed == reference
    assert [r["code"] for r in resumed[2]] == ["duplicate_exam_id"]  # duplicates found across the restart
    assert not (out / "parts").exists()
