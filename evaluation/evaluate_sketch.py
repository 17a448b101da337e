"""Table 1 on held-out real faces: sketch → face models side by side (paper 2's comparison, on CelebA(-mini)).

For every test-split photo, each evaluation style (:data:`sketchface.data.pairs.EVAL_STYLES`: paper 2's computed
sketch and two kinds of line art) is drawn once, normalised as the app normalises an upload, and given to every
model. Figures, at 64 px against the true photo cut in the same frame:

* runtime: ms per sketch at batch 1 (one candidate, and all ``--candidates``), CPU threads as set;
* MSE, SSIM, ST-LPIPS (alex; named in the table) of candidate 0 (each model's deterministic best guess);
* SFace cosine of candidate 0 to the true photo, and to another test person's photo (the bar to clear), with the
  faces aligned by YuNet's landmarks; and the same on the central 80 % of the frame resized, without alignment (the
  reading that issue 23's first table used: it gives a constant face 0.16 instead of −0.03, and blurred faces more);
* attribute agreement: the classifier's reading of candidate 0 against the person's CelebA labels, beside the
  classifier's reading of the true photo (its ceiling) and the constant majority answer (the floor);
* candidates (computed sketches): mean pairwise ST-LPIPS of ``--candidates`` candidates (the spread) and their mean
  and lowest SFace to the true photo;
* sketch + words, for models that take words with a sketch (``capabilities.words_with_sketch``): candidate 0 again,
  given the person's true values of :data:`sketchface.data.pairs.EVAL_WORDS` (what a witness would say: sex, age,
  hair, skin, glasses, hat, facial hair, make-up), and the classifier's agreement on those stated attributes, with and
  without the words.

A constant (the mean training photo in the same frame) is scored beside the models. Writes results.json, results.md
and ``drawings.png`` (hand-drawn-style line drawings of procedural faces, no dataset pixels: a picture that may be
committed) to ``--out_dir``, and the side-by-side grids with the real photos (photo | sketch | each model; candidates)
to ``--grid_dir``, outside the repository: CelebA images may not be redistributed. ``--update_cards`` puts each
model's figures into its model card.

    python -m evaluation.evaluate_sketch --models translator=checkpoints/translator-celeba-mini-64 \
        psp-real=checkpoints/psp-celeba-mini-64 psp-procedural=checkpoints/psp-procedural-64 \
        mvae-procedural=checkpoints/mvae-procedural-64 --out_dir docs/results/eval-real-sketch
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sketchface.attributes import INDEX, Attributes
from sketchface.data.pairs import EVAL_STYLES, EVAL_WORDS, STYLES, eval_pairs, pair_pool
from sketchface.export import labelled_grid
from sketchface.metrics import IdentitySimilarity, PerceptualDistance, majority_baseline, ssim, time_callable

SIZE = 64  # metrics resolution (Table 1 of the issue: 64 px)
CARD_START, CARD_END = "<!-- evaluate_sketch:start -->", "<!-- evaluate_sketch:end -->"
REAL_FOOTER = "photo: CelebA (research use only, do not redistribute); model columns: AI-generated"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=FOLDER", help="checkpoints to compare")
    p.add_argument("--data_root", default="../shared/data/celeba-mini", help="CelebA-layout folder")
    p.add_argument("--split", default="test", help="held-out split (test; valid for model selection)")
    p.add_argument("--photos", type=int, default=None, help="first N photos of the split (default: all)")
    p.add_argument("--candidates", type=int, default=8, help="candidates per sketch for the spread")
    p.add_argument("--candidate_photos", type=int, default=32, help="photos whose candidates are scored")
    p.add_argument("--mix", type=float, default=0.5, help="variety of the candidates (the app's default 0.5)")
    p.add_argument("--classifier", default="checkpoints/classifier-celeba-mini-64", help="attribute judge ('' off)")
    p.add_argument(
        "--words_judge",
        default="checkpoints/classifier-celeba-mini-pt-64",
        help="classifier that reads back the stated attributes of sketch + words (not the one a translator's "
        "attribute loss trains against; '' off)",
    )
    p.add_argument("--no_constant", action="store_true", help="skip the mean-face constant")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (runtime figures)")
    p.add_argument("--out_dir", default="docs/results/eval-real-sketch")
    p.add_argument("--grid_dir", default="runs/eval-real-sketch", help="grids with dataset photos (never commit)")
    p.add_argument("--update_cards", action="store_true", help="write each model's figures into its README.md")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------------ models
def load_sketch_pipeline(folder: str) -> Any:
    """The face pipeline for a checkpoint folder (by config.json's ``model_type``); it must take a sketch."""
    from sketchface.models.auto import AutoPipeline

    pipe = AutoPipeline.from_pretrained(folder)
    if not pipe.capabilities.takes_sketch:
        raise SystemExit(f"{folder} takes no sketch (an attribute model without a sketch expert)")
    return pipe


def candidates(
    pipe: Any, sketch: Image.Image, n: int, seed: int = 0, mix: float = 0.5, words: Attributes | None = None
) -> list[Image.Image]:
    """``n`` candidates of one sketch (with ``words``, for a model that takes them with a sketch); candidate 0 is the
    model's deterministic best guess."""
    if pipe.capabilities.takes_words:  # the MVAE sketch expert (sketch=): posterior mean first, then samples
        first = pipe(words, sketch=sketch, num_images=1, seed=seed, temperature=0.0).images
        return first + (pipe(words, sketch=sketch, num_images=n - 1, seed=seed + 1).images if n > 1 else [])
    said = {"attributes": words} if words is not None else {}
    return pipe(sketch, num_images=n, seed=seed, mix_strength=mix, **said).images


def witness(labels: np.ndarray) -> Attributes:
    """A person's 0/1 labels (40,) → the description a witness gives: :data:`EVAL_WORDS` stated, the rest unknown."""
    return Attributes({a: bool(labels[INDEX[a]]) for a in EVAL_WORDS})


def to64(images: list[Image.Image]) -> torch.Tensor:
    """PIL faces → (N, 3, 64, 64) float in [0, 1] (antialiased when larger)."""
    t = torch.stack(
        [torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1) for im in images]
    )
    if t.shape[-1] != SIZE:
        t = F.interpolate(t, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return t


def pil(t: torch.Tensor) -> Image.Image:
    a = (t.clamp(0, 1) * 255).round().byte()
    return Image.fromarray(a[0].numpy()) if a.shape[0] == 1 else Image.fromarray(a.permute(1, 2, 0).numpy())


# ------------------------------------------------------------------------------------------------------ scoring
def _classifier(path: str) -> Any:
    from sketchface.models.classifier import AttributeClassifier

    return AttributeClassifier.from_pretrained(path).eval() if path else None


@torch.no_grad()
def _read(classifier: Any, images: torch.Tensor) -> np.ndarray:
    return (classifier.predict(images).float().numpy() > 0.5).astype(np.float32)


class Scorer:
    def __init__(self, classifier_path: str, words_judge: str = ""):
        self.perceptual = PerceptualDistance("stlpips")
        self.identity = IdentitySimilarity()
        self.identity_crop = IdentitySimilarity(detect=False)  # centre crop, no alignment
        self.classifier = _classifier(classifier_path)
        self.words_judge = _classifier(words_judge)

    def attributes(self, images: torch.Tensor) -> np.ndarray:
        return _read(self.classifier, images)

    def stated_agreement(self, images: torch.Tensor, labels: np.ndarray) -> float:
        """The words judge's agreement with the person's labels on the :data:`EVAL_WORDS` attributes only."""
        idx = [INDEX[a] for a in EVAL_WORDS]
        return float((_read(self.words_judge, images)[:, idx] == labels[:, idx]).mean())

    def score(self, fake: torch.Tensor, real: torch.Tensor, other: torch.Tensor, labels: np.ndarray | None) -> dict:
        out = {
            "mse": float(F.mse_loss(fake, real)),
            "ssim": float(ssim(fake, real)),
            "lpips": float(self.perceptual(fake, real, reduction="mean")),
            "sface_true": float(self.identity(fake, real, reduction="mean")),
            "sface_other": float(self.identity(fake, other, reduction="mean")),
            "sface_crop_true": float(self.identity_crop(fake, real, reduction="mean")),
            "sface_crop_other": float(self.identity_crop(fake, other, reduction="mean")),
        }
        if self.classifier is not None and labels is not None:
            out["agreement"] = float((self.attributes(fake) == labels).mean())
        return out


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    models = dict(m.split("=", 1) for m in args.models)
    pipes = {name: load_sketch_pipeline(folder) for name, folder in models.items()}
    ev_big = eval_pairs(args.data_root, 256, args.photos, split=args.split)  # sketches as the app gives them
    ev = eval_pairs(args.data_root, SIZE, args.photos, split=args.split)  # the true photos at 64 px
    n_photos = int(ev["photo"].max()) + 1
    from sketchface.data.pairs import SketchPhotoPairs

    labels_all = SketchPhotoPairs(args.data_root, args.split, SIZE, ("computed",), augment=False).labels
    scorer = Scorer(args.classifier, args.words_judge)
    results: dict[str, Any] = {
        "split": args.split,
        "photos": n_photos,
        "data_root": os.path.basename(os.path.normpath(args.data_root)),
        "perceptual": scorer.perceptual.name,
        "identity": scorer.identity.name,
        "classifier": args.classifier or None,
        "words_judge": args.words_judge or None,
        "threads": args.threads,
        "models": {},
    }
    if labels_all is not None:
        lab = labels_all[:n_photos].numpy()
        results["majority_baseline"] = majority_baseline(lab * 2 - 1)
        if scorer.classifier is not None:
            results["classifier_on_true_photos"] = float(
                (scorer.attributes(ev["image"][:: len(EVAL_STYLES)]) == lab).mean()
            )
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    constant = None
    if not args.no_constant:
        train = pair_pool(args.data_root, SIZE, 1, ("computed",), split="train")
        constant = train["image"].float().mean(0) / 255  # (3, 64, 64)
    rows = {
        **{name: None for name in pipes},
        **({"mean training face (a constant)": None} if constant is not None else {}),
    }
    for name in rows:
        pipe = pipes.get(name)
        per_style: dict[str, Any] = {}
        outputs[name] = {}
        for style in EVAL_STYLES:
            sel = (ev["style"] == STYLES.index(style)).nonzero().flatten().tolist()
            real = ev["image"][sel]
            other = real.roll(1, dims=0)  # another person's photo, same frame
            labels = labels_all[ev["photo"][sel]].numpy() if labels_all is not None else None
            if pipe is None:
                fake = constant.expand(len(sel), -1, -1, -1).clone()
            else:
                fake = to64([candidates(pipe, pil(ev_big["sketch"][i]), 1)[0] for i in sel])
            outputs[name][style] = fake
            per_style[style] = scorer.score(fake, real, other, labels)
            if pipe is not None and pipe.capabilities.words_with_sketch and labels is not None:
                said = to64([candidates(pipe, pil(ev_big["sketch"][i]), 1, words=witness(lab))[0] for i, lab in
                             zip(sel, labels)])  # fmt: skip
                per_style.setdefault("words", {})[style] = scorer.score(said, real, other, labels)
                if scorer.words_judge is not None:
                    per_style["words"][style]["stated_agreement"] = scorer.stated_agreement(said, labels)
                    per_style["words"][style]["stated_agreement_without"] = scorer.stated_agreement(fake, labels)
        if pipe is not None:
            sketch0 = pil(ev_big["sketch"][0])
            per_style["runtime_ms"] = time_callable(lambda p=pipe, s=sketch0: candidates(p, s, 1), repeats=20)["p50_ms"]
            per_style[f"runtime_ms_{args.candidates}"] = time_callable(
                lambda p=pipe, s=sketch0: candidates(p, s, args.candidates), repeats=10
            )["p50_ms"]
            per_style["candidates"] = spread(pipe, ev_big, ev, scorer, args)
            per_style["checkpoint"] = models[name]
            per_style["checkpoint_mb"] = round((Path(models[name]) / "model.safetensors").stat().st_size / 1e6, 1)
        results["models"][name] = per_style
        print(
            f"{name}: "
            + ", ".join(
                f"{s} mse {per_style[s]['mse']:.4f} lpips {per_style[s]['lpips']:.3f} "
                f"sface {per_style[s]['sface_true']:.3f}"
                for s in EVAL_STYLES
            ),
            flush=True,
        )
    results["seconds"] = round(time.time() - t_start, 1)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "results.md").write_text(markdown(results, args))
    grid_dir = Path(args.grid_dir)
    grid_dir.mkdir(parents=True, exist_ok=True)
    for style in ("computed", "edges"):
        grid(ev, outputs, style, grid_dir / f"sketch_to_face_{style}.png")
    best = next(iter(pipes))
    candidate_grid(pipes[best], ev_big, ev, args.candidates, grid_dir / "candidates.png", best, mix=args.mix)
    drawings_grid(pipes, args.candidates, out_dir / "drawings.png", mix=args.mix)
    if args.update_cards:
        for name, folder in cards_to_update(models).items():
            update_card(Path(folder), name, results)
    print(markdown(results, args))
    return results


