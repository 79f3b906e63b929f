"""Colonoscopy-like frame renderer (numpy + OpenCV, vectorised).

A frame is built in float32 RGB in [0, 1] from cheap layers: low-resolution illumination (lumen, haustral
folds, large-scale shading) computed on a quarter-size grid and upsampled once, random crops of
pre-computed texture banks (mucosal grain, branching vessels), small specular blobs, then lesions drawn in
their own bounding boxes, a colour/exposure/blur jitter and the endoscope's field-of-view mask.

Everything random comes from the ``numpy.random.Generator`` passed in, so a frame is a pure function of
(generator state, size, spec) and identical across processes. Texture banks depend only on ``(bank_seed,
size)`` and are cached per process.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

Array = np.ndarray

_BANK_TILES = 4


@dataclass(frozen=True)
class PolypSpec:
    """One polyp (or mass) to draw.

    Attributes:
        area_frac: target area as a fraction of the field-of-view area (e.g. 0.03-0.25).
        kind: ``"dome"``, ``"ellipse"``, ``"lobulated"``, ``"flat"`` or ``"mass"`` (a malignant-looking lesion
            that is not a polyp: it gets no truth mask).
    """

    area_frac: float
    kind: str = "dome"


@dataclass(frozen=True)
class FrameSpec:
    """What a frame shows besides normal mucosa.

    Attributes:
        polyps: polyps (and masses) to draw.
        diverticula: draw a few diverticular openings.
        colitis: inflamed mucosa (erythema, lost vessel pattern, granularity, exudate).
    """

    polyps: tuple[PolypSpec, ...] = field(default_factory=tuple)
    diverticula: bool = False
    colitis: bool = False


@dataclass(frozen=True)
class TextureBank:
    """Pre-computed textures, each ``(2S, 2S) float32``: zero-mean grain, vessel intensity in [0, 1], pits."""

    grain: tuple[Array, ...]
    vessels: tuple[Array, ...]
    pits: tuple[Array, ...]


# ----------------------------------------------------------------------------------------------- banks


def _norm(a: Array) -> Array:
    a = a - a.mean()
    return (a / (a.std() + 1e-6)).astype(np.float32)


def _grain(rng: np.random.Generator, n: int) -> Array:
    base = rng.standard_normal((n, n)).astype(np.float32)
    fine = cv2.GaussianBlur(base, (0, 0), 0.7)
    mid = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), 2.5)
    return _norm(0.6 * _norm(fine) + 0.4 * _norm(mid))


def _pits(rng: np.random.Generator, n: int, scale: float) -> Array:
    """Cell-like pit pattern: blurred noise folded around zero (bright walls, dark pits)."""
    a = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), scale)
    a = np.abs(_norm(a))
    return _norm(np.exp(-a * 1.6))


def _vessels(rng: np.random.Generator, n: int) -> Array:
    """Branching vessel tree drawn as polylines of decreasing width, ``(n, n) float32`` in [0, 1]."""
    canvas = np.zeros((n, n), np.uint8)
    stack: list[tuple[float, float, float, float, int]] = []
    for _ in range(rng.integers(7, 12)):
        stack.append(
            (
                float(rng.uniform(0, n)),
                float(rng.uniform(0, n)),
                float(rng.uniform(0, 2 * math.pi)),
                float(rng.uniform(2.0, 3.5)) * n / 512,
                0,
            )
        )
    while stack:
        x, y, ang, width, depth = stack.pop()
        pts = [(x, y)]
        steps = int(rng.integers(10, 30))
        step = n / 90
        for _ in range(steps):
            ang += float(rng.normal(0, 0.35))
            x += math.cos(ang) * step
            y += math.sin(ang) * step
            pts.append((x, y))
            if depth < 4 and rng.random() < 0.08:
                stack.append((x, y, ang + float(rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)), width * 0.65, depth + 1))
        thick = max(1, round(width))
        level = int(255 * max(0.35, 1.0 - 0.17 * depth))
        cv2.polylines(canvas, [np.round(np.array(pts) * 4).astype(np.int32)], False, level, thick, cv2.LINE_AA, shift=2)
    out = cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), 0.8 * n / 512 + 0.3)
    return np.clip(out * 1.3, 0, 1)


@functools.lru_cache(maxsize=4)
def texture_bank(bank_seed: int, size: int) -> TextureBank:
    """Texture bank for frames of ``size`` px, cached per process (pure function of its arguments)."""
    rng = np.random.default_rng([bank_seed, 977, size])
    n = 2 * size
    grain = tuple(_grain(rng, n) for _ in range(_BANK_TILES))
    vessels = tuple(_vessels(rng, n) for _ in range(_BANK_TILES))
    pits = tuple(_pits(rng, n, float(s) * size / 256) for s in (1.2, 1.8, 2.6, 1.5))
    return TextureBank(grain=grain, vessels=vessels, pits=pits)


def _crop(rng: np.random.Generator, tiles: tuple[Array, ...], size: int) -> Array:
    """A random ``(size, size)`` crop of a random tile, randomly flipped (contiguous float32 copy)."""
    tile = tiles[int(rng.integers(len(tiles)))]
    y, x = (int(v) for v in rng.integers(0, tile.shape[0] - size + 1, size=2))
    flip = int(rng.integers(-1, 3))
    out = tile[y : y + size, x : x + size]
    return cv2.flip(out, flip) if flip < 2 else np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------- geometry


@functools.lru_cache(maxsize=8)
def _grid(n: int) -> tuple[Array, Array]:
    """Normalised pixel-centre coordinates in [-1, 1], each ``(n, n) float32``."""
    c = (np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1
    return np.broadcast_to(c[None, :], (n, n)), np.broadcast_to(c[:, None], (n, n))


@functools.lru_cache(maxsize=16)
def fov_mask(size: int, shape: str, radius: float) -> Array:
    """Field-of-view mask, ``(size, size) float32`` in [0, 1] (soft 1 px edge); ``shape`` circle|octagon."""
    xx, yy = _grid(size)
    if shape == "circle":
        d = np.sqrt(xx * xx + yy * yy)
    else:
        ax, ay = np.abs(xx), np.abs(yy)
        d = np.maximum(np.maximum(ax, ay), (ax + ay) / 1.35)
    edge = 2.0 / size
    return np.clip((radius - d) / edge + 0.5, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------- mucosa


def _illumination(rng: np.random.Generator, size: int) -> tuple[Array, tuple[float, float, float]]:
    """Low-frequency brightness: lumen, haustral folds, large-scale shading, vignetting.

    Computed on a quarter-size grid and upsampled once. Returns ``(S, S) float32`` (about 0-1.3) and the
    lumen ``(x, y, radius)`` in normalised coordinates ([-1, 1] spans the frame).
    """
    n = max(16, size // 4)
    xx, yy = _grid(n)
    if rng.random() < 0.8:
        lx, ly = (float(v) for v in rng.uniform(-0.7, 0.7, size=2))
    else:  # looking at the wall: the lumen is off-screen
        ang = float(rng.uniform(0, 2 * math.pi))
        lx, ly = 1.35 * math.cos(ang), 1.35 * math.sin(ang)
    rl = float(rng.uniform(0.12, 0.3))
    stretch = float(rng.uniform(0.75, 1.3))
    dx, dy = (xx - lx) * stretch, (yy - ly) / stretch
    d = np.sqrt(dx * dx + dy * dy)
    z = (dx + 1j * dy).astype(np.complex64) / np.maximum(d, 1e-6)  # unit vector: exp(i * theta)
    low = cv2.resize(rng.standard_normal((4, 4)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    # haustral folds: rings at even steps of log-distance (perspective), broken into partial arcs
    n_folds = float(rng.uniform(2.5, 5.0))
    phase = np.log1p(d / rl) * (n_folds / math.log1p(2.8 / rl)) + 0.25 * low
    z2 = z * z
    phase += float(rng.uniform(0.04, 0.12)) * _cos_k(z2 * z, float(rng.uniform(0, 6.3)))
    p = phase - np.floor(phase)
    arcs = np.clip(
        0.55 + 0.6 * _cos_k(z, float(rng.uniform(0, 6.3))) + 0.3 * _cos_k(z2, float(rng.uniform(0, 6.3))), 0, 1
    )
    fold_amp = float(rng.uniform(0.2, 0.45)) * arcs * np.clip(d / rl - 0.8, 0, 1)
    crease = np.exp(-(((p - 0.12) / 0.13) ** 2)) + np.exp(-(((p - 1.12) / 0.13) ** 2))
    folds = fold_amp * (0.55 * p**2 - 0.7 * crease)
    lumen = np.exp(-((d / rl) ** 2) * 1.5)
    tunnel = 1.0 - float(rng.uniform(0.35, 0.65)) * np.exp(-((d / (rl * 3.5)) ** 2))
    illum = (0.92 + 0.1 * low + folds) * tunnel * (1.0 - 0.97 * lumen)
    illum *= 1.0 - float(rng.uniform(0.1, 0.35)) * (xx * xx + yy * yy) ** 1.5
    illum = np.clip(illum, 0.015, 1.4) ** float(rng.uniform(0.8, 1.2))  # exposure curve
    illum = illum.astype(np.float32)
    return cv2.resize(illum, (size, size), interpolation=cv2.INTER_LINEAR), (lx, ly, rl)


def _cos_k(zk: Array, phi: float) -> Array:
    """``cos(k * theta + phi)`` from ``zk = exp(i * k * theta)`` (complex64), as float32."""
    return (zk.real * math.cos(phi) - zk.imag * math.sin(phi)).astype(np.float32)


def _mucosa_colour(rng: np.random.Generator) -> Array:
    """Base RGB of lit mucosa, pink to orange, including the frame's white balance, ``(3,) float32``."""
    t = float(rng.uniform(0, 1))
    pink = np.array([0.90, 0.50, 0.47])
    orange = np.array([0.93, 0.58, 0.40])
    c = (1 - t) * pink + t * orange
    c *= rng.uniform(0.95, 1.05, 3) * float(rng.uniform(0.88, 1.08))
    return np.clip(c, 0.1, 1.0).astype(np.float32)


