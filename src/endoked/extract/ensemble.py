"""The ``ensemble`` backend: run ``rules`` and ``llm`` on every report.

- Both agree on ``polyp``: the rules labels are kept (the LLM's answer is recorded in the evidence under
  ``ensemble``).
- They disagree on ``polyp``: the report becomes ``uncertain`` (count null, no polyps listed), with both
  answers in the evidence, so the MIL stage leaves the exam out rather than trusting either.
- The LLM fails on a row: the rules labels are kept and the failure noted (``ensemble_on_llm_error:
  rules``), or the row fails (``error``).
"""

from __future__ import annotations

from collections.abc import Sequence

from endoked.extract.api import RulesExtractor, register_extractor
from endoked.extract.config import ExtractConfig
from endoked.extract.llm import LLMExtractor
from endoked.extract.schema import ReportLabels


def combine(rules: ReportLabels, llm: ReportLabels, on_llm_error: str = "rules") -> ReportLabels:
    """Merge the two answers for one report (see the module docstring)."""
    if rules.error:
        return ReportLabels.failed(rules.error, "ensemble", rules.lang)
    if llm.error:
        if on_llm_error == "error":
            return ReportLabels.failed(f"llm: {llm.error}", "ensemble", rules.lang)
        rules.backend = "ensemble"
        rules.notes["ensemble"] = {"agree": None, "llm_error": llm.error}
        return rules
    both = {"rules": rules.labels_json(), "llm": llm.labels_json()}
    if rules.polyp == llm.polyp:
        disagree = sorted(k for k in both["rules"] if both["rules"][k] != both["llm"][k])
        rules.backend = "ensemble"
        rules.notes["ensemble"] = {"agree": True, "disagree_fields": disagree, "llm": both["llm"]}
        return rules
    out = ReportLabels(
        polyp="uncertain",
        polyp_count=None,
        polyps=[],
        malignancy_suspected=bool(rules.malignancy_suspected or llm.malignancy_suspected),
        pathology=rules.pathology,
        lang=rules.lang,
        backend="ensemble",
    )
    out.evidence = {k: list(v) for k, v in rules.evidence.items()}
    out.evidence["polyp"] = list(rules.evidence.get("polyp", [])) + list(llm.evidence.get("polyp", []))
    out.notes["ensemble"] = {"agree": False, **both}
    return out


class EnsembleExtractor:
    """Rules + LLM (see the module docstring)."""

    name = "ensemble"

    def __init__(self, config: ExtractConfig | None = None, llm: LLMExtractor | None = None) -> None:
        self.config = config or ExtractConfig()
        self.rules = RulesExtractor(self.config)
        self.llm = llm or LLMExtractor(self.config)

    def extract(self, text: str, pathology: str | None = None) -> ReportLabels:
        return self.extract_many([(text, pathology)])[0]

    def close(self) -> None:
        """Release the LLM backend's connections."""
        self.llm.close()

    def extract_many(self, items: Sequence[tuple[str, str | None]]) -> list[ReportLabels]:
        rules = self.rules.extract_many(items)
        todo = [i for i, r in enumerate(rules) if not r.error]
        llm_out = self.llm.extract_many([items[i] for i in todo])
        llm_by = dict(zip(todo, llm_out, strict=True))
        return [
            combine(r, llm_by[i], self.config.ensemble_on_llm_error)
            if i in llm_by
            else ReportLabels.failed(r.error or "rules failed", self.name, r.lang)
            for i, r in enumerate(rules)
        ]


@register_extractor("ensemble")
def _make_ensemble(config: ExtractConfig) -> EnsembleExtractor:
    return EnsembleExtractor(config)
