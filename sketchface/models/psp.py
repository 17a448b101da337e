"""pixel2style2pixel (pSp) encoder, the PSP checkpoint module, the CBAM attention loss and W-space
attribute directions.

* :class:`GradualStyleEncoder` — after eladrich/pixel2style2pixel: a residual backbone gives three feature
  maps (c1 at R/4, c2 at R/8, c3 at R/16), a feature pyramid (p3 = c3, p2 = up(p3) + lat(c2),
  p1 = up(p2) + lat(c1)) and one ``map2style`` head per style vector: coarse styles from p3, middle from
  p2, fine from p1. Output: W+ offsets (B, n_styles, style_dim).
* :class:`PSP` — encoder + StyleGAN2 generator + ``latent_avg`` buffer (and the attribute directions), one
  hub-mixin checkpoint that loads alone.
* :class:`AttentionLoss` — paper 2's ‖F''(y) − F''(G(E(s)))‖ on CBAM-attended features of a frozen network.
* :func:`fit_attribute_directions` — InterFaceGAN-style linear boundaries in W fitted on classifier-labelled
  generator samples, stored in the PSP buffers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..attributes import ATTRIBUTES, INDEX, NUM_ATTRIBUTES, check_name
from .layers import CBAM, BasicResBlock, EqualLinear
from .stylegan import Generator, StyleGANConfig, n_styles_for


# ------------------------------------------------------------------------------------- encoder
@dataclass
class PSPConfig:
    """Encoder architecture plus the generator's config (so the checkpoint rebuilds both)."""

    model_type: str = "psp"
    in_channels: int = 1  # 1: sketch (white background = 1); 3: RGB photo (inversion)
    input_size: int | None = None  # encoder input resolution; None = generator resolution
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks_per_stage: list[int] = field(default_factory=lambda: [1, 2, 2, 1])
    fpn_channels: int = 96  # width of the pyramid and of the map2style heads (pSp: 512)
    coarse_ind: int = 3  # styles [0, coarse_ind) from p3 (pSp's split)
    middle_ind: int = 7  # styles [coarse_ind, middle_ind) from p2, the rest from p1
    generator: dict = field(default_factory=lambda: asdict(StyleGANConfig()))
    # > 0: a bank of that many W+ codes of real training faces (``PSP.style_bank``), the source of the fine styles
    # mixed into candidates when the generator was trained as an autoencoder and has no meaningful mapping network
    style_bank: int = 0
    # > 0: the encoder also gives a spatial code at this resolution (R/4 or R/2) that replaces the generator's
    # activations there (Feature-Style encoder, Yao et al. 2022): W+ alone keeps no identity when the generator was
    # trained as an autoencoder on ~700 photos (docs/models.md); the styles above it still vary the candidates
    spatial_resolution: int = 0

    def __post_init__(self):
        # canonical form (every field, model_type included), so configs from older files compare equal
        gen = self.generator if isinstance(self.generator, StyleGANConfig) else StyleGANConfig(**self.generator)
        self.generator = asdict(gen)
        self.encoder_channels = list(self.encoder_channels)
        self.blocks_per_stage = list(self.blocks_per_stage)
        if len(self.encoder_channels) != 4 or len(self.blocks_per_stage) != 4:
            raise ValueError("encoder_channels and blocks_per_stage need 4 stages (R/2, R/4, R/8, R/16)")
        if self.spatial_resolution and self.spatial_resolution not in (gen.resolution // 4, gen.resolution // 2):
            raise ValueError(
                f"spatial_resolution must be 0, {gen.resolution // 4} or {gen.resolution // 2}; "
                f"got {self.spatial_resolution}"
            )
        r = self.spatial_resolution
        if r and gen.channels(r) * r * r % gen.style_dim:
            raise ValueError("the spatial code's size must be a multiple of style_dim (it is packed in rows of it)")

    @property
    def generator_config(self) -> StyleGANConfig:
        return StyleGANConfig(**self.generator)

    @property
    def resolution(self) -> int:
        return self.generator_config.resolution

    @property
    def style_dim(self) -> int:
        return self.generator_config.style_dim

    @property
    def n_styles(self) -> int:
        return n_styles_for(self.resolution)

    @property
    def encoder_input_size(self) -> int:
        return self.input_size or self.resolution


class GradualStyle(nn.Module):
    """pSp's map2style: log2(spatial) stride-2 convs down to 1x1, then an equalised linear -> style."""

    def __init__(self, in_ch: int, style_dim: int, spatial: int):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_ch, in_ch, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(in_ch, style_dim)

    def forward(self, x):
        x = self.convs(x)  # (B, C, 1, 1)
        x = x.mean(dim=(2, 3)) if x.shape[-1] > 1 else x.flatten(1)
        return self.linear(x)


class GradualStyleEncoder(nn.Module):
    """Residual backbone + feature pyramid + map2style heads -> W+ offsets (B, n_styles, style_dim)."""

    def __init__(self, config: PSPConfig):
        super().__init__()
        cfg = config
        size = cfg.encoder_input_size
        if size < 16:
            raise ValueError("encoder input must be at least 16 px")
        ch = cfg.encoder_channels
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, ch[0], 3, 1, 1, bias=False), nn.PReLU(ch[0]))
        stages = []
        in_ch = ch[0]
        for out_ch, n in zip(ch, cfg.blocks_per_stage):
            blocks = [BasicResBlock(in_ch, out_ch, stride=2)] + [BasicResBlock(out_ch, out_ch) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)  # outputs at R/2, R/4 (c1), R/8 (c2), R/16 (c3)
        fpn = cfg.fpn_channels
        self.lat3 = nn.Conv2d(ch[3], fpn, 1)
        self.lat2 = nn.Conv2d(ch[2], fpn, 1)
        self.lat1 = nn.Conv2d(ch[1], fpn, 1)
        n = cfg.n_styles
        self.coarse_ind = min(cfg.coarse_ind, n)
        self.middle_ind = min(cfg.middle_ind, n)
        sizes = [size // 16, size // 8, size // 4]
        self.styles = nn.ModuleList()
        for i in range(n):
            level = 0 if i < self.coarse_ind else (1 if i < self.middle_ind else 2)
            self.styles.append(GradualStyle(fpn, cfg.style_dim, max(1, sizes[level])))
        self.n_styles = n
        self.spatial = None
        if cfg.spatial_resolution:  # the spatial code: p1 (R/4), or p0 = up(p1) + lat(c0) (R/2), then two convs
            self.spatial_level = 1 if cfg.spatial_resolution == cfg.resolution // 4 else 0
            self.spatial_size = cfg.spatial_resolution
            if self.spatial_level == 0:
                self.lat0 = nn.Conv2d(ch[0], fpn, 1)
            out = cfg.generator_config.channels(cfg.spatial_resolution)
            self.spatial = nn.Sequential(
                nn.Conv2d(fpn, out, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(out, out, 3, 1, 1), nn.LeakyReLU(0.2)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, S, S) in [-1, 1] -> W+ offsets (B, n_styles, style_dim)."""
        return self.forward_spatial(x)[0]

    def forward_spatial(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, in_channels, S, S) in [-1, 1] -> (W+ offsets (B, n_styles, style_dim), the spatial code (B, C, r, r)
        or None without ``spatial_resolution``)."""
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        c1, c2, c3 = feats[1], feats[2], feats[3]
        p3 = self.lat3(c3)
        p2 = F.interpolate(p3, size=c2.shape[-2:], mode="bilinear", align_corners=False) + self.lat2(c2)
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=False) + self.lat1(c1)
        levels = (p3, p2, p1)
        spatial = None
        if self.spatial is not None:
            p = p1
            if self.spatial_level == 0:
                c0 = feats[0]
                p = F.interpolate(p1, size=c0.shape[-2:], mode="bilinear", align_corners=False) + self.lat0(c0)
            spatial = self.spatial(p)
            r = self.spatial_size
            if spatial.shape[-1] != r:  # an encoder input size other than the generator's
                spatial = F.interpolate(spatial, size=(r, r), mode="bilinear", align_corners=False)
        if not torch.is_grad_enabled():
            fused = [_run_fused(levels[level], *stack) for level, *stack in self._fused_heads()]
            return torch.cat(fused, dim=1), spatial
        out = []
        for i, head in enumerate(self.styles):
            level = 0 if i < self.coarse_ind else (1 if i < self.middle_ind else 2)
            out.append(head(levels[level]))
        return torch.stack(out, dim=1), spatial

    def _fused_heads(self) -> list[tuple[int, list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, torch.Tensor]]:
        """Inference: the map2style heads of each level stacked into one (cached until a weight changes).

        The heads of a level read the same feature map, so their first convolutions run as one wide convolution,
        the later ones as grouped convolutions (a group per head) and their linear layers as one batched product:
        a few calls per level instead of one per head and layer (about 1.5 ms less per sketch on the 2-core CPU;
        the same outputs to float rounding). Returns (level, [(conv weight, bias) per layer], linear weight, bias).
        """
        key = tuple((p._version, p.data_ptr()) for p in self.styles.parameters())
        if getattr(self, "_fused_key", None) == key:
            return self._fused
        bounds = [(0, self.coarse_ind), (self.coarse_ind, self.middle_ind), (self.middle_ind, self.n_styles)]
        fused = []
        for level, (lo, hi) in enumerate(bounds):
            heads = list(self.styles[lo:hi])
            if not heads:
                continue
            convs = [[m for m in h.convs if isinstance(m, nn.Conv2d)] for h in heads]
            stack = [
                (torch.cat([c[i].weight for c in convs]), torch.cat([c[i].bias for c in convs]))
                for i in range(len(convs[0]))
            ]
            lin_w = torch.stack([h.linear.weight * h.linear.scale for h in heads])  # (heads, style_dim, C)
            lin_b = torch.stack([h.linear.bias * h.linear.lr_mul for h in heads])
            fused.append((level, stack, lin_w, lin_b))
        self._fused_key, self._fused = key, fused
        return fused


def _run_fused(x: torch.Tensor, stack, lin_w: torch.Tensor, lin_b: torch.Tensor) -> torch.Tensor:
    """One level's stacked map2style heads (``GradualStyleEncoder._fused_heads``) -> (B, heads, style_dim)."""
    n = lin_w.shape[0]
    y = x if stack else x.repeat(1, n, 1, 1)
    for i, (weight, bias) in enumerate(stack):
        y = F.leaky_relu(F.conv2d(y, weight, bias, stride=2, padding=1, groups=1 if i == 0 else n), 0.2)
    y = y.mean(dim=(2, 3)).view(x.shape[0], n, -1)
    return torch.einsum("bni,noi->bno", y, lin_w) + lin_b


# ------------------------------------------------------------------------------------------ PSP
class PSP(nn.Module, PyTorchModelHubMixin, library_name="sketchface", tags=["psp", "stylegan2", "sketchface"]):
    """pSp encoder + StyleGAN2 generator + average latent, in one checkpoint.

    Buffers: ``latent_avg`` (style_dim,) added to every encoder output (pSp's ``start_from_latent_avg``);
    ``directions`` (40, style_dim) unit normals of the attribute boundaries in W, ``direction_offsets``
    (40,) so that ``w @ n + offset`` is the signed distance, ``direction_scales`` (40,) the std of that
    distance over generator samples (0 = not fitted), ``direction_accuracy`` (40,) held-out balanced
    accuracy of each boundary; with ``config.style_bank = K > 0`` also ``style_bank`` (K, n_styles, style_dim),
    W+ codes of real faces whose fine styles vary the candidates (:meth:`random_styles`).
    """

    def __init__(self, config: PSPConfig | dict | None = None):
        super().__init__()
        cfg = config if isinstance(config, PSPConfig) else PSPConfig(**(config or {}))
        self.config = cfg
        self._hub_mixin_config = cfg  # huggingface_hub's mixin writes a dataclass config flat into config.json
        self.cfg = cfg
        self.encoder = GradualStyleEncoder(cfg)
        self.generator = Generator(cfg.generator_config)
        sd = cfg.style_dim
        self.register_buffer("latent_avg", torch.zeros(sd))
        self.register_buffer("directions", torch.zeros(NUM_ATTRIBUTES, sd))
        self.register_buffer("direction_offsets", torch.zeros(NUM_ATTRIBUTES))
        self.register_buffer("direction_scales", torch.zeros(NUM_ATTRIBUTES))
        self.register_buffer("direction_accuracy", torch.zeros(NUM_ATTRIBUTES))
        if cfg.style_bank > 0:
            self.register_buffer("style_bank", torch.zeros(cfg.style_bank, cfg.n_styles, sd))

    @property
    def n_styles(self) -> int:
        return self.cfg.n_styles

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] input (B, C, H, W) -> [-1, 1] at the encoder size; grey <-> RGB as the encoder needs."""
        c = self.cfg.in_channels
        if x.shape[1] == 3 and c == 1:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] == 1 and c == 3:
            x = x.expand(-1, 3, -1, -1)
        size = self.cfg.encoder_input_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x * 2 - 1

    @property
    def spatial(self) -> bool:
        """Whether the encoder also gives a spatial code (``config.spatial_resolution``)."""
        return bool(self.cfg.spatial_resolution)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sketch or photo (B, C, H, W) in [0, 1] -> W+ (B, n_styles, style_dim)."""
        return self.encode_spatial(x)[0]

    def encode_spatial(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sketch or photo (B, C, H, W) in [0, 1] -> (W+ (B, n_styles, style_dim), the spatial code (B, C', r, r) or
        None when the model has none)."""
        w, spatial = self.encoder.forward_spatial(self.prepare_input(x))
        return w + self.latent_avg.to(x.dtype), spatial

    def decode(
        self, w_plus: torch.Tensor, noise_mode: str = "const", features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """W+ (B, n_styles, style_dim) (and the spatial code of :meth:`encode_spatial`) -> image (B, 3, R, R) in
        [-1, 1]."""
        return self.generator.synthesis(w_plus, noise_mode=noise_mode, features=features)

    def pack(self, w_plus: torch.Tensor, spatial: torch.Tensor | None) -> torch.Tensor:
        """One latent tensor per face for pipelines: W+ (B, n_styles, D), followed for a spatial model by its spatial
        code cut into rows of D numbers: (B, n_styles + C·r·r / D, D). :meth:`unpack` inverts it."""
        if spatial is None:
            return w_plus
        b, d = w_plus.shape[0], w_plus.shape[-1]
        return torch.cat([w_plus, spatial.to(w_plus.dtype).reshape(b, -1, d)], dim=1)

    def unpack(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`pack`'s tensor -> (W+, spatial code or None). ValueError when its shape fits neither."""
        n = self.n_styles
        if not self.spatial:
            if latents.shape[1] != n:
                raise ValueError(f"expected latents (B, {n}, {self.cfg.style_dim}); got {tuple(latents.shape)}")
            return latents, None
        r = self.cfg.spatial_resolution
        c = self.cfg.generator_config.channels(r)
        rows = c * r * r // self.cfg.style_dim
        if latents.shape[1] != n + rows:
            raise ValueError(
                f"expected latents (B, {n + rows}, {self.cfg.style_dim}) (W+ and the spatial code); "
                f"got {tuple(latents.shape)}"
            )
        return latents[:, :n], latents[:, n:].reshape(latents.shape[0], c, r, r)

    def forward(self, x: torch.Tensor, noise_mode: str = "const") -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> (image (B, 3, R, R) in [-1, 1], w_plus)."""
        w_plus, spatial = self.encode_spatial(x)
        return self.decode(w_plus, noise_mode=noise_mode, features=spatial), w_plus

    # ------------------------------------------------------------------------ multimodal + edits
    def mix_fine(
        self, w_plus: torch.Tensor, w_random: torch.Tensor, strength: float, start: int | None = None
    ) -> torch.Tensor:
        """Blend the fine (colour/texture) layers [start, n_styles) towards random styles (pSp's mix_alpha).

        w_plus (B, n, D); w_random (B, D) or (B, n, D); layers before ``start`` stay untouched.
        ``start`` defaults to n_styles // 2 (64 px: layers 5-9 i.e. 32-64 px; 1024 px: 9-17 ~ pSp's 8-17).
        """
        start = self.n_styles // 2 if start is None else start
        if w_random.ndim == 2:
            w_random = w_random[:, None, :].expand_as(w_plus)
        mask = (torch.arange(self.n_styles, device=w_plus.device) >= start).view(1, -1, 1).to(w_plus.dtype)
        return w_plus + mask * strength * (w_random - w_plus)

    def random_styles(self, n: int, generator: torch.Generator, truncation_psi: float = 0.7) -> torch.Tensor:
        """``n`` random W+ codes (n, n_styles, D) for style mixing: rows of the style bank when there is one (real
        faces' codes), else the mapping network's samples (truncated towards its average)."""
        dev = self.latent_avg.device
        bank = getattr(self, "style_bank", None)
        if bank is not None and bank.shape[0] > 0:
            return bank[torch.randint(0, bank.shape[0], (n,), generator=generator).to(dev)]
        z = torch.randn(n, self.cfg.style_dim, generator=generator).to(dev)
        return self.generator.broadcast(self.generator.map(z, truncation_psi=truncation_psi))

    @property
    def editable_attributes(self) -> list[str]:
        """Attributes with a fitted direction."""
        return [name for i, name in enumerate(ATTRIBUTES) if float(self.direction_scales[i]) > 0]

    def edit(self, w_plus: torch.Tensor, changes: Mapping[str, bool], strength: float = 1.0) -> torch.Tensor:
        """Move W+ across the stored attribute boundaries (InterFaceGAN).

        For each ``name: present`` the signed distance d = mean_layers(w) @ n + offset is raised to at least
        ``strength`` standard deviations on the wanted side (lowered for ``False``); a face already far
        enough on that side is left alone. The shift is applied to every layer.
        """
        out = w_plus.clone()
        for name, present in changes.items():
            i = INDEX[check_name(name)]
            scale = float(self.direction_scales[i])
            if scale <= 0:
                raise ValueError(f"no attribute direction fitted for {name!r} (see fit_attribute_directions)")
            n = self.directions[i].to(out.dtype)
            d = out.mean(dim=1) @ n + self.direction_offsets[i]  # (B,)
            sign = 1.0 if present else -1.0
            target = sign * strength * scale
            delta = target - d
            delta = torch.where(sign * delta > 0, delta, torch.zeros_like(delta))
            out = out + delta.view(-1, 1, 1) * n.view(1, 1, -1)
        return out


# ------------------------------------------------------------------------------- attention loss
class RandomFeatureNet(nn.Module):
    """Fixed, randomly initialised conv stack (seeded): (B, 3, H, W) in [-1, 1] -> (B, C, H/4, W/4)."""

    def __init__(self, channels: int = 64, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Conv2d(3, channels // 2, 3, 1, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(channels // 2, channels, 3, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(channels, channels, 3, 2, 1),
                nn.LeakyReLU(0.2),
            )
        self.out_channels = channels

    def forward(self, x):
        return self.net(x)


class ClassifierFeatureNet(nn.Module):
    """Early layers of a (frozen) attribute classifier: the output of its ``layer``-th Conv2d.

    Works for any CNN classifier taking [0, 1] images; captured with a forward hook, and the forward pass
    stops at the hooked layer (saves the rest of the network).
    """

    class _Stop(Exception):
        pass

    def __init__(self, classifier: nn.Module, layer: int = 3, probe_size: int = 64):
        super().__init__()
        self.classifier = classifier
        convs = [m for m in classifier.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("classifier has no Conv2d layer")
        self.layer = min(layer, len(convs)) - 1
        self._target = convs[self.layer]
        # a following BN/activation would be nicer, but the conv output is architecture-independent
        with torch.no_grad():
            probe = self(torch.zeros(1, 3, probe_size, probe_size))
        self.out_channels = probe.shape[1]

    def forward(self, x):
        box = {}

        def hook(_m, _inp, out):
            box["out"] = out
            raise ClassifierFeatureNet._Stop

        handle = self._target.register_forward_hook(hook)
        try:
            self.classifier((x + 1) / 2)
        except ClassifierFeatureNet._Stop:
            pass
        finally:
            handle.remove()
        return box["out"]


class AttentionLoss(nn.Module):
    """Paper 2's attention loss: mean over elements of (F''(y) − F''(ŷ))², F'' = M_s(M_c(F) ⊗ F) ⊗ F.

    F comes from a frozen feature network and the CBAM is frozen too (fixed seed), so the loss can only be
    lowered by making ŷ's attended features match y's — not by shrinking the attention maps. All
    parameters have ``requires_grad=False``; gradients flow to the inputs. Inputs are images in [-1, 1].
    ``description`` names the network (log it).
    """

    def __init__(self, features: nn.Module | None = None, seed: int = 0, description: str | None = None):
        super().__init__()
        if features is None:
            features = RandomFeatureNet(64, seed=seed)
            description = description or f"fixed random conv stack (3 convs, 64 ch, seed {seed}) + CBAM (seed {seed})"
        self.features = features
        channels = features.out_channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            self.cbam = CBAM(channels, reduction=max(1, min(16, channels // 4)))
        self.description = description or f"{type(features).__name__} + CBAM (seed {seed})"
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always frozen: BN/dropout of a borrowed network stay in eval
        return super().train(False)

    @classmethod
    def from_classifier(cls, classifier: nn.Module, layer: int = 3, seed: int = 0, name: str = "classifier"):
        """Attention loss on the first ``layer`` convs of a frozen attribute classifier."""
        feats = ClassifierFeatureNet(classifier, layer=layer)
        return cls(feats, seed=seed, description=f"frozen {name} (conv {feats.layer + 1}) + CBAM (seed {seed})")

    def attended(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbam(self.features(x))

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.attended(y)
        return F.mse_loss(self.attended(y_hat), target)


# ------------------------------------------------------------------------------ directions (W)
@torch.no_grad()
def sample_labelled_latents(
    psp: PSP, classifier: nn.Module, num_samples: int = 20000, batch_size: int = 256, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator samples labelled by a classifier: (w (N, D), probabilities (N, 40)), on psp's device."""
    dev = psp.latent_avg.device
    g = torch.Generator().manual_seed(seed)
    ws, probs = [], []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = torch.randn(n, psp.cfg.style_dim, generator=g).to(dev)
        w = psp.generator.map(z)
        img = (psp.decode(psp.generator.broadcast(w)).clamp(-1, 1) + 1) / 2
        p = classifier.predict(img) if hasattr(classifier, "predict") else torch.sigmoid(classifier(img))
        ws.append(w.float().cpu())
        probs.append(p.float().cpu())
    return torch.cat(ws), torch.cat(probs)


def fit_linear_boundaries(
    w: torch.Tensor, labels: torch.Tensor, steps: int = 300, weight_decay: float = 1e-3, min_count: int = 30
) -> dict[str, torch.Tensor]:
    """Logistic-regression boundary per attribute in W (InterFaceGAN's linear boundary).

    w (N, D) float; labels (N, K) in {0, 1}. Fits all K at once on the first 80%, scores balanced accuracy
    on the last 20%. Returns normals (K, D) unit, offsets (K,), scales (K,) (0 where a class has fewer than
    ``min_count`` samples), accuracy (K,).
    """
    n = w.shape[0]
    split = int(n * 0.8)
    mu, sd = w[:split].mean(0), w[:split].std(0) + 1e-6
    x = (w - mu) / sd
    y = labels.float()
    k = y.shape[1]
    weight = torch.zeros(w.shape[1], k, requires_grad=True)
    bias = torch.zeros(k, requires_grad=True)
    pos = y[:split].mean(0).clamp(1e-3, 1 - 1e-3)
    pos_weight = (1 - pos) / pos  # balance rare attributes
    opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = x[:split] @ weight + bias
        loss = F.binary_cross_entropy_with_logits(logits, y[:split], pos_weight=pos_weight) * k
        loss = loss + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (x[split:] @ weight + bias) > 0
        yt = y[split:] > 0.5
        tpr = (pred & yt).sum(0) / yt.sum(0).clamp(min=1)
        tnr = (~pred & ~yt).sum(0) / (~yt).sum(0).clamp(min=1)
        accuracy = (tpr + tnr) / 2
        # back to raw W: logit = (w - mu)/sd @ W + b = w @ (W/sd) + (b - mu/sd @ W)
        wr = weight / sd[:, None]  # (D, K)
        br = bias - (mu / sd) @ weight
        norm = wr.norm(dim=0).clamp(min=1e-8)
        normals = (wr / norm).T.contiguous()  # (K, D)
        offsets = br / norm
        scales = (w @ normals.T + offsets).std(0)
        counts_pos, counts_neg = (y > 0.5).sum(0), (y <= 0.5).sum(0)
        ok = (counts_pos >= min_count) & (counts_neg >= min_count)
        scales = torch.where(ok, scales, torch.zeros_like(scales))
        accuracy = torch.where(ok, accuracy, torch.zeros_like(accuracy))
    return {"normals": normals, "offsets": offsets, "scales": scales, "accuracy": accuracy}


def fit_attribute_directions(
    psp: PSP, classifier: nn.Module, num_samples: int = 20000, batch_size: int = 256, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Label generator samples with ``classifier``, fit boundaries and store them in ``psp``'s buffers."""
    w, probs = sample_labelled_latents(psp, classifier, num_samples, batch_size, seed)
    fit = fit_linear_boundaries(w, (probs > 0.5).float())
    dev = psp.latent_avg.device
    psp.directions.copy_(fit["normals"].to(dev))
    psp.direction_offsets.copy_(fit["offsets"].to(dev))
    psp.direction_scales.copy_(fit["scales"].to(dev))
    psp.direction_accuracy.copy_(fit["accuracy"].to(dev))
    fit["positive_rate"] = (probs > 0.5).float().mean(0)
    return fit
