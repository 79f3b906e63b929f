"""Public API of the extract stage: a registry of extractors with one interface, and
``process_batch(rows) -> rows`` used by the CLI, the pipeline stage and cluster executors.

Example:
    >>> from endoked.extract import create_extractor
    >>> ex = create_extractor("rules")
    >>> ex.extract("A 5 mm sessile polyp in the sigmoid colon was removed.").polyp
    'present'
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from endoked.errors import ConfigError
from endoked.extract.config import ExtractConfig
from endoked.extract.rules import extract_rules
from endoked.extract.schema import ReportLabels

logger = logging.getLogger(__name__)
# Control characters (not tab/newline/CR), C1 controls, lone surrogates, private use, replacement char.
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffd]")


@runtime_checkable
class Extractor(Protocol):
    """What every backend provides."""

    name: str

    def extract(self, text: str, pathology: str | None = None) -> ReportLabels:
        """Label one report (never raises for bad text: returns a failed ReportLabels)."""
        ...

    def extract_many(self, items: Sequence[tuple[str, str | None]]) -> list[ReportLabels]:
        """Label several reports (backends may run them concurrently); same order as ``items``."""
        ...

    def close(self) -> None:
        """Release connections or models."""
        ...


ExtractorFactory = Callable[[ExtractConfig], Extractor]
_REGISTRY: dict[str, ExtractorFactory] = {}


def register_extractor(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Decorator adding a backend factory ``fn(config) -> Extractor`` to the registry."""

    def deco(fn: ExtractorFactory) -> ExtractorFactory:
        _REGISTRY[name] = fn
        return fn

    return deco


def list_extractors() -> list[str]:
    """Names of the registered backends."""
    _load_builtin()
    return sorted(_REGISTRY)


def create_extractor(name: str | None = None, config: ExtractConfig | None = None) -> Extractor:
    """Build a backend by name (default: ``config.backend``).

    Raises:
        ConfigError: unknown name (the message lists the valid ones).
    """
    _load_builtin()
    config = config or ExtractConfig()
    name = name or config.backend
    if name not in _REGISTRY:
        raise ConfigError(f"unknown extract backend {name!r}; valid backends: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](config)


def _load_builtin() -> None:
    if "llm" not in _REGISTRY:
        for module in ("endoked.extract.llm", "endoked.extract.ensemble"):  # they register themselves
            importlib.import_module(module)


def check_text(text: Any, config: ExtractConfig, field: str = "text") -> str | None:
    """Why a report text cannot be labelled, or None when it can.

    Rejects non-strings, empty text, text longer than ``config.max_chars`` and binary junk (a share of
    control/replacement characters above ``config.max_binary_fraction``).
    """
    if not isinstance(text, str):
        return f"{field} must be a string, got {type(text).__name__}"
    if not text.strip():
        return f"empty report {field}"
    if len(text) > config.max_chars:
        return (
            f"report {field} has {len(text)} characters, more than extract.max_chars={config.max_chars}; "
            "split the report or raise the limit"
        )
    bad = len(_BAD_CHARS.findall(text))
    if bad / len(text) > config.max_binary_fraction:
        return (
            f"report {field} looks like binary data or a wrong encoding ({bad} of {len(text)} characters "
            "are control or replacement characters)"
        )
    return None


class RulesExtractor:
    """The offline rules backend (:func:`endoked.extract.rules.extract_rules`) with input checks."""

    name = "rules"

    def __init__(self, config: ExtractConfig | None = None) -> None:
        self.config = config or ExtractConfig()

    def extract(self, text: str, pathology: str | None = None) -> ReportLabels:
        err = check_text(text, self.config)
        if err is None and pathology is not None:
            err = check_text(pathology, self.config, "pathology") if pathology.strip() else None
        if err is not None:
            return ReportLabels.failed(err, self.name)
        try:
            return extract_rules(text, pathology or None)
        except Exception as exc:  # a bug must cost one row, not the run
            logger.exception("rules extractor failed on a report")
            return ReportLabels.failed(f"internal error in rules extractor: {type(exc).__name__}: {exc}", self.name)

    def extract_many(self, items: Sequence[tuple[str, str | None]]) -> list[ReportLabels]:
        return [self.extract(t, p) for t, p in items]

    def close(self) -> None:
        """Nothing to release."""


@register_extractor("rules")
def _make_rules(config: ExtractConfig) -> Extractor:
    return RulesExtractor(config)


def extract(
    text: str, pathology: str | None = None, backend: str = "rules", config: ExtractConfig | None = None
) -> ReportLabels:
    """Label one report with a backend (a new backend instance per call; use :func:`create_extractor`
    for many reports)."""
    return create_extractor(backend, config).extract(text, pathology)


def _safe_id(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None or isinstance(value, int | float):
        return value
    return str(value)


def row_fields(row: Mapping[str, Any]) -> tuple[Any, Any, Any, str | None]:
    """``(id, text, pathology, problem)`` of an input row; ``problem`` says what is missing."""
    rid = row.get("id", row.get("exam_id"))
    text = row.get("text", row.get("report"))
    pathology = row.get("pathology")
    problem = None
    if rid is None:
        problem = "row has no id (give 'id' or 'exam_id')"
    elif "text" not in row and "report" not in row:
        problem = "row has no report text (give 'text' or 'report')"
    elif pathology is not None and not isinstance(pathology, str):
        problem = f"pathology must be a string or null, got {type(pathology).__name__}"
    return _safe_id(rid), text, pathology, problem


def process_batch(
    rows: Iterable[Mapping[str, Any]], extractor: Extractor | None = None, config: ExtractConfig | None = None
) -> list[dict[str, Any]]:
    """Label a batch of input rows; one output row per input row, in order, never raising for a bad row.

    Args:
        rows: dicts with ``id``/``exam_id``, ``text``/``report`` and optional ``pathology``; a row may
            also carry ``error`` (set by a reader that could not decode it), which is passed through.
        extractor: the backend (default: built from ``config``).
        config: extract config (default settings when None).

    Returns:
        Output rows: ``id``, the contract keys, ``evidence`` and ``error``.
    """
    config = config or ExtractConfig()
    extractor = extractor or create_extractor(None, config)
    rows = list(rows)
    out: list[dict[str, Any] | None] = [None] * len(rows)
    todo: list[int] = []
    items: list[tuple[str, str | None]] = []
    for i, row in enumerate(rows):
        rid, text, pathology, problem = row_fields(row)
        problem = row.get("error") or problem
        if problem is None:
            problem = check_text(text, config)
        if problem is not None:
            out[i] = ReportLabels.failed(str(problem), extractor.name).to_row(rid)
            continue
        todo.append(i)
        items.append((text, pathology))
    if items:
        try:
            results = extractor.extract_many(items)
        except Exception as exc:  # a backend bug must not lose the batch
            logger.exception("extractor %s failed on a batch", extractor.name)
            results = [
                ReportLabels.failed(f"internal error: {type(exc).__name__}: {exc}", extractor.name) for _ in items
            ]
        for i, res in zip(todo, results, strict=True):
            rid = row_fields(rows[i])[0]
            out[i] = res.to_row(rid)
    return [r for r in out if r is not None]
