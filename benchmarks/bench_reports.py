"""Report-label accuracy of the ``rules`` extractor on gold report sets, as Markdown.

Usage:
    python benchmarks/bench_reports.py --data FILE [--data FILE ...] [--disagreements]

Each ``FILE`` is a JSON Lines gold set (``id``, ``lang``, ``text``, ``gold``), e.g.
``../shared/data/reports/dev.jsonl``, ``tests/extract/data/hard_dev.jsonl`` and
``tests/extract/data/hard_heldout.jsonl``. For every set the script labels the reports through
:func:`endoked.extract.process_batch` and prints one table with the figures of
:func:`endoked.extract.evaluate.evaluate` per language (en, zh, all). With ``--disagreements`` it also
lists every field where the prediction differs from the gold label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROWS: tuple[tuple[str, str], ...] = (
    ("n", "reports"),
    ("polyp", "polyp status"),
    ("polyp_count", "polyp count"),
    ("location_f1", "location F1"),
    ("size_within_1mm", "max size within 1 mm"),
    ("morphology_f1", "morphology F1"),
    ("malignancy_suspected", "malignancy suspected"),
    ("pathology", "pathology"),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="gold JSON Lines set (repeatable)")
    ap.add_argument("--disagreements", action="store_true", help="list the fields that differ from the gold")
    args = ap.parse_args(argv)

    from endoked.extract import create_extractor, process_batch
    from endoked.extract.evaluate import evaluate, figures_table
    from endoked.io import read_jsonl

    ex = create_extractor("rules")
    for path in args.data:
        gold = read_jsonl(path)
        report = evaluate(gold, process_batch(gold, ex))
        print("\n".join(figures_table(report["by_lang"], path.name, ROWS)))
        print()
        if args.disagreements:
            for d in report["disagreements"]:
                print(f"- {d['id']} {d['field']}: gold {d['gold']} / pred {d['pred']}")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
