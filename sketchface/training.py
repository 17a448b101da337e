"""Small helpers shared by the training scripts in ``train/`` (no model code)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from sketchface.trainer import Trainer


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[Path], object]) -> Path:
    """Write ``path`` through ``<path>.tmp`` and a rename, so a crash never leaves a half-written file.

    ``data``: bytes, text (written as UTF-8), or a callable that writes the temporary path it is given
    (``lambda tmp: torch.save(state, tmp)``, ``lambda tmp: image.save(tmp, format="PNG")``). Returns ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        tmp.write_bytes(data.encode("utf-8"))
    elif isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        data(tmp)
    os.replace(tmp, path)
    return path


def config_dict(*configs: Any) -> dict[str, Any]:
    """The fields of a script's dataclasses (its ``TrainingArguments`` and its own settings) as one dict: what
    ``eval.json`` / ``train_config.json`` record and :func:`cli_command` turns into flags."""
    return {k: v for config in configs for k, v in asdict(config).items()}


def cli_command(script: str, config: Mapping[str, Any], defaults: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    """The command line that reproduces a run, for model cards: ``python train/<script>.py --flag value …``.

    When the script itself is running, its real arguments are quoted; otherwise (called from Python) every field of
    ``config`` that differs from ``defaults`` becomes a flag, booleans as ``--x`` / ``--no-x`` and lists spaced out.
    """
    head = f"python train/{script}.py"
    if sys.argv and sys.argv[0].endswith(f"{script}.py"):
        return " ".join([head, *sys.argv[1:]])
    skipped = set(skip)
    parts = [head]
    for key, value in config.items():
        if key in skipped or value == defaults.get(key):
            continue
        if isinstance(value, bool):
            parts.append(f"--{key}" if value else f"--no-{key}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"--{key} " + " ".join(map(str, value)))
        else:
            parts.append(f"--{key} {value}")
    return " ".join(parts)


#: the entries of ``ProceduralFaces(edits=k)`` items that describe the edited face (``MVAE.decoder_loss`` takes them)
EDIT_KEYS = ("edited_image", "edited_labels", "switched")
#: dataset entries a pool keeps by default: images (4-D batches) and 0/1 vectors
POOL_KEYS = ("image", "labels", "sketch", *EDIT_KEYS)


def pool_to_batch(pool: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The float batch of pool rows ``idx``, in the dataset contract: images back in [0, 1], vectors 0/1."""
    return {k: v[idx].float() / 255 if v.dim() == 4 else v[idx].float() for k, v in pool.items()}


def render_pool(
    dataset: Dataset,
    num_workers: int = 0,
    max_minutes: float | None = None,
    keys: Sequence[str] | None = None,
    batch_size: int = 256,
    desc: str = "render pool",
    info: dict[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Render (or read) a dataset once into uint8 tensors, so that every epoch after the first is free.

    Items are dicts in the dataset contract: images in [0, 1] ("image" (3, S, S), "sketch" (1, S, S), "edited_image")
    become 0-255, vectors ("labels" (40,), "edited_labels", "switched") 0/1. ``keys`` picks the entries (default:
    those of :data:`POOL_KEYS` the dataset gives). ``max_minutes`` stops after that long with what has been rendered
    (None: the whole dataset). ``info``, when given, is filled with what the pool holds: ``faces`` (rows),
    ``of`` (the dataset's length), ``capped`` (True when ``max_minutes`` stopped it before the end) and ``seconds``,
    so a script can say in its log and model card that it trained on part of its data.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    parts: dict[str, list[torch.Tensor]] = {}
    t0, n, capped = time.time(), 0, False
    for batch in tqdm(loader, desc=desc, leave=False):
        names = list(keys or [k for k in POOL_KEYS if k in batch])
        for k in names:
            v = batch[k]
            parts.setdefault(k, []).append(
                (v.clamp(0, 1) * 255).round().to(torch.uint8) if v.dim() == 4 else (v > 0.5).to(torch.uint8)
            )
        n += len(batch[names[0]])
        if max_minutes is not None and time.time() - t0 > max_minutes * 60:
            capped = n < len(dataset)
            break
    seconds = time.time() - t0
    print(f"{desc}: {n} items in {seconds:.1f} s ({n / max(seconds, 1e-6):.0f}/s, {num_workers} workers)")
    if capped:
        print(
            f"{desc}: stopped after {max_minutes:g} min with {n:,} of {len(dataset):,} items: training uses only these",
            flush=True,
        )
    if info is not None:
        info.update(faces=n, of=len(dataset), capped=capped, seconds=round(seconds, 1))
    return {k: torch.cat(v) for k, v in parts.items()}


#: what ``--data`` may name in train/stylegan.py and train/psp.py (``synthetic``: smoke tests only)
FACE_DATA = ("procedural", "celeba", "celeba-hq", "folder", "synthetic")


def face_dataset(
    kind: str,
    root: str | None,
    *,
    size: int,
    split: str = "train",
    sketch: str | None = None,
    length: int = 0,
    start_seed: int = 0,
) -> Dataset:
    """The faces a training script reads: items with ``image`` (3, S, S) in [0, 1], ``sketch`` (1, S, S) when asked,
    ``labels`` (40,) where the data has them (not an image folder).

    ``procedural`` / ``synthetic``: ``length`` faces from seed ``start_seed`` (``split`` is ignored: held-out sets
    use other seeds). ``celeba`` (official layout), ``celeba-hq`` (CelebAMask-HQ layout) and ``folder`` (any folder
    of images, split by :func:`~sketchface.data.celeba.deterministic_split` of the file names) read ``root``'s
    ``split``; real photos have computed sketches only (``mixed`` means ``computed`` there).
    """
    if kind == "procedural":
        from sketchface.data.procedural import ProceduralFaces

        return ProceduralFaces(size=size, length=length, start_seed=start_seed, mode="celeba", sketch=sketch)
    if kind == "synthetic":
        from sketchface.data.synthetic import SyntheticFaces

        return SyntheticFaces(size, length, start_seed)
    if kind not in FACE_DATA:
        raise ValueError(f"unknown data {kind!r}: one of {', '.join(FACE_DATA)}")
    if not root:
        raise ValueError(f"--data {kind} needs --data_root PATH")
    from sketchface.data import celeba

    real_sketch = "computed" if sketch == "mixed" else sketch
    if kind == "celeba":
        return celeba.CelebA(root, split=split, size=size, sketch=real_sketch)
    if kind == "celeba-hq":
        return celeba.CelebAHQ(root, split=split, size=size, sketch=real_sketch, with_mask=None if sketch else False)
    folder = celeba.ImageFolder(root, size=size, sketch=real_sketch)
    parts = celeba.deterministic_split([f.name for f in folder.files])
    wanted = {"train": 0, "valid": 1, "test": 2}[split]
    return Subset(folder, [i for i, f in enumerate(folder.files) if parts[f.name] == wanted])


#: what the scripts that learn attributes (train/mvae.py, train/classifier.py) call each labelled real data set
REAL_DATA_NAMES = {"celeba": "CelebA in the official layout", "celeba-hq": "CelebA-HQ in the CelebAMask-HQ layout"}


def data_licence(kind: str) -> str | None:
    """The note a model card gives about the licence of its training data (None: procedural faces, no terms)."""
    from sketchface.data.celeba import LICENCE_NOTE

    if kind == "celeba":
        return LICENCE_NOTE
    if kind == "celeba-hq":
        return (
            "Trained on CelebA-HQ images (CelebAMask-HQ, derived from CelebA). CelebA and CelebAMask-HQ are available "
            "for **non-commercial research purposes only** (see their agreements); this model inherits that "
            "restriction."
        )
    return None


def resolve_face_data(
    data: str, data_root: str | None, kinds: Sequence[str] = FACE_DATA, refused: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """``--data`` / ``--data_root`` as (kind, folder): ``KIND:PATH`` is ``KIND`` with ``--data_root PATH``.

    ``kinds``: what the script accepts; ``refused``: kinds of :data:`FACE_DATA` it cannot train on, each with the
    reason and what to use instead. Raises ``ValueError`` with the message for the command line (unknown kind, a
    refused one, a real data set without its folder)."""
    if ":" in data:
        data, data_root = data.split(":", 1)
    if refused and data in refused:
        raise ValueError(f"--data {data}: {refused[data]}")
    if data not in kinds:
        raise ValueError(f"--data must be one of {', '.join(kinds)} (or KIND:PATH), got {data!r}")
    if data not in ("procedural", "synthetic") and not data_root:
        raise ValueError(f"--data {data} needs --data_root PATH")
    return data, data_root


def keep_in_memory(kind: str, faces: int, pool_size: int, cache: bool | None = None) -> bool:
    """Whether a script reads its training set into memory once (True) or streams it from DataLoader workers
    (train/mvae.py's and train/classifier.py's ``--cache`` / ``--no-cache``; None: choose). By default procedural
    faces, slow to draw, are rendered once; real data streams when it has more than ``pool_size`` faces, as
    :func:`load_face_data` decides for train/stylegan.py and train/psp.py."""
    if cache is not None:
        return cache
    return kind in ("procedural", "synthetic") or faces <= pool_size


def load_face_data(trainer: Trainer, cfg, dataset, keys: tuple[str, ...]) -> tuple[dict | None, dict]:
    """(the in-memory uint8 pool, or None to stream; what the run trains on, for the log, summary and card).

    Real data larger than ``--pool_size`` is streamed by DataLoader workers (``--stream`` / ``--no-stream`` force
    it); otherwise every rank renders the whole pool (each trains on its own rows of it), for at most
    ``--pool_max_minutes``. ``cfg``: the script's settings (``stream``, ``pool_size``, ``pool_max_minutes``); the
    workers are the trainer's ``--num_workers``. Call it before ``Trainer.resume``: rendering draws from the global
    RNG."""
    workers = trainer.args.num_workers
    stream = cfg.stream if cfg.stream is not None else len(dataset) > cfg.pool_size
    if stream:
        trainer.print(f"streaming {len(dataset):,} faces with {workers} workers per process")
        return None, {"mode": "stream", "faces": len(dataset), "of": len(dataset), "capped": False}
    if len(dataset) > cfg.pool_size:  # --no-stream on real data: its first pool_size faces
        dataset = Subset(dataset, range(cfg.pool_size))
    info: dict = {"mode": "pool"}
    pool = render_pool(dataset, workers, cfg.pool_max_minutes, keys=keys, batch_size=128, desc="pool", info=info)
    if trainer.device.type == "cuda":
        pool = {k: v.to(trainer.device) for k, v in pool.items()}  # 50k x 3 x 64 x 64 uint8 = 0.6 GB
    trainer.print(f"training on {pool_note(info, cfg.pool_max_minutes)}")
    return pool, info


def face_batches(trainer: Trainer, dataset, pool: dict | None, keys: tuple[str, ...], step: int):
    """Endless batches on the device from ``step`` on, images in [0, 1], each rank its own rows of every step (so
    a resumed run continues exactly): from the pool, or streamed from ``dataset``."""
    if pool is None:
        for batch in trainer.dataset_batches(dataset, step):
            yield {k: batch[k].float() for k in keys}
        return
    for batch in trainer.pool_batches(pool, step):
        yield {k: v.float() / 255 if v.dim() == 4 else v.float() for k, v in batch.items()}


def pool_note(info: dict, pool_max_minutes: float) -> str:
    """One line for the log, summary and model card: how many faces the run trained on and why."""
    if info.get("mode") == "stream":
        return f"streamed from the data set ({info['of']:,} faces)"
    note = f"an in-memory pool of {info['faces']:,} faces"
    if info.get("capped"):
        note += f" of {info['of']:,}: rendering stopped after --pool_max_minutes {pool_max_minutes:g}"
    return note


# ------------------------------------------------------------------------------------------------------ attribute loss
def attribute_reader(path: str, device) -> torch.nn.Module:
    """The frozen classifier of ``--attr_classifier`` (the attribute loss reads faces with it)."""
    from .models.classifier import AttributeClassifier

    if not Path(path).is_dir():
        raise SystemExit(f"--attr_classifier {path}: no such folder (a checkpoint of train/classifier.py)")
    reader = AttributeClassifier.from_pretrained(path).eval().to(device)
    reader.requires_grad_(False)
    return reader


def attribute_loss(
    reader: torch.nn.Module, faces: torch.Tensor, values: torch.Tensor, blur: float, generator: torch.Generator
) -> torch.Tensor:
    """Binary cross-entropy of the reader's logits on ``faces`` (B, 3, R, R) against the stated attributes of
    ``values`` (B, 40; ±1 stated, 0 unknown), averaged over the stated ones. The faces are blurred (σ = ``blur`` px)
    and get Gaussian noise (std 0.02) first, so that only visible, low-frequency changes lower the loss."""
    from torchvision.transforms.functional import gaussian_blur

    x = faces.float()
    if blur > 0:
        k = int(2 * round(2 * blur) + 1)  # ±2σ
        x = gaussian_blur(x, [k, k], [blur, blur])
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    logits = reader((x + 0.02 * noise).clamp(0, 1)).float()
    stated = values != 0
    bce = F.binary_cross_entropy_with_logits(logits, (values > 0).float(), reduction="none")
    return (bce * stated).sum() / stated.sum().clamp(min=1)
