"""The review web app (FastAPI): JSON and PNG routes over :class:`~endoked.review.data.ReviewData`, one static page.

Routes (all need the session token, see :mod:`endoked.review.security`):

- ``GET /`` the page; ``GET /static/app.js|app.css`` its script and style.
- ``GET /api/session`` run name, reviewer, segmenter; ``GET /api/exams`` the exam list; ``GET /api/exam?exam_id=``
  one exam; ``GET /api/queue`` unreviewed images, least certain first.
- ``GET /api/frame?exam_id=&image=&layer=`` the image (``layer=image``) or an RGBA overlay (``cam``, ``mask``,
  ``pred``, ``reviewed``); ``GET /files/<path>`` a file of the run folder.
- ``POST /api/decision`` accept / reject / fix (a fix carries the new mask as a base64 PNG); ``POST /api/label``
  a corrected report field; ``POST /api/segment`` a mask from the run's prompted segmenter for a box.

fastapi is imported inside :func:`create_app`, so the package imports without the ``review`` extra.
"""

import base64
import binascii
import logging
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from endoked import reviewed
from endoked.review import security
from endoked.review.data import LiveSegmenter, ReviewData

logger = logging.getLogger(__name__)

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


class Decision(BaseModel):
    """Body of ``POST /api/decision``."""

    exam_id: str
    image: str
    action: str = Field(pattern="^(accept|reject|fix)$")
    reviewer: str = Field(min_length=1, max_length=100)
    mask_png: str | None = Field(None, description="base64 PNG of the image's size (fix only)")


class LabelFix(BaseModel):
    """Body of ``POST /api/label``."""

    exam_id: str
    field: str
    value: str | int | None
    reviewer: str = Field(min_length=1, max_length=100)


class SegmentRequest(BaseModel):
    """Body of ``POST /api/segment``: a box in image pixels, ``x0, y0, x1, y1``."""

    exam_id: str
    image: str
    box: list[float] = Field(min_length=4, max_length=4)


def _static(name: str) -> bytes:
    return resources.files("endoked.review").joinpath("static", name).read_bytes()


def create_app(
    run_root: Path,
    token: str,
    *,
    reviewer: str = "reviewer",
    segmenter: Any = None,
    segmenter_name: str = "none",
) -> Any:
    """The FastAPI app serving one run folder.

    Args:
        run_root: the run folder.
        token: the session token every request must carry.
        reviewer: the default reviewer name the page starts with.
        segmenter: a function that builds the prompted segmenter (called once, on the first re-prompt), or None
            when live re-prompting is off.
        segmenter_name: its name, shown on the page.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from endoked.runfolder import RunFolder

    root = Path(run_root).resolve()
    data = ReviewData.read(RunFolder(root))
    live = LiveSegmenter(segmenter) if segmenter is not None else None
    app = FastAPI(title="endoked review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        port = request.url.port or 0
        denied = security.request_allowed(
            request.method,
            request.query_params.get("token"),
            request.headers.get(security.TOKEN_HEADER),
            request.cookies.get(security.cookie_name(port)),
            {k.lower(): v for k, v in request.headers.items()},
            token,
        )
        response = JSONResponse({"error": denied[1]}, status_code=denied[0]) if denied else await call_next(request)
        for k, v in security.HEADERS.items():
            response.headers.setdefault(k, v)
        if not denied and security.token_ok(request.query_params.get("token"), token):
            response.set_cookie(security.cookie_name(port), token, httponly=True, samesite="strict", path="/")
        return response

    _add_read_routes(app, root, data, live, reviewer, segmenter_name)
    _add_write_routes(app, root, data, live)
    return app


def _key_of(data: ReviewData, exam_id: str, image: str) -> tuple[str, str]:
    """The image key, or 404 when the run has no such image."""
    from fastapi import HTTPException

    k = (exam_id, image)
    if k not in data.images:
        raise HTTPException(404, "no such image in this run")
    return k


def _add_read_routes(app: Any, root: Path, data: ReviewData, live: Any, reviewer: str, segmenter_name: str) -> None:
    """The page, its static files, the JSON views, frames and overlays, and files of the run folder."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse, Response

    from endoked.imaging import encode_png

    def key_of(exam_id: str, image: str) -> tuple[str, str]:
        return _key_of(data, exam_id, image)

    @app.get("/")
    def index() -> Response:
        return Response(_static("index.html"), media_type="text/html; charset=utf-8")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        return Response(_static(name), media_type=f"{STATIC[name]}; charset=utf-8")

    @app.get("/api/session")
    def session() -> dict[str, Any]:
        return {
            "run": root.name,
            "reviewer": reviewer,
            "segmenter": segmenter_name if live else None,
            "label_fields": {k: list(v) if v else None for k, v in reviewed.LABEL_FIELDS.items()},
        }

    @app.get("/api/exams")
    def exams() -> list[dict[str, Any]]:
        return data.exam_list()

    @app.get("/api/exam")
    def exam(exam_id: str) -> dict[str, Any]:
        if exam_id not in data.exams and exam_id not in data.frames:
            raise HTTPException(404, "no such exam in this run")
        return data.exam_detail(exam_id)

    @app.get("/api/queue")
    def queue(limit: int = 500) -> list[dict[str, Any]]:
        return data.queue(max(1, min(limit, 5000)))

    @app.get("/api/frame")
    def frame(exam_id: str, image: str, layer: str = "image") -> Response:
        k = key_of(exam_id, image)
        if layer == "image":
            path = data.image_path(k)
            fmt = str(data.images[k].get("format") or "").upper()
            if fmt in IMAGE_TYPES and path.is_file():
                cache = {"Cache-Control": "private, max-age=600"}
                return FileResponse(path, media_type=IMAGE_TYPES[fmt], headers=cache)
            from endoked.imaging import read_rgb

            return Response(encode_png(read_rgb(path)), media_type="image/png")
        try:
            png = data.layer_png(k, layer)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        if png is None:
            raise HTTPException(404, f"no {layer} layer for this image")
        return Response(png, media_type="image/png")

    @app.get("/files/{rel:path}")
    def files(rel: str) -> Response:
        path = security.run_file(root, rel)
        if path is None:
            raise HTTPException(404, "not a file of this run folder")
        return FileResponse(path)


