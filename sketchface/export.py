"""PNG export with provenance: every composite says what made it and that it is not a photograph.

Each file carries PNG text chunks (``tEXt``/``iTXt``): ``Software``, ``Description`` (the label below),
``sketchface`` (all metadata as JSON: model, attributes or instruction, seed, ...) and one chunk per
top-level metadata key. Optionally a visible caption strip is added under the picture, so the label survives
screenshots and printing (chunks are lost when an image is re-encoded).

>>> path = save_png(face, "/tmp/out", "candidate-1", {"model": "mvae", "seed": 3}, caption=True)  # doctest: +SKIP
>>> read_metadata(path)["label"]                                                                    # doctest: +SKIP
'AI-generated composite, not a photograph of any real person'
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

#: The label every exported composite carries (text chunk, and visibly with ``caption=True``).
AI_LABEL = "AI-generated composite, not a photograph of any real person"
SOFTWARE = "SketchFace"
#: Exports smaller than this (longer side, px) are enlarged (bicubic) so a caption strip stays legible.
MIN_EXPORT_SIDE = 256


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable built-in font
    except TypeError:  # older Pillow: fixed bitmap font
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if line and draw.textlength(trial, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def enlarge(image: Image.Image, min_side: int = MIN_EXPORT_SIDE) -> Image.Image:
    """``image`` as RGB, enlarged (bicubic) so its longer side is at least ``min_side`` px."""
    image = image.convert("RGB")
    side = max(image.size)
    if side >= min_side:
        return image
    f = min_side / side
    return image.resize((round(image.width * f), round(image.height * f)), Image.Resampling.BICUBIC)


def add_caption(image: Image.Image, text: str = AI_LABEL, *, font_size: int | None = None) -> Image.Image:
    """A copy of ``image`` (RGB) with a white strip below holding ``text`` in dark grey, wrapped to fit."""
    image = image.convert("RGB")
    size = font_size or max(10, image.width // 22)
    font = _font(size)
    pad = max(3, size // 3)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap(probe, text, font, image.width - 2 * pad)
    line_h = size + max(2, size // 4)
    out = Image.new("RGB", (image.width, image.height + 2 * pad + line_h * len(lines)), "white")
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((pad, image.height + pad + i * line_h), line, fill=(40, 40, 40), font=font)
    return out


def png_info(metadata: Mapping[str, Any]) -> PngImagePlugin.PngInfo:
    """PNG text chunks for ``metadata`` (JSON-serialisable) plus the AI-generated label."""
    meta = {"label": AI_LABEL, **metadata}
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Software", SOFTWARE)
    info.add_itxt("Description", AI_LABEL)
    info.add_itxt("sketchface", json.dumps(meta, ensure_ascii=False, default=str, sort_keys=True))
    for key, value in meta.items():
        if key in ("Software", "Description", "sketchface"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        info.add_itxt(str(key), text)
    return info


def save_png(
    image: Image.Image,
    directory: str | os.PathLike[str],
    stem: str,
    metadata: Mapping[str, Any],
    *,
    caption: bool = False,
    caption_text: str | None = None,
    min_side: int = MIN_EXPORT_SIDE,
) -> Path:
    """Write ``image`` as ``directory/stem.png`` with metadata chunks (atomic: temp file + rename).

    ``caption=True`` adds the visible strip (``caption_text`` or the AI label). Small images are enlarged to
    ``min_side`` (bicubic; the metadata keeps the model's own size as ``model_size``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"model_size": list(image.size), **metadata}
    out = enlarge(image, min_side) if min_side else image.convert("RGB")
    if caption:
        height = out.height
        out = add_caption(out, caption_text or AI_LABEL)
        meta["caption_strip_px"] = out.height - height  # lets remove_caption() give editors the bare face
    path = directory / f"{stem}.png"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=".png")
    os.close(fd)
    try:
        # compress_level 1: ~5x faster than the default 6 for a few percent more bytes (the app's latency budget)
        out.save(tmp, format="PNG", pnginfo=png_info(meta), compress_level=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata :func:`save_png` wrote (the ``sketchface`` JSON chunk); ``{}`` for other PNGs."""
    with Image.open(path) as img:
        text = getattr(img, "text", None) or img.info
        raw = text.get("sketchface")
    return json.loads(raw) if raw else {}


def remove_caption(image: Image.Image) -> Image.Image:
    """``image`` without the caption strip :func:`save_png` added (read from its metadata); else unchanged."""
    info = getattr(image, "text", None) or image.info or {}
    try:
        strip = int(json.loads(info.get("sketchface", "{}")).get("caption_strip_px", 0))
    except (ValueError, TypeError, AttributeError):
        strip = 0
    if 0 < strip < image.height:
        return image.crop((0, 0, image.width, image.height - strip))
    return image


def labelled_grid(
    cells: Sequence[Sequence[Image.Image | Sequence[Image.Image] | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    cell: int = 128,
    footer: str | None = AI_LABEL,
) -> Image.Image:
    """Rows × columns of faces with labels on the left and on top (paper 1's criminal-sketch figures).

    A cell is one face, a list of faces (drawn side by side, ``cell`` px each: several candidates per row and
    column; every column is as wide as its longest list), or ``None``, drawn as a grey box marked "n/a".
    ``footer`` adds the label strip at the bottom.
    """
    if len(cells) != len(row_labels) or any(len(r) != len(col_labels) for r in cells):
        raise ValueError("cells must be len(row_labels) rows of len(col_labels) images")
    rows = [[[] if c is None else [c] if isinstance(c, Image.Image) else list(c) for c in r] for r in cells]
    widths = [max([len(r[j]) for r in rows] + [1]) * cell for j in range(len(col_labels))]
    gap = cell // 8 if max(widths, default=cell) > cell else 0  # sets of candidates: keep the columns apart
    xs = [sum(widths[:j]) + j * gap for j in range(len(widths))]
    font = _font(max(10, cell // 10))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = int(max([probe.textlength(t, font=font) for t in row_labels] + [0])) + 12
    col_lines = [_wrap(probe, t, font, w - 6)[:3] for t, w in zip(col_labels, widths)]
    line_h = max(10, cell // 10) + 3
    top = 8 + line_h * max([len(c) for c in col_lines] + [1])
    grid = Image.new("RGB", (left + sum(widths) + gap * max(len(widths) - 1, 0), top + cell * len(row_labels)), "white")
    draw = ImageDraw.Draw(grid)
    for j, lines in enumerate(col_lines):
        for k, line in enumerate(lines):
            draw.text((left + xs[j] + 3, 4 + k * line_h), line, fill=(20, 20, 20), font=font)
    for i, (label, row) in enumerate(zip(row_labels, rows)):
        y = top + i * cell
        draw.text((6, y + cell // 2 - line_h // 2), label, fill=(20, 20, 20), font=font)
        for j, faces in enumerate(row):
            x = left + xs[j]
            if not faces:
                draw.rectangle((x + 2, y + 2, x + cell - 3, y + cell - 3), fill=(225, 225, 225))
                draw.text((x + cell // 2 - 10, y + cell // 2 - 6), "n/a", fill=(90, 90, 90), font=font)
            for k, img in enumerate(faces):
                face = img.convert("RGB").resize((cell - 4, cell - 4), Image.Resampling.BICUBIC)
                grid.paste(face, (x + k * cell + 2, y + 2))
    if not footer:
        return grid
    return add_caption(grid, footer, font_size=max(10, min(grid.width // 22, cell // 5)))  # wide grids: not huge


__all__ = [
    "AI_LABEL",
    "MIN_EXPORT_SIDE",
    "add_caption",
    "enlarge",
    "labelled_grid",
    "png_info",
    "read_metadata",
    "save_png",
]
