"""The run folder under attack: two runs on one folder (exclusive lock naming the holder's PID), a ledger that
is truncated or of the wrong type (clear message; ``--overwrite`` rebuilds it), and an upstream table edited
behind the ledger's back (``--from`` names the file and the stage to re-run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from endoked.cli import main
from endoked.runfolder import RunFolder, RunLockedError
from tests.conftest import REPO, image_bytes

HOLD = """
import sys, time
from endoked.runfolder import RunFolder
with RunFolder(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(120)
"""


def _manifest(root: Path) -> Path:
    (root / "E1").mkdir(parents=True)
    (root / "E1" / "1.jpg").write_bytes(image_bytes())
    (root / "m.jsonl").write_text(json.dumps({"exam_id": "E1", "report": "No polyps.", "images": ["E1/1.jpg"]}) + "\n")
    return root / "m.jsonl"


def _holder(run: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _ingest(man: Path, run: Path, *extra: str) -> list[str]:
    return ["--no-progress", "ingest", "--archive", str(man), "--out", str(run), *extra]


def test_second_run_on_a_locked_folder_exits_2_naming_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    man = _manifest(tmp_path / "a")
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        assert main(_ingest(man, run)) == 2
        err = capsys.readouterr().err
        assert f"PID {holder.pid}" in err and "in use" in err
        assert not (run / "ledger.json").exists()  # nothing was written by the refused run
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        second = subprocess.run(
            [sys.executable, "-m", "endoked", *_ingest(man, run)], capture_output=True, text=True, env=env, timeout=120
        )
        assert second.returncode == 2 and f"PID {holder.pid}" in second.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    # the holder died without cleaning up: its lock file stays, but the kernel released the lock
    assert (run / ".lock").exists()
    assert main(_ingest(man, run)) == 0
    assert (run / ".lock").read_text() == ""  # released on exit


def test_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    with run.lock(), pytest.raises(RunLockedError, match=f"PID {os.getpid()}"), RunFolder(tmp_path / "run").lock():
        pass
    with run.lock():  # released after the block
        pass


@pytest.mark.parametrize("content", ['{"stages": {"ingest": {"status": "do', "[]", '{"stages": []}', "\xff\xfe"])
def test_corrupt_ledger_is_explained_and_overwrite_rebuilds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    man = _manifest(tmp_path / "a")
    run = tmp_path / "run"
    assert main(_ingest(man, run)) == 0
    (run / "ledger.json").write_bytes(content.encode("latin-1"))
    capsys.readouterr()
    assert main(_ingest(man, run)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ledger.json" in err and "--overwrite" in err
    assert main(_ingest(man, run, "--overwrite")) == 0
    aside = list(run.glob("ledger.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content.encode("latin-1")
    assert RunFolder(run).outputs_intact("ingest")
    assert "moved to ledger.json.corrupt-" in (run / "log.txt").read_text()
    assert main(_ingest(man, run)) == 0  # the rebuilt ledger resumes like any other
    assert "ingest      skipped" in capsys.readouterr().out


def test_from_stage_rechecks_upstream_tables_against_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    man = _manifest(tmp_path / "a")
    run = tmp_path / "run"
    assert main(_ingest(man, run)) == 0
    exams = run / "ingest" / "exams.parquet"
    exams.write_bytes(exams.read_bytes()[:-20] + b"\x00" * 20)
    capsys.readouterr()
    assert main(["--no-progress", "run", "--out", str(run), "--from", "extract", "--to", "extract"]) == 1
    err = capsys.readouterr().err
    assert "exams.parquet" in err and "sha256" in err and "--from ingest" in err
    assert (RunFolder(run).entry("extract") or {}).get("status") != "done"


def test_commands_writing_into_a_run_take_its_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "ledger.json").write_text('{"stages": {}}', encoding="utf-8")
    model, images = tmp_path / "model.pt", tmp_path / "images"  # never reached: the lock is refused first
    commands = [
        ["export", str(run), "--format", "pranet", "--out", str(tmp_path / "export")],
        ["report", str(run)],
        ["mil", "score", "--model", str(model), "--images", str(images), "--out", str(run / "mil" / "s.csv")],
        ["predict", "--model", str(model), "--images", str(images), "--out", str(run / "maps")],
        ["seg", "train", "--data", str(images), "--out", str(run / "seg_sup")],
        ["biopsy", "predict", "--model", str(model), "--images", str(images), "--out", str(run / "b.csv")],
        ["biopsy", "train", "--run", str(run), "--out", str(tmp_path / "biopsy")],
        ["biopsy", "eval", "--model", str(model), "--labels", str(images), "--out", str(run / "biopsy_eval")],
        ["extract", "--in", str(tmp_path / "r.jsonl"), "--out", str(run / "labels.jsonl")],
        ["eval", "--pred", str(images), "--gt", str(images), "--json", str(run / "m.json")],
    ]
    holder = _holder(run)
    try:
        for cmd in commands:
            assert main(["--no-progress", *cmd]) == 2, cmd
            err = capsys.readouterr().err
            assert f"PID {holder.pid}" in err and "Traceback" not in err, (cmd, err)
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        second = subprocess.run(
            [sys.executable, "-m", "endoked", *commands[0]], capture_output=True, text=True, env=env, timeout=120
        )
        assert second.returncode == 2 and f"PID {holder.pid}" in second.stderr
        assert not (tmp_path / "export").exists() and not (run / "maps").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert main(["--no-progress", *commands[3]]) == 2  # the lock is free: now the missing model is the error
    assert "PID" not in capsys.readouterr().err
