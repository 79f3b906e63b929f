"""The report-label contract: value sets, result dataclasses and their JSON rows.

A result row (one per input report) holds ``id``, exactly the contract keys (``polyp``, ``polyp_count``,
``polyps``, ``malignancy_suspected``, ``pathology``), ``evidence`` (character spans per field) and
``error`` (``None`` unless the row failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

POLYP_STATUS: tuple[str, ...] = ("present", "absent", "uncertain")
LOCATIONS: tuple[str, ...] = (
    "cecum",
    "ascending",
    "hepatic_flexure",
    "transverse",
    "splenic_flexure",
    "descending",
    "sigmoid",
    "rectum",
    "rectosigmoid",
    "ileum",
    "appendiceal_orifice",
    "ileocecal_valve",
    "anastomosis",
    "unspecified",
)
MORPHOLOGIES: tuple[str, ...] = ("pedunculated", "sessile", "flat", "unspecified")
# Most advanced first: the report's pathology is the first of these that is stated.
PATHOLOGY_ORDER: tuple[str, ...] = (
    "adenocarcinoma",
    "adenoma",
    "sessile_serrated",
    "hyperplastic",
    "inflammatory",
    "other",
)
CONTRACT_KEYS: tuple[str, ...] = ("polyp", "polyp_count", "polyps", "malignancy_suspected", "pathology")
POLYP_KEYS: tuple[str, ...] = ("location", "size_mm", "morphology", "removed")


@dataclass(frozen=True)
class Span:
    """A character span ``[start, end)`` in one input field (``src`` is "text" or "pathology")."""

    start: int
    end: int
    src: str = "text"

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "start": self.start, "end": self.end}


def spans_json(spans: list[Span]) -> list[dict[str, Any]]:
    """Spans as JSON objects, sorted and de-duplicated."""
    return [s.to_json() for s in sorted(set(spans), key=lambda s: (s.src, s.start, s.end))]


@dataclass
class PolypLabel:
    """One polyp (or one group of polyps at one location when their number is not stated)."""

    location: str = "unspecified"
    size_mm: float | None = None
    morphology: str = "unspecified"
    removed: bool | None = None
    evidence: dict[str, list[Span]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        size = None if self.size_mm is None else round(float(self.size_mm), 1)
        return {"location": self.location, "size_mm": size, "morphology": self.morphology, "removed": self.removed}


@dataclass
class ReportLabels:
    """Labels of one report, with evidence spans per field.

    Attributes:
        polyp: "present" | "absent" | "uncertain" (None only on error).
        polyp_count: number of current polyps; 0 when absent, None when not determinable.
        polyps: one entry per polyp (per location when the number is not stated).
        malignancy_suspected: a current mass/cancer/malignancy finding or result (None only on error).
        pathology: most advanced stated pathology category, None when no result is given.
        evidence: field name -> spans the value came from.
        lang: "en" | "zh" (majority script) or None.
        backend: name of the extractor that produced the labels.
        notes: extra JSON-able facts for the evidence (e.g. ensemble disagreements).
        error: why the row failed, None on success.
    """

    polyp: str | None = "absent"
    polyp_count: int | None = 0
    polyps: list[PolypLabel] = field(default_factory=list)
    malignancy_suspected: bool | None = False
    pathology: str | None = None
    evidence: dict[str, list[Span]] = field(default_factory=dict)
    lang: str | None = None
    backend: str = "rules"
    notes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failed(cls, error: str, backend: str, lang: str | None = None) -> ReportLabels:
        """A per-row failure: every label None/empty, ``error`` set."""
        return cls(
            polyp=None,
            polyp_count=None,
            polyps=[],
            malignancy_suspected=None,
            pathology=None,
            lang=lang,
            backend=backend,
            error=error,
        )

    def labels_json(self) -> dict[str, Any]:
        """Only the contract keys."""
        return {
            "polyp": self.polyp,
            "polyp_count": self.polyp_count,
            "polyps": [p.to_json() for p in self.polyps],
            "malignancy_suspected": self.malignancy_suspected,
            "pathology": self.pathology,
        }

    def evidence_json(self) -> dict[str, Any]:
        """Evidence object: spans per field, per-polyp spans, language, backend and notes."""
        ev: dict[str, Any] = {"lang": self.lang, "backend": self.backend}
        for key in ("polyp", "polyp_count", "malignancy_suspected", "pathology"):
            ev[key] = spans_json(self.evidence.get(key, []))
        ev["polyps"] = [{k: spans_json(p.evidence.get(k, [])) for k in POLYP_KEYS} for p in self.polyps]
        ev.update(self.notes)
        return ev

    def to_row(self, row_id: Any) -> dict[str, Any]:
        """The output JSON row: id, contract keys, evidence, error."""
        return {"id": row_id, **self.labels_json(), "evidence": self.evidence_json(), "error": self.error}
