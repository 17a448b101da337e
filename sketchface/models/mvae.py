"""Paper 1 (*Deep Criminal Sketch Artist*): the cross-modal VAE and the multimodal VAE with a product of experts.

Both share the paper's blocks: a DCGAN-style image encoder (four stride-2 convolutions growing in width, two
fully connected layers → ``mu``, ``logvar``), its mirror decoder (fully connected → four transposed
convolutions → image logits; :meth:`decode` applies the sigmoid), an attribute encoder (three fully connected
layers, hidden 512) and an attribute decoder (→ 40 logits). Latent size 100, BatchNorm throughout.

* :class:`CrossModalVAE` — Approach 1 (Algorithm 1): attribute encoder → z → image decoder, MSE + KL,
  LeakyReLU.
* :class:`MVAE` — Approach 2 (Wu & Goodman 2018, reference code mhw32/multimodal-vae-public): one Gaussian
  expert per modality plus the prior expert N(0, I), combined in closed form by :func:`poe`; Swish (SiLU).
  Beyond the paper: the attribute expert takes values *and* a known-mask (tri-state descriptions), and an
  optional third expert encodes a 1-channel sketch, so a drawing and a description combine in one posterior.

Attribute input convention: ``values`` (B, 40) in {0, 1} and ``known`` (B, 40) in {0, 1}; the attribute
encoder sees ``[values * known, known]`` (B, 80), so the value of an unknown attribute cannot leak in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..attributes import NUM_ATTRIBUTES
from ..losses import attribute_nll, gaussian_kl, gaussian_kl_between, image_nll

LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0  # keeps exp(±logvar) finite in float16/bfloat16 autocast


# ------------------------------------------------------------------------------------------------------------ config


@dataclass
class MVAEConfig:
    """Hyper-parameters of :class:`MVAE` (JSON-serialisable: it becomes config.json)."""

    model_type: str = "mvae"
    image_size: int = 64  # 16 · 2^k; 64 default (paper), 128 supported
    latent_dim: int = 100
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 128])  # the 4 conv layers
    fc_dim: int = 256  # hidden width of the image encoder's first fully connected layer
    attr_hidden: int = 512
    activation: str = "swish"  # "swish" (MVAE) | "leaky_relu" (cross-modal VAE)
    dropout: float = 0.1  # in the image encoder's fully connected head, as in the reference
    use_sketch: bool = True  # third expert: 1-channel sketch
    num_attributes: int = NUM_ATTRIBUTES
    # loss (ELBO) settings travel with the model so a checkpoint records how it was trained
    image_likelihood: str = "bce"  # "bce" (reference MVAE) | "mse" (paper 1, Approach 1)
    image_weight: float = 1.0  # lambda_image
    attribute_weight: float = 10.0  # lambda_attrs (reference default 10)
    align_weight: float = 1.0  # KL(stop_grad q(z|image, attrs) || q(z|subset)); 0 = the plain MVAE objective
    cross_weight: float = 0.0  # weight of the image reconstruction from the attribute-only posterior
    # image decoder (beyond the paper): its 4 widths from coarse to fine (None: the mirror of ``widths``), and
    # decoder_full_res > 0 ends it with that many channels at full resolution and a 3×3 conv to the logits
    decoder_widths: list[int] | None = None
    decoder_full_res: int = 0

    def __post_init__(self) -> None:
        self.widths = [int(w) for w in self.widths]
        if len(self.widths) != 4:
            raise ValueError(f"widths must list the 4 conv layer widths, got {self.widths}")
        if self.decoder_widths is not None:
            self.decoder_widths = [int(w) for w in self.decoder_widths]
            if len(self.decoder_widths) != 4:
                raise ValueError(f"decoder_widths must list 4 widths (coarse to fine), got {self.decoder_widths}")
        if self.decoder_full_res < 0:
            raise ValueError(f"decoder_full_res must be 0 (off) or a channel count, got {self.decoder_full_res}")
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (>= 16), got {self.image_size}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.image_likelihood not in ("bce", "mse"):
            raise ValueError(f"image_likelihood must be 'bce' or 'mse', got {self.image_likelihood!r}")


@dataclass
class CrossModalVAEConfig(MVAEConfig):
    """Hyper-parameters of :class:`CrossModalVAE` (paper 1, Approach 1): LeakyReLU, MSE, no image/sketch expert."""

    model_type: str = "cvae"
    activation: str = "leaky_relu"
    use_sketch: bool = False
    image_likelihood: str = "mse"
    align_weight: float = 0.0


ACTIVATIONS = {"swish": nn.SiLU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


# ------------------------------------------------------------------------------------------------------------ blocks


class ImageEncoder(nn.Module):
    """DCGAN encoder: (B, C, S, S) in [0, 1] → (mu, logvar), each (B, latent_dim)."""

    def __init__(self, cfg: MVAEConfig, in_channels: int = 3):
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(cfg.widths):
            layers.append(nn.Conv2d(c, w, 4, 2, 1, bias=False))  # halves the resolution
            if i > 0:  # DCGAN: no BatchNorm on the first layer
                layers.append(nn.BatchNorm2d(w))
            layers.append(act())
            c = w
        self.features = nn.Sequential(*layers)
        base = cfg.image_size // 16
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * base * base, cfg.fc_dim),
            act(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc_dim, 2 * cfg.latent_dim),
        )
        self.latent_dim = cfg.latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.head(self.features(x * 2.0 - 1.0))  # [0, 1] → [-1, 1]; (B, 2D)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]


class ImageDecoder(nn.Module):
    """Mirror of :class:`ImageEncoder`: z (B, latent_dim) → image logits (B, 3, S, S)."""

    def __init__(self, cfg: MVAEConfig, out_channels: int = 3):
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        self.base = cfg.image_size // 16
        widths = list(cfg.decoder_widths or cfg.widths[::-1])  # e.g. 128, 128, 64, 32
        self.fc = nn.Sequential(nn.Linear(cfg.latent_dim, widths[0] * self.base**2), act())
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), act()]
        if cfg.decoder_full_res:  # features at full resolution, then a 3×3 conv to the logits
            c = cfg.decoder_full_res
            layers += [nn.ConvTranspose2d(widths[-1], c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), act()]
            layers.append(nn.Conv2d(c, out_channels, 3, 1, 1))
        else:
            layers.append(nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1))  # logits, no sigmoid (see losses)
        self.deconv = nn.Sequential(*layers)
        self.channels = widths[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.channels, self.base, self.base)  # (B, C, S/16, S/16)
        return self.deconv(h)


class AttributeEncoder(nn.Module):
    """Tri-state attributes → (mu, logvar): input ``[values * known, known]`` (B, 80), three FC layers."""

    def __init__(self, cfg: MVAEConfig):
        super().__init__()
        act, h, a = ACTIVATIONS[cfg.activation], cfg.attr_hidden, cfg.num_attributes
        self.net = nn.Sequential(
            nn.Linear(2 * a, h),
            nn.BatchNorm1d(h),
            act(),
            nn.Linear(h, h),
            nn.BatchNorm1d(h),
            act(),
            nn.Linear(h, 2 * cfg.latent_dim),
        )
        self.latent_dim = cfg.latent_dim

    def forward(self, values: torch.Tensor, known: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if known is None:
            known = torch.ones_like(values)
        known = known.to(values.dtype)
        h = self.net(torch.cat([values * known, known], dim=1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]


class AttributeDecoder(nn.Module):
    """z (B, latent_dim) → attribute logits (B, 40)."""

    def __init__(self, cfg: MVAEConfig):
        super().__init__()
        act, h = ACTIVATIONS[cfg.activation], cfg.attr_hidden
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, h),
            nn.BatchNorm1d(h),
            act(),
            nn.Linear(h, h),
            nn.BatchNorm1d(h),
            act(),
            nn.Linear(h, cfg.num_attributes),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


# ---------------------------------------------------------------------------------------------- product of experts


def prior_expert(batch_size: int, latent_dim: int, device=None, dtype=torch.float32) -> tuple[torch.Tensor, ...]:
    """The universal prior expert N(0, I): (mu, logvar), each (batch_size, latent_dim) of zeros."""
    zeros = torch.zeros(batch_size, latent_dim, device=device, dtype=dtype)
    return zeros, zeros.clone()


def poe(
    mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of Gaussian experts in closed form (precision-weighted mean).

    ``mu``, ``logvar``: (M, B, D) for M experts; ``mask``: (M, B) presence (1 = expert present for that
    sample, 0 = absent, so one batch can mix observed and missing modalities). With precisions
    ``T_i = mask_i / var_i``: ``var = 1 / sum T_i`` and ``mu = var * sum T_i mu_i``. Include the prior expert
    in the stack yourself (see :func:`prior_expert`) if you want it. Returns (mu, logvar), each (B, D), float32.
    """
    mu, logvar = mu.float(), logvar.float().clamp(LOGVAR_MIN, LOGVAR_MAX)
    precision = torch.exp(-logvar)  # (M, B, D)
    if mask is not None:
        if mask.shape != mu.shape[:2]:
            raise ValueError(f"mask must have shape (M, B) = {tuple(mu.shape[:2])}, got {tuple(mask.shape)}")
        precision = precision * mask.to(precision.dtype)[..., None]
    total = precision.sum(0) + eps  # (B, D)
    pd_mu = (mu * precision).sum(0) / total
    return pd_mu, -torch.log(total)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mu + temperature * sigma * eps, eps ~ N(0, I) drawn from ``generator`` (on mu's device)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + temperature * torch.exp(0.5 * logvar) * eps


# ---------------------------------------------------------------------------------------------------------- models


def _as_config(config, cls):
    if config is None:
        return cls()
    if isinstance(config, dict):
        return cls(**config)
    return config


class _VAEBase(nn.Module):
    config: MVAEConfig

    def _init_config(self, config: MVAEConfig) -> None:
        self.config = config
        self._hub_mixin_config = config  # huggingface_hub's mixin writes a dataclass config flat into config.json

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Image logits (B, 3, S, S)."""
        return self.image_decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, S, S) in [0, 1]."""
        return torch.sigmoid(self.image_decoder(z).float())


class CrossModalVAE(
    _VAEBase,
    PyTorchModelHubMixin,
    library_name="sketchface",
    tags=["sketchface", "vae", "celeba-attributes"],
    repo_url="https://github.com/sketchface/sketchface",
):
    """Paper 1, Approach 1 (cross-modal VAE, Algorithm 1): attributes → q(z|a) → z → image decoder.

    Loss: sum-of-squares image error + annealed KL(q(z|a) || N(0, I)). The attribute encoder takes the
    known-mask too, so partial descriptions work at inference time.
    """

    def __init__(self, config: CrossModalVAEConfig | dict | None = None):
        super().__init__()
        self._init_config(_as_config(config, CrossModalVAEConfig))
        self.attribute_encoder = AttributeEncoder(self.config)
        self.image_decoder = ImageDecoder(self.config)

    def infer(
        self,
        image: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        sketch: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | attributes): (mu, logvar), each (B, latent_dim). Only attributes are an input here."""
        if image is not None or sketch is not None:
            raise ValueError("The cross-modal VAE encodes attributes only (it has no image or sketch encoder).")
        if values is None:
            raise ValueError("The cross-modal VAE needs attribute values (use known=0 for unknown ones).")
        mu, logvar = self.attribute_encoder(values, known)
        return mu.float(), logvar.float().clamp(LOGVAR_MIN, LOGVAR_MAX)

    def forward(self, values: torch.Tensor, known: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """(image_logits, mu, logvar); z is sampled in training mode and is the mean in eval mode."""
        mu, logvar = self.infer(values=values, known=known)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode_logits(z), mu, logvar

    def loss(
        self,
        image: torch.Tensor,
        labels: torch.Tensor,
        known: torch.Tensor | None = None,
        annealing_factor: float = 1.0,
        **_: object,
    ) -> dict[str, torch.Tensor]:
        """Algorithm 1's loss, batch mean: {"loss", "recon", "kl"}."""
        logits, mu, logvar = self(labels, known)
        recon = image_nll(logits, image, self.config.image_likelihood)
        kl = gaussian_kl(mu, logvar)
        loss = (self.config.image_weight * recon + annealing_factor * kl).mean()
        return {"loss": loss, "recon": recon.mean().detach(), "kl": kl.mean().detach()}


class MVAE(
    _VAEBase,
    PyTorchModelHubMixin,
    library_name="sketchface",
    tags=["sketchface", "vae", "mvae", "product-of-experts", "celeba-attributes"],
    repo_url="https://github.com/sketchface/sketchface",
):
    """Multimodal VAE with a product-of-experts posterior over image, attributes and (optionally) sketch.

    ``q(z | present modalities) ∝ p(z) · Π_i q_i(z | x_i)``; any subset of modalities (per sample) gives a
    posterior, so attributes alone, a sketch alone, or a sketch plus attributes all generate faces.
    """

    def __init__(self, config: MVAEConfig | dict | None = None):
        super().__init__()
        self._init_config(_as_config(config, MVAEConfig))
        cfg = self.config
        self.image_encoder = ImageEncoder(cfg, 3)
        self.image_decoder = ImageDecoder(cfg, 3)
        self.attribute_encoder = AttributeEncoder(cfg)
        self.attribute_decoder = AttributeDecoder(cfg)
        self.sketch_encoder = ImageEncoder(cfg, 1) if cfg.use_sketch else None

    # -------------------------------------------------------------------------------------------- inference
    def experts(
        self,
        image: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        sketch: torch.Tensor | None = None,
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each given modality's Gaussian expert: {"image" | "attributes" | "sketch": (mu, logvar)}, float32."""
        out = {}
        if image is not None:
            out["image"] = self.image_encoder(image)
        if values is not None:
            out["attributes"] = self.attribute_encoder(values, known)
        if sketch is not None:
            if self.sketch_encoder is None:
                raise ValueError("This MVAE was built without the sketch expert (use_sketch=False).")
            out["sketch"] = self.sketch_encoder(sketch)
        return {k: (m.float(), lv.float().clamp(LOGVAR_MIN, LOGVAR_MAX)) for k, (m, lv) in out.items()}

    @staticmethod
    def combine(
        experts: list[tuple[torch.Tensor, torch.Tensor]],
        masks: list[torch.Tensor | None] | None = None,
        prior: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """PoE of the prior (if ``prior``) and the given experts; ``masks[i]`` (B,): presence (0 or 1) or a
        precision weight per sample, or None (all 1)."""
        if not experts:
            raise ValueError("combine() needs at least one expert")
        mu0 = experts[0][0]
        mus, logvars = [e[0] for e in experts], [e[1] for e in experts]
        ms = [
            torch.ones(mu0.shape[0], device=mu0.device) if m is None else m.float()
            for m in (masks or [None] * len(experts))
        ]
        if prior:
            pm, plv = prior_expert(mu0.shape[0], mu0.shape[1], device=mu0.device)
            mus, logvars, ms = [pm, *mus], [plv, *logvars], [torch.ones_like(ms[0]), *ms]
        return poe(torch.stack(mus), torch.stack(logvars), torch.stack(ms))

    def infer(
        self,
        image: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        sketch: torch.Tensor | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | given modalities) = PoE(prior, experts): (mu, logvar), each (B, latent_dim).

        ``weights`` ({"image" | "attributes" | "sketch": w > 0}, default 1 each) multiplies an expert's precision,
        a weighted product of experts: ``weights={"attributes": 3}`` makes a description count three times as
        much against a sketch (and the prior). With no modality at all, pass nothing and get the prior for
        batch size 1.
        """
        experts = self.experts(image, values, known, sketch)
        weights = dict(weights or {})
        for name, w in weights.items():
            if name not in ("image", "attributes", "sketch"):
                raise ValueError(f"unknown expert {name!r} in weights: use 'image', 'attributes' or 'sketch'")
            if not (math.isfinite(float(w)) and float(w) > 0):
                raise ValueError(f"the weight of the {name} expert must be a positive number, got {w!r}")
        if not experts:
            return prior_expert(1, self.config.latent_dim, device=self.device)
        masks = [
            None
            if weights.get(name, 1.0) == 1.0
            else torch.full((mu.shape[0],), float(weights[name]), device=mu.device)
            for name, (mu, _) in experts.items()
        ]
        return self.combine(list(experts.values()), masks)

    def decode_attributes(self, z: torch.Tensor) -> torch.Tensor:
        """Attribute logits (B, 40)."""
        return self.attribute_decoder(z)

    def forward(
        self,
        image: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        sketch: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """(image_logits, attribute_logits, mu, logvar) as in the reference; z ~ q in training, z = mu in eval."""
        mu, logvar = self.infer(image, values, known, sketch)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode_logits(z), self.decode_attributes(z), mu, logvar

    # ------------------------------------------------------------------------------------------------- loss
    def loss(
        self,
        image: torch.Tensor,
        labels: torch.Tensor,
        known: torch.Tensor | None = None,
        sketch: torch.Tensor | None = None,
        annealing_factor: float = 1.0,
        pos_weight: torch.Tensor | None = None,
        sketch_present: torch.Tensor | None = None,
        sample_subsets: bool = False,
        return_image_logits: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Sum of sub-sampled ELBOs (batch means) and the alignment terms: {"loss", per-subset terms}.

        Subsets (Wu & Goodman's sub-sampled training): ``joint`` (image + attributes), ``image``,
        ``attributes``, and with a sketch ``sketch`` and ``sketch_attributes``. Each subset's ELBO is
        ``image_weight * NLL(image) + attribute_weight * NLL(attributes) + annealing_factor * KL(q || p)``:
        subsets holding the image reconstruct it and all 40 labels; the attribute-only subset reconstructs
        the *known* labels (plus the image with ``cross_weight``); sketch subsets reconstruct the image (the
        sketch expert must learn the face) and the known labels. ``align_weight`` adds
        ``KL(stop_grad q(z|image, attributes) || q(z|subset))`` for the subsets without the image, which makes
        q(z|attributes) cover all faces that fit the description (diverse samples that keep what was said).
        ``sample_subsets``: instead of decoding every subset for every sample, each sample draws one subset
        (a stochastic estimate of the same sum, ~S times cheaper in the decoder: for CPU training).
        ``return_image_logits``: also return the decoded image logits (not detached) as ``terms["image_logits"]``,
        (B, C, S, S) with ``sample_subsets``, else (num_subsets·B, C, S, S), for an extra loss on the decoded
        faces (the adversarial fine-tuning in ``train/mvae.py``), and ``terms["image_has_target"]`` (N,) bool:
        which of those rows come from a subset that reconstructs the image.
        """
        cfg = self.config
        b = image.shape[0]
        if known is None:
            known = torch.ones_like(labels)
        known = known.float()
        ex = self.experts(image, labels, known, sketch if cfg.use_sketch else None)
        ones = torch.ones(b, device=image.device)
        s_mask = None
        subsets: dict[str, tuple[list[str], torch.Tensor]] = {
            "joint": (["image", "attributes"], ones),
            "image": (["image"], ones),
            "attributes": (["attributes"], ones),
        }
        if "sketch" in ex:
            s_mask = ones if sketch_present is None else sketch_present.float().to(image.device)
            subsets["sketch"] = (["sketch"], s_mask)
            subsets["sketch_attributes"] = (["sketch", "attributes"], s_mask)

        post = {name: self.combine([ex[m] for m in mods]) for name, (mods, _) in subsets.items()}
        names = list(subsets)
        # which subsets' ELBO scores a decoded image: not the attribute-only one unless cross_weight > 0. The others'
        # images are decoded only when the caller asks for every decoded face (return_image_logits); otherwise that
        # decoder pass would be wasted work (a fifth of the decoder's cost with a sketch, a third without)
        wants_image = [cfg.image_weight * (cfg.cross_weight if n == "attributes" else 1.0) > 0 for n in names]
        decode_all = return_image_logits or all(wants_image)
        if sample_subsets:
            # one subset per sample (uniform over the subsets available to it): one decoder pass of B images
            avail = torch.stack([w for _, w in subsets.values()], 1)  # (B, S)
            choice = torch.multinomial(avail + 1e-12 * (avail.sum(1, keepdim=True) == 0), 1)[:, 0]  # (B,)
            onehot = nn.functional.one_hot(choice, len(names)).float()  # (B, S)
            subsets = {n: (mods, onehot[:, j]) for j, (n, (mods, _)) in enumerate(subsets.items())}
            z_all = torch.stack([reparameterize(*post[n]) for n in names], 1)  # (B, S, D)
            z = z_all[torch.arange(b, device=z_all.device), choice]
            rows = torch.tensor(wants_image, device=z.device)[choice].nonzero()[:, 0]
            if decode_all or len(rows) in (0, b):
                decoded = self.decode_logits(z)
            else:  # rows whose subset scores no image keep zero logits: their weight in every image term is 0
                part = self.decode_logits(z[rows])
                decoded = part.new_zeros((b, *part.shape[1:])).index_copy(0, rows, part)
            img_logits = [decoded] * len(names)
            attr_logits = [self.decode_attributes(z)] * len(names)
        else:
            zs = [reparameterize(*post[n]) for n in names]
            # one image-decoder pass per subset, as the reference MVAE does (BatchNorm statistics per subset): B
            # images at a time stay in the CPU's caches: the decoder runs 14 % (bf16) to 20 % (fp32) faster than in one
            # pass of S·B (issue 26)
            img_logits = [self.decode_logits(zi) if decode_all or w else None for zi, w in zip(zs, wants_image)]
            if decode_all:
                decoded = torch.cat(img_logits)
            attr_logits = self.decode_attributes(torch.cat(zs)).split(b)  # (S·B, D): the small MLP in one pass

        terms: dict[str, torch.Tensor] = {}
        total = image.new_zeros((), dtype=torch.float32)
        joint_mu, joint_logvar = (t.detach() for t in post["joint"])
        for i, name in enumerate(names):
            mods, weight = subsets[name]
            has_image = "image" in mods
            img_w = cfg.image_weight * (cfg.cross_weight if name == "attributes" else 1.0)
            nll_img = image_nll(img_logits[i], image, cfg.image_likelihood) if img_w > 0 else 0.0
            nll_attr = attribute_nll(attr_logits[i], labels, None if has_image else known, pos_weight)
            kl = gaussian_kl(*post[name])
            elbo = img_w * nll_img + cfg.attribute_weight * nll_attr + annealing_factor * kl  # (B,)
            if not has_image and cfg.align_weight > 0:
                align = gaussian_kl_between(joint_mu, joint_logvar, *post[name])
                elbo = elbo + cfg.align_weight * align
                terms[f"{name}_align"] = (align * weight).sum().detach() / weight.sum().clamp_min(1)
            sub = (elbo * weight).sum() / weight.sum().clamp_min(1)
            total = total + sub
            terms[name] = sub.detach()
            if has_image or name.startswith("sketch"):
                terms[f"{name}_image_nll"] = (
                    torch.as_tensor(nll_img) * weight
                ).sum().detach() / weight.sum().clamp_min(1)
        terms["loss"] = total
        if return_image_logits:
            terms["image_logits"] = decoded
            # rows whose subset reconstructs the image (not the attribute-only one unless cross_weight > 0)
            targets = torch.tensor(wants_image, device=image.device)
            if sample_subsets:
                terms["image_has_target"] = targets[choice]
            else:
                present = torch.cat([subsets[n][1] for n in names]) > 0  # (S·B,): e.g. no sketch for a sample
                terms["image_has_target"] = targets.repeat_interleave(b) & present
        return terms

    def decoder_loss(
        self,
        image: torch.Tensor,
        labels: torch.Tensor,
        known: torch.Tensor | None = None,
        sketch: torch.Tensor | None = None,
        edited_image: torch.Tensor | None = None,
        edited_labels: torch.Tensor | None = None,
        switched: torch.Tensor | None = None,
        description_weight: float = 1.0,
        **_: object,
    ) -> dict[str, torch.Tensor]:
        """Objective for retraining the image decoder alone on fixed encoders: {"loss", "l1", "image_logits",
        "image_has_target"}.

        The encoders run without gradients. The batch's samples take turns drawing z from the posteriors whose
        ELBO terms reconstruct the image in :meth:`loss`: q(z | image, attributes[, sketch]), q(z | image), and
        with a sketch q(z | sketch) and q(z | sketch, attributes), every label given; a description next to a
        sketch counts ``description_weight`` times, as :class:`~sketchface.pipelines.AttributeToFace` weighs it (1:
        the plain product of experts of the ELBO). With ``edited_image`` (the same face with the attributes marked
        in ``switched`` changed, ``edited_labels`` its labels; see ``ProceduralFaces(edits=)``) a fifth turn draws z
        from the face's sketch plus the weighted description of the edited face (``known`` says which attributes
        it gives, the switched ones always) and redraws the edited face: the drawing plus "he wore glasses". The
        decoder redraws the face from z, scored by L1 on pixels (the median, sharper than the likelihood's mean).
        The other arguments of :meth:`loss` are accepted and ignored.
        """
        edits = edited_image is not None
        if edits and (sketch is None or edited_labels is None or switched is None):
            raise ValueError("decoder_loss: edited_image needs sketch, edited_labels and switched")
        with torch.no_grad():
            e = self.experts(image=image, values=labels, sketch=sketch)
            posteriors = [self.combine(list(e.values())), self.combine([e["image"]])]
            weight = [None, torch.full_like(labels[:, 0], float(description_weight))]
            if sketch is not None:
                posteriors += [self.combine([e["sketch"]]), self.combine([e["sketch"], e["attributes"]], weight)]
            target = image
            if edits:
                said = switched if known is None else torch.maximum(known, switched)
                described = self.experts(values=edited_labels, known=said)["attributes"]
                posteriors.append(self.combine([e["sketch"], described], weight))
            mu, logvar = (torch.stack(t) for t in zip(*posteriors))  # (P, B, D) each
            turn = torch.arange(image.shape[0], device=image.device) % len(posteriors)  # (B,)
            rows = torch.arange(image.shape[0], device=image.device)
            z = reparameterize(mu[turn, rows], logvar[turn, rows])
            if edits:
                target = torch.where((turn == len(posteriors) - 1)[:, None, None, None], edited_image, image)
        logits = self.decode_logits(z)
        l1 = (torch.sigmoid(logits.float()) - target).abs().mean()
        has_target = torch.ones(image.shape[0], dtype=torch.bool, device=image.device)
        return {"loss": l1, "l1": l1.detach(), "image_logits": logits, "image_has_target": has_target}


def load_vae(path_or_repo: str, **kwargs) -> MVAE | CrossModalVAE:
    """Load an :class:`MVAE` or :class:`CrossModalVAE` checkpoint, choosing the class from config.json."""
    from .auto import read_config

    hub = {k: v for k, v in kwargs.items() if k in ("revision", "cache_dir", "token", "local_files_only")}
    model_type = read_config(path_or_repo, **hub).get("model_type")
    classes = {"mvae": MVAE, "cvae": CrossModalVAE}
    if model_type not in classes:
        raise ValueError(
            f"{path_or_repo}: config.json describes model_type={model_type!r}; AttributeToFace needs an MVAE ('mvae') "
            "or cross-modal VAE ('cvae') checkpoint."
        )
    model = classes[model_type].from_pretrained(str(path_or_repo), **kwargs)
    return model.float().eval()


__all__ = [
    "CrossModalVAE",
    "CrossModalVAEConfig",
    "MVAE",
    "MVAEConfig",
    "load_vae",
    "poe",
    "prior_expert",
    "reparameterize",
]