def _blend_blob(
    img: Array, x: float, y: float, ax: float, ay: float, angle: float, colour: Array, strength: float, soft: float
) -> None:
    """Blend a soft ellipse of ``colour`` into ``img: (S, S, 3) float32`` in place (local patch only)."""
    size = img.shape[0]
    half = int(max(ax, ay) + 3 * soft + 2)
    x0, y0 = max(0, int(x) - half), max(0, int(y) - half)
    x1, y1 = min(size, int(x) + half + 1), min(size, int(y) + half + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.ellipse(patch, ((x - x0, y - y0), (2 * ax, 2 * ay), angle), 255, -1, cv2.LINE_AA)
    if soft > 0.3:
        patch = cv2.GaussianBlur(patch, (0, 0), soft)
    a = patch.astype(np.float32)[..., None] * (strength / 255.0)
    sub = img[y0:y1, x0:x1]
    sub += a * (colour - sub)


def _highlights(rng: np.random.Generator, illum: Array, count: int, scale: float) -> Array:
    """Specular reflections: small saturated blobs, preferring bright (near, crest) mucosa.

    Returns:
        ``(S, S, 3) uint8`` layer to add (saturating) to the frame.
    """
    size = illum.shape[0]
    cand = rng.uniform(0.04, 0.96, size=(count * 4, 2)) * size
    weight = illum[cand[:, 1].astype(int), cand[:, 0].astype(int)].astype(np.float64) ** 4 + 1e-6
    pick = np.argsort(-weight * rng.random(len(cand)))[:count]
    layer = np.zeros((size, size), np.uint8)
    for x, y in cand[pick]:
        ax = max(0.8, float(rng.gamma(2.0, 1.0)) * scale * size / 256)
        ay = max(0.7, ax * float(rng.uniform(0.25, 1.0)))
        cv2.ellipse(
            layer,
            ((float(x), float(y)), (2 * ax, 2 * ay), float(rng.uniform(0, 180))),
            int(rng.integers(200, 256)),
            -1,
            cv2.LINE_AA,
        )
    soft = cv2.GaussianBlur(layer, (0, 0), 0.35 * size / 256 + 0.2)
    return np.asarray(cv2.merge([soft, soft, soft]))


# ------------------------------------------------------------------------------------------ lesions


_LOBES = {"dome": 0.05, "ellipse": 0.04, "lobulated": 0.15, "flat": 0.09, "mass": 0.2}


def _draw_lesion(
    rng: np.random.Generator,
    img: Array,
    illum: Array,
    bank: TextureBank,
    spec: PolypSpec,
    centre: tuple[float, float],
    radius: float,
    mucosa: Array,
) -> Array:
    """Draw one lesion into ``img: (S, S, 3) float32`` in place and return its boolean mask ``(S, S)``."""
    size = img.shape[0]
    cx, cy = centre
    lobes = _LOBES[spec.kind]
    aspect = float(rng.uniform(0.55, 0.8)) if spec.kind in ("ellipse", "flat") else float(rng.uniform(0.8, 1.0))
    rot = float(rng.uniform(0, math.pi))
    half = math.ceil(radius * (1.0 + 3 * lobes) + 4)
    x0, x1 = max(0, int(cx) - half), min(size, int(cx) + half + 1)
    y0, y1 = max(0, int(cy) - half), min(size, int(cy) + half + 1)
    mask = np.zeros((size, size), bool)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return mask
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    u = (dx * math.cos(rot) + dy * math.sin(rot)) * (1.0 / radius)
    v = (dy * math.cos(rot) - dx * math.sin(rot)) * (1.0 / (radius * aspect))
    rho = np.sqrt(u * u + v * v)
    z = (u + 1j * v).astype(np.complex64) / np.maximum(rho, 1e-6)
    rfun = np.ones_like(rho)
    zk = z
    for k in range(2, 12):
        zk = zk * z
        if k in ((2, 3, 4, 5) if spec.kind != "mass" else (3, 5, 8, 11)):
            rfun += float(rng.uniform(0, lobes)) * (4 / (k + 2)) * _cos_k(zk, float(rng.uniform(0, 6.3)))
    s = rho / np.maximum(rfun, 0.3)
    inside = s < 1.0
    if not inside.any():
        return mask
    pits = _crop(rng, bank.pits, size)[y0:y1, x0:x1]

    # height field (units of radius) and its shading under a light close to the camera
    height = {"flat": float(rng.uniform(0.08, 0.2)), "mass": float(rng.uniform(0.4, 0.7))}.get(
        spec.kind, float(rng.uniform(0.45, 0.9))
    )
    h = np.sqrt(np.clip(1.0 - s * s, 0, 1)) ** (0.5 if spec.kind == "flat" else 1.0)
    if spec.kind == "lobulated":
        h = h * (1.0 + 0.035 * pits)
    hh = (h * (height * radius)).astype(np.float32)
    gx = cv2.Sobel(hh, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(hh, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    lx, ly = (float(v) for v in rng.normal(0, 0.35, 2))
    lnorm = math.sqrt(lx * lx + ly * ly + 1)
    inv = 1.0 / np.sqrt(1.0 + gx * gx + gy * gy)
    ndotl = np.clip((-gx * lx - gy * ly + 1.0) * inv / lnorm, 0, 1)
    hx, hy, hz = lx / lnorm, ly / lnorm, 1 / lnorm + 1
    hn = math.sqrt(hx * hx + hy * hy + hz * hz)
    ndoth = np.clip((-gx * hx - gy * hy + hz) * inv / hn, 0, 1)

    if spec.kind == "mass":
        tint = np.array([0.95, 0.6, 0.72], np.float32) * float(rng.uniform(0.8, 0.95))
    else:
        mode = float(rng.random())
        if mode < 0.55:  # redder
            tint = np.array([1.06, rng.uniform(0.72, 0.86), rng.uniform(0.75, 0.9)], np.float32)
        elif mode < 0.8:  # paler
            tint = np.array([1.04, rng.uniform(1.04, 1.14), rng.uniform(1.04, 1.16)], np.float32)
        else:  # similar hue, different surface
            tint = np.array([1.04, rng.uniform(0.92, 1.0), rng.uniform(0.9, 0.98)], np.float32)
    w = np.clip(h * 3.0, 0, 1)[..., None]
    colour = mucosa * (1.0 + (tint - 1.0) * w)
    tex = 1.0 + float(rng.uniform(0.02, 0.07)) * pits[..., None]
    light = np.maximum(illum[y0:y1, x0:x1], 0.3)[..., None]
    lesion = colour * tex * (0.45 + 0.65 * ndotl[..., None]) * light
    if spec.kind == "mass":  # ulcerated centre with fibrin and a heaped-up rim
        ulcer = np.clip((0.45 - s + 0.12 * pits) / 0.1, 0, 1)[..., None]
        fibrin = np.array([0.86, 0.74, 0.52], np.float32) * float(rng.uniform(0.7, 0.95))
        lesion = lesion * (1 - ulcer) + ulcer * fibrin * light * (1 + 0.06 * pits[..., None])
    shininess = float(rng.uniform(60, 250))
    wet = np.clip(pits * 0.4 + 0.85, 0, 1)
    spec_hl = (cv2.pow(ndoth.astype(np.float32), shininess) * wet * float(rng.uniform(0.5, 1.0)))[..., None]
    lesion = lesion + spec_hl * (1.35 - lesion)
    alpha = np.clip((1.0 - s) * radius / 1.0 + 0.5, 0, 1)[..., None]
    patch = img[y0:y1, x0:x1]
    shadow = 1.0 - float(rng.uniform(0.05, 0.2)) * np.exp(-(((s - 1.0) / 0.12) ** 2))[..., None]
    patch *= shadow
    patch += alpha * (lesion - patch)
    mask[y0:y1, x0:x1] = inside
    return mask


def _place(
    rng: np.random.Generator,
    size: int,
    fov_r: float,
    radius_px: float,
    lumen: tuple[float, float, float],
    taken: list[tuple[float, float, float]],
) -> tuple[float, float]:
    """Choose a lesion centre (pixels) inside the field, mostly away from the border, off the lumen."""
    half = size / 2
    lx, ly = (lumen[0] + 1) * half, (lumen[1] + 1) * half
    x, y = half, half
    for _ in range(25):
        frac = math.sqrt(rng.uniform(0, 0.5)) if rng.random() < 0.85 else float(rng.uniform(0.7, 0.85))
        r = fov_r * half * frac
        ang = float(rng.uniform(0, 2 * math.pi))
        x, y = half + r * math.cos(ang), half + r * math.sin(ang)
        if math.hypot(x - lx, y - ly) < lumen[2] * half * 1.5 + radius_px * 0.5:
            continue
        if any(math.hypot(x - tx, y - ty) < radius_px + tr for tx, ty, tr in taken):
            continue
        break
    return x, y


def _diverticulum(rng: np.random.Generator, lum: Array, x: float, y: float, r: float) -> None:
    """Darken ``lum: (S, S) float32`` in place with a round diverticular opening."""
    size = lum.shape[0]
    half = int(r * 2.5 + 2)
    x0, y0 = max(0, int(x) - half), max(0, int(y) - half)
    x1, y1 = min(size, int(x) + half + 1), min(size, int(y) + half + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.ellipse(
        patch,
        ((x - x0, y - y0), (2 * r, 2 * r * float(rng.uniform(0.6, 1.0))), float(rng.uniform(0, 180))),
        255,
        -1,
        cv2.LINE_AA,
    )
    hole = cv2.GaussianBlur(patch, (0, 0), max(0.5, r * 0.3)).astype(np.float32) / 255.0
    lum[y0:y1, x0:x1] *= 1.0 - 0.85 * hole


# ---------------------------------------------------------------------------------------------- frame


@functools.lru_cache(maxsize=64)
def _fov_u8(size: int, shape: str, radius: float) -> Array:
    return np.repeat((fov_mask(size, shape, radius) * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


def render_frame(rng: np.random.Generator, size: int, spec: FrameSpec, bank: TextureBank) -> tuple[Array, Array]:
    """Render one frame.

    Args:
        rng: source of all randomness for this frame.
        size: output side in pixels (square frames).
        spec: lesions and findings to show.
        bank: texture bank for ``size`` (see :func:`texture_bank`).

    Returns:
        ``(image, mask)``: image ``(S, S, 3) uint8 RGB``; mask ``(S, S) uint8`` 0/255, the union of the polyps
        (masses excluded), clipped to the field of view.
    """
    fov_shape = "circle" if rng.random() < 0.6 else "octagon"
    fov_r = round(float(rng.uniform(0.92, 1.02) if fov_shape == "circle" else rng.uniform(0.96, 1.06)), 2)
    illum, lumen = _illumination(rng, size)
    mucosa = _mucosa_colour(rng)
    grain = _crop(rng, bank.grain, size)
    vessels = _crop(rng, bank.vessels, size)

    vessel_strength = float(rng.uniform(0.3, 0.75))
    grain_amp = float(rng.uniform(0.025, 0.05))
    if spec.colitis:
        vessel_strength *= 0.1
        grain_amp *= 2.5
    lum = cv2.addWeighted(illum, 1.0, cv2.multiply(illum, grain), grain_amp, 0.0)
    red = vessels * np.float32(vessel_strength)  # single-channel "redness": vessels (+ erythema)
    if spec.colitis:
        patches = cv2.resize(rng.random((6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        red = np.asarray(cv2.addWeighted(red, 1.0, np.clip(patches, 0, 1), float(rng.uniform(0.2, 0.45)), 0.15))
    taken: list[tuple[float, float, float]] = []
    fov_r_px = fov_r * size / 2
    if spec.diverticula:
        for _ in range(int(rng.integers(1, 4))):
            r = float(rng.uniform(0.025, 0.06)) * fov_r_px * 2
            x, y = _place(rng, size, fov_r, r, lumen, taken)
            taken.append((x, y, r))
            _diverticulum(rng, lum, x, y, r)
    lum_red = cv2.multiply(lum, red)
    tint = np.array([0.2, 0.55, 0.45], np.float32)
    img = cv2.merge(
        [cv2.addWeighted(lum, float(m), lum_red, -float(m * t), 0.0) for m, t in zip(mucosa, tint, strict=True)]
    )
    if spec.colitis:
        exudate = np.array([0.9, 0.82, 0.6], np.float32)
        for _ in range(int(rng.integers(6, 25))):
            x, y = rng.uniform(0.1, 0.9, 2) * size
            ax = float(rng.uniform(0.6, 2.2)) * size / 256
            _blend_blob(
                img,
                float(x),
                float(y),
                ax,
                ax * float(rng.uniform(0.5, 1)),
                0.0,
                exudate * illum[int(y), int(x)],
                0.8,
                0.5,
            )

    mask = np.zeros((size, size), bool)
    for pspec in spec.polyps:
        radius = math.sqrt(pspec.area_frac) * fov_r_px
        centre = _place(rng, size, fov_r, radius, lumen, taken)
        taken.append((centre[0], centre[1], radius))
        lesion_mask = _draw_lesion(rng, img, illum, bank, pspec, centre, radius, mucosa)
        if pspec.kind != "mass":
            mask |= lesion_mask
    # camera: highlights saturate, blur, field of view
    out = cv2.convertScaleAbs(img, alpha=255.0)
    out = cv2.add(out, _highlights(rng, illum, int(rng.integers(3, 14)), float(rng.uniform(0.7, 1.6))))
    blur = float(rng.random())
    if blur < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.6)) * size / 256)
    elif blur < 0.35:
        k = max(3, int(rng.integers(3, 9) * size / 256) | 1)
        line = np.zeros((k, k), np.float32)
        line[k // 2, :] = 1.0
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kern = np.asarray(cv2.warpAffine(line, rot, (k, k)))
        out = cv2.filter2D(out, -1, (kern / max(float(kern.sum()), 1e-6)).astype(np.float32))
    fov = _fov_u8(size, fov_shape, fov_r)
    out = cv2.multiply(out, fov, scale=1.0 / 255.0)
    mask &= fov[..., 0] > 127
    return out, mask.astype(np.uint8) * 255


def encode_jpeg(image: Array, quality: int) -> bytes:
    """Encode ``image: (H, W, 3) uint8 RGB`` as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()
