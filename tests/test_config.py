from __future__ import annotations

import re
from pathlib import Path

import pytest

from endoked.config import RunConfig, deep_merge, parse_overrides, resolve_config
from endoked.errors import ConfigError


def test_precedence_defaults_profile_file_overrides(tmp_path: Path) -> None:
    default = RunConfig()
    assert default.device == "auto" and default.workers == 2 and default.profile == "default"

    prof = resolve_config("gpu-paper")
    assert prof.profile == "gpu-paper" and prof.workers == 8  # profile beats defaults

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("workers: 3\ningest:\n  chunk_size: 7\n")
    from_file = resolve_config("gpu-paper", cfg_file)
    assert from_file.workers == 3  # file beats profile
    assert from_file.ingest.chunk_size == 7
    assert from_file.ingest.max_report_bytes == 1_000_000  # untouched keys keep their defaults

    final = resolve_config("gpu-paper", cfg_file, ["workers=5", "ingest.huge-report=reject"])
    assert final.workers == 5  # --set beats file
    assert final.ingest.huge_report == "reject"
    assert final.ingest.chunk_size == 7  # the file's other values survive

    extra = resolve_config(None, cfg_file, ["ingest.chunk_size=9"], extra={"ingest": {"chunk_size": 8}})
    assert extra.ingest.chunk_size == 9  # --set beats CLI flags, which beat the file


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = resolve_config("cpu-small", overrides=["seed=11", "ingest.verify=header"])
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    again = resolve_config(None, path)
    assert again == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["num_workers=-1"], "num_workers"),
        (["ingest.verify=maybe"], "ingest.verify"),
        (["ingest.no_such_key=1"], "ingest.no_such_key"),
        (["nonsense"], "section.key=value"),
        (["device=tpu"], "device"),
    ],
)
def test_invalid_values_name_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(None, None, overrides)


def test_unknown_profile_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="cpu-small, gpu-paper"):
        resolve_config("gpu-huge")


def test_bad_yaml_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        resolve_config(None, bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_config(None, scalar)
    with pytest.raises(ConfigError, match="not found"):
        resolve_config(None, tmp_path / "missing.yaml")


def test_parse_overrides_and_merge() -> None:
    assert parse_overrides(["a.b=3", "a.c=x", "d=[1, 2]", "e="]) == {"a": {"b": 3, "c": "x"}, "d": [1, 2], "e": ""}
    assert deep_merge({"a": {"b": 1, "c": 2}, "x": 1}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "x": 1}


@pytest.mark.parametrize(
    ("source", "old", "new"),
    [
        ("set", "num_workers=3", "workers"),
        ("set", "cam.input_size=256", "cam.image_size"),
        ("set", "cam.min_area=0.02", "cam.boxes.min_area"),
        ("set", "seg.refine_rounds=2", "seg.refine.rounds"),
        ("set", "seg.min_box_area=0.1", "seg.refine.boxes.min_area"),
        ("set", "seg.encoder=x", "seg.model.backbone"),
        ("file", "cam:\n  drop_border: false\n", "cam.boxes.drop_border"),
    ],
)
def test_a_renamed_key_fails_naming_the_new_key(tmp_path: Path, source: str, old: str, new: str) -> None:
    if source == "set":
        with pytest.raises(ConfigError, match=rf"--set uses renamed config keys:\n  .* is now {re.escape(new)}"):
            resolve_config(None, None, [old])
    else:
        cfg_file = tmp_path / "old.yaml"
        cfg_file.write_text(old)
        with pytest.raises(
            ConfigError, match=rf"old\.yaml uses renamed .*\n  cam\.drop_border is now {re.escape(new)}"
        ):
            resolve_config(None, cfg_file)


def test_profiles_use_no_renamed_key() -> None:
    from endoked.config import PROFILE_NAMES, load_profile, renamed_keys

    for name in PROFILE_NAMES:
        assert renamed_keys(load_profile(name)) == [], name
