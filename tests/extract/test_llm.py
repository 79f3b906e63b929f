"""LLM backend against a real HTTP server on 127.0.0.1 (canned answers): structured output, schema
repair, format fallback, timeouts, retries with backoff, cache, de-identification, endpoint policy,
and the embedded engine's plumbing."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from endoked.errors import BackendUnavailableError, ConfigError, WeightsNotFoundError
from endoked.extract.config import ExtractConfig, LLMConfig
from endoked.extract.llm import LLMExtractor, check_endpoint
from endoked.extract.llm_prompt import PROMPT_VERSION, LLMAnswer

from .conftest import CannedServer, chat_reply

GOOD = {
    "polyp": "present",
    "polyp_count": 1,
    "polyps": [{"location": "sigmoid", "size_mm": 6, "morphology": "sessile", "removed": True}],
    "malignancy_suspected": False,
    "pathology": "adenoma",
    "evidence": {"polyp": ["6 mm sessile polyp"], "pathology": ["tubular adenoma"]},
}
REPORT = "Findings: a 6 mm sessile polyp in the sigmoid colon, cold snare.\nPathology: tubular adenoma."


def make(server: CannedServer, tmp_path: Path | None = None, **llm: Any) -> LLMExtractor:
    settings: dict[str, Any] = {
        "url": server.url,
        "model": "test-model",
        "backoff_s": 0.01,
        "backoff_max_s": 0.02,
        "timeout_s": 2.0,
        "concurrency": 1,
        "cache_dir": str(tmp_path / "cache") if tmp_path else None,
        **llm,
    }
    cfg = ExtractConfig(backend="llm", llm=LLMConfig(**settings))
    return LLMExtractor(cfg)


def ok(answer: dict[str, Any] | str = GOOD) -> tuple[int, dict[str, Any], float]:
    return 200, chat_reply(answer if isinstance(answer, str) else json.dumps(answer)), 0.0


def test_structured_answer_becomes_labels_with_spans(llm_server: CannedServer) -> None:
    llm_server.queue(ok())
    ex = make(llm_server)
    try:
        out = ex.extract(REPORT)
    finally:
        ex.close()
    assert out.error is None
    assert (out.polyp, out.polyp_count, out.pathology) == ("present", 1, "adenoma")
    assert out.polyps[0].location == "sigmoid" and out.polyps[0].size_mm == 6
    span = out.evidence["polyp"][0]
    assert REPORT[span.start : span.end] == "6 mm sessile polyp"
    req = llm_server.requests[0]
    assert req["model"] == "test-model"
    assert req["temperature"] == 0
    assert req["response_format"]["type"] == "json_schema"
    assert "sigmoid colon" in req["messages"][-1]["content"]
    # few-shot examples in both languages precede the report
    shots = " ".join(m["content"] for m in req["messages"][1:-1])
    assert "Findings" in shots and "检查所见" in shots


def test_schema_violation_is_repaired_once(llm_server: CannedServer) -> None:
    bad = dict(GOOD, polyp="yes", polyps=[{"location": "colon", "size_mm": 6}])
    llm_server.queue(ok(bad), ok())
    ex = make(llm_server)
    try:
        out = ex.extract(REPORT)
    finally:
        ex.close()
    assert out.polyp == "present" and out.error is None
    assert ex.stats["repairs"] == 1
    repair = llm_server.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and "yes" in repair[-2]["content"]
    assert "schema" in repair[-1]["content"]


def test_schema_violation_twice_is_a_row_error(llm_server: CannedServer) -> None:
    llm_server.queue(ok("not json at all"), ok('{"polyp": "maybe"}'))
    ex = make(llm_server)
    try:
        out = ex.extract(REPORT)
    finally:
        ex.close()
    assert out.error is not None and "schema" in out.error
    assert out.polyp is None
    assert len(llm_server.requests) == 2


def test_json_schema_rejected_falls_back_to_json_mode(llm_server: CannedServer) -> None:
    llm_server.queue((400, {"error": {"message": "response_format json_schema not supported"}}, 0.0), ok())
    ex = make(llm_server)
    try:
        out = ex.extract(REPORT)
    finally:
        ex.close()
    assert out.polyp == "present"
    assert [r["response_format"]["type"] for r in llm_server.requests] == ["json_schema", "json_object"]


def test_timeouts_and_server_errors_are_retried_with_backoff(
    llm_server: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import endoked.extract.llm as llm_mod

    sleeps: list[float] = []
    monkeypatch.setattr(llm_mod, "time", types.SimpleNamespace(sleep=sleeps.append))
    llm_server.queue(
        (200, chat_reply(json.dumps(GOOD)), 1.5),  # slower than the 0.3 s timeout
        (503, {"error": {"message": "overloaded"}}, 0.0),
        (429, {"error": {"message": "slow down"}}, 0.0),
        ok(),
    )
    ex = make(llm_server, timeout_s=0.3, max_retries=3)
    try:
        out = ex.extract(REPORT)
    finally:
        ex.close()
    assert out.polyp == "present"
    assert ex.stats["retries"] == 3
    assert sleeps == pytest.approx([0.01, 0.02, 0.02])  # doubling, capped at backoff_max_s


def test_retries_exhausted_gives_a_row_error(llm_server: CannedServer) -> None:
    llm_server.default = (500, {"error": {"message": "down"}}, 0.0)
    ex = make(llm_server, max_retries=2)
    try:
        out = ex.extract(REPORT)
    finally:
        ex.close()
    assert out.error is not None and "llm" in out.error
    assert len(llm_server.requests) == 3


def test_cache_hit_sends_nothing(llm_server: CannedServer, tmp_path: Path) -> None:
    llm_server.queue(ok())
    ex = make(llm_server, tmp_path)
    try:
        first = ex.extract(REPORT)
        second = ex.extract(REPORT)
    finally:
        ex.close()
    assert len(llm_server.requests) == 1
    assert ex.stats["cache_hits"] == 1
    assert first.labels_json() == second.labels_json()
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text(encoding="utf-8"))
    assert stored["prompt_version"] == PROMPT_VERSION and stored["model"] == "test-model"
    # another model is another key
    llm_server.queue(ok())
    other = make(llm_server, tmp_path)
    other.cfg = other.cfg.model_copy(update={"model": "other-model"})
    try:
        other.extract(REPORT)
    finally:
        other.close()
    assert len(llm_server.requests) == 2


IDENTIFIERS = [
    "John Smith",
    "Alice Wong",
    "12345678",
    "(555) 123-4567",
    "13812345678",
    "010-87654321",
    "2024-03-12",
    "03/14/2023",
    "March 14, 2023",
    "110105198001011234",
    "张三",
    "王五",
    "赵六",
    "2024年3月12日",
    "A00123456",
    "jsmith@example.org",
]
PHI_REPORT = (
    "Patient: John Smith  MRN: 12345678\nReferring physician: Dr. Alice Wong, phone (555) 123-4567.\n"
    "Colonoscopy on 2024-03-12 (prior exam 03/14/2023, addendum March 14, 2023): a 6 mm sessile polyp in "
    "the sigmoid colon, cold snare. Contact jsmith@example.org.\n"
    "姓名：张三 门诊号：A00123456 身份证号：110105198001011234 电话：13812345678 座机：010-87654321\n"
    "检查日期：2024年3月12日 检查医师：王五 报告医生：赵六\n"
    "检查所见：乙状结肠见一枚0.6cm息肉，予圈套器切除。"
)


def test_no_identifier_reaches_the_server(llm_server: CannedServer) -> None:
    llm_server.queue(ok(), ok())
    ex = make(llm_server)
    try:
        out = ex.extract(PHI_REPORT, pathology="病理：管状腺瘤。送检医生：张三，电话13812345678")
    finally:
        ex.close()
    assert out.polyp == "present"
    sent = b"".join(llm_server.raw).decode("utf-8")
    sent_text = json.loads(llm_server.raw[0])["messages"][-1]["content"]
    for ident in IDENTIFIERS:
        assert ident not in sent, f"{ident!r} leaked to the LLM server"
        assert json.dumps(ident, ensure_ascii=True)[1:-1] not in sent
    assert "sigmoid colon" in sent_text and "乙状结肠见一枚0.6cm息肉" in sent_text  # clinical content kept
    assert "[NAME]" in sent_text and "[ID]" in sent_text and "[DATE]" in sent_text and "[PHONE]" in sent_text


@pytest.mark.parametrize("url", ["http://8.8.8.8/v1", "https://93.184.216.34:8000/v1", "ftp://127.0.0.1/v1"])
def test_public_endpoints_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"allow-remote-llm|http"):
        check_endpoint(url, allow_remote=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:11434/v1",
        "http://10.1.2.3/v1",
        "http://192.168.0.5:8080/v1",
        "http://[::1]:8000/v1",
    ],
)
def test_local_and_private_endpoints_are_allowed(url: str) -> None:
    check_endpoint(url, allow_remote=False)


def test_remote_endpoint_allowed_only_when_asked() -> None:
    check_endpoint("http://8.8.8.8/v1", allow_remote=True)
    with pytest.raises(ConfigError, match="remote"):
        LLMExtractor(ExtractConfig(llm=LLMConfig(url="http://8.8.8.8/v1")))
    with pytest.raises(ConfigError, match="loopback"):
        check_endpoint("http://10.0.0.2/v1", deidentify_text=False)


def test_concurrent_batch_keeps_order(llm_server: CannedServer) -> None:
    answers = [dict(GOOD, polyp_count=n, polyps=[GOOD["polyps"][0]] * n) for n in (1, 2, 3)]
    llm_server.default = ok()

    ex = make(llm_server, concurrency=3)
    reports = [f"Report {n}: {n} polyps in the sigmoid colon." for n in (1, 2, 3)]
    by_text = {r: a for r, a in zip(reports, answers, strict=True)}
    orig = ex.engine.complete

    def route(messages: list[dict[str, str]], fmt: dict[str, Any]) -> str:
        orig(messages, fmt)  # still goes through the server
        text = messages[-1]["content"].removeprefix("REPORT:\n")
        return json.dumps(by_text[text])

    ex.engine.complete = route  # type: ignore[method-assign]
    try:
        outs = ex.extract_many([(r, None) for r in reports])
    finally:
        ex.close()
    assert [o.polyp_count for o in outs] == [1, 2, 3]
    assert len(llm_server.requests) == 3


def test_answer_model_rejects_out_of_contract_values() -> None:
    with pytest.raises(ValueError):
        LLMAnswer.model_validate(dict(GOOD, pathology="carcinoma"))
    with pytest.raises(ValueError):
        LLMAnswer.model_validate(dict(GOOD, polyps=[dict(GOOD["polyps"][0], location="colon")]))


def test_embedded_engine_needs_a_model_file(tmp_path: Path) -> None:
    cfg = ExtractConfig(llm=LLMConfig(engine="embedded", model_path=str(tmp_path / "missing.gguf")))
    with pytest.raises(WeightsNotFoundError, match=r"missing\.gguf"):
        LLMExtractor(cfg)
    with pytest.raises(ConfigError, match="model_path"):
        LLMExtractor(ExtractConfig(llm=LLMConfig(engine="embedded")))


def test_embedded_engine_without_xllamacpp_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install xllamacpp"):
        LLMExtractor(ExtractConfig(llm=LLMConfig(engine="embedded", model_path=str(model))))


def test_embedded_engine_plumbing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    seen: dict[str, Any] = {}

    class Params:
        def __init__(self) -> None:
            self.model = types.SimpleNamespace(path=None)
            self.n_ctx = 0
            self.n_gpu_layers = 0

    class Server:
        def __init__(self, params: Params) -> None:
            seen["path"], seen["n_ctx"] = params.model.path, params.n_ctx

        def handle_chat_completions(self, request: dict[str, Any]) -> dict[str, Any]:
            seen["request"] = request
            return chat_reply(json.dumps(GOOD))

    fake = types.ModuleType("xllamacpp")
    fake.CommonParams = Params  # type: ignore[attr-defined]
    fake.Server = Server  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xllamacpp", fake)
    ex = LLMExtractor(ExtractConfig(llm=LLMConfig(engine="embedded", model_path=str(model), n_ctx=2048)))
    out = ex.extract(REPORT)
    assert out.polyp == "present"
    assert seen["path"] == str(model) and seen["n_ctx"] == 2048
    assert seen["request"]["response_format"]["type"] == "json_schema"
    assert seen["request"]["temperature"] == 0
