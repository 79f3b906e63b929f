"""CLI exit codes for bad input, and config building (defaults < file < --set)."""

from __future__ import annotations

from pathlib import Path

import pytest

from endoked.biopsy.cli import build_config
from endoked.cli import main
from endoked.errors import ConfigError


def test_build_config_precedence(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("biopsy:\n  top_k: 5\n  lr: 0.01\n", encoding="utf-8")
    cfg = build_config(tmp_path / "c.yaml", ["biopsy.top_k=7", "crop_to_mask=true"])
    assert (cfg.top_k, cfg.lr, cfg.crop_to_mask) == (7, 0.01, True)
    (tmp_path / "flat.yaml").write_text("top_k: 2\n", encoding="utf-8")
    assert build_config(tmp_path / "flat.yaml").top_k == 2
    with pytest.raises(ConfigError, match=r"biopsy\.no_such_field"):
        build_config(None, ["no_such_field=1"])


def test_dry_run_prints_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["biopsy", "train", "--out", "x", "--dry-run", "--set", "top_k=4"]) == 0
    assert "top_k: 4" in capsys.readouterr().out


def test_bad_inputs_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    # neither a run nor labels
    assert main(["biopsy", "train", "--out", out]) == 2
    assert "--run" in capsys.readouterr().err
    # invalid override value
    assert main(["biopsy", "train", "--out", out, "--set", "top_k=0"]) == 2
    # labels CSV without the label column
    (tmp_path / "bad.csv").write_text("image,kind\na.png,1\n", encoding="utf-8")
    assert main(["biopsy", "train", "--out", out, "--labels", str(tmp_path / "bad.csv")]) == 2
    assert "missing column" in capsys.readouterr().err
    # run folder without tables
    (tmp_path / "run").mkdir()
    assert main(["biopsy", "train", "--out", out, "--run", str(tmp_path / "run")]) == 1
    assert "extract/labels.parquet" in capsys.readouterr().err
    # model file missing or not a checkpoint
    assert main(["biopsy", "eval", "--model", str(tmp_path / "none.pt"), "--labels", str(tmp_path / "bad.csv")]) == 2
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert (
        main(
            [
                "biopsy",
                "predict",
                "--model",
                str(tmp_path / "junk.pt"),
                "--images",
                str(tmp_path),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "cannot read biopsy checkpoint" in capsys.readouterr().err
    # missing required option: usage error
    assert main(["biopsy", "predict", "--model", "m.pt"]) == 2
