"""The ``llm`` backend: an OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, ...) through
the ``openai`` client, or an embedded GGUF model run in-process with ``xllamacpp``.

What it guarantees:
- privacy: report text is de-identified (:mod:`endoked.extract.deid`) before it leaves the process, and
  endpoints outside loopback/private networks are refused unless ``allow_remote`` is set;
- JSON-schema-constrained answers (falling back to JSON mode when the server rejects schemas),
  validated, with one repair request when an answer breaks the schema;
- temperature 0, a versioned prompt, bounded concurrency, per-request timeouts, retries with
  exponential backoff on timeouts / connection errors / 429 / 5xx;
- an on-disk answer cache keyed by (hash of the text sent, model, prompt version).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from pydantic import ValidationError

from endoked.errors import BackendUnavailableError, ConfigError, WeightsNotFoundError
from endoked.extract.api import check_text, register_extractor
from endoked.extract.config import ExtractConfig, LLMConfig
from endoked.extract.deid import Deidentified, deidentify
from endoked.extract.llm_prompt import PROMPT_VERSION, LLMAnswer, build_messages, json_schema, repair_message
from endoked.extract.schema import PolypLabel, ReportLabels, Span
from endoked.extract.text import detect_lang, normalize
from endoked.io import atomic_write_json, sha256_json

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (timeout, connection, 429, 5xx)."""


class FormatUnsupportedError(Exception):
    """The server rejected the structured-output request format."""


class ChatEngine(Protocol):
    """Sends chat messages, returns the reply text."""

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> str: ...


