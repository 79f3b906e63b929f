"""Executors: the same chunks, rows and files under the local and the Ray executor; setup once per actor; error
rows and stage errors as in local; a worker killed mid-stage or a driver killed mid-stage loses nothing; a pipeline
run on Ray equals the local one; a missing Ray is one line and exit 2.

The Ray tests share one small local cluster (2 CPUs) and skip with a reason when Ray is not installed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchmarks.compare_runs import compare_runs

from endoked.batching import BatchOutput, BatchRun, run_batches
from endoked.cli import main
from endoked.executors import ExecutorConfig, LocalExecutor, RayExecutor, pool_shape

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ("toy/records", "prompt_seg/rejected")

try:
    import ray as _ray
except ImportError:
    _ray = None

needs_ray = pytest.mark.skipif(_ray is None, reason="Ray is not installed (pip install 'endoked[ray]')")


# --- a toy batch core (module level, so Ray workers can unpickle it) -------------------------------------------


def _rows(n: int) -> list[dict[str, Any]]:
    """Exam rows; every fifth image is 'unreadable' (the core records it as a rejected row)."""
    return [{"exam_id": f"E{i:03d}", "image": f"{i}.png" if i % 5 != 3 else f"{i}.broken"} for i in range(n)]


def toy_setup(log_dir: str) -> dict[str, Any]:
    """Records one file per call (the calling process's pid and a unique suffix)."""
    Path(log_dir, f"setup-{os.getpid()}-{time.monotonic_ns()}").touch()
    return {"scale": 0.5}


def toy_process(
    rows: list[dict[str, Any]],
    state: dict[str, Any],
    log_dir: str,
    kill_at: str | None = None,
    fail_at: str | None = None,
    slow_s: float = 0.0,
) -> BatchOutput:
    """Good images become records and files; broken ones become rejected rows. ``kill_at``: the first process
    to see that exam SIGKILLs itself (once, remembered by a flag file); ``fail_at``: raises on that exam."""
    out = BatchOutput()
    for r in rows:
        Path(log_dir, f"pid-{os.getpid()}").touch()
        if kill_at == r["exam_id"]:
            flag = Path(log_dir, "killed")
            if not flag.exists():
                flag.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        if fail_at == r["exam_id"]:
            raise ValueError(f"boom at {r['exam_id']}")
        if r["image"].endswith(".broken"):
            out.tables.setdefault("prompt_seg/rejected", []).append({**r, "reason": "unreadable image"})
        else:
            i = int(r["exam_id"][1:])
            out.tables.setdefault("toy/records", []).append({**r, "score": i * state["scale"]})
            out.files[f"files/{r['exam_id']}.bin"] = bytes([i % 256]) * 3
    time.sleep(slow_s)
    return out


def _run(root: Path, executor: Any, n: int = 23, chunk_size: int = 3, **core: Any) -> tuple[BatchRun, Path]:
    log_dir = root / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    res = run_batches(
        _rows(n),
        setup=functools.partial(toy_setup, str(log_dir)),
        process_batch=functools.partial(toy_process, log_dir=str(log_dir), **core),
        outputs=OUTPUTS,
        chunk_dir=root / "chunks",
        run_root=root,
        chunk_size=chunk_size,
        desc="toy",
        progress=False,
        executor=executor,
    )
    return res, log_dir


def _folder(root: Path) -> dict[str, bytes]:
    """Every chunk part, marker and file by its path below ``root`` (the log folder left out)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "log"
    }


def _setups(log_dir: Path) -> list[str]:
    return sorted(p.name.split("-")[1] for p in log_dir.glob("setup-*"))


# --- Ray cluster shared by the module --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster with 2 CPUs; yields its address (for subprocesses that join it)."""
    if _ray is None:
        pytest.skip("Ray is not installed (pip install 'endoked[ray]')")
    _ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import the tests
    _ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", configure_logging=False)
    try:
        yield str(_ray.get_runtime_context().gcs_address)
    finally:
        _ray.shutdown()


def _ray_executor(**cfg: Any) -> RayExecutor:
    return RayExecutor(ExecutorConfig(kind="ray", **cfg))


# --- tests ------------------------------------------------------------------------------------------------------


@needs_ray
def test_ray_equals_local_setup_once_per_actor_and_error_rows(ray_cluster: str, tmp_path: Path) -> None:
    local, local_log = _run(tmp_path / "local", LocalExecutor())
    remote, remote_log = _run(tmp_path / "ray", _ray_executor(actors=2))
    assert remote.tables == local.tables and remote.chunks == local.chunks == 8
    assert _folder(tmp_path / "ray") == _folder(tmp_path / "local")  # same parts, markers and files, byte for byte
    rejected = remote.tables["prompt_seg/rejected"]
    assert [r["exam_id"] for r in rejected] == ["E003", "E008", "E013", "E018"]
    assert {r["reason"] for r in rejected} == {"unreadable image"}
    assert len(remote.tables["toy/records"]) == 23 - 4
    assert len(_setups(local_log)) == 1
    workers = {p.name.split("-")[1] for p in remote_log.glob("pid-*")}
    assert str(os.getpid()) not in workers and len(workers) == 2  # both actors ran chunks, the driver none
    assert _setups(remote_log) == sorted(workers)  # setup exactly once per actor

    again, again_log = _run(tmp_path / "ray", _ray_executor(actors=2))  # resumed: nothing left, no actor built
    assert again.chunks_reused == 8 and again.tables == local.tables and _setups(again_log) == _setups(remote_log)


@needs_ray
def test_exception_in_process_batch_fails_the_stage(ray_cluster: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="boom at E010"):
        _run(tmp_path, _ray_executor(actors=2), fail_at="E010")
    markers = {p.name for p in (tmp_path / "chunks").glob("*.done.json")}
    assert "part-00003.done.json" not in markers  # the failed chunk (E009-E011) is not marked finished


@needs_ray
def test_worker_killed_mid_stage_loses_nothing(ray_cluster: str, tmp_path: Path) -> None:
    clean, _ = _run(tmp_path / "clean", LocalExecutor())
    res, log = _run(tmp_path / "killed", _ray_executor(actors=2, max_restarts=2), kill_at="E013", slow_s=0.05)
    killed = int((log / "killed").read_text())
    assert killed != os.getpid()  # an actor's worker process died (SIGKILL) while the stage ran
    assert res.tables == clean.tables and res.chunks_reused == 0
    assert _folder(tmp_path / "killed") == _folder(tmp_path / "clean")  # nothing lost, nothing written twice
    assert len(list((tmp_path / "killed" / "chunks").glob("*.done.json"))) == 8
    assert str(killed) in _setups(log) and len(_setups(log)) == 3  # the restarted actor built its state again


@needs_ray
def test_actor_dying_in_setup_every_time_fails_the_stage(ray_cluster: str, tmp_path: Path) -> None:
    from endoked.errors import StageError

    def run() -> None:
        run_batches(
            _rows(4),
            setup=_die,
            process_batch=functools.partial(toy_process, log_dir=str(tmp_path)),
            outputs=OUTPUTS,
            chunk_dir=tmp_path / "chunks",
            run_root=tmp_path,
            chunk_size=2,
            desc="toy",
            progress=False,
            executor=_ray_executor(actors=1, max_restarts=1),
        )

    with pytest.raises(StageError, match="failed on every Ray actor"):
        run()
    assert not list((tmp_path / "chunks").glob("*.done.json"))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


_DRIVER = textwrap.dedent(
    """
    import sys
    import ray
    from endoked.executors import ExecutorConfig, RayExecutor
    from tests import test_executors as t

    ray.init(address=sys.argv[2], logging_level="ERROR", configure_logging=False)
    ray.cloudpickle.register_pickle_by_value(t)
    t._run(t.Path(sys.argv[1]), RayExecutor(ExecutorConfig(kind="ray", actors=1)), slow_s=0.3)
    """
)


@needs_ray
def test_driver_killed_then_resumed_locally(ray_cluster: str, tmp_path: Path) -> None:
    clean, _ = _run(tmp_path / "clean", LocalExecutor())
    root = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(root), ray_cluster], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list((root / "chunks").glob("*.done.json"))) < 2:
            assert proc.poll() is None, "the driver ended before it was killed"
            assert time.monotonic() < deadline, "no chunk finished in 2 minutes"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = len(list((root / "chunks").glob("*.done.json")))
    assert 2 <= done < 8  # killed part-way
    resumed, _ = _run(root, LocalExecutor())
    assert resumed.chunks_reused == done and resumed.tables == clean.tables
    assert _folder(root) == _folder(tmp_path / "clean")


