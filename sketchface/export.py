"""PNG export with provenance: every picture says what made it and whether it may show a real person.

Two labels: :data:`AI_LABEL` for composites made from words, attributes or a drawing (not a photograph of anyone),
:data:`UPLOAD_LABEL` for pictures derived from an uploaded image (a photo or a sketch from outside may show a real
person, so the first label would be untrue). Each file carries PNG text chunks (``tEXt``/``iTXt``): ``Software``,
``Description`` (its label),
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
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

#: The label of a composite made from words, attributes or a drawing (text chunk, and visibly with ``caption=True``).
AI_LABEL = "AI-generated composite, not a photograph of any real person"
#: The label of a picture derived from an uploaded image (photo or sketch): it may show a real person.
UPLOAD_LABEL = "AI-generated, derived from an uploaded image (it may show a real person)"
LABELS = (AI_LABEL, UPLOAD_LABEL)
SOFTWARE = "SketchFace"
#: Exports smaller than this (longer side, px) are enlarged (bicubic) so a caption strip stays legible.
MIN_EXPORT_SIDE = 256


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable built-in font
    except TypeError:  # older Pillow: fixed bitmap font
        return ImageFont.load_default()


def _pieces(draw: ImageDraw.ImageDraw, word: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """A word wider than ``width`` cut into pieces that fit: after its hyphens first ("mvae-" "procedural"), then
    between letters; a word that fits stays whole."""
    if draw.textlength(word, font=font) <= width:
        return [word]
    out: list[str] = []
    piece = ""
    for part in re.findall(r"[^-]+-?|-", word):
        if draw.textlength(piece + part, font=font) <= width:
            piece += part
            continue
        if piece:
            out.append(piece)
            piece = ""
        for ch in part:
            if piece and draw.textlength(piece + ch, font=font) > width:
                out.append(piece)
                piece = ""
            piece += ch
    return [*out, piece] if piece else out


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` px; a word too wide for a line alone is cut (:func:`_pieces`), its
    pieces on lines of their own."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            *whole, last = _pieces(draw, word, font, width)
            if whole:  # a cut word starts a line of its own
                lines += ([line] if line else []) + whole
                line = last
                continue
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


def _label(metadata: Mapping[str, Any]) -> str:
    """``metadata["label"]`` when it is one of :data:`LABELS`, else :data:`AI_LABEL` (no free text as a label)."""
    label = metadata.get("label", AI_LABEL)
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    return label


def png_info(metadata: Mapping[str, Any]) -> PngImagePlugin.PngInfo:
    """PNG text chunks for ``metadata`` (JSON-serialisable) plus its label (``metadata["label"]``, default
    :data:`AI_LABEL`) as ``Description`` and ``label``."""
    meta = {**metadata, "label": _label(metadata)}
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Software", SOFTWARE)
    info.add_itxt("Description", meta["label"])
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

    ``metadata["label"]`` (:data:`AI_LABEL` when absent, or :data:`UPLOAD_LABEL`) goes into the chunks;
    ``caption=True`` adds the visible strip (``caption_text``, else that label). Small images are enlarged to
    ``min_side`` (bicubic; the metadata keeps the model's own size as ``model_size``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"model_size": list(image.size), **metadata, "label": _label(metadata)}
    out = enlarge(image, min_side) if min_side else image.convert("RGB")
    if caption:
        height = out.height
        out = add_caption(out, caption_text or meta["label"])
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


def _ellipsize(lines: list[str], limit: int) -> list[str]:
    """At most ``limit`` lines; a cut text ends in "…" so it never reads as complete."""
    if len(lines) <= limit:
        return lines
    return [*lines[: limit - 1], lines[limit - 1].rstrip(" ,.;") + "…"]


def labelled_grid(
    cells: Sequence[Sequence[Image.Image | Sequence[Image.Image] | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    cell: int = 128,
    footer: str | None = AI_LABEL,
    per_row: int | None = 4,
    max_width: int | None = 1400,
) -> Image.Image:
    """Rows × columns of faces with labels on the left and on top (paper 1's criminal-sketch figures).

    A cell is one face, a list of faces (``cell`` px each: several candidates per row and column), or ``None``,
    drawn as a grey box marked "n/a". A list wraps into lines of at most ``per_row`` faces (balanced: 8 → 2 × 4,
    6 → 2 × 3; ``None``: one line); every column is as wide as its widest cell. Columns that would make the
    picture wider than ``max_width`` px wrap into further bands below, each with its own column labels and row
    labels (``None``: one band), so many candidates × many descriptions stay a readable page rather than a
    strip. Column labels wrap to four lines and row labels to three (a longer text ends in "…"). ``footer``
    adds the label strip at the bottom.
    """
    if len(cells) != len(row_labels) or any(len(r) != len(col_labels) for r in cells):
        raise ValueError("cells must be len(row_labels) rows of len(col_labels) images")
    rows = [[[] if c is None else [c] if isinstance(c, Image.Image) else list(c) for c in r] for r in cells]
    counts = [max([len(r[j]) for r in rows] + [1]) for j in range(len(col_labels))]
    lines_of = [1 if not per_row else math.ceil(n / max(int(per_row), 1)) for n in counts]
    across = [math.ceil(n / k) for n, k in zip(counts, lines_of)]  # faces per line, balanced over the lines
    widths = [a * cell for a in across]
    gap = cell // 8 if max(counts, default=1) > 1 else 0  # sets of candidates: keep the columns apart
    row_gap = gap if max(lines_of, default=1) > 1 else 0  # and the rows, when a set takes several lines
    size = max(12, cell // 8)
    font = _font(size)
    line_h = size + max(3, size // 4)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(cell, 150)
    row_lines = [_ellipsize(_wrap(probe, t, font, label_w), 3) for t in row_labels]
    left = int(max([probe.textlength(x, font=font) for lines in row_lines for x in lines] + [0])) + 12
    col_lines = [_ellipsize(_wrap(probe, t, font, w - 6), 4) for t, w in zip(col_labels, widths)]
    # Bands: as many columns as fit in max_width (at least one), the rest below.
    bands: list[list[int]] = [[]]
    for j, w in enumerate(widths):
        band = bands[-1]
        used = left + sum(widths[k] + gap for k in band)
        if band and max_width and used + w > max_width:
            bands.append([])
        bands[-1].append(j)
    band_gap = max(gap, cell // 4) if len(bands) > 1 else 0
    layout = []  # per band: (columns, header height, height of each row)
    for band in bands:
        top = 8 + line_h * max(len(col_lines[j]) for j in band)
        heights = [max(lines_of[j] for j in band) * cell + row_gap] * len(rows)
        layout.append((band, top, heights))
    width = max(left + sum(widths[j] for j in band) + gap * (len(band) - 1) for band in bands)
    height = sum(top + sum(heights) for _, top, heights in layout) + band_gap * (len(bands) - 1)
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    y0 = 0
    for b, (band, top, heights) in enumerate(layout):
        if b:
            draw.line((0, y0 - band_gap // 2, width, y0 - band_gap // 2), fill=(200, 200, 200), width=1)
        xs, x = {}, left
        for j in band:
            xs[j] = x
            x += widths[j] + gap
            for k, line in enumerate(col_lines[j]):
                draw.text((xs[j] + 3, y0 + 4 + k * line_h), line, fill=(20, 20, 20), font=font)
        y = y0 + top
        for i, row in enumerate(rows):
            lines = row_lines[i]
            label_y = y + (heights[i] - row_gap) // 2 - len(lines) * line_h // 2
            for k, line in enumerate(lines):
                draw.text((6, label_y + k * line_h), line, fill=(20, 20, 20), font=font)
            for j in band:
                faces, xj = row[j], xs[j]
                if not faces:
                    draw.rectangle((xj + 2, y + 2, xj + cell - 3, y + cell - 3), fill=(225, 225, 225))
                    draw.text((xj + cell // 2 - 10, y + cell // 2 - 6), "n/a", fill=(90, 90, 90), font=font)
                for k, img in enumerate(faces):
                    face = img.convert("RGB").resize((cell - 4, cell - 4), Image.Resampling.BICUBIC)
                    grid.paste(face, (xj + (k % across[j]) * cell + 2, y + (k // across[j]) * cell + 2))
            y += heights[i]
        y0 = y + band_gap
    if not footer:
        return grid
    return add_caption(grid, footer, font_size=max(10, min(grid.width // 22, cell // 5)))  # wide grids: not huge


__all__ = [
    "AI_LABEL",
    "LABELS",
    "MIN_EXPORT_SIDE",
    "UPLOAD_LABEL",
    "add_caption",
    "enlarge",
    "labelled_grid",
    "png_info",
    "read_metadata",
    "save_png",
]
