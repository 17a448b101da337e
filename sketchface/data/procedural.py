"""Procedural faces: stylised portraits rendered from 40 CelebA attributes and a seed, with exact labels.

``render(attributes, seed, size)`` draws a face with OpenCV polygons (anti-aliased, in numpy; no per-pixel
Python), returns the RGB image, a CelebAMask-HQ-style parsing mask drawn with the same polygons in painter's
order, the 40 labels *as rendered* (after the rules below), and the vector strokes an artist would draw.
Attributes and identity are drawn from independent streams of the same seed (``default_rng([seed, 0])`` and
``default_rng([seed, 1])``), so two seeds with the same attributes are different people, and the same
(attributes, seed, size) always gives identical bytes.

Identity (from the seed, independent of the attributes): face width and length, jaw squareness and chin taper,
eye spacing / size / tilt / iris colour, nose length and width, mouth width, lip thickness, eight skin tones
from very light to very dark, hair volume / parting / length (length leans on Male), hat, glasses, earring and
clothes styles and colours, pose jitter (rotation ±7°, shift ±3 %, scale ±6 %), light direction and strength
(shading over the figure), background colour pair and gradient direction.

Attribute effects (every attribute is visible at 64 px):

====================  ===============================================================================
Attribute             Effect when present (absent: the opposite / nothing drawn)
====================  ===============================================================================
5_o_Clock_Shadow      blue-grey stubble tint over jaw, chin and upper lip plus dark stipple dots
Arched_Eyebrows       brows with a high, angular arch peaking at two thirds (absent: nearly flat brows)
Attractive            symmetric features, clear skin (absent: one eye and brow ~2 px lower at 64 px, mouth
                      tilted 9°, 4-7 dark red blemishes)
Bags_Under_Eyes       dark purple crescents and a crease line under both eyes
Bald                  no hair on the crown (shiny scalp), only a fringe above/behind the ears
Bangs                 a fringe of hair covering the forehead down to just above the brows
Big_Lips              lips 1.8x as thick
Big_Nose              nose 1.5x as wide and 1.25x as long, bigger nostrils
Black_Hair            hair (and brows, beard) near black
Blond_Hair            light golden hair
Blurry                Gaussian blur of the whole image (sigma = 2 % of the image size)
Brown_Hair            medium warm brown hair
Bushy_Eyebrows        brows twice as thick, with ragged edges
Chubby                face 13 % wider and rounder, round cheeks, wider neck
Double_Chin           a second skin fold with a crease and shadow under the chin
Eyeglasses            coloured frames (round / rectangular) with bridge, temples and a lens glare
Goatee                chin patch of hair below the lower lip, joined to the mouth corners
Gray_Hair             grey to silver hair (a tendency of old faces in the CelebA sampler)
Heavy_Makeup          coloured eye shadow up to the brows, thick winged eyeliner, contour blush streaks
High_Cheekbones       bright highlight on the cheekbones and a dark hollow below them
Male                  square, wide jaw, thicker and lower brows, thicker neck, Adam's apple, mostly short hair
                      (absent: tapered jaw, eyelashes, fuller lips, mostly long hair)
Mouth_Slightly_Open   lips apart with a dark mouth interior (teeth when also smiling)
Mustache              hair shape over the upper lip
Narrow_Eyes           eye opening 0.42x as high (the iris shows as a slit)
No_Beard              absent: a beard; a full jaw beard unless the beard is only a mustache and/or goatee
Oval_Face             long (height/width ~ 1.45), smooth oval outline with a narrow chin
Pale_Skin             the skin tone blended 62 % towards a cool near-white
Pointy_Nose           sharp V-shaped tip with a bright point highlight (absent: round bulb)
Receding_Hairline     hair pulled back at both temples (M-shaped hairline, high forehead corners)
Rosy_Cheeks           round saturated pink-red patches on both cheeks
Sideburns             a strip of hair down the side of the face in front of each ear
Smiling               wider mouth with corners turned up
Straight_Hair         smooth hair outline with long straight strands and a sheen band
Wavy_Hair             wavy hair outline with wavy strands (neither: short curly bumps, no long strands)
Wearing_Earrings      gold / silver / coloured hoops or drops hanging from the ear lobes
Wearing_Hat           beanie, cap or fedora over the crown
Wearing_Lipstick      saturated red / pink / berry lips (absent: lips close to the skin tone)
Wearing_Necklace      gold / silver / pearl chain across the neck with a pendant
Wearing_Necktie       shirt collar and a coloured tie (absent: a collarless top)
Young                 smooth skin (absent: forehead lines, crow's feet, nasolabial and marionette folds)
====================  ===============================================================================

Hair colour when none of the four colours is set: auburn, copper red, strawberry blond or a dyed colour.

Rules (applied by :func:`apply_rules`, to sampled and to requested attributes; the returned labels are the
rendered ones, so mask/label agreement is exact):

1. At most one hair colour: requested colours win over sampled ones, then the order Gray, Blond, Black, Brown.
2. Wearing_Hat hides the scalp: Bald and Receding_Hairline become absent.
3. Bald: no Bangs, no Straight_Hair / Wavy_Hair, no Receding_Hairline. A hair colour still applies to the
   fringe at the sides (and to brows and beard).
4. Straight_Hair and Wavy_Hair exclude each other (Wavy wins).
5. Mustache or Goatee imply a beard: No_Beard becomes absent (as in CelebA's labels).
6. Mustache, Goatee, beard (No_Beard absent), Sideburns or 5_o_Clock_Shadow imply Male unless Male was
   explicitly requested False.

Mask classes (:data:`MASK_CLASSES`, CelebAMask-HQ's): ``l_*`` is the image-left part. Beard, mustache and
goatee are ``skin`` (CelebAMask-HQ has no beard class), sideburns and the bald fringe are ``hair``; eyeglasses
(``eye_g``) are the frames, bridge and temples (the eyes stay visible through the lenses); the necktie and
collar are ``cloth``; ``mouth`` is the open mouth's interior.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sketchface.attributes import ATTRIBUTES, INDEX, NUM_ATTRIBUTES, Attributes
from sketchface.data import sketch as sk
from sketchface.data.sketch import MASK_CLASSES  # the index is the class id in Face.mask

__all__ = [
    "CELEBA_MARGINALS",
    "MASK_CLASSES",
    "AttributeSampler",
    "Face",
    "ProceduralFaces",
    "Stroke",
    "apply_rules",
    "render",
    "write_celeba_layout",
]

_C = {name: i for i, name in enumerate(MASK_CLASSES)}
# mask class → weight of the soft paint (skin-like classes) / of the shading (everything but background)
_SOFT_LUT = np.zeros(256, np.float32)
_SOFT_LUT[[_C["skin"], _C["neck"], _C["l_ear"], _C["r_ear"]]] = 1.0
_FIG_LUT = np.ones(256, np.float32)
_FIG_LUT[0] = 0.0


@dataclass
class Stroke:
    """One pen stroke: ``points`` (N, 2) float32 in normalised [0, 1] image coords (x right, y down)."""

    kind: str
    points: np.ndarray
    closed: bool = False
    width: float = 0.006  # fraction of the image size


@dataclass
class Face:
    """A rendered face: image (S, S, 3) uint8 RGB, mask (S, S) uint8 class ids, labels (40,) int8 ±1."""

    image: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    strokes: list[Stroke] = field(default_factory=list)
    seed: int = 0

    def attributes(self) -> Attributes:
        """The rendered labels as :class:`~sketchface.attributes.Attributes`."""
        return Attributes.from_vector(self.labels)


_CELEBA_N = 899
#: Marginal frequency of each attribute in CelebA-mini (899 official CelebA labels), official order.
CELEBA_MARGINALS = np.array(
    [
        0.1246,
        0.2859,
        0.5261,
        0.2202,
        0.0178,
        0.1446,
        0.2581,
        0.2503,
        0.2625,
        0.1424,
        0.0489,
        0.2002,
        0.1580,
        0.0656,
        0.0434,
        0.0601,
        0.0612,
        0.0523,
        0.3826,
        0.4650,
        0.4305,
        0.5106,
        0.0300,
        0.1257,
        0.8287,
        0.2558,
        0.0445,
        0.2803,
        0.0723,
        0.0734,
        0.0556,
        0.5106,
        0.2247,
        0.2881,
        0.2102,
        0.0467,
        0.4605,
        0.1268,
        0.0779,
        0.7553,
    ]
)
_P_MALE = 0.4305
_P_YOUNG_GIVEN_MALE = (0.8613, 0.6150)  # (female, male)
# P(attribute | Male, Young), cells (female old, female young, male old, male young); smoothed toward
# the marginal (2 pseudo-counts). Columns follow ATTRIBUTES.
_P_COND = np.array(
    [
        [
            0.003,
            0.432,
            0.439,
            0.225,
            0.000,
            0.292,
            0.199,
            0.253,
            0.103,
            0.346,
            0.125,
            0.156,
            0.032,
            0.015,
            0.015,
            0.029,
            0.002,
            0.097,
            0.545,
            0.780,
            0.012,
            0.726,
            0.001,
            0.154,
            0.995,
            0.226,
            0.056,
            0.309,
            0.057,
            0.180,
            0.002,
            0.809,
            0.088,
            0.446,
            0.513,
            0.001,
            0.766,
            0.291,
            0.002,
            0.021,
        ],
        [
            0.001,
            0.471,
            0.750,
            0.080,
            0.000,
            0.170,
            0.353,
            0.098,
            0.227,
            0.215,
            0.036,
            0.245,
            0.093,
            0.014,
            0.002,
            0.025,
            0.000,
            0.002,
            0.686,
            0.526,
            0.002,
            0.540,
            0.000,
            0.113,
            0.999,
            0.310,
            0.063,
            0.360,
            0.048,
            0.118,
            0.000,
            0.531,
            0.218,
            0.428,
            0.333,
            0.030,
            0.806,
            0.201,
            0.000,
            0.999,
        ],
        [
            0.174,
            0.010,
            0.106,
            0.460,
            0.080,
            0.042,
            0.103,
            0.560,
            0.189,
            0.015,
            0.060,
            0.109,
            0.168,
            0.213,
            0.179,
            0.193,
            0.153,
            0.246,
            0.012,
            0.337,
            0.992,
            0.404,
            0.120,
            0.141,
            0.660,
            0.156,
            0.007,
            0.156,
            0.180,
            0.008,
            0.140,
            0.437,
            0.235,
            0.116,
            0.003,
            0.087,
            0.013,
            0.002,
            0.266,
            0.010,
        ],
        [
            0.359,
            0.073,
            0.404,
            0.327,
            0.017,
            0.118,
            0.198,
            0.335,
            0.423,
            0.026,
            0.042,
            0.189,
            0.310,
            0.084,
            0.042,
            0.051,
            0.134,
            0.009,
            0.007,
            0.337,
            0.995,
            0.458,
            0.038,
            0.130,
            0.569,
            0.227,
            0.030,
            0.202,
            0.055,
            0.001,
            0.121,
            0.429,
            0.273,
            0.090,
            0.023,
            0.067,
            0.012,
            0.018,
            0.126,
            0.998,
        ],
    ]
)
# P(hair colour | cell) over (Black, Blond, Brown, Gray, other); rows with several colours counted once
# (gray > blond > black > brown).
_P_HAIR = np.array(
    [
        [0.102, 0.306, 0.143, 0.102, 0.347],
        [0.227, 0.213, 0.238, 0.003, 0.319],
        [0.188, 0.010, 0.109, 0.248, 0.446],
        [0.418, 0.027, 0.164, 0.010, 0.380],
    ]
)


_HAIR_IDX = np.array([INDEX[n] for n in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")])
_FACIAL_HAIR = np.array([INDEX[n] for n in ("Mustache", "Goatee", "Sideburns", "5_o_Clock_Shadow")])
_I = INDEX  # short alias for the many look-ups below


def apply_rules(v: np.ndarray, explicit: np.ndarray | None = None) -> np.ndarray:
    """Make ±1 vectors (n, 40) or (40,) consistent with the module's rules; returns a new int8 array.

    ``explicit`` (same shape, bool) marks requested values: they win conflicts where a rule allows it.
    """
    v = np.array(v, dtype=np.int8, copy=True)
    single = v.ndim == 1
    v = v.reshape(-1, NUM_ATTRIBUTES)
    ex = np.zeros(v.shape, bool) if explicit is None else np.asarray(explicit, bool).reshape(v.shape)
    # 1. one hair colour: explicit first, then gray > blond > black > brown
    hair = v[:, _HAIR_IDX] > 0  # (n, 4) in (Black, Blond, Brown, Gray)
    order = np.array([3, 1, 0, 2])
    score = hair * (1 + 4 * ex[:, _HAIR_IDX]) * (np.array([2, 3, 1, 4]))[None]  # rank: explicit, then priority
    keep = np.argmax(score, axis=1)
    del order
    new = np.zeros_like(hair)
    new[np.arange(len(v)), keep] = hair.any(1)
    v[:, _HAIR_IDX] = np.where(new, 1, -1)
    # 2. hat hides the scalp; 3. bald has no bangs / texture / recession
    hat = v[:, _I["Wearing_Hat"]] > 0
    v[hat, _I["Bald"]] = -1
    bald = v[:, _I["Bald"]] > 0
    for name in ("Bangs", "Straight_Hair", "Wavy_Hair", "Receding_Hairline"):
        v[bald, _I[name]] = -1
    v[hat, _I["Receding_Hairline"]] = -1
    # 4. straight xor wavy
    v[v[:, _I["Wavy_Hair"]] > 0, _I["Straight_Hair"]] = -1
    # 5. mustache / goatee are beards
    v[(v[:, _I["Mustache"]] > 0) | (v[:, _I["Goatee"]] > 0), _I["No_Beard"]] = -1
    # 6. facial hair implies male unless explicitly female
    fh = (v[:, _FACIAL_HAIR] > 0).any(1) | (v[:, _I["No_Beard"]] < 0)
    male_i = _I["Male"]
    v[fh & ~(ex[:, male_i] & (v[:, male_i] < 0)), male_i] = 1
    return v[0] if single else v


class AttributeSampler:
    """Samples ±1 attribute vectors.

    ``mode="celeba"``: Male, then Young | Male, then every other attribute | (Male, Young) and the hair colour
    as one categorical | (Male, Young), from frequencies estimated on CelebA's labels (embedded constants);
    then :func:`apply_rules`. This reproduces the marginals (:data:`CELEBA_MARGINALS`) and the main
    co-occurrences (gender/age with facial hair, make-up, grey hair, ...).
    ``mode="balanced"``: every attribute near 50 % where the rules allow (hair colours are one uniform
    categorical over 5 states, facial hair only on male faces); see :meth:`expected_rates` / docs/data.md.
    """

    def __init__(self, mode: str = "celeba"):
        if mode not in ("celeba", "balanced"):
            raise ValueError(f"mode must be 'celeba' or 'balanced', got {mode!r}")
        self.mode = mode

    def sample(self, rng: np.random.Generator, n: int = 1, fixed: np.ndarray | None = None) -> np.ndarray:
        """(n, 40) int8 ±1 vectors. ``fixed`` (40,) ±1/0: known values to keep (the rest is conditioned on them)."""
        fixed = np.zeros(NUM_ATTRIBUTES, np.int8) if fixed is None else np.asarray(fixed, np.int8).reshape(-1)
        u = rng.random((n, NUM_ATTRIBUTES + 2))
        male_i, young_i = _I["Male"], _I["Young"]
        if self.mode == "celeba":
            male = u[:, male_i] < _P_MALE if fixed[male_i] == 0 else np.full(n, fixed[male_i] > 0)
            py = np.where(male, _P_YOUNG_GIVEN_MALE[1], _P_YOUNG_GIVEN_MALE[0])
            young = u[:, young_i] < py if fixed[young_i] == 0 else np.full(n, fixed[young_i] > 0)
            cell = 2 * male + young
            p = _P_COND[cell]  # (n, 40)
            ph = _P_HAIR[cell]  # (n, 5)
        else:
            male = u[:, male_i] < 0.5 if fixed[male_i] == 0 else np.full(n, fixed[male_i] > 0)
            young = u[:, young_i] < 0.5 if fixed[young_i] == 0 else np.full(n, fixed[young_i] > 0)
            p = np.full((n, NUM_ATTRIBUTES), 0.5)
            p[:, _I["Bangs"]] = 0.65  # compensates for bald faces (no bangs)
            p[:, _I["Bald"]] = 0.36
            for name, q in (("Mustache", 0.5), ("Goatee", 0.5), ("Sideburns", 0.6), ("5_o_Clock_Shadow", 0.6)):
                p[:, _I[name]] = np.where(male, q, 0.0)
            p[:, _I["No_Beard"]] = np.where(male, 0.6, 1.0)
            ph = np.full((n, 5), 0.2)
        v = np.where(u[:, :NUM_ATTRIBUTES] < p, 1, -1).astype(np.int8)
        v[:, male_i] = np.where(male, 1, -1)
        v[:, young_i] = np.where(young, 1, -1)
        if self.mode == "celeba":
            # mustache / goatee are drawn among bearded faces (CelebA labels them as beards), keeping marginals
            beard = v[:, _I["No_Beard"]] < 0
            p_beard = np.maximum(1.0 - p[:, _I["No_Beard"]], 1e-3)
            for name in ("Mustache", "Goatee"):
                j = _I[name]
                v[:, j] = np.where(beard & (u[:, j] < p[:, j] / p_beard), 1, -1)
        # hair colour: one categorical draw
        cum = np.cumsum(ph, axis=1)
        k = (u[:, -1:] * cum[:, -1:] > cum).sum(1)  # 0..4, 4 = other colour
        hair = np.full((n, 4), -1, np.int8)
        sel = k < 4
        hair[np.nonzero(sel)[0], k[sel]] = 1
        v[:, _HAIR_IDX] = hair
        # straight / wavy: one 3-way draw so the rule does not skew Straight_Hair
        if self.mode == "celeba":
            pw, ps = p[:, _I["Wavy_Hair"]], p[:, _I["Straight_Hair"]]
        else:
            pw = ps = np.full(n, 0.45)
        w = u[:, -2]
        v[:, _I["Wavy_Hair"]] = np.where(w < pw, 1, -1)
        v[:, _I["Straight_Hair"]] = np.where((w >= pw) & (w < pw + ps), 1, -1)
        known = fixed != 0
        v[:, known] = fixed[known]
        # a requested hair colour replaces the sampled one; a colour requested absent leaves "other"
        if (fixed[_HAIR_IDX] > 0).any():
            v[:, _HAIR_IDX] = np.where(fixed[_HAIR_IDX] > 0, 1, -1)
        return apply_rules(v, np.broadcast_to(known, v.shape))


# ------------------------------------------------------------------------------------------------------------
# Palettes (RGB)
# ------------------------------------------------------------------------------------------------------------
_SKIN = np.array(
    [
        [244, 210, 182],
        [240, 200, 166],
        [226, 178, 140],
        [204, 150, 110],
        [176, 122, 84],
        [142, 94, 62],
        [106, 68, 45],
        [74, 48, 34],
    ],
    np.float64,
)
_PALE = np.array([250, 244, 250], np.float64)  # cool porcelain
_HAIR = {  # base colours; jittered per seed
    "black": [[24, 21, 24], [36, 30, 30], [18, 18, 26]],
    "blond": [[228, 196, 122], [214, 176, 100], [238, 214, 150]],
    "brown": [[112, 70, 40], [128, 84, 50], [96, 62, 38]],
    "gray": [[172, 172, 176], [196, 196, 202], [150, 150, 154]],
    "other": [[150, 52, 30], [190, 84, 36], [214, 128, 92], [110, 50, 140], [50, 90, 170]],
}
_IRIS = np.array([[92, 56, 30], [50, 34, 22], [70, 120, 175], [80, 125, 70], [135, 105, 50], [110, 122, 135]])
_LIPSTICK = np.array([[215, 15, 40], [235, 40, 110], [175, 15, 70], [245, 70, 60], [200, 0, 20]])
_SHADOW = np.array([[130, 70, 160], [60, 100, 180], [150, 100, 50], [70, 70, 80], [200, 90, 150]])
_METAL = np.array([[232, 190, 60], [215, 215, 225], [245, 240, 228], [200, 40, 80], [40, 150, 200]])
_FRAMES = np.array([[15, 15, 15], [70, 35, 15], [160, 20, 30], [20, 40, 140], [40, 40, 48], [20, 90, 60]])

_CIRCLE = {
    n: np.stack(
        [np.cos(np.linspace(0, 2 * np.pi, n, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False))], 1
    )
    for n in (12, 16, 24, 48)
}
_T = {n: np.linspace(0.0, 1.0, n) for n in (6, 8, 10, 12, 16, 20, 24)}


def _xy(x, y) -> np.ndarray:
    """(N, 2) points from x and y arrays (cheaper than np.stack for the many small arrays here)."""
    out = np.empty((len(x), 2))
    out[:, 0] = x
    out[:, 1] = y
    return out


def _ell(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    return _CIRCLE[n] * (rx, ry) + (cx, cy)


def _col(c) -> tuple[float, float, float]:
    # cv2 saturates out-of-range colour values itself
    return c.tolist() if isinstance(c, np.ndarray) else c


def _mix(a, b, t: float) -> np.ndarray:
    return np.asarray(a, np.float64) * (1 - t) + np.asarray(b, np.float64) * t


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return (x + 0.5) / size, (y + 0.5) / size


class _Canvas:
    """Draws polygons into the image (anti-aliased), the mask (aliased) and records strokes.

    Coordinates are normalised; ``A`` (2, 3) is the pose transform applied to every point.
    """

    def __init__(self, size: int, A: np.ndarray, bg: np.ndarray):
        self.s = size
        self.A = A
        self.k = size * 16.0  # fixed point, shift=4
        self.img = bg
        self.mask = np.zeros((size, size), np.uint8)
        # soft paint is blurred anyway: draw it at half resolution
        self.s2 = max(16, size // 2)
        self.k2 = self.s2 * 16.0
        self.soft = np.zeros((self.s2, self.s2, 3), np.float32)
        self.strokes: list[Stroke] = []
        self._M, self._b = A[:, :2].T.copy(), A[:, 2].copy()
        self._Mf, self._bf = self._M * self.k, self._b * self.k - 8

    def _f(self, pts: np.ndarray) -> np.ndarray:
        """Fixed-point pixel coords (shift 4) for cv2; -8: pixel centres sit at (i + 0.5) / size."""
        return (pts @ self._Mf + self._bf).astype(np.int32)

    def _p(self, pts: np.ndarray) -> np.ndarray:
        """Normalised image coords after the pose transform (for strokes)."""
        return (pts @ self._M + self._b).astype(np.float32)

    def _fx(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._p(pts), self._f(pts)

    def px(self, w: float) -> int:
        return max(1, int(round(w * self.s)))

    def fill(self, pts, color, cls: int | None = None, kind: str | None = None, width: float = 0.006):
        f = self._f(pts)
        cv2.fillPoly(self.img, [f], _col(color), cv2.LINE_AA, 4)
        if cls is not None:
            cv2.fillPoly(self.mask, [f], cls, cv2.LINE_8, 4)
        if kind is not None:
            self.strokes.append(Stroke(kind, self._p(pts), True, width))

    def line(self, pts, color, width: float, cls: int | None = None, kind: str | None = None, closed=False):
        f = self._f(pts)
        t = self.px(width)
        cv2.polylines(self.img, [f], closed, _col(color), t, cv2.LINE_AA, 4)
        if cls is not None:
            cv2.polylines(self.mask, [f], closed, cls, t, cv2.LINE_8, 4)
        if kind is not None:
            self.strokes.append(Stroke(kind, self._p(pts), closed, width))

    def lines(self, plist, color, width: float):
        fs = [self._f(p) for p in plist]
        cv2.polylines(self.img, fs, False, _col(color), self.px(width), cv2.LINE_AA, 4)

    def stroke(self, kind: str, pts, closed=False, width: float = 0.006):
        self.strokes.append(Stroke(kind, self._p(pts), closed, width))

    def tint(self, pts, delta):
        """Soft paint (signed RGB offset), blurred and added over the skin later."""
        p = pts @ self.A[:, :2].T + self.A[:, 2]
        f = (p * self.k2 - 8).astype(np.int32)
        cv2.fillPoly(self.soft, [f], (float(delta[0]), float(delta[1]), float(delta[2])), cv2.LINE_8, 4)


def _coerce(attributes) -> np.ndarray:
    """Attributes / mapping / vector → (40,) int8 ±1/0 (0 = unknown)."""
    if attributes is None:
        return np.zeros(NUM_ATTRIBUTES, np.int8)
    if isinstance(attributes, Attributes):
        return attributes.to_vector()
    if isinstance(attributes, Mapping):
        return Attributes(dict(attributes)).to_vector()
    v = np.asarray(attributes, dtype=np.float64).reshape(-1)
    if v.shape != (NUM_ATTRIBUTES,):
        raise ValueError(f"expected {NUM_ATTRIBUTES} attribute values, got shape {v.shape}")
    return np.sign(v).astype(np.int8)


def render(attributes=None, seed: int = 0, size: int = 128, mode: str = "celeba") -> Face:
    """Render one face. ``attributes``: :class:`Attributes`, a mapping name → bool/None, or a ±1/0 vector;
    unknown attributes are sampled (``mode`` sampler) from ``seed``. Returns a :class:`Face` whose labels are
    the rendered attributes after :func:`apply_rules`."""
    fixed = _coerce(attributes)
    if (fixed != 0).all():
        v = apply_rules(fixed, np.ones(NUM_ATTRIBUTES, bool))
    else:
        v = AttributeSampler(mode).sample(np.random.default_rng([seed, 0]), 1, fixed)[0]
    a = {name: bool(v[i] > 0) for i, name in enumerate(ATTRIBUTES)}
    face = _draw(a, np.random.default_rng([seed, 1]), int(size))
    return Face(face[0], face[1], v, face[2], seed)


@dataclass(frozen=True)
class _Slots:
    """The identity stream's uniform draws. Every random choice has its own slot (index), so switching one
    attribute never changes another's draw, and the parts may read their slots in any order.

    Slots: 0-29 and 50, 55 :func:`_identity`; 30-34 background; 35 back hair; 36-40 shoulders; 41-45 necktie;
    46 necklace; 47, 70-99 blemishes; 51-53 eyes; 54 lipstick; 56 front hair; 57-60 hat; 61-62 glasses;
    63-64 earrings; 65 light strength. Free: 48-49, 66-69, 100-103 (a new choice takes a free slot, never
    a used one, or every face changes).
    """

    r: list[float]

    def u(self, k: int, lo: float = 0.0, hi: float = 1.0) -> float:
        """Slot ``k`` scaled to [lo, hi)."""
        return lo + (hi - lo) * self.r[k]

    def pick(self, k: int, seq):
        """An element of ``seq`` chosen by slot ``k``."""
        return seq[min(int(self.r[k] * len(seq)), len(seq) - 1)]


@dataclass(frozen=True)
class _Identity:
    """One face's drawn parameters, shared by the part functions (``_draw_*``).

    Coordinates are normalised (x right, y down) before the pose transform ``A``; ``x`` offsets are usually
    multiplied by a side ``sgn`` (-1 left, +1 right). Part-specific choices (clothes colour, hat style, …) are
    not here: each part reads its own slots from ``slots``.
    """

    a: dict[str, bool]  # the 40 attributes as rendered
    slots: _Slots
    size: int  # S, the image side in pixels
    male: bool
    young: bool
    attractive: bool
    # face outline: a superellipse below the centre line, an ellipse above
    cx: float  # face centre
    cy: float
    W: float  # half-width
    H: float  # half-height
    ne: float  # superellipse exponent of the jaw (squareness)
    taper: float  # chin taper
    outline: np.ndarray  # (48, 2) closed outline
    top: float  # y of the crown
    chin: float  # y of the chin
    # features: y of the eye line / nose tip / mouth line, and sizes
    ye: float
    ex: float  # eye centre offset from cx
    ew: float  # eye half-width
    eh: float  # eye half-height (upper lid)
    tilt: float  # eye tilt (outer corner higher)
    yn: float
    nw: float  # nose half-width
    ym: float
    mw: float  # mouth half-width
    ut: float  # upper lip thickness
    lt: float  # lower lip thickness
    brow_y: float
    brow_thick: float
    neck_w: float  # neck half-width
    # asymmetry (unattractive): one eye / brow lower (lower, so a fringe never hides it), tilted mouth, blemishes
    asym_side: float
    asym: float
    # mouth shape
    mouth_tilt: float  # radians
    smile: float  # corner lift
    gap: float  # opening between the lips (0: closed)
    # colours (RGB float arrays)
    skin: np.ndarray
    dark_skin: np.ndarray
    hair_kind: str  # "black", "blond", "brown", "gray" or "other"
    hair_col: np.ndarray
    hair_dark: np.ndarray
    hair_light: np.ndarray
    brow_col: np.ndarray
    beard_col: np.ndarray
    # hair and beard
    length: str  # "short", "medium" or "long"
    vol: float  # hair volume over the skull
    part: float  # parting, -0.5 (left) to 0.5 (right)
    hair_bottom: float  # y where the hair ends at the sides
    hairline_y: float  # y of the hairline at the centre
    hairline: np.ndarray  # (13, 2) hairline, left to right
    full_beard: bool
    # pose and light
    A: np.ndarray  # (2, 3) pose transform (rotation, scale, shift)
    light: tuple[float, float]  # light direction
    lside: float  # -1 / +1: the lit side

    @property
    def hair_w(self) -> float:
        """Half-width of the hair mass."""
        return self.W * 1.08 + self.vol

    @property
    def collar_y(self) -> float:
        """y where the neck meets the clothes."""
        return min(self.chin + 0.11, 0.9)

    def drop(self, sgn: float) -> float:
        """Vertical offset of the eye / brow / lens on side ``sgn``."""
        return self.asym if sgn == self.asym_side else 0.0

    def face_x(self, y: float) -> float:
        """Half-width of the outline at height ``y`` (approximate, lower half)."""
        cy, W, H, ne, taper = self.cy, self.W, self.H, self.ne, self.taper
        yy = np.clip((y - cy) / H, 0, 1)
        return W * (1 - yy ** (ne / 2)) ** (1 / ne) * (1 - taper * yy**2) if y > cy else W

    def rot(self, p: np.ndarray) -> np.ndarray:
        """Tilt mouth-area points ``p`` (N, 2) by ``mouth_tilt`` about the mouth centre."""
        cx, ym, mt = self.cx, self.ym, self.mouth_tilt
        d = p - (cx, ym)
        return np.stack(
            [d[:, 0] * np.cos(mt) - d[:, 1] * np.sin(mt), d[:, 0] * np.sin(mt) + d[:, 1] * np.cos(mt)], 1
        ) + (cx, ym)


def _identity(a: dict[str, bool], rng: np.random.Generator, S: int) -> _Identity:
    """Draw the shared parameters of one face from the identity stream ``rng`` (104 slots)."""
    slots = _Slots(rng.random(104).tolist())
    u, pick = slots.u, slots.pick
    male, young, attractive = a["Male"], a["Young"], a["Attractive"]
    cx, cy = 0.5, 0.47
    W = u(0, 0.195, 0.225) * (1.03 if male else 0.96)
    H = u(1, 0.265, 0.295)
    ne = (2.7 if male else 2.25) + u(2, -0.2, 0.25)  # superellipse exponent of the jaw (squareness)
    taper = (0.12 if male else 0.26) + u(3, -0.05, 0.06)
    if a["Oval_Face"]:
        W *= 0.9
        H = max(H, W * 1.5)
        ne, taper = 2.0, 0.34
    else:
        H = min(H, W * 1.25)
        ne = max(ne, 2.5)
    if a["Chubby"]:
        W *= 1.2
        ne += 0.4
        taper -= 0.08
    tone = _SKIN[min(int(u(4) * 8), 7)] + u(5, -8, 8)
    if a["Pale_Skin"]:
        tone = _mix(tone, _PALE, 0.62)
    skin = tone
    dark_skin = skin * 0.62
    hair_kind = (
        "black"
        if a["Black_Hair"]
        else "blond"
        if a["Blond_Hair"]
        else "brown"
        if a["Brown_Hair"]
        else "gray"
        if a["Gray_Hair"]
        else "other"
    )
    hair_col = np.array(pick(6, _HAIR[hair_kind]), np.float64) + u(7, -10, 10)
    hair_dark = hair_col * 0.6
    hair_light = _mix(hair_col, (255, 250, 235), 0.35 if hair_kind != "black" else 0.22)
    brow_col = _mix(hair_col, (25, 20, 20), 0.45 if hair_kind in ("blond", "gray") else 0.25)
    length = (
        pick(8, ["short"] * 6 + ["medium"] * 2 + ["long"])
        if male
        else pick(9, ["long"] * 6 + ["medium"] * 3 + ["short"])
    )
    vol = u(10, 0.015, 0.05)
    part = u(11, -0.5, 0.5)
    asym_side = pick(12, [-1.0, 1.0])
    asym = 0.0 if attractive else u(13, 0.026, 0.034)
    ye = cy - 0.02 + u(14, -0.01, 0.01)
    ex = W * u(15, 0.41, 0.47)
    ew = u(16, 0.042, 0.05) * W / 0.21 * (1.05 if not male else 1.0)
    eh = u(17, 0.021, 0.026) * (0.35 if a["Narrow_Eyes"] else 1.0)
    tilt = u(18, -0.004, 0.007)
    yn = cy + u(19, 0.085, 0.1) * (1.25 if a["Big_Nose"] else 1.0)
    nw = u(20, 0.03, 0.038) * (1.7 if a["Big_Nose"] else 1.0)
    ym = cy + u(21, 0.155, 0.17) + (0.012 if a["Big_Nose"] else 0.0)
    mw = u(22, 0.068, 0.08) * (1.22 if a["Smiling"] else 1.0)
    ut = u(23, 0.011, 0.014) * (2.0 if a["Big_Lips"] else 1.0) * (1.0 if male else 1.2)
    lt = u(24, 0.014, 0.018) * (2.0 if a["Big_Lips"] else 1.0) * (1.0 if male else 1.2)
    chin = cy + H
    # pose and light
    ang = np.deg2rad(u(25, -7, 7))
    sc = u(26, 1.04, 1.16)
    ca, sa = np.cos(ang) * sc, np.sin(ang) * sc
    tx, ty = u(27, -0.03, 0.03), u(28, -0.03, 0.03)
    A = np.array([[ca, -sa, cx - ca * cx + sa * cy + tx], [sa, ca, cy - sa * cx - ca * cy + ty]])
    la = u(29, -2.6, -0.5)
    light = (np.cos(la), np.sin(la))
    lside = -1.0 if light[0] < 0 else 1.0
    # face outline
    th = np.linspace(-np.pi, np.pi, 48, endpoint=False)
    c, s = np.cos(th), np.sin(th)
    lower = s > 0
    pe = 2.0 / ne
    xs = np.where(lower, np.sign(c) * np.abs(c) ** pe, c)
    ysn = np.where(lower, np.abs(s) ** pe, s)
    xs = xs * np.where(lower, 1 - taper * ysn**2, 1.0)
    outline = _xy(cx + W * xs, cy + np.where(lower, H, H * 0.95) * ysn)
    top = cy - H * 0.95
    hair_bottom = {"short": ye - 0.03, "medium": ym + 0.02, "long": 1.0}[length]
    neck_w = W * (0.5 if not male else 0.58) * (1.2 if a["Chubby"] or a["Double_Chin"] else 1.0)
    beard_col = hair_dark * 1.1 if hair_kind != "blond" else hair_col * 0.8
    full_beard = not a["No_Beard"] and ((not a["Mustache"] and not a["Goatee"]) or u(50) < 0.3)
    brow_thick = (0.013 if male else 0.009) * (2.4 if a["Bushy_Eyebrows"] else 1.0)
    brow_y = ye - (0.05 if male else 0.058) - (eh if not a["Narrow_Eyes"] else eh / 0.35) * 0.3
    mouth_tilt = np.deg2rad(0.0 if attractive else -9.0 * asym_side)
    smile = 0.03 if a["Smiling"] else -0.003
    # open mouth: at least ~2.5 px so the interior survives rasterisation at small sizes
    gap = max(0.026 if a["Smiling"] else 0.02, 2.5 / S) if a["Mouth_Slightly_Open"] else 0.0
    hairline_y = top + u(55, 0.06, 0.075)
    hx = np.linspace(-1.0, 1.0, 13)
    hline_y = hairline_y + (ye - 0.045 - hairline_y) * np.abs(hx) ** 3 + 0.01 * part * hx
    if a["Receding_Hairline"]:
        hline_y = hline_y - 0.075 * np.exp(-(((np.abs(hx) - 0.55) / 0.25) ** 2))
    hairline = _xy(cx + hx * W * 1.0, hline_y)
    return _Identity(
        a=a, slots=slots, size=S, male=male, young=young, attractive=attractive,
        cx=cx, cy=cy, W=W, H=H, ne=ne, taper=taper, outline=outline, top=top, chin=chin,
        ye=ye, ex=ex, ew=ew, eh=eh, tilt=tilt, yn=yn, nw=nw, ym=ym, mw=mw, ut=ut, lt=lt,
        brow_y=brow_y, brow_thick=brow_thick, neck_w=neck_w, asym_side=asym_side, asym=asym,
        mouth_tilt=mouth_tilt, smile=smile, gap=gap,
        skin=skin, dark_skin=dark_skin, hair_kind=hair_kind, hair_col=hair_col, hair_dark=hair_dark,
        hair_light=hair_light, brow_col=brow_col, beard_col=beard_col,
        length=length, vol=vol, part=part, hair_bottom=hair_bottom, hairline_y=hairline_y, hairline=hairline,
        full_beard=full_beard, A=A, light=light, lside=lside,
    )  # fmt: skip


def _background(f: _Identity) -> np.ndarray:
    """The background: a linear gradient between two colours, (S, S, 3) uint8."""
    u, S = f.slots.u, f.size
    h1 = u(30, 0, 180)
    c1 = cv2.cvtColor(np.uint8([[[h1, u(31, 40, 140), u(32, 150, 235)]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    c2 = c1 * u(33, 0.55, 0.85)
    gd = u(34, 0, 6.283)
    # linear gradient: a 2x2 corner image resized bilinearly (exactly linear in between, and cheap)
    tc = np.clip(0.5 + np.array([[-0.5, 0.5], [-0.5, 0.5]]) * np.cos(gd) + np.array([[-0.5], [0.5]]) * np.sin(gd), 0, 1)
    corners = (c1[None, None] * (1 - tc[..., None]) + c2[None, None] * tc[..., None]).astype(np.float32)
    return cv2.resize(corners, (S, S), interpolation=cv2.INTER_LINEAR).astype(np.uint8)


def _draw_back_hair(cv: _Canvas, f: _Identity) -> None:
    """The hair mass behind everything (wavy outline for Wavy_Hair), or only a fringe over the ears if Bald."""
    cx, cy, W, H, ye, vol, length, hair_col = f.cx, f.cy, f.W, f.H, f.ye, f.vol, f.length, f.hair_col
    C = _C
    if f.a["Bald"]:
        for sgn in (-1, 1):
            xo = cx + sgn * W
            fr = np.array(
                [
                    [xo - sgn * 0.02, ye - 0.07],
                    [xo + sgn * 0.022, ye - 0.06],
                    [xo + sgn * 0.028, ye + 0.02],
                    [xo - sgn * 0.01, ye + 0.05],
                ]
            )
            cv.fill(fr, hair_col, C["hair"], "hair_fringe")
    else:
        hw = f.hair_w
        n = 40
        tt = np.linspace(np.pi, 2 * np.pi, n)  # upper arc, left to right
        cap = _xy(cx + hw * np.cos(tt), cy - 0.02 + (H * 0.95 + vol + 0.02 - 0.02) * np.sin(tt))
        sides_w = hw if length == "short" else hw + (0.03 if length == "long" else 0.015)
        yb = f.hair_bottom
        right = np.array([[cx + sides_w, cy], [cx + sides_w * 0.98, yb]]) if yb > cy else np.zeros((0, 2))
        left = np.array([[cx - sides_w * 0.98, yb], [cx - sides_w, cy]]) if yb > cy else np.zeros((0, 2))
        mass = np.concatenate([cap, right, left]) if yb > cy else cap
        if length != "short":
            # inner edge so the neck/face gap shows background: hair parts at the shoulders
            bottom = np.array([[cx + W * 0.75, yb], [cx - W * 0.75, yb]])
            mass = np.concatenate([cap, right, bottom[:1], bottom[1:], left])
        if f.a["Wavy_Hair"]:
            d = mass - mass.mean(0)
            d /= np.hypot(d[:, 0], d[:, 1])[:, None] + 1e-9
            # resample along the path so the waves are regular
            seg = np.hypot(*np.diff(mass, axis=0).T)
            cum = np.concatenate([[0], np.cumsum(seg)])
            m = int(cum[-1] / 0.008) + 2
            q = np.linspace(0, cum[-1], m)
            mass = _xy(np.interp(q, cum, mass[:, 0]), np.interp(q, cum, mass[:, 1]))
            d = _xy(np.interp(q, cum, d[:, 0]), np.interp(q, cum, d[:, 1]))
            amp, per = 0.014, 0.09
            mass = mass + d * (amp * np.sin(q / per * 2 * np.pi + f.slots.u(35, 0, 6)))[:, None]
        cv.fill(mass, hair_col, C["hair"], "hair")


def _draw_neck_and_shoulders(cv: _Canvas, f: _Identity) -> None:
    """The neck and the clothed shoulders (random colour, sometimes a V neck)."""
    u, pick = f.slots.u, f.slots.pick
    cx, neck_w, ny1, C = f.cx, f.neck_w, f.collar_y, _C
    ny0 = f.chin - 0.1
    neck = np.array(
        [[cx - neck_w, ny0], [cx + neck_w, ny0], [cx + neck_w * 1.05, ny1 + 0.02], [cx - neck_w * 1.05, ny1 + 0.02]]
    )
    cv.fill(neck, f.skin * 0.9, C["neck"], "neck")
    cloth_col = cv2.cvtColor(np.uint8([[[u(36, 0, 180), u(37, 30, 220), u(38, 50, 220)]]]), cv2.COLOR_HSV2RGB)[0, 0]
    sh = u(39, 0.36, 0.44) * (1.1 if f.male else 1.0)
    vdepth = pick(40, [0.0, 0.0, 0.05])
    shoulders = np.array(
        [
            [cx - sh - 0.1, 1.1],
            [cx - sh, ny1 + 0.03],
            [cx - sh * 0.6, ny1 - 0.01],
            [cx - neck_w * 1.1, ny1],
            [cx, ny1 + 0.02 + vdepth],
            [cx + neck_w * 1.1, ny1],
            [cx + sh * 0.6, ny1 - 0.01],
            [cx + sh, ny1 + 0.03],
            [cx + sh + 0.1, 1.1],
        ]
    )
    cv.fill(shoulders, cloth_col, C["cloth"], "shoulders")


def _draw_necktie(cv: _Canvas, f: _Identity) -> None:
    """Wearing_Necktie: a shirt collar and a tie (metallic or a random saturated colour)."""
    u, pick = f.slots.u, f.slots.pick
    cx, neck_w, ny1, C = f.cx, f.neck_w, f.collar_y, _C
    shirt = _mix(pick(41, [(245, 245, 245), (200, 220, 245), (240, 235, 220)]), (0, 0, 0), 0.0)
    for sgn in (-1, 1):
        col = np.array(
            [[cx, ny1 + 0.05], [cx + sgn * neck_w * 1.2, ny1 - 0.025], [cx + sgn * neck_w * 1.5, ny1 + 0.06]]
        )
        cv.fill(col, shirt, C["cloth"], "collar")
    tie_col = (
        _METAL[3:5][int(u(42) * 2)]
        if u(43) < 0.3
        else cv2.cvtColor(np.uint8([[[u(44, 0, 180), 220, u(45, 90, 200)]]]), cv2.COLOR_HSV2RGB)[0, 0]
    )
    knot = np.array(
        [[cx - 0.03, ny1 - 0.01], [cx + 0.03, ny1 - 0.01], [cx + 0.02, ny1 + 0.04], [cx - 0.02, ny1 + 0.04]]
    )
    blade = np.array([[cx - 0.02, ny1 + 0.04], [cx + 0.02, ny1 + 0.04], [cx + 0.045, 1.05], [cx - 0.045, 1.05]])
    cv.fill(blade, tie_col, C["cloth"], "necktie")
    cv.fill(knot, np.asarray(tie_col) * 0.8, C["cloth"], "necktie")
    cv.line(np.array([[cx - 0.02, 0.95], [cx + 0.025, 0.92]]), np.asarray(tie_col) * 0.6, 0.008)


def _draw_necklace(cv: _Canvas, f: _Identity) -> None:
    """Wearing_Necklace: a gold / silver / pearl chain across the neck with a pendant."""
    cx, neck_w, ny1, C = f.cx, f.neck_w, f.collar_y, _C
    nc = _METAL[int(f.slots.u(46) * 3)]
    tt = _T[16]
    yy = ny1 - 0.035 + 0.045 * np.sin(tt * np.pi)
    chain = _xy(cx - neck_w * 1.05 + 2.1 * neck_w * tt, yy)
    cv.line(chain, nc, 0.016, C["neck_l"], "necklace")
    cv.fill(_ell(cx, ny1 + 0.022, 0.016, 0.02, 12), nc, C["neck_l"], "necklace")
    cv.fill(_ell(cx - 0.005, ny1 + 0.017, 0.005, 0.006, 12), _mix(nc, (255, 255, 255), 0.6))


def _draw_ears(cv: _Canvas, f: _Identity) -> None:
    """Both ears, with an inner fold line."""
    C = _C
    for sgn, cls, kind in ((-1, C["l_ear"], "ear_l"), (1, C["r_ear"], "ear_r")):
        ecx = f.cx + sgn * (f.W * 0.97 + 0.012)
        ear = _ell(ecx, f.ye + 0.025, 0.026, 0.05, 16)
        cv.fill(ear, f.skin * 0.93, cls, kind)
        cv.line(_ell(ecx + sgn * 0.004, f.ye + 0.02, 0.012, 0.03, 12)[[10, 11, 0, 1, 2, 3, 4, 5]], f.dark_skin, 0.008)


def _draw_face(cv: _Canvas, f: _Identity) -> None:
    """The face (skin) inside its outline, over a second fold and crease if Double_Chin."""
    cx, chin, skin, C = f.cx, f.chin, f.skin, _C
    if f.a["Double_Chin"]:
        dc = np.stack(
            [cx + f.face_x(chin - 0.06) * 0.85 * np.cos(_T[12] * np.pi), chin - 0.05 + 0.085 * np.sin(_T[12] * np.pi)],
            1,
        )
        cv.fill(dc, skin * 0.95, C["skin"])
        dc_line = dc[1:-1]
    cv.fill(f.outline, skin, C["skin"], "face", 0.008)
    if f.a["Double_Chin"]:
        cv.line(dc_line, _mix(skin, (40, 20, 10), 0.45), 0.011, kind="chin")
        cv.line(dc_line[2:-2] - (0, 0.045), _mix(skin, (40, 20, 10), 0.3), 0.008)


def _stubble_area(f: _Identity) -> np.ndarray:
    """5_o_Clock_Shadow: the jaw, chin and upper-lip polygon the stubble covers."""
    cx, yn, nw, chin, face_x = f.cx, f.yn, f.nw, f.chin, f.face_x
    return np.array(
        [
            [cx - face_x(yn) * 0.98, yn - 0.01],
            [cx - nw * 1.3, yn + 0.005],
            [cx + nw * 1.3, yn + 0.005],
            [cx + face_x(yn) * 0.98, yn - 0.01],
            [cx + face_x(chin - 0.05), chin - 0.05],
            [cx, chin + 0.01],
            [cx - face_x(chin - 0.05), chin - 0.05],
        ]
    )


def _tint_skin(cv: _Canvas, f: _Identity) -> None:
    """Soft paint (blurred and blended by :func:`_blend_tint`): shading, blush, stubble, hollows, contour."""
    a, cx, cy, W, H, top, chin = f.a, f.cx, f.cy, f.W, f.H, f.top, f.chin
    ye, ex, ew, eh, yn, nw, ym = f.ye, f.ex, f.ew, f.eh, f.yn, f.nw, f.ym
    lside, neck_w, face_x = f.lside, f.neck_w, f.face_x
    cv.tint(_ell(cx - lside * W * 0.75, cy + 0.05, W * 0.35, H * 0.8, 16), (-22, -24, -20))  # shadow side
    cv.tint(_ell(cx + lside * 0.02, top + 0.09, 0.07, 0.035, 12), (22, 22, 20))  # forehead highlight
    cv.tint(
        np.array(
            [
                [cx - neck_w, chin - 0.02],
                [cx + neck_w, chin - 0.02],
                [cx + neck_w, chin + 0.04],
                [cx - neck_w, chin + 0.04],
            ]
        ),
        (-45, -45, -38),
    )  # under-chin shadow
    if a["Double_Chin"]:
        cv.tint(_ell(cx, chin + 0.03, face_x(chin - 0.06) * 0.7, 0.012, 12), (-55, -55, -45))
    if a["5_o_Clock_Shadow"]:
        cv.tint(_stubble_area(f), (-60, -52, -36))
    if a["Rosy_Cheeks"]:
        for sgn in (-1, 1):
            cv.tint(_ell(cx + sgn * W * 0.55, ym - 0.045, 0.045, 0.035, 16), (45, -45, -35))
    if a["Chubby"]:  # puffy cheeks: a round highlight low on each cheek and a shadowed jowl line
        for sgn in (-1, 1):
            cv.tint(_ell(cx + sgn * W * 0.58, ym - 0.02, 0.06, 0.05, 16), (30, 26, 22))
            cv.tint(_ell(cx + sgn * W * 0.7, ym + 0.05, 0.05, 0.015, 12), (-45, -45, -38))
    if a["High_Cheekbones"]:
        for sgn in (-1, 1):
            cv.tint(_ell(cx + sgn * W * 0.6, ye + 0.05, 0.04, 0.018, 12), (42, 40, 36))
            hol = np.array(
                [
                    [cx + sgn * W * 0.92, ye + 0.07],
                    [cx + sgn * W * 0.5, ym - 0.03],
                    [cx + sgn * W * 0.55, ym - 0.005],
                    [cx + sgn * W * 0.95, ye + 0.1],
                ]
            )
            cv.tint(hol, (-60, -58, -50))
            cv.stroke("cheekbone", hol[:2], width=0.004)
    if a["Heavy_Makeup"]:
        for sgn in (-1, 1):
            st = np.array(
                [
                    [cx + sgn * W * 0.85, ye + 0.045],
                    [cx + sgn * W * 0.45, ye + 0.085],
                    [cx + sgn * W * 0.45, ye + 0.11],
                    [cx + sgn * W * 0.85, ye + 0.075],
                ]
            )
            cv.tint(st, (40, -10, 5))
    if a["Bags_Under_Eyes"]:
        for sgn in (-1, 1):
            cv.tint(_ell(cx + sgn * ex, ye + eh * 0.8 + 0.016, ew * 0.9, 0.014, 12), (-80, -90, -50))
    # nose side shadow
    cv.tint(
        np.array(
            [
                [cx - lside * 0.012, ye + 0.01],
                [cx - lside * nw * 0.9, yn - 0.01],
                [cx - lside * nw * 0.3, yn],
                [cx - lside * 0.002, ye + 0.01],
            ]
        ),
        (-30, -32, -28),
    )


def _blend_tint(cv: _Canvas, f: _Identity, rng: np.random.Generator) -> None:
    """Blur the soft paint and add it over the skin-like classes; stubble dots (the only draws from ``rng``
    after the slots, so this must stay the only part that uses it)."""
    S = f.size
    soft = cv2.GaussianBlur(cv.soft, (0, 0), 0.015 * cv.s2)
    soft = cv2.resize(soft, (S, S), interpolation=cv2.INTER_LINEAR)
    region = _SOFT_LUT[cv.mask]
    img = cv.img.astype(np.float32)
    img += soft * region[..., None]
    region = region > 0
    if f.a["5_o_Clock_Shadow"]:
        # stipple: dark dots in the jaw region (vectorised)
        m = np.zeros((S, S), np.uint8)
        cv2.fillPoly(m, [cv._fx(_stubble_area(f))[1]], 1, cv2.LINE_8, 4)
        ys, xs = np.nonzero(m & region)
        if len(ys):
            sel = rng.random(len(ys)) < 0.3
            img[ys[sel], xs[sel]] *= 0.6
    cv.img = np.clip(img, 0, 255).astype(np.uint8)


def _draw_wrinkles(cv: _Canvas, f: _Identity) -> None:
    """Not Young: forehead lines, nasolabial folds, mouth-corner lines and crow's feet."""
    cx, W, ye, ex, ew, yn, nw, ym, mw, chin = f.cx, f.W, f.ye, f.ex, f.ew, f.yn, f.nw, f.ym, f.mw, f.chin
    wl = 0.012
    fl = []
    for k in range(3):
        yy = ye - 0.085 - 0.022 * k
        xx = cx + np.linspace(-0.35, 0.35, 8) * W * 2 * (0.9 - 0.1 * k)
        fl.append(_xy(xx, yy + 0.01 * np.cos((xx - cx) / W * 2.5)))
    for sgn in (-1, 1):
        x0 = cx + sgn * nw * 1.15
        fl.append(np.array([[x0, yn - 0.012], [x0 + sgn * 0.02, ym - 0.01], [cx + sgn * (mw + 0.014), ym + 0.015]]))
        fl.append(np.array([[cx + sgn * (mw + 0.004), ym + 0.018], [cx + sgn * (mw + 0.0), chin - 0.04]]))
        for k in (-1, 0, 1):
            fl.append(
                np.array(
                    [[cx + sgn * (ex + ew + 0.006), ye + 0.008 * k], [cx + sgn * (ex + ew + 0.03), ye + 0.018 * k]]
                )
            )
    cv.lines(fl, _mix(f.skin, (40, 20, 10), 0.5), wl)
    for p in fl:
        cv.stroke("wrinkle", p, width=0.005)


