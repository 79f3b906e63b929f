"""A pooled ingest killed with SIGKILL (no clean-up at all) leaves no worker processes behind: each worker asks
the kernel to end it when its parent dies, so a hard kill never leaves orphans checking images."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, image_bytes

# the image check is slowed down and prints its worker's PID, so the test knows the pool is busy and which
# processes belong to it before it kills the parent
SLOW_INGEST = """
import os, sys, time
from endoked.ingest import api
from endoked.ingest.config import IngestConfig

class Slow:
    def __init__(self, inner):
        self.inner = inner

    def __call__(self, path):
        os.write(1, f"worker {os.getpid()}\\n".encode())  # one write: lines from two workers never interleave
        time.sleep(0.2)
        return self.inner(path)

real = api.image_checker
api.image_checker = lambda cfg: Slow(real(cfg))
api.ingest_archive(sys.argv[1], sys.argv[2], IngestConfig(workers=2, chunk_size=64))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has finished; it waits only to be reaped


def test_sigkill_of_a_pooled_ingest_leaves_no_workers(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    rows = []
    for k in range(64):
        (tmp_path / "img" / f"{k}.png").write_bytes(image_bytes("PNG", seed=k))
        rows.append(json.dumps({"exam_id": f"E{k}", "report": "polyp", "images": [f"img/{k}.png"]}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-c", SLOW_INGEST, str(tmp_path / "m.jsonl"), str(tmp_path / "out")]
    parent = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    workers: set[int] = set()
    try:
        assert parent.stdout is not None
        while len(workers) < 2:
            line = parent.stdout.readline()
            assert line, "the ingest ended before its pool started"
            found = re.fullmatch(r"worker (\d+)\n?", line)
            if found:  # anything else the ingest prints on stdout is not a worker's line
                workers.add(int(found.group(1)))
        assert parent.pid not in workers and all(_alive(w) for w in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = sorted(w for w in workers if _alive(w))
        assert not left, f"worker process(es) {left} outlived the killed ingest"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for w in workers:  # clean up after a failure: only the workers this test saw
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if parent.stdout is not None:
            parent.stdout.close()
