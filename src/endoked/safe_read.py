"""The one way archive files are read: regular files only, inside the archive root, under a size cap.

Ingest reads report files, image files and manifests through :func:`open_regular_file` /
:func:`read_regular_file`. They refuse, with an :class:`UnsafeFileError` that names the file and says why:

- a path holding a NUL byte (the OS cannot name it);
- a path that resolves (through symlinks or ``..``) outside ``root``, when a root is given;
- anything that is not a regular file: a directory, a FIFO, a socket, a device such as ``/dev/zero``.
  The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a FIFO
  never blocks and a file swapped for a device between the check and the open is still caught;
- a file larger than ``max_bytes`` (checked before reading, and again while reading, so a file that
  grows is never read past the cap).
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from endoked.errors import DataFormatError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnsafeFileError(DataFormatError):
    """A file the safe reader refuses. ``code`` is an ingest reject reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def display_name(name: str | os.PathLike[str]) -> str:
    """``name`` safe to print and to store as UTF-8: NUL, control characters and undecodable bytes
    (lone surrogates from ``surrogateescape``) are shown as Python escapes."""
    text = os.fsdecode(name)
    return text if text.isprintable() else ascii(text)[1:-1]


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _within(path: str, root: str | os.PathLike[str]) -> bool:
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def open_regular_file(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    what: str = "file",
) -> BinaryIO:
    """Open ``path`` for binary reading after the checks in the module docstring.

    Args:
        path: the file.
        root: when given, the real path (symlinks resolved) must lie inside the real path of ``root``.
        max_bytes: when given, a larger file is refused.
        what: how messages call the file (e.g. ``"report file"``).

    Returns:
        An open binary file object (blocking mode restored); the caller closes it.

    Raises:
        UnsafeFileError: with ``code`` one of ``bad_path``, ``path_escapes_root``, ``missing_file``,
            ``not_a_file``, ``file_too_large``, ``unreadable_file``.
    """
    name = os.fsdecode(path)
    shown = display_name(name)
    if "\x00" in name:
        raise UnsafeFileError("bad_path", f"{what} path {shown} contains a NUL byte")
    if root is not None and not _within(name, root):
        raise UnsafeFileError(
            "path_escapes_root", f"{what} {shown} resolves to {os.path.realpath(name)}, outside the archive root {root}"
        )
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise UnsafeFileError("missing_file", f"{what} not found: {shown}") from None
    except OSError as exc:
        raise UnsafeFileError("unreadable_file", f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError("not_a_file", f"{what} {shown} is {_kind(st.st_mode)}, not a regular file")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnsafeFileError("unreadable_file", f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError("not_a_file", f"{what} {shown} is {_kind(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafeFileError(
                "file_too_large", f"{what} {shown} is {st.st_size} bytes, over the cap of {max_bytes} bytes"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    what: str = "file",
) -> bytes:
    """All bytes of ``path``, read through :func:`open_regular_file` (same checks, same errors)."""
    with open_regular_file(path, root, max_bytes, what) as fh:
        try:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except OSError as exc:
            raise UnsafeFileError(
                "unreadable_file", f"cannot read {what} {display_name(path)}: {exc.strerror or exc}"
            ) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise UnsafeFileError(
            "file_too_large", f"{what} {display_name(path)} grew past the cap of {max_bytes} bytes while being read"
        )
    return data
