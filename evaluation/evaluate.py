"""Evaluate attribute→face and sketch→face checkpoints the way the papers did, on one test set.

    python -m evaluation.evaluate --models mvae=checkpoints/mvae-procedural-64 psp=checkpoints/psp-procedural-64 \\
        --classifier checkpoints/classifier-procedural-64 --data procedural --num_samples 256 \\
        --sketch computed --out_dir results/eval-procedural

Writes ``results.json``, ``results.md`` (tables shaped like paper 2's Table 1, plus attribute fidelity,
diversity and the Fréchet classifier distance) and ``criminals.png`` (paper 1's criminal sketch test:
rows = attribute models, columns = the three described criminals × N candidates) into ``--out_dir``.

The checkpoint type is read from its config.json: MVAE/CVAE checkpoints load as
``sketchface.pipelines.attribute_to_face.AttributeToFace``, pSp checkpoints as
``sketchface.pipelines.sketch_to_face.SketchToFace`` (override with ``--kinds NAME=attribute|sketch``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sketchface import metrics as M
from sketchface.attributes import ATTRIBUTES, CRIMINALS, INDEX, Attributes
from sketchface.models import auto
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.pipelines.base import Capabilities, FaceOutput
from sketchface.training import atomic_write

HELD_OUT_SEED = 10_000_000  # procedural evaluation seeds (training uses seeds from 0)
KINDS = ("attribute", "sketch")
PIPELINE_CLASSES = {
    "attribute": ("sketchface.pipelines.attribute_to_face", "AttributeToFace"),
    "sketch": ("sketchface.pipelines.sketch_to_face", "SketchToFace"),
}


# ------------------------------------------------------------------------------------------------- pipeline interface


@runtime_checkable
class AttributePipeline(Protocol):
    """What evaluation needs from an attribute→face pipeline (AttributeToFace satisfies it; see
    :class:`sketchface.pipelines.base.FacePipeline`)."""

    device: Any
    capabilities: Capabilities

    def __call__(self, attributes: Attributes, *, num_images: int, seed: int) -> FaceOutput: ...


@runtime_checkable
class SketchPipeline(Protocol):
    """What evaluation needs from a sketch→face pipeline (SketchToFace satisfies it)."""

    device: Any
    capabilities: Capabilities

    def __call__(self, sketch: Image.Image, *, num_images: int, seed: int) -> FaceOutput: ...


class CheckpointError(RuntimeError):
    """A checkpoint is missing, of an unknown type, or failed to load."""


def detect_kind(path: str | Path) -> str:
    """ "attribute" or "sketch" from the checkpoint's ``model_type`` (:mod:`sketchface.models.auto`)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path} (train it first, or check the path)")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} holds no config.json: not a SketchFace checkpoint folder")
    try:
        found = auto.model_type(path)
    except auto.UnknownModelError as e:
        raise CheckpointError(f"cannot tell what {path} is: {e} Use --kinds NAME=attribute|sketch") from e
    if found == "attribute-classifier":
        raise CheckpointError(f"{path} is an attribute classifier checkpoint; pass it with --classifier")
    if found == "stylegan2":
        raise CheckpointError(f"{path} is a bare StyleGAN generator; sketch→face needs a pSp checkpoint")
    return "sketch" if found in ("psp", "sketch-translator") else "attribute"


class WeightedDescription:
    """An attribute pipeline whose calls default to a given ``description_weight`` (the rest passes through)."""

    def __init__(self, pipe: Any, weight: float):
        self.pipe, self.weight = pipe, float(weight)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("description_weight", self.weight)
        return self.pipe(*args, **kwargs)


def _model_type(path: str | Path) -> str | None:
    try:
        return auto.read_config(path).get("model_type")
    except (OSError, ValueError):
        return None


def load_pipeline(path: str, kind: str | None = None, device: str | torch.device = "cpu") -> tuple[str, Any]:
    """(kind, pipeline) for a checkpoint folder; imports the pipeline module only when needed."""
    kind = kind or detect_kind(path)
    if kind not in KINDS:
        raise CheckpointError(f"kind must be one of {KINDS}, got {kind!r}")
    module_name, class_name = PIPELINE_CLASSES[kind]
    found = _model_type(path)
    if found in ("sketch-translator", "layout-face"):  # the pipeline its model_type names
        module_name, class_name = auto.PIPELINES[found].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        pipe = cls.from_pretrained(str(path))
    except Exception as e:  # noqa: BLE001 - any load failure is reported with the path
        raise CheckpointError(f"could not load {path} as {class_name} (incompatible checkpoint?): {e}") from e
    return kind, pipe.to(device)


def criminals() -> list[tuple[str, str, Attributes]]:
    """(label, description, attributes) for paper 1's three criminals (:data:`sketchface.attributes.CRIMINALS`)."""
    return [(c.name, c.text, c.attributes) for c in CRIMINALS]


