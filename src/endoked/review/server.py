"""Serve the review app: bind a socket (port 0: a free one), print the URL with its token, run uvicorn.

:class:`ReviewServer` also runs the server in a background thread (tests, benchmarks) and stops it cleanly.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from endoked.errors import ConfigError
from endoked.review import security

logger = logging.getLogger(__name__)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def segmenter_builder(run_root: Path, name: str | None, device: str | None = None) -> tuple[str, Callable[[], Any]]:
    """The name and a builder of the prompted segmenter for live re-prompting: ``name``, or the run's own
    ``prompt_seg.segmenter`` when ``name`` is None, with the run's ``prompt_seg`` settings (its weights only for
    its own segmenter: :meth:`~endoked.prompt_seg.config.PromptSegConfig.segmenter_kwargs`)."""
    from endoked.config import resolve_config

    config_path = Path(run_root) / "config.yaml"
    cfg = resolve_config(None, config_path if config_path.is_file() else None, ())
    ps = cfg.prompt_seg
    chosen = name or ps.segmenter
    kwargs = ps.segmenter_kwargs(device or cfg.device, chosen)

    def build() -> Any:
        from endoked.prompt_seg import create_segmenter

        logger.info("review: loading the %s segmenter for live re-prompting", chosen)
        return create_segmenter(chosen, **kwargs)

    return chosen, build


class ReviewServer:
    """The review app on a bound socket.

    Args:
        app: the ASGI app (:func:`endoked.review.app.create_app`).
        token: its session token (part of :attr:`url`).
        host: interface to bind; loopback unless told otherwise.
        port: 0 picks a free port.
    """

    def __init__(self, app: Any, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.sock.listen(128)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.token = token
        shown = f"[{host}]" if ":" in host else host
        self.base = f"http://{shown}:{self.port}"
        self.url = f"{self.base}/?token={token}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Run in this thread until interrupted."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 20.0) -> ReviewServer:
        """Run in a background thread; returns once it accepts requests."""
        self._thread = threading.Thread(target=self.serve_forever, name="endoked-review", daemon=True)
        self._thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t0 > timeout or not self._thread.is_alive():
                raise RuntimeError("the review server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start`."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_server(
    run_root: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    reviewer: str = "reviewer",
    segmenter: str | None = None,
    live: bool = True,
    token: str | None = None,
    device: str | None = None,
) -> ReviewServer:
    """The review server of a run folder (not started).

    Raises:
        ConfigError: fastapi/uvicorn are missing, or the folder is not a run folder.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError("endoked review needs fastapi and uvicorn: pip install 'endoked[review]'") from exc
    from endoked.review.app import create_app

    root = Path(run_root)
    if not (root / "ledger.json").is_file():
        raise ConfigError(f"{root} is not a run folder (no ledger.json)")
    if host not in LOOPBACK:
        logger.warning("review: listening on %s: anyone who can reach it and has the URL's token can review", host)
    token = token or security.new_token()
    name, build = segmenter_builder(root, segmenter, device) if live else ("none", None)
    app = create_app(root, token, reviewer=reviewer, segmenter=build, segmenter_name=name)
    return ReviewServer(app, token, host, port)
