"""endoked: colonoscopy records (free-text reports + exam images) to pixel-level polyp annotations.

Pipeline stages live in sub-packages (``ingest``, ``extract``, ``mil``, ``cam``, ``prompt_seg``, ``seg``,
``eval``, ``biopsy``); they talk to each other only through tables in a run folder
(:class:`endoked.runfolder.RunFolder`).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