def _host_is_private(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def _host_is_loopback(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, allow_remote: bool = False, deidentify_text: bool = True) -> None:
    """Refuse endpoints outside loopback/private networks unless ``allow_remote``.

    A host name is resolved and every address must be loopback, private or link-local. Turning
    de-identification off is only allowed for loopback endpoints.

    Raises:
        ConfigError: with the reason and the flag that overrides it.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"LLM endpoint {url!r} is not an http(s) URL; give e.g. --llm-url http://127.0.0.1:8000/v1")
    host = parsed.hostname
    if not deidentify_text and not _host_is_loopback(host):
        raise ConfigError(f"extract.llm.deidentify=false is only allowed for a loopback endpoint, not {host}")
    if allow_remote or _host_is_loopback(host) or _host_is_private(host):
        return
    try:
        addrs = {str(info[4][0]) for info in socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        raise ConfigError(
            f"LLM endpoint host {host!r} cannot be resolved ({exc}); only loopback/private "
            "endpoints are used unless --allow-remote-llm is given"
        ) from exc
    public = sorted(a for a in addrs if not _host_is_private(a))
    if public:
        raise ConfigError(
            f"LLM endpoint {url} resolves to public address(es) {', '.join(public)}; report text "
            "would leave the hospital network. Use a local server or pass --allow-remote-llm"
        )


class OpenAIChat:
    """An OpenAI-compatible server reached with the ``openai`` client."""

    def __init__(self, cfg: LLMConfig) -> None:
        try:
            import openai
        except ImportError as exc:
            raise BackendUnavailableError(
                "the llm backend needs the openai client: pip install 'endoked[llm]'"
            ) from exc
        check_endpoint(cfg.url, cfg.allow_remote, cfg.deidentify)
        self._openai = openai
        self.cfg = cfg
        # A loopback endpoint is reached directly: HTTP(S)_PROXY / ALL_PROXY from the environment would otherwise
        # route the reports through a proxy and off the machine.
        host = urlparse(cfg.url).hostname or ""
        http_client = openai.DefaultHttpxClient(trust_env=False) if _host_is_loopback(host) else None
        self.client = openai.OpenAI(
            base_url=cfg.url,
            api_key=os.environ.get(cfg.api_key_env) or "not-needed",
            timeout=cfg.timeout_s,
            max_retries=0,
            http_client=http_client,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> str:
        oa = self._openai
        try:
            resp = self.client.chat.completions.create(  # type: ignore[call-overload]
                model=self.cfg.model,
                messages=messages,
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens,
                response_format=response_format,
            )
        except (oa.APITimeoutError, oa.APIConnectionError, oa.RateLimitError, oa.InternalServerError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        except oa.BadRequestError as exc:
            if response_format.get("type") == "json_schema":
                raise FormatUnsupportedError(str(exc)) from exc
            raise
        except oa.APIStatusError as exc:
            if exc.status_code >= 500:
                raise TransientError(f"HTTP {exc.status_code}") from exc
            raise
        content = resp.choices[0].message.content if resp.choices else None
        return content or ""


class EmbeddedChat:
    """A local GGUF model run in-process by xllamacpp (no server, nothing leaves the process)."""

    def __init__(self, cfg: LLMConfig) -> None:
        if not cfg.model_path:
            raise ConfigError("engine 'embedded' needs extract.llm.model_path (a GGUF file)")
        path = Path(cfg.model_path)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"GGUF model not found: {path}; give the path of a local .gguf file in extract.llm.model_path"
            )
        try:
            import xllamacpp as xlc  # type: ignore[import-not-found]
        except ImportError as exc:
            raise BackendUnavailableError("the embedded LLM engine needs xllamacpp: pip install xllamacpp") from exc
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.n_ctx = cfg.n_ctx
        params.n_gpu_layers = cfg.n_gpu_layers
        self.cfg = cfg
        self.server = xlc.Server(params)

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> str:
        result = self.server.handle_chat_completions(
            {
                "messages": messages,
                "temperature": self.cfg.temperature,
                "max_tokens": self.cfg.max_tokens,
                "response_format": response_format,
            }
        )
        if not isinstance(result, dict) or "error" in result:
            err = result.get("error") if isinstance(result, dict) else result
            raise TransientError(f"embedded engine error: {err}")
        return str(result["choices"][0]["message"]["content"] or "")


class AnswerCache:
    """Answers on disk, one JSON file per key (written atomically)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data.get("answer") if isinstance(data, dict) else None

    def put(self, key: str, answer: dict[str, Any], meta: dict[str, Any]) -> None:
        atomic_write_json(self._path(key), {"answer": answer, **meta})


def cache_key(sent_text: str, sent_pathology: str | None, model: str) -> str:
    """Key of an answer: hash of what was sent, the model and the prompt version."""
    return sha256_json({"text": sent_text, "pathology": sent_pathology, "model": model, "prompt": PROMPT_VERSION})


class LLMExtractor:
    """The ``llm`` backend (see the module docstring)."""

    name = "llm"

    def __init__(self, config: ExtractConfig | None = None, engine: ChatEngine | None = None) -> None:
        self.config = config or ExtractConfig()
        self.cfg = self.config.llm
        self.engine = engine or (EmbeddedChat(self.cfg) if self.cfg.engine == "embedded" else OpenAIChat(self.cfg))
        self.cache = AnswerCache(self.cfg.cache_dir) if self.cfg.cache_dir else None
        self._format = self.cfg.response_format
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0, "repairs": 0}

    def _response_format(self) -> dict[str, Any]:
        if self._format == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": "report_labels", "schema": json_schema(), "strict": True},
            }
        return {"type": "json_object"}

    def _call(self, messages: list[dict[str, str]]) -> str:
        attempt = 0
        while True:
            try:
                self.stats["requests"] += 1
                return self.engine.complete(messages, self._response_format())
            except FormatUnsupportedError:
                if self._format == "json_object":
                    raise
                logger.warning("LLM server rejected json_schema output; falling back to JSON mode + validation")
                self._format = "json_object"
            except TransientError as exc:
                if attempt >= self.cfg.max_retries:
                    raise
                delay = min(self.cfg.backoff_s * (2**attempt), self.cfg.backoff_max_s)
                logger.info(
                    "LLM request failed (%s); retry %d/%d in %.2fs", exc, attempt + 1, self.cfg.max_retries, delay
                )
                self.stats["retries"] += 1
                attempt += 1
                time.sleep(delay)

    def _ask(self, sent: str, sent_path: str | None) -> dict[str, Any]:
        messages = build_messages(sent, sent_path)
        reply = self._call(messages)
        for repair in range(self.cfg.repair_retries + 1):
            try:
                return LLMAnswer.model_validate_json(reply).model_dump(mode="json")
            except ValidationError as exc:
                if repair >= self.cfg.repair_retries:
                    raise ValueError(
                        f"LLM answer does not follow the schema after {repair} repair(s): "
                        f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
                    ) from exc
                self.stats["repairs"] += 1
                messages = [*messages, {"role": "assistant", "content": reply}, repair_message(str(exc))]
                reply = self._call(messages)
        raise AssertionError("unreachable")  # pragma: no cover

    def extract(self, text: str, pathology: str | None = None) -> ReportLabels:
        err = check_text(text, self.config)
        if err is not None:
            return ReportLabels.failed(err, self.name)
        d_text = deidentify(text) if self.cfg.deidentify else Deidentified(text, ())
        d_path = (
            deidentify(pathology)
            if (pathology and self.cfg.deidentify)
            else (Deidentified(pathology, ()) if pathology else None)
        )
        key = cache_key(d_text.text, d_path.text if d_path else None, self.cfg.model)
        try:
            answer = self.cache.get(key) if self.cache else None
            if answer is not None:
                self.stats["cache_hits"] += 1
            else:
                answer = self._ask(d_text.text, d_path.text if d_path else None)
                if self.cache:
                    self.cache.put(key, answer, {"model": self.cfg.model, "prompt_version": PROMPT_VERSION})
        except Exception as exc:  # one failed report must not stop the batch
            logger.warning("llm backend failed on a report: %s", type(exc).__name__)
            return ReportLabels.failed(f"llm: {type(exc).__name__}: {exc}", self.name, detect_lang(normalize(text)))
        return answer_to_labels(answer, text, d_text, pathology, d_path)

    def close(self) -> None:
        """Release the engine's connections."""
        close = getattr(self.engine, "close", None)
        if callable(close):
            close()

    def extract_many(self, items: Sequence[tuple[str, str | None]]) -> list[ReportLabels]:
        if self.cfg.concurrency <= 1 or len(items) <= 1:
            return [self.extract(t, p) for t, p in items]
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(lambda it: self.extract(*it), items))


