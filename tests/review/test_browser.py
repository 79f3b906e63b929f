"""End to end in headless Chromium: filter, accept, reject, fix by moving the box, reload; two pages at once;
the token, ``../`` paths and markup in a report."""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from endoked import reviewed
from endoked.runfolder import RunFolder
from tests import browser
from tests.review.conftest import HOSTILE_ID, TOKEN

pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))


@pytest.fixture
def drv() -> Any:
    d = browser.driver()
    yield d
    d.quit()


def _rows(d: Any) -> list[str]:
    return list(d.execute_script("return [...document.querySelectorAll('#exams tbody tr')].map(r => r.dataset.exam)"))


def _set(d: Any, element_id: str, value: str) -> None:
    d.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));",
        element_id,
        value,
    )


def _js(d: Any, expr: str) -> Any:
    return d.execute_script(f"return {expr}")


def _image_is(name: str) -> Any:
    return lambda d: _js(d, "document.querySelector('#image-id')?.textContent") == name


def _box_is(box: str) -> Any:
    return lambda d: _js(d, "document.querySelector('#edit-box')?.dataset.box") == box


def _open(d: Any, server: Any, hash_: str) -> None:
    d.get(f"{server.url}#{hash_}")


def _image_hash(exam: str, image: str) -> str:
    return f"/image/{quote(exam, safe='')}/{quote(image, safe='')}"


def test_review_session_end_to_end(server: Any, run_folder: RunFolder, drv: Any) -> None:
    d = drv
    # no token: refused; a ../ path: refused
    d.get(server.base + "/")
    assert "missing or wrong token" in d.page_source
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.putrequest("GET", f"/files/../../etc/passwd?token={TOKEN}")
    conn.endheaders()
    try:
        assert conn.getresponse().status == 404
    finally:
        conn.close()

    # exam list and filters
    d.get(server.url)
    browser.wait(d, lambda d: len(_rows(d)) == 3)
    assert sorted(_rows(d)) == sorted(["E0", "E1", HOSTILE_ID])
    _set(d, "f-polyp", "uncertain")
    browser.wait(d, lambda d: _rows(d) == [HOSTILE_ID])
    # ids are text: the hostile id's <b> is not an element
    assert d.execute_script("return document.querySelector('#exams tbody td').textContent") == HOSTILE_ID
    assert d.execute_script("return document.querySelectorAll('#exams tbody b').length") == 0
    _set(d, "f-polyp", "")
    _set(d, "f-q", "E1")
    browser.wait(d, lambda d: _rows(d) == ["E1"])
    _set(d, "f-q", "")
    _set(d, "f-quality", "0.5")
    browser.wait(d, lambda d: _rows(d) == [HOSTILE_ID])
    _set(d, "f-quality", "")

    # the report with markup is shown as text, nothing in it runs
    _open(d, server, "/exam/" + quote(HOSTILE_ID, safe=""))
    browser.wait(d, lambda d: "<script>" in _js(d, "document.querySelector('#report')?.textContent || ''"))
    assert d.execute_script("return document.querySelectorAll('#report script, #report img').length") == 0
    assert d.execute_script("return document.querySelector('#exam-id').textContent") == HOSTILE_ID
    assert d.title == "endoked review"

    # accept one, reject the next: keyboard only on the exam's images
    _open(d, server, "/exam/E0")
    browser.wait(d, lambda d: len(d.find_elements("css selector", ".tile")) == 2)
    browser.keys(d, "\ue007")  # Enter: open the first image
    browser.wait(d, _image_is("E0/frame 0.jpg"))
    browser.keys(d, "a")
    browser.wait(d, browser.status_is("saved: accept E0/frame 0.jpg"))
    browser.wait(d, _image_is("E0/frame 1.jpg"))
    browser.keys(d, "r")
    browser.wait(d, browser.status_is("saved: reject E0/frame 1.jpg"))

    # fix one by moving its box: three steps right, the segmenter re-prompted live, then f
    _open(d, server, _image_hash("E1", "E1/frame 0.jpg"))
    browser.wait(d, _image_is("E1/frame 0.jpg"))
    browser.wait(d, _box_is("4.0,5.0,15.0,12.0"))
    browser.keys(d, "\ue014", "\ue014", "\ue014")  # ArrowRight x3 (1 px each on a 40 px frame)
    browser.wait(d, _box_is("7.0,5.0,18.0,12.0"))
    browser.wait(d, browser.status_is("re-prompted"))
    browser.keys(d, "f")
    browser.wait(d, browser.status_is("saved: fix E1/frame 0.jpg"))

    # reload: the decisions persisted and the page shows them
    d.refresh()
    _open(d, server, "/exam/E0")
    badges = lambda d: d.execute_script("return [...document.querySelectorAll('.tile .badge')].map(b => b.textContent)")  # noqa: E731
    browser.wait(d, lambda d: badges(d) == ["accept", "reject"])
    _open(d, server, "/exam/E1")
    browser.wait(d, lambda d: badges(d) == ["fix"])
    latest = reviewed.latest_image_decisions(run_folder.root)
    assert {k: v["action"] for k, v in latest.items()} == {
        ("E0", "E0/frame 0.jpg"): "accept",
        ("E0", "E0/frame 1.jpg"): "reject",
        ("E1", "E1/frame 0.jpg"): "fix",
    }
    fix = latest[("E1", "E1/frame 0.jpg")]
    assert fix["reviewer"] == "tester" and fix["mask_before"] == "prompt_seg/masks/E1/0.png"
    ys, xs = np.nonzero(np.asarray(Image.open(run_folder.abs(fix["mask_after"]))))
    assert xs.min() >= 7 and xs.max() < 18 and ys.min() >= 5 and ys.max() < 12  # the ellipse of the moved box


def test_two_pages_editing_at_once_lose_nothing(server: Any, run_folder: RunFolder, drv: Any) -> None:
    d = drv
    d.get(server.url + "#/exam/E1")
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(server.url + "#/exam/E0")
    second = d.current_window_handle
    targets = {
        first: ("ana", "E1", ["E1/frame 0.jpg", "E1/frame 1.jpg"]),
        second: ("ben", "E0", ["E0/frame 0.jpg", "E0/frame 1.jpg"]),
    }
    burst = (
        "const [who, exam, images] = arguments; document.getElementById('reviewer').value = who;"
        "window.done = 0; for (let i = 0; i < 10; i++) for (const image of images)"
        " decide({exam_id: exam, image}, i % 2 ? 'accept' : 'reject').then(() => window.done++);"
    )
    for handle in targets:  # both pages loaded, then both bursts started before either finishes
        d.switch_to.window(handle)
        browser.wait(d, lambda d: len(d.find_elements("css selector", ".tile")) == 2)
    t0 = time.monotonic()
    for handle, args in targets.items():
        d.switch_to.window(handle)
        d.execute_script(burst, *args)
    for handle in targets:
        d.switch_to.window(handle)
        browser.wait(d, lambda d: d.execute_script("return window.done") == 20)
    assert time.monotonic() - t0 < 60
    rows = reviewed.all_decisions(run_folder.root)
    assert len(rows) == 40
    assert {(r["reviewer"], r["exam_id"]) for r in rows} == {("ana", "E1"), ("ben", "E0")}
    per_image: dict[tuple[str, str], int] = {}
    for r in rows:
        per_image[(r["reviewer"], r["image"])] = per_image.get((r["reviewer"], r["image"]), 0) + 1
    assert set(per_image.values()) == {10} and len(per_image) == 4