_PRIVATE = textwrap.dedent(
    """
    import sys
    import ray
    from endoked.executors import ExecutorConfig, RayExecutor
    from tests import test_executors as t

    ex = RayExecutor(ExecutorConfig(kind="ray", actors=2))
    res, _ = t._run(t.Path(sys.argv[1]), ex)
    assert ray.is_initialized()
    ex.close()
    assert not ray.is_initialized()
    print(len(res.tables["toy/records"]))
    """
)


@needs_ray
def test_private_cluster_started_and_shut_down(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    out = subprocess.run(
        [sys.executable, "-c", _PRIVATE, str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "19"


def _synth(root: Path) -> Path:
    assert main(["synth", "--out", str(root / "arch"), "--exams", "4", "--size", "96", "--seed", "3"]) == 0
    return root / "arch"


PIPELINE_SETS = [
    "mil.epochs=2",
    "mil.image_size=128",
    "cam.epochs=1",
    "cam.image_size=128",
    "cam.scales=[1.0]",
    "cam.chunk_size=1",
    "extract.chunk_size=1",
    "prompt_seg.chunk_size=1",
]


@needs_ray
def test_pipeline_ray_equals_local(ray_cluster: str, tmp_path: Path) -> None:
    import torch

    arch = _synth(tmp_path)
    runs = {}
    threads = torch.get_num_threads()
    for kind in ("local", "ray"):
        runs[kind] = tmp_path / kind
        args = ["run", "--out", str(runs[kind]), "--archive", str(arch), "--profile", "cpu-small", "--to", "prompt_seg"]
        args += ["--no-check", "--executor", kind] + [a for s in PIPELINE_SETS for a in ("--set", s)]
        # both runs start at the same thread count: prompt_seg.threads changes the process's count, and the CAM head
        # (trained in this process under either executor) comes out different in the fifth decimal at another count
        torch.set_num_threads(threads)
        assert main(args) == 0
    torch.set_num_threads(threads)
    n_tables, diffs = compare_runs(runs["local"], runs["ray"], atol=1e-5)
    assert diffs == [] and n_tables >= 4
    for stage in ("ingest", "extract", "cam", "prompt_seg"):
        assert list(runs["ray"].glob(f"{stage}/*.parquet")), stage
    masks = sorted(p.relative_to(runs["local"]) for p in runs["local"].glob("prompt_seg/masks/*.png"))
    assert masks == sorted(p.relative_to(runs["ray"]) for p in runs["ray"].glob("prompt_seg/masks/*.png"))


def test_ray_missing_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "arch"
    (root / "E1").mkdir(parents=True)
    from tests.conftest import image_bytes

    (root / "E1" / "1.jpg").write_bytes(image_bytes())
    (root / "manifest.jsonl").write_text(
        json.dumps({"exam_id": "E1", "report": "No polyps.", "images": ["E1/1.jpg"]}) + "\n"
    )
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    args = ["run", "--out", str(tmp_path / "run"), "--archive", str(root), "--to", "extract", "--no-check"]
    assert main([*args, "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'endoked[ray]'" in err
    assert main([*args, "--executor", "local"]) == 0
    assert list((tmp_path / "run" / "extract").glob("*.parquet"))
    res, _ = _run(tmp_path / "toy", LocalExecutor())
    assert res.chunks == 8 and len(res.tables["toy/records"]) == 19


FAKE_CLUSTERS = [
    # (config, cluster resources, pending chunks) -> (actors, cpus, gpus)
    ({}, {"CPU": 16.0}, 100, (16, 1.0, 0.0)),
    ({}, {"CPU": 16.0}, 3, (3, 1.0, 0.0)),
    ({"cpus_per_actor": 4.0}, {"CPU": 16.0}, 100, (4, 4.0, 0.0)),
    ({}, {"CPU": 64.0, "GPU": 8.0}, 100, (8, 1.0, 1.0)),
    ({}, {"CPU": 256.0, "GPU": 32.0}, 100, (32, 1.0, 1.0)),  # 4 nodes of 8 GPUs
    ({}, {"CPU": 4.0, "GPU": 8.0}, 100, (4, 1.0, 1.0)),  # fewer CPUs than GPUs: what fits
    ({"actors": 16}, {"CPU": 64.0, "GPU": 8.0}, 100, (16, 1.0, 0.5)),  # two actors share a GPU
    ({"gpus_per_actor": 0.0}, {"CPU": 8.0, "GPU": 8.0}, 100, (8, 1.0, 0.0)),
    ({"gpus_per_actor": 2.0}, {"CPU": 64.0, "GPU": 8.0}, 100, (4, 1.0, 2.0)),
    ({"actors": 4}, {"CPU": 2.0}, 100, (2, 1.0, 0.0)),  # more actors asked than fit: capped, no hang
]


@pytest.mark.parametrize(("cfg", "resources", "pending", "shape"), FAKE_CLUSTERS)
def test_pool_shape(cfg: dict[str, Any], resources: dict[str, float], pending: int, shape: tuple[Any, ...]) -> None:
    assert pool_shape(ExecutorConfig(kind="ray", **cfg), resources, pending) == shape
