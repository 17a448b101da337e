"""Shared building blocks: StyleGAN2 layers in pure PyTorch, residual blocks, CBAM and two PatchGAN critics.

The StyleGAN2 layers follow rosinality/stylegan2-pytorch (equalised learning rate, modulated /
demodulated convolutions, [1, 3, 3, 1] blur), with its compiled CUDA ops (``fused_leaky_relu``,
``upfirdn2d``) replaced by their pure-PyTorch equivalents so everything runs on a CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


# --------------------------------------------------------------------------------------------- ops
def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, slope: float = 0.2) -> torch.Tensor:
    """leaky_relu(x + bias) * sqrt(2): the gain keeps activations at unit variance."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, slope) * SQRT2


def make_kernel(k: tuple[float, ...] | list[float]) -> torch.Tensor:
    """Separable FIR kernel (outer product of a 1-D kernel), normalised to sum 1."""
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def separable_taps(kernel: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(vertical, horizontal) 1-D taps whose outer product is the 2-D ``kernel``, or None if it is not separable."""
    k = kernel.detach().double().cpu()
    i = int(k.abs().argmax())
    r, c = divmod(i, k.shape[1])
    col, row = k[:, c], k[r] / k[r, c]
    if not torch.allclose(torch.outer(col, row), k, rtol=1e-6, atol=1e-9):
        return None
    return tuple(col.tolist()), tuple(row.tolist())


def _fir_taps(x: torch.Tensor, taps: tuple[float, ...], dim: int) -> torch.Tensor:
    """Correlation of ``x`` along ``dim`` with the flipped taps (= convolution), 'valid' size."""
    n = len(taps)
    length = x.shape[dim] - n + 1
    flipped = taps[::-1]
    out = x.narrow(dim, 0, length) * flipped[0]
    for t in range(1, n):
        out = out + x.narrow(dim, t, length) * flipped[t]
    return out


def _depthwise(taps: tuple[float, ...], channels: int, like: torch.Tensor, vertical: bool) -> torch.Tensor:
    """Depthwise weight (C, 1, n, 1) or (C, 1, 1, n) correlating with the flipped taps (= convolving with them)."""
    k = torch.tensor(taps[::-1], dtype=like.dtype, device=like.device)
    shape = (1, 1, len(taps), 1) if vertical else (1, 1, 1, len(taps))
    return k.view(shape).expand(channels, -1, -1, -1)


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
    taps: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
):
    """Upsample (zero insertion), FIR filter, downsample: the pure-torch path of rosinality's op.

    x: (B, C, H, W); kernel: (kh, kw); pad: (before, after) applied to both axes. ``taps``: the kernel's 1-D
    factors (:func:`separable_taps`); when given, the filter runs per axis: as a few shifted multiply-adds on
    contiguous tensors (several times faster on a CPU than a 2-D depthwise convolution there), as a depthwise 1-D
    convolution on channels_last ones. Both give the same result as the 2-D filter.
    """
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:  # negative padding crops
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    if taps is not None and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        # channels_last: two depthwise 1-D convolutions in oneDNN, several times faster in this layout than the
        # shifted multiply-adds (which stride across channels there)
        x = F.conv2d(x, _depthwise(taps[0], c, x, vertical=True), groups=c)
        x = F.conv2d(x, _depthwise(taps[1], c, x, vertical=False), groups=c)
    elif taps is not None:
        x = _fir_taps(_fir_taps(x, taps[0], 2), taps[1], 3)
    else:
        # depthwise conv with the flipped kernel = correlation with the FIR filter
        weight = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw).repeat(c, 1, 1, 1)
        x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


class Blur(nn.Module):
    """FIR low-pass filter (used around strided / transposed convolutions against aliasing)."""

    def __init__(self, kernel, pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor**2)
        self.register_buffer("kernel", k, persistent=False)
        self.taps = separable_taps(k)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad, taps=self.taps)


class Upsample(nn.Module):
    """2x upsampling with the FIR kernel (for the skip toRGB path)."""

    def __init__(self, kernel, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor**2), persistent=False)
        self.taps = separable_taps(self.kernel)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, taps=self.taps)


# ------------------------------------------------------------------------------ equalised layers
class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate (weights ~ N(0, 1), scaled at run time by 1/sqrt(fan_in))."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; ``lr_mul`` slows the mapping network down."""

    def __init__(self, in_dim: int, out_dim: int, bias=True, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class ScaledLeakyReLU(nn.Module):
    def forward(self, x):
        return F.leaky_relu(x, 0.2) * SQRT2


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU + sqrt(2) gain (pure-torch version of rosinality's fused op)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


# ------------------------------------------------------------------------------------ generator
class ModulatedConv2d(nn.Module):
    """Modulated (and demodulated) 3x3 / 1x1 convolution of StyleGAN2.

    Implemented the "non-fused" way (scale the input by the style, convolve with the shared weight,
    scale the output by the demodulation coefficients), which equals the grouped-conv form of the paper
    and is faster on both CPU and GPU than a batch-sized grouped convolution.
    """

    def __init__(
        self, in_ch, out_ch, kernel_size, style_dim, demodulate=True, upsample=False, blur_kernel=(1, 3, 3, 1)
    ):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)

    def _weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(scaled conv weight in the layout F.conv2d / F.conv_transpose2d wants, Σ_k w² per (out, in)).

        Without gradients (inference) both are cached until the weight changes: recomputing them on every call
        costs about a fifth of a 64 px CPU forward pass.
        """
        key = (self.weight._version, self.weight.data_ptr(), dtype)
        if not torch.is_grad_enabled() and getattr(self, "_cache_key", None) == key:
            return self._cache
        weight = self.weight * self.scale  # (out, in, k, k)
        sq = weight.pow(2).sum(dim=(2, 3))
        conv = (weight.transpose(0, 1) if self.upsample else weight).to(dtype)  # transposed conv: (in, out, k, k)
        if torch.is_grad_enabled():
            return conv, sq
        self._cache_key, self._cache = key, (conv.contiguous(), sq)
        return self._cache

    def forward(self, x, style):
        b = x.shape[0]
        s = self.modulation(style)  # (B, in_ch)
        weight, sq = self._weights(x.dtype)
        if self.kernel_size == 1 and not self.demodulate and x.is_contiguous(memory_format=torch.channels_last):
            # toRGB on channels_last: one batched matmul with the style folded into the weight (oneDNN runs a 1x1
            # convolution to 3 channels on its slow path, about 4x slower at 64 px)
            h, w = x.shape[2:]
            mod = s.to(x.dtype)[:, :, None] * weight.view(self.out_ch, self.in_ch).t()  # (B, in, out)
            out = torch.bmm(x.permute(0, 2, 3, 1).reshape(b, h * w, self.in_ch), mod)
            return out.view(b, h, w, self.out_ch).permute(0, 3, 1, 2)
        x = x * s.view(b, -1, 1, 1).to(x.dtype)
        if self.upsample:
            x = F.conv_transpose2d(x, weight, stride=2, padding=0)
            x = self.blur(x)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # d_j = 1 / sqrt(sum_i,k (w_ijk s_i)^2): (B, out)
            dcoef = torch.rsqrt((sq[None] * s.pow(2)[:, None, :]).sum(-1) + 1e-8)
            x = x * dcoef.view(b, -1, 1, 1).to(x.dtype)
        return x


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned per-layer weight."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        if noise is None:
            return x
        return x + self.weight * noise.to(x.dtype)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """ModulatedConv2d + noise + bias/leaky ReLU."""

    def __init__(self, in_ch, out_ch, kernel_size, style_dim, upsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x, style, noise=None):
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), added to the upsampled skip image."""

    def __init__(self, in_ch, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.upsample = Upsample(blur_kernel) if upsample else None
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# -------------------------------------------------------------------------------- discriminator
class ConvLayer(nn.Sequential):
    """Equalised conv (optionally blur + stride-2 downsample) + bias/leaky ReLU."""

    def __init__(
        self, in_ch, out_ch, kernel_size, downsample=False, blur_kernel=(1, 3, 3, 1), bias=True, activate=True
    ):
        layers = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(in_ch, out_ch, kernel_size, padding=padding, stride=stride, bias=bias and not activate)
        )
        if activate:
            layers.append(FusedLeakyReLU(out_ch) if bias else ScaledLeakyReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual downsampling block of the StyleGAN2 discriminator (output scaled by 1/sqrt(2))."""

    def __init__(self, in_ch, out_ch, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False, blur_kernel=blur_kernel)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


# ------------------------------------------------------------------------------------- encoder
class BasicResBlock(nn.Module):
    """Pre-activation residual block (BN-free: GroupNorm + PReLU), optional stride 2.

    A small stand-in for the IR-SE blocks of pSp's ResNet-IR backbone.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        groups = max(1, min(8, in_ch // 8))
        self.body = nn.Sequential(
            nn.GroupNorm(groups, in_ch),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
            nn.PReLU(out_ch),
            nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False),
            nn.GroupNorm(max(1, min(8, out_ch // 8)), out_ch),
        )
        if stride == 1 and in_ch == out_ch:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


# ---------------------------------------------------------------------------------------- CBAM
class ChannelAttention(nn.Module):
    """M_c(F) = sigmoid(MLP(avgpool(F)) + MLP(maxpool(F))): (B, C, 1, 1)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(), nn.Conv2d(hidden, channels, 1, bias=False)
        )

    def forward(self, x):
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """M_s(F) = sigmoid(conv7x7([mean_c(F); max_c(F)])): (B, 1, H, W)."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return torch.sigmoid(self.conv(desc))


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018) as paper 2 writes it.

    F' = M_c(F) ⊗ F;  F'' = M_s(F') ⊗ F  (paper 2 multiplies the spatial map back onto F, not F').
    ``forward`` returns F''; ``maps`` returns (M_c, M_s).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def maps(self, x):
        mc = self.channel(x)  # (B, C, 1, 1)
        ms = self.spatial(mc * x)  # (B, 1, H, W)
        return mc, ms

    def forward(self, x):
        _, ms = self.maps(x)
        return ms * x


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN (pix2pix): sketch (B, 1, R, R) + photo (B, 3, R, R) in [0, 1] → logits (B, 1, R/8, R/8);
    with ``in_channels=3`` an unconditional critic of photos alone.

    Spectral-normalised convolutions keep the critic light and stable beside a reconstruction loss.
    """

    def __init__(self, in_channels: int = 4, width: int = 64, layers: int = 3):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        mods: list[nn.Module] = []
        c_in = in_channels
        for i in range(layers):
            c_out = width * 2**i
            mods += [sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        mods += [sn(nn.Conv2d(c_in, c_in, 3, padding=1)), nn.LeakyReLU(0.2), nn.Conv2d(c_in, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (the condition first, e.g. sketch then photo), joined on the channel axis."""
        return self.net(torch.cat(images, dim=1) * 2 - 1)


class DecoderPatchDiscriminator(nn.Module):
    """Unconditional PatchGAN critic for the adversarial fine-tuning of the MVAE's decoder
    (``train/mvae.py --adversarial_weight``).

    image (B, 3, S, S) in [-1, 1] → logits (B, (S/8)²), one per overlapping patch of about 22 px: it judges local
    sharpness and texture, not the whole face. Spectral norm on every conv, no BatchNorm (real and fake batches
    are seen separately). Used in training only; never part of a saved model. Unlike :class:`PatchDiscriminator`
    it takes one image already in [-1, 1], has no extra 3×3 block and returns the patch logits flattened.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), in_channels: int = 3):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [sn(nn.Conv2d(c, w, 4, 2, 1)), nn.LeakyReLU(0.2)]  # halves the resolution
            c = w
        layers.append(sn(nn.Conv2d(c, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)
