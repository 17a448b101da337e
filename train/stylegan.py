"""Train a StyleGAN2 generator (pure PyTorch) on procedural faces, CelebA, CelebA-HQ or a folder of images.

Non-saturating logistic loss, lazy R1 on the discriminator, style-mixing regularisation, an EMA generator,
optional DiffAugment (translation / colour / cutout) for small data sets. The data set is rendered (or
read) once into an in-memory uint8 pool by DataLoader workers, then batches are drawn from the pool; real data
larger than ``--pool_size`` is streamed by DataLoader workers instead (``--stream`` / ``--no-stream`` force either).
A pool cut short by ``--pool_max_minutes`` says so in the log, ``summary.json`` and the model card.

Starter checkpoint (one H100, ~9 minutes including the pool):

    python train/stylegan.py --output_dir runs/stylegan-procedural-64 --max_minutes 9

CPU smoke run:

    python train/stylegan.py --output_dir /tmp/sg-smoke --resolution 32 --max_channels 32 --style_dim 32 \
        --n_mlp 2 --batch_size 8 --pool_size 256 --max_steps 20 --num_workers 0

Runs on ``sketchface.trainer.Trainer``: several processes (``accelerate launch train/stylegan.py …``, ``torchrun``)
train data-parallel, each rank on its own rows of every step; ``--resume`` continues a killed run exactly (weights,
optimisers, the EMA generator, every rank's RNG and the AMP scaler from ``output_dir/state``).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sketchface.models.stylegan import Discriminator, Generator, StyleGANConfig
from sketchface.trainer import Trainer, TrainingArguments, option, parse_training_args
from sketchface.training import (
    atomic_write,
    cli_command,
    config_dict,
    face_batches,
    face_dataset,
    load_face_data,
    pool_note,
    resolve_face_data,
)


@dataclass
class StyleGANArguments:
    """Data, model and GAN settings of this script (the shared flags are in TrainingArguments)."""

    data: str = option(
        "procedural", "procedural | celeba | celeba-hq | folder (with --data_root) | KIND:PATH | synthetic (smoke "
        "tests)", aliases=["--dataset"],
    )  # fmt: skip
    data_root: str | None = option(None, "the folder for celeba / celeba-hq / folder")
    resolution: int = option(64)
    style_dim: int = option(256)
    n_mlp: int = option(4, "mapping layers: StyleGAN2-ADA uses 2 for short/small runs, 8 for FFHQ; 4 is between")
    channel_multiplier: float = option(0.5)
    max_channels: int = option(256)
    pool_size: int = option(50_000, "procedural faces rendered; real data larger than this is streamed")
    pool_max_minutes: float = option(2.5, "stop rendering after this and train on what is there (said in log and card)")
    stream: bool | None = option(None, "None: stream real data larger than --pool_size; true / false force it")
    start_seed: int = option(0, "the first procedural face's seed")
    r1_gamma: float = option(-1.0, "-1: ADA's heuristic 0.0002 * resolution^2 / batch (64 px, batch 64: 0.0128)")
    d_reg_every: int = option(16, "lazy R1: every N steps")
    mixing_prob: float = option(0.9, "style-mixing probability")
    ema_kimg: float = option(-1.0, "EMA half-life in thousands of images; -1: batch * 10 / 32 (ADA)")
    ema_rampup: float = option(0.05)
    diffaugment: str = option("", "DiffAugment policies, comma separated: translation,color,cutout")
    xflip: bool = option(True, "random horizontal flips of the real faces")
    sample_every: int = option(500, "steps between sample grids (output_dir/samples)")
    sample_count: int = option(32, "images per sample grid")

    def model_config(self) -> StyleGANConfig:
        return StyleGANConfig(
            resolution=self.resolution,
            style_dim=self.style_dim,
            n_mlp=self.n_mlp,
            channel_multiplier=self.channel_multiplier,
            max_channels=self.max_channels,
        )


#: this script's defaults for the shared flags (TrainingArguments); the generator is saved to output_dir/generator
#: (unless --save_dir), the discriminator to output_dir/discriminator
TRAINING_DEFAULTS = {
    "output_dir": "runs/stylegan-procedural-64",
    "max_steps": 100_000,
    "batch_size": 64,
    "lr": 0.0025,  # StyleGAN2-ADA "auto" config
    "warmup_steps": 0,
    "lr_schedule": "constant",
    "precision": "fp32",  # R1 in low precision is risky (TF32 on CUDA)
    "channels_last": False,
    "num_workers": 8,
}
#: shared flags this script has no use for, and why (refused on the command line)
UNUSED_FLAGS = {
    "warmup_steps": "its learning rates are constant, as StyleGAN2-ADA's",
    "lr_schedule": "its learning rates are constant, as StyleGAN2-ADA's",
    "channels_last": "its networks train in the default memory layout",
    "eval_every": "it does not evaluate during training (--sample_every writes sample grids)",
}
RESERVE_SECONDS = 20.0  # of --max_minutes, kept for the final save


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, StyleGANArguments]:
    return parse_training_args(
        StyleGANArguments, argv, description=__doc__, defaults=TRAINING_DEFAULTS, unused=UNUSED_FLAGS, check=check_args
    )


def check_args(train_args: TrainingArguments, cfg: StyleGANArguments) -> None:
    """``--data KIND:PATH`` as ``--data KIND --data_root PATH``; a real data set needs its folder."""
    cfg.data, cfg.data_root = resolve_face_data(cfg.data, cfg.data_root)


# ------------------------------------------------------------------------------------------ data
def make_dataset(cfg, sketch: str | None = None, start_seed: int | None = None, length: int | None = None):
    """The training faces: ``pool_size`` procedural (or synthetic) ones from ``start_seed``, or the train split of
    the real data set under ``--data_root``."""
    start = cfg.start_seed if start_seed is None else start_seed
    n = cfg.pool_size if length is None else length
    try:
        return face_dataset(
            cfg.data, cfg.data_root, size=cfg.resolution, split="train", sketch=sketch, length=n, start_seed=start
        )
    except ValueError as e:
        raise SystemExit(str(e)) from None


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


def random_xflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image of (B, C, S, S) with probability 1/2 (draws from ``gen``, a CPU generator)."""
    flip = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def model_card(train_args: TrainingArguments, cfg: StyleGANArguments, summary: dict) -> str:
    """The generator folder's README.md: data, architecture, training (what this run did)."""
    m = cfg.model_config()
    data = (
        f"procedural faces (`sketchface.data.procedural`, seeds from {cfg.start_seed})"
        if cfg.data == "procedural"
        else f"`{cfg.data}` at `{cfg.data_root}` (train split)"
    )
    real = cfg.data in ("celeba", "celeba-hq")
    lines = [
        "---",
        "library_name: sketchface",
        *(["license: other", "license_name: celeba-research-only"] if real else []),
        "tags: [sketchface, stylegan2, unconditional-image-generation]",
        "---",
        f"# StyleGAN2 generator ({m.resolution} px, EMA weights)",
        "",
        "Pure PyTorch (runs on a CPU). Load with `sketchface.models.stylegan.Generator.from_pretrained(path)`; "
        "`train/psp.py --generator PATH` trains a sketch encoder into it.",
        "",
        f"- Data: {data}; trained on {summary['data']}.",
        f"- Architecture: style_dim {m.style_dim}, {m.n_mlp}-layer mapping, widths "
        f"{[m.channels(2**i) for i in range(2, m.log_size + 1)]} (4 px → {m.resolution} px), {m.n_latent} W+ styles.",
        f"- Training: {summary['steps']} steps × batch {train_args.batch_size} × {summary['processes']} process(es) "
        f"({summary['images_seen']:,} images, stop: {summary['stop_reason']}), {summary['minutes']:.1f} min incl. "
        f"data on {summary['device']}, precision {summary['precision']}, {summary['speed']}; non-saturating loss, "
        "lazy R1 "
        f"(γ {cfg.r1_gamma:.4g} every {cfg.d_reg_every}), style mixing {cfg.mixing_prob}, EMA half-life "
        f"{cfg.ema_kimg:.3g} kimg, lr {train_args.lr}"
        + (f", DiffAugment {cfg.diffaugment}" if cfg.diffaugment else "")
        + ".",
        "",
        "Trained with:",
        "",
        "```",
        summary["command"],
        "```",
        "",
    ]
    return "\n".join(lines)


