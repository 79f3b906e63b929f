"""The review app in headless Chromium: keyboard-only seconds per image and the page load of a 40-image exam.

On a copy of a run folder (prompt_seg finished) with one exam of 40 frames added (the run's masked frames
repeated, with their pseudo masks, boxes and CAMs), so a run of any size has an exam that large:

- **keyboard review**: the queue, one key per image (``a`` twice, then ``r``; every fifth image a fix: three
  arrow keys move the box, the segmenter re-prompts, ``f`` saves). Per image: seconds from the page being
  ready for a key to the next image being ready, i.e. what the machine adds to the reviewer's own time.
- **page load**: a fresh page of the 40-image exam with the browser cache off, from navigation start until
  every image and overlay of the grid has loaded (median of ``--repeat``).
- screenshots of each screen (``--shots DIR``), downscaled PNGs.

    python benchmarks/bench_review.py --run RUN [--images 30] [--repeat 5] [--segmenter litemedsam] \
        [--shots docs/img/review] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from endoked import tables  # noqa: E402
from endoked.runfolder import RunFolder  # noqa: E402
from tests import browser  # noqa: E402

BIG = "BENCH40"


def add_big_exam(run: RunFolder, n: int = 40) -> None:
    """Append exam ``BIG`` with ``n`` frames: the run's masked frames repeated (rows of every table copied)."""
    pseudo = tables.rows(run, "prompt_seg/pseudo_labels")
    if not pseudo:
        raise SystemExit(f"{run.root}: prompt_seg kept no pseudo mask; nothing to review")
    images = tables.images(run)
    scores = {(r["exam_id"], r["image"]): r for r in tables.rows(run, "mil/image_scores")}
    boxes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for b in tables.rows(run, "cam/boxes"):
        boxes.setdefault((b["exam_id"], b["image"]), []).append(b)
    cams = (
        {(r["exam_id"], r["image"]): r for r in tables.rows(run, "cam/cams")}
        if (run.entry("cam") or {}).get("outputs", {}).get("cams")
        else {}
    )
    new: dict[str, list[dict[str, Any]]] = {k: [] for k in ("images", "scores", "boxes", "cams", "pseudo")}
    for i in range(n):
        src = pseudo[i % len(pseudo)]
        key = (src["exam_id"], src["image"])
        name = f"{i:02d}_{Path(src['image']).name}"
        ident = {"exam_id": BIG, "image": name}
        new["images"].append({**images[key], **ident})
        new["pseudo"].append({**src, **ident})
        if key in scores:
            new["scores"].append({**scores[key], **ident})
        new["boxes"] += [{**b, **ident} for b in boxes.get(key, [])]
        if key in cams:
            new["cams"].append({**cams[key], **ident})
    for name, part in (
        ("ingest/images", "images"),
        ("mil/image_scores", "scores"),
        ("cam/boxes", "boxes"),
        ("cam/cams", "cams"),
        ("prompt_seg/pseudo_labels", "pseudo"),
    ):
        stage, output = name.split("/")
        if output not in (run.entry(stage) or {}).get("outputs", {}):
            continue
        tables.write(run.output(stage, output), name, [*tables.rows(run, name), *new[part]])
    report = "Colonoscopy to the caecum. A 6 mm sessile polyp in the sigmoid colon, removed. No other polyps."
    tables.write(run.output("ingest", "exams"), "ingest/exams", [*tables.rows(run, "ingest/exams"),
                 {"exam_id": BIG, "report": report}])  # fmt: skip
    tables.write(run.output("extract", "labels"), "extract/labels", [*tables.rows(run, "extract/labels"),
                 {"exam_id": BIG, "polyp": "present", "polyp_count": 1}])  # fmt: skip


def make_driver(width: int, height: int) -> Any:
    """The tests' headless Chromium (one list of flags; the system's chromium and chromedriver)."""
    reason = browser.missing()
    if reason is not None:
        raise SystemExit(f"no browser: {reason}")
    return browser.driver(width, height)


def wait(d: Any, cond: Any, timeout: float = 120) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout, poll_frequency=0.01).until(cond)


