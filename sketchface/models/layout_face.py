"""Words → photographic faces through a coarse colour layout (issue 25), learned from real photos only.

A description (tri-state: each of CelebA's 40 attributes present +1, absent −1 or unknown 0) becomes a face in two
steps:

1. **Layout prior.** A face's *layout* is its photo at ``layout_size`` px: hair colour and where the hair is, skin
   tone, light and background, but no features. It is kept as whitened coordinates ``z`` on the first
   ``layout_dim`` principal components of the training photos' layouts (:meth:`LayoutFace.fit_layout`; mirrored
   copies included). The prior is the training photos' own layouts with their labels, a *bank*
   (:meth:`LayoutFace.fit_prior`): a description picks the ``neighbours`` photos whose labels contradict the fewest
   attributes it states (all photos tied at the boundary included), and a candidate blends the layouts of two of
   them at random. What the witness did not say varies as it varies among real people who fit the rest; a rare
   combination falls back on the closest ones. Rare attributes that the layout shows (``must_match``: a hat, a bald
   head, gray hair) outweigh all others when stated present. (Tried first: a Gaussian over labels and codes, whose
   labels explained a tenth of the layouts' variance, and agreement weighted by rarity, which let gray-haired pale
   women outrank men for "man with gray hair, pale skin and a mustache".)
2. **Renderer.** A U-Net (:class:`~sketchface.models.translator.SketchTranslator` with a 3-channel input and the 40
   attribute values as its FiLM code) draws the photo from the layout, upsampled, and the description. It is
   trained on real photos, each with its own layout and labels, random attributes hidden (``train/layout_face.py``),
   so it learns the features, texture and light of real faces, and what each attribute looks like, from photographs.
   Glasses and a mustache, too rare among the photos to be learnt from labels, are drawn into the layout when stated
   (``draw_accessories``, :mod:`sketchface.data.accessories`); the renderer learnt to turn drawn ones into
   photographed ones.

Everything the witness did not say is drawn from real faces' statistics; nothing comes from a cartoon. The latent of
a face is ``[z, a]`` (``layout_dim + 40`` numbers): "more like this" blends ``z`` with fresh draws for the same
description, crossing interpolates both, an edit sets attribute values and moves ``z`` by the change of the
neighbours' mean layout (blond hair also lightens the layout's hair).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..attributes import INDEX, NUM_ATTRIBUTES, check_name
from ..data.accessories import draw_accessories, paint
from .translator import SketchTranslator, TranslatorConfig


@dataclass
class LayoutFaceConfig:
    """Architecture of :class:`LayoutFace` (JSON-serialisable: it becomes config.json)."""

    model_type: str = "layout-face"
    resolution: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 256])  # the renderer's U-Net widths
    groups: int = 8
    layout_size: int = 16  # the layout is the photo at this size
    layout_dim: int = 16  # principal components kept (the length of z)
    bank_size: int = 0  # layouts in the prior's bank: the training photos and their mirror images (fit_prior)
    neighbours: int = 8  # a description draws from this many layouts of the bank (4-32 tried on validation)
    # run time: the face drawn with the stated attributes is extrapolated from the one drawn without them,
    # out = without + guidance · (with − without) (classifier-free guidance; 1 = as trained); chosen on validation
    guidance: float = 1.0
    # attributes that a neighbour must have when a description states them present, before any other contradiction
    # counts (visible in the layout and rare, so a plain count lets them lose to common ones); chosen on validation
    must_match: list[str] = field(default_factory=list)
    # draw glasses / a mustache (sketchface.data.accessories) into the layout when the description states them present:
    # the renderer was trained to turn drawn ones into photographed ones (labels alone taught it too little)
    draw_accessories: bool = False

    def __post_init__(self) -> None:
        self.channels = [int(c) for c in self.channels]
        self.must_match = [check_name(a) for a in self.must_match]  # UnknownAttributeError names the bad one
        self.translator_config()  # validates resolution / channels / groups
        if not 2 <= self.layout_size <= self.resolution:
            raise ValueError(f"layout_size must be between 2 and resolution={self.resolution}; got {self.layout_size}")
        if not 1 <= self.layout_dim <= 3 * self.layout_size**2:
            raise ValueError(f"layout_dim must be between 1 and 3·layout_size² = {3 * self.layout_size**2}")
        if self.bank_size < 0 or self.neighbours < 1:
            raise ValueError(f"bank_size must be ≥ 0 and neighbours ≥ 1; got {self.bank_size}, {self.neighbours}")
        if not 0 <= self.guidance <= 10:
            raise ValueError(f"guidance must be between 0 and 10; got {self.guidance}")

    def translator_config(self) -> TranslatorConfig:
        return TranslatorConfig(
            resolution=self.resolution,
            in_channels=3,
            channels=self.channels,
            style_dim=NUM_ATTRIBUTES,
            style_source="given",
            groups=self.groups,
        )


def hide_attributes(labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Labels (B, 40) in ±1 → the same with random attributes set to 0 (unknown): per row a share p ~ U(0, 1) of
    them, so that training sees every amount of description, from none to all 40."""
    p = torch.rand(len(labels), 1, generator=generator).to(labels.device)
    keep = torch.rand(labels.shape, generator=generator).to(labels.device) >= p
    return labels * keep


