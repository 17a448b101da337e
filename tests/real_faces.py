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