def _draw_blemishes(cv: _Canvas, f: _Identity) -> None:
    """Not Attractive: 4-7 dark red blemishes, kept off the eyes."""
    u, cx, W, ye, ex, ew, chin = f.slots.u, f.cx, f.W, f.ye, f.ex, f.ew, f.chin
    for j in range(4 + int(u(47) * 4)):
        bx = cx + u(70 + j, -0.8, 0.8) * W
        by = u(80 + j, ye - 0.09, chin - 0.06)
        if abs(by - ye) < 0.03 and abs(abs(bx - cx) - ex) < ew:
            by += 0.05
        r = u(90 + j, 0.014, 0.019)
        cv.fill(_ell(bx, by, r, r, 12), _mix(f.skin, (110, 25, 15), 0.7))


def _draw_beard(cv: _Canvas, f: _Identity) -> None:
    """A full beard along the jaw (``full_beard``), leaving the mouth and cheeks free, with hatching."""
    cx, W, ye, ym, mw, lt, chin, face_x, beard_col = f.cx, f.W, f.ye, f.ym, f.mw, f.lt, f.chin, f.face_x, f.beard_col
    ys_ = np.linspace(ye + 0.07, chin, 9)
    outer_r = np.array([[cx + face_x(y) + 0.008, y] for y in ys_])
    outer = np.concatenate([outer_r, [[cx, chin + 0.03]], (outer_r * (-1, 1) + (2 * cx, 0))[::-1]])
    inner = np.array(
        [
            [cx - face_x(ye + 0.07) * 0.85, ye + 0.07],
            [cx - W * 0.5, ym - 0.02],
            [cx - mw * 1.1, ym + 0.03],
            [cx, ym + lt + 0.02],
            [cx + mw * 1.1, ym + 0.03],
            [cx + W * 0.5, ym - 0.02],
            [cx + face_x(ye + 0.07) * 0.85, ye + 0.07],
        ]
    )
    beard = np.concatenate([outer, inner[::-1]])
    cv.fill(beard, beard_col, _C["skin"], "beard")
    hatch = [np.array([[x, y], [x + 0.004, y + 0.02]]) for x, y in outer[1:-1:2] * (0.96, 0.985) + (cx * 0.04, 0)]
    cv.lines(hatch, beard_col * 0.6, 0.006)


