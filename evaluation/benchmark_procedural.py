"""Speed benchmark and contact sheets for the procedural face renderer (one CPU core).

python -m evaluation.benchmark_procedural                       # faces/s at 64 and 128 px
python -m evaluation.benchmark_procedural --sheets docs/images  # also write the two contact sheets
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from sketchface.attributes import ATTRIBUTES, CRIMINALS, INDEX, Attributes
from sketchface.data.procedural import AttributeSampler, render


@dataclass
class BenchConfig:
    n: int = 1000
    sizes: tuple[int, ...] = (64, 128)
    sheets: str | None = None


def parse_args() -> BenchConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="faces per measurement")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--sheets", default=None, help="folder for procedural_faces.png / procedural_attributes.png")
    a = p.parse_args()
    return BenchConfig(a.n, tuple(a.sizes), a.sheets)


def _grid(tiles: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    s = tiles[0].shape[0]
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[pad + r * (s + pad) : pad + r * (s + pad) + s, pad + c * (s + pad) : pad + c * (s + pad) + s] = t
    return out


def faces_sheet(size: int, cols: int = 8) -> np.ndarray:
    """Rows: the three criminal presets, then random CelebA-like and balanced samples; columns: seeds."""
    tiles = []
    for preset in CRIMINALS:
        tiles += [render(preset.attributes, seed, size).image for seed in range(cols)]
    for mode, start in (("celeba", 100), ("celeba", 200), ("balanced", 300)):
        tiles += [render(None, start + k, size, mode=mode).image for k in range(cols)]
    return _grid(tiles, cols)


def attributes_sheet(size: int, seed: int = 7) -> np.ndarray:
    """Each attribute off / on for the same seed and otherwise the same attributes (pairs of tiles)."""
    base = AttributeSampler("celeba").sample(np.random.default_rng([seed, 0]), 1)[0]
    # a plain young face as the base so that each change is visible
    for name in ATTRIBUTES:
        base[INDEX[name]] = -1
    for name in ("Young", "No_Beard", "Attractive", "Brown_Hair"):
        base[INDEX[name]] = 1
    tiles = []
    for name in ATTRIBUTES:
        v_on, v_off = base.copy(), base.copy()
        v_on[INDEX[name]] = 1
        v_off[INDEX[name]] = -1
        if name in ("Black_Hair", "Blond_Hair", "Gray_Hair"):
            v_on[INDEX["Brown_Hair"]] = -1
        if name == "Brown_Hair":
            v_off[INDEX["Brown_Hair"]] = -1  # off = "other" colour
        off = render(Attributes.from_vector(v_off), seed, size).image.copy()
        on = render(Attributes.from_vector(v_on), seed, size).image.copy()
        label = name.replace("_", " ")[:14]
        cv2.putText(on, label, (1, size - 3), cv2.FONT_HERSHEY_PLAIN, size / 150, (255, 255, 255), 1, cv2.LINE_AA)
        tiles += [off, on]
    return _grid(tiles, 10)


def main(cfg: BenchConfig) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    sampler = AttributeSampler("celeba")
    for size in cfg.sizes:
        vecs = sampler.sample(np.random.default_rng(0), cfg.n)
        render(vecs[0], 0, size)  # warm-up (caches)
        t0 = time.perf_counter()
        for i in range(cfg.n):
            render(vecs[i], i, size)
        dt = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(cfg.n):
            render(None, i, size)
        dt2 = time.perf_counter() - t0
        print(
            f"{size:4d} px: {cfg.n / dt:7.1f} faces/s (image + mask + strokes, given attributes); "
            f"{cfg.n / dt2:7.1f} faces/s (attributes sampled from the seed)"
        )
    if cfg.sheets:
        out = Path(cfg.sheets)
        out.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        Image.fromarray(
            np.concatenate([faces_sheet(64)[:, :, :], np.full((faces_sheet(64).shape[0], 6, 3), 255, np.uint8)], 1)
        ).save(out / "procedural_faces_64.png")
        Image.fromarray(faces_sheet(128)).save(out / "procedural_faces.png", optimize=True)
        Image.fromarray(attributes_sheet(96)).save(out / "procedural_attributes.png", optimize=True)
        Image.fromarray(attributes_sheet(64)).save(out / "procedural_attributes_64.png", optimize=True)
        print(f"contact sheets written to {out}")


if __name__ == "__main__":
    main(parse_args())
