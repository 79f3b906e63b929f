"""Fixtures of the extract tests: a real OpenAI-compatible HTTP server on 127.0.0.1 with canned replies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def chat_reply(content: str) -> dict[str, Any]:
    """A chat-completion response body carrying ``content``."""
    return {
        "id": "cmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class CannedServer:
    """Serves queued replies in order; each is ``(status, body_dict, delay_s)``. Records request bodies."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, Any], float]] = []
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.default: tuple[int, dict[str, Any], float] | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server._lock:
                    server.raw.append(body)
                    server.requests.append(json.loads(body or b"{}"))
                    reply = server.replies.pop(0) if server.replies else server.default
                if reply is None:
                    reply = (500, {"error": {"message": "no canned reply"}}, 0.0)
                status, payload, delay = reply
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def queue(self, *replies: tuple[int, dict[str, Any], float]) -> None:
        self.replies.extend(replies)


@pytest.fixture
def llm_server() -> Iterator[CannedServer]:
    srv = CannedServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture
def check_tool() -> Path:
    tool = REPO.parent / "shared" / "tools" / "check_report_labels.py"
    if not tool.is_file():
        pytest.skip(f"contract checker not found at {tool}")
    return tool
