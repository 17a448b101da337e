"""Faces from words on held-out real faces (issue 25's yardstick): does a description come out as a photograph that
obeys it?

    python -m evaluation.evaluate_words --models mvae-procedural=checkpoints/mvae-procedural-64 \\
        mvae-celeba-mini=checkpoints/mvae-celeba-mini-64 --data_root ../shared/data/celeba-mini

For every attribute model, ``--draws`` faces per held-out label vector (the CelebA-mini test split, all 40 attributes
stated, seed 0; default 4: with one, the rare attributes' shares rest on a handful of faces and swing by 0.1–0.4
between seeds), and for the real photos themselves:

- **Looks like a photograph**: Fréchet distance between the SFace embeddings (L2-normalised, 128-d) of the model's
  faces and of the test photos ("SFace FD"), beside the same distance between two sets of real faces (the valid
  split's photos against the test split's; with several draws, the mean over draws, each draw one face per vector
  so that every FD compares equal numbers of faces), and the share of faces in which YuNet finds a face at all.
- **Obeys the description**: attribute fidelity by the judge (``--classifier``, a classifier trained on real faces;
  default ``classifier-celeba-mini-pt-64``),
  mean over all stated attributes and per rare attribute (Eyeglasses, Wearing_Hat, Bald, Gray_Hair, Mustache, Male,
  Young) where stated; the judge's own balanced accuracy on the test photos says which attributes it can judge at
  all (below ``--judge_floor`` its figures are marked unreliable). The judge on the test photos against their own
  labels is reported as its ceiling. Sex is read a second time by a judge that shares nothing with it: a logistic
  regression on SFace embeddings fitted on the training photos (:class:`sketchface.metrics.SexProbe`).
- **A witness's description**: the same fidelity when only the 15 attributes a witness gives are stated (sex,
  age, hair colour and kind, bald, pale skin, glasses, hat, mustache, beard, make-up: ``EVAL_WORDS``, as Table 1's
  words; the rest unknown), ``--draws`` faces per vector, beside the judge's reading of the photos on those 15.
- **Candidates**: diversity (mean pairwise ST-LPIPS of 8 candidates per description) and "more like this" (SFace
  cosine between a picked candidate and 8 variations of it at the app's default strength 0.3).
- **Speed and size**: 8 candidates at batch 8 (p50, ms) and the checkpoint's size.

Writes ``results.json`` and ``results.md`` to ``--out_dir`` and a grid of the three criminals' candidates per model
(generated faces only: no dataset image is written there). Dataset photos never leave ``--data_root``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchface.attributes import ATTRIBUTES, CRIMINALS, INDEX
from sketchface.data.celeba import CelebA
from sketchface.data.pairs import witness_labels
from sketchface.export import labelled_grid
from sketchface.metrics import (
    IdentitySimilarity,
    PerceptualDistance,
    SexProbe,
    attribute_fidelity,
    frechet_distance,
    time_callable,
    to_tensor,
)
from sketchface.models.auto import AutoPipeline
from sketchface.training import atomic_write

RARE = ("Eyeglasses", "Wearing_Hat", "Bald", "Gray_Hair", "Mustache", "Male", "Young")
VARIATION_STRENGTH = 0.3  # the app's "more like this" default


@dataclass
class WordsConfig:
    models: list[str] = field(default_factory=list)  # NAME=PATH
    data_root: str = "../shared/data/celeba-mini"
    classifier: str = "checkpoints/classifier-celeba-mini-pt-64"  # real-face judge, procedural pre-training
    size: int = 64
    num_faces: int = 100  # test label vectors used (at most the split's size)
    draws: int = 4  # faces per label vector (the candidates of one call)
    diversity_descriptions: int = 16
    judge_floor: float = 0.7  # balanced accuracy on real photos below which an attribute's fidelity is unreliable
    seed: int = 0
    threads: int = 2
    out_dir: str = "docs/results/eval-words"


def parse_args(argv: list[str] | None = None) -> WordsConfig:
    d = WordsConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=PATH")
    for name in ("data_root", "classifier", "out_dir"):
        p.add_argument(f"--{name}", default=getattr(d, name))
    for name in ("size", "num_faces", "draws", "diversity_descriptions", "seed", "threads"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    p.add_argument("--judge_floor", type=float, default=d.judge_floor)
    cfg = WordsConfig(**vars(p.parse_args(argv)))
    if cfg.draws < 1:
        p.error(f"--draws must be at least 1; got {cfg.draws}")
    for spec in cfg.models:
        if "=" not in spec:
            p.error(f"expected NAME=PATH, got {spec!r}")
    return cfg


def _photos(data: CelebA, n: int) -> tuple[torch.Tensor, np.ndarray]:
    """(N, 3, S, S) photos in [0, 1] and their (N, 40) ±1 labels."""
    n = min(n, len(data))
    return torch.stack([data[i]["image"] for i in range(n)]), np.asarray(data.labels[:n], np.int64)


def _probs(judge: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([judge.predict(c) for c in images.split(64)]).cpu().numpy()


def judge_reliability(judge: torch.nn.Module, photos: torch.Tensor, labels: np.ndarray) -> dict[str, Any]:
    """The judge on real held-out photos: balanced accuracy per attribute (None where one class is missing)."""
    pred = _probs(judge, photos) > 0.5
    truth = labels > 0
    out: dict[str, float | None] = {}
    for j, name in enumerate(ATTRIBUTES):
        pos, neg = truth[:, j], ~truth[:, j]
        if pos.any() and neg.any():
            out[name] = float((pred[pos, j].mean() + (~pred[neg, j]).mean()) / 2)
        else:
            out[name] = None
    known = [v for v in out.values() if v is not None]
    return {
        "balanced_accuracy": out,
        "mean_balanced_accuracy": float(np.mean(known)),
        "accuracy": float((pred == truth).mean()),
        "majority_accuracy": float(np.maximum(truth.mean(0), 1 - truth.mean(0)).mean()),
    }


def present_shares(probs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Per rare attribute, the share of faces whose description states it present in which the judge finds it
    (None where no description states it)."""
    out: dict[str, float | None] = {}
    for a in RARE:
        rows = labels[:, INDEX[a]] > 0
        out[a] = None if not rows.any() else float((probs[rows, INDEX[a]] > 0.5).mean())
    return out