def spread(pipe: Any, ev_big: dict, ev: dict, scorer: Scorer, args: argparse.Namespace) -> dict[str, float]:
    """Candidates of the first ``candidate_photos`` computed sketches: spread and identity."""
    sel = (ev["style"] == STYLES.index("computed")).nonzero().flatten().tolist()[: args.candidate_photos]
    spreads, sims = [], []
    for i in sel:
        c = to64(candidates(pipe, pil(ev_big["sketch"][i]), args.candidates, seed=i, mix=args.mix))
        spreads.append(scorer.perceptual.pairwise_mean(c))
        sims.append(scorer.identity(c, ev["image"][i : i + 1].expand(len(c), -1, -1, -1)))
    sims_arr = np.stack(sims)  # (photos, candidates)
    return {
        "pairwise_lpips": float(np.mean(spreads)),
        "sface_mean": float(sims_arr.mean()),
        "sface_min_mean": float(sims_arr.min(axis=1).mean()),
        "share_over_0.55": float((sims_arr >= 0.55).mean()),
        "photos": len(sel),
        "per_sketch": args.candidates,
        "mix": args.mix,
    }


# ------------------------------------------------------------------------------------------------------ reports
def markdown(results: dict, args: argparse.Namespace) -> str:
    n = args.candidates
    lines = [
        f"Held-out real faces: {results['photos']} photos of the {results['data_root']} `{results['split']}` split, "
        f"64 px. Perceptual: {results['perceptual']}; identity: {results['identity']}; runtime: batch 1, "
        f"{results['threads']} CPU threads.",
        "",
    ]
    for style in EVAL_STYLES:
        lines += [
            f"**{style} sketches**",
            "",
            "| model | ms / sketch | MSE | SSIM | ST-LPIPS | SFace true / other | SFace, centre crop: true / other "
            "| attribute agreement |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in results["models"].items():
            s = r[style]
            ms = f"{r['runtime_ms']:.1f}" if "runtime_ms" in r else "–"
            agree = f"{s['agreement']:.3f}" if "agreement" in s else "–"
            crop = f"{s['sface_crop_true']:.3f} / {s['sface_crop_other']:.3f}" if "sface_crop_true" in s else "–"
            lines.append(
                f"| {name} | {ms} | {s['mse']:.4f} | {s['ssim']:.3f} | {s['lpips']:.3f} | "
                f"{s['sface_true']:.3f} / {s['sface_other']:.3f} | {crop} | {agree} |"
            )
        lines.append("")
    lines += [
        f"**{n} candidates per computed sketch** (first {args.candidate_photos} photos, variety {args.mix:g})",
        "",
        f"| model | ms for {n} | spread (pairwise ST-LPIPS) | SFace to the true photo: mean / lowest | ≥ 0.55 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results["models"].items():
        if "candidates" in r:
            c = r["candidates"]
            lines.append(
                f"| {name} | {r[f'runtime_ms_{n}']:.1f} | {c['pairwise_lpips']:.3f} | {c['sface_mean']:.3f} / "
                f"{c['sface_min_mean']:.3f} | {c['share_over_0.55']:.0%} |"
            )
    worded = {name: r["words"] for name, r in results["models"].items() if "words" in r}
    if worded:
        lines += [
            "",
            f"**Sketch + a witness's words** (candidate 0 given the person's true {', '.join(EVAL_WORDS)}; the rest "
            "unknown)",
            "",
            f"| model | sketch style | MSE | SSIM | ST-LPIPS | SFace true / other | stated attributes read back by "
            f"`{results.get('words_judge')}`: with / without the words |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, w in worded.items():
            for style, s in w.items():
                agree = (
                    f"{s['stated_agreement']:.3f} / {s['stated_agreement_without']:.3f}"
                    if "stated_agreement" in s
                    else "–"
                )
                lines.append(
                    f"| {name} | {style} | {s['mse']:.4f} | {s['ssim']:.3f} | {s['lpips']:.3f} | "
                    f"{s['sface_true']:.3f} / {s['sface_other']:.3f} | {agree} |"
                )
    lines += [
        "",
        "SFace true / other: faces aligned on YuNet's five landmarks (the project's reading). Centre crop: the "
        "central 80 % of the frame resized to 112 px, no alignment; it reads blur and a shared frame as likeness "
        "(a constant face scores about 0.16 to every photo), so compare models within one column.",
    ]
    if "majority_baseline" in results and results["classifier"]:  # (no sentence about a judge not run)
        lines += [
            "",
            f"Attribute agreement is the classifier ({results['classifier']}) reading each output against the "
            f"person's CelebA labels; the same classifier on the true photos scores "
            f"{results.get('classifier_on_true_photos', float('nan')):.3f}, a constant majority answer "
            f"{results['majority_baseline']:.3f}.",
        ]
    return "\n".join(lines) + "\n"


def grid(ev: dict, outputs: dict, style: str, path: Path, photos: int = 6) -> None:
    sel = (ev["style"] == STYLES.index(style)).nonzero().flatten().tolist()[:photos]
    names = list(outputs)
    rows = []
    for k, i in enumerate(sel):
        rows.append([pil(ev["image"][i]), pil(ev["sketch"][i])] + [pil(outputs[m][style][k]) for m in names])
    cols = ["photo", f"{style} sketch", *names]
    labelled_grid(rows, [f"#{k + 1}" for k in range(len(rows))], cols, cell=96, footer=REAL_FOOTER).save(path)


def candidate_grid(
    pipe: Any, ev_big: dict, ev: dict, n: int, path: Path, name: str, photos: int = 4, mix: float = 0.5
) -> None:
    rows, labels = [], []
    for style in ("computed", "edges"):
        sel = (ev["style"] == STYLES.index(style)).nonzero().flatten().tolist()[:photos]
        for i in sel:
            rows.append(
                [
                    pil(ev["image"][i]),
                    pil(ev["sketch"][i]),
                    *candidates(pipe, pil(ev_big["sketch"][i]), n, seed=i, mix=mix),
                ]
            )
            labels.append(style)
    cols = ["photo", "sketch"] + [f"{name} #{k + 1}" for k in range(n)]
    labelled_grid(rows, labels, cols, cell=80, footer=REAL_FOOTER).save(path)


def drawings_grid(pipes: dict[str, Any], n: int, path: Path, faces: int = 4, mix: float = 0.5) -> None:
    """Line drawings made by the project (hand-drawn-style strokes of procedural faces: no dataset pixels) →
    each model's candidate 0, then ``n`` candidates of the first model."""
    from sketchface.data.procedural import render
    from sketchface.data.sketch import strokes_to_sketch

    names = list(pipes)
    rows = []
    for seed in range(faces):
        drawing = strokes_to_sketch(render(seed=100 + seed, size=256).strokes, 256, seed=seed, style="hand")
        first = [candidates(pipes[m], drawing, 1)[0] for m in names]
        rows.append([drawing, *first, *candidates(pipes[names[0]], drawing, n, seed=seed, mix=mix)[1:]])
    cols = ["drawing", *names] + [f"{names[0]} #{k + 2}" for k in range(n - 1)]
    labelled_grid(rows, [""] * len(rows), cols, cell=80).save(path)


def cards_to_update(models: dict[str, str]) -> dict[str, str]:
    """The models whose cards ``--update_cards`` writes: one per README.md file. Two names whose folders share a card
    (the same folder, or a copy that links its README.md, e.g. the shipped weights with another config.json) would
    overwrite each other's figures; the first name listed keeps the card and the others are skipped, with a message."""
    out: dict[str, str] = {}
    owner: dict[Path, str] = {}
    for name, folder in models.items():
        card = (Path(folder) / "README.md").resolve()
        if card in owner:
            print(
                f"--update_cards: {name!r} shares its model card with {owner[card]!r}; "
                f"only {owner[card]!r}'s figures go in"
            )
            continue
        owner[card] = name
        out[name] = folder
    return out


def update_card(folder: Path, name: str, results: dict) -> None:
    """Put this model's held-out figures between markers in its README.md (replacing earlier ones)."""
    readme = folder / "README.md"
    r = results["models"][name]
    rows = "\n".join(
        f"| {s} | {r[s]['mse']:.4f} | {r[s]['ssim']:.3f} | {r[s]['lpips']:.3f} | {r[s]['sface_true']:.3f} / "
        f"{r[s]['sface_other']:.3f} |"
        for s in EVAL_STYLES
    )
    c = r.get("candidates", {})
    if "words" in r:
        rows += "\n" + "\n".join(
            f"| {s}, with a witness's words | {w['mse']:.4f} | {w['ssim']:.3f} | {w['lpips']:.3f} | "
            f"{w['sface_true']:.3f} / {w['sface_other']:.3f} |"
            for s, w in r["words"].items()
        )
    block = (
        f"{CARD_START}\n## Sketch → face on held-out real faces (`evaluation/evaluate_sketch.py`)\n\n"
        f"{results['photos']} {results['split']}-split photos never seen in training, 64 px, candidate 0. "
        f"{r.get('runtime_ms', float('nan')):.1f} ms per sketch at batch 1 ({results['threads']} CPU threads).\n\n"
        f"| sketch style | MSE | SSIM | {results['perceptual']} | {results['identity']} true / other person |\n"
        f"|---|---:|---:|---:|---:|\n{rows}\n\n"
        + (
            f"{c['per_sketch']} candidates per sketch: spread (pairwise ST-LPIPS) {c['pairwise_lpips']:.3f}, SFace to "
            f"the true photo {c['sface_mean']:.3f} on average, {c['share_over_0.55']:.0%} of candidates ≥ 0.55.\n"
            if c
            else ""
        )
        + f"{CARD_END}\n"
    )
    text = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {folder.name}\n"
    pattern = re.compile(re.escape(CARD_START) + ".*?" + re.escape(CARD_END) + "\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(parse_args())