def _draw_sideburns(cv: _Canvas, f: _Identity) -> None:
    """Sideburns: a strip of hair down each side of the face in front of the ear."""
    cx, ye, face_x = f.cx, f.ye, f.face_x
    for sgn in (-1, 1):
        xe = cx + sgn * face_x(ye)
        sb = np.array(
            [
                [xe + sgn * 0.01, ye - 0.06],
                [xe - sgn * 0.04, ye - 0.06],
                [xe - sgn * 0.036, ye + 0.08],
                [cx + sgn * face_x(ye + 0.08), ye + 0.08],
            ]
        )
        cv.fill(sb, f.beard_col, _C["hair"], "sideburn")


def _draw_eyes(cv: _Canvas, f: _Identity) -> None:
    """Both eyes: white, iris, pupil and glint, lash line (eyelashes unless Male), eye shadow and eyeliner
    (Heavy_Makeup), crease lines (Bags_Under_Eyes)."""
    u, a, cx, ye, ex, ew, eh, tilt = f.slots.u, f.a, f.cx, f.ye, f.ex, f.ew, f.eh, f.tilt
    male, skin, light, C = f.male, f.skin, f.light, _C
    iris_col = _IRIS[int(u(51) * len(_IRIS))]
    xq = np.linspace(-1, 1, 12)
    up_prof = (1 - xq**2) ** 0.75
    lo_prof = (1 - xq**2) ** 0.9
    for sgn, cls, side in ((-1, C["l_eye"], "l"), (1, C["r_eye"], "r")):
        ecx = cx + sgn * ex
        ecy = ye + f.drop(sgn)
        xs_ = ecx + xq * ew
        tl = tilt * xq * sgn  # outer corner higher
        upper = _xy(xs_, ecy - eh * up_prof - tl)
        lower = _xy(xs_, ecy + eh * 0.8 * lo_prof - tl)
        eye = np.concatenate([upper, lower[::-1][1:-1]])
        if a["Heavy_Makeup"]:
            shadow_c = _mix(skin, _SHADOW[int(u(52) * len(_SHADOW))], 0.7)
            lid = np.concatenate([upper, _xy(xs_[::-1] * 1.0 + sgn * 0.004, ecy - eh - 0.03 + 0.012 * xq**2)])
            cv.fill(lid, shadow_c)
        cv.fill(eye, (245, 243, 238), cls, f"eye_{side}")
        ir = 0.021 * ew / 0.046
        icx = ecx + u(53, -0.1, 0.1) * ew * 0.3
        circ = _ell(icx, ecy, ir, ir, 16)
        top_y = np.interp(circ[:, 0], xs_, upper[:, 1])
        bot_y = np.interp(circ[:, 0], xs_, lower[:, 1])
        iris = _xy(circ[:, 0], np.clip(circ[:, 1], top_y, bot_y))
        cv.fill(iris, iris_col, cls)
        cv.strokes.append(Stroke(f"iris_{side}", cv._fx(circ)[0].astype(np.float32), True, 0.004))
        pup = _ell(icx, ecy, ir * 0.45, min(ir * 0.45, eh * 0.8), 12)
        cv.fill(pup, (15, 12, 12), cls)
        cv.fill(
            _ell(icx + light[0] * ir * 0.4, ecy + light[1] * ir * 0.4, ir * 0.22, min(ir * 0.22, eh * 0.5), 12),
            (255, 255, 255),
        )
        lash_w = 0.011 if not male else 0.008
        if a["Heavy_Makeup"]:
            lash_w = 0.016
            wing = np.array([upper[-1] if sgn > 0 else upper[0], [ecx + sgn * (ew + 0.018), ecy - eh - 0.012 - tilt]])
            cv.line(wing, (10, 8, 10), 0.01)
        cv.line(upper, (30, 20, 20), lash_w)
        cv.line(lower[2:-2], _mix(skin, (40, 20, 20), 0.45), 0.005)
        if not male:
            o = upper[-1] if sgn > 0 else upper[0]
            cv.lines(
                [
                    np.array([o, o + (sgn * 0.012, -0.008)]),
                    np.array([o - (sgn * 0.01, 0.003), o + (sgn * 0.006, -0.014)]),
                ],
                (25, 15, 15),
                0.006,
            )
        if a["Bags_Under_Eyes"]:
            bag = _xy(xs_[2:-2], ecy + eh * 0.8 * lo_prof[2:-2] + 0.016 - tl[2:-2])
            cv.line(bag, _mix(skin, (50, 20, 40), 0.6), 0.009, kind="bags")


