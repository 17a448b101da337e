"""Train a StyleGAN2 generator (pure PyTorch) on procedural faces or CelebA.

Non-saturating logistic loss, lazy R1 on the discriminator, style-mixing regularisation, an EMA generator,
optional DiffAugment (translation / colour / cutout) for small data sets. The data set is rendered (or
read) once into an in-memory uint8 pool by DataLoader workers, then batches are drawn from the pool.

Starter checkpoint (one H100, ~9 minutes including the pool):

    python train/stylegan.py --output_dir runs/stylegan-procedural-64 --max_minutes 9

CPU smoke run:

    python train/stylegan.py --output_dir /tmp/sg-smoke --resolution 32 --max_channels 32 --style_dim 32 \
        --n_mlp 2 --batch_size 8 --pool_size 256 --steps 20 --num_workers 0
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sketchface.data.synthetic import SyntheticFaces
from sketchface.models.stylegan import Discriminator, Generator, StyleGANConfig
from sketchface.trainer import make_accelerator
from sketchface.training import atomic_write, render_pool


@dataclass
class TrainConfig:
    output_dir: str = "runs/stylegan-procedural-64"
    dataset: str = "procedural"  # procedural | celeba | synthetic (smoke tests only)
    data_root: str | None = None  # CelebA root for dataset=celeba
    resolution: int = 64
    style_dim: int = 256
    n_mlp: int = 4  # StyleGAN2-ADA uses 2 for short/small runs, 8 for FFHQ; 4 is between
    channel_multiplier: float = 0.5
    max_channels: int = 256
    pool_size: int = 50_000
    pool_max_minutes: float = 2.5  # stop rendering after this and train on what is there
    start_seed: int = 0
    batch_size: int = 64
    steps: int = 100_000
    max_minutes: float | None = None  # wall clock limit incl. data; saves and stops in time
    lr: float = 0.0025  # StyleGAN2-ADA "auto" config
    r1_gamma: float = -1.0  # -1: ADA's heuristic 0.0002 * resolution^2 / batch (64 px, batch 64: 0.0128)
    d_reg_every: int = 16
    mixing_prob: float = 0.9
    ema_kimg: float = -1.0  # EMA half-life in thousands of images; -1: batch * 10 / 32 (ADA)
    ema_rampup: float = 0.05
    diffaugment: str = ""  # e.g. "translation,color,cutout" (comma separated)
    xflip: bool = True
    precision: str = "fp32"  # auto | fp32 | bf16 | fp16; fp32: R1 in low precision is risky (TF32 on CUDA)
    num_workers: int = 8
    sample_every: int = 500
    sample_count: int = 32  # images per sample grid
    save_every: int = 1000
    log_every: int = 50
    seed: int = 0
    resume: bool = False
    push_to_hub: str | None = None

    def model_config(self) -> StyleGANConfig:
        return StyleGANConfig(
            resolution=self.resolution,
            style_dim=self.style_dim,
            n_mlp=self.n_mlp,
            channel_multiplier=self.channel_multiplier,
            max_channels=self.max_channels,
        )


def parse_args(argv=None) -> TrainConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in asdict(TrainConfig()).items():
        flag = f"--{name}"
        if name == "precision":  # the older --mixed_precision still works ("no" = fp32)
            p.add_argument(flag, "--mixed_precision", default=default, choices=["auto", "fp32", "bf16", "fp16", "no"])
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif name in ("data_root", "push_to_hub"):
            p.add_argument(flag, type=str, default=default)
        elif name == "max_minutes":
            p.add_argument(flag, type=float, default=default)
        else:
            p.add_argument(flag, type=type(default), default=default)
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.precision == "no":
        cfg.precision = "fp32"
    return cfg


# ------------------------------------------------------------------------------------------ data
def make_dataset(cfg, sketch: str | None = None, start_seed: int | None = None, length: int | None = None):
    start = cfg.start_seed if start_seed is None else start_seed
    n = cfg.pool_size if length is None else length
    if cfg.dataset == "procedural":
        from sketchface.data.procedural import ProceduralFaces

        return ProceduralFaces(size=cfg.resolution, length=n, start_seed=start, mode="celeba", sketch=sketch)
    if cfg.dataset == "celeba":
        from sketchface.data.celeba import CelebA

        if not cfg.data_root:
            raise SystemExit("--data_root is required for --dataset celeba")
        return CelebA(cfg.data_root, split="train", size=cfg.resolution, sketch=sketch)
    if cfg.dataset == "synthetic":
        return SyntheticFaces(cfg.resolution, n, start)
    raise SystemExit(f"unknown dataset {cfg.dataset!r}")


# ---------------------------------------------------------------------------------- DiffAugment
def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): differentiable colour / translation / cutout, x in [-1, 1]."""
    if not policy:
        return x
    b = x.shape[0]
    dev = x.device
    for p in policy.split(","):
        p = p.strip()
        if p == "color":
            x = x + (torch.rand(b, 1, 1, 1, device=dev) - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (torch.rand(b, 1, 1, 1, device=dev) * 2) + mean
            mean = x.mean(dim=[1, 2, 3], keepdim=True)
            x = (x - mean) * (torch.rand(b, 1, 1, 1, device=dev) + 0.5) + mean
        elif p == "translation":
            s = x.shape[-1]
            shift = int(s * 0.125 + 0.5)
            tx = torch.randint(-shift, shift + 1, (b,), device=dev)
            ty = torch.randint(-shift, shift + 1, (b,), device=dev)
            theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, 0, 2] = 2 * tx.to(x.dtype) / s
            theta[:, 1, 2] = 2 * ty.to(x.dtype) / s
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        elif p == "cutout":
            s = x.shape[-1]
            cut = int(s * 0.5 + 0.5)
            cx = torch.randint(0, s + (1 - cut % 2), (b, 1, 1), device=dev)
            cy = torch.randint(0, s + (1 - cut % 2), (b, 1, 1), device=dev)
            ar = torch.arange(s, device=dev)
            inside_x = (ar.view(1, 1, -1) >= cx - cut // 2) & (ar.view(1, 1, -1) < cx - cut // 2 + cut)
            inside_y = (ar.view(1, -1, 1) >= cy - cut // 2) & (ar.view(1, -1, 1) < cy - cut // 2 + cut)
            mask = ~(inside_x & inside_y)
            x = x * mask[:, None].to(x.dtype)
        elif p:
            raise ValueError(f"unknown DiffAugment op {p!r}")
    return x


# ------------------------------------------------------------------------------------ utilities
@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1 - beta)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((images.float().clamp(-1, 1) + 1) / 2, str(path), nrow=nrow)


def sample_batch(pool: torch.Tensor, batch: int, device, xflip: bool, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, pool.shape[0], (batch,), generator=gen)
    x = pool[idx].to(device, non_blocking=True).float() / 127.5 - 1
    if xflip:
        flip = torch.rand(batch, generator=gen) < 0.5
        x[flip.to(device)] = x[flip.to(device)].flip(-1)
    return x


# ----------------------------------------------------------------------------------------- main
def main(cfg: TrainConfig) -> Path:
    t_start = time.time()
    deadline = t_start + cfg.max_minutes * 60 if cfg.max_minutes else None
    if cfg.r1_gamma < 0:
        cfg.r1_gamma = 0.0002 * cfg.resolution**2 / cfg.batch_size
    if cfg.ema_kimg < 0:
        cfg.ema_kimg = cfg.batch_size * 10 / 32
    try:  # precision, threads per process, TF32 and cuDNN autotuning on CUDA: as every training script
        accelerator, precision = make_accelerator(cfg.precision)
    except ValueError as e:  # fp16 without CUDA
        raise SystemExit(str(e)) from None
    dev = accelerator.device
    torch.manual_seed(cfg.seed + accelerator.process_index)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    mcfg = cfg.model_config()
    G, D = Generator(mcfg), Discriminator(mcfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    d_ratio = cfg.d_reg_every / (cfg.d_reg_every + 1)
    g_opt = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=cfg.lr * d_ratio, betas=(0.0, 0.99**d_ratio))
    step = 0
    state_path = out / "state.pt"
    if cfg.resume and state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        G.load_state_dict(st["g"])
        D.load_state_dict(st["d"])
        G_ema.load_state_dict(st["g_ema"])
        g_opt.load_state_dict(st["g_opt"])
        d_opt.load_state_dict(st["d_opt"])
        step = st["step"]
        accelerator.print(f"resumed from {state_path} at step {step}")
    G, D, g_opt, d_opt = accelerator.prepare(G, D, g_opt, d_opt)
    G_ema.to(dev)
    g_raw = accelerator.unwrap_model(G)
    n_latent, sd = mcfg.n_latent, mcfg.style_dim
    accelerator.print(f"r1_gamma {cfg.r1_gamma:.4g}, ema half-life {cfg.ema_kimg:.3g} kimg, lr {cfg.lr}")
    accelerator.print(
        f"G {sum(p.numel() for p in g_raw.parameters()) / 1e6:.2f} M params, "
        f"D {sum(p.numel() for p in accelerator.unwrap_model(D).parameters()) / 1e6:.2f} M, "
        f"widths {[mcfg.channels(2**i) for i in range(2, mcfg.log_size + 1)]}, n_latent {n_latent}"
    )

    dataset = make_dataset(cfg)
    pool = render_pool(dataset, cfg.num_workers, cfg.pool_max_minutes, keys=("image",), batch_size=128, desc="pool")[
        "image"
    ]
    if torch.cuda.is_available():
        pool = pool.to(dev)  # 50k x 3 x 64 x 64 uint8 = 0.6 GB
    gen = torch.Generator().manual_seed(cfg.seed + 1 + accelerator.process_index)
    fixed_z = torch.randn(cfg.sample_count, sd, generator=torch.Generator().manual_seed(cfg.seed)).to(dev)

    def make_fake(b):
        """G(z) with style mixing (prob mixing_prob, per-sample crossover) and random noise."""
        z = torch.randn(b, sd, device=dev)
        if cfg.mixing_prob > 0 and torch.rand(()) < cfg.mixing_prob:
            z2 = torch.randn(b, sd, device=dev)
            crossover = torch.randint(1, n_latent, (b,), device=dev)
            return G(z, noise_mode="random", z2=z2, crossover=crossover)
        return G(z, noise_mode="random")

    def save_state(final: bool = False):
        if not accelerator.is_main_process:
            return
        st = {
            "g": g_raw.state_dict(),
            "d": accelerator.unwrap_model(D).state_dict(),
            "g_ema": G_ema.state_dict(),
            "g_opt": g_opt.state_dict(),
            "d_opt": d_opt.state_dict(),
            "step": step,
        }
        atomic_write(state_path, lambda tmp: torch.save(st, tmp))

    aug = lambda x: diff_augment(x, cfg.diffaugment)  # noqa: E731
    pbar = tqdm(total=cfg.steps, initial=step, disable=not accelerator.is_local_main_process, desc="stylegan")
    logs = {}
    stop_reason = "steps"
    reserve = 20.0  # seconds kept for the final save
    while step < cfg.steps:
        if deadline and time.time() > deadline - reserve:
            stop_reason = "max_minutes"
            break
        real = sample_batch(pool, cfg.batch_size, dev, cfg.xflip, gen)

        # ---- discriminator
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad(), accelerator.autocast():
            fake = make_fake(cfg.batch_size)
        with accelerator.autocast():
            d_loss = F.softplus(D(aug(fake))).mean() + F.softplus(-D(aug(real))).mean()
        d_opt.zero_grad(set_to_none=True)
        accelerator.backward(d_loss)
        d_opt.step()
        if step % cfg.d_reg_every == 0 and cfg.r1_gamma > 0:
            real.requires_grad_(True)
            real_pred = D(aug(real))  # R1 in fp32
            (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            d_opt.zero_grad(set_to_none=True)
            accelerator.backward(cfg.r1_gamma / 2 * r1 * cfg.d_reg_every + 0 * real_pred[0].sum())
            d_opt.step()
            logs["r1"] = r1.item()

        # ---- generator
        G.requires_grad_(True)
        D.requires_grad_(False)
        with accelerator.autocast():
            fake = make_fake(cfg.batch_size)
            g_loss = F.softplus(-D(aug(fake))).mean()
        g_opt.zero_grad(set_to_none=True)
        accelerator.backward(g_loss)
        g_opt.step()

        with torch.no_grad():  # running mean of w (for truncation and pSp's latent_avg)
            w = g_raw.mapping(torch.randn(cfg.batch_size, sd, device=dev))
            g_raw.w_avg.lerp_(w.mean(0).float(), 1 - 0.995)
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            ema_nimg = min(ema_nimg, (step + 1) * cfg.batch_size * cfg.ema_rampup)
        ema_update(G_ema, g_raw, 0.5 ** (cfg.batch_size * accelerator.num_processes / max(ema_nimg, 1e-8)))
        step += 1
        pbar.update(1)
        if step % cfg.log_every == 0:
            logs.update(d=d_loss.item(), g=g_loss.item())
            pbar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
        if accelerator.is_main_process and (step % cfg.sample_every == 0 or step == 1):
            with torch.no_grad():
                save_grid(G_ema(fixed_z, noise_mode="const"), out / "samples" / f"{step:07d}.png")
        if step % cfg.save_every == 0:
            save_state()
    pbar.close()

    save_state(final=True)
    final_dir = out / "generator"
    if accelerator.is_main_process:
        with torch.no_grad():
            save_grid(G_ema(fixed_z, noise_mode="const"), out / "samples" / "final.png")
            save_grid(G_ema(fixed_z, truncation_psi=0.7, noise_mode="const"), out / "samples" / "final_psi0.7.png")
        G_ema.cpu().save_pretrained(final_dir)
        Discriminator.save_pretrained(accelerator.unwrap_model(D).cpu(), out / "discriminator")
        summary = {
            "steps": step,
            "images_seen": step * cfg.batch_size * accelerator.num_processes,
            "stop_reason": stop_reason,
            "precision": precision,
            "minutes": (time.time() - t_start) / 60,
            "pool_size": int(pool.shape[0]),
            "dataset": cfg.dataset,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        accelerator.print(json.dumps(summary))
        if cfg.push_to_hub:
            G_ema.push_to_hub(cfg.push_to_hub)
    accelerator.wait_for_everyone()
    return final_dir


if __name__ == "__main__":
    main(parse_args())
