"""Worker process pools that never outlive the process that started them.

A :class:`~concurrent.futures.ProcessPoolExecutor` worker waits on its task queue; when its parent is killed
with SIGKILL (no clean-up at all) that queue never closes, so the worker would wait for ever, holding memory
and open files. :func:`process_pool` starts every worker with :func:`die_with_parent`, which asks the Linux
kernel (``prctl(PR_SET_PDEATHSIG)``) to send the worker SIGKILL when its parent dies. Workers only read and
compute (the parent writes every output), so nothing is left half-written by that signal.

The kernel ties the signal to the parent *thread* that started the worker: pools must be used (submitted to)
from the thread that created them, which is how every pool in endoked is used. On other systems the call is a
no-op and orphaned workers remain possible.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker with SIGKILL when its parent dies (Linux), or now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def process_pool(max_workers: int, mp_context: BaseContext | None = None) -> ProcessPoolExecutor:
    """A process pool of ``max_workers`` workers that end when this process ends, however it ends."""
    return ProcessPoolExecutor(
        max_workers=max_workers, mp_context=mp_context, initializer=die_with_parent, initargs=(os.getpid(),)
    )
