"""The fine-tuning curve's subsets: nested, stratified by source, seeded."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from endoked.seg.data import SegItem
from tests.scripts import load_script


@pytest.fixture(scope="module")
def ft() -> ModuleType:
    return load_script(Path("benchmarks/bench_finetune.py"))


def test_nested_stratified_subsets(ft: ModuleType) -> None:
    items = [SegItem(f"k{i:03d}", Path(f"k{i:03d}.jpg"), Path(f"m/k{i:03d}.png")) for i in range(90)]
    items += [SegItem(f"clinicdb_{i:03d}", Path(f"clinicdb_{i:03d}.png"), Path("m.png")) for i in range(55)]
    subs = ft.nested_subsets(items, [0.1, 0.5, 1.0], seed=0)
    # per source round(f * n): 9 + 6 (5.5 rounds to even 6), 45 + 28 (27.5 -> 28), 90 + 55
    assert [len(subs[f]) for f in (0.1, 0.5, 1.0)] == [15, 73, 145]
    assert sum(Path(i.image).name.startswith("clinicdb_") for i in subs[0.1]) == 6
    keys = [{i.key for i in subs[f]} for f in (0.1, 0.5, 1.0)]
    assert keys[0] < keys[1] < keys[2] and keys[2] == {i.key for i in items}
    assert ft.nested_subsets(items, [0.1], seed=0)[0.1] == subs[0.1]  # seeded
    assert ft.nested_subsets(items, [0.1], seed=1)[0.1] != subs[0.1]
