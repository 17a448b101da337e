"""(sketch, photo) training pairs from real face photos, in the frame the app gives a model at run time.

A sketch → face model learns from a photo and a drawing of it. The drawing is made here from the photo, in one of
several styles so that a witness's line drawing works as well as paper 2's shaded sketch:

* ``"computed"`` — paper 2's colour-dodge pencil sketch (:func:`sketchface.data.sketch.photo_to_sketch`), with the
  blur's sigma varied around the paper's value when augmenting;
* ``"threshold"`` — that sketch thresholded into solid ink (a marker drawing);
* ``"xdog"`` — eXtended Difference of Gaussians line art (Winnemöller et al. 2012): inked contours and hatching;
* ``"edges"`` — thin contours (Canny edges of the smoothed photo) drawn with a pen of random width;
* ``"hand"`` — the photo's longer contours traced as strokes and drawn by hand (:func:`hand_sketch`: wobble, pen
  pressure, gaps, overshoots, as the project's hand-drawn procedural sketches): closest to what a witness draws
  on the canvas.

Every style keeps only the head (the face detector's ellipse, as ``photo_to_sketch`` does). The sketch is then
normalised exactly as the app normalises an upload (:func:`sketchface.data.sketch.normalize_sketch_with_box`:
cropped to the drawn content, padded square, 256 px, then resized to the model's size), and the photo is cut with
the same square (:func:`crop_square`), so training and run time see the same framing.

>>> pairs = SketchPhotoPairs("../shared/data/celeba-mini", split="train", size=64)   # doctest: +SKIP
>>> item = pairs[0]   # {"sketch": (1, 64, 64), "image": (3, 64, 64), "labels": (40,), "style": ()}

CelebA is licensed for non-commercial research only: pairs made from it are for training and evaluation, never
for redistribution.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..attributes import INDEX
from .sketch import SketchError, estimate_foreground, normalize_sketch_with_box, photo_to_sketch

__all__ = [
    "augment_pairs",
    "eval_pairs",
    "pair_pool",
    "AUGMENTS",
    "AUGMENT_WORDS",
    "EVAL_STYLES",
    "EVAL_WORDS",
    "STYLES",
    "augment_batch",
    "SketchPhotoPairs",
    "crop_square",
    "edge_sketch",
    "hand_sketch",
    "make_pair",
    "make_sketch",
    "xdog_sketch",
]

#: Sketch styles, in the order of the ``"style"`` ids a dataset item carries.
STYLES: tuple[str, ...] = ("computed", "threshold", "xdog", "edges", "hand")
#: How often each style is drawn when augmenting (line art is over half: users draw lines, not shading).
STYLE_WEIGHTS: tuple[float, ...] = (0.4, 0.1, 0.15, 0.2, 0.15)
#: The fixed styles of the held-out evaluation: paper 2's sketch and three kinds of line art.
EVAL_STYLES: tuple[str, ...] = ("computed", "edges", "xdog", "hand")
#: The attributes a witness is taken to state (from the person's true labels) in the held-out check of sketch + words:
#: sex, age, hair colour and kind, skin, glasses, headwear, facial hair, make-up.
EVAL_WORDS: tuple[str, ...] = (
    "Male",
    "Young",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Bald",
    "Wavy_Hair",
    "Straight_Hair",
    "Pale_Skin",
    "Eyeglasses",
    "Wearing_Hat",
    "Mustache",
    "No_Beard",
    "Heavy_Makeup",
)


def witness_labels(labels):
    """Labels (N, 40) (numpy or torch, ±1 or 0/1) → the same with only :data:`EVAL_WORDS` kept, the rest 0
    (unknown): what a witness states."""
    ids = [INDEX[a] for a in EVAL_WORDS]
    said = labels * 0
    said[..., ids] = labels[..., ids]
    return said


#: The normalised sketch's side before it is resized to the model's: what the app's normaliser produces.
NORMALIZED_SIZE = 256


# ------------------------------------------------------------------------------------------------------------------
# line art


def xdog_sketch(
    gray: np.ndarray, sigma: float = 1.0, p: float = 30.0, eps: float = 0.25, phi: float = 10.0
) -> np.ndarray:
    """XDoG line art of a (H, W) uint8 gray image: (H, W) uint8, dark ink on white.

    The sharpened image ``(1 + p)·G_σ − p·G_1.6σ`` is soft-thresholded at ``eps`` (values in [0, 1]); larger ``p``
    and smaller ``eps`` give thinner, fewer lines.
    """
    g = gray.astype(np.float32) / 255.0
    a = cv2.GaussianBlur(g, (0, 0), sigma)
    b = cv2.GaussianBlur(g, (0, 0), sigma * 1.6)
    s = (1.0 + p) * a - p * b
    out = np.where(s >= eps, 1.0, 1.0 + np.tanh(phi * (s - eps)))
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def edge_sketch(
    gray: np.ndarray, width: int = 2, blur: float = 1.5, foreground: np.ndarray | None = None
) -> np.ndarray:
    """Pen contours of a (H, W) uint8 gray image: Canny edges of the smoothed image, drawn ``width`` px wide.

    Thresholds follow the median gray level of the ``foreground`` (the head), so dark and bright faces give
    similar amounts of line.
    """
    g = cv2.GaussianBlur(gray, (0, 0), blur)
    med = float(np.median(g[foreground] if foreground is not None and foreground.any() else g))
    edges = cv2.Canny(g, 0.5 * med, 1.2 * med, L2gradient=True)
    if width > 1:
        edges = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    return 255 - edges


def _paths(ink: np.ndarray) -> list[np.ndarray]:
    """The lines of a (H, W) uint8 map of thin ink (> 0) as paths of (N, 2) float32 x, y points.

    OpenCV traces each connected line round its outside, so a branching line is walked along every branch and back;
    walking that trace and keeping only pixels not yet passed cuts it into runs, each a continuous path, that cover
    every pixel once (but for a lone pixel between two passed ones, which no stroke needs).
    """
    contours, _ = cv2.findContours((ink > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    seen = np.zeros(ink.shape, bool)
    out: list[np.ndarray] = []
    for contour in contours:
        run: list[tuple[int, int]] = []
        for x, y in contour[:, 0, :].tolist():
            if seen[y, x]:
                if len(run) > 1:
                    out.append(np.asarray(run, np.float32))
                run = []
            else:
                seen[y, x] = True
                run.append((x, y))
        if len(run) > 1:
            out.append(np.asarray(run, np.float32))
    return out


def hand_sketch(
    gray: np.ndarray,
    foreground: np.ndarray | None = None,
    *,
    blur: float = 2.0,
    min_length: float = 0.04,
    width: float = 0.006,
    seed: int = 0,
) -> np.ndarray:
    """A witness-like line drawing of a (H, W) uint8 gray photo: (H, W) uint8, dark ink on white.

    The photo's pen contours (:func:`edge_sketch`, pre-blurred by ``blur`` px) are traced as paths (split where
    lines branch); paths shorter than ``min_length`` × the longer side are dropped (a witness leaves out texture and
    specks); the rest are simplified and drawn as strokes of ``width`` × the side by
    :func:`sketchface.data.sketch.strokes_to_sketch` in its hand style (the drawing a little moved as a whole, each
    stroke wobbling, pen pressure, tapered ends, gaps, overshoots, some double strokes; ``seed`` picks them), as the
    procedural faces' hand-drawn sketches are.
    """
    from .procedural import Stroke
    from .sketch import strokes_to_sketch

    h, w = gray.shape
    ink = 255 - edge_sketch(gray, 1, blur, foreground)
    if foreground is not None:
        ink[~foreground] = 0
    side = float(max(h, w))
    dx, dy = (side - w) / 2, (side - h) / 2  # the drawing is made on a centred square canvas
    strokes = []
    for path in _paths(ink):
        if cv2.arcLength(path[:, None, :], False) < min_length * side:
            continue
        path = cv2.approxPolyDP(path[:, None, :], 0.004 * side, False)[:, 0, :]
        points = np.stack([(path[:, 0] + dx) / side, (path[:, 1] + dy) / side], 1).astype(np.float32)
        strokes.append(Stroke("line", points, False, width))
    drawing = np.asarray(strokes_to_sketch(strokes, int(side), seed=seed))
    y0, x0 = int(dy), int(dx)
    return np.ascontiguousarray(drawing[y0 : y0 + h, x0 : x0 + w])


# ------------------------------------------------------------------------------------------------------------------
# one pair


@dataclass(frozen=True)
class _Draw:
    """The random choices of one augmented drawing (``None`` fields: the style's fixed evaluation value)."""

    sigma_factor: float = 1.0  # computed / threshold: × paper 2's sigma
    threshold: int = 200  # threshold: gray level below which the sketch is ink
    xdog: tuple[float, float, float] = (1.0, 30.0, 0.25)  # sigma, p, eps
    width: int = 2  # edges: pen width in photo pixels
    blur: float = 1.5  # edges: pre-blur sigma
    hand: tuple[float, float, float] = (2.0, 0.04, 0.006)  # hand: pre-blur sigma, shortest path, stroke width
    seed: int = 0  # hand: the hand's randomness


def _random_draw(rng: np.random.Generator) -> _Draw:
    return _Draw(
        sigma_factor=float(math.exp(rng.uniform(math.log(0.5), math.log(2.0)))),
        threshold=int(rng.integers(170, 225)),
        xdog=(float(rng.uniform(0.8, 1.3)), float(rng.uniform(20, 45)), float(rng.uniform(0.15, 0.4))),
        width=int(rng.integers(1, 5)),
        blur=float(rng.uniform(1.0, 2.2)),
        hand=(float(rng.uniform(1.5, 2.5)), float(rng.uniform(0.02, 0.08)), float(rng.uniform(0.003, 0.01))),
        seed=int(rng.integers(2**31)),
    )


def make_sketch(
    rgb: np.ndarray, foreground: np.ndarray | None, style: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A drawing of a (H, W, 3) uint8 photo in ``style``: (H, W) uint8, white outside ``foreground``.

    ``rng`` None draws the style's fixed evaluation version; otherwise its parameters are drawn at random.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}; got {style!r}")
    draw = _Draw() if rng is None else _random_draw(rng)
    if style in ("computed", "threshold"):
        from .sketch import default_sigma

        sigma = None if rng is None else draw.sigma_factor * default_sigma(min(rgb.shape[:2]))
        mask = foreground if foreground is not None else np.ones(rgb.shape[:2], bool)
        out = np.asarray(photo_to_sketch(rgb, mask=mask, sigma=sigma))
        if style == "threshold":
            out = np.where(out < draw.threshold, 0, 255).astype(np.uint8)
        return out
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if style == "xdog":
        out = xdog_sketch(gray, *draw.xdog)
    elif style == "hand":
        blur, min_length, width = draw.hand
        out = hand_sketch(gray, foreground, blur=blur, min_length=min_length, width=width, seed=draw.seed)
    else:
        out = edge_sketch(gray, draw.width, draw.blur, foreground)
    if foreground is not None:
        out = out.copy()
        out[~foreground] = 255
    return out


def crop_square(rgb: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The square ``(x0, y0, side)`` of a (H, W, 3) uint8 photo at ``size``×``size`` (reflected past the edges)."""
    h, w = rgb.shape[:2]
    x0, y0, side = box
    left, top = int(math.floor(x0)), int(math.floor(y0))
    right, bottom = int(math.ceil(x0 + side)), int(math.ceil(y0 + side))
    pad = max(0, -left, -top, right - w, bottom - h)
    if pad:
        # Past the photo's edge nothing is known: extend the edge pixels and blur them heavily, an out-of-focus
        # background (a reflection would draw a mirrored second face beside the first).
        edge = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        soft = cv2.GaussianBlur(edge, (0, 0), max(2.0, 0.05 * side))
        soft[pad : pad + h, pad : pad + w] = rgb
        rgb = soft
        left, top, right, bottom = left + pad, top + pad, right + pad, bottom + pad
    crop = rgb[top:bottom, left:right]
    interp = cv2.INTER_AREA if crop.shape[0] >= size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)


def make_pair(
    rgb: np.ndarray,
    foreground: np.ndarray | None,
    style: str,
    size: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(sketch (S, S) uint8, photo (S, S, 3) uint8, style) in the app's frame: the drawing normalised as an upload
    is, the photo cut with the same square.

    A drawing with no lines (thin edges of a low-contrast face) falls back to paper 2's sketch; the style returned
    is the one drawn.
    """
    try:
        drawing = make_sketch(rgb, foreground, style, rng)
        normalised, box = normalize_sketch_with_box(drawing, size=NORMALIZED_SIZE)
    except SketchError:
        if style == "computed" and rng is None:
            raise
        style = "computed"
        normalised, box = normalize_sketch_with_box(make_sketch(rgb, foreground, style), size=NORMALIZED_SIZE)
    if size != NORMALIZED_SIZE:  # the pipelines resize the normalised sketch the same way
        normalised = normalised.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(normalised), crop_square(rgb, box, size), style


# ------------------------------------------------------------------------------------------------------------------
# dataset


def _image_files(root: Path) -> list[Path]:
    exts = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
    return sorted(p for p in root.iterdir() if p.suffix.lower() in exts)


class SketchPhotoPairs(Dataset):
    """(sketch, photo) pairs from a CelebA-layout folder (or any folder of face photos), ``variants`` per photo.

    Args:
        root: a CelebA-layout folder (``img_align_celeba/`` + ``list_attr_celeba.txt``, official or hashed split:
            see :class:`sketchface.data.celeba.CelebA`), or any folder of face photos (then ``split`` is ignored
            unless it is ``"all"``-compatible and items have no labels).
        split: "train" | "valid" | "test" | "all".
        size: model side in pixels.
        styles: sketch styles to draw from (:data:`STYLES`); with ``augment`` drawn with :data:`STYLE_WEIGHTS`.
        variants: items per photo. With ``augment=False`` item ``k`` of a photo uses ``styles[k % len(styles)]``
            at its fixed evaluation parameters (so ``variants=len(styles)`` gives every style once).
        augment: random style parameters (seeded by ``seed``, photo and variant: repeatable).

    Items: ``"sketch"`` float32 (1, S, S) in [0, 1] (white paper = 1), ``"image"`` float32 (3, S, S) in [0, 1],
    ``"labels"`` float32 (40,) 0/1 (CelebA only), ``"style"`` int64 index into :data:`STYLES`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: int = 64,
        styles: Sequence[str] = STYLES,
        variants: int = 1,
        augment: bool = True,
        seed: int = 0,
    ):
        unknown = [s for s in styles if s not in STYLES]
        if unknown or not styles:
            raise ValueError(f"styles must be a non-empty subset of {STYLES}; got {list(styles)}")
        if variants < 1:
            raise ValueError(f"variants must be >= 1; got {variants}")
        root = Path(root)
        from .celeba import CelebA

        if (root / CelebA.attr_filename).is_file():
            self.celeba: CelebA | None = CelebA(root, split=split, size=size)
            self.paths = [self.celeba.path(i) for i in range(len(self.celeba))]
            self.labels = torch.from_numpy((self.celeba.labels == 1).astype(np.float32))
        elif root.is_dir():
            self.celeba = None
            self.paths = _image_files(root)
            self.labels = None
        else:
            raise FileNotFoundError(f"{root} is not a folder of face photos (nor a CelebA-layout folder).")
        if not self.paths:
            raise FileNotFoundError(f"no images for split {split!r} under {root}")
        self.size, self.styles, self.variants, self.augment, self.seed = size, tuple(styles), variants, augment, seed
        weights = np.array([STYLE_WEIGHTS[STYLES.index(s)] for s in self.styles])
        self._style_p = weights / weights.sum()
        self._foreground: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return len(self.paths) * self.variants

    def photo(self, index: int) -> np.ndarray:
        """Photo ``index`` (not item index) as (H, W, 3) uint8."""
        with Image.open(self.paths[index]) as im:
            return np.asarray(im.convert("RGB"))

    def foreground(self, index: int, rgb: np.ndarray) -> np.ndarray | None:
        """The head region of photo ``index`` (face detector ellipse; None when no face is found), cached."""
        if index not in self._foreground:
            self._foreground[index] = estimate_foreground(rgb)
        return self._foreground[index]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} pairs")
        index, variant = divmod(item, self.variants)
        rgb = self.photo(index)
        fg = self.foreground(index, rgb)
        if self.augment:
            rng = np.random.default_rng([self.seed, index, variant])
            style = self.styles[int(rng.choice(len(self.styles), p=self._style_p))]
        else:
            rng, style = None, self.styles[variant % len(self.styles)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no face found": the whole photo is sketched, as in the app
            sketch, photo, style = make_pair(rgb, fg, style, self.size, rng)
        out = {
            "sketch": torch.from_numpy(sketch.astype(np.float32) / 255.0)[None],
            "image": torch.from_numpy(photo.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous(),
            "style": torch.tensor(STYLES.index(style)),
        }
        if self.labels is not None:
            out["labels"] = self.labels[index]
        return out

    def __repr__(self) -> str:
        return (
            f"SketchPhotoPairs(n_photos={len(self.paths)}, variants={self.variants}, size={self.size}, "
            f"styles={self.styles}, augment={self.augment})"
        )


def pair_pool(
    root: str | os.PathLike,
    size: int,
    variants: int,
    styles: Sequence[str] = STYLES,
    *,
    split: str = "train",
    cache: str | os.PathLike | None = None,
    num_workers: int = 0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Every photo of ``split`` drawn ``variants`` times (augmented), rendered once: uint8 ``"sketch"`` (N, 1, S, S)
    and ``"image"`` (N, 3, S, S), photo-major (item ``i`` is photo ``i // variants``).

    ``cache``: a .pt file to reuse across runs (rebuilt when the settings differ). It holds dataset pixels: keep it
    out of the repository (CelebA may not be redistributed).
    """
    from ..training import atomic_write, render_pool

    key = json.dumps([str(Path(root).resolve()), split, size, variants, list(styles), seed])
    path = Path(cache) if cache else None
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=True)
        if saved.get("key") == key:
            return {k: v for k, v in saved.items() if k != "key"}
    pairs = SketchPhotoPairs(root, split, size, styles, variants, augment=True, seed=seed)
    pool = render_pool(pairs, num_workers=num_workers, keys=("image", "sketch"), desc=f"render {split} pairs")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: torch.save({**pool, "key": key}, tmp))
    return pool


def eval_pairs(
    root: str | os.PathLike, size: int, photos: int | None = None, split: str = "test"
) -> dict[str, torch.Tensor]:
    """Held-out pairs: each of the first ``photos`` photos of ``split`` drawn once in every style of
    :data:`EVAL_STYLES` at fixed parameters. Float ``"sketch"`` (N, 1, S, S), ``"image"`` (N, 3, S, S) in [0, 1],
    ``"style"`` (N,) indices into :data:`STYLES`, ``"photo"`` (N,) the photo's index, and ``"labels"`` (N, 40) ±1 where
    the folder has CelebA labels."""
    ev = SketchPhotoPairs(root, split, size, EVAL_STYLES, len(EVAL_STYLES), augment=False)
    n = len(ev) if photos is None else min(len(ev), photos * len(EVAL_STYLES))
    items = [ev[i] for i in range(n)]
    out = {k: torch.stack([it[k] for it in items]) for k in ("sketch", "image", "style")}
    out["photo"] = torch.arange(n) // len(EVAL_STYLES)
    if ev.labels is not None:
        out["labels"] = ev.labels[out["photo"]] * 2 - 1
    return out


# ------------------------------------------------------------------------------------------------------------------
# batch augmentation (torch, on the training device)


def augment_pairs(
    sketch: torch.Tensor,
    image: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    rotate: float = 6.0,
    scale: float = 0.06,
    shift: float = 0.04,
    wobble: float = 0.015,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips and small affine moves shared by sketch (B, 1, S, S) and photo (B, 3, S, S), both in [0, 1];
    then, for the sketch alone, a smooth wobble of the lines (a hand does not trace the photo exactly) and a random
    ink darkness. ``rotate`` in degrees, ``scale``/``shift``/``wobble`` as fractions of the side."""
    b, dev = sketch.shape[0], sketch.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev) * 2 - 1

    angle = uniform(b) * math.radians(rotate)
    zoom = 1 + uniform(b) * scale
    flip = torch.where(uniform(b) > 0, 1.0, -1.0).to(dev)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, uniform(b) * 2 * shift], 1),
            torch.stack([sin * flip, cos, uniform(b) * 2 * shift], 1),
        ],
        1,
    )  # (B, 2, 3): output → input coordinates
    grid = torch.nn.functional.affine_grid(theta.to(sketch.dtype), list(sketch.shape), align_corners=False)
    image = torch.nn.functional.grid_sample(image, grid.to(image.dtype), padding_mode="border", align_corners=False)
    # the sketch's paper is white: move the ink (1 - sketch) with zero padding
    coarse = uniform(b, 2, 5, 5) * 2 * wobble  # smooth displacement field
    field = torch.nn.functional.interpolate(coarse, size=sketch.shape[-2:], mode="bicubic", align_corners=False)
    ink = torch.nn.functional.grid_sample(
        1 - sketch, grid + field.permute(0, 2, 3, 1).to(grid.dtype), padding_mode="zeros", align_corners=False
    )
    gamma = torch.exp(uniform(b) * math.log(1.6)).view(b, 1, 1, 1).to(ink.dtype)
    sketch = 1 - ink.clamp(0, 1) ** gamma
    return sketch.contiguous(), image.contiguous()


#: the training scripts' ``--augment`` modes, in words for the model cards
AUGMENT_WORDS = {
    "full": "flipped, moved and wobbled every batch",
    "flip": "mirrored at random every batch (no moves or wobble)",
    "none": "not augmented",
}
AUGMENTS = tuple(AUGMENT_WORDS)


def augment_batch(sketch: torch.Tensor, image: torch.Tensor, rng: torch.Generator, mode: str, *more: torch.Tensor):
    """The training pairs of one batch as ``--augment`` says: full (augment_pairs), flip (mirror half), none. Tensors
    in ``more`` (images of the same faces, e.g. cached drawings) are mirrored with their pairs and returned after
    them; full augmentation moves the pairs and cannot carry them."""
    if mode == "full":
        if more:
            raise ValueError("full augmentation moves the pairs: it cannot carry other images along")
        return augment_pairs(sketch, image, rng)
    if mode == "flip":
        flip = (torch.rand(len(sketch), generator=rng) < 0.5).to(sketch.device).view(-1, 1, 1, 1)
        sketch, image, *more = (torch.where(flip, t.flip(-1), t) for t in (sketch, image, *more))
    return (sketch, image, *more)
