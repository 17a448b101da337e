"""Small helpers shared by the training scripts in ``train/`` (no model code)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm


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
) -> dict[str, torch.Tensor]:
    """Render (or read) a dataset once into uint8 tensors, so that every epoch after the first is free.

    Items are dicts in the dataset contract: images in [0, 1] ("image" (3, S, S), "sketch" (1, S, S), "edited_image")
    become 0-255, vectors ("labels" (40,), "edited_labels", "switched") 0/1. ``keys`` picks the entries (default:
    those of :data:`POOL_KEYS` the dataset gives). ``max_minutes`` stops after that long with what has been rendered
    (None: the whole dataset).
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    parts: dict[str, list[torch.Tensor]] = {}
    t0, n = time.time(), 0
    for batch in tqdm(loader, desc=desc, leave=False):
        names = list(keys or [k for k in POOL_KEYS if k in batch])
        for k in names:
            v = batch[k]
            parts.setdefault(k, []).append(
                (v.clamp(0, 1) * 255).round().to(torch.uint8) if v.dim() == 4 else (v > 0.5).to(torch.uint8)
            )
        n += len(batch[names[0]])
        if max_minutes is not None and time.time() - t0 > max_minutes * 60:
            break
    seconds = time.time() - t0
    print(f"{desc}: {n} items in {seconds:.1f} s ({n / max(seconds, 1e-6):.0f}/s, {num_workers} workers)")
    return {k: torch.cat(v) for k, v in parts.items()}
