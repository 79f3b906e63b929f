"""Labelling-tool formats: CVAT for images 1.1 XML and Label Studio JSON tasks, written and read back.

Both exports copy the images to ``out/images/<case>.<ext>`` and carry, per image, the exam's report fields
(:data:`REPORT_ATTRIBUTES`) and the original ids (``exam_id``, ``image``), so that corrected masks can be
matched to the run again whatever the tool renamed (:mod:`endoked.export.labels`).

* CVAT: ``annotations.xml`` (one ``<mask>`` per connected component, label ``polyp``; a ``<tag>`` labelled
  ``report`` holding the ids and report fields as attributes) and ``cvat_labels.json`` (the task's labels, to
  paste into CVAT's raw label editor).
* Label Studio: ``tasks.json`` (one task per image; the pseudo mask as a ``brushlabels`` prediction, the report
  fields in ``data`` and as ``polyp`` choices / ``polyp_count`` number predictions) and
  ``labeling_config.xml`` (the matching labelling interface).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from endoked.errors import DataFormatError
from endoked.export.rle import brush_decode, brush_encode, cvat_decode, cvat_encode
from endoked.export.source import ExportItem, with_case_ids
from endoked.imaging import copy_upright
from endoked.io import atomic_path, atomic_write_json, atomic_write_text
from endoked.progress import track

POLYP_LABEL = "polyp"
REPORT_TAG = "report"
POLYP_STATUS = ("present", "absent", "uncertain")
# Per-image attributes: the ids that match an image back to the run, then the report fields.
ID_ATTRIBUTES = ("exam_id", "image")
REPORT_ATTRIBUTES = ("polyp", "polyp_count", "locations", "pathology", "malignancy_suspected")


@dataclass
class ToolLabel:
    """One image's mask as a labelling tool gives it back.

    Attributes:
        name: the image's file name in the tool (``<case>.<ext>`` as exported).
        mask: ``(H, W)`` bool, the union of the image's polyp shapes.
        attributes: the image's attributes (ids, report fields; strings as the tool keeps them).
        annotator: who made the annotation, when the file says.
        origin: file and element, for messages.
    """

    name: str
    mask: np.ndarray
    attributes: dict[str, str] = field(default_factory=dict)
    annotator: str | None = None
    origin: str = ""


def report_attributes(item: ExportItem) -> dict[str, str]:
    """The ids and report fields of an item as strings (empty when unknown)."""
    rep = item.report or {}
    polyps = rep.get("polyps") or []
    locations = sorted({str(p.get("location")) for p in polyps if isinstance(p, dict) and p.get("location")})

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return {
        "exam_id": item.exam_id,
        "image": item.image,
        "polyp": text(rep.get("polyp")),
        "polyp_count": text(rep.get("polyp_count")),
        "locations": ", ".join(locations),
        "pathology": text(rep.get("pathology")),
        "malignancy_suspected": text(rep.get("malignancy_suspected")),
    }


def _instances(mask: np.ndarray) -> list[np.ndarray]:
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [lab == i for i in range(1, n)]


def _copy_images(items: Sequence[ExportItem], out: Path, desc: str) -> list[str]:
    (out / "images").mkdir(parents=True, exist_ok=True)
    names = []
    for it in track(items, total=len(items), desc=desc, unit="img"):
        name = f"{it.case_id}{it.image_path.suffix.lower()}"
        copy_upright(it.image_path, out / "images" / name)
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------------- CVAT
def cvat_label_spec() -> list[dict[str, Any]]:
    """The CVAT task labels (raw label editor JSON): ``polyp`` masks and the ``report`` tag's attributes."""
    attrs: list[dict[str, Any]] = [
        {"name": name, "mutable": False, "input_type": "text", "default_value": "", "values": [""]}
        for name in ID_ATTRIBUTES
    ]
    attrs.append(
        {"name": "polyp", "mutable": False, "input_type": "select", "default_value": "", "values": ["", *POLYP_STATUS]}
    )
    attrs += [
        {"name": name, "mutable": False, "input_type": "text", "default_value": "", "values": [""]}
        for name in REPORT_ATTRIBUTES[1:]
    ]
    return [
        {"name": POLYP_LABEL, "type": "mask", "color": "#ff0000", "attributes": []},
        {"name": REPORT_TAG, "type": "tag", "color": "#3d3df5", "attributes": attrs},
    ]