# ------------------------------------------------------------------------------------------------------------ config


@dataclass
class EvalConfig:
    models: list[str] = field(default_factory=list)  # NAME=PATH
    kinds: list[str] = field(default_factory=list)  # NAME=attribute|sketch overrides
    classifier: str | None = "checkpoints/classifier-procedural-64"
    data: str = "procedural"  # "procedural" | "celeba"
    data_root: str | None = None
    split: str = "test"
    num_samples: int = 64
    size: int = 64  # ground truth resolution; outputs are resized to it for pixel metrics
    sketch: str = "computed"  # "computed" | "hand"
    candidates: int = 4  # per description / sketch (diversity); the first one is scored against the truth
    grid_candidates: int = 4
    runtime_repeats: int = 10
    perceptual: str = "auto"  # "auto" | "lpips" | "stlpips"
    identity: bool = True
    device: str = "auto"
    seed: int = 0
    start_seed: int = HELD_OUT_SEED  # first procedural seed (another range gives a tuning split)
    sketch_attributes: bool = False  # also MVAE sketch + description → face, per description weight
    description_weights: list[float] = field(default_factory=lambda: [1.0, DESCRIPTION_WEIGHT])
    description_weight: float | None = None  # MVAE generation everywhere else; None = the pipeline's default
    inversion_steps: int = 0  # > 0: also the generator ceiling of pSp models (W+ optimised against the photo)
    inversion_faces: int = 16
    out_dir: str = "results/eval"


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    d = EvalConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=PATH")
    p.add_argument("--kinds", nargs="*", default=[], metavar="NAME=KIND", help="override the detected type")
    p.add_argument("--classifier", default=d.classifier, help="AttributeClassifier checkpoint ('' to skip)")
    p.add_argument("--data", default=d.data, choices=["procedural", "celeba"])
    p.add_argument("--data_root", default=d.data_root)
    p.add_argument("--split", default=d.split, choices=["train", "valid", "test", "all"])
    p.add_argument("--num_samples", type=int, default=d.num_samples)
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--sketch", default=d.sketch, choices=["computed", "hand"])
    p.add_argument("--candidates", type=int, default=d.candidates)
    p.add_argument("--grid_candidates", type=int, default=d.grid_candidates)
    p.add_argument("--runtime_repeats", type=int, default=d.runtime_repeats)
    p.add_argument("--perceptual", default=d.perceptual, choices=["auto", "lpips", "stlpips"])
    p.add_argument("--identity", action=argparse.BooleanOptionalAction, default=d.identity)
    p.add_argument("--device", default=d.device)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--start_seed", type=int, default=d.start_seed, help="first procedural seed (held-out: 10,000,000)")
    p.add_argument(
        "--sketch_attributes",
        action=argparse.BooleanOptionalAction,
        default=d.sketch_attributes,
        help="also score MVAE checkpoints with a sketch expert on sketch + full description",
    )
    p.add_argument("--description_weights", type=float, nargs="+", default=d.description_weights, metavar="W")
    p.add_argument(
        "--description_weight",
        type=float,
        default=d.description_weight,
        help="MVAE description weight for the main table and the criminals (default: the pipeline's; 1 = plain PoE)",
    )
    p.add_argument(
        "--inversion_steps",
        type=int,
        default=d.inversion_steps,
        help="pSp models: also optimise W+ against each of the first --inversion_faces held-out photos for this "
        "many Adam steps (the generator ceiling; 0 = skip)",
    )
    p.add_argument("--inversion_faces", type=int, default=d.inversion_faces)
    p.add_argument("--out_dir", default=d.out_dir)
    cfg = EvalConfig(**vars(p.parse_args(argv)))
    for spec in cfg.models + cfg.kinds:
        if "=" not in spec:
            p.error(f"expected NAME=VALUE, got {spec!r}")
    if cfg.data == "celeba" and not cfg.data_root:
        p.error("--data celeba needs --data_root")
    if any(not (w > 0 and math.isfinite(w)) for w in [*cfg.description_weights, cfg.description_weight or 1.0]):
        p.error("--description_weight and --description_weights take positive numbers")
    if cfg.inversion_steps < 0 or cfg.inversion_faces < 1:
        p.error("--inversion_steps takes 0 or more, --inversion_faces 1 or more")
    return cfg


def build_dataset(cfg: EvalConfig, with_sketch: bool) -> Dataset:
    """The test set: dict items with "image" (3, S, S), "labels" (40,) {0, 1}, and "sketch" when asked."""
    sketch = cfg.sketch if with_sketch else None
    if cfg.data == "procedural":
        from sketchface.data.procedural import ProceduralFaces

        return ProceduralFaces(
            size=cfg.size, length=cfg.num_samples, start_seed=cfg.start_seed, mode="celeba", sketch=sketch
        )
    from sketchface.data.celeba import CelebA

    return CelebA(cfg.data_root, split=cfg.split, size=cfg.size, sketch=sketch)


