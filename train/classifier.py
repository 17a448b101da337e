"""Train the attribute classifier (sketchface.models.classifier.AttributeClassifier).

Procedural faces (default; unlimited, exact labels, balanced attribute sampling so rare attributes are learned)::

    python train/classifier.py --output_dir checkpoints/classifier-procedural-64 --num_workers 15

CelebA in the official layout (e.g. the 899-image CelebA-mini), with its deterministic train/valid/test split, or
CelebA-HQ in the CelebAMask-HQ layout (``--data celeba-hq``; ``--data KIND:PATH`` also works)::

    python train/classifier.py --data celeba --data_root ../shared/data/celeba-mini \\
        --output_dir checkpoints/classifier-celeba-mini-64 --max_steps 1500 --batch_size 64 --dropout 0.3 \\
        --pos_weight --num_workers 8
    python train/classifier.py --data celeba-hq:../data/CelebAMask-HQ --output_dir checkpoints/classifier-celeba-hq-64

Real data whose train split has more than ``--pool_size`` images (default 50,000) is streamed by DataLoader workers;
smaller sets (and procedural faces) are read once into memory. ``--cache`` / ``--no-cache`` force either. A folder of
unlabelled images (``--data folder``) is refused: the classifier learns from the 40 labels.

At the end it evaluates on held-out data (procedural seeds from 10_000_000 with CelebA marginals and
balanced; or the valid/test splits of the CelebA / CelebA-HQ folder) and writes per-attribute accuracy and balanced
accuracy to eval.json and to the model card README.md beside config.json + model.safetensors.

Runs on ``sketchface.trainer.Trainer``: several processes (``accelerate launch train/classifier.py …``, ``torchrun``)
train data-parallel, each rank on its own rows of every step; ``--resume`` continues a killed run exactly.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from sketchface.attributes import ATTRIBUTES
from sketchface.metrics import attribute_accuracy
from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
from sketchface.trainer import Trainer, TrainingArguments, option, parse_training_args, warmup_cosine
from sketchface.training import (
    REAL_DATA_NAMES,
    atomic_write,
    cli_command,
    config_dict,
    data_licence,
    face_dataset,
    keep_in_memory,
    resolve_face_data,
)

#: what --data may name: data sets with the 40 attribute labels (an image folder has none)
LABELLED_DATA = ("procedural", "celeba", "celeba-hq")
FOLDER_REFUSAL = (
    "an image folder has no attribute labels, and the classifier cannot learn attributes without them. Use "
    "--data celeba-hq or --data celeba (photos with the 40 labels) or procedural faces; to judge the photos of "
    "a folder, run a trained classifier on them (AttributeClassifier.from_pretrained(PATH).predict)"
)
TRAIN_SEED = 0  # procedural training seeds start here
HELD_OUT_SEED = 10_000_000  # procedural evaluation seeds start here (never seen in training)


@dataclass
class ClassifierArguments:
    """Data, model and augmentation settings of this script (the shared flags are in TrainingArguments)."""

    data: str = option("procedural", "procedural | celeba | celeba-hq (with --data_root) | KIND:PATH")
    data_root: str | None = option(
        None, "the data set's folder for celeba (official layout) / celeba-hq (CelebAMask-HQ)"
    )
    mode: str = option("balanced", "procedural training sampler", choices=["balanced", "celeba"])
    train_samples: int = option(200_000, "procedural faces per epoch (seeds 0 … N-1)")
    eval_samples: int = option(2_000, "procedural held-out faces per evaluation set")
    # model
    image_size: int = option(64)
    stem_width: int = option(16)
    widths: list[int] = option(default_factory=lambda: [24, 48, 96, 128])
    dropout: float = option(0.1)
    # optimisation (steps, batch, lr, warm-up, precision ... are the shared flags)
    weight_decay: float = option(1e-4, "AdamW weight decay")
    augment: bool = option(True, "flips, a small similarity transform, brightness / contrast (and --noise)")
    noise: float = option(
        0.05, "augmentation: half the images get Gaussian pixel noise with std drawn from U(0, NOISE); 0 = none"
    )
    eval_noise: float = option(
        0.03, "also evaluate on the first held-out set with this much Gaussian pixel noise; 0 = skip"
    )
    # render/load the training set once into memory (uint8), then train epochs from RAM; False: stream it from
    # DataLoader workers; None (default): in memory, but real data whose train split has more than pool_size streams
    cache: bool | None = option(
        None, "in memory (--cache) or streamed (--no-cache); default: streamed for real data over --pool_size images"
    )
    pool_size: int = option(50_000, "real data larger than this streams by default")
    pos_weight: bool = option(False, "weight positives by the negative/positive ratio (for imbalanced CelebA labels)")
    init_from: str | None = option(None, "fine-tune: start from this classifier's weights", metavar="PATH")
    keep_checkpoint: bool = option(
        False, "keep state/ (the training state) after a finished run; off: the folder ships as is"
    )

    def model_config(self) -> ClassifierConfig:
        return ClassifierConfig(
            image_size=self.image_size, stem_width=self.stem_width, widths=list(self.widths), dropout=self.dropout
        )


#: this script's defaults for the shared flags (TrainingArguments); its model folder is --output_dir itself (unless
#: --save_dir), beside the training state
TRAINING_DEFAULTS = {
    "output_dir": "checkpoints/classifier-procedural-64",
    "max_steps": 10_000,
    "batch_size": 256,
    "lr": 2e-3,
    "warmup_steps": 200,
    "save_every": 1_000,
    "log_every": 100,
    "num_workers": 4,
}
#: shared flags this script has no use for, and why (refused on the command line)
UNUSED_FLAGS = {
    "lr_schedule": "its learning rate warms up over --warmup_steps, then follows a cosine down to 5 %",
    "eval_every": "it evaluates once, at the end of the run",
}


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, ClassifierArguments]:
    return parse_training_args(
        ClassifierArguments,
        argv,
        description=__doc__,
        defaults=TRAINING_DEFAULTS,
        unused=UNUSED_FLAGS,
        check=check_args,
    )


def check_args(train_args: TrainingArguments, cfg: ClassifierArguments) -> None:
    """``--data KIND:PATH`` as ``--data KIND --data_root PATH``; a ``ValueError`` (a usage error on the command
    line) for a value out of range."""
    cfg.data, cfg.data_root = resolve_face_data(cfg.data, cfg.data_root, LABELLED_DATA, {"folder": FOLDER_REFUSAL})
    for name in ("noise", "eval_noise"):
        value = getattr(cfg, name)
        if not 0 <= value <= 0.5:
            raise ValueError(
                f"--{name} is a pixel-noise std for images in [0, 1]: give a value in [0, 0.5], got {value}"
            )


# ---------------------------------------------------------------------------------------------------------------- data


def build_datasets(cfg: ClassifierArguments) -> tuple[Dataset, dict[str, Dataset]]:
    """(training set, {name: held-out set}); items are dicts with "image" (3, S, S) and "labels" (40,)."""
    if cfg.data == "procedural":
        from sketchface.data.procedural import ProceduralFaces

        s = cfg.image_size
        train = ProceduralFaces(size=s, length=cfg.train_samples, start_seed=TRAIN_SEED, mode=cfg.mode)
        held_out = {
            f"procedural-{mode}": ProceduralFaces(size=s, length=cfg.eval_samples, start_seed=HELD_OUT_SEED, mode=mode)
            for mode in ("celeba", "balanced")
        }
    elif cfg.data in ("celeba", "celeba-hq"):
        train, valid, test = (
            face_dataset(cfg.data, cfg.data_root, size=cfg.image_size, split=split)
            for split in ("train", "valid", "test")
        )
        held_out = {f"{cfg.data}-valid": valid, f"{cfg.data}-test": test}
    else:
        raise ValueError(f"unknown data {cfg.data!r}")
    return train, with_noisy_copy(held_out, cfg.eval_noise)


def with_noisy_copy(held_out: dict[str, Dataset], sigma: float) -> dict[str, Dataset]:
    """The held-out sets plus the first one again with pixel noise of std ``sigma`` (none if ``sigma`` is 0).

    Generated faces carry fine texture that renders never have; a judge whose answers change with faint
    noise (σ = 0.01 is 2.5 grey levels) would score that texture instead of the attributes.
    """
    if sigma <= 0:
        return held_out
    first = next(iter(held_out))
    return {**held_out, f"{first}+noise{sigma:g}": NoisyFaces(held_out[first], sigma)}


class NoisyFaces(Dataset):
    """A dataset's items with Gaussian pixel noise of std ``sigma`` added (clamped to [0, 1]); the same noise
    for the same index every time, so evaluations are repeatable."""

    def __init__(self, dataset: Dataset, sigma: float, seed: int = 0):
        self.dataset, self.sigma, self.seed = dataset, sigma, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        x = torch.as_tensor(item["image"])
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        item["image"] = (x + self.sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)
        return item


class CachedFaces(Dataset):
    """A dataset materialised in memory: images as uint8 (N, 3, S, S), labels (N, 40).

    Procedural faces cost ~10 ms each to render on one core; caching makes every epoch after the first free.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 256, num_workers: int = 0, desc: str = "cache"):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        images, labels = [], []
        for batch in tqdm(loader, desc=desc, leave=False):
            images.append((batch["image"] * 255).round().to(torch.uint8))
            labels.append(batch["labels"].float())
        self.images, self.labels = torch.cat(images), torch.cat(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i].float() / 255.0, "labels": self.labels[i]}