def _load_legacy_state(path: Path, g_raw, d_raw, G_ema, g_opt, d_opt, trainer: Trainer) -> int:
    """--resume of a run saved by the older version of this script (state.pt: weights, optimisers, step; no RNG
    state, so the draws after it differ from an uninterrupted run)."""
    st = torch.load(path, map_location="cpu", weights_only=True)
    g_raw.load_state_dict(st["g"])
    d_raw.load_state_dict(st["d"])
    G_ema.load_state_dict(st["g_ema"])
    g_opt.load_state_dict(st["g_opt"])
    d_opt.load_state_dict(st["d_opt"])
    trainer.print(f"resumed from {path} at step {st['step']} (an older state: no RNG state)")
    return int(st["step"])


# ----------------------------------------------------------------------------------------- main
def main(train_args: TrainingArguments, cfg: StyleGANArguments) -> Path:
    if cfg.r1_gamma < 0:
        cfg.r1_gamma = 0.0002 * cfg.resolution**2 / train_args.batch_size
    if cfg.ema_kimg < 0:
        cfg.ema_kimg = train_args.batch_size * 10 / 32
    out = Path(train_args.output_dir)
    final_dir = Path(train_args.save_dir or out / "generator")
    # the harness stops RESERVE_SECONDS before --max_minutes, for the final save
    minutes = max(train_args.max_minutes - RESERVE_SECONDS / 60, 0.0) if train_args.max_minutes else None
    try:  # device, precision, seed + rank, threads per process, TF32 and cuDNN autotuning on CUDA
        trainer = Trainer(replace(train_args, save_dir=str(final_dir), max_minutes=minutes))
    except ValueError as e:  # fp16 without CUDA
        raise SystemExit(str(e)) from None
    accelerator, precision, dev = trainer.accelerator, trainer.precision, trainer.device
    out.mkdir(parents=True, exist_ok=True)
    if trainer.is_main:
        atomic_write(out / "train_config.json", json.dumps(config_dict(train_args, cfg), indent=2))

    mcfg = cfg.model_config()
    G, D = Generator(mcfg), Discriminator(mcfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    d_ratio = cfg.d_reg_every / (cfg.d_reg_every + 1)
    g_opt = torch.optim.Adam(G.parameters(), lr=train_args.lr, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=train_args.lr * d_ratio, betas=(0.0, 0.99**d_ratio))
    dataset = make_dataset(cfg)
    pool, data_info = load_face_data(trainer, cfg, dataset, ("image",))
    per_step = train_args.batch_size * trainer.num_processes
    if (data_info["faces"]) < per_step:
        raise SystemExit(
            f"{data_info['faces']} training faces are fewer than one step's {per_step} (batch × processes)"
        )

    g_raw, d_raw = G, D
    G, D, g_opt, d_opt = trainer.prepare(G, D, g_opt, d_opt)  # DDP-wrapped under several processes
    G_ema.to(dev)
    accelerator.register_for_checkpointing(G_ema)  # saved and restored with the training state
    # weights, optimisers, the EMA generator, every rank's RNG (z, noise, mixing, DiffAugment) and the AMP scaler
    step = trainer.resume()
    legacy = out / "state.pt"
    if train_args.resume and step == 0 and legacy.is_file():
        step = _load_legacy_state(legacy, g_raw, d_raw, G_ema, g_opt, d_opt, trainer)
    start_step = step
    n_latent, sd = mcfg.n_latent, mcfg.style_dim
    trainer.print(f"r1_gamma {cfg.r1_gamma:.4g}, ema half-life {cfg.ema_kimg:.3g} kimg, lr {train_args.lr}")
    trainer.print(
        f"G {sum(p.numel() for p in g_raw.parameters()) / 1e6:.2f} M params, "
        f"D {sum(p.numel() for p in d_raw.parameters()) / 1e6:.2f} M, "
        f"widths {[mcfg.channels(2**i) for i in range(2, mcfg.log_size + 1)]}, n_latent {n_latent}"
    )
    fixed_z = torch.randn(cfg.sample_count, sd, generator=torch.Generator().manual_seed(train_args.seed)).to(dev)

    def make_fake(net, b):
        """net(z) with style mixing (prob mixing_prob, per-sample crossover) and random noise."""
        z = torch.randn(b, sd, device=dev)
        if cfg.mixing_prob > 0 and torch.rand(()) < cfg.mixing_prob:
            z2 = torch.randn(b, sd, device=dev)
            crossover = torch.randint(1, n_latent, (b,), device=dev)
            return net(z, noise_mode="random", z2=z2, crossover=crossover)
        return net(z, noise_mode="random")

    aug = lambda x: diff_augment(x, cfg.diffaugment)  # noqa: E731
    batches = face_batches(trainer, dataset, pool, ("image",), step)
    pbar = tqdm(total=train_args.max_steps, initial=step, disable=not trainer.is_main, desc="stylegan")
    logs = {}
    t0, saved_at = time.perf_counter(), None
    while not trainer.done(step):  # --max_steps, or --max_minutes less the reserve (every rank agrees)
        real = next(batches)["image"] * 2 - 1  # (B, 3, R, R) in [-1, 1]
        if cfg.xflip:  # drawn from (seed, step, rank): resuming needs no state
            real = random_xflip(real, trainer.step_generator(step))

        # ---- discriminator (the generator's images need no gradient: its unwrapped module draws them)
        with torch.no_grad(), trainer.autocast():
            fake = make_fake(g_raw, train_args.batch_size)
        with trainer.autocast():
            d_loss = F.softplus(D(aug(fake))).mean() + F.softplus(-D(aug(real))).mean()
        d_opt.zero_grad(set_to_none=True)
        trainer.backward(d_loss)
        d_opt.step()
        if step % cfg.d_reg_every == 0 and cfg.r1_gamma > 0:
            real.requires_grad_(True)
            real_pred = D(aug(real))  # R1 in fp32
            (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            d_opt.zero_grad(set_to_none=True)
            trainer.backward(cfg.r1_gamma / 2 * r1 * cfg.d_reg_every + 0 * real_pred[0].sum())
            d_opt.step()
            logs["r1"] = r1.item()

        # ---- generator (the critic's gradients are not wanted: its unwrapped module judges, DDP syncs G alone)
        d_raw.requires_grad_(False)
        with trainer.autocast():
            fake = make_fake(G, train_args.batch_size)
            g_loss = F.softplus(-d_raw(aug(fake))).mean()
        g_opt.zero_grad(set_to_none=True)
        trainer.backward(g_loss)
        g_opt.step()
        d_raw.requires_grad_(True)

        with torch.no_grad():  # running mean of w (for truncation and pSp's latent_avg)
            w = g_raw.mapping(torch.randn(train_args.batch_size, sd, device=dev))
            g_raw.w_avg.lerp_(w.mean(0).float(), 1 - 0.995)
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            ema_nimg = min(ema_nimg, (step + 1) * train_args.batch_size * cfg.ema_rampup)
        ema_update(G_ema, g_raw, 0.5 ** (per_step / max(ema_nimg, 1e-8)))
        step += 1
        pbar.update(1)
        if step % train_args.log_every == 0:
            logs.update(d=d_loss.item(), g=g_loss.item())
            pbar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
            trainer.log(step, dict(logs))
        if trainer.is_main and (step % cfg.sample_every == 0 or step == 1):
            with torch.no_grad():
                save_grid(G_ema(fixed_z, noise_mode="const"), out / "samples" / f"{step:07d}.png")
        if trainer.should_save(step):
            trainer.save_state(step)
            saved_at = step
    pbar.close()
    seconds = time.perf_counter() - t0
    if saved_at != step:
        trainer.save_state(step)

    if trainer.is_main:
        with torch.no_grad():
            save_grid(G_ema(fixed_z, noise_mode="const"), out / "samples" / "final.png")
            save_grid(G_ema(fixed_z, truncation_psi=0.7, noise_mode="const"), out / "samples" / "final_psi0.7.png")
        Discriminator.save_pretrained(copy.deepcopy(d_raw).cpu(), out / "discriminator")
        run = trainer.run_summary(G_ema, step, (step - start_step) * per_step, seconds)
        summary = {
            "steps": step,
            "images_seen": step * per_step,
            "stop_reason": "steps" if step >= train_args.max_steps else "max_minutes",
            "precision": precision,
            "minutes": trainer.elapsed_minutes(),
            "pool_size": data_info["faces"],
            "pool": data_info,
            "data": pool_note(data_info, cfg.pool_max_minutes),
            "dataset": cfg.data,
            "device": (torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type)
            + (f" × {trainer.num_processes}" if trainer.num_processes > 1 else ""),
            "processes": trainer.num_processes,
            "speed": run["speed"],
            "command": cli_command(
                "stylegan", config_dict(train_args, cfg), config_dict(*parse_args([])), skip=("resume",)
            ),
        }
        # the EMA generator in float32 with its card; --push_to_hub uploads exactly this folder
        trainer.save_pretrained(G_ema, final_dir, card=model_card(train_args, cfg, summary), fp16=False)
        atomic_write(out / "summary.json", json.dumps(summary, indent=2))
        trainer.print(json.dumps({k: v for k, v in summary.items() if k != "command"}))
        if train_args.push_to_hub:
            trainer.push_to_hub(final_dir, train_args.push_to_hub)
    accelerator.wait_for_everyone()
    return final_dir


if __name__ == "__main__":
    main(*parse_args())
