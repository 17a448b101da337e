"""pSp on real faces (paper 2's method), in two stages that a small data set and a CPU can carry.

A StyleGAN2 trained as a GAN from scratch does not converge on ~900 photos, so the generator learns as the decoder
of an autoencoder first, then the pSp sketch encoder learns to reach its W+:

1. ``--stage autoencoder``: photo encoder (pSp's GradualStyleEncoder, RGB in) → W+ → StyleGAN2 synthesis, trained
   together on the training photos (in the sketches' frame, :mod:`sketchface.data.pairs`) with L2 + ST-LPIPS, then
   a light PatchGAN term for sharpness (from ``adv_start``).
2. ``--stage sketch --autoencoder DIR``: the sketch encoder (initialised from the photo encoder) into the frozen
   generator with paper 2's losses: λ1·L2 + λ2·ST-LPIPS + λ_w·W-norm + λ4·CBAM attention loss, plus a latent term
   pulling its W+ towards the photo encoder's code of the true photo (distillation: the photo encoder's code is
   the best the generator can do). ``latent_avg`` is the mean photo code; a bank of real faces' codes
   (``PSP.style_bank``) gives the fine styles that vary the candidates (style mixing, paper 2 fig. 5).

    python -m train.psp_real --stage autoencoder --output_dir runs/psp-real-ae --max_steps 8000
    python -m train.psp_real --stage sketch --autoencoder runs/psp-real-ae/final --output_dir runs/psp-real \
        --save_dir checkpoints/psp-celeba-mini-64 --max_steps 6000

Both stages resume with ``--resume``; several GPUs with ``accelerate launch -m train.psp_real``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sketchface.data.celeba import LICENCE_NOTE
from sketchface.data.pairs import AUGMENT_WORDS, AUGMENTS, EVAL_STYLES, STYLES, augment_batch, eval_pairs, pair_pool
from sketchface.models.layers import PatchDiscriminator
from sketchface.models.psp import PSP, AttentionLoss, PSPConfig
from sketchface.models.stylegan import StyleGANConfig
from sketchface.trainer import Trainer, TrainingArguments, lineage, model_name, option, parse_training_args


@dataclass
class PSPRealArguments:
    """Stage, data, model and loss settings (the shared flags are in TrainingArguments)."""

    stage: str = "autoencoder"  # autoencoder | sketch
    autoencoder: str | None = None  # stage 2: the stage-1 folder (a PSP with an RGB encoder)
    init_from: str | None = None  # continue from a saved model of the same stage (its architecture wins)
    latent_only_steps: int = 0  # stage 2: first steps regress the photo codes alone (no generator: ~5x cheaper)
    data_root: str = "../shared/data/celeba-mini"
    resolution: int = 64
    variants: int = 24
    styles: list[str] = field(default_factory=lambda: list(STYLES))
    pool_cache: str | None = None
    style_dim: int = 256
    n_mlp: int = 2  # the mapping network is not used by an autoencoder-trained generator; kept small
    channel_multiplier: float = 0.5
    max_channels: int = 256
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8
    adv_lambda: float = 0.05  # stage 1 only
    adv_start: int = 3000
    w_norm_lambda: float = 0.005  # stage 2
    attention_lambda: float = 1e3  # stage 2 (paper 2's λ4; the starter's sweep value)
    latent_lambda: float = 1.0  # stage 2: ‖E_sketch(s) − E_photo(y)‖² per style value
    style_bank: int = 512
    eval_photos: int = 64
    fp16_storage: bool = True
    spatial_resolution: int = 0  # stage 1: > 0 gives the encoder a spatial code at R/4 or R/2 (PSPConfig)
    spatial_lambda: float = 1.0  # stage 2: ‖F_sketch(s) − F_photo(y)‖² of the spatial codes
    # the translator's probes: moves and wobble cost identity on computed sketches (docs/history.md)
    augment: str = option("full", "pair augmentation every batch", choices=list(AUGMENTS))

    def __post_init__(self) -> None:
        if self.stage not in ("autoencoder", "sketch"):
            raise ValueError(f"--stage must be autoencoder or sketch; got {self.stage!r}")
        if self.stage == "sketch" and not self.autoencoder:
            raise ValueError("--stage sketch needs --autoencoder DIR (the folder stage 1 saved)")


#: this script's defaults for the shared flags (TrainingArguments)
TRAINING_DEFAULTS = {"output_dir": "runs/psp-real", "max_steps": 6000, "batch_size": 32, "lr": 5e-4}


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, PSPRealArguments]:
    return parse_training_args(PSPRealArguments, argv, description=__doc__, defaults=TRAINING_DEFAULTS)


class _Stage(nn.Module):
    """What one training step runs, inside ``forward`` so that data-parallel training syncs every trained part."""

    def __init__(self, psp: PSP):
        super().__init__()
        self.psp = psp

    def forward(
        self, x: torch.Tensor, decode: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """x (B, C, R, R) in [0, 1] → (image (B, 3, R, R) in [0, 1] or None without ``decode``, W+, spatial code or
        None)."""
        w_plus, spatial = self.psp.encode_spatial(x)
        if not decode:
            return None, w_plus, spatial
        return (self.psp.decode(w_plus, features=spatial) + 1) / 2, w_plus, spatial  # unclamped, as pSp


def build_autoencoder(args: PSPRealArguments) -> PSP:
    gen = StyleGANConfig(
        resolution=args.resolution,
        style_dim=args.style_dim,
        n_mlp=args.n_mlp,
        channel_multiplier=args.channel_multiplier,
        max_channels=args.max_channels,
    )
    cfg = PSPConfig(
        in_channels=3,
        encoder_channels=args.encoder_channels,
        generator=asdict(gen),
        spatial_resolution=args.spatial_resolution,
    )
    return PSP(cfg)


def build_sketch_psp(ae: PSP, bank: int) -> PSP:
    """A sketch pSp with the autoencoder's generator; its encoder starts as the photo encoder (grey input: the
    stem's RGB filters summed), so it begins from features that already describe faces."""
    cfg = PSPConfig(**{**asdict(ae.cfg), "in_channels": 1, "style_bank": bank})
    psp = PSP(cfg)
    state = ae.state_dict()
    stem = "encoder.stem.0.weight"
    state[stem] = state[stem].sum(dim=1, keepdim=True)
    missing, unexpected = psp.load_state_dict(state, strict=False)
    if unexpected or any(k != "style_bank" for k in missing):
        raise RuntimeError(f"autoencoder and sketch pSp do not match: missing {missing}, unexpected {unexpected}")
    return psp