def _meta(n_images: int) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = "endoked pseudo labels"
    ET.SubElement(task, "size").text = str(n_images)
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for spec in cvat_label_spec():
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = spec["name"]
        ET.SubElement(label, "type").text = spec["type"]
        attributes = ET.SubElement(label, "attributes")
        for a in spec["attributes"]:
            attr = ET.SubElement(attributes, "attribute")
            ET.SubElement(attr, "name").text = a["name"]
            ET.SubElement(attr, "mutable").text = str(a["mutable"])
            ET.SubElement(attr, "input_type").text = a["input_type"]
            ET.SubElement(attr, "default_value").text = a["default_value"]
            ET.SubElement(attr, "values").text = "\n".join(a["values"])
    return meta


def export_cvat(items: Sequence[ExportItem], out: Path) -> dict[str, Any]:
    """CVAT for images 1.1: ``annotations.xml``, ``cvat_labels.json`` and ``images/``."""
    items = with_case_ids(items)
    names = _copy_images(items, out, "export cvat")
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    root.append(_meta(len(items)))
    n_masks = 0
    for idx, (it, name) in enumerate(zip(items, names, strict=True)):
        image = ET.SubElement(
            root, "image", {"id": str(idx), "name": name, "width": str(it.width), "height": str(it.height)}
        )
        for inst in _instances(it.load_mask()):
            enc = cvat_encode(inst)
            if enc is None:  # pragma: no cover - components are never empty
                continue
            counts, (left, top, width, height) = enc
            ET.SubElement(
                image,
                "mask",
                {
                    "label": POLYP_LABEL,
                    "source": "auto",
                    "occluded": "0",
                    "rle": ", ".join(str(c) for c in counts),
                    "left": str(left),
                    "top": str(top),
                    "width": str(width),
                    "height": str(height),
                    "z_order": "0",
                },
            )
            n_masks += 1
        tag = ET.SubElement(image, "tag", {"label": REPORT_TAG, "source": "auto"})
        for key, value in report_attributes(it).items():
            ET.SubElement(tag, "attribute", {"name": key}).text = value
    ET.indent(root, space="  ")
    with atomic_path(out / "annotations.xml", suffix=".xml") as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    atomic_write_json(out / "cvat_labels.json", cvat_label_spec())
    return {"format": "cvat", "images": len(items), "masks": n_masks}


def _int_attr(el: ET.Element, key: str, origin: str) -> int:
    value = el.get(key)
    try:
        return int(float(value)) if value is not None else _missing(key, origin)
    except ValueError:
        raise DataFormatError(f"{origin}: attribute {key}={value!r} is not a number") from None


def _missing(key: str, origin: str) -> int:
    raise DataFormatError(f"{origin}: attribute {key!r} is missing")


def _polygon(el: ET.Element, hw: tuple[int, int], origin: str) -> np.ndarray:
    try:
        pts = [[float(v) for v in pair.split(",")] for pair in (el.get("points") or "").split(";") if pair]
        arr = np.round(np.asarray(pts, dtype=np.float64)).astype(np.int32).reshape(-1, 2)
    except ValueError:
        raise DataFormatError(f"{origin}: points {el.get('points')!r} are not 'x,y;x,y;...'") from None
    out = np.zeros(hw, dtype=np.uint8)
    if len(arr) >= 3:
        cv2.fillPoly(out, [arr], 1)
    return out.astype(bool)


