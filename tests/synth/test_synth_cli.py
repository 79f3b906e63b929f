"""``endoked synth`` command: exit codes, outputs, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from endoked.cli import main


def test_synth_command_writes_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "arch"
    code = main(
        [
            "--no-progress",
            "synth",
            "--out",
            str(out),
            "--exams",
            "3",
            "--seed",
            "2",
            "--size",
            "48",
            "--lang",
            "zh",
            "--set",
            "synth.images_per_exam=[1,2]",
        ]
    )
    assert code == 0
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all(1 <= len(r["images"]) <= 2 for r in rows)
    meta = [json.loads(x) for x in (out / "truth" / "meta.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {m["lang"] for m in meta} == {"zh"}
    assert "wrote 3 exams" in capsys.readouterr().out
    # the same command again keeps the identical archive
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--exams",
                "3",
                "--seed",
                "2",
                "--size",
                "48",
                "--lang",
                "zh",
                "--set",
                "synth.images_per_exam=[1,2]",
            ]
        )
        == 0
    )
    assert "already present" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--exams", "0"], "exams"),
        (["--lang", "en,fr"], "langs"),
        (["--size", "8"], "size"),
        (["--set", "synth.images_per_exam=[5,2]"], "images_per_exam"),
        (["--set", "synth.nonsense=1"], "nonsense"),
    ],
)
def test_bad_arguments_fail_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code = main(["synth", "--out", str(tmp_path / "x"), *args])
    assert code != 0
    err = capsys.readouterr().err
    assert "error:" in err and needle in err
    assert not (tmp_path / "x" / "manifest.jsonl").exists()


def test_non_integer_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["synth", "--out", str(tmp_path / "x"), "--exams", "many"]) == 2


def test_other_archive_needs_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    base = ["synth", "--out", str(out), "--exams", "1", "--size", "32"]
    assert main([*base, "--seed", "1"]) == 0
    assert main([*base, "--seed", "2"]) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert main([*base, "--seed", "2", "--overwrite"]) == 0