def keys(d: Any, *seq: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(d).send_keys(*seq).perform()


def shot(d: Any, path: Path, width: int = 1000) -> None:
    """A downscaled, palette PNG screenshot (small enough to commit)."""
    from PIL import Image

    im = Image.open(io.BytesIO(d.get_screenshot_as_png())).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def ready_image(d: Any) -> str:
    """The image id once the editor is ready for a key (its pictures loaded), else ''."""
    return str(
        d.execute_script(
            "return document.body.dataset.view.endsWith('image') && document.body.dataset.loaded === '1' "
            "&& document.body.dataset.prompting !== '1' && document.querySelector('#edit-box') "
            "? document.querySelector('#image-id').textContent : ''"
        )
    )


def keyboard_session(d: Any, url: str, n: int) -> list[float]:
    """Seconds per image over ``n`` images of the queue, reviewed with keys only."""
    d.get(url + "#/queue")
    wait(d, lambda d: d.execute_script("return document.querySelectorAll('#queue tbody tr').length") > 0)
    keys(d, "\ue007")  # Enter: the first image of the queue
    current = wait(d, ready_image)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        if i % 5 == 4:
            keys(d, "\ue014", "\ue014", "\ue014")
            wait(
                d,
                lambda d: str(d.execute_script("return document.querySelector('#status').textContent")).startswith(
                    "re-prompted"
                ),
            )
            keys(d, "f")
        else:
            keys(d, "r" if i % 3 == 2 else "a")
        current = wait(d, lambda d, previous=current: (img := ready_image(d)) and img != previous and img)
        times.append(time.perf_counter() - t0)
    return times


def exam_load(d: Any, url: str, repeat: int) -> list[float]:
    """Seconds from navigation start to every picture of the 40-image exam loaded, browser cache off."""
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    out = []
    for _ in range(repeat):
        d.get("about:blank")
        d.get(f"{url}#/exam/{BIG}")
        wait(d, lambda d: d.execute_script("return document.body.dataset.loaded === '1' && window.endokedLoadedAt"))
        n = d.execute_script("return document.querySelectorAll('#grid .tile').length")
        if n != 40:
            raise RuntimeError(f"the exam page shows {n} images, not 40")
        out.append(float(d.execute_script("return window.endokedLoadedAt")) / 1000)
    d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    return out


def screenshots(d: Any, url: str, out: Path, exam: str) -> list[str]:
    d.get(url + "#/")
    wait(d, lambda d: d.execute_script("return document.querySelectorAll('#exams tbody tr').length") > 0)
    shot(d, out / "exams.png")
    d.get(f"{url}#/exam/{quote(exam, safe='')}")
    wait(d, lambda d: d.execute_script("return document.body.dataset.loaded === '1'"))
    keys(d, "1")  # CAM on
    time.sleep(0.5)
    shot(d, out / "exam.png")
    keys(d, "\ue007")
    wait(d, ready_image)
    keys(d, "\ue014", "\ue014", "\ue014", "\ue015", "\ue015")
    time.sleep(1.0)
    wait(d, ready_image)
    shot(d, out / "image.png")
    keys(d, "?")
    shot(d, out / "help.png")
    keys(d, "?")
    d.get(url + "#/queue")
    wait(d, lambda d: d.execute_script("return document.querySelectorAll('#queue tbody tr').length") > 0)
    shot(d, out / "queue.png")
    return sorted(p.name for p in out.glob("*.png"))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder (prompt_seg finished); it is copied")
    ap.add_argument("--images", type=int, default=30, help="images reviewed in the keyboard session")
    ap.add_argument("--repeat", type=int, default=5, help="page loads of the 40-image exam")
    ap.add_argument("--segmenter", default=None, help="live segmenter (default: the run's own)")
    ap.add_argument("--shots", type=Path, default=None, help="write screenshots of each screen here")
    ap.add_argument("--shots-exam", default=None, help="exam shown on the screenshots (default: the 40-image one)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from endoked.review.server import build_server

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / a.run.name
        shutil.copytree(a.run, root, ignore=shutil.ignore_patterns("*.pt", "features*", "review", ".lock"))
        run = RunFolder(root)
        add_big_exam(run)
        srv = build_server(root, reviewer="bench", segmenter=a.segmenter)
        with srv:
            d = make_driver(1280, 900)
            try:
                # warm the segmenter (its weights load on the first re-prompt) outside the timed session
                t0 = time.perf_counter()
                d.get(srv.url + "#/queue")
                wait(d, lambda d: d.execute_script("return document.querySelectorAll('#queue tbody tr').length") > 0)
                d.execute_script(
                    "const q = state.queue[0]; api('api/segment', {exam_id: q.exam_id, image: q.image,"
                    " box: q.boxes[0] || [0, 0, q.width / 2, q.height / 2]}).then(() => window.warm = 1);"
                )
                wait(d, lambda d: d.execute_script("return window.warm === 1"), timeout=600)
                warm = time.perf_counter() - t0
                load = exam_load(d, srv.url, a.repeat)
                per_image = keyboard_session(d, srv.url, a.images)
                shots = screenshots(d, srv.url, a.shots, a.shots_exam or BIG) if a.shots else []
            finally:
                d.quit()
    result = {
        "machine": cpu_model(),
        "command": "python " + " ".join(sys.argv),
        "segmenter": a.segmenter or "the run's prompt_seg.segmenter",
        "segmenter_first_load_s": round(warm, 2),
        "keyboard_s_per_image_median": round(statistics.median(per_image), 3),
        "keyboard_s_per_image": [round(t, 3) for t in per_image],
        "exam40_load_s_median": round(statistics.median(load), 3),
        "exam40_load_s": [round(t, 3) for t in load],
        "screenshots": shots,
    }
    print(json.dumps(result, indent=1))
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