def read_cvat(path: Path) -> list[ToolLabel]:
    """Masks of a CVAT for images 1.1 file (``annotations.xml``, or a CVAT export ``.zip`` holding one).

    ``<mask>`` and ``<polygon>`` shapes labelled ``polyp`` are united per image (polygons rasterised with
    OpenCV, which may differ from CVAT's own rasterisation along the edge); the ``report`` tag's attributes are
    the image's attributes.

    Raises:
        DataFormatError: not well-formed XML, not CVAT for images, or a shape that does not fit its image.
    """
    data = _read_bytes(path, inner="annotations.xml")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataFormatError(f"{path}: not well-formed XML ({exc})") from None
    if root.tag != "annotations":
        raise DataFormatError(f"{path}: root element is <{root.tag}>, not <annotations> of CVAT for images 1.1")
    if root.find("track") is not None:
        raise DataFormatError(f"{path}: holds <track> elements (CVAT for video); export as 'CVAT for images 1.1'")
    out = []
    for image in root.iter("image"):
        name = image.get("name") or ""
        origin = f"{path}: <image name={name!r}>"
        if not name:
            raise DataFormatError(f"{path}: an <image> has no name attribute")
        hw = (_int_attr(image, "height", origin), _int_attr(image, "width", origin))
        mask = np.zeros(hw, dtype=bool)
        attrs: dict[str, str] = {}
        for el in image:
            if el.tag == "tag" and el.get("label") == REPORT_TAG:
                attrs.update({a.get("name") or "": (a.text or "") for a in el.iter("attribute")})
            if el.get("label") != POLYP_LABEL:
                continue
            shape = f"{origin} <{el.tag}>"
            if el.tag == "mask":
                try:
                    counts = [int(c) for c in (el.get("rle") or "").split(",") if c.strip()]
                except ValueError:
                    raise DataFormatError(f"{shape}: rle {el.get('rle')!r} is not a list of integers") from None
                box = tuple(_int_attr(el, k, shape) for k in ("left", "top", "width", "height"))
                mask |= cvat_decode(counts, box, hw, shape)  # type: ignore[arg-type]
            elif el.tag == "polygon":
                mask |= _polygon(el, hw, shape)
        out.append(ToolLabel(name, mask, attrs, None, origin))
    if not out:
        raise DataFormatError(f"{path}: no <image> elements; export the task as 'CVAT for images 1.1'")
    return out


def _read_bytes(path: Path, inner: str) -> bytes:
    """The file's bytes, or those of ``inner`` when it is a zip archive (CVAT downloads zip the XML)."""
    import zipfile

    if not path.is_file():
        raise DataFormatError(f"label file not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            hits = [n for n in zf.namelist() if Path(n).name == inner]
            if not hits:
                raise DataFormatError(f"{path}: the zip archive holds no {inner}")
            return zf.read(hits[0])
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------- Label Studio
LS_BRUSH = "label"  # from_name of the BrushLabels control
LS_IMAGE = "image"  # to_name: the Image object


def labeling_config() -> str:
    """The Label Studio labelling interface that goes with :func:`export_labelstudio`'s tasks."""
    choices = "\n".join(f'    <Choice value="{v}"/>' for v in POLYP_STATUS)
    return f"""<View>
  <Header value="Exam $exam_id, image $image"/>
  <Text name="findings" value="Report: polyp $polyp, count $polyp_count, at $locations; pathology $pathology"/>
  <Image name="{LS_IMAGE}" value="$image_url" zoom="true"/>
  <BrushLabels name="{LS_BRUSH}" toName="{LS_IMAGE}">
    <Label value="{POLYP_LABEL}" background="#ff0000"/>
  </BrushLabels>
  <Choices name="polyp" toName="{LS_IMAGE}" choice="single" showInline="true">
{choices}
  </Choices>
  <Number name="polyp_count" toName="{LS_IMAGE}" min="0"/>
</View>
"""


def export_labelstudio(items: Sequence[ExportItem], out: Path, image_prefix: str = "images/") -> dict[str, Any]:
    """Label Studio: ``tasks.json``, ``labeling_config.xml`` and ``images/``.

    Args:
        image_prefix: what goes before the image file name in each task's ``image_url`` (e.g.
            ``/data/local-files/?d=export/images/`` for Label Studio's local file storage).
    """
    items = with_case_ids(items)
    names = _copy_images(items, out, "export labelstudio")
    tasks = []
    for it, name in zip(items, names, strict=True):
        mask = it.load_mask()
        attrs = report_attributes(it)
        result: list[dict[str, Any]] = []
        if mask.any():
            result.append(
                {
                    "id": f"{it.case_id[:40]}-mask",
                    "type": "brushlabels",
                    "from_name": LS_BRUSH,
                    "to_name": LS_IMAGE,
                    "original_width": it.width,
                    "original_height": it.height,
                    "image_rotation": 0,
                    "value": {"format": "rle", "rle": brush_encode(mask), "brushlabels": [POLYP_LABEL]},
                }
            )
        if attrs["polyp"] in POLYP_STATUS:
            result.append(
                {"type": "choices", "from_name": "polyp", "to_name": LS_IMAGE, "value": {"choices": [attrs["polyp"]]}}
            )
        if attrs["polyp_count"].isdigit():
            count = int(attrs["polyp_count"])
            result.append(
                {"type": "number", "from_name": "polyp_count", "to_name": LS_IMAGE, "value": {"number": count}}
            )
        data: dict[str, Any] = {"image_url": f"{image_prefix}{name}", "case_id": it.case_id, **attrs}
        tasks.append(
            {
                "data": data,
                "predictions": [{"model_version": "endoked", "result": result}],
            }
        )
    atomic_write_text(out / "tasks.json", json.dumps(tasks, ensure_ascii=False) + "\n")
    atomic_write_text(out / "labeling_config.xml", labeling_config())
    return {"format": "labelstudio", "images": len(items)}


def _latest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None
    return max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))