def _locate(quotes: Any, original: str, d: Deidentified, src: str) -> list[Span]:
    spans: list[Span] = []
    if not isinstance(quotes, list):
        return spans
    low = d.text.lower()
    for q in quotes:
        if not isinstance(q, str) or not q.strip():
            continue
        i = low.find(q.strip().lower())
        if i >= 0:
            s, e = d.to_original(i, i + len(q.strip()))
            spans.append(Span(s, min(e, len(original)), src))
    return spans


def answer_to_labels(
    answer: dict[str, Any], text: str, d_text: Deidentified, pathology: str | None, d_path: Deidentified | None
) -> ReportLabels:
    """Turn a validated answer into ReportLabels, with quotes located as spans in the original text."""
    status = answer["polyp"]
    count = answer["polyp_count"]
    polyps = [
        PolypLabel(location=p["location"], size_mm=p["size_mm"], morphology=p["morphology"], removed=p["removed"])
        for p in answer["polyps"]
    ]
    if status == "absent":
        count, polyps = 0, []
    elif status == "uncertain":
        count, polyps = None, []
    out = ReportLabels(
        polyp=status,
        polyp_count=count,
        polyps=polyps,
        malignancy_suspected=answer["malignancy_suspected"],
        pathology=answer["pathology"],
        lang=detect_lang(normalize(text)),
        backend="llm",
    )
    ev = answer.get("evidence") or {}
    for key in ("polyp", "polyp_count", "malignancy_suspected", "pathology"):
        spans = _locate(ev.get(key), text, d_text, "text")
        if key == "pathology" and pathology and d_path is not None:
            spans += _locate(ev.get(key), pathology, d_path, "pathology")
        out.evidence[key] = spans
    return out


@register_extractor("llm")
def _make_llm(config: ExtractConfig) -> LLMExtractor:
    return LLMExtractor(config)
