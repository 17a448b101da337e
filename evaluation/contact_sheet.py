"""Contact sheet of procedural faces with their computed and hand-drawn-style sketches (for docs/data.md).

    python -m evaluation.contact_sheet --out docs/images/procedural_contact_sheet.png --size 128 --columns 8

Rows: faces (CelebA-frequency attributes, one seed per column), paper 2's computed sketches of them, and
hand-drawn-style sketches of the renderer's strokes; then the three criminal presets rendered at two seeds each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from sketchface.attributes import CRIMINALS
from sketchface.data.procedural import render
from sketchface.data.sketch import photo_to_sketch, strokes_to_sketch


def contact_sheet(size: int = 128, columns: int = 8, start_seed: int = 10_000_000) -> Image.Image:
    faces = [render({}, start_seed + i, size) for i in range(columns)]
    rows = [
        [Image.fromarray(f.image) for f in faces],
        [photo_to_sketch(f.image, mask=f.mask).convert("RGB") for f in faces],
        [strokes_to_sketch(f.strokes, size, seed=f.seed, style="hand").convert("RGB") for f in faces],
        [Image.fromarray(render(c.attributes, start_seed + 100 + k, size).image) for c in CRIMINALS for k in (0, 1)],
    ]
    sheet = Image.new("RGB", (columns * size, len(rows) * size), "white")
    for r, row in enumerate(rows):
        for c, img in enumerate(row[:columns]):
            sheet.paste(img, (c * size, r * size))
    return sheet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("docs/images/procedural_contact_sheet.png"))
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--columns", type=int, default=8)
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(args.size, args.columns).save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
