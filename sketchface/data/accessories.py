"""Draw eyeglasses and a mustache onto aligned face photos, and set their labels (issue 25's rare attributes).

CelebA-mini has 37 training photos with glasses and 19 with a mustache: too few for a renderer to learn to draw
them from the attribute alone. Aligned CelebA crops put the eyes and the mouth at nearly the same place in every
photo (the mean of the photos with glasses shows the frames sharply), so a drawn pair of frames or a mustache at
those places, with jittered size, shape, colour and position, turns any photo into a labelled example.
:mod:`train.layout_face` draws them on a share of each batch (:func:`sample_accessories`, :func:`draw_accessories`,
:func:`paint`), into the photo and into its layout, and :class:`~sketchface.models.layout_face.LayoutFace` draws the
ones a description asks for into the layout it renders.

Images are float tensors (N, 3, H, W) in [0, 1]; shapes are drawn anti-aliased with OpenCV at 4× and reduced.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from sketchface.attributes import INDEX

#: centres of the two eyes and of the upper lip in aligned CelebA crops, as fractions of width and height (measured
#: on the mean of CelebA-mini's training photos with glasses and with a mustache, centre-cropped square)
EYES = ((0.365, 0.505), (0.635, 0.505))
UPPER_LIP = (0.5, 0.695)
SUPER = 4  # drawing resolution multiple (anti-aliasing)

_FRAME_COLOURS = np.array(
    [[0.05, 0.05, 0.05], [0.12, 0.08, 0.05], [0.25, 0.25, 0.27], [0.55, 0.45, 0.25], [0.6, 0.6, 0.62]]
)
_FRAME_WEIGHTS = np.array([0.45, 0.2, 0.15, 0.1, 0.1])
_LENS_COLOURS = np.array([[0.05, 0.05, 0.06], [0.15, 0.1, 0.06], [0.1, 0.12, 0.1]])


def _canvas(size: int) -> np.ndarray:
    return np.zeros((size * SUPER, size * SUPER), np.float32)


def _reduce(mask: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)[..., None]


def glasses_layers(size: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(alpha (H, W, 1), colour (3,)) layers of one random pair of glasses: lenses first, then the frame."""
    s = size * SUPER
    dx, dy = rng.normal(0, 0.012, 2)
    tilt = rng.normal(0, 0.01)
    half_w, half_h = rng.uniform(0.09, 0.12), rng.uniform(0.055, 0.085)
    thick = max(1, int(round(rng.uniform(0.008, 0.022) * s)))
    power = rng.uniform(2.0, 5.0)  # 2: an ellipse; larger: a rounded rectangle
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    shape = np.stack(
        [np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / power), np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / power)],
        1,
    )
    shape[:, 1] -= 0.15 * shape[:, 0] ** 2 * (shape[:, 1] > 0)  # lower rims rise a little at the outer ends
    centres = [((x + dx) * s, (y + dy + (tilt if i else -tilt)) * s) for i, (x, y) in enumerate(EYES)]
    lens, frame = _canvas(size), _canvas(size)
    for cx, cy in centres:
        outline = (np.array([cx, cy]) + shape * np.array([half_w, half_h]) * s).round().astype(np.int32)
        cv2.fillPoly(lens, [outline], 1.0, cv2.LINE_AA)
        cv2.polylines(frame, [outline], True, 1.0, thick, cv2.LINE_AA)
    (lx, ly), (rx, ry) = centres
    bridge_y = int((ly + ry) / 2 - rng.uniform(0.0, 0.4) * half_h * s)
    cv2.line(frame, (int(lx + half_w * s), bridge_y), (int(rx - half_w * s), bridge_y), 1.0, thick, cv2.LINE_AA)
    for cx, cy, side in ((lx, ly, -1), (rx, ry, 1)):  # temples, towards the ears
        x0 = int(cx + side * half_w * s)
        cv2.line(
            frame,
            (x0, int(cy - 0.5 * half_h * s)),
            (int(x0 + side * 0.09 * s), int(cy - 0.6 * half_h * s)),
            1.0,
            thick,
            cv2.LINE_AA,
        )
    frame_colour = _FRAME_COLOURS[rng.choice(len(_FRAME_COLOURS), p=_FRAME_WEIGHTS)] + rng.normal(0, 0.03, 3)
    if rng.random() < 0.35:  # sunglasses
        lens_alpha, lens_colour = rng.uniform(0.6, 0.92), _LENS_COLOURS[rng.integers(len(_LENS_COLOURS))]
    else:
        lens_alpha, lens_colour = rng.uniform(0.0, 0.12), np.array([0.85, 0.88, 0.9])
    frame_alpha = rng.uniform(0.75, 1.0)
    return [
        (_reduce(lens, size) * lens_alpha, lens_colour),
        (_reduce(frame, size) * frame_alpha, np.clip(frame_colour, 0, 1)),
    ]