def _draw_brows(cv: _Canvas, f: _Identity) -> None:
    """Both brows: nearly flat or arched (Arched_Eyebrows), thin or thick and ragged (Bushy_Eyebrows)."""
    a, cx, ex, ew, bt, yb, C = f.a, f.cx, f.ex, f.ew, f.brow_thick, f.brow_y, _C
    arch = 0.036 if a["Arched_Eyebrows"] else 0.004
    tb = _T[10]
    for sgn, cls, side in ((-1, C["l_brow"], "l"), (1, C["r_brow"], "r")):
        x_in, x_out = cx + sgn * (ex - ew * 0.95), cx + sgn * (ex + ew * 1.25)
        peak = np.where(
            tb < 0.65,
            np.sin(tb / 0.65 * np.pi / 2) ** (1.3 if a["Arched_Eyebrows"] else 1),
            1 - (tb - 0.65) / 0.35 * 0.9,
        )
        by = yb + 1.2 * f.drop(sgn) - arch * peak
        bx = x_in + (x_out - x_in) * tb
        thick = bt * (1.0 - 0.55 * tb)
        top_ = _xy(bx, by - thick * 0.6)
        bot_ = _xy(bx, by + thick * 0.6)
        if a["Bushy_Eyebrows"]:
            top_[1::2, 1] -= 0.006
        cv.fill(np.concatenate([top_, bot_[::-1]]), f.brow_col, cls)
        cv.stroke(f"brow_{side}", _xy(bx, by), width=float(bt))


