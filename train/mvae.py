"""Train the MVAE (product of experts over image, attributes and sketch) or, with --model cvae, paper 1's
cross-modal VAE. ``train/cvae.py`` is this script with ``--model cvae`` defaults.

Procedural faces (default; offline, exact labels). Faces are rendered once into an in-memory pool by DataLoader
workers, then batches are drawn from the pool on the training device::

    python train/mvae.py --output_dir checkpoints/mvae-procedural-64 --num_workers 16

Speed (issue 26): ``--precision auto`` (the default) trains in bfloat16 autocast where the hardware runs it natively
(CPUs with AMX / AVX-512 BF16, CUDA with bf16) and ``--channels_last`` (default) puts the convolutions in oneDNN's /
cuDNN's faster layout; ``--precision fp32 --no-channels_last`` is the plain float32 run. The figures that chose these
defaults are in docs/training.md (``python -m evaluation.benchmark --train_models mvae mvae-decode-all``).

CelebA in the official layout (e.g. the 899-image CelebA-mini; its train split), or CelebA-HQ in the
CelebAMask-HQ layout (``--data celeba-hq``; both have the 40 attribute labels; ``--data KIND:PATH`` also works)::

    python train/mvae.py --data celeba --data_root ../shared/data/celeba-mini \\
        --output_dir checkpoints/mvae-celeba-mini-64
    python train/mvae.py --data celeba-hq:../data/CelebAMask-HQ --output_dir checkpoints/mvae-celeba-hq-64

Real data whose train split has more than ``--pool_size`` images (default 50,000) is streamed by DataLoader workers;
smaller sets (and procedural faces) are read once into memory. ``--cache`` / ``--no-cache`` force either. A folder
of unlabelled images (``--data folder``) is refused: the MVAE's image subsets reconstruct all 40 labels.

KL annealing: the KL weight rises linearly over the first ``--anneal_epochs`` epochs (reference: 20), an
epoch being one pass over the pool, but over at most half of the run so short runs end at weight 1.
With ``--classifier PATH`` (an AttributeClassifier) the run ends with attribute fidelity, diversity and
sketch figures on held-out data, written to eval.json and the model card README.md.

Sharper faces (beyond the paper): ``--adversarial_weight W`` adds a discriminator (a small PatchGAN critic,
``sketchface.models.layers.DecoderPatchDiscriminator``) and a non-saturating GAN loss on the decoded faces
of the ELBO subsets that reconstruct the image (``--adversarial_on all``: attribute-only samples too), whose
weight is set each step from the ratio
of the reconstruction and adversarial gradients at the decoder's last layer (as VQGAN does), times W. A VAE
decodes the mean of what a latent leaves open, which at 64 px looks out of focus; the GAN term asks for one sharp
face instead. It is meant as a fine-tuning stage (``--init_from`` an existing checkpoint, KL already annealed)::

    python train/mvae.py --init_from checkpoints/mvae-procedural-64 --adversarial_weight 0.5 --lr 2e-4 \
        --sample_subsets --steps 3000 --output_dir runs/mvae-gan --classifier checkpoints/classifier-procedural-64

A new decoder alone (``--decoder_only``, optionally wider: ``--decoder_widths``, ``--decoder_full_res``) on an MVAE's
frozen encoders, with ``MVAE.decoder_loss``; ``--decoder_edits K`` adds the witness's case to its training: a face's
sketch plus a description of the same face with up to K attributes switched, redrawn as the switched face
(``ProceduralFaces(edits=K)``). Commands: docs/training.md.

Runs on ``sketchface.trainer.Trainer``: several processes (``accelerate launch train/mvae.py …``, ``torchrun``) train
data-parallel, each rank on its own rows of every step; ``--resume`` continues a killed run exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sketchface.attributes import ATTRIBUTES
from sketchface.losses import annealing_factor, random_known_mask
from sketchface.models.layers import DecoderPatchDiscriminator
from sketchface.models.mvae import MVAE, CrossModalVAE, CrossModalVAEConfig, MVAEConfig
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.trainer import Trainer, TrainingArguments, option, parse_training_args, warmup_cosine
from sketchface.training import (
    EDIT_KEYS,
    POOL_KEYS,
    REAL_DATA_NAMES,
    atomic_write,
    cli_command,
    config_dict,
    data_licence,
    face_dataset,
    keep_in_memory,
    pool_to_batch,
    render_pool,
    resolve_face_data,
)

#: what --data may name: data sets with the 40 attribute labels (an image folder has none)
LABELLED_DATA = ("procedural", "celeba", "celeba-hq")
FOLDER_REFUSAL = (
    "an image folder has no attribute labels, and the MVAE / CVAE learn from them: every ELBO subset with the image "
    "reconstructs all 40 labels (MVAE.loss), so a folder's faces cannot be marked 'all attributes unknown'. Use "
    "--data celeba-hq or --data celeba (photos with the 40 labels) or procedural faces; train/stylegan.py "
    "trains on an unlabelled folder"
)
TRAIN_SEED = 0  # procedural training seeds start here
HELD_OUT_SEED = 10_000_000  # procedural evaluation seeds start here (never seen in training)
RARE = ("Eyeglasses", "Mustache", "Wearing_Hat", "Gray_Hair", "Bald", "Pale_Skin")


@dataclass
class MVAEArguments:
    """Data, model, loss and fine-tuning settings of this script (the shared flags are in TrainingArguments)."""

    model: str = option("mvae", choices=["mvae", "cvae"])
    data: str = option("procedural", "procedural | celeba | celeba-hq (with --data_root) | KIND:PATH")
    data_root: str | None = option(
        None, "the data set's folder for celeba (official layout) / celeba-hq (CelebAMask-HQ)"
    )
    sampler: str = option(
        "celeba", "procedural attribute sampler: CelebA marginals or balanced", choices=["celeba", "balanced"]
    )
    train_samples: int = option(20_000, "procedural faces in the training pool (seeds 0 … N-1)")
    eval_samples: int = option(512, "procedural held-out faces")
    # render the pool once into memory (uint8) and draw batches from it; False: stream from DataLoader workers;
    # None (default): in memory, but real data whose train split has more than pool_size images streams
    cache: bool | None = option(
        None, "in memory (--cache) or streamed (--no-cache); default: streamed for real data over --pool_size images"
    )
    pool_size: int = option(50_000, "real data larger than this streams by default")
    sketch: bool = option(True, "train the sketch expert (MVAE only)")
    sketch_style: str = option("mixed", choices=["computed", "hand", "mixed"])
    # model
    image_size: int = option(64)
    latent_dim: int = option(100)
    widths: list[int] = option(default_factory=lambda: [32, 64, 128, 128], nargs=4, metavar="W")
    fc_dim: int = option(256)
    attr_hidden: int = option(512)
    dropout: float = option(0.1)
    decoder_widths: list[int] | None = option(
        None, "image decoder, coarse to fine (None: the mirror of --widths)", nargs=4, metavar="W"
    )
    decoder_full_res: int = option(
        0, "> 0: a full-resolution stage of that many channels and a 3×3 conv to the logits", metavar="CHANNELS"
    )
    image_likelihood: str | None = option(
        None, "None: bce (MVAE, as the reference), mse (cvae, as paper 1)", choices=["bce", "mse"]
    )
    attribute_weight: float = option(10.0, "lambda_attrs")
    align_weight: float = option(1.0)
    cross_weight: float = option(0.0)
    # optimisation (steps, batch, lr, warm-up, precision ... are the shared flags)
    epochs: float | None = option(None, "if given, overrides --max_steps (epochs over the pool)")
    anneal_epochs: float = option(20.0, "KL annealing epochs (at most half of the run)")
    attr_dropout: float = option(0.5)
    sample_subsets: bool = option(False, "one ELBO subset per sample instead of all (much cheaper; for CPU runs)")
    rebalance: bool = option(False, "up-weight positives of rare attributes in the attribute likelihood")
    save_dtype: str = option(
        "float16", "weights in model.safetensors (float16 halves the size)", choices=["float16", "float32"]
    )
    classifier: str | None = option(None, "AttributeClassifier checkpoint for the evaluation")
    # fine-tuning and the adversarial term (see the module docstring)
    init_from: str | None = option(
        None, "fine-tune this checkpoint: its weights and architecture (the model flags are ignored)", metavar="PATH"
    )
    decoder_only: bool = option(
        False, "train the image decoder alone on --init_from's frozen encoders (MVAE.decoder_loss); --decoder_widths "
        "/ --decoder_full_res then give it a new, freshly initialised architecture",
    )  # fmt: skip
    decoder_edits: int = option(
        0, "with --decoder_only: also redraw faces with up to K attributes switched from their sketch plus a "
        "description of the switched face (procedural faces with sketches only)", metavar="K",
    )  # fmt: skip
    description_weight: float = option(
        DESCRIPTION_WEIGHT, "how much a description counts next to a sketch in --decoder_only training and in the "
        "evaluation's weighted rows (the pipeline's default)", metavar="W",
    )  # fmt: skip
    adversarial_weight: float = option(0.0, "0 = the MVAE objective alone")
    d_lr: float = option(2e-4, "the critic's learning rate")
    d_widths: list[int] = option(help="PatchGAN critic's stride-2 convs", default_factory=lambda: [32, 64, 128])
    # off by default: telling sharp faces from blurred ones needs the large input gradients R1 penalises, and at
    # 0.01 the critic's loss stayed at 2 ln 2 (docs/history.md)
    r1_gamma: float = option(0.0, "lazy R1 penalty on real faces (every 16 steps)")
    adversarial_start: int = option(200, "steps that train the discriminator alone before its loss reaches the VAE")
    adversarial_on: str = option(
        "reconstructions", "decoded faces the critic judges: those with an image target, or all",
        choices=["reconstructions", "all"],
    )  # fmt: skip

    def model_config(self) -> MVAEConfig:
        cls = CrossModalVAEConfig if self.model == "cvae" else MVAEConfig
        kw = dict(
            image_size=self.image_size,
            latent_dim=self.latent_dim,
            widths=list(self.widths),
            fc_dim=self.fc_dim,
            attr_hidden=self.attr_hidden,
            dropout=self.dropout,
            attribute_weight=self.attribute_weight,
            decoder_widths=list(self.decoder_widths) if self.decoder_widths else None,
            decoder_full_res=self.decoder_full_res,
        )
        if self.image_likelihood:
            kw["image_likelihood"] = self.image_likelihood
        if self.model == "mvae":
            kw.update(use_sketch=self.sketch, align_weight=self.align_weight, cross_weight=self.cross_weight)
        return cls(**kw)


#: this script's defaults for the shared flags (TrainingArguments); its model folder is --output_dir itself (unless
#: --save_dir), beside the training state
TRAINING_DEFAULTS = {
    "output_dir": "checkpoints/mvae-procedural-64",
    "max_steps": 1_500,
    "batch_size": 64,
    "lr": 1e-3,
    "warmup_steps": 100,
    "save_every": 500,
    "num_workers": 2,
}
#: shared flags this script has no use for, and why (refused on the command line)
UNUSED_FLAGS = {
    "lr_schedule": "its learning rate warms up over --warmup_steps, then follows a cosine down to 5 %",
    "eval_every": "it evaluates once, at the end of the run",
}


def parse_args(
    argv: list[str] | None = None, model: str = "mvae", description: str | None = None
) -> tuple[TrainingArguments, MVAEArguments]:
    """The command line (``model``: the default of ``--model``; ``description``: ``--help``'s text, by default
    this module's docstring)."""
    defaults = {**TRAINING_DEFAULTS, "output_dir": f"checkpoints/{model}-procedural-64", "model": model}
    return parse_training_args(
        MVAEArguments,
        argv,
        description=description or __doc__,
        defaults=defaults,
        unused=UNUSED_FLAGS,
        check=check_args,
    )


def check_args(train_args: TrainingArguments, cfg: MVAEArguments) -> None:
    """``--data KIND:PATH`` as ``--data KIND --data_root PATH``; the CVAE has no sketch expert; a ``ValueError``
    (a usage error on the command line) for flags that do not go together."""
    cfg.data, cfg.data_root = resolve_face_data(cfg.data, cfg.data_root, LABELLED_DATA, {"folder": FOLDER_REFUSAL})
    if cfg.model == "cvae":
        cfg.sketch = False
    if not (math.isfinite(cfg.description_weight) and cfg.description_weight > 0):
        raise ValueError("--description_weight takes a positive number")
    if cfg.decoder_edits:
        if not cfg.decoder_only:
            raise ValueError("--decoder_edits trains the decoder alone: add --decoder_only")
        if cfg.data != "procedural" or not cfg.sketch:
            raise ValueError(
                "--decoder_edits needs procedural faces (re-rendered with attributes switched) and --sketch"
            )
        if not 0 < cfg.decoder_edits <= len(ATTRIBUTES):
            raise ValueError(f"--decoder_edits takes 1 to {len(ATTRIBUTES)} switched attributes")


# ---------------------------------------------------------------------------------------------------------------- data


def build_datasets(cfg: MVAEArguments) -> tuple[Dataset, Dataset]:
    """(training set, held-out set); items follow the dataset contract ("image", "labels", optional "sketch")."""
    sketch = cfg.sketch_style if cfg.sketch else None
    if cfg.data == "procedural":
        from sketchface.data.procedural import ProceduralFaces

        s = cfg.image_size
        train = ProceduralFaces(
            size=s,
            length=cfg.train_samples,
            start_seed=TRAIN_SEED,
            mode=cfg.sampler,
            sketch=sketch,
            edits=cfg.decoder_edits,  # parse_args and build_model make sure there is a sketch
        )
        held = ProceduralFaces(size=s, length=cfg.eval_samples, start_seed=HELD_OUT_SEED, mode="celeba", sketch=sketch)
        return train, held
    sketch = "computed" if sketch else None  # real photos: paper 2's computed sketch only (no strokes)
    train, held = (
        face_dataset(cfg.data, cfg.data_root, size=cfg.image_size, split=split, sketch=sketch)
        for split in ("train", "valid")
    )
    return train, held


def uses_pool(cfg: MVAEArguments, train_set: Dataset) -> bool:
    """Whether the training set is read into memory (``--cache``) or streamed (``--no-cache``); by default real
    data whose train split has more than ``--pool_size`` images streams, anything smaller (and procedural faces,
    rendered once because drawing them is the slow part) is held in memory."""
    return keep_in_memory(cfg.data, len(train_set), cfg.pool_size, cfg.cache)


def positive_weight(labels: torch.Tensor, clip: float = 10.0) -> torch.Tensor:
    """negatives / positives per attribute, clipped to [1, clip]: (N, 40) → (40,)."""
    pos = labels.float().mean(0).clamp(1.0 / max(len(labels), 1), 1.0)
    return ((1 - pos) / pos).clamp(1.0, clip)


# ---------------------------------------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(
    model,
    pool: dict[str, torch.Tensor],
    classifier=None,
    seed: int = 0,
    num_candidates: int = 8,
    description_weight: float = DESCRIPTION_WEIGHT,
) -> dict:
    """Held-out figures. Without a classifier: reconstruction errors only; with one: fidelity and diversity.

    * ``fidelity_full``: faces sampled from q(z | all 40 attributes) (temperature 1), classifier vs request.
    * ``fidelity_partial`` / ``diversity_partial``: 8 known attributes per face, 8 candidates each;
      diversity = mean pairwise RMS pixel distance between candidates (``diversity_full`` for comparison).
    * ``sketch_attributes_fidelity`` / ``sketch_layout_rmse``: PoE(sketch, attributes) → face; RMS distance to
      the face the sketch came from, beside the RMS distance between unrelated held-out faces.
    """
    from sketchface.metrics import attribute_fidelity

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device="cpu").manual_seed(seed)
    n = len(pool["labels"])
    batch = pool_to_batch(pool, torch.arange(n))
    x, y = batch["image"].to(device), batch["labels"].to(device)
    out: dict = {"num_faces": n}

    def sample(mu, logvar):
        eps = torch.randn(mu.shape, generator=g).to(device)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(z):
        return torch.cat([model.decode(c) for c in z.split(256)])

    mu, logvar = model.infer(values=y, known=torch.ones_like(y))
    gen_full = decode(sample(mu, logvar))
    out["attr_to_image_rmse"] = float((gen_full - x).pow(2).mean().sqrt())
    if isinstance(model, MVAE):
        mu_x, _ = model.infer(image=x)
        out["reconstruction_rmse"] = float((decode(mu_x) - x).pow(2).mean().sqrt())
    baseline = float((x - x.roll(1, 0)).pow(2).mean().sqrt())
    out["unrelated_faces_rmse"] = baseline

    # diversity: k candidates for the first m faces, full vs partial descriptions
    m = min(n, 64)
    known_partial = torch.zeros(m, y.shape[1], device=device)
    for i in range(m):
        known_partial[i, torch.randperm(y.shape[1], generator=g)[:8].to(device)] = 1.0

    def candidates(known, weights=None):
        mu_, lv_ = model.infer(
            values=y[:m].repeat_interleave(num_candidates, 0),
            known=known.repeat_interleave(num_candidates, 0),
            **({"weights": weights} if weights else {}),
        )
        return decode(sample(mu_, lv_)).view(m, num_candidates, *x.shape[1:])

    def pairwise(c):  # (m, k, C, H, W) → mean RMS distance over pairs
        f = c.flatten(2)
        d = torch.cdist(f, f) / math.sqrt(f.shape[-1])
        k = f.shape[1]
        return float(d.sum() / (m * k * (k - 1)))

    cand_full, cand_part = candidates(torch.ones(m, y.shape[1], device=device)), candidates(known_partial)
    out["diversity_full"] = pairwise(cand_full)
    out["diversity_partial"] = pairwise(cand_part)

    weights = {"attributes": description_weight}  # as AttributeToFace weighs a description
    sketch_gen = None
    if isinstance(model, MVAE) and model.sketch_encoder is not None and "sketch" in batch:
        s = batch["sketch"].to(device)
        mu_s, lv_s = model.infer(values=y, known=torch.ones_like(y), sketch=s)
        sketch_gen = decode(sample(mu_s, lv_s))
        out["sketch_attributes_layout_rmse"] = float((sketch_gen - x).pow(2).mean().sqrt())
        mu_o, lv_o = model.infer(sketch=s)
        out["sketch_only_layout_rmse"] = float((decode(mu_o) - x).pow(2).mean().sqrt())

    if classifier is not None:
        classifier = classifier.to(device).eval()

        def probs(images):
            return torch.cat([classifier.predict(c.float()) for c in images.split(256)]).cpu()

        requested = (y * 2 - 1).cpu()
        fid = attribute_fidelity(probs(gen_full), requested)
        out["fidelity_full"] = fid["mean_over_attributes"]
        out["fidelity_full_specified"] = fid["mean_over_specified"]
        out["fidelity_per_attribute"] = fid["per_attribute"]
        out["fidelity_rare"] = {a: fid["per_attribute"][a] for a in RARE}
        req_part = (requested[:m] * known_partial.cpu()).repeat_interleave(num_candidates, 0)
        out["fidelity_partial"] = attribute_fidelity(probs(cand_part.flatten(0, 1)), req_part)["mean_over_specified"]
        if isinstance(model, MVAE):
            mu_w, lv_w = model.infer(values=y, known=torch.ones_like(y), weights=weights)
            out["fidelity_full_weighted"] = attribute_fidelity(probs(decode(sample(mu_w, lv_w))), requested)[
                "mean_over_attributes"
            ]
            part_w = candidates(known_partial, weights)
            out["fidelity_partial_weighted"] = attribute_fidelity(probs(part_w.flatten(0, 1)), req_part)[
                "mean_over_specified"
            ]
            out["diversity_partial_weighted"] = pairwise(part_w)
        # balanced requests (each attribute often present): the honest test for rare attributes
        try:
            from sketchface.data.procedural import AttributeSampler

            rng = np.random.default_rng(HELD_OUT_SEED)
            req_bal = torch.from_numpy(AttributeSampler("balanced").sample(rng, n).astype(np.float32))
            mu_b, lv_b = model.infer(values=(req_bal > 0).float().to(device), known=torch.ones_like(req_bal).to(device))
            fb = attribute_fidelity(probs(decode(sample(mu_b, lv_b))), req_bal)
            out["fidelity_balanced"] = fb["mean_over_attributes"]
            out["fidelity_balanced_rare"] = {a: fb["per_attribute"][a] for a in RARE}
            out["fidelity_balanced_per_attribute"] = fb["per_attribute"]
        except ImportError:
            pass
        real = attribute_fidelity(probs(x), requested)
        out["classifier_on_real_faces"] = real["mean_over_attributes"]
        if sketch_gen is not None:
            # the witness's sketch plus "he wore glasses": share of faces showing glasses, vs the sketch alone
            gi = ATTRIBUTES.index("Eyeglasses")
            only = torch.zeros_like(y)
            only[:, gi] = 1.0
            mu_g, lv_g = model.infer(values=only, known=only, sketch=s)
            out["sketch_plus_glasses_rate"] = float((probs(decode(sample(mu_g, lv_g)))[:, gi] > 0.5).float().mean())
            out["sketch_only_glasses_rate"] = float((probs(decode(sample(mu_o, lv_o)))[:, gi] > 0.5).float().mean())
            sf = attribute_fidelity(probs(sketch_gen), requested)
            out["sketch_attributes_fidelity"] = sf["mean_over_attributes"]
            out["sketch_attributes_fidelity_specified"] = sf["mean_over_specified"]
            # as AttributeToFace combines them: the description's expert weighted against the sketch's
            mu_w, lv_w = model.infer(values=y, known=torch.ones_like(y), sketch=s, weights=weights)
            weighted = attribute_fidelity(probs(decode(sample(mu_w, lv_w))), requested)
            out["sketch_attributes_fidelity_weighted"] = weighted["mean_over_attributes"]
            mu_g, lv_g = model.infer(values=only, known=only, sketch=s, weights=weights)
            out["sketch_plus_glasses_rate_weighted"] = float(
                (probs(decode(sample(mu_g, lv_g)))[:, gi] > 0.5).float().mean()
            )
    model.train(was_training)
    return out


