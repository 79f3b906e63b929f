"""The versioned prompt, few-shot examples (English and Chinese) and JSON schema of the ``llm`` backend.

Bump :data:`PROMPT_VERSION` whenever the prompt, the examples or the schema change: it is part of the
answer-cache key.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from endoked.extract.schema import LOCATIONS, MORPHOLOGIES, PATHOLOGY_ORDER

PROMPT_VERSION = "extract-llm-v1"

SYSTEM_PROMPT = """You label colonoscopy reports (English or Chinese). Reply with one JSON object only.
Fields:
- polyp: "present" if a polyp (any polypoid lesion, adenoma, serrated lesion, LST, inflammatory pseudopolyp)
  is a CURRENT finding of this exam; "absent" if none (history only such as "s/p polypectomy 2019" or
  "既往息肉切除术后" is absent; a mass or cancer alone is not a polyp); "uncertain" if only hedged
  ("possible polyp vs fold", "可疑息肉", "考虑息肉可能").
- polyp_count: number of current polyps; 0 when absent; null when not determinable ("multiple", "数枚",
  "多发") or when uncertain. Count a polyp described in Findings and again in Impression once.
- polyps: one object per polyp (per location when the number is not stated); [] when absent or uncertain.
  location: one of {locations}. size_mm: largest dimension in millimetres (convert cm: 0.6 cm = 6),
  null if not stated; "at 25 cm" or "距肛门20cm" is a distance, not a size. morphology: pedunculated
  (Paris 0-Ip, 山田IV, 有蒂), sessile (0-Is, 0-Isp, 山田II/III, 亚蒂, 无蒂), flat (0-IIa/b/c, LST, 扁平) or
  unspecified. removed: true if removed (snare, forceps, EMR, ESD, APC, 圈套, 钳除, 电切), false if left or
  only biopsied, null if not said.
- malignancy_suspected: true if a current mass, carcinoma or malignancy is found or suspected
  (mass, carcinoma, 癌, 占位, 肿物), or pathology shows adenocarcinoma; false otherwise.
- pathology: the most advanced pathology RESULT stated for this exam, in this order: adenocarcinoma >
  adenoma > sessile_serrated > hyperplastic > inflammatory > other; null when no result is given
  (pending or absent).
- evidence: for each field name, a list of short exact quotes from the report supporting it.
Placeholders such as [NAME] or [DATE] replace removed identifiers; ignore them.""".format(
    locations=", ".join(LOCATIONS)
)

FEW_SHOT: list[tuple[str, dict[str, Any]]] = [
    (
        "Indication: surveillance, tubular adenoma removed 2020.\n"
        "Findings: In the ascending colon a 7 mm sessile polyp (Paris 0-Is) was removed with a cold snare. "
        "A 3 mm polyp in the rectum was removed with cold forceps. No other lesions.\n"
        "Impression: Two small polyps, removed.\nPathology: ascending: tubular adenoma; rectum: hyperplastic polyp.",
        {
            "polyp": "present",
            "polyp_count": 2,
            "polyps": [
                {"location": "ascending", "size_mm": 7, "morphology": "sessile", "removed": True},
                {"location": "rectum", "size_mm": 3, "morphology": "unspecified", "removed": True},
            ],
            "malignancy_suspected": False,
            "pathology": "adenoma",
            "evidence": {
                "polyp": ["a 7 mm sessile polyp", "A 3 mm polyp"],
                "polyp_count": ["Two small polyps"],
                "pathology": ["tubular adenoma"],
            },
        },
    ),
    (
        "检查所见：进镜至回盲部。乙状结肠距肛门约20cm见一溃疡型肿物，约3.0cm，取活检。直肠见数枚0.2-0.3cm息肉，予APC灼除。\n"
        "诊断：1.乙状结肠肿物（癌？） 2.直肠多发息肉\n病理：待回报。",
        {
            "polyp": "present",
            "polyp_count": None,
            "polyps": [{"location": "rectum", "size_mm": 3, "morphology": "unspecified", "removed": True}],
            "malignancy_suspected": True,
            "pathology": None,
            "evidence": {
                "polyp": ["直肠见数枚0.2-0.3cm息肉"],
                "polyp_count": ["数枚"],
                "malignancy_suspected": ["溃疡型肿物"],
            },
        },
    ),
]


class LLMPolyp(BaseModel):
    """One polyp as the model must return it."""

    model_config = ConfigDict(extra="forbid")

    location: Literal[LOCATIONS]  # type: ignore[valid-type]
    size_mm: float | None = Field(None, gt=0, le=200)
    morphology: Literal[MORPHOLOGIES]  # type: ignore[valid-type]
    removed: bool | None


class LLMAnswer(BaseModel):
    """The model's whole answer (validated; a violation triggers one repair request)."""

    model_config = ConfigDict(extra="forbid")

    polyp: Literal["present", "absent", "uncertain"]
    polyp_count: int | None = Field(None, ge=0, le=1000)
    polyps: list[LLMPolyp]
    malignancy_suspected: bool
    pathology: Literal[PATHOLOGY_ORDER] | None  # type: ignore[valid-type]
    evidence: dict[str, list[str]] = Field(default_factory=dict)


def json_schema() -> dict[str, Any]:
    """JSON schema of :class:`LLMAnswer` for constrained decoding (all keys required, no extras)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["polyp", "polyp_count", "polyps", "malignancy_suspected", "pathology", "evidence"],
        "properties": {
            "polyp": {"type": "string", "enum": ["present", "absent", "uncertain"]},
            "polyp_count": {"type": ["integer", "null"], "minimum": 0},
            "polyps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["location", "size_mm", "morphology", "removed"],
                    "properties": {
                        "location": {"type": "string", "enum": list(LOCATIONS)},
                        "size_mm": {"type": ["number", "null"]},
                        "morphology": {"type": "string", "enum": list(MORPHOLOGIES)},
                        "removed": {"type": ["boolean", "null"]},
                    },
                },
            },
            "malignancy_suspected": {"type": "boolean"},
            "pathology": {"type": ["string", "null"], "enum": [*PATHOLOGY_ORDER, None]},
            "evidence": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
    }


def build_messages(report: str, pathology: str | None) -> list[dict[str, str]]:
    """Chat messages: system prompt, the few-shot pairs, then the (de-identified) report."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for text, answer in FEW_SHOT:
        messages.append({"role": "user", "content": f"REPORT:\n{text}"})
        messages.append({"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)})
    body = f"REPORT:\n{report}"
    if pathology:
        body += f"\n\nPATHOLOGY RESULT:\n{pathology}"
    messages.append({"role": "user", "content": body})
    return messages


def repair_message(errors: str) -> dict[str, str]:
    """The follow-up asking the model to fix an answer that broke the schema."""
    return {
        "role": "user",
        "content": "Your reply did not follow the required JSON schema:\n"
        + errors[:1500]
        + "\nReply again with only the corrected JSON object.",
    }
