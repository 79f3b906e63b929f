"""Image validation: existence, size, format, full decode, dimensions and content hash.

:func:`check_image` runs in worker processes, so it takes and returns plain picklable values.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from endoked.imaging import upright_size
from endoked.safe_read import UnsafeFileError, display_name, read_regular_file

DEFAULT_MAX_IMAGE_BYTES = 256_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".jp2"})


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of checking one image file. ``code`` is None when the image is valid."""

    path: str
    code: str | None = None
    message: str = ""
    width: int = 0
    height: int = 0
    format: str = ""
    sha256: str = ""
    bytes: int = 0


def check_image(
    path: str, allowed_formats: tuple[str, ...], decode: bool, min_side: int, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> ImageCheck:
    """Validate one image file.

    Args:
        path: absolute file path.
        allowed_formats: Pillow format names accepted (e.g. ``("JPEG", "PNG")``).
        decode: fully decode the pixels (finds truncated files) instead of reading the header only.
        min_side: minimum width and height in pixels.
        max_bytes: larger files are refused unread (``file_too_large``).

    Returns:
        An :class:`ImageCheck`; on failure ``code`` is a reason code of :mod:`endoked.ingest.reasons`.
    """
    p = Path(path)
    try:
        data = read_regular_file(path, max_bytes=max_bytes, what="image file")
    except UnsafeFileError as exc:
        code = "bad_image_entry" if exc.code == "bad_path" else exc.code
        return ImageCheck(display_name(path), code, str(exc))
    if not data:
        return ImageCheck(path, "empty_file", f"zero-byte file: {path}")
    digest = hashlib.sha256(data).hexdigest()
    looks_like_image = p.suffix.lower() in IMAGE_SUFFIXES
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or ""
            if fmt not in allowed_formats:
                return ImageCheck(
                    path,
                    "unsupported_format",
                    f"format {fmt or 'unknown'} of {path} is not one of {', '.join(allowed_formats)}",
                    sha256=digest,
                    bytes=len(data),
                )
            width, height = upright_size(img)
            if decode:
                img.load()
    except UnidentifiedImageError:
        if looks_like_image:
            return ImageCheck(
                path, "corrupt_image", f"{path}: not a decodable image (damaged header)", sha256=digest, bytes=len(data)
            )
        return ImageCheck(
            path, "unsupported_format", f"{path}: not an image file Pillow recognises", sha256=digest, bytes=len(data)
        )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        return ImageCheck(path, "corrupt_image", f"{path}: cannot decode ({exc})", sha256=digest, bytes=len(data))
    if min(width, height) < min_side:
        return ImageCheck(
            path,
            "too_small",
            f"{path}: {width}x{height} is below the minimum side {min_side}",
            width=width,
            height=height,
            format=fmt,
            sha256=digest,
            bytes=len(data),
        )
    return ImageCheck(path, None, "", width=width, height=height, format=fmt, sha256=digest, bytes=len(data))
