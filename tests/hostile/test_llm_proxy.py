"""Reports sent to a loopback LLM endpoint never go through a proxy from the environment."""

from __future__ import annotations

import json

import pytest

from endoked.extract.config import ExtractConfig, LLMConfig
from endoked.extract.llm import LLMExtractor
from tests.extract.conftest import CannedServer, chat_reply

ANSWER = {
    "polyp": "absent",
    "polyp_count": 0,
    "polyps": [],
    "malignancy_suspected": False,
    "pathology": None,
    "evidence": {},
}


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_loopback_endpoint_ignores_proxy_environment(var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server, proxy = CannedServer(), CannedServer()
    for s in (server, proxy):
        s.default = (200, chat_reply(json.dumps(ANSWER)), 0.0)
        s.thread.start()
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(var, proxy.url.rsplit("/v1", 1)[0])
        cfg = ExtractConfig(backend="llm", llm=LLMConfig(url=server.url, model="m", timeout_s=2.0, concurrency=1))
        ex = LLMExtractor(cfg)
        try:
            out = ex.extract("No polyps. Colon normal to the cecum.")
        finally:
            ex.close()
        assert out.error is None and out.polyp == "absent"
        assert len(server.requests) == 1
        assert proxy.requests == [] and proxy.raw == []
    finally:
        for s in (server, proxy):
            s.httpd.shutdown()
            s.httpd.server_close()
            s.thread.join(timeout=5)