# ---------------------------------------------------------------------------------------------------------- evaluation


def _pil_sketch(t: torch.Tensor) -> Image.Image:
    return Image.fromarray((t.squeeze(0).clamp(0, 1) * 255).round().byte().numpy(), mode="L")


def _nanmean(values: Sequence[float]) -> float:
    v = [x for x in values if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else float("nan")


class Evaluator:
    """Scores pipelines on one test set with shared metric objects (loaded once)."""

    def __init__(self, cfg: EvalConfig, classifier: torch.nn.Module | None, device: torch.device):
        self.cfg = cfg
        self.device = device
        self.classifier = classifier
        self.perceptual = M.PerceptualDistance(cfg.perceptual, device=device)
        self.identity = M.IdentitySimilarity() if cfg.identity else None

    @torch.inference_mode()
    def _probs(self, images: torch.Tensor) -> torch.Tensor | None:
        if self.classifier is None:
            return None
        return torch.cat(
            [self.classifier.predict(images[i : i + 64].to(self.device)).cpu() for i in range(0, len(images), 64)]
        )

    def _generate(self, kind: str, pipe: Any, condition: Any, num_images: int, seed: int) -> torch.Tensor:
        images = pipe(condition, num_images=num_images, seed=seed).images
        if len(images) != num_images:
            raise RuntimeError(f"pipeline returned {len(images)} images for num_images={num_images}")
        return M.to_tensor(list(images), size=self.cfg.size)  # (K, 3, S, S)

    def evaluate(self, name: str, kind: str, pipe: Any, dataset: Dataset) -> dict:
        cfg = self.cfg
        n = min(cfg.num_samples, len(dataset))
        k = max(1, cfg.candidates)
        truths, firsts, all_fakes, requested, divs, conditions = [], [], [], [], [], []
        first_condition = None
        for i in tqdm(range(n), desc=f"{name} ({kind}→face)", leave=False):
            item = dataset[i]
            labels = torch.as_tensor(item["labels"]).float()
            want = (labels * 2 - 1).to(torch.int8)  # {0, 1} → ±1, every attribute specified
            if kind == "attribute":
                condition = Attributes.from_vector(want.numpy())
            else:
                if "sketch" not in item:
                    raise RuntimeError("the dataset gave no sketches; sketch→face evaluation needs them")
                condition = _pil_sketch(torch.as_tensor(item["sketch"]))
            first_condition = first_condition if first_condition is not None else condition
            conditions.append(condition)
            fakes = self._generate(kind, pipe, condition, k, seed=cfg.seed + i)
            truths.append(torch.as_tensor(item["image"]).float())
            firsts.append(fakes[0])
            all_fakes.append(fakes)
            requested.append(want[None].expand(k, -1))
            if k > 1:
                divs.append(self.perceptual.pairwise_mean(fakes))
        truth, first = torch.stack(truths), torch.stack(firsts)
        fakes, req = torch.cat(all_fakes), torch.cat(requested)

        timing = M.time_callable(
            lambda: pipe(first_condition, num_images=1, seed=cfg.seed),
            warmup=2,
            repeats=cfg.runtime_repeats,
            device=self.device,
        )
        out: dict[str, Any] = {
            "kind": kind,
            "num_samples": n,
            "candidates": k,
            "runtime_ms": timing,
            "mse": M.mse(first, truth),
            "psnr": M.psnr(first, truth),
            "ssim": M.ssim(first, truth),
            "perceptual": float(self.perceptual(first, truth).mean()),
            "diversity": _nanmean(divs),
        }
        if self.identity is not None:
            self.identity.reset_counts()
            out["identity"] = float(np.mean(self.identity(first, truth)))
            out["identity_aligned"] = f"{self.identity.aligned}/{self.identity.total}"
        probs = self._probs(fakes)
        if probs is not None:
            fid = M.attribute_fidelity(probs, req)
            # for sketch→face this is agreement of the output's attributes with the ground truth face
            out["attribute_fidelity"] = fid["mean_over_attributes"]
            out["attribute_fidelity_present"] = fid["mean_over_present"]
            out["attribute_fidelity_per_attribute"] = fid["per_attribute"]
            out["attribute_bias"] = attribute_bias(probs, req)
            out["attribute_majority_baseline"] = M.majority_baseline(req)
            if n >= 2:
                out["fcd"] = M.frechet_classifier_distance(truth, first, self.classifier)
        if M.inception_available() and n >= 2:
            out["fid_torchvision_inception"] = M.inception_fid(truth, first, device=self.device)
        if kind == "attribute" and probs is not None:
            out["criminals"] = self.criminal_fidelity(pipe)
            out["criminal_fidelity"] = out["criminals"]["mean_over_specified"]
            if pipe.capabilities.has_image_encoder:
                out["reconstruction"] = self.reconstruction_ceiling(pipe, truth, req[::k])
        if kind == "sketch" and probs is not None and cfg.inversion_steps > 0 and hasattr(pipe, "psp"):
            f = min(cfg.inversion_faces, n)
            out["inversion"] = self.inversion_ceiling(pipe, conditions[:f], truth[:f], req[::k][:f])
        return out

    def inversion_ceiling(self, pipe: Any, sketches: list, truth: torch.Tensor, requested: torch.Tensor) -> dict:
        """The generator's ceiling for a pSp model: W+ optimised directly against each held-out *photo*, from the
        encoder's latent of its sketch (Adam, lr 0.05, ``inversion_steps`` steps of L2 + the perceptual distance
        on [0, 1] images). No encoder can get past what the generator draws from the best latent it can find;
        attribute agreement and MSE of the inverted faces, beside the encoder's own on the same faces."""
        psp, size, steps = pipe.psp, self.cfg.size, self.cfg.inversion_steps
        target = truth.to(pipe.device)
        with torch.no_grad():  # a model with a spatial code keeps the sketch's code; W+ is what is optimised
            codes = [psp.encode_spatial(pipe.prepare_sketch(sk)) for sk in sketches]
            w0 = torch.cat([c[0] for c in codes])
            spatial = torch.cat([c[1] for c in codes]) if psp.spatial else None

        def render(w: torch.Tensor) -> torch.Tensor:
            img = (psp.decode(w, features=spatial).float().clamp(-1, 1) + 1) / 2
            return (
                F.interpolate(img, size=(size, size), mode="bilinear", antialias=True) if img.shape[-1] != size else img
            )

        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=0.05)
        with torch.enable_grad():
            for _ in range(steps):
                img = render(w)
                loss = F.mse_loss(img, target) + self.perceptual.distance(img, target).mean().to(img.device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        with torch.no_grad():
            start, end = render(w0).cpu(), render(w.detach()).cpu()
        agree = {
            name: M.attribute_fidelity(self._probs(img), requested)["mean_over_attributes"]
            for name, img in (("encoder", start), ("inverted", end))
        }
        return {
            "faces": len(sketches),
            "steps": steps,
            "attribute_agreement": agree["inverted"],
            "encoder_attribute_agreement": agree["encoder"],
            "mse": M.mse(end, truth),
            "encoder_mse": M.mse(start, truth),
        }

    def reconstruction_ceiling(self, pipe: Any, truth: torch.Tensor, requested: torch.Tensor) -> dict:
        """The decoder's ceiling: fidelity of the model's own rendering of each held-out face (the decoded mean of
        q(z | face), ``pipe.reconstruct``) to that face's labels, and its RMS to the face. The same decoder draws
        every output, so faces from a description get about as far, and further only where the description pushes
        the latent harder along its attributes than the face's own posterior does."""
        recon = M.to_tensor([pipe.reconstruct(t) for t in truth], size=self.cfg.size)
        fid = M.attribute_fidelity(self._probs(recon), requested)
        return {
            "attribute_fidelity": fid["mean_over_attributes"],
            "per_attribute": fid["per_attribute"],
            "rms": float((recon - truth).pow(2).mean().sqrt()),
        }

    def criminal_fidelity(self, pipe: Any) -> dict:
        """Fidelity on the partially specified criminal descriptions (unknown attributes excluded)."""
        k = max(2, self.cfg.candidates)
        images, requested = [], []
        for j, (_, _, attrs) in enumerate(criminals()):
            fakes = self._generate("attribute", pipe, attrs, k, seed=self.cfg.seed + j)
            images.append(fakes)
            requested.append(torch.as_tensor(attrs.to_vector())[None].expand(k, -1))
        fid = M.attribute_fidelity(self._probs(torch.cat(images)), torch.cat(requested))
        return {
            key: fid[key]
            for key in ("mean_over_specified", "mean_over_attributes", "mean_over_present", "per_attribute")
        }

    def sketch_attributes(self, pipe: Any, dataset: Dataset) -> dict:
        """An MVAE given each face's sketch and its full description, per description weight (the attribute
        expert's precision factor): fidelity to the description, RMS pixel distance of the first candidate to the
        sketched face (does the layout hold?), and the share of faces with glasses for the sketch plus
        "Eyeglasses" alone (a witness's drawing plus one remark). References: the sketch alone, the description
        alone."""
        cfg, n = self.cfg, min(self.cfg.num_samples, len(dataset))
        k = max(1, cfg.candidates)
        items = [dataset[i] for i in range(n)]
        if any("sketch" not in it for it in items):
            raise RuntimeError("the dataset gave no sketches; sketch + attributes evaluation needs them")
        truth = torch.stack([torch.as_tensor(it["image"]).float() for it in items])
        sketches = [_pil_sketch(torch.as_tensor(it["sketch"])) for it in items]
        wants = [(torch.as_tensor(it["labels"]).float() * 2 - 1).to(torch.int8) for it in items]
        glasses, gi = Attributes({"Eyeglasses": True}), INDEX["Eyeglasses"]

        def rms(first: list[torch.Tensor]) -> float:
            return float((torch.stack(first) - truth).pow(2).mean().sqrt())

        def faces(condition, sketch, weight, seed):
            kwargs = {"sketch": sketch} if sketch is not None else {}
            if weight is not None:
                kwargs["description_weight"] = weight
            return M.to_tensor(pipe(condition, num_images=k, seed=seed, **kwargs).images, size=cfg.size)

        out: dict[str, Any] = {"candidates": k, "weights": {}}
        sketch_only = [faces(None, sk, None, cfg.seed + i)[0] for i, sk in enumerate(sketches)]
        attrs_only = [
            faces(Attributes.from_vector(w.numpy()), None, None, cfg.seed + i)[0] for i, w in enumerate(wants)
        ]
        out["sketch_only_rms"], out["attributes_only_rms"] = rms(sketch_only), rms(attrs_only)
        for weight in cfg.description_weights:
            fakes, firsts, with_glasses = [], [], []
            for i, (sk, w) in enumerate(zip(sketches, wants, strict=True)):
                f = faces(Attributes.from_vector(w.numpy()), sk, weight, cfg.seed + i)
                fakes.append(f)
                firsts.append(f[0])
                with_glasses.append(faces(glasses, sk, weight, cfg.seed + i))
            requested = torch.cat([w[None].expand(k, -1) for w in wants])
            row: dict[str, Any] = {"rms_to_sketched_face": rms(firsts)}
            probs = self._probs(torch.cat(fakes))
            if probs is not None:
                fid = M.attribute_fidelity(probs, requested)
                row["attribute_fidelity"] = fid["mean_over_attributes"]
                row["attribute_fidelity_per_attribute"] = fid["per_attribute"]
                row["glasses_rate"] = float((self._probs(torch.cat(with_glasses))[:, gi] > 0.5).float().mean())
            out["weights"][str(weight)] = row
        return out

    def reference(self, dataset: Dataset) -> dict:
        """The classifier on the real faces: the ceiling any generator's fidelity can reach."""
        n = min(self.cfg.num_samples, len(dataset))
        items = [dataset[i] for i in range(n)]
        truth = torch.stack([torch.as_tensor(it["image"]).float() for it in items])
        labels = torch.stack([torch.as_tensor(it["labels"]).float() for it in items])
        probs = self._probs(truth)
        if probs is None:
            return {}
        fid = M.attribute_fidelity(probs, (labels * 2 - 1).to(torch.int8))
        return {
            "attribute_fidelity": fid["mean_over_attributes"],
            "attribute_fidelity_present": fid["mean_over_present"],
        }


# ----------------------------------------------------------------------------------------------------------- reports


def attribute_bias(probs: torch.Tensor, requested: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per attribute: share of outputs the classifier finds it in vs share of the requests (or ground truths)
    that have it. A large gap is a bias of the generator (e.g. every output looks Blurry), not a miss here and
    there; it says which attributes hold the fidelity or agreement down."""
    found = (probs > 0.5).float().mean(0)
    asked = (requested > 0).float().mean(0)
    return {n: {"output": float(f), "asked": float(a)} for n, f, a in zip(ATTRIBUTES, found, asked)}


def bias_line(name: str, bias: dict[str, dict[str, float]], top: int = 6) -> str:
    """Markdown: the attributes whose share in the outputs is furthest from the share asked for."""
    worst = sorted(bias.items(), key=lambda kv: -abs(kv[1]["output"] - kv[1]["asked"]))[:top]
    cells = ", ".join(f"{a} {v['output']:.2f} vs {v['asked']:.2f}" for a, v in worst)
    return f"- {name}: {cells}"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _fmt_sig(v: Any) -> str:
    return _fmt(v) if v is None or math.isnan(v) else f"{v:.3g}"


def markdown_table(results: dict) -> str:
    """Markdown tables shaped like paper 2's Table 1, one per task."""
    meta = results["meta"]
    pname = meta["perceptual"]
    lines = []
    for kind, title in (("attribute", "Attribute → face"), ("sketch", "Sketch → face")):
        rows = {n: r for n, r in results["models"].items() if r["kind"] == kind}
        if not rows:
            continue
        fid_col = "Attr. fidelity ↑" if kind == "attribute" else "Attr. agreement ↑"
        head = ["Model", "Runtime (ms)", "MSE ↓", f"{pname} ↓", "SFace cos ↑", fid_col, "Diversity ↑", "FCD ↓"]
        if kind == "attribute":
            head.insert(6, "Criminals fidelity ↑")
        condition = f"{meta['sketch']} sketches" if kind == "sketch" else "their attributes"
        lines += [
            f"### {title}: {meta['data']} {meta['split']}, {meta['num_samples']} faces from {condition}",
            "",
            "| " + " | ".join(head) + " |",
            "|---|" + "---:|" * (len(head) - 1),
        ]
        for n, r in rows.items():
            rt = r["runtime_ms"]
            cells = [
                n,
                f"{rt['p50_ms']:.1f} (p95 {rt['p95_ms']:.1f})",
                _fmt(r["mse"]),
                _fmt(r["perceptual"], 3),
                _fmt(r.get("identity"), 3),
                _fmt(r.get("attribute_fidelity"), 3),
                _fmt(r["diversity"], 3),
                _fmt_sig(r.get("fcd")),
            ]
            if kind == "attribute":
                cells.insert(6, _fmt(r.get("criminal_fidelity"), 3))
            lines.append("| " + " | ".join(cells) + " |")
        ref = results.get("reference", {})
        if kind == "attribute" and ref:
            ceiling = _fmt(ref.get("attribute_fidelity"), 3)
            lines.append(f"| real faces (classifier ceiling) | – | 0 | 0 | 1 | {ceiling} | – | – | 0 |")
        lines.append("")
        recon = {n: r["reconstruction"] for n, r in rows.items() if r.get("reconstruction")}
        if recon:
            lines += [
                "Decoder ceiling (each held-out face re-rendered by the model from its own image posterior, judged "
                "against its labels): "
                + "; ".join(f"{n} {_fmt(c['attribute_fidelity'], 3)} (RMS {c['rms']:.3f})" for n, c in recon.items())
                + ".",
                "",
            ]
        inverted = {n: r["inversion"] for n, r in rows.items() if r.get("inversion")}
        if inverted:
            lines += [
                "Generator ceiling (W+ optimised against each held-out photo from the encoder's latent of its sketch, "
                f"Adam steps of L2 + {pname}): "
                + "; ".join(
                    f"{n} agreement {_fmt(c['attribute_agreement'], 3)} against the encoder's "
                    f"{_fmt(c['encoder_attribute_agreement'], 3)} on the same {c['faces']} faces, MSE "
                    f"{_fmt(c['mse'])} against {_fmt(c['encoder_mse'])} ({c['steps']} steps)"
                    for n, c in inverted.items()
                )
                + ".",
                "",
            ]
        biased = [bias_line(n, r["attribute_bias"]) for n, r in rows.items() if r.get("attribute_bias")]
        if biased:
            asked = "asked for" if kind == "attribute" else "in the ground-truth faces"
            baseline = next(
                (r["attribute_majority_baseline"] for r in rows.values() if "attribute_majority_baseline" in r), None
            )
            lines += [
                f"Largest attribute biases (share of outputs the classifier finds it in vs share {asked}):",
                "",
                *biased,
                "",
            ]
            if baseline is not None:
                value = "the value asked for most often" if kind == "attribute" else "its more common value " + asked
                score = "fidelity" if kind == "attribute" else "agreement"
                lines += [
                    f"A constant answer (every attribute at {value}) would score {_fmt(baseline, 3)} {score}: most "
                    "attributes are rare, so scores start high, and a model has to beat this to add anything to "
                    "the prior.",
                    "",
                ]
    if results.get("sketch_attributes"):
        lines += sketch_attributes_table(results)
    aligned = {n: r.get("identity_aligned") for n, r in results["models"].items() if r.get("identity_aligned")}
    lines += [
        f"Runtime: median (p95) milliseconds per image after warm-up, batch 1, on {meta['device']}. "
        f"MSE on images in [0, 1] at {meta['size']}×{meta['size']} px (the first of {meta['candidates']} candidates "
        f"against the ground-truth face). {pname}: learned perceptual distance. SFace cos: cosine similarity of "
        "SFace embeddings (OpenCV; paper 2 used ArcFace), faces aligned by YuNet when detected, else centre-cropped "
        f"(aligned: {', '.join(f'{n} {a}' for n, a in aligned.items()) or 'n/a'}). "
        "Attr. fidelity: share of requested attributes the classifier finds, averaged over attributes; Criminals "
        "fidelity: the same over the specified attributes of paper 1's three criminal descriptions; Attr. agreement: "
        "classifier attributes of the output vs the ground truth labels. Diversity: mean pairwise "
        f"{pname} between candidates. FCD: Fréchet distance in the classifier's feature space "
        f"(classifier: {meta['classifier'] or 'none'}; comparable only under the same classifier). "
        "MVAE description weight: "
        + (f"{meta['description_weight']:g}" if meta.get("description_weight") else "the pipeline's default")
        + " (1 = the plain product of experts).",
        "",
    ]
    if not meta.get("fid"):
        lines += ["FID: skipped (torchvision's Inception-v3 weights are not in the torch hub cache).", ""]
    return "\n".join(lines)


def sketch_attributes_table(results: dict) -> list[str]:
    """Markdown lines: sketch + description → face, one row per model and description weight."""
    meta = results["meta"]
    lines = [
        f"### Sketch + attributes → face: {meta['data']} {meta['split']}, {meta['num_samples']} faces from "
        f"{meta['sketch']} sketches and their full descriptions",
        "",
        '| Model | Description weight | Attr. fidelity ↑ | Sketch + "Eyeglasses": faces with glasses ↑ | '
        "RMS to the sketched face ↓ |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results["sketch_attributes"].items():
        for weight, row in r["weights"].items():
            lines.append(
                f"| {name} | {float(weight):g} | {_fmt(row.get('attribute_fidelity'), 3)} | "
                f"{_fmt(row.get('glasses_rate'), 3)} | {_fmt(row['rms_to_sketched_face'], 3)} |"
            )
        lines.append(f"| {name}: sketch alone | – | – | – | {_fmt(r['sketch_only_rms'], 3)} |")
        lines.append(f"| {name}: description alone | – | – | – | {_fmt(r['attributes_only_rms'], 3)} |")
    lines += [
        "",
        "Description weight: the attribute expert's precision factor in the product of experts (1 = the plain PoE). "
        f"Fidelity over {max(1, meta['candidates'])} candidates per face; RMS: the first candidate against the face "
        "the sketch was drawn from, in [0, 1] pixels (the sketch alone and the description alone for comparison).",
        "",
    ]
    return lines


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return [*lines, line] if line else lines


def criminal_grid(
    rows: dict[str, list[list[Image.Image]]], labels: list[tuple[str, str]], cell: int = 96
) -> Image.Image:
    """rows: model → [criminal][candidate] images; labels: (name, description) per criminal."""
    n_crim = len(labels)
    n_cand = max(len(c) for r in rows.values() for c in r)
    label_w, head_h, gap = 110, 58, 6
    width = label_w + n_crim * (n_cand * cell + gap)
    height = head_h + len(rows) * cell
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    font, bold = _font(11), _font(13)
    for j, (name, text) in enumerate(labels):
        x0 = label_w + j * (n_cand * cell + gap)
        draw.text((x0 + 4, 2), name, fill="black", font=bold)
        for li, line in enumerate(_wrap(draw, text, font, n_cand * cell - 8)[:3]):
            draw.text((x0 + 4, 18 + 13 * li), line, fill=(60, 60, 60), font=font)
    for i, (model, crim_images) in enumerate(rows.items()):
        y0 = head_h + i * cell
        for li, line in enumerate(_wrap(draw, model, bold, label_w - 8)[:4]):
            draw.text((4, y0 + cell // 2 - 8 + 15 * li), line, fill="black", font=bold)
        for j, cands in enumerate(crim_images):
            for c, im in enumerate(cands):
                grid.paste(
                    im.convert("RGB").resize((cell, cell), Image.Resampling.BICUBIC),
                    (label_w + j * (n_cand * cell + gap) + c * cell, y0),
                )
    return grid


def _truth_and_sketch(item: dict) -> tuple[Image.Image, Image.Image]:
    truth = Image.fromarray((torch.as_tensor(item["image"]).permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy())
    return truth, _pil_sketch(torch.as_tensor(item["sketch"]))


def sketch_examples_grid(pipes: dict[str, Any], dataset: Dataset, cfg: EvalConfig, faces: int = 4) -> Image.Image:
    """Sketch → face examples: a row per (model, held-out face): the face and its sketch, then ``grid_candidates``
    candidates (for pSp: the reconstruction first, then style-mixed ones)."""
    rows = {}
    for name, pipe in pipes.items():
        for i in range(min(faces, len(dataset))):
            truth, sketch = _truth_and_sketch(dataset[i])
            rows[f"{name}: face {i + 1}"] = [
                [truth, sketch, *pipe(sketch, num_images=cfg.grid_candidates, seed=cfg.seed + i).images]
            ]
    text = f"the held-out face, its {cfg.sketch} sketch, then {cfg.grid_candidates} candidates from the sketch alone"
    return criminal_grid(rows, [("Sketch to face", text)])


def sketch_attributes_grid(pipe: Any, dataset: Dataset, cfg: EvalConfig, faces: int = 3) -> Image.Image:
    """Rows: the first held-out faces; columns: the face and its sketch, then the sketch + "Eyeglasses" at each
    description weight (``grid_candidates`` candidates each)."""
    rows = {}
    for i in range(min(faces, len(dataset))):
        truth, sketch = _truth_and_sketch(dataset[i])
        groups = [[truth, sketch]]
        for w in cfg.description_weights:
            kw = {"sketch": sketch, "description_weight": w}
            groups.append(pipe({"Eyeglasses": True}, num_images=cfg.grid_candidates, seed=cfg.seed + i, **kw).images)
        rows[f"face {i + 1}"] = groups
    labels = [("Face, sketch", "the sketched face and its sketch")]
    labels += [(f"weight {w:g}", 'sketch + "Eyeglasses"') for w in cfg.description_weights]
    return criminal_grid(rows, labels)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_classifier(path: str | None, device: torch.device) -> torch.nn.Module | None:
    if not path:
        return None
    if not Path(path).is_dir():
        raise CheckpointError(
            f"classifier checkpoint not found: {path} (train it with train/classifier.py, or pass --classifier '')"
        )
    from sketchface.models.classifier import AttributeClassifier

    try:
        return AttributeClassifier.from_pretrained(path).eval().to(device)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"could not load the attribute classifier from {path}: {e}") from e


def main(cfg: EvalConfig) -> dict:
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    overrides = dict(spec.split("=", 1) for spec in cfg.kinds)
    pipes: dict[str, tuple[str, Any]] = {}
    for spec in cfg.models:
        name, path = spec.split("=", 1)
        kind, pipe = load_pipeline(path, overrides.get(name), device)
        if cfg.description_weight is not None and kind == "attribute" and pipe.capabilities.weighs_description:
            pipe = WeightedDescription(pipe, cfg.description_weight)
        pipes[name] = kind, pipe
    classifier = load_classifier(cfg.classifier, device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    sketchable = {n: p for n, (k, p) in pipes.items() if k == "attribute" and p.capabilities.takes_sketch}
    if cfg.sketch_attributes and not sketchable:
        raise SystemExit("--sketch_attributes: none of the --models is an MVAE with a sketch expert")
    needs_sketch = any(kind == "sketch" for kind, _ in pipes.values()) or cfg.sketch_attributes
    dataset = build_dataset(cfg, with_sketch=needs_sketch)
    ev = Evaluator(cfg, classifier, device)
    hardware = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    )
    results: dict[str, Any] = {
        "meta": {
            "data": cfg.data,
            "split": (f"seeds from {cfg.start_seed:,}" if cfg.start_seed != HELD_OUT_SEED else "held-out seeds")
            if cfg.data == "procedural"
            else cfg.split,
            "num_samples": min(cfg.num_samples, len(dataset)),
            "size": cfg.size,
            "sketch": cfg.sketch,
            "candidates": cfg.candidates,
            "description_weight": cfg.description_weight,
            "perceptual": ev.perceptual.name,
            "identity": M.IdentitySimilarity.name if cfg.identity else None,
            "classifier": cfg.classifier,
            "fid": M.inception_available(),
            "device": f"{device.type} ({hardware}, {torch.get_num_threads()} threads)",
            "config": asdict(cfg),
        },
        "models": {},
        "reference": ev.reference(dataset),
    }
    for name, (kind, pipe) in tqdm(pipes.items(), desc="models"):
        results["models"][name] = ev.evaluate(name, kind, pipe, dataset)
    sketch_models = {n: p for n, (k, p) in pipes.items() if k == "sketch"}
    if sketch_models:
        grid = sketch_examples_grid(sketch_models, dataset, cfg)
        atomic_write(out_dir / "sketch_examples.png", lambda tmp: grid.save(tmp, format="PNG"))
        results["sketch_examples_grid"] = str(out_dir / "sketch_examples.png")
    if cfg.sketch_attributes:
        results["sketch_attributes"] = {n: ev.sketch_attributes(p, dataset) for n, p in sketchable.items()}
        name, pipe = next(iter(sketchable.items()))
        grid = sketch_attributes_grid(pipe, dataset, cfg)
        atomic_write(out_dir / "sketch_attributes.png", lambda tmp: grid.save(tmp, format="PNG"))
        results["sketch_attributes_grid"] = {"model": name, "path": str(out_dir / "sketch_attributes.png")}

    attribute_models = {n: p for n, (k, p) in pipes.items() if k == "attribute"}
    if attribute_models:
        crims = criminals()
        rows = {
            n: [
                pipe(attrs, num_images=cfg.grid_candidates, seed=cfg.seed + j).images
                for j, (_, _, attrs) in enumerate(crims)
            ]
            for n, pipe in attribute_models.items()
        }
        grid = criminal_grid(rows, [(name, text) for name, text, _ in crims])
        atomic_write(out_dir / "criminals.png", lambda tmp: grid.save(tmp, format="PNG"))
        results["criminals_grid"] = str(out_dir / "criminals.png")

    table = markdown_table(results)
    atomic_write(out_dir / "results.json", json.dumps(results, indent=2, default=float))
    atomic_write(out_dir / "results.md", table)
    print(table)
    return results


if __name__ == "__main__":
    main(parse_args())