def _draw_nose(cv: _Canvas, f: _Identity) -> None:
    """The nose: bridge, shaded side, wings and nostrils (bigger for Big_Nose), a V tip (Pointy_Nose) or a bulb."""
    a, cx, ye, yn, nw, skin, lside, C = f.a, f.cx, f.ye, f.yn, f.nw, f.skin, f.lside, _C
    ncx = cx + (0.006 if not f.attractive else 0.0)
    bridge = np.array(
        [
            [ncx - 0.012, ye + 0.005],
            [ncx + 0.012, ye + 0.005],
            [ncx + nw * 0.75, yn - 0.02],
            [ncx + nw, yn - 0.002],
            [ncx + nw * 0.6, yn + 0.012],
            [ncx - nw * 0.6, yn + 0.012],
            [ncx - nw, yn - 0.002],
            [ncx - nw * 0.75, yn - 0.02],
        ]
    )
    cv.fill(bridge, _mix(skin, (255, 255, 255), 0.03), C["nose"])
    side_line = np.array([[ncx - lside * 0.01, ye + 0.01], [ncx - lside * nw * 0.55, yn - 0.022]])
    cv.line(side_line, _mix(skin, (60, 30, 20), 0.25), 0.006)
    wings = []
    for sgn in (-1, 1):
        wings.append(
            np.array(
                [
                    [ncx + sgn * nw * 0.7, yn - 0.022],
                    [ncx + sgn * nw, yn - 0.006],
                    [ncx + sgn * nw * 0.85, yn + 0.008],
                    [ncx + sgn * nw * 0.45, yn + 0.008],
                ]
            )
        )
        nr = nw * (0.3 if a["Big_Nose"] else 0.24)
        cv.fill(_ell(ncx + sgn * nw * 0.42, yn + 0.003, nr, nr * 0.55, 12), _mix(skin, (20, 5, 5), 0.75))
    cv.lines(wings, _mix(skin, (50, 20, 10), 0.55), 0.009)
    if a["Pointy_Nose"]:
        tip = np.array([[ncx - nw * 0.4, yn - 0.016], [ncx, yn + 0.014], [ncx + nw * 0.4, yn - 0.016]])
        cv.line(tip, _mix(skin, (40, 15, 10), 0.65), 0.01)
        cv.line(np.array([[ncx, ye + 0.02], [ncx, yn - 0.004]]), _mix(skin, (255, 255, 255), 0.55), 0.009)
        cv.fill(
            np.array([[ncx - 0.008, yn - 0.016], [ncx + 0.008, yn - 0.016], [ncx, yn + 0.004]]),
            _mix(skin, (255, 255, 255), 0.7),
        )
    else:
        cv.fill(_ell(ncx, yn - 0.006, nw * 0.38, nw * 0.3, 12), _mix(skin, (255, 255, 255), 0.12))
        cv.line(_ell(ncx, yn - 0.006, nw * 0.42, nw * 0.34, 24)[1:12], _mix(skin, (40, 15, 10), 0.5), 0.008)
    cv.stroke("nose", np.concatenate([wings[0][::-1], wings[1]]), width=0.006)
    cv.stroke("nose", side_line, width=0.005)


