"""Training losses.

Sections (each owned separately; keep them apart):

1. VAE / MVAE ELBO terms (paper 1): Gaussian KL divergences and per-sample reconstruction likelihoods.
   Every function returns a **per-sample** tensor of shape (B,) (summed over dimensions, as in an ELBO);
   callers take the batch mean. Computed in float32 even under mixed precision. With them, the two training
   inputs of the MVAE's objective: the KL annealing weight and the known-attribute mask (attribute dropout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ============================================================================================ 1. VAE / MVAE ELBO terms


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ) per sample: (B, D) → (B,). Kingma & Welling (2014), appendix B."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def gaussian_kl_between(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL( N(mu_q, var_q) || N(mu_p, var_p) ) for diagonal Gaussians, per sample: (B, D) → (B,)."""
    mu_q, logvar_q, mu_p, logvar_p = (t.float() for t in (mu_q, logvar_q, mu_p, logvar_p))
    return 0.5 * torch.sum(
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0,
        dim=1,
    )


def image_nll(logits: torch.Tensor, target: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Negative log-likelihood of images, summed over pixels: (B, C, H, W) → (B,).

    ``kind="bce"``: Bernoulli likelihood on decoder *logits* with targets in [0, 1] (what the MVAE reference
    implementation, mhw32/multimodal-vae-public, does for CelebA). ``kind="mse"``: squared error between
    sigmoid(logits) and the target (paper 1's cross-modal VAE, a Gaussian likelihood up to constants).
    """
    logits, target = logits.float(), target.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif kind == "mse":
        per_pixel = (torch.sigmoid(logits) - target).pow(2)
    else:
        raise ValueError(f"image likelihood must be 'bce' or 'mse', got {kind!r}")
    return per_pixel.flatten(1).sum(1)


def attribute_nll(
    logits: torch.Tensor,
    labels: torch.Tensor,
    known: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bernoulli NLL of the 40 binary attributes, summed over the *known* entries: (B, A) → (B,).

    ``labels`` in {0, 1}; ``known`` (B, A) in {0, 1} (1 = stated; unknown attributes contribute nothing);
    ``pos_weight`` (A,) up-weights positives of rare attributes (optional rebalancing).
    """
    per_attr = F.binary_cross_entropy_with_logits(
        logits.float(), labels.float(), reduction="none", pos_weight=pos_weight
    )
    if known is not None:
        per_attr = per_attr * known.float()
    return per_attr.sum(1)


def annealing_factor(step: int, anneal_steps: int) -> float:
    """Linear KL annealing (reference MVAE): (step + 1) / anneal_steps during the first anneal_steps, then 1."""
    if anneal_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / anneal_steps)


def random_known_mask(
    batch_size: int, num_attributes: int, p: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Attribute dropout for training the attribute expert on partial descriptions: (B, A) float {0, 1}.

    Each sample is hit with probability ``p``; a hit sample forgets a random share r ~ U(0, 1) of its
    attributes, and one hit sample in ten forgets all of them (the "no description" case).
    """
    hit = torch.rand(batch_size, 1, generator=generator) < p
    rate = torch.rand(batch_size, 1, generator=generator)
    rate = torch.where(torch.rand(batch_size, 1, generator=generator) < 0.1, torch.ones_like(rate), rate)
    drop = (torch.rand(batch_size, num_attributes, generator=generator) < rate) & hit
    return (~drop).float().to(device)


__all__ = [
    "annealing_factor",
    "attribute_nll",
    "gaussian_kl",
    "gaussian_kl_between",
    "image_nll",
    "random_known_mask",
]
