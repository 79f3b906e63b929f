"""Progress bars (items/s and ETA) that can be switched off globally (``--no-progress``) or per call."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_ENABLED: bool = os.environ.get("ENDOKED_NO_PROGRESS", "") in ("", "0")


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process."""
    global _ENABLED
    _ENABLED = enabled


def progress_enabled(override: bool | None = None) -> bool:
    """Whether bars are shown: ``override`` if given, else the process-wide switch."""
    return _ENABLED if override is None else override


def track(
    items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", enabled: bool | None = None
) -> Iterator[T]:
    """Iterate ``items`` with a progress bar showing rate and ETA (to stderr)."""
    yield from tqdm(
        items,
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(enabled),
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )


def bar(total: int | None, desc: str = "", unit: str = "it", enabled: bool | None = None) -> tqdm:
    """A manually updated progress bar (``bar.update(n)``; use as a context manager)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(enabled),
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )
