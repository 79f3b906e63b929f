"""Hostile files inside archives: every file is read through one safe reader, so symlinks out of the archive,
FIFOs, devices, directories and oversized files are recorded rejects naming the file (never a hang, never a
read outside the archive), and every exam is accounted for (kept + rejected = exams in the archive)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from endoked.ingest.api import ingest_archive
from endoked.ingest.config import IngestConfig
from endoked.io import read_jsonl
from endoked.safe_read import UnsafeFileError, read_regular_file
from tests.conftest import image_bytes

SERIAL = IngestConfig(workers=1)


def _folder_archive(root: Path, n: int) -> Path:
    for k in range(n):
        exam = root / f"E{k}"
        exam.mkdir(parents=True)
        (exam / "report.txt").write_text(f"polyp {k}", encoding="utf-8")
        (exam / "1.png").write_bytes(image_bytes("PNG", seed=k))
    return root


def _ingest(archive: Path, out: Path, cfg: IngestConfig = SERIAL, timeout: float = 60.0) -> tuple[list, list]:
    """Ingest in a thread so that a read that blocks fails the test instead of hanging it."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            ingest_archive(archive, out, cfg)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "ingest blocked"
    if errors:
        raise errors[0]
    exams = pq.read_table(out / "exams.parquet").to_pylist()
    rejects = [r for r in read_jsonl(out / "rejects.jsonl") if r["level"] == "exam"]
    return exams, rejects


def test_report_symlink_out_of_the_archive_is_rejected_unread(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 3)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET", encoding="utf-8")
    (arch / "E1" / "report.txt").unlink()
    (arch / "E1" / "report.txt").symlink_to(secret)
    exams, rejects = _ingest(arch, tmp_path / "out")
    assert len(exams) + len(rejects) == 3
    assert [e["exam_id"] for e in exams] == ["E0", "E2"]
    assert all("SECRET" not in e["report"] for e in exams)
    (rej,) = rejects
    assert rej["code"] == "report_unreadable" and rej["exam_id"] == "E1"
    assert "outside the archive root" in rej["message"] and "report.txt" in rej["message"]


def test_report_fifo_does_not_block(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 2)
    (arch / "E0" / "report.txt").unlink()
    os.mkfifo(arch / "E0" / "report.txt")
    os.mkfifo(arch / "E1" / "pathology.txt")
    exams, rejects = _ingest(arch, tmp_path / "out", timeout=30)
    assert exams == []
    assert sorted((r["exam_id"], r["code"]) for r in rejects) == [
        ("E0", "report_unreadable"),
        ("E1", "report_unreadable"),
    ]
    assert all("FIFO" in r["message"] for r in rejects)


def test_report_directory_is_rejected(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 2)
    (arch / "E1" / "report.txt").unlink()
    (arch / "E1" / "report.txt").mkdir()
    exams, rejects = _ingest(arch, tmp_path / "out")
    assert [e["exam_id"] for e in exams] == ["E0"]
    assert [(r["exam_id"], r["code"]) for r in rejects] == [("E1", "report_unreadable")]
    assert "is a directory" in rejects[0]["message"]


def test_report_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 1)
    (arch / "E0" / "report.txt").unlink()
    (arch / "E0" / "report.txt").symlink_to("/dev/zero")
    exams, rejects = _ingest(arch, tmp_path / "out", timeout=30)
    assert exams == [] and [r["code"] for r in rejects] == ["report_unreadable"]


def test_safe_reader_refuses_devices_and_directories_without_reading() -> None:
    with pytest.raises(UnsafeFileError, match="character device") as info:
        read_regular_file("/dev/zero")
    assert info.value.code == "not_a_file"
    with pytest.raises(UnsafeFileError, match="directory"):
        read_regular_file("/")
    with pytest.raises(UnsafeFileError, match="NUL") as info:
        read_regular_file("a\x00b")
    assert info.value.code == "bad_path"


def test_report_file_over_the_cap_is_rejected_unread(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 2)
    (arch / "E0" / "report.txt").write_bytes(b"polyp " * 400)
    cfg = IngestConfig(workers=1, max_report_file_bytes=1024)
    exams, rejects = _ingest(arch, tmp_path / "out", cfg)
    assert [e["exam_id"] for e in exams] == ["E1"]
    assert [(r["exam_id"], r["code"]) for r in rejects] == [("E0", "report_too_large")]
    assert "2400 bytes" in rejects[0]["message"] and "1024" in rejects[0]["message"]


def test_image_over_the_cap_and_image_fifo_are_image_rejects(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 2)
    (arch / "E0" / "2.png").write_bytes(image_bytes("PNG", size=(400, 400)))
    os.mkfifo(arch / "E1" / "2.png")
    cfg = IngestConfig(workers=1, max_image_bytes=100_000)
    _ingest(arch, tmp_path / "out", cfg, timeout=30)
    images = pq.read_table(tmp_path / "out" / "images.parquet").to_pylist()
    assert sorted(i["image"] for i in images) == ["E0/1.png", "E1/1.png"]
    img_rejects = {r["image"]: r for r in read_jsonl(tmp_path / "out" / "rejects.jsonl") if r["level"] == "image"}
    assert img_rejects["E0/2.png"]["code"] == "file_too_large"
    assert img_rejects["E1/2.png"]["code"] == "not_a_file" and "FIFO" in img_rejects["E1/2.png"]["message"]


def test_non_utf8_folder_and_file_names_are_recorded_rejects(tmp_path: Path) -> None:
    arch = _folder_archive(tmp_path / "a", 2)
    bad_exam = os.path.join(os.fsencode(arch), b"E\xff")
    os.mkdir(bad_exam)
    Path(os.fsdecode(os.path.join(bad_exam, b"report.txt"))).write_text("polyp", encoding="utf-8")
    Path(os.fsdecode(os.path.join(bad_exam, b"1.png"))).write_bytes(image_bytes("PNG"))
    Path(os.fsdecode(os.path.join(os.fsencode(arch / "E1"), b"\xfe.png"))).write_bytes(image_bytes("PNG"))
    exams, rejects = _ingest(arch, tmp_path / "out")
    assert len(exams) + len(rejects) == 3
    assert [e["exam_id"] for e in exams] == ["E0", "E1"]
    assert [r["code"] for r in rejects] == ["bad_text"] and "\\udcff" in rejects[0]["message"]
    img_rejects = [r for r in read_jsonl(tmp_path / "out" / "rejects.jsonl") if r["level"] == "image"]
    assert [r["code"] for r in img_rejects] == ["bad_image_entry"] and "not valid UTF-8" in img_rejects[0]["message"]