def augment(x: torch.Tensor, generator: torch.Generator | None = None, noise: float = 0.0) -> torch.Tensor:
    """Light, label-preserving augmentation of a batch (B, 3, H, W) in [0, 1].

    Horizontal flips (no CelebA attribute is left/right specific), a small similarity transform
    (±7% scale, ±4% shift, ±5°) and ±5% brightness / ±10% contrast: colours stay close, because hair
    and skin colour are labels. With ``noise`` > 0, half the images also get Gaussian pixel noise with a
    std drawn from U(0, noise), so the classifier does not read the fine texture of generated faces as
    attributes (no attribute is image-wide noise; blur is not used, because ``Blurry`` is a label).
    """
    b = x.shape[0]

    def u(lo: float, hi: float, shape=(b,)) -> torch.Tensor:
        return torch.rand(shape, generator=generator).to(x.device) * (hi - lo) + lo

    flip = torch.rand(b, generator=generator).to(x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    scale, angle = u(0.93, 1.07), u(-5, 5) * math.pi / 180
    tx, ty = u(-0.08, 0.08), u(-0.08, 0.08)  # normalised coordinates span 2, so ±4% of the image
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.9, 1.1)[:, None, None, None] + mean + u(-0.05, 0.05)[:, None, None, None]
    if noise > 0:
        sigma = u(0, noise) * (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = x + sigma[:, None, None, None] * torch.randn(x.shape, generator=generator).to(x.device)
    return x.clamp(0, 1)


def positive_weight(dataset: Dataset, max_items: int = 4096, clip: float = 10.0) -> torch.Tensor:
    """negatives / positives per attribute over (up to) ``max_items`` training labels, clipped to [1, clip]."""
    n = min(len(dataset), max_items)
    labels = torch.stack([torch.as_tensor(dataset[i]["labels"]) for i in range(n)]).float()
    pos = labels.mean(0).clamp(1.0 / n, 1.0)
    return ((1 - pos) / pos).clamp(1.0, clip)


# ---------------------------------------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(model: torch.nn.Module, datasets: dict[str, Dataset], batch_size: int, num_workers: int = 0) -> dict:
    """Per-attribute accuracy and balanced accuracy on each held-out set."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for name, ds in datasets.items():
        probs, labels = [], []
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        for batch in tqdm(loader, desc=f"eval {name}", leave=False):
            probs.append(torch.sigmoid(model(batch["image"].to(device))).float().cpu())
            labels.append(batch["labels"].float())
        p, y = torch.cat(probs).numpy(), torch.cat(labels).numpy()
        acc, bal = attribute_accuracy(p, y)
        out[name] = {
            "num_samples": len(y),
            "mean_accuracy": float(acc.mean()),
            "mean_balanced_accuracy": float(np.nanmean(bal)),
            "accuracy": {a: float(v) for a, v in zip(ATTRIBUTES, acc)},
            "balanced_accuracy": {a: float(v) for a, v in zip(ATTRIBUTES, bal)},
            "positive_rate": {a: float(v) for a, v in zip(ATTRIBUTES, (y > 0.5).mean(0))},
        }
    model.train(was_training)
    return out


def write_model_card(train_args: TrainingArguments, cfg: ClassifierArguments, report: dict, path: Path) -> None:
    """README.md with YAML front matter: what was trained on, how, and the per-attribute table."""
    atomic_write(path, model_card(train_args, cfg, report))


def model_card(train_args: TrainingArguments, cfg: ClassifierArguments, report: dict) -> str:
    """The model card's text (see :func:`write_model_card`)."""
    sets = report["sets"]
    names = list(sets)
    data_desc = (
        f"procedural faces (`sketchface.data.procedural`, seeds {TRAIN_SEED}…{cfg.train_samples - 1}, "
        f"`{cfg.mode}` attribute sampling)"
        if cfg.data == "procedural"
        else f"{REAL_DATA_NAMES[cfg.data]} at `{cfg.data_root}` (train split"
        + (f", {report['train_size']} images" if "train_size" in report else "")
        + (", streamed by DataLoader workers)" if report.get("data_mode") == "stream" else ")")
    )
    held_out_desc = (
        f"{cfg.eval_samples} procedural faces per set, seeds from {HELD_OUT_SEED} (never seen in training); "
        "`procedural-celeba` samples attributes with CelebA's frequencies, `procedural-balanced` balances them"
        if cfg.data == "procedural"
        else f"the valid and test splits of the same {'CelebA-HQ' if cfg.data == 'celeba-hq' else 'CelebA'} folder"
    ) + (
        f"; `…+noise{cfg.eval_noise:g}` is the first set again with Gaussian pixel noise of std {cfg.eval_noise:g} "
        "(how much faint texture, which generated faces have and renders do not, changes the answers)"
        if cfg.eval_noise > 0
        else ""
    )
    licence = data_licence(cfg.data)
    model_index = "\n".join(
        f"  - name: {n}\n    mean_accuracy: {sets[n]['mean_accuracy']:.4f}\n"
        f"    mean_balanced_accuracy: {sets[n]['mean_balanced_accuracy']:.4f}"
        for n in names
    )
    lines = [
        "---",
        "library_name: sketchface",
        *(["license: other", "license_name: celeba-research-only"] if licence else ["license: mit"]),
        "tags:",
        "  - sketchface",
        "  - celeba-attributes",
        "  - image-classification",
        "pipeline_tag: image-classification",
        "eval_results:",
        model_index,
        "---",
        "",
        f"# SketchFace attribute classifier ({cfg.data}, {cfg.image_size} px)",
        "",
        *([f"**Licence of the training data.** {licence}", ""] if licence else []),
        "`sketchface.models.classifier.AttributeClassifier`: a small CNN "
        f"({report['num_parameters'] / 1e6:.2f} M parameters) that predicts the 40 CelebA attributes of a face "
        "image in [0, 1]. SketchFace uses it to measure attribute fidelity of generated faces and as the feature "
        "space of the Fréchet classifier distance.",
        "",
        f"- Trained on: {data_desc}.",
        f"- Steps: {report['steps']} × batch {train_args.batch_size}, AdamW lr {train_args.lr}, "
        f"augmentation {cfg.augment}"
        + (f" (pixel noise std up to {cfg.noise:g} on half the images)" if cfg.augment and cfg.noise > 0 else "")
        + f", positive weighting {cfg.pos_weight}"
        + (f", fine-tuned from `{cfg.init_from}` (its own card gives its training)" if cfg.init_from else "")
        + f"; {report.get('samples_per_s', float('nan')):.0f} samples/s in {report.get('precision', 'fp32')}"
        + (" with channels_last." if report.get("channels_last") else "."),
        f"- Held out: {held_out_desc}.",
        "",
        "```python",
        "from sketchface.models.classifier import AttributeClassifier",
        "clf = AttributeClassifier.from_pretrained(PATH)  # eval mode",
        "probs = clf.predict(images)  # (B, 3, H, W) in [0, 1] -> (B, 40)",
        "```",
        "",
        "## Held-out results",
        "",
        "| Set | Samples | Mean accuracy | Mean balanced accuracy |",
        "|---|---:|---:|---:|",
        *(
            f"| {n} | {sets[n]['num_samples']} | {sets[n]['mean_accuracy']:.4f} | "
            f"{sets[n]['mean_balanced_accuracy']:.4f} |"
            for n in names
        ),
        "",
        "Per attribute (accuracy / balanced accuracy; balanced accuracy is the mean of the true-positive and "
        "true-negative rates, so an attribute the model never predicts scores 0.5; positive rate = share of "
        "held-out faces that have the attribute):",
        "",
        "| Attribute | " + " | ".join(f"{n} acc | {n} bal. acc | {n} pos. rate" for n in names) + " |",
        "|---|" + "---:|---:|---:|" * len(names),
    ]
    for a in ATTRIBUTES:
        cells = []
        for n in names:
            bal = sets[n]["balanced_accuracy"][a]
            cells += [
                f"{sets[n]['accuracy'][a]:.3f}",
                "n/a" if bal != bal else f"{bal:.3f}",  # nan when the set has no labels at all
                f"{sets[n]['positive_rate'][a]:.3f}",
            ]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "Trained with:", "", "```", report["command"], "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ training


def main(train_args: TrainingArguments, cfg: ClassifierArguments) -> dict:
    try:
        trainer = Trainer(replace(train_args))  # device, precision, seed + rank, threads per process
    except ValueError as e:  # fp16 without CUDA
        raise SystemExit(str(e)) from None
    device = trainer.device
    out_dir = Path(train_args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the model folder is the run's folder (beside its training state), as the docs and cards say, unless --save_dir
    save_dir = Path(train_args.save_dir or out_dir)

    train_set, held_out = build_datasets(cfg)
    pool = None
    if keep_in_memory(cfg.data, len(train_set), cfg.pool_size, cfg.cache):  # every rank holds the whole set
        cached = CachedFaces(train_set, num_workers=train_args.num_workers, desc="caching training set")
        pool = {"image": cached.images, "labels": cached.labels}  # (each trains on its own rows of it)
    else:
        trainer.print(f"streaming {len(train_set):,} faces with {train_args.num_workers} workers per process")
    per_step = train_args.batch_size * trainer.num_processes
    if len(train_set) < per_step:
        raise SystemExit(f"{len(train_set)} training samples are fewer than one step's {per_step} (batch × processes)")
    model = AttributeClassifier(cfg.model_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_args.lr, weight_decay=cfg.weight_decay)
    model, optimizer = trainer.prepare(model, optimizer)  # channels_last with --channels_last; DDP with several
    # weights, optimiser, every rank's RNG (dropout) and the AMP scaler
    step = trainer.resume()
    legacy = out_dir / "checkpoint.pt"
    if train_args.resume and step == 0 and legacy.is_file():  # a run saved by the older version of this script
        state = torch.load(legacy, map_location="cpu", weights_only=True)
        trainer.unwrap(model).load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        trainer.print(f"resumed from {legacy} at step {step} (an older checkpoint: no RNG state)")
    if step == 0 and cfg.init_from:
        init = AttributeClassifier.from_pretrained(cfg.init_from)
        wanted = trainer.unwrap(model).config
        if init.config != wanted:
            raise SystemExit(
                f"--init_from {cfg.init_from}: its architecture ({init.config}) differs from the requested one "
                f"({wanted}); pass matching --image_size/--stem_width/--widths or drop --init_from"
            )
        trainer.unwrap(model).load_state_dict(init.state_dict())
        trainer.print(f"initialised from {cfg.init_from}")
    start_step = step

    pos_weight = positive_weight(train_set).to(device) if cfg.pos_weight else None
    if pool is not None:  # images as uint8: a batch is a tensor index, no workers
        batches = (
            {"image": b["image"].float() / 255.0, "labels": b["labels"]} for b in trainer.pool_batches(pool, step)
        )
    else:
        batches = trainer.dataset_batches(train_set, step, num_workers=train_args.num_workers)

    model.train()
    bar = tqdm(total=train_args.max_steps, initial=step, desc="classifier", disable=not trainer.is_main)
    t0, saved_at = time.perf_counter(), None
    finished = trainer.done(step)
    while not finished:
        batch = next(batches)
        x, y = batch["image"], batch["labels"].float()
        if cfg.augment:  # drawn from (seed, step, rank): resuming needs no state
            x = augment(x, trainer.step_generator(step), noise=cfg.noise)
        if train_args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(train_args.lr, step, train_args.warmup_steps, train_args.max_steps, floor=0.05)
        with trainer.autocast():
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y, pos_weight=pos_weight)
        optimizer.zero_grad(set_to_none=True)
        trainer.backward(loss)
        optimizer.step()
        step += 1
        bar.update(1)
        finished = trainer.done(step)  # max_steps, or --max_minutes (every rank agrees)
        if step % train_args.log_every == 0 or finished:
            acc = ((logits.detach() > 0) == (y > 0.5)).float().mean()
            rate = (step - start_step) * per_step / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{loss.item():.4f}", acc=f"{acc.item():.3f}", img_s=f"{rate:.0f}")
            trainer.log(step, {"loss": loss.item(), "acc": acc.item(), "lr": optimizer.param_groups[0]["lr"]})
        if trainer.should_save(step):
            trainer.save_state(step)
            saved_at = step
    bar.close()
    samples_per_s = (step - start_step) * per_step / max(time.perf_counter() - t0, 1e-9)
    if saved_at != step:
        trainer.save_state(step)

    report: dict = {}
    if trainer.is_main:
        final = trainer.unwrap(model)
        sets = evaluate(final, held_out, batch_size=max(train_args.batch_size, 64), num_workers=train_args.num_workers)
        report = {
            "steps": step,
            "train_size": len(train_set),
            "data_mode": "stream" if pool is None else "pool",
            "num_parameters": sum(p.numel() for p in final.parameters()),
            "precision": trainer.precision,
            "channels_last": train_args.channels_last,
            "samples_per_s": samples_per_s,
            "device": (device.type if device.type != "cuda" else torch.cuda.get_device_name(device))
            + (f" × {trainer.num_processes}" if trainer.num_processes > 1 else ""),
            "sets": sets,
            "config": config_dict(train_args, cfg),
            "command": cli_command(
                "classifier",
                config_dict(train_args, cfg),
                config_dict(*parse_args([])),
                skip=("resume", "keep_checkpoint"),
            ),
        }
        # float32 weights, as before; --push_to_hub uploads exactly the files saved here
        trainer.finish(final, save_dir, card=model_card(train_args, cfg, report), record=report, fp16=False)
        if not cfg.keep_checkpoint:  # the finished folder is config + weights + card + eval.json (+ log.jsonl)
            shutil.rmtree(trainer.state_dir, ignore_errors=True)
        for name, s in sets.items():
            trainer.print(
                f"{name}: mean accuracy {s['mean_accuracy']:.4f}, mean balanced accuracy "
                f"{s['mean_balanced_accuracy']:.4f} ({s['num_samples']} faces)"
            )
    trainer.accelerator.wait_for_everyone()
    return report


if __name__ == "__main__":
    main(*parse_args())
