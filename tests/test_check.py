"""Pre-flight checks: every problem of a run found at once, named by the config key a user sets."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import pytest

from endoked import check
from endoked.check import check_config, format_problems, selected_stages
from endoked.cli import main
from endoked.config import resolve_config
from endoked.errors import StageError
from tests.conftest import image_bytes

# Settings that need no weight file or optional package at all: random encoders, the model-free segmenter.
OFFLINE = [
    "mil.pretrained=false",
    "cam.pretrained=false",
    "seg.model.pretrained=false",
    "prompt_seg.segmenter=ellipse",
    "device=cpu",
]


def _archive(root: Path) -> Path:
    (root / "E1").mkdir(parents=True)
    (root / "E1" / "1.jpg").write_bytes(image_bytes())
    (root / "manifest.jsonl").write_text(
        json.dumps({"exam_id": "E1", "report": "No polyps.", "images": ["E1/1.jpg"]}) + "\n"
    )
    return root / "manifest.jsonl"


def _keys(problems: list[check.Problem]) -> list[str]:
    return [p.key for p in problems]


def test_clean_config_has_no_problem(tmp_path: Path) -> None:
    cfg = resolve_config("cpu-small", overrides=[*OFFLINE, f"ingest.archive={_archive(tmp_path / 'a')}"])
    assert check_config(cfg, out=tmp_path / "run") == []
    assert format_problems([]) == "check: no problems found"


def test_gpu_paper_needs_the_pvt_weights_by_their_config_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENDOKED_WEIGHTS", raising=False)
    cfg = resolve_config("gpu-paper", overrides=["device=cpu"])
    (problem,) = [p for p in check_config(cfg, ["seg"]) if p.stage == "seg"]
    assert problem.key == "seg.model.weights" and "pvt_v2_b2" in problem.message
    assert "ENDOKED_WEIGHTS/pvt_v2_b2.pth" in problem.fix and "seg.model.pretrained=false" in problem.fix
    assert "weights=PATH" not in str(problem) and "pretrained=False" not in str(problem)  # no Python argument names
    # the file where the message says to put it: the problem is gone
    (tmp_path / "pvt_v2_b2.pth").write_bytes(b"not checked here")
    monkeypatch.setenv("ENDOKED_WEIGHTS", str(tmp_path))
    assert check_config(cfg, ["seg"]) == []


def test_every_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import torch

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openai" else real_find_spec(name, *a)
    )
    cfg = resolve_config(
        "cpu-small",
        overrides=[
            *OFFLINE,
            "device=cuda",
            "extract.backend=llm",
            f"mil.weights={tmp_path / 'missing.pth'}",
            "mil.pretrained=true",
            "cam.pretrained=true",
            "cam.backbone=no_such_net",
            "prompt_seg.segmenter=sam",
            f"eval.data={tmp_path / 'no-test-set'}",
            "seg.refine.rounds=1",
            "seg.refine.segmenter=nonsense",
        ],
    )
    problems = check_config(cfg)
    assert _keys(problems) == [
        "device",
        "ingest.archive",
        "extract.backend",
        "mil.weights",
        "cam.backbone",
        *(["prompt_seg.segmenter"] if real_find_spec("segment_anything") is None else []),
        "prompt_seg.weights",
        "seg.refine.segmenter",
        "eval.data",
    ]
    text = format_problems(problems)
    assert text.startswith(f"check: {len(problems)} problems found")
    assert "pip install 'endoked[llm]'" in text and "missing.pth" in text and "no-test-set" in text


def test_eval_sets_and_layout(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "Kvasir" / "images").mkdir(parents=True)
    (data / "Kvasir" / "masks").mkdir()
    (data / "CVC" / "masks").mkdir(parents=True)  # masks without images
    cfg = resolve_config(overrides=[f"eval.data={data}", "eval.sets=[Kvasir, ETIS]"])
    problems = check_config(cfg, ["eval"])
    assert _keys(problems) == ["eval.sets"] and "ETIS" in problems[0].message and "CVC, Kvasir" in problems[0].fix
    cfg = resolve_config(overrides=[f"eval.data={data}"])
    (problem,) = check_config(cfg, ["eval"])
    assert problem.key == "eval.data" and "no images folder" in problem.message and "CVC" in problem.message
    assert check_config(resolve_config(overrides=[f"eval.data={data}", "eval.sets=[Kvasir]"]), ["eval"]) == []


def test_embedded_llm_needs_a_model_file(tmp_path: Path) -> None:
    cfg = resolve_config(overrides=["extract.backend=ensemble", "extract.llm.engine=embedded"])
    keys = _keys(check_config(cfg, ["extract"]))
    assert keys[-1] == "extract.llm.model_path"


def test_weights_with_pretrained_off_and_cam_checkpoint(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    cfg = resolve_config(
        overrides=[
            f"mil.weights={weights}",
            "mil.pretrained=false",
            f"cam.checkpoint={tmp_path / 'classifier.pt'}",
        ]
    )
    problems = check_config(cfg, ["mil", "cam"])
    assert _keys(problems) == ["mil.pretrained", "cam.checkpoint"]


def test_archive_folder_empty_and_archive_missing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (problem,) = check.check_archive(str(tmp_path / "empty"))
    assert problem.key == "ingest.archive" and "empty" in problem.message
    (problem,) = check.check_archive(str(tmp_path / "nothing.jsonl"))
    assert "archive not found" in problem.message and "--archive" in problem.fix
    assert check.check_archive(str(_archive(tmp_path / "a"))) == []


def test_run_folder_disk_space_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check.check_run_folder(tmp_path / "new" / "run") == []
    (tmp_path / "f").write_text("a file")
    assert "is a file" in check.check_run_folder(tmp_path / "f" / "run")[0].message
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(check.shutil, "disk_usage", lambda _: usage(10 * 1024**3, 10 * 1024**3, 512 * 1024**2))
    (problem,) = check.check_run_folder(tmp_path / "run")
    assert problem.key == "--out" and "0.50 GiB free" in problem.message and "2.0 GiB" in problem.message


def test_selected_stages() -> None:
    assert selected_stages("mil", "cam") == ["mil", "cam"]
    assert selected_stages("prompt-seg", None) == ["prompt_seg", "seg", "eval"]
    with pytest.raises(StageError, match="available"):
        selected_stages(None, "nonexistent")


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    man = _archive(tmp_path / "a")
    sets = [a for s in OFFLINE for a in ("--set", s)]
    assert main(["check", "--archive", str(man), "--profile", "cpu-small", *sets]) == 0
    assert "no problems" in capsys.readouterr().out
    bad = [*sets, "--set", f"eval.data={tmp_path / 'none'}", "--set", f"seg.model.weights={tmp_path / 'x.pth'}"]
    bad += ["--set", "mil.pretrained=true", "--set", f"mil.weights={tmp_path / 'y.pth'}"]
    assert main(["check", "--archive", str(tmp_path / "none.jsonl"), *bad]) == 2
    out = capsys.readouterr().out
    assert "check: 4 problems found" in out
    for key in ("ingest.archive:", "eval.data:", "mil.weights:", "seg.model.pretrained:"):
        assert key in out


def test_run_checks_first_and_stops_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    man = _archive(tmp_path / "a")
    run = tmp_path / "run"
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(check.shutil, "disk_usage", lambda _: usage(1, 1, 0))
    args = ["--no-progress", "run", "--archive", str(man), "--out", str(run), "--to", "ingest"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--out: only 0.00 GiB free" in err and "--no-check" in err
    assert not (run / "ledger.json").exists()
    assert main([*args, "--no-check"]) == 0
    assert "ingest      ran" in capsys.readouterr().out
    # only the selected stages are checked: a bad test set does not stop an ingest-only run
    monkeypatch.undo()
    assert main([*args, "--set", f"eval.data={tmp_path / 'none'}"]) == 0


def test_onnxruntime_asked_for_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a)
    )
    auto = resolve_config("cpu-small", overrides=list(OFFLINE))
    assert [p for p in check_config(auto, ["cam", "prompt_seg"]) if p.key.endswith(".runtime")] == []
    forced = resolve_config(
        "cpu-small", overrides=[*OFFLINE, "cam.runtime=onnxruntime", "prompt_seg.runtime=onnxruntime"]
    )
    problems = [p for p in check_config(forced, ["cam", "prompt_seg"]) if p.key.endswith(".runtime")]
    assert _keys(problems) == ["cam.runtime", "prompt_seg.runtime"]
    assert "pip install onnxruntime" in problems[0].fix and "cam.runtime=auto" in problems[0].fix


@pytest.mark.parametrize(
    ("segmenter", "package", "extra", "file"),
    [("medsam", "segment_anything", "sam", "medsam_vit_b.pth"), ("sam2", "sam2", "sam2", "sam2.1_hiera_tiny.pt")],
)
def test_checkpoint_segmenters_need_their_package_and_a_local_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segmenter: str, package: str, extra: str, file: str
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a)
    )
    cfg = resolve_config("cpu-small", overrides=[*OFFLINE, f"prompt_seg.segmenter={segmenter}"])
    package_problem, weights_problem = check_config(cfg, ["prompt_seg"])
    assert package_problem.key == "prompt_seg.segmenter" and f"pip install 'endoked[{extra}]'" in package_problem.fix
    assert weights_problem.key == "prompt_seg.weights" and "is not set" in weights_problem.message
    assert file in weights_problem.fix and "set prompt_seg.weights to the file" in weights_problem.fix
    # the package installed and the file where the message says: no problem
    monkeypatch.undo()
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == package else real_find_spec(name, *a)
    )
    (tmp_path / file).write_bytes(b"not read by the check")
    cfg = resolve_config(
        "cpu-small", overrides=[*OFFLINE, f"prompt_seg.segmenter={segmenter}", f"prompt_seg.weights={tmp_path / file}"]
    )
    assert check_config(cfg, ["prompt_seg"]) == []
    # seg refinement rounds cannot pass a checkpoint
    cfg = resolve_config("cpu-small", overrides=[*OFFLINE, "seg.refine.rounds=1", f"seg.refine.segmenter={segmenter}"])
    (problem,) = [p for p in check_config(cfg, ["seg"]) if p.key == "seg.refine.segmenter"]
    assert "cannot be given" in problem.message