def _add_write_routes(app: Any, root: Path, data: ReviewData, live: Any) -> None:
    """Decisions, report-label corrections (both exported to the contract table after each write) and live
    re-prompting."""
    from fastapi import HTTPException

    from endoked.imaging import encode_png

    export_lock = threading.Lock()

    def key_of(exam_id: str, image: str) -> tuple[str, str]:
        return _key_of(data, exam_id, image)

    def export() -> None:
        with export_lock:
            reviewed.export_table(root)

    @app.post("/api/decision")
    def decision(body: Decision) -> dict[str, Any]:
        k = key_of(body.exam_id, body.image)
        previous = reviewed.latest_image_decisions(root).get(k)
        before = data.current_mask_rel(k, previous)
        after = None
        if body.action == "fix":
            if not body.mask_png:
                raise HTTPException(400, "a fix needs mask_png")
            try:
                raw = base64.b64decode(body.mask_png.split(",", 1)[-1], validate=True)
                after = data.save_fix(k, raw)
            except (ValueError, binascii.Error) as exc:
                raise HTTPException(400, str(exc)) from exc
        ident = reviewed.record(
            root,
            exam_id=k[0],
            image=k[1],
            action=body.action,
            reviewer=body.reviewer,
            mask_before=before,
            mask_after=after,
        )
        export()
        return {"id": ident, "action": body.action, "mask_after": after}

    @app.post("/api/label")
    def label(body: LabelFix) -> dict[str, Any]:
        if body.exam_id not in data.exams and body.exam_id not in data.frames:
            raise HTTPException(404, "no such exam in this run")
        value: Any = body.value
        if body.field == "polyp_count" and isinstance(value, str):
            value = int(value) if value.isdigit() else None if value in ("", "null") else value
        try:
            reviewed.check_label_value(body.field, value)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        ident = reviewed.record(
            root, exam_id=body.exam_id, image="", action="label", reviewer=body.reviewer, field=body.field, value=value
        )
        export()
        return {"id": ident, "field": body.field, "value": value}

    @app.post("/api/segment")
    def segment(body: SegmentRequest) -> dict[str, Any]:
        if live is None:
            raise HTTPException(409, "live re-prompting is off (endoked review --segmenter NAME)")
        k = key_of(body.exam_id, body.image)
        w, h = int(data.images[k].get("width") or 0), int(data.images[k].get("height") or 0)
        x0, y0, x1, y1 = body.box
        x0, x1 = sorted((min(max(x0, 0.0), w), min(max(x1, 0.0), w)))
        y0, y1 = sorted((min(max(y0, 0.0), h), min(max(y1, 0.0), h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise HTTPException(400, "the box is too small")
        mask = live.segment(data, k, [x0, y0, x1, y1])
        png = encode_png(data_mask_rgba(mask))
        return {"mask_png": base64.b64encode(png).decode(), "box": [x0, y0, x1, y1], "area": int(mask.sum())}


def data_mask_rgba(mask: Any) -> Any:
    """A segmenter mask as the page's editable layer: the reviewer colour where set, transparent elsewhere."""
    from endoked.review.data import LAYER_COLOURS, mask_rgba

    return mask_rgba(mask, LAYER_COLOURS["reviewed"])
