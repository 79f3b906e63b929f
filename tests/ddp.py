"""Helpers for tests that start torchrun-style processes (gloo on the CPU)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import torch


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def as_rank(rank: int, world: int, port: int) -> Iterator[None]:
    """This process as rank ``rank`` of ``world`` in torchrun's environment (one torch thread); the process
    group the code under test joins is destroyed on the way out."""
    import torch.distributed as dist

    os.environ.update(
        {
            "WORLD_SIZE": str(world),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
