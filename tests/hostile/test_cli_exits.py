"""Hostile command lines and configs: each is a one-line message and exit code 2 (bad input), never a
traceback, a raw pydantic dump or a message that grows with an alias-expanded input."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked.cli import main
from endoked.config import resolve_config
from endoked.errors import ConfigError
from endoked.seg import predict as predict_mod
from tests.conftest import image_bytes
from tests.fakes import fake_run


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for this process: mode 0o555, and as root (who ignores the mode) the immutable
    attribute, which binds root too. Skips when neither can be set here (e.g. a filesystem without attributes)."""
    folder.chmod(0o555)
    immutable = False
    try:
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.skip(f"root ignores mode 0o555 and chattr +i failed here: {done.stderr.strip()}")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def _manifest(root: Path) -> Path:
    (root / "E1").mkdir(parents=True)
    (root / "E1" / "1.jpg").write_bytes(image_bytes())
    (root / "m.jsonl").write_text(json.dumps({"exam_id": "E1", "report": "No polyps.", "images": ["E1/1.jpg"]}) + "\n")
    return root / "m.jsonl"


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_non_utf8_yaml_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes("seed: 1\n# 结肠\n".encode("gbk"))
    assert main(["config", "show", "--config", str(cfg)]) == 2
    assert "is not UTF-8" in _err(capsys)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 9)]
    lines.append("bomb: *a8")  # 9**9 ~ 387 million strings once expanded
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    assert main(["config", "show", "--config", str(cfg)]) == 2
    err = _err(capsys)
    assert time.perf_counter() - t0 < 20 and len(err) < 2000
    assert "alias" in err


def test_validation_message_of_a_shared_value_stays_small() -> None:
    shared: list = ["x"] * 10
    for _ in range(6):
        shared = [shared] * 10  # 10 million leaves, built without copying
    with pytest.raises(ConfigError) as info:
        resolve_config(extra={"seed": shared})
    assert len(str(info.value)) < 1000 and "seed" in str(info.value)


@pytest.mark.parametrize(
    "override, field",
    [
        ("cam.scales=[-1,0]", "cam.scales"),
        ("ingest.chunk_size=true", "ingest.chunk_size"),
        ("ingest.workers=true", "ingest.workers"),
    ],
)
def test_nonsense_config_values_are_refused(override: str, field: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        resolve_config(overrides=[override])
    assert main(["config", "show", "--set", override]) == 2
    assert field in _err(capsys)


def test_unknown_extract_backend_is_a_short_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.jsonl").write_text('{"id": "1", "text": "polyp"}\n')
    assert (
        main(["extract", "--in", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--backend", "bogus"])
        == 2
    )
    err = _err(capsys)
    assert "--backend 'bogus'" in err and "rules" in err and "validation error" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_export_out_an_existing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = fake_run(tmp_path)
    (tmp_path / "dest").write_text("a file")
    assert main(["export", str(run.root), "--format", "coco", "--out", str(tmp_path / "dest")]) == 2
    assert "is an existing file" in _err(capsys)
    assert (tmp_path / "dest").read_text() == "a file"


def test_export_out_below_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = fake_run(tmp_path)
    (tmp_path / "dest").write_text("a file")
    assert main(["export", str(run.root), "--format", "pranet", "--out", str(tmp_path / "dest" / "x")]) == 2
    assert "dest" in _err(capsys)


def test_ingest_out_below_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    man = _manifest(tmp_path / "a")
    (tmp_path / "f").write_text("a file")
    assert main(["--no-progress", "ingest", "--archive", str(man), "--out", str(tmp_path / "f" / "run")]) == 2
    assert "cannot create the folder" in _err(capsys)


@pytest.mark.parametrize("command", ["ingest", "export"])
def test_read_only_output_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    if command == "ingest":
        argv = ["--no-progress", "ingest", "--archive", str(_manifest(tmp_path / "a")), "--out", str(ro)]
    else:
        run, _ = fake_run(tmp_path)
        argv = ["export", str(run.root), "--format", "coco", "--out", str(ro / "x")]
    with read_only(ro):
        assert main(argv) == 2
        err = _err(capsys)
    assert "not writable" in err or "cannot create the folder" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


class _FakePredictor:
    """Stands in for a trained model: a constant map the image's size."""

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [np.full(im.shape[:2], 0.5, np.float32) for im in images]


def test_decompression_bomb_is_skipped_and_the_folder_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(imgs / "a.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(imgs / "bomb.png")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(imgs / "c.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64*64 > 2 * 1000: Pillow's bomb error
    files = [(p.stem, p) for p in sorted(imgs.iterdir())]
    summary = predict_mod.predict_files(_FakePredictor(), files, tmp_path / "maps", progress=False)  # type: ignore[arg-type]
    assert sorted(p.name for p in summary.written) == ["a.png", "c.png"]
    assert [e["name"] for e in summary.errors] == ["bomb"] and "decompression bomb" in summary.errors[0]["reason"]


def test_predict_read_only_out_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    from endoked.errors import DataFormatError

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(imgs / "a.png")
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro), pytest.raises(DataFormatError, match="not writable"):
        predict_mod.predict_folder(tmp_path / "no-model.pt", imgs, ro)


def test_predict_out_below_a_file_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    from endoked.errors import DataFormatError

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(imgs / "a.png")
    (tmp_path / "f").write_text("a file")
    with pytest.raises(DataFormatError, match="cannot create the folder"):
        predict_mod.predict_folder(tmp_path / "no-model.pt", imgs, tmp_path / "f" / "maps")


def test_unforeseen_os_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from endoked.ingest import stage

    def denied(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "run" / "ingest" / "x"))

    monkeypatch.setattr(stage, "ingest_archive", denied)
    man = _manifest(tmp_path / "a")
    assert main(["--no-progress", "ingest", "--archive", str(man), "--out", str(tmp_path / "run")]) == 2
    err = _err(capsys)
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "Permission denied" in line and "ingest/x" in line