def mustache_layers(image: np.ndarray, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(alpha (H, W, 1), colour (3,)) layers of one random mustache for ``image`` (H, W, 3), coloured like the
    darker part of its hair (the top of the photo) or plain dark brown."""
    size = image.shape[0]
    s = size * SUPER
    cx = (UPPER_LIP[0] + rng.normal(0, 0.01)) * s
    cy = (UPPER_LIP[1] + rng.normal(0, 0.01)) * s
    half_w, half_h = rng.uniform(0.085, 0.13) * s, rng.uniform(0.018, 0.032) * s
    droop = rng.uniform(0.0, 0.05) * s  # how far the ends hang down
    xs = np.linspace(-1, 1, 24)
    top = np.stack([cx + xs * half_w, cy - half_h * (1 - xs**2) + droop * xs**2], 1)
    bottom = np.stack(
        [cx + xs[::-1] * half_w * 0.96, cy + half_h * 0.8 * (1 - xs[::-1] ** 2) + droop * xs[::-1] ** 2 + 1], 1
    )
    mask = _canvas(size)
    cv2.fillPoly(mask, [np.concatenate([top, bottom]).round().astype(np.int32)], 1.0, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), SUPER * 0.5)
    texture = 1 - rng.uniform(0, 0.35) * rng.random(mask.shape).astype(np.float32)  # hair-like unevenness
    top_strip = image[: max(1, size // 8)].reshape(-1, 3)
    dark = top_strip[np.argsort(top_strip.sum(1))[: max(1, len(top_strip) // 4)]].mean(0)
    colour = dark if rng.random() < 0.6 and dark.sum() < 1.2 else np.array([0.12, 0.08, 0.05])
    colour = np.clip(colour * rng.uniform(0.6, 1.0) + rng.normal(0, 0.02, 3), 0, 1)
    return [(_reduce(mask * texture, size) * rng.uniform(0.6, 0.9), colour)]


def overlay(base: np.ndarray, glasses: bool, mustache: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One face's accessories as ``(keep (H, W, 1), add (H, W, 3))``: painted, a picture becomes ``picture · keep +
    add``. ``base`` (H, W, 3) in [0, 1] gives the mustache its colour."""
    size = base.shape[0]
    layers = (glasses_layers(size, rng) if glasses else []) + (mustache_layers(base, rng) if mustache else [])
    keep, add = np.ones((size, size, 1), np.float32), np.zeros((size, size, 3), np.float32)
    for alpha, colour in layers:
        keep, add = keep * (1 - alpha), add * (1 - alpha) + colour.astype(np.float32) * alpha
    return keep, add


def draw_accessories(
    base: torch.Tensor, glasses: torch.Tensor, mustache: torch.Tensor, rngs: list[np.random.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accessories for a batch: ``base`` (N, 3, S, S) in [0, 1] (for the mustaches' colour), which faces get glasses
    and which a mustache (N,) bool, one generator per face → ``(keep (N, 1, S, S), add (N, 3, S, S))`` for
    :func:`paint`."""
    if base.ndim != 4 or base.shape[1] != 3 or base.shape[-1] != base.shape[-2]:
        raise ValueError(f"images must be (N, 3, S, S); got {tuple(base.shape)}")
    n, size = len(base), base.shape[-1]
    keep, add = torch.ones(n, 1, size, size), torch.zeros(n, 3, size, size)
    rows = (glasses.bool() | mustache.bool()).nonzero().flatten().tolist()
    if rows:
        pixels = base[rows].detach().float().permute(0, 2, 3, 1).cpu().numpy()
        for k, i in enumerate(rows):
            kp, ad = overlay(pixels[k], bool(glasses[i]), bool(mustache[i]), rngs[i])
            keep[i], add[i] = torch.from_numpy(kp).permute(2, 0, 1), torch.from_numpy(ad).permute(2, 0, 1)
    return keep.to(base.device), add.to(base.device)


def paint(images: torch.Tensor, keep: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Images (N, 3, S, S) with the accessories of :func:`draw_accessories` painted on."""
    return (images * keep.to(images) + add.to(images)).clamp(0, 1)


def sample_accessories(
    labels: torch.Tensor, rng: np.random.Generator, p_glasses: float = 0.2, p_mustache: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which faces get drawn glasses (a ``p_glasses`` share of those labelled without) and a drawn mustache (a
    ``p_mustache`` share of the men labelled without one): ``(glasses (N,) bool, mustache (N,) bool, new labels)``;
    the new labels have them present, and the men given a mustache lose No_Beard."""
    glasses_i, mustache_i, beard, male = (INDEX[a] for a in ("Eyeglasses", "Mustache", "No_Beard", "Male"))
    draws = torch.from_numpy(rng.random((len(labels), 2))).to(labels.device)
    glasses = (labels[:, glasses_i] <= 0) & (draws[:, 0] < p_glasses)
    mustache = (labels[:, male] > 0) & (labels[:, mustache_i] <= 0) & (draws[:, 1] < p_mustache)
    labels = labels.clone()
    labels[glasses, glasses_i] = 1
    labels[mustache, mustache_i] = 1
    labels[mustache, beard] = -1
    return glasses, mustache, labels


def add_accessories(
    images: torch.Tensor,
    labels: torch.Tensor,
    rng: np.random.Generator,
    p_glasses: float = 0.2,
    p_mustache: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw glasses on a ``p_glasses`` share of the photos labelled without them, and a mustache on a ``p_mustache``
    share of the men labelled without one (they then lose No_Beard); returns new (images, labels).

    ``images`` (N, 3, H, W) in [0, 1], square; ``labels`` (N, 40) in ±1 (0 = unknown counts as absent)."""
    glasses, mustache, labels = sample_accessories(labels, rng, p_glasses, p_mustache)
    keep, add = draw_accessories(images, glasses, mustache, [rng] * len(images))
    return paint(images, keep, add), labels
