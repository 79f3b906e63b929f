from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from endoked.cli import main
from tests.conftest import image_bytes


def _archive(root: Path) -> Path:
    (root / "E1").mkdir(parents=True)
    (root / "E1" / "1.jpg").write_bytes(image_bytes())
    (root / "manifest.jsonl").write_text(
        json.dumps({"exam_id": "E1", "report": "No polyps.", "images": ["E1/1.jpg"]}) + "\n"
    )
    return root / "manifest.jsonl"


def test_help_lists_working_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("ingest", "run", "demo", "config"):
        assert cmd in out
    assert main(["--version"]) == 0
    assert "endoked" in capsys.readouterr().out


def test_unknown_command_and_bad_options_exit_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert main(["ingest", "--archive"]) == 2  # option without its value
    assert main(["ingest", "--out", "x"]) == 2  # required --archive missing
    err = capsys.readouterr().err
    assert "archive" in err


def test_ingest_missing_archive_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ingest", "--archive", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: archive not found" in err and "Traceback" not in err


def test_bad_config_values_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    man = _archive(tmp_path / "a")
    assert main(["ingest", "--archive", str(man), "--out", str(tmp_path / "r"), "--profile", "tiny"]) == 2
    assert "valid profiles" in capsys.readouterr().err
    assert main(["ingest", "--archive", str(man), "--out", str(tmp_path / "r"), "--set", "ingest.workers=-2"]) == 2
    assert "ingest.workers" in capsys.readouterr().err


def test_dry_run_prints_resolved_config_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    man = _archive(tmp_path / "a")
    run = tmp_path / "r"
    assert (
        main(
            ["run", "--archive", str(man), "--out", str(run), "--profile", "cpu-small", "--set", "seed=7", "--dry-run"]
        )
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["seed"] == 7 and cfg["profile"] == "cpu-small" and cfg["ingest"]["archive"] == str(man.resolve())
    assert not run.exists()


def test_config_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--profile", "gpu-paper", "--set", "ingest.chunk_size=3"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["profile"] == "gpu-paper" and cfg["ingest"]["chunk_size"] == 3


def test_ingest_then_rerun_is_skipped_and_config_is_saved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    man = _archive(tmp_path / "a")
    run = tmp_path / "r"
    assert main(["--no-progress", "ingest", "--archive", str(man), "--out", str(run)]) == 0
    assert "ingest      ran" in capsys.readouterr().out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["ingest"]["archive"] == str(man.resolve())
    assert (run / "log.txt").read_text().count("stage ingest: running") == 1
    # the run folder remembers its config: no --archive needed to resume
    assert main(["--no-progress", "run", "--out", str(run), "--to", "ingest"]) == 0
    assert "ingest      skipped" in capsys.readouterr().out
    assert main(["--no-progress", "run", "--out", str(run), "--to", "ingest", "--overwrite"]) == 0
    assert "ingest      ran" in capsys.readouterr().out


def test_run_without_archive_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--out", str(tmp_path / "r"), "--to", "ingest"]) == 2  # found by the pre-flight check
    assert "--archive" in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "r2"), "--to", "nonexistent"]) == 1
    assert "available" in capsys.readouterr().err


def test_every_pipeline_stage_has_a_run_command(capsys: pytest.CaptureFixture[str]) -> None:
    from endoked.pipeline import STAGE_ORDER

    for stage in STAGE_ORDER:
        assert main([stage.replace("_", "-"), "run", "--help"]) == 0, stage
        assert "--out" in capsys.readouterr().out
    assert main(["prompt-seg", "segmenters"]) == 0
    assert capsys.readouterr().out.split() == ["litemedsam", "sam", "medsam", "sam2", "ellipse"]
    assert main(["cam", "methods"]) == 0
    assert "gradcam" in capsys.readouterr().out.split()


def test_a_broken_stage_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from endoked.errors import StageError
    from endoked.pipeline import available_stages, load_stage

    assert list(available_stages()) == ["ingest", "extract", "mil", "cam", "prompt_seg", "seg", "eval"]
    monkeypatch.setitem(sys.modules, "endoked.cam.stage", types.ModuleType("endoked.cam.stage"))
    with pytest.raises(StageError, match=r"endoked\.cam\.stage does not export"):
        available_stages()
    with pytest.raises(StageError, match="not a pipeline stage"):
        load_stage("biopsy")
