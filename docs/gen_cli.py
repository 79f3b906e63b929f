"""Regenerate the command reference in README.md from each command's ``--help``.

The reference sits between ``<!-- cli:start -->`` and ``<!-- cli:end -->``; nothing else in README.md is
touched. Run from the repository root::

    python docs/gen_cli.py          # rewrite the section
    python docs/gen_cli.py --check  # exit 1 when the section is stale

Help is rendered at a fixed width without colour, so the output is the same on every machine.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import typer
import typer.rich_utils
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- cli:start -->", "<!-- cli:end -->"
WIDTH = 120
ENV = {"COLUMNS": str(WIDTH), "LINES": "50", "NO_COLOR": "1", "TERM": "dumb", "TERMINAL_WIDTH": str(WIDTH)}


def commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``cmd`` (a typer command or group) in registration order, groups before their
    subcommands, hidden ones left out."""
    out: list[tuple[str, ...]] = [path]
    subs = getattr(cmd, "commands", None)
    if isinstance(subs, dict):
        for name, sub in subs.items():
            if not getattr(sub, "hidden", False):
                out.extend(commands(sub, (*path, name)))
    return out


def help_text(app: typer.Typer, path: tuple[str, ...]) -> str:
    """``endoked <path> --help`` as plain text at :data:`WIDTH` columns."""
    typer.rich_utils.MAX_WIDTH = WIDTH  # read from the environment at import; fixed here for every caller
    typer.rich_utils.FORCE_TERMINAL = False
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="endoked", env=ENV, color=False)
    if result.exit_code != 0:
        raise RuntimeError(f"endoked {' '.join(path)} --help exited {result.exit_code}: {result.output}")
    lines = [line.rstrip() for line in result.output.splitlines()]
    return "\n".join(lines).strip("\n")


def render(app: typer.Typer | None = None) -> str:
    """The Markdown of the section, markers excluded."""
    if app is None:
        from endoked.cli import app as endoked_app

        app = endoked_app
    parts = [
        "Generated from each command's `--help` by `python docs/gen_cli.py`; do not edit by hand.",
    ]
    for path in commands(typer.main.get_command(app)):
        name = " ".join(("endoked", *path))
        body = help_text(app, path)
        parts.append(f"<details><summary><code>{name}</code></summary>\n\n```text\n{body}\n```\n\n</details>")
    return "\n\n".join(parts)


def replace_section(text: str, section: str) -> str:
    """``text`` with the part between the markers replaced by ``section``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"README.md needs exactly one {START} followed by one {END}")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{section}\n{END}{tail}"


def current_section(text: str) -> str:
    match = re.search(re.escape(START) + r"\n?(.*?)\n?" + re.escape(END), text, re.S)
    return match.group(1) if match else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's section is stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    try:
        updated = replace_section(text, render())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print("README.md: the CLI section is stale; run python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        README.write_text(updated, encoding="utf-8")
        print("README.md: CLI section updated")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
