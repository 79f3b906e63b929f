"""Every command's --help: no ``<bool>`` type on flags, defaults shown, --device on every command that runs a
model, boolean options as --x/--no-x pairs where they take both values, a neutral --set example."""

from __future__ import annotations

import pytest
import typer

from endoked.cli import app, main

MODEL_COMMANDS = (
    ("run",),
    ("demo",),
    ("check",),
    ("predict",),
    ("seg", "train"),
    ("seg", "run"),
    ("mil", "score"),
    ("mil", "run"),
    ("cam", "run"),
    ("prompt-seg", "run"),
    ("eval", "run"),
    ("biopsy", "predict"),
    ("biopsy", "train"),
    ("biopsy", "eval"),
)


def _commands() -> list[tuple[tuple[str, ...], typer.core.TyperCommand]]:
    out: list[tuple[tuple[str, ...], typer.core.TyperCommand]] = []

    def walk(cmd: typer.core.TyperCommand, path: tuple[str, ...]) -> None:
        if isinstance(getattr(cmd, "commands", None), dict):
            for name, sub in cmd.commands.items():  # type: ignore[attr-defined]
                walk(sub, (*path, name))
        else:
            out.append((path, cmd))

    walk(typer.main.get_command(app), ())
    assert len(out) > 20
    return out


def _help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*path, "--help"]) == 0
    return capsys.readouterr().out


def test_no_bool_metavar_and_defaults_shown(capsys: pytest.CaptureFixture[str]) -> None:
    for path, _cmd in _commands():
        text = _help(path, capsys)
        assert "<bool>" not in text, path
    synth = _help(("synth",), capsys)
    from endoked.synth.config import SynthConfig

    cfg = SynthConfig()
    for flag, value in (("exams", cfg.exams), ("seed", cfg.seed), ("size", cfg.size), ("workers", cfg.workers)):
        assert f"[default: {value}]" in synth, flag
    assert "[default: 60]" in _help(("demo",), capsys)


def test_device_on_every_model_command() -> None:
    cmds = dict(_commands())
    for path in MODEL_COMMANDS:
        opts = {o for p in cmds[path].params for o in p.opts}
        assert "--device" in opts, path


def test_tta_is_one_flag_pair_everywhere() -> None:
    for path, cmd in _commands():
        for p in cmd.params:
            if "--tta" in p.opts:
                assert p.secondary_opts == ["--no-tta"], path


def test_set_example_is_not_another_stages_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert "mil.epochs" not in _help(("seg", "train"), capsys)


def test_run_device_is_a_set_shorthand(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-o", f"{tmp_path}/r", "--device", "cpu", "--dry-run", "--set", "seed=3"]) == 0
    out = capsys.readouterr().out
    assert "device: cpu" in out and "seed: 3" in out
