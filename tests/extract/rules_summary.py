"""What the rules say of a report, as the round tests compare it: polyp status, count and the sorted polyps."""

from __future__ import annotations

from typing import Any

from endoked.extract.rules import extract_rules


def polyp_summary(text: str, *fields: str) -> tuple[str, int | None, list[Any]]:
    """``(polyp, polyp_count, sorted polyps)``: each polyp as its ``fields`` (a tuple), or its one field alone."""
    out = extract_rules(text)
    rows = [tuple(getattr(p, f) for f in fields) for p in out.polyps]
    return out.polyp, out.polyp_count, sorted(r[0] if len(fields) == 1 else r for r in rows)


# (polyp status, count, sorted (location, size_mm, morphology)): what rounds 9 onwards compare
SiteSizeShape = tuple[str, int | None, list[tuple[str, float | None, str]]]


def site_size_shape(text: str) -> Any:
    """:func:`polyp_summary` with each polyp as its location, size and morphology."""
    return polyp_summary(text, "location", "size_mm", "morphology")
