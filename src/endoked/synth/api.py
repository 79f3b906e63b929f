"""Public API of the synthetic archive generator.

- :func:`generate_archive` writes ``DIR/manifest.jsonl``, frames and ``DIR/truth/``;
- :func:`load_truth` reads the truth back for scoring;
- :func:`synth_reports` gives report rows with gold labels, without images.
"""

from __future__ import annotations

from endoked.synth.archive import SynthSummary, generate_archive, read_manifest
from endoked.synth.config import CategoryFractions, SynthConfig
from endoked.synth.reports import synth_reports
from endoked.synth.truth import SynthTruth, load_truth

__all__ = [
    "CategoryFractions",
    "SynthConfig",
    "SynthSummary",
    "SynthTruth",
    "generate_archive",
    "load_truth",
    "read_manifest",
    "synth_reports",
]