def _lip_edges(f: _Identity) -> tuple[np.ndarray, ...]:
    """x (12,) and the four lip edges' y (upper lip top / bottom, lower lip top / bottom) before ``f.rot``."""
    cx, ym, mw, ut, lt, smile, gap = f.cx, f.ym, f.mw, f.ut, f.lt, f.smile, f.gap
    xm = np.linspace(-1, 1, 12)
    mid = ym - smile * (xm**2) + 0.008 * smile / 0.022 * (1 - xm**2) * 0  # centre line
    bow = 1 - 0.35 * np.exp(-((xm * 6) ** 2))
    up_top = mid - gap / 2 - ut * (1 - xm**2) ** 0.6 * bow - 0.002
    up_bot = mid - gap / 2 * (1 - xm**2) ** 0.5
    lo_top = mid + gap / 2 * (1 - xm**2) ** 0.5
    lo_bot = mid + gap / 2 + lt * (1 - xm**2) ** 0.6 + 0.002
    X_ = cx + xm * mw
    return X_, up_top, up_bot, lo_top, lo_bot


def _mouth_interior(f: _Identity) -> tuple[np.ndarray, np.ndarray | None]:
    """The open mouth's interior polygon and its teeth (None unless Smiling); only when ``f.gap > 0``."""
    X_, _, up_bot, lo_top, _ = _lip_edges(f)
    inner = f.rot(np.concatenate([_xy(X_, up_bot), _xy(X_, lo_top)[::-1]]))
    teeth = None
    if f.a["Smiling"]:
        teeth = f.rot(np.concatenate([_xy(X_[2:-2], up_bot[2:-2]), _xy(X_[2:-2], up_bot[2:-2] + f.gap * 0.45)[::-1]]))
    return inner, teeth


def _draw_mouth(cv: _Canvas, f: _Identity) -> None:
    """The lips (lipstick colour for Wearing_Lipstick), the open interior and teeth, smile creases."""
    a, cx, ym, mw, lt, smile, gap, skin, rot, C = f.a, f.cx, f.ym, f.mw, f.lt, f.smile, f.gap, f.skin, f.rot, _C
    X_, up_top, up_bot, lo_top, lo_bot = _lip_edges(f)
    lip_col = (
        _LIPSTICK[int(f.slots.u(54) * len(_LIPSTICK))]
        if a["Wearing_Lipstick"]
        else _mix(skin, (150, 60, 60), 0.3) * 0.85
    )
    upper_lip = rot(np.concatenate([_xy(X_, up_top), _xy(X_, up_bot)[::-1]]))
    lower_lip = rot(np.concatenate([_xy(X_, lo_top), _xy(X_, lo_bot)[::-1]]))
    cv.fill(upper_lip, np.asarray(lip_col) * 0.9, C["u_lip"], "lip_upper")
    cv.fill(lower_lip, lip_col, C["l_lip"], "lip_lower")
    if gap > 0:
        inner, teeth = _mouth_interior(f)
        cv.fill(inner, (70, 20, 28), C["mouth"], "mouth")
        if teeth is not None:
            cv.fill(teeth, (248, 246, 236), C["mouth"])
    cv.fill(rot(_ell(cx, ym + gap / 2 + lt * 0.45, mw * 0.3, lt * 0.18, 12)), _mix(lip_col, (255, 255, 255), 0.3))
    cv.line(rot(_xy(X_, (up_bot + lo_top) / 2)), np.asarray(lip_col) * 0.45, 0.006, kind="mouth_line")
    if a["Smiling"]:  # dimple creases at the raised corners
        creases = [
            rot(
                np.array(
                    [
                        [cx + sgn * (mw + 0.004), ym - smile - 0.012],
                        [cx + sgn * (mw + 0.014), ym - smile + 0.004],
                        [cx + sgn * (mw + 0.008), ym - smile + 0.016],
                    ]
                )
            )
            for sgn in (-1, 1)
        ]
        cv.lines(creases, _mix(skin, (50, 20, 10), 0.5), 0.008)
        for p in creases:
            cv.stroke("smile_line", p, width=0.005)


