"""PraNet's published prediction maps scored against the public masks reproduce the toolbox's table.

Expected figures (mDice, mIoU, wFb, Sa, maxEm, MAE) from the shared data's README. Runs whenever the shared
data folder exists (``ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

from endoked.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ENDOKED_SHARED_DATA", REPO.parent / "shared" / "data"))
KEYS = ("mean_dice", "mean_iou", "wf_beta", "s_alpha", "max_e", "mae")
TABLE = {
    "Kvasir": (0.894, 0.836, 0.880, 0.913, 0.944, 0.030),
    "CVC-ClinicDB": (0.899, 0.849, 0.896, 0.936, 0.979, 0.009),
}
# This implementation's figures to 1e-5 (regression pins). Kvasir's S-measure, 0.9124989, sits on the
# rounding boundary: it prints 0.912 where the table has 0.913 (a difference of 5.01e-4). The toolbox's own
# S-measure gives the same 0.9124989 on these files (see docs/eval.md); 0.913 is 0.9125 rounded half up.
PINNED = {
    "Kvasir": (0.89440, 0.83618, 0.88031, 0.91250, 0.94427, 0.03034),
    "CVC-ClinicDB": (0.89897, 0.84912, 0.89629, 0.93621, 0.97898, 0.00930),
}


@pytest.mark.parametrize("set_name", sorted(TABLE))
def test_cli_reproduces_the_toolbox_table(set_name: str, tmp_path: Path) -> None:
    pred_dir = DATA / "predmaps" / "PraNet" / set_name
    gt_dir = DATA / "polyp" / "TestDataset" / set_name / "masks"
    if not (pred_dir.is_dir() and gt_dir.is_dir()):
        pytest.skip(f"shared data not found under {DATA}")
    out = tmp_path / "scores.json"
    assert main(["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--json", str(out), "--workers", "1"]) == 0
    metrics = json.loads(out.read_text())["results"][0]["metrics"]
    got = [metrics[k] for k in KEYS]
    assert metrics["n"] == {"Kvasir": 100, "CVC-ClinicDB": 62}[set_name]
    assert_allclose(got, PINNED[set_name], atol=1e-5)
    for key, value, expected in zip(KEYS, got, TABLE[set_name], strict=True):
        if set_name == "Kvasir" and key == "s_alpha":
            assert abs(value - expected) < 5.1e-4, key
        else:
            assert round(value, 3) == expected, key
