"""A tiny CelebA-layout folder for tests that need (sketch, photo) pairs: procedural faces saved as 178×218 JPEGs
with their exact labels, in the official file formats (so no test depends on the research-only CelebA images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sketchface.attributes import ATTRIBUTES


def write_celeba_layout(root: Path, n: int = 12) -> Path:
    from sketchface.data.procedural import render

    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        face = render(seed=i, size=178)
        canvas = np.full((218, 178, 3), 200, np.uint8)  # the aligned crops are taller than wide
        canvas[20:198] = face.image
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(canvas).save(images / name, quality=95)
        rows.append(name + " " + " ".join(f"{int(v):2d}" for v in np.where(face.labels > 0, 1, -1)))
    (root / "list_attr_celeba.txt").write_text("\n".join([str(n), " ".join(ATTRIBUTES), *rows]) + "\n")
    # an explicit partition, so that every split has photos however few there are
    parts = [f"{i + 1:06d}.jpg {0 if i < n - 6 else 1 if i < n - 4 else 2}" for i in range(n)]
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root


def write_celeba_hq_layout(root: Path, n: int = 12, size: int = 64) -> Path:
    """A tiny CelebA-HQ folder in the CelebAMask-HQ layout (square procedural faces, their exact labels, no masks),
    with a ``CelebA-HQ-to-CelebA-mapping.txt`` that puts the last six images in the valid (2) and test (4) splits."""
    from sketchface.data.procedural import render

    images = root / "CelebA-HQ-img"
    images.mkdir(parents=True, exist_ok=True)
    rows, mapping = [], ["idx orig_idx orig_file"]
    for i in range(n):
        face = render(seed=100 + i, size=size)
        Image.fromarray(face.image).save(images / f"{i}.jpg", quality=95)
        rows.append(f"{i}.jpg " + " ".join(f"{int(v):2d}" for v in np.where(face.labels > 0, 1, -1)))
        original = i + 1 if i < n - 6 else 170_000 + i if i < n - 4 else 190_000 + i  # CelebA's official split
        mapping.append(f"{i} {original - 1} {original:06d}.jpg")
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text("\n".join([str(n), " ".join(ATTRIBUTES), *rows]) + "\n")
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(mapping) + "\n")
    return root
