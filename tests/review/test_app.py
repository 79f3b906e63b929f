"""The review app over HTTP: the token, run-folder-only files, same-origin writes, decisions and corrections."""

from __future__ import annotations

import base64
import http.client
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from endoked import reviewed, tables
from endoked.runfolder import RunFolder
from tests.review.conftest import HOSTILE_ID, HOSTILE_REPORT, TOKEN

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
IMG = {"exam_id": "E0", "image": "E0/frame 0.jpg"}
WRITE = {"X-Review-Token": TOKEN}


def _client(server: Any) -> Any:
    return httpx.Client(base_url=server.base, timeout=120)


def _raw_get(server: Any, path: str) -> int:
    """Status of a GET sent byte for byte (no client-side normalisation of ``..``)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def _png(mask: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray((mask * 255).astype(np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_every_request_needs_the_token(server: Any, run_folder: RunFolder) -> None:
    with _client(server) as c:
        for path in ("/", "/static/app.js", "/api/exams", "/api/session", "/files/ledger.json"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, params={"token": "wrong"}).status_code == 401, path
            assert c.get(path, headers={"X-Review-Token": TOKEN[:-1]}).status_code == 401, path
        assert c.post("/api/decision", json={**IMG, "action": "accept", "reviewer": "r"}).status_code == 401
        first = c.get("/", params={"token": TOKEN})
        assert first.status_code == 200 and "endoked review" in first.text
        assert first.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
        # the cookie set by the first request authenticates the page's later GETs
        assert c.get("/api/exams").status_code == 200
    assert reviewed.all_decisions(run_folder.root) == []


def test_only_files_of_the_run_folder_are_served(server: Any, run_folder: RunFolder, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (run_folder.root / "escape.txt").symlink_to(outside)
    (run_folder.root / "escape_dir").symlink_to(tmp_path)
    q = f"?token={TOKEN}"
    assert _raw_get(server, "/files/ledger.json" + q) == 200
    for path in (
        "/files/../secret.txt",
        "/files/../../etc/passwd",
        "/files/%2e%2e/secret.txt",
        "/files/ingest/..%2f..%2fsecret.txt",
        "/files//etc/passwd",
        "/files/escape.txt",
        "/files/escape_dir/secret.txt",
        "/files/ingest",
    ):
        assert _raw_get(server, path + q) in (400, 404), path
    with _client(server) as c:
        # images are found through the run's image table only
        assert c.get("/api/frame", params={"token": TOKEN, "exam_id": "E0", "image": str(outside)}).status_code == 404
        assert c.get("/api/frame", params={"token": TOKEN, **IMG}).headers["content-type"].startswith("image/")


def test_writes_need_the_token_header_and_the_same_origin(server: Any, run_folder: RunFolder) -> None:
    body = {**IMG, "action": "accept", "reviewer": "r1"}
    with _client(server) as c:
        c.get("/", params={"token": TOKEN})  # the cookie alone must not allow writes
        assert c.post("/api/decision", json=body).status_code == 403
        assert c.post("/api/decision", json=body, params={"token": TOKEN}).status_code == 403
        evil = {**WRITE, "Origin": "http://evil.example"}
        assert c.post("/api/decision", json=body, headers=evil).status_code == 403
        assert c.post("/api/decision", json=body, headers={**WRITE, "Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert reviewed.all_decisions(run_folder.root) == []
        same = {**WRITE, "Origin": server.base, "Sec-Fetch-Site": "same-origin"}
        assert c.post("/api/decision", json=body, headers=same).status_code == 200
    assert [d["action"] for d in reviewed.all_decisions(run_folder.root)] == ["accept"]


def test_decisions_are_stored_with_masks_before_and_after(server: Any, run_folder: RunFolder) -> None:
    fixed = np.zeros((30, 40), bool)
    fixed[2:9, 20:35] = True
    with _client(server) as c:
        post = lambda path, body: c.post(path, json=body, headers=WRITE)  # noqa: E731
        assert post("/api/decision", {**IMG, "action": "accept", "reviewer": "r1"}).status_code == 200
        other = {"exam_id": "E0", "image": "E0/frame 1.jpg"}
        assert post("/api/decision", {**other, "action": "reject", "reviewer": "r1"}).status_code == 200
        # a fix must carry a mask of the image's size
        assert post("/api/decision", {**IMG, "action": "fix", "reviewer": "r2"}).status_code == 400
        small = _png(np.ones((10, 10), bool))
        assert post("/api/decision", {**IMG, "action": "fix", "reviewer": "r2", "mask_png": small}).status_code == 400
        bad = base64.b64encode(b"not a png").decode()
        assert post("/api/decision", {**IMG, "action": "fix", "reviewer": "r2", "mask_png": bad}).status_code == 400
        res = post("/api/decision", {**IMG, "action": "fix", "reviewer": "r2", "mask_png": _png(fixed)})
        assert res.status_code == 200
        assert post("/api/decision", {**IMG, "action": "delete", "reviewer": "r2"}).status_code == 422
        missing = {"exam_id": "E0", "image": "nope.jpg", "action": "accept", "reviewer": "r2"}
        assert post("/api/decision", missing).status_code == 404
    latest = reviewed.latest_image_decisions(run_folder.root)
    fix = latest[("E0", "E0/frame 0.jpg")]
    assert fix["action"] == "fix" and fix["reviewer"] == "r2" and fix["mask_before"] == "prompt_seg/masks/E0/0.png"
    assert np.array_equal(np.asarray(Image.open(run_folder.abs(fix["mask_after"]))) > 0, fixed)
    assert latest[("E0", "E0/frame 1.jpg")]["action"] == "reject"
    exported = tables.read(run_folder.root / "review" / "decisions.parquet", "review/decisions").to_pylist()
    assert [(r["action"], r["reviewer"]) for r in exported] == [("accept", "r1"), ("reject", "r1"), ("fix", "r2")]


def test_report_field_corrections_are_checked(server: Any, run_folder: RunFolder) -> None:
    with _client(server) as c:
        post = lambda body: c.post("/api/label", json={"exam_id": "E1", "reviewer": "r1", **body}, headers=WRITE)  # noqa: E731
        assert post({"field": "polyp", "value": "maybe"}).status_code == 400
        assert post({"field": "polyp_count", "value": -1}).status_code == 400
        assert post({"field": "pathology", "value": "adenoma"}).status_code == 400
        assert post({"field": "polyp", "value": "absent"}).status_code == 200
        assert post({"field": "polyp_count", "value": "0"}).status_code == 200
        exams = {e["exam_id"]: e for e in c.get("/api/exams", params={"token": TOKEN}).json()}
    assert reviewed.label_corrections(run_folder.root) == {"E1": {"polyp": "absent", "polyp_count": 0}}
    assert exams["E1"]["corrected"] == {"polyp": "absent", "polyp_count": 0} and exams["E1"]["polyp"] == "present"


def test_exam_page_data_queue_and_live_segmenter(server: Any) -> None:
    with _client(server) as c:
        get = lambda path, **q: c.get(path, params={"token": TOKEN, **q})  # noqa: E731
        exam = get("/api/exam", exam_id=HOSTILE_ID).json()
        assert exam["report"] == HOSTILE_REPORT  # verbatim: the page writes it as text
        e0 = get("/api/exam", exam_id="E0").json()
        assert [s[2] for s in e0["spans"]] == ["size", "polyp", "location", "negated"]
        assert e0["images"][0]["boxes"] == [[4.0, 5.0, 15.0, 12.0]] and e0["images"][0]["has_mask"]
        assert get("/api/exam", exam_id="nope").status_code == 404
        queue = get("/api/queue").json()
        assert (queue[0]["exam_id"], queue[0]["quality"]) == (HOSTILE_ID, 0.4) and len(queue) == 5
        c.post("/api/decision", json={**IMG, "action": "accept", "reviewer": "r1"}, headers=WRITE)
        assert len(get("/api/queue").json()) == 4
        mask_layer = get("/api/frame", layer="mask", **IMG)
        assert Image.open(io.BytesIO(mask_layer.content)).size == (40, 30)
        assert get("/api/frame", layer="cam", **IMG).status_code == 404  # the fake run saved no CAM
        assert get("/api/frame", layer="bogus", **IMG).status_code == 400
        res = c.post("/api/segment", json={**IMG, "box": [10, 5, 30, 25]}, headers=WRITE).json()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(res["mask_png"]))))[..., 3] > 0
    ys, xs = np.nonzero(mask)
    assert res["area"] == int(mask.sum()) > 0
    assert xs.min() >= 10 and xs.max() < 30 and ys.min() >= 5 and ys.max() < 25  # the ellipse inside the box


def test_cli_imports_no_web_framework_and_refuses_a_non_run(tmp_path: Path) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    code = "import endoked.cli, sys; print([m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules])"
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    from endoked.cli import main

    assert main(["review", str(tmp_path)]) == 2
