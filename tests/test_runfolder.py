from __future__ import annotations

import json
from pathlib import Path

import pytest

from endoked.config import RunConfig
from endoked.errors import StageError
from endoked.io import atomic_write_text, read_jsonl, sha256_file, write_jsonl
from endoked.pipeline import StageContext, StageResult, StageSpec, run_stage, select_stages
from endoked.runfolder import RunFolder


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "table.jsonl"
    write_jsonl(dest, [{"a": 1}])

    def rows():  # fails half-way through the write
        yield {"a": 2}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_jsonl(dest, rows())
    assert read_jsonl(dest) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["table.jsonl"]  # no temp file left behind


def _counting_stage(calls: list[str], name: str = "toy", depends: tuple[str, ...] = ()) -> StageSpec:
    def run(ctx: StageContext) -> StageResult:
        calls.append(name)
        out = ctx.work_dir / "out.txt"
        atomic_write_text(out, f"{name} seed={ctx.config.seed}")
        return StageResult(outputs={"out": ctx.run.rel(out)}, counts={"n": 1})

    return StageSpec(name=name, run=run, depends=depends, config_sections=("ingest",))


def test_each_stage_starts_from_its_own_seeded_global_generators(tmp_path: Path) -> None:
    import random

    import numpy as np
    import torch

    draws: dict[str, list[tuple[float, float, float]]] = {}

    def spec(name: str) -> StageSpec:
        def run(ctx: StageContext) -> StageResult:
            draws.setdefault(name, []).append((random.random(), float(np.random.rand()), float(torch.rand(1))))
            out = ctx.work_dir / "out.txt"
            atomic_write_text(out, "x")
            return StageResult(outputs={"out": ctx.run.rel(out)})

        return StageSpec(name=name, run=run, config_sections=("ingest",))

    for k in range(2):
        random.seed(k)
        np.random.seed(k + 7)
        torch.manual_seed(k + 11)
        run = RunFolder(tmp_path / f"run{k}")
        run_stage(run, RunConfig(seed=3), spec("a"))
        run_stage(run, RunConfig(seed=3), spec("b"))
    run_stage(RunFolder(tmp_path / "other-seed"), RunConfig(seed=4), spec("a"))
    assert draws["a"][0] == draws["a"][1] and draws["b"][0] == draws["b"][1]  # the history before does not matter
    assert draws["a"][0] != draws["b"][0]  # stages do not share one stream
    assert draws["a"][2] != draws["a"][0]  # the run seed does matter


def test_stage_skipped_when_inputs_unchanged_and_rerun_when_changed(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    calls: list[str] = []
    a, b = _counting_stage(calls, "a"), _counting_stage(calls, "b", depends=("a",))
    cfg = RunConfig()
    assert run_stage(run, cfg, a)[0] == "ran"
    assert run_stage(run, cfg, b)[0] == "ran"
    assert run_stage(run, cfg, a)[0] == "skipped"
    assert run_stage(run, cfg, b)[0] == "skipped"
    assert calls == ["a", "b"]

    # a config change of the stage re-runs it; its output changes, so the next stage re-runs too
    cfg2 = RunConfig(seed=1)
    assert run_stage(run, cfg2, a)[0] == "ran"
    assert run_stage(run, cfg2, b)[0] == "ran"
    # an output damaged on disk is detected through its hash
    (run.root / "b" / "out.txt").write_text("tampered")
    assert run_stage(run, cfg2, b)[0] == "ran"
    # --overwrite forces a re-run
    assert run_stage(run, cfg2, a, overwrite=True)[0] == "ran"
    assert calls == ["a", "b", "a", "b", "b", "a"]
    entry = run.entry("a")
    assert entry is not None and entry["status"] == "done"
    assert entry["outputs"]["out"]["sha256"] == sha256_file(run.root / "a" / "out.txt")


def test_stage_records_the_process_peak_memory(tmp_path: Path) -> None:
    import resource

    from endoked.runner import summary_lines

    run = RunFolder(tmp_path / "run")
    calls: list[str] = []
    run_stage(run, RunConfig(), _counting_stage(calls, "a"))
    peak = (run.entry("a") or {})["peak_rss_mb"]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # earlier tests' subprocesses
    assert own - 1 <= peak <= max(own, children) + 1 and peak > 10  # pytest itself holds tens of MiB
    assert f"{peak / 1024:.1f} GB" in summary_lines(run, {"a": "ran"})[0]


def test_interrupted_stage_resumes_with_partial_work(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    done_items: list[int] = []
    crash = {"at": 3}

    def run_fn(ctx: StageContext) -> StageResult:
        for i in range(5):
            part = ctx.work_dir / f"part-{i}.txt"
            if part.exists():
                continue
            if i == crash.get("at"):
                crash.clear()
                raise RuntimeError("power cut")  # as if the machine died mid-stage
            done_items.append(i)
            atomic_write_text(part, str(i))
        out = ctx.work_dir / "all.txt"
        atomic_write_text(out, "".join((ctx.work_dir / f"part-{i}.txt").read_text() for i in range(5)))
        return StageResult(outputs={"all": ctx.run.rel(out)})

    spec = StageSpec(name="chunks", run=run_fn, config_sections=("ingest",))
    with pytest.raises(RuntimeError, match="power cut"):
        run_stage(run, RunConfig(), spec)
    assert run.entry("chunks")["status"] == "failed"  # type: ignore[index]
    assert run_stage(run, RunConfig(), spec)[0] == "resumed"
    assert done_items == [0, 1, 2, 3, 4]  # nothing redone, nothing lost
    assert (run.root / "chunks" / "all.txt").read_text() == "01234"

    # with different inputs the partial work is discarded instead of reused
    (run.root / "chunks" / "part-4.txt").write_text("stale")
    assert run_stage(run, RunConfig(seed=3), spec)[0] == "ran"
    assert (run.root / "chunks" / "all.txt").read_text() == "01234"


def test_missing_upstream_is_a_clear_error(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    with pytest.raises(StageError, match="needs 'a'"):
        run_stage(run, RunConfig(), _counting_stage([], "b", depends=("a",)))
    with pytest.raises(StageError, match="has not finished"):
        run.output("a", "out")


def test_corrupt_ledger_is_reported(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    run.ledger_path.write_text("{not json")
    with pytest.raises(StageError, match="corrupt"):
        run.ledger()


def test_select_stages_validates_names() -> None:
    stages = {n: _counting_stage([], n) for n in ("ingest", "extract", "prompt_seg")}
    assert [s.name for s in select_stages(stages, "extract", None)] == ["extract", "prompt_seg"]
    assert [s.name for s in select_stages(stages, None, "prompt-seg")][-1] == "prompt_seg"
    with pytest.raises(StageError, match="available"):
        select_stages(stages, "nope", None)
    with pytest.raises(StageError, match="comes after"):
        select_stages(stages, "prompt_seg", "ingest")


def test_env_json_written(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    run.init("seed: 4\n", seed=4, device="cpu")
    env = json.loads((run.root / "env.json").read_text())
    assert env["seed"] == 4 and env["device"] == "cpu" and env["packages"]["numpy"]
    assert (run.root / "config.yaml").read_text() == "seed: 4\n"
