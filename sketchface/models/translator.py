"""A direct sketch → photo translator: a pix2pix-style U-Net with an injected style code (BicycleGAN's cVAE-GAN).

The baseline the pSp paper compares against on sketch → face, made multimodal. A sketch fixes the shapes (face,
hair line, eyes, glasses) but not the colours (hair, skin, background) or the texture; those come from a small
style code ``z``:

* training: ``z`` is encoded from a heavily downsampled copy of the true photo, so it can only carry coarse colour
  and light, never the shapes. Two ways (``style_source``): ``"encoder"``, a small learned network with a Gaussian
  posterior and a KL term towards N(0, I) (BicycleGAN's; on ~700 photos its code collapsed: the decoder learned to
  ignore it); ``"pca"``, the photo's coordinates on the first ``style_dim`` principal components of the training
  photos' coarse colour layouts, whitened (:meth:`SketchTranslator.fit_style`): fixed, so it cannot collapse, and
  N(0, I) is its distribution over the training photos;
* run time: ``z = 0`` draws the most likely colouring (candidate 0), ``z ~ N(0, t²·I)`` draws others.

The U-Net: a stem and ``len(channels) - 1`` stride-2 stages down to R / 2^(L-1); a decoder that upsamples, joins the
skip connection and modulates its features by the style code (FiLM after GroupNorm); a 3-channel output in [0, 1].
:class:`sketchface.models.layers.PatchDiscriminator` is its conditional PatchGAN critic (sketch + photo → a map
of real/fake logits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

#: where a trained translator's style code comes from (``train/translator.py --style_source``)
STYLE_SOURCES = ("encoder", "pca")
#: ... and "given": the caller passes the code (e.g. attribute values, :mod:`sketchface.models.layout_face`)
CODE_SOURCES = (*STYLE_SOURCES, "given")
#: how the decoder doubles its feature maps (TranslatorConfig.upsample)
UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic")


@dataclass
class TranslatorConfig:
    """Architecture of :class:`SketchTranslator` (JSON-serialisable: it becomes config.json)."""

    model_type: str = "sketch-translator"
    resolution: int = 64
    in_channels: int = 1  # 1: a sketch, white paper = 1
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 256])  # widths at R, R/2, ... R/16
    style_dim: int = 8  # 0: deterministic (plain pix2pix)
    style_input: int = 16  # the style code sees the photo at this size (coarse colour only)
    style_source: str = "encoder"  # "encoder" (learned, KL), "pca" (fit_style) or "given" (the caller's code)
    groups: int = 8  # GroupNorm groups
    # CelebA attribute values given with the sketch (the witness's words: +1 present, -1 absent, 0 unknown), read by a
    # FiLM map of their own in every decoder block beside the style code's; 0: the sketch alone
    attr_dim: int = 0
    # run time (SketchTranslatorPipeline), chosen on the validation split: average every face with the mirror image of
    # the face drawn from the mirrored sketch (a face is nearly symmetric; the two drawings' errors are not)
    mirror_average: bool = False
    # run time, with words (attr_dim): the face drawn with the words is extrapolated from the one drawn without them,
    # out = without + words_guidance · (with − without) (classifier-free guidance; 1 = as trained; costs a second
    # decoder pass only when something is stated); chosen on the validation split
    words_guidance: float = 1.0
    # run time: the standard deviation of the candidates' style codes at the default variety 0.5 (1 = the prior the
    # code was trained with); a model trained with many code-0 samples (--zero_style) answers its code weakly, so
    # its candidates need wider draws to differ; chosen on the validation split
    style_temperature: float = 1.0
    # how the decoder doubles its feature maps before each convolution: "nearest" (as trained) copies each value into
    # a 2×2 block, which left a plaid of blocks on backgrounds and cheeks; "bilinear" / "bicubic" interpolate. One
    # mode for every doubling, or a list of one mode per doubling, coarsest first (len(channels) - 1 of them): the
    # coarse ones are cheap to interpolate and the plaid comes from them
    upsample: str | list[str] = "nearest"
    # width of the detail gate (:class:`DetailGate`; 0: none), a small network trained after the translator, frozen,
    # that copies the fine detail a shaded sketch carries (paper 2's colour dodge) onto the drawn face where it helps
    detail_gate: int = 0

    def __post_init__(self) -> None:
        self.channels = [int(c) for c in self.channels]
        if len(self.channels) < 2:
            raise ValueError("channels needs at least two levels")
        if self.resolution % 2 ** (len(self.channels) - 1):
            raise ValueError(f"resolution {self.resolution} is not divisible by 2^{len(self.channels) - 1}")
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"every width in channels must be a multiple of groups={self.groups}")
        if self.attr_dim < 0:
            raise ValueError(f"attr_dim must be >= 0; got {self.attr_dim}")
        if not 0 <= self.words_guidance <= 10:
            raise ValueError(f"words_guidance must be between 0 and 10; got {self.words_guidance}")
        if not 0 < self.style_temperature <= 4:
            raise ValueError(f"style_temperature must be in (0, 4]; got {self.style_temperature}")
        if not isinstance(self.upsample, str):
            self.upsample = [str(m) for m in self.upsample]
            if len(self.upsample) != len(self.channels) - 1:
                raise ValueError(
                    f"upsample needs one mode per doubling of the decoder ({len(self.channels) - 1}, coarsest "
                    f"first); got {len(self.upsample)}: {self.upsample}"
                )
        if any(m not in UPSAMPLE_MODES for m in self.upsample_modes):
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES} or a list of them; got {self.upsample!r}")
        if self.detail_gate < 0:
            raise ValueError(f"detail_gate must be >= 0; got {self.detail_gate}")
        if self.detail_gate and self.in_channels != 1:
            raise ValueError("detail_gate needs a one-channel sketch (in_channels=1)")
        if self.style_source not in CODE_SOURCES:
            raise ValueError(f"style_source must be one of {CODE_SOURCES}; got {self.style_source!r}")

    @property
    def upsample_modes(self) -> list[str]:
        """The upsampling mode of each doubling of the decoder, coarsest first."""
        n = len(self.channels) - 1
        return [self.upsample] * n if isinstance(self.upsample, str) else list(self.upsample)


def _upsample(h: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(h, scale_factor=2.0, mode="nearest")
    return F.interpolate(h, scale_factor=2.0, mode=mode, align_corners=False)


#: Rec. 601 luma weights (the gray image paper 2's sketch is made from)
LUMA = (0.299, 0.587, 0.114)
#: sketch values at or above this count as white paper (a colour-dodge sketch is white wherever the photo is at least
#: as bright as its blurred surroundings; resizing leaves such pixels slightly below 1)
WHITE = 0.98


def luma(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) → its gray image (B, 1, H, W), as paper 2's sketch reads a photo."""
    return (image * image.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def dodge_blur_kernel(size: int) -> torch.Tensor:
    """The 1-D Gaussian of paper 2's sketch at ``size`` px (:func:`sketchface.data.sketch.default_sigma`'s kernel
    and sigma, as OpenCV derives them)."""
    from ..data.sketch import _reference_kernel, default_sigma

    k, sigma = _reference_kernel(size), default_sigma(size)
    x = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


class DetailGate(nn.Module):
    """Puts back the detail a shaded sketch carries, where a small network judges that it belongs to the face.

    Paper 2's sketch is a colour dodge, ``s = min(1, Y / blur(Y))`` for the photo's gray image ``Y``: it keeps the
    photo's fine detail and drops its slow shading. Given a drawn face with luma ``y``, that detail on the face's own
    shading is ``t = s · blur(y)`` (where the sketch is white the photo was at least as bright as ``blur(Y)``:
    ``max(blur(y), y)``), and the face becomes ``face + g · (t − y)`` on every channel. The gate ``g`` in [0, 1] per
    pixel comes from a four-layer network that sees the sketch, ``y``, ``blur(y)`` and ``t``: in training it learned
    to open on shaded strokes and to stay nearly shut on line art (a pen line is not dark skin), so a line drawing's
    face is left nearly as the translator drew it (its strokes a shade darker).
    """

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.register_buffer("kernel", dodge_blur_kernel(size), persistent=False)
        self._bands: dict[tuple, torch.Tensor] = {}  # blur matrices by (length, device, dtype)
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(4, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 1, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # starts half open: g = 0.5 everywhere
        nn.init.zeros_(self.net[-1].bias)

    def _band(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """(n, n) matrix that blurs a length-``n`` signal with the kernel, OpenCV's reflected border folded in."""
        key = (n, like.device, like.dtype)
        if key not in self._bands:
            k, p = self.kernel.cpu().double(), self.kernel.numel() // 2
            src = torch.arange(n)[:, None] + torch.arange(k.numel())[None, :] - p
            while bool(((src < 0) | (src >= n)).any()):  # reflect-101 (no edge repeat), again for kernels > n
                src = torch.where(src < 0, -src, src)
                src = torch.where(src >= n, 2 * (n - 1) - src, src) if n > 1 else torch.zeros_like(src)
            band = torch.zeros(n, n, dtype=torch.float64).index_put_(
                (torch.arange(n)[:, None].expand_as(src), src), k.expand_as(src), accumulate=True
            )
            self._bands[key] = band.to(like.device, like.dtype)
        return self._bands[key]

    def blur(self, y: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) → the sketch's Gaussian blur of it (reflected borders, as OpenCV's default), as two small
        matrix products (a 1-channel convolution takes PyTorch's slow path: ~4× the time at 128 px)."""
        return self._band(y.shape[-2], y) @ y @ self._band(y.shape[-1], y).T

    def _parts(self, face: torch.Tensor, sketch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The face's luma ``y`` and the sketch's detail on its shading ``t``, and the network's input."""
        y = luma(face)
        b = self.blur(y)
        target = torch.where(sketch >= WHITE, torch.maximum(b, y), sketch * b)
        return target - y, torch.cat([sketch, y, b, target], 1)

    def _gate(self, features: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """The network's input → the gate in [0, 1] (float32); ``bf16``: the network under bfloat16 autocast."""
        with torch.autocast(features.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = self.net(features.contiguous(memory_format=torch.channels_last) if bf16 else features)
        return torch.sigmoid(logits.float())

    def gate(self, face: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor:
        """Face (B, 3, H, W) and sketch (B, 1, H, W), both in [0, 1] → the gate (B, 1, H, W) in [0, 1]."""
        return self._gate(self._parts(face, sketch)[1])

    def forward(
        self,
        face: torch.Tensor,
        sketch: torch.Tensor,
        gate: torch.Tensor | None = None,
        *,
        shared: bool = False,
        bf16: bool = False,
    ) -> torch.Tensor:
        """The face with the sketch's detail put back where the gate is open, clamped to [0, 1]. The gate is computed
        here when not given: per face, or with ``shared`` from the first face alone for all (the candidates of one
        sketch share one gate); ``bf16``: its network under bfloat16 autocast (the detail itself stays float32)."""
        change, features = self._parts(face, sketch)
        if gate is None:
            gate = self._gate(features[:1] if shared else features, bf16)
        return (face + gate * change).clamp(0, 1)


#: the noise added to a "pca" code in training (log variance; std 0.1), so that nearby codes give nearby faces
PCA_LOGVAR = -4.6


class _ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, twice, plus the input; optional FiLM (scale, shift) from the style code and from the
    attribute values (``words``: a linear map of its own, without bias, so that it can learn at its own rate)."""

    def __init__(self, ch: int, groups: int, style_dim: int, attr_dim: int = 0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, ch, affine=style_dim == 0)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(style_dim, 2 * ch) if style_dim else None
        self.words = nn.Linear(attr_dim, 2 * ch, bias=False) if attr_dim else None
        for layer in (self.film, self.words):  # start as the identity modulation
            if layer is not None:
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None, a: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        mod = self.film(z) if self.film is not None else None
        if self.words is not None and a is not None:
            mod = self.words(a) if mod is None else mod + self.words(a)
        if mod is not None:
            scale, shift = mod[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
            h = h * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


class SketchTranslator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="sketchface",
    tags=["sketchface", "sketch-to-face", "pix2pix", "image-to-image"],
):
    """Sketch (B, 1, R, R) in [0, 1] + style code (B, style_dim) (+ attribute values (B, attr_dim)) → photo (B, 3, R,
    R) in [0, 1]."""

    def __init__(self, config: TranslatorConfig | dict | None = None):
        super().__init__()
        cfg = config if isinstance(config, TranslatorConfig) else TranslatorConfig(**(config or {}))
        self.config = cfg
        self._hub_mixin_config = cfg  # huggingface_hub's mixin writes a dataclass config flat into config.json
        ch, g, sd, ad = cfg.channels, cfg.groups, cfg.style_dim, cfg.attr_dim
        self.stem = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.enc = nn.ModuleList([_ResBlock(ch[0], g, 0)])
        self.down = nn.ModuleList()
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            self.down.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            self.enc.append(_ResBlock(c_out, g, 0))
        self.mid = _ResBlock(ch[-1], g, sd, ad)
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        self.dec = nn.ModuleList()
        for c_deep, c_skip in zip(ch[:0:-1], ch[-2::-1]):
            self.up.append(nn.Conv2d(c_deep, c_skip, 3, padding=1))
            self.fuse.append(nn.Conv2d(2 * c_skip, c_skip, 1))
            self.dec.append(_ResBlock(c_skip, g, sd, ad))
        self.out = nn.Sequential(nn.GroupNorm(g, ch[0]), nn.SiLU(), nn.Conv2d(ch[0], 3, 3, padding=1))
        if sd and cfg.style_source == "pca":  # set by fit_style; saved with the weights
            n = 3 * cfg.style_input**2
            self.register_buffer("style_mean", torch.zeros(n))
            self.register_buffer("style_basis", torch.zeros(sd, n))
        elif sd and cfg.style_source == "encoder":
            s = 32
            self.style_encoder = nn.Sequential(  # (B, 3, style_input, style_input) -> (B, 2 * style_dim)
                nn.Conv2d(3, s, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(s, 2 * s, 4, stride=2, padding=1),
                nn.SiLU(),
                nn.Conv2d(2 * s, 2 * s, 4, stride=2, padding=1),
                nn.SiLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(2 * s, 2 * sd),
            )
        self.detail = DetailGate(cfg.detail_gate, cfg.resolution) if cfg.detail_gate else None

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def style_dim(self) -> int:
        return self.config.style_dim

    @property
    def attr_dim(self) -> int:
        return self.config.attr_dim

    def with_attributes(self, attr_dim: int) -> SketchTranslator:
        """A copy of this sketch-only translator that also takes ``attr_dim`` attribute values (made ready to learn
        words): the new FiLM maps start at zero, so it draws exactly as this one until trained."""
        if self.attr_dim:
            raise ValueError(f"this translator already takes {self.attr_dim} attribute values")
        wider, missing, unexpected = self._rebuilt(attr_dim=attr_dim)
        if unexpected or not all(".words." in k for k in missing):  # only the word maps may be new
            raise RuntimeError(f"widening left weights unmatched: missing {missing}, unexpected {unexpected}")
        return wider

    def with_detail_gate(self, channels: int) -> SketchTranslator:
        """A copy of this translator with a new, untrained :class:`DetailGate` of ``channels`` width (train it with
        ``train/translator.py --detail_only``)."""
        if self.detail is not None:
            raise ValueError("this translator already has a detail gate")
        wider, missing, unexpected = self._rebuilt(detail_gate=int(channels))
        if unexpected or not all(k.startswith("detail.") for k in missing):
            raise RuntimeError(f"adding the gate left weights unmatched: missing {missing}, unexpected {unexpected}")
        return wider

    def without_detail_gate(self) -> SketchTranslator:
        """A copy of this translator without its detail gate: it draws as this one does before the gate."""
        if self.detail is None:
            raise ValueError("this translator has no detail gate")
        bare, missing, unexpected = self._rebuilt(detail_gate=0)
        if missing or not all(k.startswith("detail.") for k in unexpected):
            raise RuntimeError(f"removing the gate left weights unmatched: missing {missing}, unexpected {unexpected}")
        return bare

    def _rebuilt(self, **config) -> tuple[SketchTranslator, list[str], list[str]]:
        """A new translator with this one's config changed by ``config`` and this one's weights where they fit, with
        the names of the weights it lacks and of those it had no place for (for the caller to check)."""
        other = SketchTranslator({**vars(self.config), **config})
        missing, unexpected = other.load_state_dict(self.state_dict(), strict=False)
        return other, missing, unexpected

    def add_detail(
        self,
        faces: torch.Tensor,
        sketch: torch.Tensor,
        gate: torch.Tensor | None = None,
        *,
        shared: bool = False,
        bf16: bool = False,
    ) -> torch.Tensor:
        """Faces (B, 3, R, R) drawn from ``sketch`` (B or 1, 1, R, R) → the same with the sketch's detail put back by
        the detail gate (in float32; ``shared`` and ``bf16`` as :meth:`DetailGate.forward`), or as they are without
        one."""
        if self.detail is None:
            return faces
        sketch = sketch.float().expand(faces.shape[0], -1, -1, -1)
        return self.detail(faces.float(), sketch, gate, shared=shared, bf16=bf16).to(faces.dtype)

    def draw(
        self,
        sketch: torch.Tensor,
        z: torch.Tensor | None = None,
        attributes: torch.Tensor | None = None,
        guidance: float = 1.0,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Faces before the detail gate: face ``i`` from sketch ``rows[i]`` of (B, 1, R, R) (default: one per sketch)
        with style code ``z[i]`` (None: 0) and the words (:meth:`decode_guided`), each averaged with the mirror image
        of the face drawn from the mirrored sketch when ``mirror_average`` is set (then float32). Every sketch is
        encoded once; indexing its features keeps them channels_last (``expand`` and ``repeat_interleave`` do not,
        and the decoder then runs ~25 % slower on a CPU, reordering every layer's input)."""
        rows = torch.arange(sketch.shape[0], device=sketch.device) if rows is None else rows
        if not self.config.mirror_average:
            return self.decode_guided([f[rows] for f in self.encode_sketch(sketch)], z, attributes, guidance)
        n, b = rows.shape[0], sketch.shape[0]
        feats = [f[torch.cat([rows, rows + b])] for f in self.encode_sketch(torch.cat([sketch, sketch.flip(-1)]))]
        faces = self.decode_guided(feats, None if z is None else z.repeat(2, 1), attributes, guidance).float()
        return (faces[:n] + faces[n:].flip(-1)) / 2  # in float32: a bfloat16 mean would lose a level here and there

    def base_faces(self, sketch: torch.Tensor) -> torch.Tensor:
        """Candidate 0 of each sketch (B, 1, R, R) as :class:`~sketchface.pipelines.translator.SketchTranslatorPipeline`
        draws it before the detail gate: code 0, no words (:meth:`draw`)."""
        return self.draw(sketch)

    def word_parameters(self) -> list[nn.Parameter]:
        """The weights that read the attribute values (empty without words)."""
        return [b.words.weight for b in [self.mid, *self.dec] if b.words is not None]

    def encode_style(self, photo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Photo (B, 3, H, W) in [0, 1] → (mu, logvar), each (B, style_dim), from its coarse colour layout."""
        if not self.style_dim:
            raise ValueError("this translator has no style code (style_dim=0)")
        if self.config.style_source == "given":
            raise ValueError(
                "this translator's code is given by its caller (style_source='given'), not read off a photo"
            )
        small = self._coarse(photo)
        if self.config.style_source == "pca":
            mu = (small.flatten(1).float() - self.style_mean) @ self.style_basis.T
            return mu.to(photo.dtype), torch.full_like(mu, PCA_LOGVAR).to(photo.dtype)
        mu, logvar = self.style_encoder(small * 2 - 1).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 4)

    def _coarse(self, photo: torch.Tensor) -> torch.Tensor:
        s = self.config.style_input
        return F.interpolate(photo, size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def fit_style(self, photos: torch.Tensor) -> float:
        """``style_source="pca"``: fit the code to training photos (N, 3, H, W) in [0, 1] (N > style_dim): the mean
        coarse layout and the first ``style_dim`` principal directions, scaled so that each coordinate has unit
        variance over ``photos``. Returns the share of the layouts' variance the code explains."""
        if self.config.style_source != "pca" or not self.style_dim:
            raise ValueError("fit_style is for a translator with style_source='pca' and style_dim > 0")
        if len(photos) <= self.style_dim:
            raise ValueError(f"fit_style needs more than style_dim={self.style_dim} photos; got {len(photos)}")
        flat = torch.cat([self._coarse(p.float()).flatten(1) for p in photos.split(256)]).double()
        mean = flat.mean(0)
        _, sv, vh = torch.linalg.svd(flat - mean, full_matrices=False)
        std = sv[: self.style_dim] / (len(flat) - 1) ** 0.5
        self.style_mean.copy_(mean.float())
        self.style_basis.copy_((vh[: self.style_dim] / std[:, None]).float())
        return float(sv[: self.style_dim].pow(2).sum() / sv.pow(2).sum())

    def encode_sketch(self, sketch: torch.Tensor) -> list[torch.Tensor]:
        """Sketch (B, C, R, R) in [0, 1] → the encoder's features at every level (full resolution first); they do
        not depend on the style code, so several candidates of one sketch share them."""
        h = self.enc[0](self.stem(sketch * 2 - 1), None)
        feats = [h]
        for down, block in zip(self.down, self.enc[1:]):
            h = block(down(h), None)
            feats.append(h)
        return feats

    def _attributes(self, attributes: torch.Tensor | None, ref: torch.Tensor) -> torch.Tensor | None:
        """Checked attribute values (B, attr_dim) in ``ref``'s dtype, or None when nothing is stated."""
        if attributes is None:
            return None
        if not self.attr_dim:
            if bool(attributes.ne(0).any()):
                raise ValueError("this translator takes no attributes (attr_dim=0)")
            return None
        if attributes.shape[-1] != self.attr_dim:
            raise ValueError(f"attributes must have {self.attr_dim} values per face; got {attributes.shape[-1]}")
        return attributes.to(ref.dtype).expand(ref.shape[0], -1)

    def decode(
        self, feats: list[torch.Tensor], z: torch.Tensor | None, attributes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encoder features (:meth:`encode_sketch`) + style code (B, style_dim) (+ attribute values (B, attr_dim),
        +1 / -1 / 0 unknown) → photo (B, 3, R, R) in [0, 1]."""
        if self.style_dim and z is None:
            z = feats[-1].new_zeros(feats[-1].shape[0], self.style_dim)
        a = self._attributes(attributes, feats[-1])
        h = self.mid(feats[-1], z, a)
        for up, fuse, block, skip, mode in zip(self.up, self.fuse, self.dec, feats[-2::-1], self.config.upsample_modes):
            h = up(_upsample(h, mode))
            h = block(fuse(torch.cat([h, skip], dim=1)), z, a)
        return torch.sigmoid(self.out(h))

    def decode_guided(
        self, feats: list[torch.Tensor], z: torch.Tensor | None, attributes: torch.Tensor | None, guidance: float
    ) -> torch.Tensor:
        """:meth:`decode` with the words' effect scaled by ``guidance``: ``without + guidance · (with − without)``,
        clamped to [0, 1] (one pass when nothing is stated or ``guidance`` is 1)."""
        with_words = self.decode(feats, z, attributes)
        if guidance == 1 or self._attributes(attributes, feats[-1]) is None:
            return with_words
        without = self.decode(feats, z, None)
        return (without + guidance * (with_words - without)).clamp(0, 1)

    def forward(
        self,
        sketch: torch.Tensor,
        z: torch.Tensor | None = None,
        *,
        style_photo: torch.Tensor | None = None,
        zero_style: torch.Tensor | None = None,
        attributes: torch.Tensor | None = None,
        detail_only: bool = False,
        base: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sketch (B, C, R, R) in [0, 1], style code (B, style_dim) (None: zeros) → photo (B, 3, R, R) in [0, 1].

        Training passes ``style_photo`` (the true photo) instead of ``z``: the code is drawn from its posterior
        (reparameterised) and the result is ``(photo, mu, logvar)``, all inside ``forward`` so that data-parallel
        training synchronises the style encoder too. ``zero_style`` (B,) bool sets those rows' code to 0, so that
        code 0 learns the best guess from the sketch alone (candidate 0), not a colouring drawn at random.
        ``attributes`` (B, attr_dim): what the words state (+1 / -1, 0 unknown; None: nothing), for ``attr_dim`` > 0.
        ``detail_only``: the detail gate's training: candidate 0 drawn as the pipeline draws it (:meth:`base_faces`,
        without gradients), then the gate (float32; it alone learns); ``base``: those faces, drawn beforehand (a
        frozen translator draws the same faces every time, so training may draw them once).
        """
        if base is not None and not detail_only:
            raise ValueError("base (candidate 0 drawn beforehand) is for detail_only")
        if detail_only:
            if base is None:
                with torch.no_grad():
                    base = self.base_faces(sketch)
            return self.add_detail(base.float(), sketch)
        mu = logvar = None
        if style_photo is not None:
            mu, logvar = self.encode_style(style_photo)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            if zero_style is not None:
                z = torch.where(zero_style[:, None], torch.zeros_like(z), z)
        elif self.style_dim and z is None:
            z = sketch.new_zeros(sketch.shape[0], self.style_dim)
        image = self.add_detail(self.decode(self.encode_sketch(sketch), z, attributes), sketch)
        return image if mu is None else (image, mu, logvar)