def _draw_mustache(cv: _Canvas, f: _Identity) -> None:
    """Mustache: a hair shape over the upper lip (the open mouth redrawn over its droop)."""
    cx, ym, mw, ut, smile, gap, C = f.cx, f.ym, f.mw, f.ut, f.smile, f.gap, _C
    xq2 = np.linspace(-1.15, 1.15, 12)
    base = ym - smile * np.minimum(xq2**2, 1) - gap / 2 - 0.002 * 0
    mtop = base - ut * 0.6 - 0.026 * (1 - 0.45 * xq2**2)
    mbot = base - ut * 0.35 + 0.012 * np.maximum(np.abs(xq2) - 0.7, 0) * 4
    must = f.rot(np.concatenate([_xy(cx + xq2 * mw, mtop), _xy(cx + xq2 * mw, mbot)[::-1]]))
    cv.fill(must, f.beard_col, C["skin"], "mustache")
    if gap > 0:  # the open mouth stays visible under a drooping mustache
        inner, teeth = _mouth_interior(f)
        cv.fill(inner, (70, 20, 28), C["mouth"])
        if teeth is not None:
            cv.fill(teeth, (248, 246, 236), C["mouth"])


def _draw_goatee(cv: _Canvas, f: _Identity) -> None:
    """Goatee: a chin patch below the lower lip, joined to the mouth corners when there is also a Mustache."""
    cx, ym, mw, lt, gap, chin, beard_col = f.cx, f.ym, f.mw, f.lt, f.gap, f.chin, f.beard_col
    gw = mw * 0.55
    gt = ym + gap / 2 + lt + 0.006
    goat = np.array(
        [
            [cx - gw, gt],
            [cx + gw, gt],
            [cx + gw * 0.9, chin - 0.005],
            [cx, chin + 0.012],
            [cx - gw * 0.9, chin - 0.005],
        ]
    )
    cv.fill(goat, beard_col, _C["skin"], "goatee")
    if f.a["Mustache"]:
        for sgn in (-1, 1):
            cv.line(
                f.rot(np.array([[cx + sgn * mw * 1.1, ym - 0.006], [cx + sgn * mw * 1.05, gt + 0.02]])),
                beard_col,
                0.012,
            )


def _draw_adams_apple(cv: _Canvas, f: _Identity) -> None:
    """Male without a beard or mustache: an Adam's apple below the chin."""
    cx, chin = f.cx, f.chin
    cv.line(np.array([[cx - 0.006, chin + 0.055], [cx, chin + 0.062], [cx + 0.006, chin + 0.055]]), f.dark_skin, 0.006)


def _hair_cap(f: _Identity) -> np.ndarray:
    """The crown of the front hair, left to right (wavy for Wavy_Hair)."""
    cx, cy, H, vol, hw = f.cx, f.cy, f.H, f.vol, f.hair_w
    tt = np.linspace(np.pi, 2 * np.pi, 24)
    cap = _xy(cx + hw * np.cos(tt), cy - 0.02 + (H * 0.95 + vol) * np.sin(tt))
    if f.a["Wavy_Hair"]:
        amp, per = 0.014, 0.09
        seg = np.hypot(*np.diff(cap, axis=0).T)
        cum = np.concatenate([[0], np.cumsum(seg)])
        q = np.linspace(0, cum[-1], int(cum[-1] / 0.008) + 2)
        cap = _xy(np.interp(q, cum, cap[:, 0]), np.interp(q, cum, cap[:, 1]))
        d = cap - (cx, cy)
        d /= np.hypot(d[:, 0], d[:, 1])[:, None]
        cap = cap + d * (amp * np.sin(q / per * 2 * np.pi + f.slots.u(56, 0, 6)))[:, None]
    return cap


def _draw_front_hair(cv: _Canvas, f: _Identity) -> None:
    """The front hair down to the hairline (M-shaped for Receding_Hairline), with its strands."""
    cx, ye, hw, hline = f.cx, f.ye, f.hair_w, f.hairline
    cap = _hair_cap(f)
    front = np.concatenate([cap, [[cx + hw, ye - 0.04]], hline[::-1], [[cx - hw, ye - 0.04]]])
    cv.fill(front, f.hair_col, _C["hair"])
    cv.stroke("hairline", hline, width=0.006)
    _draw_hair_strands(cv, f, cap)
    cv.stroke("hair", cap, width=0.008)


def _draw_hair_strands(cv: _Canvas, f: _Identity, cap: np.ndarray) -> None:
    """Strands: texture that tells Straight_Hair (straight strands and a sheen band), Wavy_Hair (wavy strands)
    and neither (short curls) apart."""
    a, cx, cy, W, H, top, ye, vol, hw = f.a, f.cx, f.cy, f.W, f.H, f.top, f.ye, f.vol, f.hair_w
    length, hair_bottom, hline, hair_kind = f.length, f.hair_bottom, f.hairline, f.hair_kind
    straight, wavy = a["Straight_Hair"], a["Wavy_Hair"]
    tt = np.linspace(np.pi, 2 * np.pi, 24)
    px_, py_ = cx + f.part * W * 0.5, top - vol * 0.6
    ends = hline[1:-1:2]
    strands = []
    if straight:
        for e in ends:
            strands.append(np.array([[px_ + (e[0] - px_) * 0.15, py_ + 0.01], e]))
        if length != "short":
            for sgn in (-1, 1):
                for k in range(3):
                    x0 = cx + sgn * (W * 1.02 + 0.008 + k * 0.012)
                    strands.append(np.array([[x0, ye - 0.02], [x0 + sgn * 0.004, hair_bottom - 0.03]]))
        sheen = np.stack([cx + hw * 0.75 * np.cos(tt[4:-4]), cy - 0.02 + (H * 0.95 + vol) * 0.8 * np.sin(tt[4:-4])], 1)
        cv.line(sheen, f.hair_light, 0.014)
    elif wavy:
        ts = _T[10]
        for e in ends:
            p = _xy(px_ + (e[0] - px_) * ts, py_ + (e[1] - py_) * ts)
            p[:, 0] += 0.008 * np.sin(ts * 3 * np.pi)
            strands.append(p)
        if length != "short":
            yy = np.linspace(ye - 0.02, hair_bottom - 0.03, 12)
            for sgn in (-1, 1):
                for k in range(3):
                    x0 = cx + sgn * (W * 1.02 + 0.01 + k * 0.013)
                    strands.append(_xy(x0 + 0.01 * np.sin((yy - ye) / 0.09 * 2 * np.pi + k), yy))
    else:  # neither: short curls
        hub = np.array([cx, cy - 0.05])
        spots = [e * t + hub * (1 - t) for e in cap[2:-2:3] for t in (0.9, 0.75)]
        if length != "short":
            yy = np.arange(ye, hair_bottom - 0.03, 0.04)
            spots += [np.array([cx + sgn * (W * 1.04 + 0.014), y]) for sgn in (-1, 1) for y in yy]
        strands += [
            _ell(c0[0], c0[1], 0.011, 0.011, 12)[1:9]
            for c0 in spots
            if c0[1] < hline[6, 1] - 0.01 or abs(c0[0] - cx) > W
        ]
    cv.lines(strands, f.hair_dark if hair_kind != "black" and (straight or wavy) else f.hair_light, 0.007)
    for p in strands:
        cv.stroke("hair_strand", p, width=0.004)


def _draw_bangs(cv: _Canvas, f: _Identity) -> None:
    """Bangs: a fringe over the forehead down to just above the brows."""
    cx, W, part, hline, yb, bt, C = f.cx, f.W, f.part, f.hairline, f.brow_y, f.brow_thick, _C
    bx = np.linspace(-0.95, 0.95, 19)
    b_bot = yb - bt - 0.012 - (0.012 * (np.arange(19) % 2)) - 0.02 * part * bx
    b_top = hline[:, 1].min() - 0.01
    bangs = np.concatenate([[[cx - W * 1.0, b_top], [cx + W * 1.0, b_top]], _xy(cx + bx * W, b_bot)[::-1]])
    cv.fill(bangs, f.hair_col, C["hair"], "hair_bangs")
    cv.lines(
        [np.array([[cx + x * W, b_top + 0.02], [cx + x * W * 1.02, yb - bt - 0.02]]) for x in bx[1:-1:3]],
        f.hair_dark if f.hair_kind != "black" else f.hair_light,
        0.006,
    )


def _draw_bald_scalp(cv: _Canvas, f: _Identity) -> None:
    """Bald: a shine on the scalp and the hairline strokes at the temples."""
    cx, W, ye = f.cx, f.W, f.ye
    cv.fill(_ell(cx + f.lside * 0.05, f.top + 0.05, 0.05, 0.025, 12), _mix(f.skin, (255, 255, 255), 0.35))
    cv.stroke("hairline", np.array([[cx - W, ye - 0.06], [cx - W * 1.02, ye - 0.02]]))
    cv.stroke("hairline", np.array([[cx + W, ye - 0.06], [cx + W * 1.02, ye - 0.02]]))


def _draw_hat(cv: _Canvas, f: _Identity) -> None:
    """Wearing_Hat: a beanie, cap or fedora over the crown (random colour)."""
    u, pick, cx, W, top, vol, yhl, C = f.slots.u, f.slots.pick, f.cx, f.W, f.top, f.vol, f.hairline_y, _C
    hat_col = cv2.cvtColor(np.uint8([[[u(57, 0, 180), u(58, 60, 230), u(59, 60, 210)]]]), cv2.COLOR_HSV2RGB)[
        0, 0
    ].astype(float)
    hwid = W * 1.12 + vol + 0.012
    hb = yhl + 0.02
    htop = top - vol - 0.035
    kind_ = pick(60, ["beanie", "cap", "fedora"])
    tt = np.linspace(np.pi, 2 * np.pi, 20)
    if kind_ == "fedora":
        crown = np.array(
            [
                [cx - hwid * 0.85, hb],
                [cx - hwid * 0.75, htop - 0.02],
                [cx, htop - 0.005],
                [cx + hwid * 0.75, htop - 0.02],
                [cx + hwid * 0.85, hb],
            ]
        )
        cv.fill(crown, hat_col, C["hat"], "hat")
        cv.fill(
            np.array(
                [
                    [cx - hwid * 0.85, hb - 0.035],
                    [cx + hwid * 0.85, hb - 0.035],
                    [cx + hwid * 0.85, hb - 0.005],
                    [cx - hwid * 0.85, hb - 0.005],
                ]
            ),
            hat_col * 0.35,
            C["hat"],
        )
        brim = _ell(cx, hb, hwid * 1.5, 0.03, 24)
        cv.fill(brim, hat_col * 0.8, C["hat"], "hat")
    else:
        dome = _xy(cx + hwid * np.cos(tt), hb + (hb - htop) * np.sin(tt))
        cv.fill(dome, hat_col, C["hat"], "hat")
        if kind_ == "beanie":
            band = np.array(
                [
                    [cx - hwid * 1.02, hb - 0.055],
                    [cx + hwid * 1.02, hb - 0.055],
                    [cx + hwid * 1.02, hb + 0.005],
                    [cx - hwid * 1.02, hb + 0.005],
                ]
            )
            cv.fill(band, hat_col * 0.75, C["hat"], "hat")
            cv.lines(
                [np.array([[cx + k * hwid / 6, hb - 0.05], [cx + k * hwid / 6, hb]]) for k in range(-5, 6)],
                hat_col * 0.55,
                0.006,
            )
            cv.fill(_ell(cx, htop, 0.03, 0.025, 12), hat_col * 0.9, C["hat"])
        else:
            visor = np.concatenate(
                [
                    _xy(cx + hwid * 0.9 * np.cos(tt), hb - 0.005 + 0.0 * tt),
                    _xy(cx + hwid * 0.9 * np.cos(tt[::-1]), hb - 0.005 - 0.05 * np.sin(tt[::-1])),
                ]
            )
            cv.fill(visor, hat_col * 0.7, C["hat"], "hat")
            cv.line(np.array([[cx, htop + 0.01], [cx, hb - 0.01]]), hat_col * 0.6, 0.006)