def true_photos(judge: torch.nn.Module, photos: torch.Tensor, labels: np.ndarray) -> dict[str, Any]:
    """The judge's reading of the test photos themselves against their own labels: the fidelity and rare-attribute
    shares a model's faces could reach if they were the real people (the judge's ceiling, not 1.0)."""
    probs = _probs(judge, photos)
    return {
        "fidelity": attribute_fidelity(probs, labels)["mean_over_specified"],
        "witness_fidelity": attribute_fidelity(probs, witness_labels(labels))["mean_over_specified"],
        "rare_present_fidelity": present_shares(probs, labels),
    }


def _images(out: Any) -> torch.Tensor:
    return to_tensor(list(out.images))


def evaluate_model(
    pipe: Any,
    labels: np.ndarray,
    real_emb: np.ndarray,
    judge: torch.nn.Module,
    ident: IdentitySimilarity,
    perceptual: PerceptualDistance,
    cfg: WordsConfig,
    probe: SexProbe | None = None,
) -> dict[str, Any]:
    from sketchface.attributes import Attributes

    size = cfg.size
    draws: list[list[torch.Tensor]] = [[] for _ in range(cfg.draws)]
    for row in labels:
        attrs = Attributes({name: bool(v > 0) for name, v in zip(ATTRIBUTES, row, strict=True)})
        for d, face in enumerate(_images(pipe(attrs, num_images=cfg.draws, seed=cfg.seed))):
            draws[d].append(face)
    per_draw = [
        torch.nn.functional.interpolate(torch.stack(f), size=(size, size), mode="bilinear", antialias=True)
        for f in draws
    ]
    ident.reset_counts()
    embs = [ident.embed(f) for f in per_draw]
    fds = [frechet_distance(real_emb, e) for e in embs]
    found = ident.aligned / max(ident.total, 1)
    faces_t, tiled = torch.cat(per_draw), np.tile(labels, (cfg.draws, 1))  # draw-major, as the faces
    probs = _probs(judge, faces_t)
    fid = attribute_fidelity(probs, tiled)
    rare = {a: fid["per_attribute"][a] for a in RARE}
    rare_present = present_shares(probs, tiled)  # where the description says it is there (the hard, rare direction)
    said = witness_labels(labels)  # a witness's 15 attributes, the rest unknown
    heard = [
        face
        for row in said
        for face in _images(
            pipe(
                {a: bool(v > 0) for a, v in zip(ATTRIBUTES, row, strict=True) if v}, num_images=cfg.draws, seed=cfg.seed
            )
        )
    ]
    heard_t = torch.nn.functional.interpolate(torch.stack(heard), size=(size, size), mode="bilinear", antialias=True)
    witness_fid = attribute_fidelity(_probs(judge, heard_t), np.repeat(said, cfg.draws, axis=0))
    div, like = [], []
    for k, row in enumerate(labels[: cfg.diversity_descriptions]):
        attrs = {name: bool(v > 0) for name, v in zip(ATTRIBUTES, row, strict=True)}
        out = pipe(attrs, num_images=8, seed=cfg.seed + k)
        cands = _images(out)
        div.append(perceptual.pairwise_mean(cands))
        if hasattr(pipe, "variations") and out.latents is not None:
            more = _images(
                pipe.variations(out.latents[0], num_images=8, seed=cfg.seed + k, strength=VARIATION_STRENGTH)
            )
            like.append(float((ident.embed(more) @ ident.embed(cands[:1]).T).mean()))
    attrs0 = {name: bool(v > 0) for name, v in zip(ATTRIBUTES, labels[0], strict=True)}
    timing = time_callable(lambda: pipe(attrs0, num_images=8, seed=cfg.seed), warmup=2, repeats=10)
    return {
        "sface_fd": float(np.mean(fds)),
        "sface_fd_per_draw": fds,
        "face_found": found,
        "fidelity": fid["mean_over_specified"],
        "fidelity_per_attribute": fid["per_attribute"],
        "witness_fidelity": witness_fid["mean_over_specified"],
        "witness_fidelity_per_attribute": witness_fid["per_attribute"],
        "rare_fidelity": rare,
        "rare_present_fidelity": rare_present,
        "sface_sex": probe.agreement(faces_t, tiled, np.concatenate(embs)) if probe is not None else None,
        "diversity": float(np.mean(div)),
        "more_like_this_sface": float(np.mean(like)) if like else None,
        "ms_8_candidates": timing["p50_ms"],
    }


