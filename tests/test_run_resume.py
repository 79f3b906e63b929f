"""`endoked run` killed mid-stage by a real signal resumes without redoing or losing finished work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from endoked.cli import main
from endoked.synth.api import SynthConfig, generate_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("arch")
    generate_archive(root, SynthConfig(exams=24, seed=3, size=64, images_per_exam=(2, 3)), progress=False)
    return root / "manifest.jsonl"


def _tables(run: Path) -> dict[str, list[dict]]:
    return {
        name: pq.read_table(run / rel).to_pylist()
        for name, rel in (
            ("exams", "ingest/exams.parquet"),
            ("images", "ingest/images.parquet"),
            ("labels", "extract/labels.parquet"),
        )
    }


ARGS = ["--no-progress", "run", "--to", "extract", "--set", "extract.chunk_size=5", "--set", "ingest.workers=1"]


def test_killed_run_resumes_to_identical_outputs(archive: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    assert main([*ARGS, "--archive", str(archive), "--out", str(ref)]) == 0

    run = tmp_path / "killed"
    child = textwrap.dedent(f"""
        import os, signal, sys
        import endoked.extract.stage as st
        real, calls = st.process_batch, []
        def dying(*a, **kw):
            calls.append(1)
            if len(calls) == 3:          # third chunk of the extract stage: SIGKILL, no clean-up at all
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **kw)
        st.process_batch = dying
        from endoked.cli import main
        sys.exit(main({[*ARGS, "--archive", str(archive), "--out", str(run)]!r}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, env={**os.environ}, check=False, timeout=300
    )
    assert proc.returncode == -9, proc.stderr
    ledger = json.loads((run / "ledger.json").read_text())["stages"]
    assert ledger["ingest"]["status"] == "done" and ledger["extract"]["status"] == "running"
    assert len(list((run / "extract" / "chunks").glob("part-*.jsonl"))) == 2

    assert main([*ARGS, "--out", str(run)]) == 0  # same command, no --archive: the run folder remembers
    ledger = json.loads((run / "ledger.json").read_text())["stages"]
    assert ledger["ingest"]["attempts"] == 1  # the finished stage was not redone
    assert ledger["extract"]["attempts"] == 2 and ledger["extract"]["counts"]["chunks_reused"] == 2
    log = (run / "log.txt").read_text()
    assert log.count("stage ingest: running") == 1 and "stage ingest: up to date, skipped" in log
    assert "stage extract: resuming" in log
    assert _tables(run) == _tables(ref)


def test_config_change_reruns_that_stage_and_later_only(archive: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    assert main([*ARGS, "--archive", str(archive), "--out", str(run)]) == 0
    assert main([*ARGS, "--out", str(run), "--set", "extract.chunk_size=7"]) == 0
    ledger = json.loads((run / "ledger.json").read_text())["stages"]
    assert ledger["ingest"]["attempts"] == 1 and ledger["extract"]["attempts"] == 2