def write_model_card(train_args: TrainingArguments, cfg: MVAEArguments, report: dict, path: Path) -> None:
    """README.md beside config.json / model.safetensors: data, steps, time, figures."""
    atomic_write(path, model_card(train_args, cfg, report))


def model_card(train_args: TrainingArguments, cfg: MVAEArguments, report: dict) -> str:
    """The model card's text: data, steps, time, figures."""
    ev = report.get("eval", {})
    kind = "MVAE (product of experts: image, attributes" + (", sketch)" if cfg.sketch else ")")
    if cfg.model == "cvae":
        kind = "cross-modal VAE (paper 1, Approach 1: attributes → image)"
    if cfg.data == "procedural":
        data = (
            f"{cfg.train_samples} procedural faces (`sketchface.data.procedural`, seeds {TRAIN_SEED}…"
            f"{cfg.train_samples - 1}, `{cfg.sampler}` attribute sampling"
            + (f", `{cfg.sketch_style}` sketches)" if cfg.sketch else ")")
        )
        held = f"{ev.get('num_faces', cfg.eval_samples)} procedural faces from seed {HELD_OUT_SEED} (CelebA marginals)"
    else:
        data = (
            f"{REAL_DATA_NAMES[cfg.data]} at `{cfg.data_root}`, train split ({report.get('train_size', '?')} images"
            + (", streamed by DataLoader workers)" if report.get("data_mode") == "stream" else ")")
        )
        held = f"the valid split ({ev.get('num_faces', '?')} images)"
        if report.get("train_size", 10**9) < 5000:
            data += ": a very small set, so expect blurry, average-looking faces and weak attribute control"

    def f(key, fmt="{:.3f}"):
        v = ev.get(key)
        return "not measured" if v is None else fmt.format(v)

    licence = data_licence(cfg.data)
    lines = [
        "---",
        "library_name: sketchface",
        *(["license: other", "license_name: celeba-research-only"] if licence else ["license: mit"]),
        "tags: [sketchface, vae, celeba-attributes]",
        "---",
        "",
        f"# SketchFace {kind}, {cfg.image_size} px",
        "",
        *([f"**Licence of the training data.** {licence}", ""] if licence else []),
        f"- Model: `sketchface.models.mvae.{'CrossModalVAE' if cfg.model == 'cvae' else 'MVAE'}`, "
        f"{report['num_parameters'] / 1e6:.2f} M parameters, latent {cfg.latent_dim}, "
        f"weights stored as {cfg.save_dtype}.",
        f"- Trained on: {data}.",
        f"- Steps: {report['steps']} × batch {train_args.batch_size} ({report['epochs']:.1f} epochs), "
        f"Adam lr {train_args.lr}, "
        f"KL annealing over {report['anneal_steps']} steps, attribute dropout {cfg.attr_dropout}, "
        f"lambda_attrs {cfg.attribute_weight}, rebalance {cfg.rebalance}; "
        f"{report['train_minutes']:.1f} min on {report['device']}, "
        f"{report.get('samples_per_s', float('nan')):.0f} samples/s in {report.get('precision', 'fp32')}"
        f"{' with channels_last' if report.get('channels_last') else ''}.",
        *([f"- Fine-tuned from `{cfg.init_from}` (its own card gives its first training)."] if cfg.init_from else []),
        *(
            [
                "- Decoder retrained alone (`--decoder_only`): the encoders and the attribute decoder are those of "
                "the checkpoint above, frozen; the image decoder redraws each training face from a sample of a "
                "posterior that reconstructs it in the MVAE loss (`MVAE.decoder_loss`), L1 on pixels"
                + (
                    f"; a new decoder (widths {cfg.decoder_widths}, full-resolution stage {cfg.decoder_full_res})"
                    if cfg.decoder_widths or cfg.decoder_full_res
                    else ""
                )
                + (
                    f"; a fifth of the faces are redrawn with up to {cfg.decoder_edits} attributes switched, from "
                    f"their sketch plus a description of the switched face (description weight "
                    f"{cfg.description_weight:g})."
                    if cfg.decoder_edits
                    else "."
                )
            ]
            if cfg.decoder_only
            else []
        ),
        *(
            [
                f"- Adversarial term: weight {cfg.adversarial_weight} × the adaptive (VQGAN) ratio, PatchGAN "
                f"critic (widths {cfg.d_widths}, spectral norm), lr {cfg.d_lr}, R1 γ {cfg.r1_gamma}, from step "
                f"{cfg.adversarial_start}."
            ]
            if cfg.adversarial_weight > 0
            else []
        ),
        f"- Held out: {held}.",
        "",
        "```python",
        "from sketchface.pipelines.attribute_to_face import AttributeToFace",
        "pipe = AttributeToFace.from_pretrained(PATH)",
        'faces = pipe({"Male": True, "Eyeglasses": True}, num_images=8, seed=0).images',
        "```",
        "",
        "## Held-out figures",
        "",
        "| Figure | Value |",
        "|---|---:|",
        f"| Attribute fidelity, full description (classifier, mean over 40) | {f('fidelity_full')} |",
        f"| Attribute fidelity, balanced requests (mean over 40) | {f('fidelity_balanced')} |",
        f"| Attribute fidelity, 8 stated attributes | {f('fidelity_partial')} |",
        f"| The same two, description weight {cfg.description_weight:g} (`AttributeToFace(description_weight=…)`) | "
        f"{f('fidelity_full_weighted')} / {f('fidelity_partial_weighted')} |",
        f"| Diversity, 8 stated attributes, description weight {cfg.description_weight:g} | "
        f"{f('diversity_partial_weighted')} |",
        f"| Diversity (pairwise RMS, 8 candidates), full description | {f('diversity_full')} |",
        f"| Diversity, 8 stated attributes | {f('diversity_partial')} |",
        f"| Sketch + attributes fidelity (plain PoE) | {f('sketch_attributes_fidelity')} |",
        f"| Sketch + attributes fidelity, description weight {cfg.description_weight:g} (combined as `AttributeToFace` "
        "does) | "
        f"{f('sketch_attributes_fidelity_weighted')} |",
        f"| Sketch + Eyeglasses only: share of faces with glasses (plain PoE) | {f('sketch_plus_glasses_rate')} |",
        f"| Sketch + Eyeglasses only, description weight {cfg.description_weight:g} | "
        f"{f('sketch_plus_glasses_rate_weighted')} |",
        f"| Sketch alone: share of faces with glasses | {f('sketch_only_glasses_rate')} |",
        f"| Sketch + attributes → RMS to the sketched face | {f('sketch_attributes_layout_rmse')} |",
        f"| Sketch only → RMS to the sketched face | {f('sketch_only_layout_rmse')} |",
        f"| Image reconstruction RMS (image expert) | {f('reconstruction_rmse')} |",
        f"| Attributes → image RMS to the real face | {f('attr_to_image_rmse')} |",
        f"| RMS between unrelated held-out faces (baseline) | {f('unrelated_faces_rmse')} |",
        f"| Classifier accuracy on the real held-out faces | {f('classifier_on_real_faces')} |",
        "",
    ]
    if "fidelity_rare" in ev:
        lines += ["Rare attributes (fidelity):", "", "| " + " | ".join(RARE) + " |", "|" + "---:|" * len(RARE)]
        lines.append(
            "| "
            + " | ".join("n/a" if ev["fidelity_rare"][a] is None else f"{ev['fidelity_rare'][a]:.3f}" for a in RARE)
            + " |"
        )
        if "fidelity_balanced_rare" in ev:
            rare = ev["fidelity_balanced_rare"]
            lines.append("| " + " | ".join("n/a" if rare[a] is None else f"{rare[a]:.3f}" for a in RARE) + " |")
            lines.append("")
            lines.append("(first row: held-out requests with CelebA frequencies; second row: balanced requests)")
        lines.append("")
    else:
        lines += ["Attribute fidelity: not measured (no `--classifier` given).", ""]
    lines += ["Trained with:", "", "```", report["command"], "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ training


def _batches(trainer: Trainer, cfg: MVAEArguments, train_set: Dataset, pool, step: int):
    """Endless float batches on the device, each rank its own rows of every step (``Trainer.batch_indices``, so a
    resumed run continues exactly): from the in-memory pool, or streamed from the data set by DataLoader workers."""
    if pool is not None:
        for batch in trainer.pool_batches(pool, step):
            yield {k: v.float() / 255 if v.dim() == 4 else v.float() for k, v in batch.items()}
        return
    for batch in trainer.dataset_batches(train_set, step):
        yield {k: v.float() for k, v in batch.items() if k in POOL_KEYS}


class _LossModule(torch.nn.Module):
    """forward(...) = model.loss(...), so Accelerate/DDP see the loss computation as the forward pass."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, decoder_only: bool = False, **kwargs) -> dict[str, torch.Tensor]:
        return (self.model.decoder_loss if decoder_only else self.model.loss)(*args, **kwargs)


def build_model(cfg: MVAEArguments) -> MVAE | CrossModalVAE:
    """A new model from the flags, or with ``--init_from`` that checkpoint (its architecture and loss settings)."""
    if cfg.decoder_only and (cfg.model != "mvae" or not cfg.init_from):
        raise SystemExit("--decoder_only retrains the decoder of an MVAE: pass its checkpoint with --init_from")
    if not cfg.init_from:
        return (CrossModalVAE if cfg.model == "cvae" else MVAE)(cfg.model_config())
    from sketchface.models.mvae import load_vae

    model = load_vae(cfg.init_from)
    if model.config.model_type != cfg.model:
        raise SystemExit(
            f"--init_from {cfg.init_from} holds a {model.config.model_type!r} model, not {cfg.model!r}: "
            f"pass --model {model.config.model_type}"
        )
    if cfg.decoder_only and (cfg.decoder_widths or cfg.decoder_full_res):
        # a new decoder on the checkpoint's encoders: every other weight is copied
        config = replace(model.config, decoder_widths=cfg.decoder_widths, decoder_full_res=cfg.decoder_full_res)
        fresh = MVAE(config)
        kept = {k: v for k, v in model.state_dict().items() if not k.startswith("image_decoder.")}
        missing, unexpected = fresh.load_state_dict(kept, strict=False)
        assert not unexpected and all(k.startswith("image_decoder.") for k in missing)
        model = fresh
    # the run follows the checkpoint: data at its size, model card with its figures
    architecture = ("image_size", "latent_dim", "widths", "fc_dim", "attr_hidden", "dropout", "attribute_weight")
    for key in (*architecture, "decoder_widths", "decoder_full_res"):
        setattr(cfg, key, getattr(model.config, key))
    cfg.sketch = cfg.sketch and bool(getattr(model.config, "use_sketch", False))
    if cfg.decoder_edits and not cfg.sketch:
        raise SystemExit(f"--decoder_edits: {cfg.init_from} has no sketch expert to draw the edited faces from")
    return model.train()


def build_discriminator(cfg: MVAEArguments) -> torch.nn.Module:
    """A small PatchGAN critic (spectral norm), cheap enough for CPU training."""
    return DecoderPatchDiscriminator(tuple(cfg.d_widths))


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """||∇ rec|| / ||∇ adv|| at the decoder's last layer (VQGAN, Esser et al. 2021), so the adversarial term
    pulls about as hard as the reconstruction whatever the likelihood's scale (a BCE summed over 12k pixels)."""
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()


def discriminator_step(cfg: MVAEArguments, disc, d_opt, accelerator, fake: torch.Tensor, real: torch.Tensor, step: int):
    """One non-saturating logistic step on (fake, real) in [-1, 1], with lazy R1 on the real faces every 16."""
    if not len(fake):
        return {}
    disc.requires_grad_(True)
    with accelerator.autocast():
        d_loss = F.softplus(disc(fake)).mean() + F.softplus(-disc(real)).mean()
    d_opt.zero_grad(set_to_none=True)
    accelerator.backward(d_loss)
    d_opt.step()
    out = {"d": d_loss.item()}
    if cfg.r1_gamma > 0 and step % 16 == 0:
        real = real.detach().requires_grad_(True)
        pred = disc(real)  # fp32: the penalty differentiates twice
        (grad,) = torch.autograd.grad(pred.sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
        d_opt.zero_grad(set_to_none=True)
        accelerator.backward(cfg.r1_gamma / 2 * r1 * 16 + 0 * pred[0].sum())
        d_opt.step()
        out["r1"] = r1.item()
    return out


def fmt_logs(logs: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.3g}" for k, v in logs.items()}


def _load_legacy_checkpoint(path: Path, raw, optimizer, disc, d_opt, trainer: Trainer) -> int:
    """--resume of a run saved by the older version of this script (checkpoint.pt: weights, optimisers, step; no
    RNG state, so the batches and draws after it differ from an uninterrupted run)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    raw.load_state_dict(state["model"], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    if disc is not None and "discriminator" in state:
        trainer.unwrap(disc).load_state_dict(state["discriminator"], strict=True)
        d_opt.load_state_dict(state["d_optimizer"])
    trainer.print(f"resumed from {path} at step {state['step']} (an older checkpoint: no RNG state)")
    return int(state["step"])


def main(train_args: TrainingArguments, cfg: MVAEArguments) -> dict:
    try:
        # device, precision, seed + rank, threads per process; a copy: the run sets its max_steps (--epochs)
        trainer = Trainer(replace(train_args))
    except ValueError as e:  # fp16 without CUDA
        raise SystemExit(str(e)) from None
    accelerator, precision, device = trainer.accelerator, trainer.precision, trainer.device
    out_dir = Path(train_args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the model folder is the run's folder (beside its training state), as the docs and cards say, unless --save_dir
    save_dir = Path(train_args.save_dir or out_dir)

    model = build_model(cfg)  # first: --init_from sets the image size the data is rendered at
    train_set, held_set = build_datasets(cfg)
    # every rank holds the whole pool (each draws its own rows of it): fine for the pools this script renders
    pool = (
        render_pool(train_set, train_args.num_workers, desc="render training pool")
        if uses_pool(cfg, train_set)
        else None
    )
    if pool is None:
        trainer.print(f"streaming {len(train_set):,} faces with {train_args.num_workers} workers per process")
    else:
        pool = {k: v.to(device) for k, v in pool.items()}  # uint8 on the device: batches need no workers
    train_size = len(train_set)
    per_step = train_args.batch_size * trainer.num_processes
    if train_size < per_step:
        raise SystemExit(f"{train_size} training samples are fewer than one step's {per_step} (batch × processes)")
    steps_per_epoch = max(1, train_size // per_step)
    total = int(round(cfg.epochs * steps_per_epoch)) if cfg.epochs else train_args.max_steps
    trainer.args.max_steps = total
    # a fine-tuned model's KL was annealed in its first run
    anneal_steps = 0 if cfg.init_from else int(min(cfg.anneal_epochs * steps_per_epoch, total // 2))

    if cfg.decoder_only:  # the encoders (and the attribute decoder) stay as they are
        model.requires_grad_(False).image_decoder.requires_grad_(True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=train_args.lr)
    disc = d_opt = None
    if cfg.adversarial_weight > 0:
        disc = build_discriminator(cfg)
        d_opt = torch.optim.Adam(disc.parameters(), lr=cfg.d_lr, betas=(0.5, 0.99))

    pos_weight = None
    if cfg.rebalance:
        labels = (
            pool["labels"]
            if pool is not None
            else torch.stack([train_set[i]["labels"] for i in range(min(train_size, 4096))])
        )
        pos_weight = positive_weight(labels).to(device)
    raw = model
    # DDP only synchronises gradients of calls through the wrapper's forward: wrap the loss as a module.
    # (prepare puts conv weights in the channels_last layout with --channels_last: oneDNN's / cuDNN's faster kernels)
    model, optimizer = trainer.prepare(_LossModule(model), optimizer)
    if disc is not None:
        disc, d_opt = trainer.prepare(disc, d_opt)  # channels_last like its inputs (DDP: matching grad strides)
        last_layer = raw.image_decoder.deconv[-1].weight  # where the two gradients are compared
    # weights, optimisers, every rank's RNG (dropout, reparameterisation, subsets) and the AMP scaler
    step = trainer.resume()
    legacy = out_dir / "checkpoint.pt"
    if train_args.resume and step == 0 and legacy.is_file():
        step = _load_legacy_checkpoint(legacy, raw, optimizer, disc, d_opt, trainer)
    start_step = step

    model.train()
    if cfg.decoder_only:  # frozen encoders: BatchNorm statistics and dropout as at inference
        raw.eval().image_decoder.train()
    logs: dict[str, float] = {}
    batches = _batches(trainer, cfg, train_set, pool, step)
    bar = tqdm(total=total, initial=step, desc=cfg.model, disable=not trainer.is_main)
    t0 = time.perf_counter()
    # the first run's rendering: the time schedule spans the rest of --max_minutes, and a resumed run carries it on
    setup_s = trainer.meta.setdefault("setup_seconds", trainer.elapsed_minutes() * 60)
    saved_at = None
    while step < total:
        # with --max_minutes, schedules follow whichever runs out first, steps or time, so a run cut by the
        # clock still finishes its KL annealing and learning-rate decay (a resumed run's earlier time counts)
        eff, stop = step, False
        if train_args.max_minutes:
            budget = max(train_args.max_minutes * 60 - setup_s, 1.0)
            elapsed = trainer.elapsed_minutes()
            eff = max(step, int(total * (elapsed * 60 - setup_s) / budget))
            stop = elapsed > train_args.max_minutes
            if trainer.num_processes > 1:  # every rank must take the same lr and stop at the same step
                flags = accelerator.reduce(torch.tensor([eff, int(stop)], device=device), reduction="sum")
                eff, stop = int(flags[0]) // trainer.num_processes, bool(flags[1] > 0)
        if stop:
            trainer.print(f"time limit of {train_args.max_minutes} min reached at step {step}")
            break
        batch = next(batches)
        x, y = batch["image"], batch["labels"]
        if train_args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            if "sketch" in batch:
                batch["sketch"] = batch["sketch"].contiguous(memory_format=torch.channels_last)
        # which attributes count as stated: drawn from (seed, step, rank), so resuming needs no state
        known = random_known_mask(x.shape[0], y.shape[1], cfg.attr_dropout, trainer.step_generator(step), device)
        beta = annealing_factor(eff, anneal_steps)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(train_args.lr, eff, train_args.warmup_steps, total, floor=0.05)
        decoder_extra = {}  # MVAE.decoder_loss: the edited faces (--decoder_edits), weighted as the pipeline does
        if cfg.decoder_only:
            decoder_extra = {k: batch[k] for k in EDIT_KEYS if k in batch}
            decoder_extra["description_weight"] = cfg.description_weight
        with trainer.autocast():
            terms = model(
                x,
                y,
                known,
                sketch=batch.get("sketch"),
                annealing_factor=beta,
                pos_weight=pos_weight,
                sample_subsets=cfg.sample_subsets,
                return_image_logits=disc is not None,
                decoder_only=cfg.decoder_only,
                **decoder_extra,
            )
        loss = terms["loss"]
        if disc is not None:
            fake = torch.sigmoid(terms["image_logits"].float()) * 2 - 1  # (N, 3, S, S) in [-1, 1]
            if cfg.adversarial_on == "reconstructions":
                fake = fake[terms["image_has_target"]]
            if step >= cfg.adversarial_start and len(fake):
                disc.requires_grad_(False)
                with trainer.autocast():
                    g_adv = F.softplus(-disc(fake)).mean()
                adv_lambda = cfg.adversarial_weight * adaptive_weight(loss, g_adv, last_layer)
                loss = loss + adv_lambda * g_adv
                logs.update(g_adv=g_adv.item(), adv_lambda=adv_lambda.item())
        optimizer.zero_grad(set_to_none=True)
        trainer.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
        if disc is not None:
            logs.update(discriminator_step(cfg, disc, d_opt, accelerator, fake.detach(), x * 2 - 1, step))
        step += 1
        bar.update(1)
        if step % train_args.log_every == 0 or step == total:
            rate = (step - start_step) * per_step / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{loss.item():.4g}", beta=f"{beta:.2f}", img_s=f"{rate:.0f}", **fmt_logs(logs))
            trainer.log(step, {"loss": loss.item(), "beta": beta, "lr": optimizer.param_groups[0]["lr"], **logs})
        if trainer.should_save(step):
            trainer.save_state(step)
            saved_at = step
    bar.close()
    loop_seconds = time.perf_counter() - t0
    samples_per_s = (step - start_step) * per_step / max(loop_seconds, 1e-9)
    if saved_at != step:
        trainer.save_state(step)
    train_minutes = trainer.elapsed_minutes()

    report: dict = {}
    if trainer.is_main:
        classifier = None
        if cfg.classifier:
            from sketchface.models.classifier import AttributeClassifier

            classifier = AttributeClassifier.from_pretrained(cfg.classifier)
        held_pool = {
            k: v.to(device) for k, v in render_pool(held_set, train_args.num_workers, desc="render held-out").items()
        }
        ev = evaluate(raw, held_pool, classifier, seed=train_args.seed, description_weight=cfg.description_weight)
        report = {
            "steps": step,
            "epochs": step / steps_per_epoch,
            "anneal_steps": anneal_steps,
            "train_size": train_size,
            "data_mode": "stream" if pool is None else "pool",
            "train_minutes": train_minutes,
            "precision": precision,
            "channels_last": train_args.channels_last,
            "samples_per_s": samples_per_s,
            "device": (device.type if device.type != "cuda" else torch.cuda.get_device_name(device))
            + (f" × {trainer.num_processes}" if trainer.num_processes > 1 else ""),
            "num_parameters": sum(p.numel() for p in raw.parameters()),
            "eval": ev,
            "config": config_dict(train_args, cfg),
            "command": cli_command(
                "cvae" if cfg.model == "cvae" else "mvae",
                config_dict(train_args, cfg),
                config_dict(*parse_args([], model=cfg.model)),
                skip=("resume", "model"),
            ),
        }
        # config.json + model.safetensors + the card + eval.json, beside the training state; --push_to_hub uploads
        # exactly these files
        card = model_card(train_args, cfg, report)
        trainer.finish(raw, save_dir, card=card, record=report, fp16=cfg.save_dtype == "float16")
        size_mb = (save_dir / "model.safetensors").stat().st_size / 1e6
        trainer.print(
            f"{size_mb:.1f} MB after {step} steps, {train_minutes:.1f} min; "
            + ", ".join(f"{k} {v:.3f}" for k, v in ev.items() if isinstance(v, float))
        )
    accelerator.wait_for_everyone()
    return report


if __name__ == "__main__":
    main(*parse_args())