def _ls_result(result: dict[str, Any], key: str) -> Any:
    value = result.get("value")
    if isinstance(value, dict) and key in value:
        return value[key]
    return result.get(key)


def read_labelstudio(path: Path) -> list[ToolLabel]:
    """Masks of a Label Studio JSON export (a list of tasks): the latest submitted annotation of each task
    (tasks without one are not returned). ``brushlabels`` results labelled ``polyp`` are united; the
    ``polyp`` choice and ``polyp_count`` number, when answered, override the task's report attributes.

    Raises:
        DataFormatError: not JSON, not a list of tasks, or a result that does not fit its image.
    """
    data = _read_bytes(path, inner="result.json")
    try:
        tasks = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: not JSON ({exc})") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
        raise DataFormatError(f"{path}: not a Label Studio JSON export (a list of tasks with 'data'); export as JSON")
    out = []
    for n, task in enumerate(tasks):
        ann = _latest_annotation(task)
        if ann is None:
            continue
        data = task["data"]
        name = Path(str(data.get("image_url") or data.get("image") or "")).name
        origin = f"{path}: task {task.get('id', n)} ({name or 'no image'})"
        attrs = {k: str(v) for k, v in data.items() if k in ID_ATTRIBUTES + REPORT_ATTRIBUTES + ("case_id",)}
        results = ann.get("result")
        if not isinstance(results, list):
            raise DataFormatError(f"{origin}: the annotation has no result list")
        mask: np.ndarray | None = None
        for r in results:
            if not isinstance(r, dict):
                raise DataFormatError(f"{origin}: a result is not an object")
            kind = str(r.get("type", "")).lower()
            if kind == "brushlabels" and POLYP_LABEL in (_ls_result(r, "brushlabels") or []):
                if _ls_result(r, "format") not in (None, "rle"):
                    raise DataFormatError(f"{origin}: brush format {_ls_result(r, 'format')!r} is not rle")
                if int(r.get("image_rotation") or 0) != 0:
                    raise DataFormatError(f"{origin}: rotated images (image_rotation) are not supported")
                try:
                    h, w = int(r["original_height"]), int(r["original_width"])
                except (KeyError, TypeError, ValueError):
                    raise DataFormatError(f"{origin}: a brush result lacks original_width/original_height") from None
                part = brush_decode(_ls_result(r, "rle"), h, w, origin)
                if mask is not None and mask.shape != part.shape:
                    raise DataFormatError(f"{origin}: brush results of different image sizes")
                mask = part if mask is None else mask | part
            elif kind == "choices" and r.get("from_name") == "polyp":
                choices = _ls_result(r, "choices") or []
                if choices:
                    attrs["polyp"] = str(choices[0])
            elif kind == "number" and r.get("from_name") == "polyp_count":
                attrs["polyp_count"] = str(_ls_result(r, "number"))
        if mask is None:
            mask = np.zeros((0, 0), dtype=bool)  # no polyp drawn: the size is checked against the run's image
        completed = ann.get("completed_by")
        who = completed.get("email") if isinstance(completed, dict) else completed
        out.append(ToolLabel(name, mask, attrs, str(who) if who not in (None, "") else None, origin))
    return out