def _size_mb(path: str) -> float:
    return sum(f.stat().st_size for f in Path(path).glob("*.safetensors")) / 1e6


def _f(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    r = results
    judge = r["judge"]
    lines = [
        f"# Faces from words on held-out real faces ({r['num_faces']} CelebA-mini test label vectors, "
        f"{r['config'].get('draws', 1)} faces each)",
        "",
        f"SFace FD between two sets of real faces (valid vs test photos): **{r['real_vs_real_sface_fd']:.3f}**. "
        f"Judge `{r['config']['classifier']}` on the test photos: accuracy {judge['accuracy']:.3f} (always the "
        f"majority answer: {judge['majority_accuracy']:.3f}), mean balanced accuracy "
        f"{judge['mean_balanced_accuracy']:.3f}.",
        "",
        "| model | SFace FD ↓ | face found | fidelity | a witness's 15: fidelity | "
        + " | ".join(RARE)
        + " | men / women by SFace | diversity | more like this | 8 candidates ms | MB |",
        "|---|" + "---:|" * (9 + len(RARE)),
    ]

    def sex(m: dict) -> str:
        s = m.get("sface_sex")
        return "–" if not s else f"{_f(s['men'], 2)} / {_f(s['women'], 2)}"

    if "true_photos" in r:  # results written before 2026-12-06 lack it
        t = r["true_photos"]
        lines.append(
            f"| the test photos themselves (the judge's ceiling) | {r['real_vs_real_sface_fd']:.3f} (valid vs test) | "
            f"– | {t['fidelity']:.3f} | {_f(t.get('witness_fidelity'))} | "
            + " | ".join(_f(t["rare_present_fidelity"][a], 2) for a in RARE)
            + f" | {sex(t)} | – | – | – | – |"
        )
    for name, m in r["models"].items():
        rare = [_f(m["rare_present_fidelity"][a], 2) for a in RARE]
        lines.append(
            f"| {name} | {m['sface_fd']:.3f} | {m['face_found']:.2f} | {m['fidelity']:.3f} | "
            f"{_f(m.get('witness_fidelity'))} | "
            + " | ".join(rare)
            + f" | {sex(m)} | {m['diversity']:.3f} | {_f(m['more_like_this_sface'])} | {m['ms_8_candidates']:.1f} | "
            f"{m['size_mb']:.1f} |"
        )
    weak = [a for a, v in judge["balanced_accuracy"].items() if v is not None and v < r["config"]["judge_floor"]]
    lines += [
        "",
        "Fidelity: share of the stated attributes the judge finds, all 40 stated; a witness's 15: the faces drawn "
        "when only sex, age, hair colour and kind, bald, pale skin, glasses, hat, mustache, beard and make-up are "
        "stated (the rest unknown), scored on those. Rare-attribute columns: share of faces whose description "
        "states the attribute present in which the judge finds it. The first row is the judge on the real test "
        "photos against their own labels: no model can be expected to score above it by this judge. Men / women "
        "by SFace: a second reading of sex that shares nothing with the judge (a logistic regression on OpenCV's "
        "SFace face embeddings, fitted on the training photos): the share of faces described as men that it reads "
        "as men, and of women as women. "
        f"The judge cannot tell (balanced accuracy on real photos < {r['config']['judge_floor']}): "
        + (", ".join(weak) if weak else "none")
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(cfg: WordsConfig) -> dict:
    from sketchface.models.classifier import AttributeClassifier

    torch.set_num_threads(cfg.threads)
    test = CelebA(cfg.data_root, "test", cfg.size)
    valid = CelebA(cfg.data_root, "valid", cfg.size)
    photos, labels = _photos(test, cfg.num_faces)
    other, _ = _photos(valid, cfg.num_faces)
    ident = IdentitySimilarity()
    real_emb = ident.embed(photos)
    train = CelebA(cfg.data_root, "train", cfg.size)
    train_photos, train_labels = _photos(train, len(train))
    probe = SexProbe(ident, train_photos, train_labels[:, INDEX["Male"]] > 0)
    judge = AttributeClassifier.from_pretrained(cfg.classifier).eval()
    perceptual = PerceptualDistance("stlpips")
    results: dict[str, Any] = {
        "config": asdict(cfg),
        "num_faces": len(labels),
        "real_vs_real_sface_fd": frechet_distance(ident.embed(other), real_emb),
        "judge": judge_reliability(judge, photos, labels),
        "true_photos": {**true_photos(judge, photos, labels), "sface_sex": probe.agreement(photos, labels, real_emb)},
        "models": {},
    }
    grid_rows: dict[str, list] = {}
    for spec in cfg.models:
        name, path = spec.split("=", 1)
        pipe = AutoPipeline.from_pretrained(path)
        if not pipe.capabilities.takes_words:
            raise SystemExit(f"{path} takes no words (a sketch model); evaluate it with evaluation/evaluate_sketch.py")
        m = evaluate_model(pipe, labels, real_emb, judge, ident, perceptual, cfg, probe)
        m["size_mb"] = _size_mb(path)
        results["models"][name] = m
        grid_rows[name] = [list(pipe(c.attributes, num_images=4, seed=cfg.seed).images) for c in CRIMINALS]
        print(f"{name}: SFace FD {m['sface_fd']:.3f}, fidelity {m['fidelity']:.3f}, diversity {m['diversity']:.3f}")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", json.dumps(results, indent=2))
    atomic_write(out / "results.md", markdown(results))
    grid = labelled_grid(list(grid_rows.values()), list(grid_rows), [f"{c.name}: {c.text}" for c in CRIMINALS], cell=96)
    atomic_write(out / "criminals.png", lambda tmp: grid.save(tmp, format="PNG"))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main(parse_args())
