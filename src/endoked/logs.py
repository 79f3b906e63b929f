"""Logging set-up: library code logs through ``logging.getLogger(__name__)``; the CLI attaches a console
handler and, inside a run, a ``log.txt`` handler. Report text (PHI) is never logged at INFO."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FMT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_ROOT = "endoked"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (survives stream swaps by test runners)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def setup_console(level: int = logging.INFO) -> None:
    """Attach (once) a stderr handler to the package logger."""
    logger = logging.getLogger(_ROOT)
    logger.setLevel(min(level, logger.level or level) if logger.level else level)
    if not any(getattr(h, "_endoked_console", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler._endoked_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    for h in logger.handlers:
        if getattr(h, "_endoked_console", False):
            h.setLevel(level)


def attach_run_log(path: Path) -> logging.Handler:
    """Append the package log to ``path`` (the run's ``log.txt``); returns the handler to detach later."""
    logger = logging.getLogger(_ROOT)
    logger.setLevel(logging.DEBUG)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FMT))
    handler.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    """Remove and close a handler added by :func:`attach_run_log`."""
    logging.getLogger(_ROOT).removeHandler(handler)
    handler.close()