@torch.no_grad()
def photo_codes(ae: PSP, images: torch.Tensor, device, batch: int = 256) -> torch.Tensor:
    """The photo encoder's W+ of uint8 photos (N, 3, R, R): (N, n_styles, D) on the CPU."""
    out = []
    for i in range(0, len(images), batch):
        out.append(ae.encode(images[i : i + batch].to(device).float() / 255).float().cpu())
    return torch.cat(out)


def code_losses(
    ae: PSP, image: torch.Tensor, w_plus: torch.Tensor, spatial: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 2's distillation: mean squared distance of the sketch encoder's W+ (and spatial code) to the photo
    encoder's codes of the true photo (the best the generator can do); the spatial term is 0 without a code."""
    with torch.no_grad():
        target_w, target_s = ae.encode_spatial(image)
    lat = F.mse_loss(w_plus.float(), target_w.float())
    sp = F.mse_loss(spatial.float(), target_s.float()) if spatial is not None else lat.new_zeros(())
    return lat, sp


@torch.no_grad()
def evaluate(psp: PSP, ev: dict[str, torch.Tensor], perceptual, identity, device) -> dict[str, float]:
    """Held-out MSE, ST-LPIPS, SFace of the reconstruction (stage 1: from the photo; stage 2: from each sketch)."""
    psp.eval()
    photo_input = psp.cfg.in_channels == 3
    x = ev["image"] if photo_input else ev["sketch"]
    out = torch.cat([psp(x[i : i + 64].to(device))[0].float().cpu() for i in range(0, len(x), 64)])  # PSP.forward
    out = (out.clamp(-1, 1) + 1) / 2
    psp.train()
    scores: dict[str, float] = {}
    groups = (
        [("photo", torch.ones(len(x), dtype=torch.bool))]
        if photo_input
        else [(name, ev["style"] == STYLES.index(name)) for name in EVAL_STYLES]
    )
    for name, sel in groups:
        scores[f"{name}/mse"] = float(F.mse_loss(out[sel], ev["image"][sel]))
        scores[f"{name}/lpips"] = float(perceptual(out[sel], ev["image"][sel], reduction="mean"))
        if identity is not None:
            scores[f"{name}/sface"] = float(identity(out[sel], ev["image"][sel], reduction="mean"))
    return scores


def model_card(train_args: TrainingArguments, args: PSPRealArguments, summary: dict, spatial: int = 0) -> str:
    """``spatial``: the model's spatial-code resolution (0: none; stage 2 takes it from the autoencoder)."""
    final = summary.get("eval", {})
    names = ["photo"] if args.stage == "autoencoder" else list(EVAL_STYLES)
    rows = "\n".join(
        f"| {s} | {final.get(f'{s}/mse', float('nan')):.4f} | {final.get(f'{s}/lpips', float('nan')):.3f} | "
        f"{final.get(f'{s}/sface', float('nan')):.3f} |"
        for s in names
    )
    command = "python -m train.psp_real " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("psp_real.py") else ""
    what = (
        "the autoencoder stage (photo encoder → W+ → StyleGAN2 synthesis) of a real-face pSp; its generator is what "
        "the sketch stage encodes into"
        if args.stage == "autoencoder"
        else "pSp (paper 2) on real faces: a sketch encoder into a StyleGAN2 generator trained as an autoencoder's "
        "decoder on real photos. Candidate 0 is the sketch's own W+; the others mix in the fine styles of real "
        f"faces' codes (a bank of {args.style_bank})"
    )
    losses = (
        f"+ PatchGAN × {args.adv_lambda} from step {args.adv_start}"
        if args.stage == "autoencoder"
        else f"+ W-norm × {args.w_norm_lambda} + CBAM attention × {args.attention_lambda:g} "
        f"+ latent × {args.latent_lambda}"
        + (f" + spatial code × {args.spatial_lambda}" if spatial else "")
        + f"; the first {args.latent_only_steps} steps the code terms alone"
    )
    if spatial:
        what += (
            f". The encoder also gives a {spatial}-px spatial code that replaces the generator's activations there "
            "(after the Feature-Style encoder); the styles above it vary the candidates"
        )
    return f"""---
license: other
license_name: celeba-research-only
library_name: sketchface
tags: [sketchface, sketch-to-face, psp, stylegan2]
---

# {model_name(train_args)}

{what}. {summary["parameters"] / 1e6:.1f} M parameters, {args.resolution} px. Part of SketchFace.

**Licence of the training data.** {LICENCE_NOTE}

## Intended use
Research and demos of forensic composites. The faces are AI-generated, not photographs of the drawn person.

## Training
- Data: {summary["train_photos"]} CelebA-mini training photos, {args.variants} drawings each
  ({", ".join(args.styles)}; the photos cut in each drawing's frame), {AUGMENT_WORDS[args.augment]}.
- Stage {args.stage}: losses L2 × {args.l2_lambda} + ST-LPIPS (alex) × {args.lpips_lambda}
  {losses}.
- {summary["steps"]} steps × batch {train_args.batch_size} in {summary["minutes"]:.1f} min on {summary["device"]}
  ({summary["speed"]}), precision {summary["precision"]}.
- Command: `{command or "python -m train.psp_real ..."}`{lineage(args.init_from)}

## Validation figures (training-time check, {summary["eval_photos"]} validation-split photos)

| input | MSE | ST-LPIPS (alex) | SFace cosine to the true photo |
|---|---:|---:|---:|
{rows}
"""


def main(train_args: TrainingArguments, args: PSPRealArguments) -> Path:
    trainer = Trainer(train_args)
    device = trainer.device
    pool = pair_pool(
        args.data_root,
        args.resolution,
        args.variants,
        args.styles,
        cache=args.pool_cache,
        num_workers=train_args.num_workers,
    )
    n_train = len(pool["image"]) // args.variants
    ae = None
    if args.stage == "autoencoder":
        psp = PSP.from_pretrained(args.init_from, strict=True).float() if args.init_from else build_autoencoder(args)
    else:
        ae = PSP.from_pretrained(args.autoencoder, strict=True).float().eval().requires_grad_(False)
        if args.init_from:  # a sketch pSp of this autoencoder, trained further
            psp = PSP.from_pretrained(args.init_from, strict=True).float()
        else:
            psp = build_sketch_psp(ae, args.style_bank)
            codes = photo_codes(ae.to(device), pool["image"], device)
            psp.latent_avg.copy_(codes.mean(dim=(0, 1)))
            g = torch.Generator().manual_seed(train_args.seed)
            psp.style_bank.copy_(codes[torch.randperm(len(codes), generator=g)[: args.style_bank]])
            del codes
        ae.to(device)
        psp.generator.requires_grad_(False)
    stage = _Stage(psp)
    trained = [p for p in stage.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trained, lr=train_args.lr, betas=(0.9, 0.99))
    disc = PatchDiscriminator(in_channels=3) if args.stage == "autoencoder" and args.adv_lambda > 0 else None
    d_opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999)) if disc is not None else None
    if disc is not None:
        stage, disc, opt, d_opt = trainer.prepare(stage, disc, opt, d_opt)
    else:
        stage, opt = trainer.prepare(stage, opt)
    sched = trainer.scheduler(opt)
    from sketchface.metrics import IdentitySimilarity, PerceptualDistance

    perceptual = PerceptualDistance("stlpips", device=device)
    attention = AttentionLoss(seed=train_args.seed).to(device) if args.stage == "sketch" else None
    ev = eval_pairs(args.data_root, args.resolution, args.eval_photos, split="valid") if trainer.is_main else None
    try:
        identity = IdentitySimilarity()
    except RuntimeError:
        identity = None
    step = trainer.resume()
    finished = trainer.done(step)
    t_start, seen, history = time.monotonic(), 0, []
    from tqdm.auto import tqdm

    bar = tqdm(total=train_args.max_steps, initial=step, disable=not trainer.is_main, desc=f"psp-{args.stage}")
    net = trainer.unwrap(stage).psp
    for batch in trainer.pool_batches(pool, step):
        if finished:
            break
        sketch, image = augment_batch(
            batch["sketch"].float() / 255, batch["image"].float() / 255, trainer.step_generator(step), args.augment
        )
        adv = disc is not None and step >= args.adv_start
        if args.stage == "sketch" and step < args.latent_only_steps:
            with trainer.autocast():  # the encoder alone learns to reach the photo codes: no generator pass
                _, w_plus, spatial = stage(sketch, decode=False)
                lat, sp = code_losses(ae, image, w_plus, spatial)
            opt.zero_grad(set_to_none=True)
            trainer.backward(args.latent_lambda * lat + args.spatial_lambda * sp)
            opt.step()
            sched.step()
            row = {"latent": lat.item(), **({"spatial": sp.item()} if spatial is not None else {})}
            step += 1
            seen += len(image) * trainer.num_processes
            bar.update(1)
            finished = trainer.done(step)
            if step % train_args.log_every == 0:
                trainer.log(step, row)
            if trainer.should_save(step):
                trainer.save_state(step)
            continue
        with trainer.autocast():
            fake, w_plus, spatial = stage(image if args.stage == "autoencoder" else sketch)
            l2 = F.mse_loss(fake.float(), image)
            lp = perceptual.distance(fake, image).mean()
            loss = args.l2_lambda * l2 + args.lpips_lambda * lp
            row = {"l2": l2.item(), "lpips": lp.item()}
            if args.stage == "sketch":
                lat, sp = code_losses(ae, image, w_plus, spatial)
                wn = (w_plus - net.latent_avg).flatten(1).norm(dim=1).mean()
                att = attention(image * 2 - 1, fake * 2 - 1)
                loss = loss + args.latent_lambda * lat + args.spatial_lambda * sp
                loss = loss + args.w_norm_lambda * wn + args.attention_lambda * att
                row.update(latent=lat.item(), w_norm=wn.item(), attention=att.item())
                if spatial is not None:
                    row["spatial"] = sp.item()
            if adv:
                disc.requires_grad_(False)  # the generator's step needs no critic weight gradients (issue 26)
                g_adv = -disc(fake).mean()
                loss = loss + args.adv_lambda * g_adv
        opt.zero_grad(set_to_none=True)
        trainer.backward(loss)
        opt.step()
        sched.step()
        if disc is not None and step >= args.adv_start - 300:
            d_loss = trainer.critic_step(disc, d_opt, image, fake)
            row["d"] = d_loss.item()
        step += 1
        seen += len(image) * trainer.num_processes
        bar.update(1)
        finished = trainer.done(step)
        if step % train_args.log_every == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()})
            trainer.log(step, row)
        if trainer.is_main and (step % train_args.eval_every == 0 or finished):
            scores = evaluate(net, ev, perceptual, identity, device)
            history.append({"step": step, **scores})
            trainer.log(step, {"eval": scores})
            trainer.print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        if trainer.should_save(step):
            trainer.save_state(step)
    bar.close()
    trainer.save_state(step)
    save_dir = Path(train_args.save_dir or Path(train_args.output_dir) / "final")
    if trainer.is_main:
        final = history[-1] if history else {"step": step, **evaluate(net, ev, perceptual, identity, device)}
        seconds = time.monotonic() - t_start
        summary = {
            **trainer.run_summary(net, step, seen, seconds),
            "train_photos": n_train,
            "eval_photos": len(ev["image"]) // len(EVAL_STYLES),
            "eval": {k: v for k, v in final.items() if k != "step"},
        }
        record = {"summary": summary, "history": history, "args": asdict(args), "training": asdict(train_args)}
        card = model_card(train_args, args, summary, spatial=net.cfg.spatial_resolution)
        trainer.finish(net, save_dir, card=card, record=record, fp16=args.fp16_storage)
    return save_dir


if __name__ == "__main__":
    main(*parse_args())
