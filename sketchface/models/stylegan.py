"""StyleGAN2 generator and residual discriminator in pure PyTorch (after rosinality/stylegan2-pytorch).

Latent layout (as rosinality): ``n_latent = 2 * log2(resolution) - 2`` style vectors. Index 0 drives the
4x4 conv, index 1 the 4x4 toRGB and the first 8x8 conv; for resolution r = 2^(k+2) (k >= 1) the upsampling
conv, second conv and toRGB use indices 2k-1, 2k, 2k+1. Coarse (pose, face shape) styles come first,
fine (colour, texture) styles last.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .layers import ConstantInput, ConvLayer, EqualLinear, PixelNorm, ResBlock, StyledConv, ToRGB


@dataclass
class StyleGANConfig:
    """Architecture of generator and discriminator.

    Channel width at resolution r: ``min(max_channels, int(channel_multiplier * 16384 / r))``. The defaults
    (0.5, 256) give 256 channels up to 32 px and 128 at 64 px (fast on a CPU); with
    ``channel_multiplier=2, max_channels=512`` this is rosinality's table (512 up to 64 px, 256 at 128 ...).
    """

    model_type: str = "stylegan2"
    resolution: int = 64
    style_dim: int = 256
    n_mlp: int = 8
    channel_multiplier: float = 0.5
    max_channels: int = 256
    lr_mlp: float = 0.01
    blur_kernel: list[int] = field(default_factory=lambda: [1, 3, 3, 1])
    # discriminator widths (same formula); defaults to the generator's when None
    d_channel_multiplier: float | None = None
    d_max_channels: int | None = None

    def __post_init__(self):
        log = math.log2(self.resolution)
        if self.resolution < 8 or log != int(log):
            raise ValueError(f"resolution must be a power of two >= 8, got {self.resolution}")
        self.blur_kernel = list(self.blur_kernel)

    @property
    def log_size(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def n_latent(self) -> int:
        return self.log_size * 2 - 2

    def channels(self, res: int, discriminator: bool = False) -> int:
        mult = self.channel_multiplier
        cap = self.max_channels
        if discriminator:
            mult = self.d_channel_multiplier if self.d_channel_multiplier is not None else mult
            cap = self.d_max_channels if self.d_max_channels is not None else cap
        return max(1, min(cap, int(mult * 16384 / res)))


# Resolution from which a channels_last generator switches its activations to that layout: oneDNN's NHWC
# convolutions are faster there, its NCHW ones at 4-16 px (2-core CPU, docs/history.md "Speeding up pSp").
CHANNELS_LAST_FROM = 32


def n_styles_for(resolution: int) -> int:
    """Number of W+ style vectors for a resolution: 64 -> 10, 128 -> 12, 256 -> 14, 1024 -> 18."""
    return int(math.log2(resolution)) * 2 - 2


def _as_config(config) -> StyleGANConfig:
    if isinstance(config, StyleGANConfig):
        return config
    return StyleGANConfig(**(config or {}))


class Generator(nn.Module, PyTorchModelHubMixin, library_name="sketchface", tags=["stylegan2", "sketchface"]):
    """StyleGAN2 generator: mapping network z -> w, synthesis network W+ -> image in [-1, 1].

    Buffers: ``w_avg`` (style_dim,) the running mean of w (tracked during training, used for truncation
    and as pSp's average latent); ``noise_{i}`` fixed noise maps for deterministic ("const") synthesis.
    """

    def __init__(self, config: StyleGANConfig | dict | None = None):
        super().__init__()
        cfg = _as_config(config)
        self.config = cfg
        self.cfg = cfg
        self._hub_mixin_config = cfg  # huggingface_hub's mixin writes a dataclass config flat into config.json
        sd = cfg.style_dim
        self.style_dim = sd
        self.n_latent = cfg.n_latent
        self.resolution = cfg.resolution

        self.mapping = nn.Sequential(
            PixelNorm(), *[EqualLinear(sd, sd, lr_mul=cfg.lr_mlp, activation=True) for _ in range(cfg.n_mlp)]
        )
        bk = cfg.blur_kernel
        self.input = ConstantInput(cfg.channels(4))
        self.conv1 = StyledConv(cfg.channels(4), cfg.channels(4), 3, sd, blur_kernel=bk)
        self.to_rgb1 = ToRGB(cfg.channels(4), sd, upsample=False)

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = cfg.channels(4)
        for i in range(3, cfg.log_size + 1):
            out_ch = cfg.channels(2**i)
            self.convs.append(StyledConv(in_ch, out_ch, 3, sd, upsample=True, blur_kernel=bk))
            self.convs.append(StyledConv(out_ch, out_ch, 3, sd, blur_kernel=bk))
            self.to_rgbs.append(ToRGB(out_ch, sd, blur_kernel=bk))
            in_ch = out_ch

        # one noise map per StyledConv: 4x4, then two per resolution
        self.num_layers = (cfg.log_size - 2) * 2 + 1
        g = torch.Generator().manual_seed(1234)
        for layer in range(self.num_layers):
            res = 2 ** ((layer + 5) // 2)
            self.register_buffer(f"noise_{layer}", torch.randn(1, 1, res, res, generator=g))
        self.register_buffer("w_avg", torch.zeros(sd))

    # ---------------------------------------------------------------------------- latents
    def map(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z (B, style_dim) -> w (B, style_dim), optionally truncated towards ``w_avg``."""
        w = self.mapping(z)
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype) + truncation_psi * (w - self.w_avg.to(w.dtype))
        return w

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of w over n random z: (style_dim,)."""
        dev = self.w_avg.device
        z = torch.randn(n, self.style_dim, generator=generator).to(dev)
        return self.mapping(z).mean(0)

    def noises(self, batch: int, mode: str, device, dtype=torch.float32) -> list[torch.Tensor | None]:
        if mode == "const":
            return [getattr(self, f"noise_{i}").to(dtype) for i in range(self.num_layers)]
        if mode == "random":
            return [
                torch.randn(batch, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), device=device, dtype=dtype)
                for i in range(self.num_layers)
            ]
        if mode == "none":
            return [None] * self.num_layers
        raise ValueError(f"noise mode must be 'const', 'random' or 'none', got {mode!r}")

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (B, D) -> W+ (B, n_latent, D)."""
        return w[:, None, :].expand(-1, self.n_latent, -1)

    # ---------------------------------------------------------------------------- synthesis
    def synthesis(
        self,
        w_plus: torch.Tensor,
        noise_mode: str = "const",
        noise: list | None = None,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """W+ (B, n_latent, style_dim) -> image (B, 3, R, R) in roughly [-1, 1].

        ``features`` (B, channels(r), r, r), 8 <= r < R: a spatial code that replaces the generator's own
        activations at resolution r (after the Feature-Style encoder, Yao et al. 2022): synthesis starts there, the
        styles of the layers below r go unused and the layers above r are modulated by W+ as usual.
        """
        if w_plus.ndim == 2:
            w_plus = self.broadcast(w_plus)
        if w_plus.shape[1] != self.n_latent:
            raise ValueError(f"expected {self.n_latent} style vectors, got {w_plus.shape[1]}")
        b = w_plus.shape[0]
        if noise is None:
            noise = self.noises(b, noise_mode, w_plus.device, w_plus.dtype)
        start = 0  # the first (upsampling conv, conv, toRGB) block to run
        if features is None:
            x = self.input(b)
            x = self.conv1(x, w_plus[:, 0], noise[0])
            skip = self.to_rgb1(x, w_plus[:, 1])
        else:
            res = features.shape[-1]
            if res not in [2**k for k in range(3, self.cfg.log_size)] or features.shape[1] != self.cfg.channels(res):
                raise ValueError(
                    f"features must be (B, {self.cfg.channels(res)}, r, r) with 8 <= r < {self.resolution}; "
                    f"got {tuple(features.shape)}"
                )
            start = int(math.log2(res)) - 2  # blocks [0, start) draw 8 .. r px
            x = features.to(w_plus.dtype)
            skip = self.to_rgbs[start - 1](x, w_plus[:, 2 * start + 1])
        i = 2 * start + 1
        channels_last = self.convs[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
        for conv_up, conv, to_rgb, n1, n2 in zip(
            self.convs[2 * start :: 2],
            self.convs[2 * start + 1 :: 2],
            self.to_rgbs[start:],
            noise[2 * start + 1 :: 2],
            noise[2 * start + 2 :: 2],
        ):
            if channels_last and x.shape[-1] >= CHANNELS_LAST_FROM // 2:
                # a channels_last model (the pipelines' CPU layout) runs its larger layers in that layout
                x = x.contiguous(memory_format=torch.channels_last)
                skip = skip.contiguous(memory_format=torch.channels_last)
            x = conv_up(x, w_plus[:, i], n1)
            x = conv(x, w_plus[:, i + 1], n2)
            skip = to_rgb(x, w_plus[:, i + 2], skip)
            i += 2
        return skip

    def mix(self, w1: torch.Tensor, w2: torch.Tensor, crossover: int | torch.Tensor) -> torch.Tensor:
        """Style mixing: layers < crossover from w1, layers >= crossover from w2 -> W+ (B, n_latent, D)."""
        idx = torch.arange(self.n_latent, device=w1.device)[None, :, None]
        if isinstance(crossover, torch.Tensor):
            crossover = crossover.view(-1, 1, 1)
        w1p = w1 if w1.ndim == 3 else self.broadcast(w1)
        w2p = w2 if w2.ndim == 3 else self.broadcast(w2)
        return torch.where(idx < crossover, w1p, w2p)

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        noise_mode: str = "random",
        z2: torch.Tensor | None = None,
        crossover: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """z (B, style_dim) -> image (B, 3, R, R) in [-1, 1].

        With ``z2`` and ``crossover`` (B,) ints: style mixing (layers >= crossover take z2's styles), the
        regulariser used in training; going through ``forward`` keeps it DistributedDataParallel-safe.
        """
        w_plus = self.broadcast(self.map(z, truncation_psi))
        if z2 is not None:
            w_plus = self.mix(w_plus, self.map(z2, truncation_psi), crossover)
        return self.synthesis(w_plus, noise_mode=noise_mode)

    def config_dict(self) -> dict:
        return asdict(self.cfg)


class Discriminator(nn.Module, PyTorchModelHubMixin, library_name="sketchface", tags=["stylegan2", "sketchface"]):
    """Residual StyleGAN2 discriminator with a minibatch standard-deviation feature."""

    def __init__(self, config: StyleGANConfig | dict | None = None, stddev_group: int = 4):
        super().__init__()
        cfg = _as_config(config)
        self.config = cfg
        self.cfg = cfg
        self._hub_mixin_config = cfg  # huggingface_hub's mixin writes a dataclass config flat into config.json
        ch = lambda r: cfg.channels(r, discriminator=True)  # noqa: E731
        layers = [ConvLayer(3, ch(cfg.resolution), 1)]
        in_ch = ch(cfg.resolution)
        for i in range(cfg.log_size, 2, -1):
            out_ch = ch(2 ** (i - 1))
            layers.append(ResBlock(in_ch, out_ch, cfg.blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*layers)
        self.stddev_group = stddev_group
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_ch + 1, ch(4), 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch(4) * 4 * 4, ch(4), activation=True),
            EqualLinear(ch(4), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """image (B, 3, R, R) in [-1, 1] -> logits (B, 1)."""
        out = self.convs(x)  # (B, C, 4, 4)
        b, c, h, w = out.shape
        group = min(b, self.stddev_group)
        while b % group:  # fall back to a divisor of the batch
            group -= 1
        std = out.view(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        std = torch.sqrt(std.float().var(0, unbiased=False) + 1e-8).to(out.dtype)
        std = std.mean([2, 3, 4], keepdim=True).squeeze(2).repeat(group, 1, h, w)
        out = self.final_conv(torch.cat([out, std], 1))
        return self.final_linear(out.flatten(1))
