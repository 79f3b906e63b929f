"""The extract stage: colonoscopy report text -> structured polyp labels (English and Chinese).

Public API: :func:`create_extractor` / :func:`list_extractors` (backends ``rules``, ``llm``,
``ensemble``), :func:`extract` for one report, :func:`process_batch` for rows, and the result types
:class:`ReportLabels` / :class:`PolypLabel`.
"""

from endoked.extract.api import (
    Extractor,
    RulesExtractor,
    create_extractor,
    extract,
    list_extractors,
    process_batch,
    register_extractor,
)
from endoked.extract.config import ExtractConfig, LLMConfig
from endoked.extract.schema import LOCATIONS, PATHOLOGY_ORDER, PolypLabel, ReportLabels, Span

__all__ = [
    "LOCATIONS",
    "PATHOLOGY_ORDER",
    "ExtractConfig",
    "Extractor",
    "LLMConfig",
    "PolypLabel",
    "ReportLabels",
    "RulesExtractor",
    "Span",
    "create_extractor",
    "extract",
    "list_extractors",
    "process_batch",
    "register_extractor",
]