class LayoutFace(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="sketchface",
    tags=["sketchface", "text-to-image", "attributes-to-face"],
):
    """Description (B, 40) → photographic face (B, 3, R, R) in [0, 1], through a sampled coarse colour layout."""

    def __init__(self, config: LayoutFaceConfig | dict | None = None):
        super().__init__()
        cfg = config if isinstance(config, LayoutFaceConfig) else LayoutFaceConfig(**(config or {}))
        self.config = cfg
        self._hub_mixin_config = cfg  # huggingface_hub's mixin writes a dataclass config flat into config.json
        self.net = SketchTranslator(cfg.translator_config())
        n, k = 3 * cfg.layout_size**2, cfg.layout_dim
        # set by fit_layout / fit_prior; saved with the weights
        self.register_buffer("layout_mean", torch.zeros(n))
        self.register_buffer("layout_basis", torch.zeros(k, n))  # whitening: z = (x − mean) @ basisᵀ
        self.register_buffer("layout_unbasis", torch.zeros(k, n))  # back: x = mean + z @ unbasis
        # the prior: the training photos' layout codes and their labels (±1), fit_prior
        self.register_buffer("bank_codes", torch.zeros(cfg.bank_size, k))
        self.register_buffer("bank_labels", torch.zeros(cfg.bank_size, NUM_ATTRIBUTES))

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def layout_dim(self) -> int:
        return self.config.layout_dim

    # ------------------------------------------------------------------------------------------------- layouts
    def coarse(self, photos: torch.Tensor) -> torch.Tensor:
        """Photos (B, 3, H, W) in [0, 1] → their layouts, flattened (B, 3·layout_size²)."""
        s = self.config.layout_size
        small = F.interpolate(photos.float(), size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return small.flatten(1)

    def layout_code(self, photos: torch.Tensor) -> torch.Tensor:
        """Photos (B, 3, H, W) in [0, 1] → whitened layout codes z (B, layout_dim)."""
        return (self.coarse(photos) - self.layout_mean) @ self.layout_basis.T

    def layout_image(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, layout_dim) → the layouts they stand for, upsampled to (B, 3, R, R) in [0, 1]."""
        s, r = self.config.layout_size, self.config.resolution
        small = (self.layout_mean + z.float() @ self.layout_unbasis).view(-1, 3, s, s)
        return F.interpolate(small, size=(r, r), mode="bilinear", align_corners=False).clamp(0, 1)

    @torch.no_grad()
    def fit_layout(self, photos: torch.Tensor) -> float:
        """Fit the layout code to training photos (N, 3, H, W) in [0, 1] and their mirror images: the mean layout
        and the first ``layout_dim`` principal directions, scaled so that every coordinate has unit variance.
        Returns the share of the layouts' variance the code keeps."""
        if 2 * len(photos) <= self.layout_dim:
            raise ValueError(f"fit_layout needs more than {self.layout_dim // 2} photos; got {len(photos)}")
        flat = torch.cat([self.coarse(p) for chunk in photos.split(256) for p in (chunk, chunk.flip(-1))]).double()
        mean = flat.mean(0)
        _, sv, vh = torch.linalg.svd(flat - mean, full_matrices=False)
        std = sv[: self.layout_dim] / (len(flat) - 1) ** 0.5
        self.layout_mean.copy_(mean.float())
        self.layout_basis.copy_((vh[: self.layout_dim] / std[:, None]).float())
        self.layout_unbasis.copy_((vh[: self.layout_dim] * std[:, None]).float())
        return float(sv[: self.layout_dim].pow(2).sum() / sv.pow(2).sum())

    @torch.no_grad()
    def fit_prior(self, photos: torch.Tensor, labels: torch.Tensor) -> None:
        """Fill the prior's bank (after :meth:`fit_layout`) with the layout codes of training photos (N, 3, H, W) and
        of their mirror images, and their labels (N, 40) in ±1; ``config.bank_size`` must be 2·N."""
        if labels.shape != (len(photos), NUM_ATTRIBUTES):
            raise ValueError(
                f"labels must be (N, {NUM_ATTRIBUTES}) for N = {len(photos)} photos; got {tuple(labels.shape)}"
            )
        if 2 * len(photos) != self.config.bank_size:
            raise ValueError(f"bank_size is {self.config.bank_size}: it takes {self.config.bank_size // 2} photos")
        self.bank_codes.copy_(torch.cat([self.layout_code(photos), self.layout_code(photos.flip(-1))]))
        self.bank_labels.copy_(torch.cat([labels, labels]).float().sign())

    def _candidates(self, values: torch.Tensor) -> torch.Tensor:
        """Descriptions (B, 40) (±1, 0 unknown) → (B, bank_size) bool: the layouts each may draw from, the
        ``neighbours`` whose labels contradict the fewest stated attributes (ties at the boundary included); a
        missing ``must_match`` attribute that the description states present outweighs all other contradictions."""
        if not self.config.bank_size:
            raise ValueError("this model's prior is empty: fit_prior was never called")
        bank = self.bank_labels.float()
        stated = values.float().to(bank.device).sign()
        contradicted = ((bank[None] * stated[:, None]) < 0).sum(-1)  # (B, N)
        if self.config.must_match:
            idx = [INDEX[a] for a in self.config.must_match]
            missing = ((stated[:, idx] > 0)[:, None, :] & (bank[None, :, idx] <= 0)).sum(-1)  # (B, N)
            contradicted = contradicted + (NUM_ATTRIBUTES + 1) * missing  # each outweighs all other contradictions
        m = min(self.config.neighbours, len(bank))
        cut = contradicted.topk(m, dim=1, largest=False).values[:, -1:]
        return contradicted <= cut

    def prior_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Descriptions (B, 40) (±1, 0 unknown) → the mean layout code of their neighbours (B, layout_dim)."""
        keep = self._candidates(values).float()
        return (keep @ self.bank_codes.float()) / keep.sum(1, keepdim=True)

    def sample_layout(
        self, values: torch.Tensor, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Layout codes (B, layout_dim) for descriptions (B, 40): each blends two of its neighbours' layouts,
        ``t·a + (1 − t)·b`` with t ~ U(0.25, 0.75); ``temperature`` scales the draw's distance from the neighbours'
        mean (0: every candidate gets the mean)."""
        keep = self._candidates(values)
        pick = torch.rand(2, *keep.shape, generator=generator).to(keep.device) * keep  # random among the neighbours
        a, b = pick.argmax(-1)
        t = 0.25 + 0.5 * torch.rand(len(values), 1, generator=generator).to(keep.device)
        codes = self.bank_codes.float()
        draw = t * codes[a] + (1 - t) * codes[b]
        mean = (keep.float() @ codes) / keep.sum(1, keepdim=True)
        return mean + float(temperature) * (draw - mean)

    # ------------------------------------------------------------------------------------------------- render
    def forward(self, z: torch.Tensor, values: torch.Tensor, guidance: float | None = None) -> torch.Tensor:
        """Layout codes (B, layout_dim) + descriptions (B, 40) → faces (B, 3, R, R) in [0, 1]. ``guidance`` (default
        ``config.guidance``) other than 1 extrapolates from the face drawn with nothing stated (two decoder passes
        over one encoding of the layout)."""
        layout = self.layout_image(z)
        if self.config.draw_accessories:
            layout = self.with_accessories(layout, values, z)
        return self.render_layout(layout.to(next(self.net.parameters()).dtype), values, guidance)

    @staticmethod
    def with_accessories(layout: torch.Tensor, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Layouts (B, 3, R, R) with glasses and a mustache drawn where ``values`` states them present; their shape
        and colour follow from ``z`` (B, layout_dim), so one latent always gives the same face."""
        glasses = values[:, INDEX["Eyeglasses"]] > 0
        mustache = values[:, INDEX["Mustache"]] > 0
        if not (glasses.any() or mustache.any()):
            return layout
        seeds = [zlib.crc32(row.tobytes()) for row in z.detach().float().cpu().numpy().round(4)]
        keep, add = draw_accessories(layout, glasses.cpu(), mustache.cpu(), [np.random.default_rng(s) for s in seeds])
        return paint(layout, keep, add)

    def render_layout(self, layout: torch.Tensor, values: torch.Tensor, guidance: float | None = 1.0) -> torch.Tensor:
        """A layout image (B, 3, R, R) (e.g. a training photo's, :meth:`layout_image`) + descriptions → faces (as
        trained: guidance 1; None: ``config.guidance``)."""
        g = self.config.guidance if guidance is None else float(guidance)
        feats = self.net.encode_sketch(layout)
        with_them = self.net.decode(feats, values.to(layout.dtype))
        if g == 1:
            return with_them
        without = self.net.decode(feats, torch.zeros_like(values, dtype=layout.dtype))
        return (without + g * (with_them - without)).clamp(0, 1)


__all__ = ["LayoutFace", "LayoutFaceConfig", "hide_attributes"]