def _draw_glasses(cv: _Canvas, f: _Identity) -> None:
    """Eyeglasses: round or rectangular coloured frames with a glare, temples and a bridge."""
    u, a, cx, W, ye, ex, ew, eh, C = f.slots.u, f.a, f.cx, f.W, f.ye, f.ex, f.ew, f.eh, _C
    fc = _FRAMES[int(u(61) * len(_FRAMES))]
    round_ = u(62) < 0.4
    gw, gh = ew * 1.45, max(eh / (0.35 if a["Narrow_Eyes"] else 1.0), 0.022) * 1.55
    for sgn in (-1, 1):
        gcx, gcy = cx + sgn * ex, ye + f.drop(sgn) + 0.002
        if round_:
            fr = _ell(gcx, gcy, gw, gh, 24)
        else:
            c24 = _CIRCLE[24]
            fr = np.sign(c24) * np.abs(c24) ** 0.5 * (gw, gh) + (gcx, gcy)
        cv.line(fr, fc, 0.018, C["eye_g"], "glasses", closed=True)
        cv.line(np.array([[gcx - gw * 0.5, gcy - gh * 0.2], [gcx - gw * 0.1, gcy - gh * 0.6]]), (250, 250, 255), 0.006)
        cv.line(
            np.array([[gcx + sgn * gw, gcy - gh * 0.4], [cx + sgn * (W * 0.98), ye - 0.01]]),
            fc,
            0.012,
            C["eye_g"],
            "glasses",
        )
    bridge_ = np.array([[cx - ex + gw, ye - 0.004], [cx, ye - 0.012], [cx + ex - gw, ye - 0.004]])
    cv.line(bridge_, fc, 0.012, C["eye_g"], "glasses")


def _draw_earrings(cv: _Canvas, f: _Identity) -> None:
    """Wearing_Earrings: hoops or drops (gold / silver / coloured) hanging from the ear lobes."""
    u, cx, W, ye, C = f.slots.u, f.cx, f.W, f.ye, _C
    ec = _METAL[int(u(63) * len(_METAL))]
    hoop = u(64) < 0.5
    for sgn in (-1, 1):
        lx, ly = cx + sgn * (W * 0.97 + 0.014), ye + 0.072
        if hoop:
            cv.line(_ell(lx, ly + 0.026, 0.024, 0.026, 16), ec, 0.013, C["ear_r"], "earring", closed=True)
        else:
            cv.fill(_ell(lx, ly, 0.011, 0.011, 12), ec, C["ear_r"], "earring")
            cv.fill(_ell(lx, ly + 0.032, 0.016, 0.02, 12), ec, C["ear_r"], "earring")
            cv.line(np.array([[lx, ly], [lx, ly + 0.02]]), ec, 0.008, C["ear_r"])


def _light(cv: _Canvas, f: _Identity) -> np.ndarray:
    """Shade the figure by the light (direction and a random strength), blur if Blurry; the final image."""
    A, cx, cy, W, light, S = f.A, f.cx, f.cy, f.W, f.light, f.size
    # smooth shading field computed on a 16x16 grid and upsampled (it has no detail finer than that)
    c0 = A[:, :2] @ (cx, cy) + A[:, 2]
    X, Y = _grid(16)
    dxy = (X - c0[0]) * light[0] + (Y - c0[1]) * light[1]
    r2 = ((X - c0[0]) ** 2 + (Y - c0[1] - 0.02) ** 2) / (W * 1.3) ** 2
    k = f.slots.u(65, 0.45, 0.8)
    shade = cv2.resize(k * dxy - 0.1 * np.minimum(r2, 2.0), (S, S), interpolation=cv2.INTER_LINEAR)
    img = cv.img.astype(np.float32)
    img *= (1.0 + shade * _FIG_LUT[cv.mask])[..., None]
    if f.a["Blurry"]:
        img = cv2.GaussianBlur(img, (0, 0), 0.02 * S)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _draw(a: dict[str, bool], rng: np.random.Generator, S: int):
    """Render the face with attributes ``a`` (already through :func:`apply_rules`) from the identity stream
    ``rng`` at ``S`` px: (image, mask, strokes). The parts are drawn in painter's order; each reads its own
    slots, so the order of the calls (not of the draws) decides what covers what."""
    f = _identity(a, rng, S)
    cv = _Canvas(S, f.A, _background(f))
    _draw_back_hair(cv, f)
    _draw_neck_and_shoulders(cv, f)
    if a["Wearing_Necktie"]:
        _draw_necktie(cv, f)
    if a["Wearing_Necklace"]:
        _draw_necklace(cv, f)
    _draw_ears(cv, f)
    _draw_face(cv, f)
    _tint_skin(cv, f)
    _blend_tint(cv, f, rng)
    if not f.young:
        _draw_wrinkles(cv, f)
    if not f.attractive:
        _draw_blemishes(cv, f)
    if f.full_beard:
        _draw_beard(cv, f)
    if a["Sideburns"]:
        _draw_sideburns(cv, f)
    _draw_eyes(cv, f)
    _draw_brows(cv, f)
    _draw_nose(cv, f)
    _draw_mouth(cv, f)
    if a["Mustache"]:
        _draw_mustache(cv, f)
    if a["Goatee"]:
        _draw_goatee(cv, f)
    if f.male and not a["Mustache"] and not f.full_beard:
        _draw_adams_apple(cv, f)
    if not a["Bald"]:
        _draw_front_hair(cv, f)
        if a["Bangs"]:
            _draw_bangs(cv, f)
    else:
        _draw_bald_scalp(cv, f)
    if a["Wearing_Hat"]:
        _draw_hat(cv, f)
    if a["Eyeglasses"]:
        _draw_glasses(cv, f)
    if a["Wearing_Earrings"]:
        _draw_earrings(cv, f)
    return _light(cv, f), cv.mask, cv.strokes


# ------------------------------------------------------------------------------------------------------------
# Dataset and CelebA layout
# ------------------------------------------------------------------------------------------------------------
class ProceduralFaces(Dataset):
    """Procedural faces over the seed range ``[start_seed, start_seed + length)``.

    Item ``i`` uses seed ``start_seed + i`` for both its attributes (``mode`` sampler) and its identity, so
    items are independent of worker assignment (no shared RNG). Returns ``{"image": float32 (3, S, S) in
    [0, 1], "labels": float32 (40,) in {0, 1}, "seed": int}`` plus ``"mask"`` int64 (S, S) if ``with_mask``
    and ``"sketch"`` float32 (1, S, S) (white = 1) if ``sketch`` is ``"computed"`` (paper 2's colour dodge
    of the rendered photo), ``"hand"`` (hand-drawn style from the strokes) or ``"mixed"`` (either, by seed).
    With ``edits`` = k > 0, items also carry the same face (same seed, so the same identity) with 1 to k random
    attributes switched, re-rendered: ``"edited_image"`` (3, S, S), ``"edited_labels"`` (40,) and
    ``"switched"`` (40,) 1 where its labels differ from the face's (the switches the rules kept, and what the rules
    changed with them). The witness's case: the drawing shows the face, the words say what the drawing lacks.
    Training seeds start at 0, held-out evaluation seeds at 10_000_000.
    """

    def __init__(
        self,
        size: int = 64,
        length: int = 100_000,
        start_seed: int = 0,
        mode: str = "celeba",
        sketch: str | None = None,
        with_mask: bool = False,
        edits: int = 0,
    ):
        if sketch not in (None, "computed", "hand", "mixed"):
            raise ValueError(f"sketch must be None, 'computed', 'hand' or 'mixed', got {sketch!r}")
        if not 0 <= int(edits) <= NUM_ATTRIBUTES:
            raise ValueError(f"edits must be 0 (none) to {NUM_ATTRIBUTES} switched attributes, got {edits!r}")
        self.edits = int(edits)
        self.size, self.length, self.start_seed, self.sketch, self.with_mask = (
            size,
            length,
            start_seed,
            sketch,
            with_mask,
        )
        self.sampler = AttributeSampler(mode)

    def __len__(self) -> int:
        return self.length

    def attributes(self, index: int) -> np.ndarray:
        """The ±1 attribute vector of item ``index`` (without rendering it)."""
        return self.sampler.sample(np.random.default_rng([self.start_seed + index, 0]), 1)[0]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        seed = self.start_seed + int(index)
        v = self.attributes(index)
        face = render(v, seed, self.size)
        item = {
            "image": torch.from_numpy(face.image).permute(2, 0, 1).float().div_(255.0),
            "labels": torch.from_numpy((face.labels > 0).astype(np.float32)),
            "seed": seed,
        }
        if self.edits:
            rng = np.random.default_rng([seed, 3])
            picked = rng.choice(NUM_ATTRIBUTES, int(rng.integers(1, self.edits + 1)), replace=False)
            v = v.copy()
            v[picked] = -v[picked]
            edited = render(v, seed, self.size)
            item["edited_image"] = torch.from_numpy(edited.image).permute(2, 0, 1).float().div_(255.0)
            item["edited_labels"] = torch.from_numpy((edited.labels > 0).astype(np.float32))
            item["switched"] = (item["edited_labels"] != item["labels"]).float()
        if self.with_mask:
            item["mask"] = torch.from_numpy(face.mask.astype(np.int64))
        if self.sketch is not None:
            kind = self.sketch
            if kind == "mixed":
                kind = "hand" if np.random.default_rng([seed, 2]).random() < 0.5 else "computed"
            if kind == "hand":
                img = sk.strokes_to_sketch(face.strokes, self.size, seed=seed, style="hand")
            else:
                img = sk.photo_to_sketch(face.image, mask=face.mask)
            arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
            if arr.shape != (self.size, self.size):
                arr = cv2.resize(arr, (self.size, self.size), interpolation=cv2.INTER_AREA)
            item["sketch"] = torch.from_numpy(arr)[None]
        return item


def write_celeba_layout(
    root: str | os.PathLike, n: int, start_seed: int = 0, size: int = 128, mode: str = "celeba"
) -> Path:
    """Write ``n`` procedural faces in CelebA's layout under ``root``: ``img_align_celeba/000001.png`` …,
    ``list_attr_celeba.txt`` (count line, names line, ±1 rows padded like the original) and
    ``list_eval_partition.txt`` (8:1:1 train/valid/test, in file order). Returns ``root``."""
    from PIL import Image

    root = Path(root)
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    ds = ProceduralFaces(size=size, length=n, start_seed=start_seed, mode=mode)
    rows, parts = [], []
    n_train, n_valid = int(round(n * 0.8)), int(round(n * 0.1))
    for i in range(n):
        face = render(ds.attributes(i), start_seed + i, size)
        name = f"{i + 1:06d}.png"
        Image.fromarray(face.image).save(root / "img_align_celeba" / name)
        rows.append(name + " " + " ".join(f"{int(x):2d}" for x in face.labels))
        parts.append(f"{name} {0 if i < n_train else 1 if i < n_train + n_valid else 2}")
    header = f"{n}\n" + " ".join(ATTRIBUTES) + " \n"
    (root / "list_attr_celeba.txt").write_text(header + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root
