"""Choose a layout-face model's run-time prior settings on the validation split (never the test split).

    python -m scripts.layout_prior_sweep checkpoints/layout-celeba-mini-64 --neighbours 4 8 16 \\
        --guidance 1 1.5

For every combination: one face per validation label vector (all 40 attributes stated, seed 0), scored as
``train/layout_face.py`` scores its validation (SFace FD to the validation photos, the judge's fidelity overall and
for each rare attribute stated present, diversity of 4 draws). Prints a Markdown table; the renderer is untouched.
"""

from __future__ import annotations

import argparse
import itertools

import torch

from sketchface.metrics import IdentitySimilarity, PerceptualDistance
from sketchface.models.classifier import AttributeClassifier
from sketchface.models.layout_face import LayoutFace
from train.layout_face import RARE, evaluate, photo_pool


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a saved layout-face folder")
    p.add_argument("--data_root", default="../shared/data/celeba-mini")
    p.add_argument("--judge", default="checkpoints/classifier-celeba-mini-pt-64")
    p.add_argument("--neighbours", type=int, nargs="+", default=[8])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = LayoutFace.from_pretrained(args.model, strict=True).float().eval()
    ev = photo_pool(args.data_root, "valid", model.resolution)
    perceptual, identity = PerceptualDistance("stlpips"), IdentitySimilarity()
    judge = AttributeClassifier.from_pretrained(args.judge).eval()
    cols = ["sface_fd", "fidelity", *(f"present/{a}" for a in RARE), "diversity"]
    print(f"{len(ev['image'])} validation label vectors; judge {args.judge}\n")
    print("| neighbours | guidance | " + " | ".join(c.removeprefix("present/") for c in cols) + " |")
    print("|---:|---:|" + "---:|" * len(cols))
    for k, g in itertools.product(args.neighbours, args.guidance):
        model.config.neighbours, model.config.guidance = k, g
        scores = evaluate(model, ev, perceptual, identity, judge, "cpu")
        print(f"| {k} | {g:g} | " + " | ".join(f"{scores.get(c, float('nan')):.3f}" for c in cols) + " |", flush=True)


if __name__ == "__main__":
    main()
