"""CVAT and Label Studio: export -> read back gives the same masks; corrections come back as reviewed labels."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from endoked import reviewed
from endoked.cli import main
from endoked.errors import DataFormatError
from endoked.export.formats import write_export
from endoked.export.labels import import_labels
from endoked.export.rle import brush_decode, brush_encode, cvat_decode, cvat_encode
from endoked.export.source import load_items
from endoked.export.tools import read_cvat, read_labelstudio
from endoked.imaging import read_mask
from tests.fakes import fake_run
from tests.scripts import load_script


def _converter_brush() -> ModuleType:
    """``label_studio_converter/brush.py`` loaded on its own (the package's __init__ needs many more packages)."""
    spec = importlib.util.find_spec("label_studio_converter")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("label-studio-converter is not installed (pip install --no-deps label-studio-converter)")
    path = Path(next(iter(spec.submodule_search_locations))) / "brush.py"
    return load_script(path, "ls_brush_reference", register=False)


def _masks(h: int = 37, w: int = 53) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    blob = np.zeros((h, w), bool)
    blob[5:20, 7:30] = True
    speckle = rng.random((h, w)) > 0.7
    corner = np.zeros((h, w), bool)
    corner[0, 0] = corner[-1, -1] = True
    return [blob, speckle, corner, np.ones((h, w), bool), np.zeros((h, w), bool)]


def test_brush_rle_is_label_studio_converters_encoding() -> None:
    ref = _converter_brush()
    for mask in _masks():
        mine = brush_encode(mask)
        theirs = ref.mask2rle((mask * 255).astype(np.uint8))
        assert ref.decode_rle(mine).reshape(*mask.shape, 4)[..., 3].astype(bool).tolist() == mask.tolist()
        np.testing.assert_array_equal(brush_decode(theirs, *mask.shape), mask)
        assert mine == theirs[: len(mine)] and len(theirs) - len(mine) <= 1  # they may pad one more zero byte


def test_brush_rle_round_trip_and_literal_chunks() -> None:
    for mask in _masks():
        np.testing.assert_array_equal(brush_decode(brush_encode(mask), *mask.shape), mask)
    big = np.zeros((300, 260), bool)  # runs longer than 2**16 values are split
    big[250:260, 3:9] = True
    np.testing.assert_array_equal(brush_decode(brush_encode(big), 300, 260), big)
    # a literal chunk (kind 0) as Label Studio's front end writes them: 1x2 pixels, RGBA (0,0,0,0) (9,9,9,200)
    bits = f"{8:032b}{7:05b}" + "".join(f"{w - 1:04b}" for w in (3, 4, 8, 16))
    bits += "1" + "00" + f"{3:03b}" + f"{0:08b}"  # four zeros
    bits += "0" + "00" + f"{3:03b}" + "".join(f"{v:08b}" for v in (9, 9, 9, 200))
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    assert brush_decode(rle, 1, 2).tolist() == [[False, True]]
    with pytest.raises(DataFormatError, match="truncated"):
        brush_decode(rle[:-3], 1, 2)
    with pytest.raises(DataFormatError, match="needs 12"):
        brush_decode(rle, 1, 3)


def test_cvat_rle_round_trip() -> None:
    for mask in _masks():
        enc = cvat_encode(mask)
        if not mask.any():
            assert enc is None
            continue
        assert enc is not None
        counts, box = enc
        np.testing.assert_array_equal(cvat_decode(counts, box, mask.shape), mask)
    assert cvat_encode(np.eye(3, dtype=bool)) == ([0, 1, 3, 1, 3, 1], (0, 0, 3, 3))


def _by_ids(labels: list) -> dict[str, np.ndarray]:
    return {f"{lab.attributes['exam_id']}/{lab.attributes['image']}": lab.mask for lab in labels}


def test_cvat_export_import_round_trip(tmp_path: Path) -> None:
    run, masks = fake_run(tmp_path)
    _, items = load_items(run)
    summary = write_export("cvat", items, tmp_path / "cvat")
    assert summary["masks"] == 6
    xml = tmp_path / "cvat" / "annotations.xml"
    got = _by_ids(read_cvat(xml))
    assert got.keys() == masks.keys()
    for key, mask in masks.items():
        np.testing.assert_array_equal(got[key], mask)
    tag = ET.parse(xml).getroot().find("image/tag")
    assert tag is not None
    attrs = {a.get("name"): a.text for a in tag.iter("attribute")}
    assert attrs["polyp"] == "present" and attrs["polyp_count"] == "2" and attrs["locations"] == "sigmoid"
    assert json.loads((tmp_path / "cvat" / "cvat_labels.json").read_text())[0]["type"] == "mask"

    assert import_labels(run, xml).decisions == []  # nothing was changed
    # an annotator redraws the first image's polyp and deletes the second image's polyps
    tree = ET.parse(xml)
    first, second = tree.getroot().findall("image")[:2]
    new = np.zeros((30, 40), bool)
    new[2:9, 20:33] = True
    counts, (left, top, width, height) = cvat_encode(new)  # type: ignore[misc]
    for m in first.findall("mask")[1:]:
        first.remove(m)
    first.find("mask").attrib.update(  # type: ignore[union-attr]
        rle=", ".join(map(str, counts)), left=str(left), top=str(top), width=str(width), height=str(height)
    )
    for m in second.findall("mask"):
        second.remove(m)
    tree.write(tmp_path / "edited.xml", encoding="utf-8", xml_declaration=True)
    s = import_labels(run, tmp_path / "edited.xml", reviewer="dr-x")
    assert (s.fixed, s.rejected, s.unchanged, s.labels) == (1, 1, 2, 0)
    pool = reviewed.apply_decisions(run.root, [{"exam_id": it.exam_id, "image": it.image, "mask": ""} for it in items])
    assert len(pool) == 3 and pool[0]["source"] == "reviewed"
    np.testing.assert_array_equal(read_mask(run.abs(pool[0]["mask"])), new)
    assert import_labels(run, tmp_path / "edited.xml").already == 2  # a second import records nothing new
    assert len(reviewed.all_decisions(run.root)) == 2


def test_labelstudio_export_import_round_trip(tmp_path: Path) -> None:
    run, masks = fake_run(tmp_path)
    _, items = load_items(run)
    write_export("labelstudio", items, tmp_path / "ls")
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    assert len(tasks) == 4 and "<BrushLabels" in (tmp_path / "ls" / "labeling_config.xml").read_text()
    assert tasks[0]["data"]["polyp"] == "present" and tasks[0]["data"]["locations"] == "sigmoid"
    # Label Studio's JSON export after an annotator submitted every pre-annotation as it was
    for i, task in enumerate(tasks):
        task["id"] = i + 1
        task["annotations"] = [
            {"id": i + 1, "completed_by": {"email": "a@b.org"}, "result": task.pop("predictions")[0]["result"]}
        ]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    got = _by_ids(read_labelstudio(tmp_path / "export.json"))
    assert got.keys() == masks.keys()
    for key, mask in masks.items():
        np.testing.assert_array_equal(got[key], mask)
    assert import_labels(run, tmp_path / "export.json").decisions == []

    new = np.zeros((30, 40), bool)
    new[10:20, 1:11] = True
    brush = tasks[3]["annotations"][0]["result"][0]
    brush["value"]["rle"] = brush_encode(new)
    tasks[3]["annotations"].append(  # a later annotation wins
        {"id": 9, "updated_at": "2030-01-01T00:00:00Z", "completed_by": 7, "result": [brush]}
    )
    tasks[0]["annotations"][0]["result"][1]["value"]["choices"] = ["uncertain"]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    assert main(["import-labels", str(run.root), str(tmp_path / "export.json")]) == 0
    decisions = reviewed.all_decisions(run.root)
    fix = next(d for d in decisions if d["action"] == "fix")
    assert (fix["exam_id"], fix["image"], fix["reviewer"]) == (items[3].exam_id, items[3].image, "labelstudio:7")
    np.testing.assert_array_equal(read_mask(run.abs(fix["mask_after"])), new)
    assert reviewed.label_corrections(run.root) == {items[0].exam_id: {"polyp": "uncertain"}}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.xml", "<annotations><image", "not well-formed XML"),
        ("b.xml", "<dataset/>", "not <annotations>"),
        (
            "c.xml",
            '<annotations><image id="0" name="x.jpg" width="40" height="30"><mask label="polyp" rle="1, 2" '
            'left="0" top="0" width="2" height="2"/></image></annotations>',
            "rle covers 3 pixels but its box has 4",
        ),
        (
            "d.xml",
            '<annotations><image id="0" name="nope.jpg" width="40" height="30"/></annotations>',
            "cannot tell which image",
        ),
        ("e.json", '{"data": {}}', "not a Label Studio JSON export"),
        ("f.json", "[{", "not JSON"),
        (
            "g.json",
            '[{"data": {"exam_id": "E0", "image": "E0/frame 0.jpg"}, "annotations": [{"result": [{"type": '
            '"brushlabels", "original_width": 40, "original_height": 30, "value": {"rle": [0, 0, 18, 188], '
            '"brushlabels": ["polyp"]}}]}]}]',
            "brush RLE holds 4796 values",
        ),
        (
            "h.json",
            '[{"data": {"exam_id": "E7", "image": "x.jpg"}, "annotations": [{"result": []}]}]',
            "E7/x.jpg is not an image of run",
        ),
    ],
)
def test_malformed_label_files_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    run, _ = fake_run(tmp_path)
    path = tmp_path / name
    path.write_text(content)
    assert main(["import-labels", str(run.root), str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and name in err and "Traceback" not in err
    assert reviewed.all_decisions(run.root) == []
