"""SketchFace web app: describe, sketch, stylize and compare forensic face composites.

    python app.py                      # starter checkpoints from checkpoints/, http://127.0.0.1:7860
    python app.py --mvae owner/repo --psp ./my-psp --host 0.0.0.0 --port 7860

Models are chosen by CLI flags or environment variables (SKETCHFACE_MVAE, SKETCHFACE_CVAE, SKETCHFACE_PSP,
SKETCHFACE_CLASSIFIER, SKETCHFACE_INSTRUCT_PIX2PIX) naming a local folder or a Hugging Face repo id; see the
Models tab. UI only: one build_*_tab() per tab, events wired last in wire_events(); the models and all tensor
work live in ``sketchface`` (which never imports gradio).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import logging
import math
import os
import re
import shutil
import tempfile
import time
import types
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image, ImageOps, UnidentifiedImageError

from sketchface.attributes import (
    ATTRIBUTES,
    GROUPS,
    MAX_INSTRUCTION_CHARS,
    PRESETS,
    Attributes,
    describe,
    parse_description,
    pretty,
)
from sketchface.data.sketch import SKETCH_WORK_SIDE, downscale
from sketchface.export import (
    AI_LABEL,
    MIN_EXPORT_SIDE,
    UPLOAD_LABEL,
    labelled_grid,
    read_metadata,
    remove_caption,
    save_png,
)
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.registry import KINDS, Registry, add_cli_flags, attribute_agreement, has_sketch_input, split_sources
from sketchface.serving import limit_torch_threads

MAX_CANDIDATES = 16
MAX_COMPARE_CANDIDATES = 8  # per description and model in the Compare grid (paper 1 showed 8)
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes
MAX_COMPARE_DESCRIPTIONS = 8  # extra description lines (columns) beside paper 1's three criminals
MAX_UPLOAD_MB = 20
MAX_PIXELS = 40_000_000  # same limit as sketchface.data.sketch (checked before decoding)
#: Below the pixel limit the work is bounded by size: every decoded picture is shrunk to what its use needs before
#: anything heavy runs. Sketches, canvases and photos to sketch: the sketch code's working size (1024 px; the models
#: see 256). The Stylize tab's "Before" picture: 512 px (InstructPix2Pix's working size; the latent editor's
#: pictures are smaller still, see Handlers._stylize_side).
SKETCH_INPUT_SIDE = SKETCH_WORK_SIDE
STYLIZE_PREVIEW_SIDE = 512
#: A crowd (docs/crowd.md): describes running at once, one per core (each torch operation on one thread; see
#: main's --torch_threads), in a concurrency group of their own so that a long Compare never holds them up.
DESCRIBE_CONCURRENCY = max(2, os.cpu_count() or 1)
#: Events that may wait in the queue before Gradio answers "Queue is full": 50 visitors who open the page at once
#: queue two load events each, besides their clicks.
QUEUE_SIZE = 512
IP2P_RECHECK_S = 600  # InstructPix2Pix's availability is checked again after this long (it may probe the Hub)
UNDO_STEPS = 20  # Stylize: how many "Use this result" steps Undo can go back
IP2P_CHOICE = ("InstructPix2Pix (free-form)", "instruct-pix2pix")
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"]
#: What Pillow may decode from a browser: the formats of IMAGE_TYPES (phone cameras' MPO files open as JPEG). Pillow
#: can open others (EPS runs Ghostscript, for one); an uploaded file never reaches them, whatever its name says.
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
#: The shipped evaluation results (one folder per set) that the Compare tab offers, besides those named at start-up.
RESULTS_DIR = Path(__file__).resolve().parent / "docs" / "results"
DEFAULT_RESULTS = "eval-procedural"
YES, NO, UNKNOWN = "yes", "no", "?"
TRISTATE = [YES, NO, UNKNOWN]
OUT_DIR = Path(os.environ.get("SKETCHFACE_OUTPUT_DIR", Path(tempfile.gettempdir()) / "sketchface-app"))
#: Output PNGs live in one folder per day under OUT_DIR; folders older than this many days are deleted.
KEEP_DAYS = int(os.environ.get("SKETCHFACE_KEEP_DAYS", "2"))
MAX_RESULTS_CHARS = 60_000  # a results file shown on the Compare tab (the shipped ones are under 10,000)

log = logging.getLogger("sketchface.app")

NOTICE = (
    "**Every picture here is AI-generated.** Faces made from words, attributes or a drawing are labelled as "
    "composites, not photographs of any real person; pictures made from an uploaded image (photo or sketch) are "
    "labelled as derived from it, since it may show a real person. Downloads carry the model, the attributes or "
    "instruction, the seed and that label as PNG metadata (and, with the box below ticked, the label as a visible "
    "caption)."
)
#: How Generate combines the description and the attribute controls (shown under the description box).
READING_RULE = (
    "Generate reads the text again if you changed it; attributes you set by hand after the last reading win "
    "over the text."
)

CSS = """
.tri .wrap { gap: 2px !important; flex-wrap: nowrap !important; }
.tri label { padding: 2px 6px !important; font-size: 0.85em !important; }
.tri { min-width: 170px !important; }
.dl { max-height: 110px; }
/* History: whole faces with the round's label below each (not over the chin), a short strip, no empty box. */
#history .grid-wrap { min-height: 0 !important; max-height: 280px; padding-top: 30px; }
#history .thumbnail-item { aspect-ratio: auto !important; display: flex; flex-direction: column;
  height: auto !important; }
#history .thumbnail-item img { aspect-ratio: 1 / 1; height: auto !important; }
#history .caption-label { position: static !important; max-width: none !important; white-space: normal !important;
  border: 0 !important; border-radius: 0 !important; font-size: 11px !important; line-height: 1.25; opacity: 1; }
/* Phone (narrow) layout: on Describe, the results (Generate, candidates) come right after the words, before the
   40 attribute controls; tables scroll sideways instead of wrapping one letter per line. */
@media (max-width: 640px) {
  #describe-row { flex-direction: column !important; }
  #describe-words { display: contents !important; }
  #describe-results { order: 1; width: 100% !important; min-width: 0 !important; }
  #reading-rule, #describe-attributes { order: 2; }
  #parse-row { flex-direction: column !important; gap: 6px !important; }  /* the presets in one line, full width */
  /* four faces a row that fit (the gallery's own minimum of 100 px a column clips the fourth), no empty box */
  #candidates .grid-container, #sketch-gallery .grid-container { gap: 6px !important;
    grid-template-columns: repeat(4, minmax(0, 1fr)) !important; grid-auto-rows: auto !important; }
  #candidates .gallery-item, #sketch-gallery .gallery-item { height: auto !important; aspect-ratio: 1 / 1; }
  #candidates, #sketch-gallery, #candidates .grid-wrap, #sketch-gallery .grid-wrap, #candidates .gallery-container,
  #sketch-gallery .gallery-container { height: auto !important; min-height: 0 !important; max-height: none !important; }
  #candidates .caption-label, #sketch-gallery .caption-label { font-size: 10px !important;
    padding: 1px 3px !important; }
  #candidates .grid-wrap, #sketch-gallery .grid-wrap { padding-top: 30px !important; }
}
#models-table table, .model-card table { display: block; overflow-x: auto; max-width: 100%; }
#models-table td, #models-table th, .model-card td, .model-card th { overflow-wrap: normal; word-break: normal; }
#models-table td:nth-child(-n+2), #models-table th:nth-child(-n+2) { white-space: nowrap; }
#models-table td:nth-child(n+3) { min-width: 12em; }
#models-table td:last-child { min-width: 22em; }
/* Compare: the grid at its own size (up to the page's width), below the component's label, not squeezed into a
   fixed-height box with its column headings under the label and the buttons. */
#compare-grid, #compare-grid .image-container, #compare-grid .image-frame { height: auto !important; }
#compare-grid .image-frame { padding-top: 34px; }
#compare-grid img { width: auto !important; max-width: 100% !important; height: auto !important;
  max-height: none !important; }
/* Before/after: fill the frame whatever the image's own size (faces are 64 px), so the two compare at one scale. */
#before img, #after img { width: 100% !important; height: 100% !important; object-fit: contain; }
"""


# ---------------------------------------------------------------------------------------------------------------
# helpers (no tensor code: pipelines take and give PIL images)


def parse_seed(value: Any) -> int:
    """The seed box's value as an int; gr.Error for an empty box, a fraction or a number out of range."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise gr.Error("The seed box is empty: enter a whole number (0 draws the default candidates).")
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise gr.Error(f"The seed must be a whole number, got {_echo(value)}.") from None
        if not math.isfinite(number) or number != int(number):
            raise gr.Error(f"The seed must be a whole number, got {_echo(value)}.")
        seed = int(number)
    if not 0 <= seed <= MAX_SEED:
        raise gr.Error(f"The seed must be a whole number from 0 to {MAX_SEED:,}, got {_echo(value)}.")
    return seed


def run_pipeline(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a pipeline (or one of its methods) → its ``FaceOutput`` (faces and latents); its ValueErrors become
    gr.Error. Callers pass only the options the pipeline's ``capabilities`` declare (a description weight only to a
    pipeline that weighs descriptions, ...): nothing is filtered here, so an option it does not take is an error."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, KeyError, TypeError) as err:
        raise gr.Error(f"The model could not do this: {err}") from err


def _file_path(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("path") or value.get("name")
    return getattr(value, "path", None) or getattr(value, "name", None) or str(value)


def _echo(text: Any, limit: int = 40) -> str:
    """A short, quoted excerpt of user text for a gr.Error (the rest cut with …). HTML is escaped once, for every
    gr.Error, where it leaves the app (SketchFaceBlocks), so that Gradio's own messages are covered too."""
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def md_text(text: Any, limit: int = 1000) -> str:
    """User text made safe for a Markdown line: HTML escaped, Markdown's link and emphasis characters neutralised,
    newlines folded, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return re.sub(r"([\\`*_\[\]])", r"\\\1", html.escape(text, quote=False))


def _unreadable(what: str, err: BaseException) -> str:
    """What was wrong with a file that did not decode, in plain words (no paths, no library internals)."""
    if isinstance(err, Image.DecompressionBombError):
        why = f"it is too large to decode safely (over the {MAX_PIXELS // 1_000_000}-megapixel limit)"
    elif isinstance(err, UnidentifiedImageError):
        why = "it is not a PNG, JPEG, WebP, BMP, GIF or TIFF file (an SVG, or another kind of file?)"
    else:  # OSError "image file is truncated", SyntaxError/ValueError from a corrupt header, EOFError
        why = "the file is damaged or incomplete"
    return f"The {what} is not an image that can be read: {why}. Please upload a PNG, JPEG or WebP {what}."


def decode_image(source: Any, what: str = "image", *, max_side: int | None = None, uncaption: bool = False):
    """A file path or bytes → decoded PIL image, its cost bounded before any pixel is decoded.

    The header is read first: an empty file, more than MAX_PIXELS pixels or a format outside UPLOAD_FORMATS is
    refused at once. With ``max_side``, a JPEG is decoded at a reduced scale (libjpeg's DCT scaling: a 40-megapixel
    photo decodes to about 2.5 megapixels) and any image is then shrunk so its longer side is at most ``max_side``.
    ``uncaption``: drop the caption strip of one of our own exports (before shrinking, while its height is known).
    Every failure is a gr.Error in plain words without paths.
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise gr.Error(f"The {what} is an empty file (0 bytes). Please upload a PNG, JPEG or WebP {what}.")
            fp: Any = io.BytesIO(bytes(source))
        else:
            size_mb = os.path.getsize(source) / 1e6
            if size_mb > MAX_UPLOAD_MB:
                raise gr.Error(
                    f"The file is {size_mb:.1f} MB, over the {MAX_UPLOAD_MB} MB limit. Please upload a smaller image."
                )
            if size_mb == 0:
                raise gr.Error(f"The {what} is an empty file (0 bytes). Please upload a PNG, JPEG or WebP {what}.")
            fp = source
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            img = Image.open(fp, formats=UPLOAD_FORMATS)  # the header only: no pixels decoded yet
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise gr.Error(
                f"The image is {w}×{h} ({w * h / 1e6:.0f} megapixels), over the {MAX_PIXELS // 1_000_000}-megapixel "
                "limit. Please resize it (about 1000 × 1000 pixels is plenty) and try again."
            )
        if max_side and max(w, h) > max_side and img.format in ("JPEG", "MPO"):
            f = max_side / max(w, h)
            img.draft(img.mode if img.mode in ("RGB", "L") else None, (math.ceil(w * f), math.ceil(h * f)))
        img.load()
        if uncaption:
            img = remove_caption(img)
        if max_side:
            img = downscale(img, max_side)
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: phone photos; after shrinking, so it is cheap
            img = ImageOps.exif_transpose(img)
    except gr.Error:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise gr.Error(_unreadable(what, err)) from err
    return img


def open_image(value: Any, what: str = "image", *, max_side: int | None = None, uncaption: bool = False) -> Image.Image:
    """An uploaded file → decoded PIL image (see decode_image); gr.Error when there is none or it cannot be used."""
    path = _file_path(value)
    if not path:
        raise gr.Error(f"Please upload {_a(what)} first (PNG, JPEG or WebP).")
    return decode_image(path, what, max_side=max_side, uncaption=uncaption)


def _canvas_image(self: gr.ImageEditor, file: Any, flatten_on_white: bool = False) -> Any:
    """gr.ImageEditor.convert_and_format_image for the drawing canvas: what it is sent is decoded as every upload is
    (decode_image: header checked first, shrunk to the sketch code's working size, a plain gr.Error for an empty,
    truncated, SVG or oversized file), where Gradio's own decodes the full picture and its errors quote temp paths."""
    if file is None:
        return None
    source = file if isinstance(file, (bytes, bytearray, memoryview)) else getattr(file, "path", None)
    if not source:
        raise gr.Error("The drawing is not an image that can be read. Please draw again, or upload it instead.")
    img = decode_image(source, "drawing", max_side=SKETCH_INPUT_SIDE)
    # as gr.ImageEditor: the canvas exports black under full transparency, so flatten on white, not on black
    if flatten_on_white and self.image_mode not in ("RGBA", "LA", "PA") and "A" in img.getbands():
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
    img = img.convert(self.image_mode) if self.image_mode else img
    if self.type == "pil":
        return img
    from gradio import image_utils

    return image_utils.format_image(img, self.type, self.GRADIO_CACHE, format="png", name="image")


def drawing_canvas(**kwargs: Any) -> gr.Sketchpad:
    """A gr.Sketchpad whose input (composite, background and layers: is_page_drawing reads the layers) is decoded
    by _canvas_image. (Set on the instance: a gr.Sketchpad subclass would make Gradio write an app.pyi beside app.py
    at import, which fails on a read-only Space.)"""
    canvas = gr.Sketchpad(**kwargs)
    canvas.convert_and_format_image = types.MethodType(_canvas_image, canvas)
    return canvas


def _a(noun: str) -> str:
    """``noun`` with its indefinite article ("an image", "a face image")."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _sentence(text: str) -> str:
    """``text`` ending in one full stop (none added after ".", "!", "?" or "…")."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, "…" marking a cut; no final full stop."""
    text = text.strip().rstrip(".")
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;")
    return cut + "…"


def _digest(path: str | None) -> str | None:
    """SHA-256 of a file's bytes (``None`` without a file)."""
    if not path:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _provenance(path: str) -> dict[str, str]:
    """What the Stylize tab remembers about a face this server sent it: the file's digest and its label (read
    from the file, which this server wrote). A face whose bytes differ is taken as a visitor's upload."""
    return {"sha": _digest(path), "label": read_metadata(path).get("label", AI_LABEL)}


def _label_for(path: str | None, origin: dict | None) -> str:
    """The label of a result made from the file at ``path``: the label of the face this server sent (``origin``)
    when the bytes are that face's, else :data:`UPLOAD_LABEL` (a visitor's file may show a real person, and its
    own metadata is not trusted)."""
    if origin and origin.get("sha") and origin.get("sha") == _digest(path):
        return origin.get("label", UPLOAD_LABEL)
    return UPLOAD_LABEL


def strip_front_matter(card: str) -> str:
    """A model card without its YAML front matter (``---`` … ``---`` at the top: Hub metadata, which Markdown
    would render as a giant heading)."""
    match = re.match(r"\A\ufeff?---[ \t]*\r?\n(?:.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", card, flags=re.DOTALL)
    return card[match.end() :].lstrip("\r\n") if match else card


def is_page_drawing(canvas: Any) -> bool:
    """Whether a canvas value is a drawing made with the page's pen: a blank background and layers holding only
    the fixed black pen's strokes. An API caller can send any picture as the canvas; that counts as an upload
    (its faces are labelled :data:`UPLOAD_LABEL`)."""
    if not isinstance(canvas, dict):
        return False
    background, layers = canvas.get("background"), canvas.get("layers") or []
    if background is not None and (
        not isinstance(background, Image.Image) or any(lo != hi for lo, hi in background.convert("RGBA").getextrema())
    ):
        return False
    if not layers or not all(isinstance(layer, Image.Image) for layer in layers):
        return False
    # the pen is black (color_mode="fixed"); anti-aliased edges differ in alpha only
    return all(max(hi for _lo, hi in layer.convert("RGBA").getextrema()[:3]) <= 64 for layer in layers)


def is_colour_photo(img: Image.Image) -> bool:
    """Whether an upload is a colour photograph rather than a drawing: a clear share of its pixels is saturated
    (a scanned or photographed pencil drawing is grey, a coloured-pen sketch has few coloured pixels)."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return False
    small = img.convert("RGB")
    small.thumbnail((128, 128))
    saturation = small.convert("HSV").getchannel("S")
    return sum(saturation.point(lambda v: 255 if v > 60 else 0).histogram()[255:]) > 0.25 * small.width * small.height


def _tristate_value(v: str | None) -> bool | None:
    return True if v == YES else False if v == NO else None


def _radio_value(v: bool | None) -> str:
    return YES if v is True else NO if v is False else UNKNOWN


_EXPORT_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="png-export")  # PIL encodes without the GIL


def prune_outputs(root: Path = OUT_DIR, keep_days: int = KEEP_DAYS, today: date | None = None) -> list[str]:
    """Delete the day folders (``YYYYMMDD``) under ``root`` that are older than ``keep_days``; return their names.

    Only folders named like a date are touched, so pointing SKETCHFACE_OUTPUT_DIR at a folder with other
    content is safe. Files of the current and the previous ``keep_days`` days stay (an open session's history
    keeps working across midnight).
    """
    cutoff = (today or date.today()) - timedelta(days=max(keep_days, 0))
    removed = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        if not (folder.is_dir() and re.fullmatch(r"\d{8}", folder.name)):
            continue
        try:
            day = date(int(folder.name[:4]), int(folder.name[4:6]), int(folder.name[6:]))
        except ValueError:
            continue
        if day < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


_last_prune = [0.0]


def _export(
    images: list[Image.Image], meta: list[dict[str, Any]], caption: bool, prefix: str, *, full: bool = True
) -> list[str]:
    """PNG files with metadata. ``full=False`` (galleries): the model's own size, no strip, small and fast to
    serve; ``full=True`` (downloads): enlarged to 256 px, with the visible caption strip when ``caption``."""
    if time.monotonic() - _last_prune[0] > 3600:  # at most hourly: a long-running Space does not fill its disk
        _last_prune[0] = time.monotonic()
        prune_outputs()
    folder = OUT_DIR / time.strftime("%Y%m%d") / uuid.uuid4().hex[:10]
    kwargs = {"caption": caption} if full else {"caption": False, "min_side": 0}
    jobs = [
        _EXPORT_POOL.submit(save_png, img, folder, f"{prefix}-{i + 1}", m, **kwargs)
        for i, (img, m) in enumerate(zip(images, meta))
    ]
    return [str(job.result()) for job in jobs]


def download_copy(path: str | None, caption: bool) -> str | None:
    """A gallery file re-exported for download: enlarged, same metadata and label, the label as a caption strip
    if asked. ``path`` is a file this server wrote (its label is the server's own, never a visitor's)."""
    if not path:
        return None
    with Image.open(path) as img:
        img.load()
    meta = {k: v for k, v in read_metadata(path).items() if k not in ("model_size", "caption_strip_px")}
    return _export([img], [meta], caption, Path(path).stem)[0]


def _results_file(path: Path) -> Path | None:
    """The file a results folder is shown by: results.md, else results.json, else its first .md or .json."""
    if path.is_file():
        return path if path.suffix in (".md", ".json") else None
    if not path.is_dir():
        return None
    for name in ("results.md", "results.json"):
        if (path / name).is_file():
            return path / name
    return next(iter(sorted(path.glob("*.md")) + sorted(path.glob("*.json"))), None)


def results_sets(given: list[str] | tuple[str, ...] = (), shipped: Path | None = RESULTS_DIR) -> dict[str, Path]:
    """Evaluation results the Compare tab may show, by name → resolved file: the folders (or results files)
    ``given`` at start-up (``--results``, $SKETCHFACE_RESULTS), then every shipped ``docs/results/*`` folder
    (``shipped=None``: none), each file once.

    This is an allow-list made once, at start-up: the browser picks a name, and no path it sends is ever opened.
    A name is the folder's name (a second one with the same name gets " (2)"); a given path that holds no
    results is reported in the log and left out.
    """
    sets: dict[str, Path] = {}

    def add(name: str, file: Path) -> None:
        if file.resolve() in sets.values():
            return
        unique, i = name, 2
        while unique in sets:
            unique, i = f"{name} ({i})", i + 1
        sets[unique] = file.resolve()

    for item in given:
        path = Path(item).expanduser()
        file = _results_file(path)
        if file is None:
            log.warning("--results %s: no results.md / results.json there; left out of the Compare tab", item)
            continue
        add(path.name if path.is_dir() else path.parent.name or path.stem, file)
    if shipped is not None and shipped.is_dir():
        for folder in sorted(p for p in shipped.iterdir() if p.is_dir()):
            file = _results_file(folder)
            if file is not None:
                add(folder.name, file)
    return sets


HISTORY_SHOWN = 12  # rounds in the history strip (older ones stay restorable through the API)


def _history_offset(state: dict) -> int:
    return max(0, len(state.get("rounds", [])) - HISTORY_SHOWN)


def _entry_or_error(registry: Registry, key: str | None, task: str, what: str):
    entry = registry.get(key) if key else None
    if entry is None:
        loaded = registry.loaded(task)
        entry = loaded[0] if loaded else None
    if entry is None or not entry.ok:
        reasons = "; ".join(f"{e.key}: {e.reason}" for e in registry.of_task(task)) or "none configured"
        raise gr.Error(f"No {what} model is loaded ({reasons}). See the Models tab for how to load one.")
    return entry


def _availability_md(registry: Registry, task: str, what: str) -> str:
    entries = registry.of_task(task)
    if not entries:
        kinds = [k for k in KINDS.values() if k.task == task]
        how = ", ".join(f"`{k.flag}` / `{k.env}`" for k in kinds)
        return f"⚠ No {what} model is configured. Start the app with {how} naming a local folder or a Hub repo."
    lines = []
    for e in entries:
        mark = "✓" if e.ok else "⚠"
        lines.append(f"{mark} `{e.key}` — {e.status}" + ("" if e.ok else f": {e.reason}"))
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# errors fit for a public page and a readable log

_SERVER_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.@+~-]+/)+[\w.@+~-]*")
MAX_ERROR_CHARS = 1000


def public_message(message: Any) -> str:
    """An error message as a browser may see it: server paths replaced by "[path]", at most MAX_ERROR_CHARS, HTML
    escaped (Gradio renders a gr.Error's message as HTML, and messages quote what the user typed)."""
    text = _SERVER_PATH.sub("[path]", str(message))
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return html.escape(text, quote=False)


def _log_line(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())  # one line: a message cannot forge log lines
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _endpoint(block_fn: Any) -> str:
    name = getattr(block_fn, "api_name", None) or getattr(block_fn, "name", None) or "event"
    return name if str(name).startswith("/") else f"/{name}"


def _user_error(block_fn: Any, err: gr.Error) -> None:
    """``err``, a gr.Error raised on purpose (bad input, said plainly), made public and logged as one line: Gradio
    prints no traceback for it (print_exception=False); those are kept for real failures."""
    log.info("user error in %s: %s", _endpoint(block_fn), _log_line(err.message))
    err.message = public_message(err.message)
    err.print_exception = False


def _label(block: Any) -> str:
    return str(getattr(block, "label", None) or type(block).__name__)


def _input_error(block_fn: Any, err: Exception) -> gr.Error:
    """A failure while Gradio read the inputs (a file that is no image, a value of the wrong kind) → a gr.Error in
    plain words that names the input, without Gradio's internals (temp paths, the raw value)."""
    index = re.search(r"component at index (\d+)", str(err))
    inputs = list(getattr(block_fn, "inputs", []) or [])
    cause = err.__cause__ or err
    if index and int(index.group(1)) < len(inputs):
        where = f"The input {_label(inputs[int(index.group(1))])!r} could not be read"
    else:
        where = "An input could not be read"
    if isinstance(cause, (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, EOFError)):
        why = _unreadable("image", cause).split(": ", 1)[1]
        message = f"{where}: {why}"
    else:
        message = f"{where}: it is not a value of the kind this input takes (see “Use via API” at the page's foot)."
    log.info("user error in %s: %s (%s: %s)", _endpoint(block_fn), message, type(cause).__name__, _log_line(cause))
    return gr.Error(message, print_exception=False)


def _check_choices(block_fn: Any, inputs: list[Any], state: Any) -> None:
    """Radio and dropdown values must be among their choices; Gradio's own check quotes the raw value (which may be
    4,000 characters or a script), this one lists the choices instead."""
    for block, value in zip(block_fn.inputs, inputs):
        if state is not None and block._id in state:
            block = state[block._id]
        if not isinstance(block, (gr.Radio, gr.Dropdown)) or value is None:
            continue
        if getattr(block, "allow_custom_value", False) or getattr(block, "multiselect", False):
            continue
        choices = [v for _, v in block.choices]
        if value not in choices:
            listed = ", ".join(str(c) for c in choices[:20]) + (", …" if len(choices) > 20 else "")
            raise gr.Error(f"{_label(block)!r} must be one of: {listed or 'nothing yet'}.")


class SketchFaceBlocks(gr.Blocks):
    """gr.Blocks whose errors are safe to show and easy to read in the log.

    * User errors (a gr.Error raised on purpose, or an input Gradio could not read) reach the browser in plain
      words, HTML-escaped and without server paths, and are logged as one line each.
    * Real failures (any other exception while running an event) are logged with the full traceback; the browser
      is told that something failed on the server, never the exception's text (which may hold paths).
    """

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        try:
            if len(inputs) < len(block_fn.inputs):  # Gradio's message would echo every value received
                raise gr.Error(f"This step takes {len(block_fn.inputs)} inputs; {len(inputs)} were sent.")
            _check_choices(block_fn, inputs, state)
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as err:
            _user_error(block_fn, err)
            raise
        except Exception as err:  # noqa: BLE001 - input that could not be read is the user's, not a server fault
            raise _input_error(block_fn, err) from err

    async def call_function(self, block_fn, *args, **kwargs):
        try:
            return await super().call_function(block_fn, *args, **kwargs)
        except gr.Error as err:
            _user_error(self.fns[block_fn] if isinstance(block_fn, int) else block_fn, err)
            raise
        except (StopIteration, StopAsyncIteration):
            raise
        except Exception as err:  # noqa: BLE001 - a real failure: the traceback to the log, not to the browser
            raise self._failure(block_fn, err) from err

    async def postprocess_data(self, block_fn, predictions, state):
        try:
            return await super().postprocess_data(block_fn, predictions, state)
        except gr.Error as err:
            _user_error(block_fn, err)
            raise
        except Exception as err:  # noqa: BLE001 - as in call_function
            raise self._failure(block_fn, err) from err

    def _failure(self, block_fn: Any, err: Exception) -> gr.Error:
        block_fn = self.fns[block_fn] if isinstance(block_fn, int) else block_fn
        log.error("failure in %s: %s: %s", _endpoint(block_fn), type(err).__name__, _log_line(err), exc_info=err)
        return gr.Error(
            f"Something went wrong on the server ({type(err).__name__}); it has been logged. Please try again, and "
            "report it if it keeps happening.",
            print_exception=False,
        )


# ---------------------------------------------------------------------------------------------------------------
# handlers


class Handlers:
    """Every event's function; holds the registry (loaded models) and the lazily built InstructPix2Pix backend."""

    def __init__(self, registry: Registry, results: str | list[str] | None = None):
        self.registry = registry
        given = split_sources(results) or split_sources(os.environ.get("SKETCHFACE_RESULTS"))
        #: The only files the Compare tab's metrics can show, by name; nothing a browser sends is used as a path.
        self.results = results_sets(given)
        self._results_given = len(results_sets(given, shipped=None))  # listed first
        self._ip2p = None
        self._ip2p_checked: tuple[float, str, str] | None = None  # (when, state, why): see ip2p_status

    # -- Describe ----------------------------------------------------------------------------------------------
    def parse(self, text: str, *args):
        """text[, the 40 attribute radios, the last reading] → the 40 radios, the "Understood" line, the new reading.

        Applies :data:`READING_RULE` (see :meth:`_read`); called with the text alone (the API's short form), the
        text fills the controls."""
        attrs, reading = self._read(text, *self._radios_and_reading(args))
        return [*(reading["values"][name] for name in ATTRIBUTES), reading["md"], reading]

    @staticmethod
    def _radios_and_reading(args: tuple) -> tuple[list[str], dict | None]:
        radios = list(args[: len(ATTRIBUTES)])
        return radios, (args[len(ATTRIBUTES)] if len(args) > len(ATTRIBUTES) else None)

    @staticmethod
    def show_reading(reading: dict):
        """A new reading on the page: the 40 radios and the "Understood" line as it left them (after Understand,
        Enter, a preset or Generate: what was actually used), and the reading itself, kept for the next one."""
        return [*(reading["values"][name] for name in ATTRIBUTES), reading["md"], reading]

    def _read(self, text: str, radios: list[str], reading: dict | None) -> tuple[Attributes, dict]:
        """What to generate from, by :data:`READING_RULE`; returns (attributes, the new reading).

        ``reading`` is the last reading: ``{"text": the text read, "values": the 40 radio values it left on
        screen, "md": its "Understood" line}``. When the text is the one last read, the radios on screen are used
        as they are. When it changed, the text is read again and every radio set to yes or no since the last
        reading (now differing from what that reading left) wins over it; a radio reset to "?" leaves the
        attribute to the new text. ``None`` (nothing read yet on the page, and always for an API call): every
        radio set to yes or no wins over the text."""
        reading = reading or {}
        last = reading.get("values") or {}
        shown = {name: (v if v in TRISTATE else UNKNOWN) for name, v in zip(ATTRIBUTES, radios)}
        shown.update({name: UNKNOWN for name in ATTRIBUTES[len(radios) :]})
        try:
            result = parse_description(text or "")
        except ValueError as err:
            raise gr.Error(str(err)) from err
        if (text or "").strip() == (reading.get("text") or "").strip():
            attrs = Attributes({name: _tristate_value(v) for name, v in shown.items()})
        else:
            by_hand = {
                name: _tristate_value(v) for name, v in shown.items() if v != UNKNOWN and v != last.get(name, UNKNOWN)
            }
            attrs = result.attributes.merge(by_hand)
        values = {name: _radio_value(attrs[name]) for name in ATTRIBUTES}
        return attrs, {"text": text or "", "values": values, "md": self._parse_md(result, attrs)}

    @staticmethod
    def _parse_md(result: Any, attrs: Attributes | None = None) -> str:
        """The "Understood" line: what is used (``attrs``, default the text's reading), what was set by hand over
        the text, the words not understood and the text's own contradictions."""
        attrs = result.attributes if attrs is None else attrs
        parts = [f"**Understood:** {describe(attrs)}" if attrs.known else "**Understood:** nothing yet."]
        by_hand = [name for name in ATTRIBUTES if attrs[name] != result.attributes[name]]
        if by_hand:
            parts.append(
                "**Set by hand, over the text:** "
                + ", ".join(f"{pretty(name)} = {_radio_value(attrs[name])}" for name in by_hand)
            )
        if result.unknown_words:
            # a code span shows its text as is (no HTML); only a backtick could end it early
            parts.append("**Not understood:** " + ", ".join(f"`{w.replace('`', '')}`" for w in result.unknown_words))
        for note in getattr(result, "conflicts", ()):
            parts.append(f"_{md_text(note)}_")  # quotes the user's phrases
        return "\n\n".join(parts)

    def preset(self, name: str):
        """A criminal preset: its text, and every control as that text alone says (a preset starts afresh)."""
        preset = PRESETS.get(name)
        if preset is None:
            raise gr.Error(f"Unknown preset {_echo(name)}; choose one of {', '.join(PRESETS)}.")
        return [preset.text, *self.parse(preset.text)]

    def _captions(self, images: list[Image.Image], attrs: Attributes | None) -> list[str]:
        clf = self.registry.loaded("classifier")
        caps = [f"#{i + 1}" for i in range(len(images))]
        if clf and attrs is not None and attrs.known:
            try:
                agreement = attribute_agreement(clf[0].pipeline, images, attrs)
            except Exception:  # noqa: BLE001 - the check is a bonus; never fail a generation over it
                return caps
            caps = [f"#{i + 1} · classifier sees {m}/{n}" for i, (m, n) in enumerate(agreement)]
        return caps

    def _new_round(
        self, state: dict, label: str, out, meta, caption: bool, attrs: Attributes | None, prefix: str
    ) -> dict:
        """A new round of candidates from a pipeline's ``FaceOutput`` ``out``: its faces and, for more like this
        and crossing, their latents (row i for candidate i + 1; ``None`` when the pipeline has none)."""
        images = out.images
        paths = _export(images, meta, caption, prefix, full=False)
        rnd = {
            "label": label,
            "images": images,
            "latents": out.latents,
            "paths": paths,
            "meta": meta,
            "captions": self._captions(images, attrs),
        }
        state = {"rounds": [*state.get("rounds", []), rnd], "current": len(state.get("rounds", []))}
        return state

    def _round_outputs(self, state: dict, status: str):
        """Outputs of a round: the history strip is refreshed by a chained event (see history_view), so an API
        call returns (and a client downloads) only this round's candidates."""
        rnd = state["rounds"][state["current"]]
        gallery = list(zip(rnd["paths"], rnd["captions"]))
        status = f"**Round {state['current'] + 1}** · {status}"
        return gallery, state, status, 0, 0, "Pick a candidate (click it) to continue.", None

    def history_view(self, state: dict):
        """The history strip, and the candidates' preview closed (``selected_index=None``): a new round resets the
        selection to none, and an open preview would show the old index in the new round as if it were picked."""
        first = _history_offset(state)
        rounds = state.get("rounds", [])[first:]
        strip = [(r["paths"][0], f"Round {first + i + 1}: {r['label']}") for i, r in enumerate(rounds)]
        return strip, gr.Gallery(selected_index=None)

    def generate(self, text, *args):
        """text, the 40 attribute radios, model, n, seed, caption, state[, description weight[, last reading]].

        The attributes follow :data:`READING_RULE` (:meth:`_read`); the new reading is returned last, and the
        page then shows it (radios and "Understood" line: what was actually used)."""
        radios, (model, n, seed, caption, state, *rest) = list(args[: len(ATTRIBUTES)]), args[len(ATTRIBUTES) :]
        weight = float(rest[0]) if rest and rest[0] is not None else DESCRIPTION_WEIGHT
        attrs, reading = self._read(text, radios, rest[1] if len(rest) > 1 else None)
        if not attrs.known:
            raise gr.Error(
                "Nothing to go on: type a description (e.g. 'young man with glasses') or set at least one attribute "
                "to yes or no, or pick a criminal preset."
            )
        entry = _entry_or_error(self.registry, model, "attributes", "attribute-to-face")
        n, seed = int(n), parse_seed(seed)
        t0 = time.perf_counter()
        pipe = entry.pipeline
        # what it takes to draw the same faces again: a pipeline that weighs the description (an MVAE) gets the weight
        weighted = {"description_weight": weight} if pipe.capabilities.weighs_description else {}
        out = run_pipeline(pipe, attrs, num_images=n, seed=seed, **weighted)
        images = out.images
        ms = (time.perf_counter() - t0) * 1000
        known = {k: bool(v) for k, v in attrs.known.items()}
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "describe",
                "attributes": known,
                "description": text,
                "seed": seed,
                **weighted,
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        state = self._new_round(state or {}, _short(describe(attrs)), out, meta, caption, attrs, "candidate")
        status = f"{len(images)} candidates from `{entry.key}` (seed {seed}) in {ms:.0f} ms: {describe(attrs)}"
        return (*self._round_outputs(state, status), reading)

    def select(self, state: dict, a: float | None, caption: bool, evt: gr.SelectData):
        b = a
        a = int(evt.index) + 1
        return a, b, self._selection_md(state, a, b), download_copy(self._selected_path(state, a), caption)

    @staticmethod
    def _selected_path(state: dict, idx: int | None) -> str | None:
        if not state or not state.get("rounds") or not idx:
            return None
        paths = state["rounds"][state["current"]]["paths"]
        return paths[int(idx) - 1] if 1 <= int(idx) <= len(paths) else None

    @staticmethod
    def _selection_md(state: dict, a: int | None, b: int | None) -> str:
        if not a:
            return "Pick a candidate (click it) to continue."
        text = f"**Selected: #{int(a)}.** More like this makes variations of it; Send to Stylize edits it."
        if b and int(b) != int(a):
            text += f" Cross with… blends #{int(a)} with your previous pick #{int(b)}."
        else:
            text += " To cross two faces, click a second candidate."
        return text

    def _pick(self, state: dict, idx: Any, what: str = "candidate") -> tuple[Image.Image, dict]:
        """The picked candidate's face and metadata (gr.Error when nothing valid is picked)."""
        if not state or not state.get("rounds"):
            raise gr.Error("There are no candidates yet: generate some first.")
        rnd = state["rounds"][state["current"]]
        try:
            i = int(idx)
        except (TypeError, ValueError):
            i = 0
        if i == 0:
            raise gr.Error(f"Pick a {what} first (click one in the gallery).")
        if not 1 <= i <= len(rnd["images"]):
            raise gr.Error(f"There is no candidate #{i}: this round has {len(rnd['images'])}.")
        return rnd["images"][i - 1], rnd["meta"][i - 1]

    @staticmethod
    def _subject(state: dict, idx: Any, image: Image.Image, meta: dict, entry) -> Any:
        """What to breed from: the picked candidate's own latent when ``entry``'s model drew it (so strength 0 is the
        face itself), else its image, which the pipeline reads with its image encoder (or refuses, saying why)."""
        latents = state["rounds"][state["current"]].get("latents")
        if latents is not None and meta.get("model") == entry.key:
            return latents[int(idx) - 1]
        return image

    def more_like_this(self, a, strength, n, seed, model, caption, state):
        image, parent = self._pick(state, a)
        entry = _entry_or_error(self.registry, model, "attributes", "attribute-to-face")
        pipe = entry.pipeline
        if not callable(getattr(pipe, "variations", None)):
            raise gr.Error(f"{entry.key} cannot make variations (its pipeline has no variations()).")
        n, seed = int(n), parse_seed(seed)
        subject = self._subject(state, a, image, parent, entry)
        out = run_pipeline(pipe.variations, subject, num_images=n, seed=seed, strength=float(strength))
        images = out.images
        attrs_known = parent.get("attributes") or {}
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "variations",
                "parent": parent,
                "strength": float(strength),
                "attributes": attrs_known,
                "seed": seed,
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        label = f"like #{int(a)} of round {state['current'] + 1}"
        state = self._new_round(state, label, out, meta, caption, Attributes(attrs_known), "variation")
        return self._round_outputs(
            state, f"{len(images)} variations of #{int(a)} (strength {float(strength):.2f}, seed {seed})."
        )

    def cross(self, a, b, n, seed, model, caption, state):
        img_a, meta_a = self._pick(state, a)
        if not b or (a is not None and int(b) == int(a)):
            raise gr.Error("Cross with… needs two different picks: click one candidate, then another.")
        img_b, meta_b = self._pick(state, b)
        entry = _entry_or_error(self.registry, model, "attributes", "attribute-to-face")
        pipe = entry.pipeline
        if not callable(getattr(pipe, "cross", None)):
            raise gr.Error(f"{entry.key} cannot cross two faces (its pipeline has no cross()).")
        n, seed = int(n), parse_seed(seed)
        subject_a = self._subject(state, a, img_a, meta_a, entry)
        subject_b = self._subject(state, b, img_b, meta_b, entry)
        out = run_pipeline(pipe.cross, subject_a, subject_b, num_images=n)  # deterministic: the seed is recorded
        images = out.images
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "cross",
                "parents": [meta_a, meta_b],
                "seed": seed,
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        state = self._new_round(state, f"#{int(a)} × #{int(b)}", out, meta, caption, None, "cross")
        return self._round_outputs(state, f"{len(images)} blends of #{int(a)} and #{int(b)} (seed {seed}).")

    def restore_round(self, round_no, state):
        if not state or not state.get("rounds"):
            raise gr.Error("There is no history yet: generate some candidates first.")
        i = int(round_no or 0) - 1
        if not 0 <= i < len(state["rounds"]):
            raise gr.Error(f"There is no round {int(round_no or 0)}; rounds go from 1 to {len(state['rounds'])}.")
        state = {**state, "current": i}
        return self._round_outputs(state, _sentence(f"Back to round {i + 1}: {state['rounds'][i]['label']}"))

    def history_select(self, state: dict, evt: gr.SelectData):
        return _history_offset(state) + int(evt.index) + 1

    def refresh_downloads(self, state, a, paths, pick, caption):
        """The Describe and Sketch downloads again, after the caption box was ticked or unticked."""
        i = int(pick or 0)
        sketch = paths[i - 1] if paths and 1 <= i <= len(paths) else None
        return download_copy(self._selected_path(state, a), caption), download_copy(sketch, caption)

    def send_to_stylize(self, a, state, caption=True):
        """The selected candidate → the Stylize tab (as its download copy: label in the metadata, caption strip
        when ticked), with its provenance (see :meth:`stylize`) and an empty undo trail."""
        self._pick(state, a)
        return self._to_stylize(self._selected_path(state, a), caption)

    def _to_stylize(self, path: str, caption: bool):
        copy = download_copy(path, caption)
        return copy, self.stylize_load(copy), gr.Tabs(selected="stylize"), _provenance(copy), []

    # -- Sketch ------------------------------------------------------------------------------------------------
    def _sketch_input(self, canvas: Any, upload: Any, kind: str) -> tuple[Image.Image, str]:
        from sketchface.data.sketch import SketchError, normalize_user_sketch, photo_to_sketch

        try:
            if upload is not None:
                # Shrunk on decoding to the sketch code's working size: a 40-megapixel photo costs a 1024-px one.
                img = open_image(upload, "sketch or photo", max_side=SKETCH_INPUT_SIDE)
                looks_like_photo = kind != "photo" and is_colour_photo(img)
                if kind == "photo" or looks_like_photo:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        sketch = normalize_user_sketch(photo_to_sketch(img))
                    how = "photo → sketch (paper 2 preprocessing)"
                    if looks_like_photo:  # said, never silent: the upload was marked as a sketch
                        how += ", because the upload is a colour photo, not a drawing"
                    if any("no face found" in str(w.message) for w in caught):
                        how += "; no face was detected, so the whole photo was sketched"
                    return sketch, how
                return normalize_user_sketch(img), "uploaded sketch"
            if canvas is None:
                raise gr.Error("The canvas is blank and nothing was uploaded. Please draw a face or upload a sketch.")
            return normalize_user_sketch(canvas), "drawn sketch"
        except SketchError as err:
            raise gr.Error(str(err)) from err

    def sketch_preview(self, canvas, upload, kind):
        sketch, how = self._sketch_input(canvas, upload, kind)
        return sketch, f"What the model sees ({how}, {sketch.width}×{sketch.height})."

    def sketch_generate(self, canvas, upload, kind, model, text, n, seed, mix, caption, weight=None):
        sketch, how = self._sketch_input(canvas, upload, kind)
        entry = self.registry.get(model) if model else None
        if entry is None:
            options = self.sketch_models()
            entry = self.registry.get(options[0]) if options else None
        if entry is None or not entry.ok:
            reasons = "; ".join(f"{e.key}: {e.reason}" for e in self.registry.of_task("sketch")) or "none configured"
            raise gr.Error(f"No sketch model is loaded ({reasons}). See the Models tab.")
        try:
            attrs = parse_description(text).attributes if (text or "").strip() else Attributes()
        except ValueError as err:
            raise gr.Error(str(err)) from err
        n, seed, pipe = int(n), parse_seed(seed), entry.pipeline
        caps = pipe.capabilities
        weight = DESCRIPTION_WEIGHT if weight is None else float(weight)
        weighted = {"description_weight": weight} if caps.weighs_description else {}
        t0 = time.perf_counter()
        unused: list[str] = []  # stated attributes this model cannot show (said in the status, never dropped silently)
        if entry.task == "sketch":
            out = run_pipeline(pipe, sketch, num_images=n, seed=seed, mix_strength=float(mix))
            images = out.images
            editable = set(caps.editable_attributes)
            changes = {k: bool(v) for k, v in attrs.known.items() if k in editable}
            unused = [k for k in attrs.known if k not in editable]
            if changes:  # each candidate's own latent, moved along the fitted directions
                rows = range(len(images))
                images = [run_pipeline(pipe.edit, out.latents[i : i + 1], changes).images[0] for i in rows]
        else:  # an MVAE with a sketch expert: attributes ⊗ sketch, the description weighted
            images = run_pipeline(pipe, attrs, sketch=sketch, num_images=n, seed=seed, **weighted).images
        ms = (time.perf_counter() - t0) * 1000
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "sketch",
                "sketch": how,
                # a drawing made here is a composite; an uploaded sketch or photo may be of a real person
                "label": AI_LABEL if upload is None and is_page_drawing(canvas) else UPLOAD_LABEL,
                "attributes": {k: bool(v) for k, v in attrs.known.items()},
                "seed": seed,
                "mix_strength": float(mix),
                **(weighted if attrs.known else {}),
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        paths = _export(images, meta, caption, "sketch-candidate", full=False)
        gallery = list(zip(paths, self._captions(images, attrs if attrs.known else None)))
        status = f"{len(images)} faces from the {how} with `{entry.key}` (seed {seed}) in {ms:.0f} ms."
        if unused:
            said = [pretty(k) for k in unused if attrs.known[k]] or [f"no {pretty(k).lower()}" for k in unused[:3]]
            more = len(unused) - len(said)
            status += (
                f" Not used: {', '.join(said)}{f' (and {more} implied)' if more > 0 else ''} — `{entry.key}` does "
                + ("not take words" if len(unused) == len(attrs.known) else "not take these attributes")
                + "; an MVAE model (if loaded) combines words with a drawing."
            )
        return gallery, paths, sketch, status, 0

    def sketch_models(self) -> list[str]:
        keys = [e.key for e in self.registry.loaded("sketch")]
        keys += [e.key for e in self.registry.loaded("attributes") if has_sketch_input(e.pipeline)]
        return keys

    def sketch_select(self, paths, caption: bool, evt: gr.SelectData):
        i = int(evt.index) + 1
        return i, download_copy(paths[i - 1] if paths and i <= len(paths) else None, caption)

    def sketch_send(self, idx, paths, caption=True):
        if not paths:
            raise gr.Error("There are no faces yet: generate some from a sketch first.")
        try:
            i = int(idx)
        except (TypeError, ValueError):
            i = 0
        if i == 0:
            raise gr.Error("Pick a face first (click one in the gallery).")
        if not 1 <= i <= len(paths):
            raise gr.Error(f"There is no face #{i}: this gallery has {len(paths)}.")
        return self._to_stylize(paths[i - 1], caption)

    # -- Stylize -----------------------------------------------------------------------------------------------
    def _ip2p_backend(self):
        if self._ip2p is None:
            entry = self.registry.first("instruct_pix2pix")
            if entry is None:
                return None
            from sketchface.pipelines.stylize import InstructPix2PixBackend

            self._ip2p = InstructPix2PixBackend(entry.source)
        return self._ip2p

    def _editor_entries(self) -> list:
        """Loaded models that declare latent edits or an image encoder (``capabilities``): attribute models first
        (an MVAE edits any face), then sketch ones."""
        entries = []
        for task in ("attributes", "sketch"):
            for e in self.registry.loaded(task):
                caps = e.pipeline.capabilities
                if caps.editable_attributes or caps.has_image_encoder:
                    entries.append(e)
        return entries

    @staticmethod
    def _cannot_edit(entry) -> str | None:
        """Why ``entry`` cannot edit an uploaded face, from what its pipeline declares (``capabilities``); ``None``
        when it can.

        ``has_image_encoder``: the model reads a face image into its latent (an MVAE's image expert, the pSp
        encoder); the cross-modal VAE has none. ``editable_attributes``: the attributes it has edit directions for."""
        caps = entry.pipeline.capabilities
        if not caps.has_image_encoder:
            return "it has no image encoder (it draws faces from attributes only), so it cannot read an uploaded face"
        if not caps.editable_attributes:
            return "it has no fitted attribute directions to edit along"
        return None

    def editor_models(self) -> list[str]:
        """The models that can edit an uploaded face (see :meth:`_cannot_edit`), MVAEs first."""
        return [e.key for e in self._editor_entries() if self._cannot_edit(e) is None]

    def ip2p_status(self) -> tuple[str, str]:
        """("loaded" | "available" | "unavailable" | "not configured", why) for InstructPix2Pix.

        Cached for :data:`IP2P_RECHECK_S` seconds (the check may probe the Hub for two seconds); a failure to
        load it during an edit is recorded at once (:meth:`stylize`)."""
        backend = self._ip2p_backend()
        if backend is None:
            return "not configured", "start the app with `--instruct-pix2pix` / `SKETCHFACE_INSTRUCT_PIX2PIX`"
        if backend.pipe is not None:
            return "loaded", "ready"
        cached = self._ip2p_checked
        if cached is None or time.monotonic() - cached[0] > IP2P_RECHECK_S:
            try:
                ok, why = backend.available()
            except Exception as err:  # noqa: BLE001 - availability must never break the page
                ok, why = False, f"{type(err).__name__}: {err}"
            cached = self._ip2p_checked = (time.monotonic(), "available" if ok else "unavailable", why)
        return cached[1], cached[2]

    def _ip2p_failed(self, why: str) -> None:
        self._ip2p_checked = (time.monotonic(), "unavailable", why)

    def backend_choices(self) -> list[tuple[str, str]]:
        """The Stylize backends that can work now (label, value): nothing unavailable is offered."""
        choices = [("latent editor (offline)", "latent")] if self.editor_models() else []
        if self.ip2p_status()[0] in ("available", "loaded"):
            choices.append(IP2P_CHOICE)
        return choices

    def backends_md(self) -> str:
        """One line per backend: ready or not, and why; models that cannot edit an uploaded face, and why."""
        lines = []
        editors = self.editor_models()
        lines.append(
            f"✓ **latent** — ready, edits the 40 CelebA attributes with {', '.join(f'`{k}`' for k in editors)}"
            if editors
            else "⚠ **latent** — unavailable: no loaded model can edit an uploaded face (see the Models tab)."
        )
        for e in self._editor_entries():
            why = self._cannot_edit(e)
            if why:
                lines.append(f"↳ `{e.key}` is not offered as an editor: {why}.")
        state, why = self.ip2p_status()
        mark = "✓" if state in ("available", "loaded") else "⚠"
        lines.append(f"{mark} **instruct-pix2pix** — {state}: {why}")
        return "\n\n".join(lines)

    def stylize_controls(self, current: str | None = None):
        """On page load and after a failed edit: the backend choice (only what works; ``current`` kept while it
        does), the InstructPix2Pix sliders shown only when it can be chosen, Apply enabled when anything can be,
        the backends' status and the Models table."""
        choices = self.backend_choices()
        values = [v for _, v in choices]
        ip2p = "instruct-pix2pix" in values
        value = current if current in values else (values[0] if values else None)
        radio = gr.Radio(choices=choices, value=value, interactive=bool(choices))
        sliders = [gr.Slider(visible=ip2p) for _ in range(3)]
        return [radio, *sliders, gr.Button(interactive=bool(choices)), self.backends_md(), self.models_md()]

    def stylize_load(self, upload):
        if upload is None:
            return None
        return open_image(upload, "face image", max_side=STYLIZE_PREVIEW_SIDE, uncaption=True).convert("RGB")

    def _stylize_side(self, backend: str, latent_model: Any = None) -> int:
        """Longest side the Stylize tab works at, and so the largest picture it returns: the model's own size
        times the display enlargement (save_png's MIN_EXPORT_SIDE), i.e. 256 px for the 64-px latent editors and
        InstructPix2Pix's working size (512) for it. A larger upload is shrunk to this on decoding."""
        if backend == "instruct-pix2pix":
            ip2p = self._ip2p_backend()
            size = int(ip2p.working_size) if ip2p is not None else STYLIZE_PREVIEW_SIDE
        else:
            size = getattr(latent_model, "image_size", None) or getattr(latent_model, "resolution", None) or 64
        return max(MIN_EXPORT_SIDE, int(size))

    def stylize_upload(self, upload):
        """A face uploaded by the visitor: shown as "Before"; its results are labelled as derived from an upload
        (its provenance is reset) and the undo trail starts afresh."""
        return self.stylize_load(upload), None, []

    def use_result(self, after, result, upload, origin, trail):
        """Continue editing the last result: it becomes the face to edit; the face it replaces goes on the undo
        trail (the last :data:`UNDO_STEPS`)."""
        if not after:
            raise gr.Error("There is no result yet: apply an instruction first.")
        trail = list(trail or [])
        if _file_path(upload):
            trail = [*trail, {"path": _file_path(upload), "origin": origin}][-UNDO_STEPS:]
        return after, self.stylize_load(after), result, trail, self.chain_note(trail)

    def undo_result(self, trail):
        """Back to the face edited before the last *Use this result*."""
        if not trail:
            raise gr.Error("Nothing to undo: *Use this result* first, then Undo returns to the face before it.")
        *trail, last = trail
        return last["path"], self.stylize_load(last["path"]), last["origin"], trail, self.chain_note(trail)

    @staticmethod
    def chain_note(trail: list) -> str:
        """Where the chain of edits stands (empty for a fresh face)."""
        if not trail:
            return ""
        return f"Editing the result of earlier edits (step {len(trail) + 1}); *Undo* goes back one step."

    def stylize(
        self,
        upload,
        instruction,
        backend,
        editor,
        strength,
        keep_details,
        steps,
        guidance,
        image_guidance,
        seed,
        caption,
        origin=None,
        progress=gr.Progress(),  # noqa: B008 - gradio injects progress through this default
    ):
        """Edit the face by the instruction → (result file, caption, download, the result's provenance).

        ``origin``: the provenance of the face this server put in the upload box (Send to Stylize, Use this
        result); the result keeps that face's label when the file is that face, and is labelled as derived from
        an uploaded image otherwise. ``editor`` must be one of :meth:`editor_models` (``None``: the first)."""
        from sketchface.pipelines.stylize import BackendUnavailable, EditNotUnderstood, LatentEditor, Stylizer

        text = (instruction or "").strip()
        if not text:
            raise gr.Error("Please type an instruction, e.g. 'make the hair brown' or 'add glasses'.")
        if len(text) > MAX_INSTRUCTION_CHARS:
            raise gr.Error(
                f"The instruction is {len(text)} characters long; the limit is {MAX_INSTRUCTION_CHARS}. "
                "Please shorten it."
            )
        if backend not in ("latent", "instruct-pix2pix"):  # never a silent default
            raise gr.Error("Choose a backend first: 'latent' (offline attribute edits) or 'instruct-pix2pix'.")
        if not _file_path(upload):
            raise gr.Error("Please upload a face image first (PNG, JPEG or WebP).")
        latent = entry = None
        if backend == "latent":
            entry = self._editor_or_error(editor)
            latent = LatentEditor(entry.pipeline, keep_details=bool(keep_details))
        elif backend == "instruct-pix2pix":
            state, why = self.ip2p_status()
            if state not in ("available", "loaded"):
                raise gr.Error(f"InstructPix2Pix is {state}: {why}")
        side = self._stylize_side(backend, latent.model if latent else None)
        image = open_image(upload, "face image", max_side=side, uncaption=True).convert("RGB")
        stylizer = Stylizer(latent, self._ip2p_backend())
        if backend == "instruct-pix2pix":
            progress(0, desc="Loading InstructPix2Pix (first use can take a while)…")
            params = {
                "steps": int(steps),
                "guidance_scale": float(guidance),
                "image_guidance_scale": float(image_guidance),
            }
        else:
            params = {"strength": float(strength)}

        def report(i: int, total: int) -> None:
            progress((i, total), desc="Editing")

        try:
            result = stylizer(image, text, backend=backend, seed=parse_seed(seed), progress=report, **params)
        except BackendUnavailable as err:
            if backend == "instruct-pix2pix":  # the Models tab and the backend choice say so from now on
                self._ip2p_failed(str(err))
            raise gr.Error(str(err)) from err
        except (EditNotUnderstood, ValueError) as err:
            raise gr.Error(str(err)) from err
        label = _label_for(_file_path(upload), origin)
        meta = {
            "action": "stylize",
            "model": (latent.model.__class__.__name__ if latent else backend),
            "editor": entry.key if entry is not None else None,
            **result.to_metadata(),
            "label": label,
        }
        # never larger than the working size, whatever a backend does with sizes (the input is that size already)
        path = _export([downscale(result.image, side)], [meta], caption, "stylized")[0]
        note = "" if label == AI_LABEL else f' Labelled "{label}".'
        # the caption quotes the instruction
        return path, f"{md_text(result.caption)}{note}", path, {"sha": _digest(path), "label": label}

    def _editor_or_error(self, editor: str | None):
        """The latent editor's model: ``editor`` (``None``: the first that can edit); gr.Error naming why a model
        that cannot edit an uploaded face is refused, never a silent substitute."""
        keys = self.editor_models()
        if not editor:
            if not keys:
                raise gr.Error(
                    "The latent editor needs a loaded model that can edit an uploaded face; none is "
                    "(see the Stylize backends and the Models tab)."
                )
            return self.registry.get(keys[0])
        if editor in keys:
            return self.registry.get(editor)
        entry = self.registry.get(editor)
        choose = f"Choose one of: {', '.join(keys)}." if keys else "No loaded model can."
        if entry is None or not entry.ok:  # not one of ours: named by the visitor, so not echoed
            raise gr.Error(f"The chosen latent editor model is not loaded. {choose}")
        raise gr.Error(f"{entry.key} cannot edit an uploaded face: {self._cannot_edit(entry)}. {choose}")

    # -- Compare -----------------------------------------------------------------------------------------------
    def compare(self, custom: str, seed, caption, weight=None, candidates=1):
        """Extra descriptions, seed, caption[, description weight[, candidates per description]] -> (grid, status)."""
        weight = DESCRIPTION_WEIGHT if weight is None else float(weight)
        k = 1 if candidates is None else int(candidates)
        if not 1 <= k <= MAX_COMPARE_CANDIDATES:
            raise gr.Error(f"Candidates per description must be 1 to {MAX_COMPARE_CANDIDATES}, got {k}.")
        columns = [(p.name, p.attributes, p.text) for p in PRESETS.values()]
        lines = [line.strip() for line in (custom or "").splitlines() if line.strip()]
        if len(lines) > MAX_COMPARE_DESCRIPTIONS:
            raise gr.Error(
                f"The criminal sketch test takes at most {MAX_COMPARE_DESCRIPTIONS} extra descriptions (one per line); "
                f"got {len(lines)}. Remove some lines, or run the test again with the rest."
            )
        for line in lines:
            try:
                parsed = parse_description(line)
            except ValueError as err:
                raise gr.Error(str(err)) from err
            if not parsed.attributes.known:
                raise gr.Error(
                    f"Nothing in {_echo(line)} was understood as an attribute; rephrase it (or remove the line)."
                )
            columns.append((line[:40], parsed.attributes, line))
        models = self.registry.loaded("attributes")
        if not models:
            raise gr.Error(_availability_md(self.registry, "attributes", "attribute-to-face").replace("⚠ ", ""))
        seed = parse_seed(seed)
        cells = []
        for entry in models:
            pipe = entry.pipeline
            row = []
            options = {"description_weight": weight} if pipe.capabilities.weighs_description else {}
            for _name, attrs, _text in columns:
                row.append(run_pipeline(pipe, attrs, num_images=k, seed=seed, **options).images)
            cells.append(row)
        cell = 128 if k == 1 else 96
        # headers: what each column was drawn from ("Criminal 1: Man with gray hair, …"), not just its name
        headers = [f"{name}: {text}" if i < len(PRESETS) else text for i, (name, _attrs, text) in enumerate(columns)]
        grid = labelled_grid(cells, [e.key for e in models], headers, cell=cell, footer=AI_LABEL)
        # what it takes to draw the same grid again: the weight applies to the models that weigh a description
        weighted = [e.key for e in models if e.pipeline.capabilities.weighs_description]
        meta = {
            "action": "criminal sketch test",
            "models": [e.key for e in models],
            "seed": seed,
            "candidates": k,
            **({"description_weight": weight, "description_weight_models": weighted} if weighted else {}),
            "columns": [{"name": c[0], "description": c[2], "attributes": c[1].known} for c in columns],
        }
        path = _export([grid], [meta], False, "criminal-sketch-test")[0]
        missing = [e for e in self.registry.of_task("attributes") if not e.ok]
        note = "".join(f"\n\nNot in the grid: `{e.key}` ({e.reason})." for e in missing)
        how = f", description weight {weight:g} ({', '.join(weighted)})" if weighted else ""
        each = f" × {k} candidates" if k > 1 else ""
        return path, f"{len(models)} model(s) × {len(columns)} description(s){each}, seed {seed}{how}.{note}"

    def default_results(self) -> str | None:
        """The results set shown first: the first named at start-up, else the shipped eval-procedural."""
        names = list(self.results)
        if self._results_given or DEFAULT_RESULTS not in self.results:
            return names[0] if names else None
        return DEFAULT_RESULTS

    def metrics(self, name: str | None = None) -> str:
        """The evaluation results set ``name`` (one of ``self.results``; empty: the default) as Markdown."""
        name = (name or "").strip() if isinstance(name, str) else name
        if not self.results:
            return (
                "No evaluation results are available. Produce them with `python train/evaluate.py --models "
                "mvae=checkpoints/mvae-procedural-64 ... --out_dir results/eval-procedural` and start the app with "
                "`--results results/eval-procedural`."
            )
        name = name or self.default_results()
        if name not in self.results:  # never echoed, never used as a path
            raise gr.Error(f"Unknown results set. Choose one of: {', '.join(self.results)}.")
        path = self.results[name]
        shown = f"{name}/{path.name}"  # never the server's path
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(MAX_RESULTS_CHARS + 1)
        except (OSError, UnicodeDecodeError) as err:
            log.warning("results set %s: %s: %s", name, type(err).__name__, err)
            raise gr.Error(f"The results set {name!r} could not be read; see the server log.") from err
        cut = "\n\n_(cut: the file is longer)_" if len(text) > MAX_RESULTS_CHARS else ""
        text = text[:MAX_RESULTS_CHARS]
        if path.suffix == ".json":
            import json

            try:
                text = json.dumps(json.loads(text), indent=1)[:MAX_RESULTS_CHARS]
            except ValueError:
                pass  # cut, or not JSON after all: shown as it is
            return f"From `{shown}`:\n\n```json\n{text}\n```{cut}"
        return f"From `{shown}`:\n\n{text}{cut}"

    # -- Models ------------------------------------------------------------------------------------------------
    def models_md(self, probe: bool = True) -> str:
        """The Models table. InstructPix2Pix's row shows its real state (:meth:`ip2p_status`: available, loaded,
        or unavailable and why), not "lazy"; ``probe=False`` (building the page) leaves that to the page load."""
        rows = ["| model | kind | source | from | status |", "|---|---|---|---|---|"]
        first_ip2p = self.registry.first("instruct_pix2pix")
        for e in self.registry.entries:
            status = e.status + (f" ({e.load_seconds:.1f} s)" if e.load_seconds else "")
            if e.kind == "instruct_pix2pix" and e.status == "lazy":
                if e is not first_ip2p:
                    status = "not used: the app serves the first InstructPix2Pix only"
                elif probe:
                    state, why = self.ip2p_status()
                    status = f"{state}: {why}"
                else:
                    status = "checking…"
            elif not e.ok:
                status += f": {e.reason}"
            rows.append(f"| `{e.key}` | {e.kind} | `{e.source}` | {e.origin} | {status} |")
        missing = self.registry.missing_kinds()
        if missing:
            rows.append("")
            rows.append("Not available: " + "; ".join(f"**{k.name}** ({k.help})" for k in missing) + ".")
        return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------
# tabs


def build_describe_tab(h: Handlers) -> SimpleNamespace:
    ui = SimpleNamespace()
    models = [e.key for e in h.registry.loaded("attributes")]
    ui.availability = gr.Markdown(
        "" if models else _availability_md(h.registry, "attributes", "attribute-to-face"),
        elem_id="describe-availability",
    )
    with gr.Row(elem_id="describe-row"):
        with gr.Column(scale=2, elem_id="describe-words"):
            ui.text = gr.Textbox(
                label="Describe the face in plain words",
                placeholder="e.g. Chubby young man with glasses and bushy eyebrows",
                lines=1,  # one line: Enter reads the text (a taller box would take Enter as a new line)
                max_lines=4,
                elem_id="description",
            )
            with gr.Row(elem_id="parse-row"):
                ui.parse_btn = gr.Button("Understand the text", size="sm")
                ui.preset = gr.Radio(list(PRESETS), label="Criminal sketch test presets", elem_id="presets")
            ui.parsed = gr.Markdown(
                "Type a description and press Enter, or set the attributes below.", elem_id="understood"
            )
            gr.Markdown(
                f"Each attribute: **yes**, **no** or **?** = don't know (left to the model). {READING_RULE}",
                elem_id="reading-rule",
            )
            ui.radios = {}
            with gr.Group(elem_id="describe-attributes"):
                for group, names in GROUPS.items():
                    with gr.Accordion(f"{group} ({len(names)})", open=group in ("Hair", "Demographics")):
                        with gr.Row(equal_height=True):
                            for name in names:
                                ui.radios[name] = gr.Radio(
                                    TRISTATE,
                                    value=UNKNOWN,
                                    label=pretty(name),
                                    elem_classes=["tri"],
                                    elem_id=f"attr-{name}",
                                    min_width=150,
                                )
        with gr.Column(scale=3, elem_id="describe-results"):
            with gr.Row():
                ui.model = gr.Dropdown(models, value=models[0] if models else None, label="Model", scale=3)
                ui.n = gr.Slider(1, MAX_CANDIDATES, value=8, step=1, label="Candidates", scale=2)
                ui.seed = gr.Number(0, precision=0, label="Seed", minimum=0, scale=1)
            ui.generate = gr.Button("Generate candidates", variant="primary", elem_id="generate")
            with gr.Accordion("Advanced", open=False):
                ui.weight = description_weight_slider(
                    "How strictly to follow the description (MVAE models)",
                    "1 = the papers' plain product of experts; higher shows more of what was said "
                    "(the candidates still differ in what was not).",
                )
            ui.status = gr.Markdown("")
            ui.gallery = gr.Gallery(
                label="Candidates (click one)",
                columns=4,
                height=420,
                object_fit="contain",
                elem_id="candidates",
                # no download button: it would give the bare gallery file; the download below carries the label
                buttons=["fullscreen"],
            )
            ui.selection = gr.Markdown("Pick a candidate (click it) to continue.", elem_id="selection")
            with gr.Row():
                ui.a = gr.Number(0, precision=0, label="Selected # (0: none)", scale=1, elem_id="pick-a")
                ui.b = gr.Number(0, precision=0, label="Previous pick #", scale=1, elem_id="pick-b")
                ui.strength = gr.Slider(0.05, 1.0, value=0.3, step=0.05, label="Variation strength", scale=2)
            with gr.Row():
                ui.more = gr.Button("More like this", elem_id="more")
                ui.cross = gr.Button("Cross with… (last two picks)", elem_id="cross")
                ui.send = gr.Button("Send to Stylize", elem_id="send-describe")
            ui.download = gr.File(
                label="Download the selected candidate (PNG with metadata, 256 px)",
                interactive=False,
                height=90,
                elem_classes=["dl"],
            )
            ui.history = gr.Gallery(
                label="History (click a round to go back)",
                columns=6,
                fit_columns=False,  # two rounds stay two small squares, not two wide strips of the eyes
                object_fit="contain",  # whole faces
                height="auto",
                allow_preview=False,
                buttons=[],
                elem_id="history",
            )
            ui.round_no = gr.Number(None, precision=0, visible=False)
    ui.state = gr.State({"rounds": [], "current": 0})
    ui.reading = gr.State(None)  # the last reading of the text (Handlers._read); None: nothing read yet
    ui.pending = gr.State(None)  # a reading just made, before the page takes it as d.reading (wire_events)
    return ui


def description_weight_slider(label: str, info: str) -> gr.Slider:
    """The MVAE's description weight (``AttributeToFace(description_weight=…)``), 0.5–10, the pipeline's default."""
    return gr.Slider(0.5, 10.0, value=DESCRIPTION_WEIGHT, step=0.5, label=label, info=info)


def build_sketch_tab(h: Handlers) -> SimpleNamespace:
    ui = SimpleNamespace()
    models = h.sketch_models()
    ui.availability = gr.Markdown("" if models else _availability_md(h.registry, "sketch", "sketch-to-face"))
    with gr.Row():
        with gr.Column():
            gr.Markdown(
                "**To draw, pick the pen first** (the brush, top button of the toolbar at the canvas's left), then "
                "draw thin dark lines on white: outline, eyes, brows, nose, mouth.",
                elem_id="pen-hint",
            )
            ui.canvas = drawing_canvas(
                label="Draw a face: pick the pen (brush button) to start",
                type="pil",
                # a thin black pen: the default radius (about 1/50 of the canvas) turns eyes into blobs
                brush=gr.Brush(default_size=3, colors=["#000000"], color_mode="fixed"),
                canvas_size=(512, 512),
                height=420,
                image_mode="RGBA",
                elem_id="canvas",
            )
            ui.upload = gr.File(label="…or upload a sketch or a photo", file_types=IMAGE_TYPES, elem_id="sketch-upload")
            ui.kind = gr.Radio(
                [("a sketch", "sketch"), ("a photo: convert it to a sketch (paper 2's preprocessing)", "photo")],
                value="sketch",
                label="The upload is",
            )
            ui.preview_btn = gr.Button("Preview what the model sees", size="sm")
        with gr.Column():
            ui.preview = gr.Image(label="Normalised sketch", type="pil", height=256, interactive=False)
            with gr.Row():
                ui.model = gr.Dropdown(models, value=models[0] if models else None, label="Model", scale=3)
                ui.n = gr.Slider(1, MAX_CANDIDATES, value=4, step=1, label="Variations", scale=2)
                ui.seed = gr.Number(0, precision=0, label="Seed", minimum=0, scale=1)
            ui.text = gr.Textbox(label="Optional attributes in words (e.g. 'gray hair, glasses')", lines=1)
            ui.mix = gr.Slider(
                0.0, 1.0, value=0.5, step=0.05, label="Variety of the candidates (style code or style mixing)"
            )
            ui.weight = description_weight_slider(
                "Words vs drawing (MVAE models)",
                "How much the attributes count against the sketch: 1 = the plain product of experts; "
                "higher shows more of what was said, past ~8 the face drifts from the drawing.",
            )
            ui.generate = gr.Button("Generate from the sketch", variant="primary", elem_id="sketch-generate")
            ui.status = gr.Markdown("")
            ui.gallery = gr.Gallery(
                label="Faces (click one)",
                columns=4,
                height=300,
                object_fit="contain",
                buttons=["fullscreen"],  # downloads go through "Download the selected face" (label, caption)
                elem_id="sketch-gallery",
            )
            with gr.Row():
                ui.pick = gr.Number(0, precision=0, label="Selected # (0: none)", elem_id="sketch-pick")
                ui.send = gr.Button("Send to Stylize", elem_id="send-sketch")
            ui.download = gr.File(label="Download the selected face", interactive=False, height=90)
    ui.paths = gr.State([])
    return ui


def build_stylize_tab(h: Handlers) -> SimpleNamespace:
    ui = SimpleNamespace()
    editors = h.editor_models()
    with gr.Row():
        with gr.Column():
            ui.upload = gr.File(
                label="Face to edit (sent from another tab, or upload)",
                file_types=IMAGE_TYPES,
                elem_id="stylize-upload",
            )
            ui.instruction = gr.Textbox(
                label=f"Instruction (at most {MAX_INSTRUCTION_CHARS} characters)",
                placeholder="make the hair brown and add glasses",
                elem_id="instruction",
            )
            # What is configured; the page load (Handlers.stylize_controls) then keeps only what can work now. (The
            # server checks an API call's choice against these, so a backend that comes up later is listed.)
            choices = [("latent editor (offline)", "latent")] if editors else []
            if h.registry.first("instruct_pix2pix") is not None:
                choices.append(IP2P_CHOICE)
            ui.backend = gr.Radio(
                choices, value=choices[0][1] if choices else None, label="Backend", elem_id="stylize-backend"
            )
            ui.backends = gr.Markdown("Checking backends…", elem_id="backends")
            ui.editor = gr.Dropdown(
                editors,
                value=editors[0] if editors else None,
                label="Latent editor model (only models that can edit an uploaded face)",
                elem_id="stylize-editor",
            )
            with gr.Accordion("Parameters", open=False):
                ui.strength = gr.Slider(0.1, 3.0, value=1.0, step=0.1, label="Edit strength (latent)")
                ui.keep_details = gr.Checkbox(
                    True,
                    label="Keep the picture's own pixels outside the edited regions (latent)",
                    info="Off: the whole face is redrawn by the model, which loses detail.",
                )
                ui.steps = gr.Slider(1, 100, value=20, step=1, label="Steps (InstructPix2Pix)")
                ui.guidance = gr.Slider(1.0, 15.0, value=7.5, step=0.5, label="Text guidance (InstructPix2Pix)")
                ui.image_guidance = gr.Slider(1.0, 3.0, value=1.5, step=0.1, label="Image guidance (InstructPix2Pix)")
                ui.seed = gr.Number(0, precision=0, label="Seed", minimum=0)
            ui.run = gr.Button("Apply the instruction", variant="primary", elem_id="stylize")
        with gr.Column():
            with gr.Row():
                # no download button on "Before": it is the face in the upload box (a file with its label)
                ui.before = gr.Image(
                    label="Before", type="pil", interactive=False, height=300, elem_id="before", buttons=["fullscreen"]
                )
                ui.after = gr.Image(label="After", type="filepath", interactive=False, height=300, elem_id="after")
            ui.caption = gr.Markdown("", elem_id="stylize-caption")
            with gr.Row():
                ui.use = gr.Button("Use this result (edit it further)", size="sm", elem_id="use-result")
                ui.undo = gr.Button("Undo", size="sm", elem_id="undo-result")
            ui.chain = gr.Markdown("", elem_id="stylize-chain")
            ui.download = gr.File(label="Download the edited face", interactive=False, height=90)
    ui.origin = gr.State(None)  # provenance of the face this server put in the upload box (Handlers.stylize)
    ui.result = gr.State(None)  # provenance of the last result
    ui.trail = gr.State([])  # the faces "Use this result" replaced, for Undo
    return ui


def build_compare_tab(h: Handlers) -> SimpleNamespace:
    ui = SimpleNamespace()
    gr.Markdown(
        "The **criminal sketch test** of paper 1: the three described suspects (plus your own descriptions, one per "
        "line) generated by every loaded attribute model with the same seed, one or several candidates each."
    )
    with gr.Row():
        ui.custom = gr.Textbox(
            label=f"Extra descriptions (one per line → extra columns, up to {MAX_COMPARE_DESCRIPTIONS})",
            lines=3,
            scale=3,
            elem_id="compare-extra",
        )
        with gr.Column(scale=1, min_width=160):
            ui.seed = gr.Number(0, precision=0, label="Seed", minimum=0)
            ui.candidates = gr.Slider(
                1,
                MAX_COMPARE_CANDIDATES,
                value=1,
                step=1,
                label="Candidates per description (paper 1 showed 8)",
                elem_id="compare-candidates",
            )
    with gr.Accordion("Advanced", open=False):
        ui.weight = description_weight_slider(
            "How strictly the MVAE models follow the descriptions",
            "1 = the papers' plain product of experts (as paper 1's test ran); the other models ignore it.",
        )
    ui.run = gr.Button("Run the criminal sketch test", variant="primary", elem_id="compare")
    ui.status = gr.Markdown("")
    ui.grid = gr.Image(
        label="Grid (rows: models, columns: descriptions)", type="filepath", interactive=False, elem_id="compare-grid"
    )
    gr.Markdown("### Metrics from the evaluation command")
    with gr.Row():
        # a choice among the results sets the server was started with, never a path typed in the browser
        ui.metrics_set = gr.Dropdown(
            list(h.results),
            value=h.default_results(),
            label="Results set",
            info="The evaluations shipped in docs/results, and any named with --results when the app was started.",
            scale=4,
            elem_id="results-set",
        )
        ui.metrics_btn = gr.Button("Load metrics", scale=1)
    ui.metrics = gr.Markdown(h.metrics(None), elem_id="metrics")
    return ui


def build_models_tab(h: Handlers) -> SimpleNamespace:
    ui = SimpleNamespace()
    ui.table = gr.Markdown(h.models_md(probe=False), elem_id="models-table")  # the page load fills in the rest
    for e in h.registry.entries:
        if e.card:
            with gr.Accordion(f"Model card: {e.key}", open=False):
                gr.Markdown(strip_front_matter(e.card), elem_classes=["model-card"])
    flags = "\n".join(f"    {k.flag} PATH_OR_REPO    # or {k.env}=...   {k.help}" for k in KINDS.values())
    gr.Markdown(
        "### Loading other models\n\nStart the app with a flag or an environment variable naming a local folder "
        "(config.json + model.safetensors) or a Hugging Face repo id; several may be comma-separated:\n\n"
        f"```\npython app.py \\\n{flags}\n```\n\nOffline, a Hub id works only if it is already in the local "
        "Hugging Face cache; otherwise it is listed above as unavailable with the reason, and the app carries on "
        "without it."
    )
    ui.refresh = gr.Button("Refresh", size="sm")
    return ui


# ---------------------------------------------------------------------------------------------------------------
# events


def wire_events(demo: gr.Blocks, h: Handlers, tabs: gr.Tabs, caption_box: gr.Checkbox, d, s, st, c, m) -> None:
    """Every event, with its api_name (gradio_client endpoints) and concurrency group."""
    radios = [d.radios[n] for n in ATTRIBUTES]
    round_out = [d.gallery, d.state, d.status, d.a, d.b, d.selection, d.download]
    history = {
        "fn": h.history_view,
        "inputs": [d.state],
        "outputs": [d.history, d.gallery],
        "api_visibility": "private",
    }
    gen = {"concurrency_limit": 2, "concurrency_id": "gpu"}
    describe = {"concurrency_limit": DESCRIBE_CONCURRENCY, "concurrency_id": "describe"}  # a crowd's click
    # decoding and sketching uploads: each bounded to ~1 s and ~200 MB (a 40 MP RGBA PNG), two at once on 2 cores
    images = {"concurrency_limit": 2, "concurrency_id": "images"}

    # A reading (Handlers._read) goes to d.pending; only the page's own chained event (never run for an API call)
    # makes it d.reading, so the API stays stateless: there the radios set to yes or no win over the text.
    commit = {
        "fn": h.show_reading,
        "inputs": [d.pending],
        "outputs": [*radios, d.parsed, d.reading],
        "api_visibility": "private",
    }
    parse = {"fn": h.parse, "inputs": [d.text, *radios, d.reading], "outputs": [*radios, d.parsed, d.pending]}
    d.parse_btn.click(**parse, api_name="parse").success(**commit)
    d.text.submit(**parse, api_visibility="private").success(**commit)  # Enter, as the hint says (one-line box)
    d.preset.input(h.preset, [d.preset], [d.text, *radios, d.parsed, d.pending], api_name="preset").success(**commit)
    d.generate.click(
        h.generate,
        [d.text, *radios, d.model, d.n, d.seed, caption_box, d.state, d.weight, d.reading],
        [*round_out, d.pending],
        api_name="describe",
        **describe,
    ).success(**commit).then(**history)
    d.gallery.select(
        h.select, [d.state, d.a, caption_box], [d.a, d.b, d.selection, d.download], api_visibility="private"
    )
    d.more.click(
        h.more_like_this,
        [d.a, d.strength, d.n, d.seed, d.model, caption_box, d.state],
        round_out,
        api_name="more_like_this",
        **gen,
    ).then(**history)
    d.cross.click(
        h.cross, [d.a, d.b, d.n, d.seed, d.model, caption_box, d.state], round_out, api_name="cross", **gen
    ).then(**history)
    d.history.select(h.history_select, [d.state], [d.round_no], api_visibility="private").then(
        h.restore_round, [d.round_no, d.state], round_out, api_name="restore_round"
    ).then(**history)
    to_stylize = [st.upload, st.before, tabs, st.origin, st.trail]
    chain = {"fn": h.chain_note, "inputs": [st.trail], "outputs": [st.chain], "api_visibility": "private"}
    d.send.click(h.send_to_stylize, [d.a, d.state, caption_box], to_stylize, api_name="send_to_stylize").success(
        **chain
    )

    s.preview_btn.click(
        h.sketch_preview, [s.canvas, s.upload, s.kind], [s.preview, s.status], api_name="sketch_preview", **images
    )
    s.generate.click(
        h.sketch_generate,
        [s.canvas, s.upload, s.kind, s.model, s.text, s.n, s.seed, s.mix, caption_box, s.weight],
        [s.gallery, s.paths, s.preview, s.status, s.pick],
        api_name="sketch",
        **gen,
    )
    s.gallery.select(h.sketch_select, [s.paths, caption_box], [s.pick, s.download], api_visibility="private")
    s.send.click(h.sketch_send, [s.pick, s.paths, caption_box], to_stylize, api_name="sketch_send_to_stylize").success(
        **chain
    )

    stylize_controls = [st.backend, st.steps, st.guidance, st.image_guidance, st.run, st.backends, m.table]
    st.upload.upload(
        h.stylize_upload, [st.upload], [st.before, st.origin, st.trail], api_name="stylize_load", **images
    ).success(**chain)
    st.run.click(
        h.stylize,
        [
            st.upload,
            st.instruction,
            st.backend,
            st.editor,
            st.strength,
            st.keep_details,
            st.steps,
            st.guidance,
            st.image_guidance,
            st.seed,
            caption_box,
            st.origin,
        ],
        [st.after, st.caption, st.download, st.result],
        api_name="stylize",
        concurrency_limit=1,
        concurrency_id="stylize",
        show_progress_on=[st.after],  # one progress bar (and on an error one marker), not one per output
    ).failure(h.stylize_controls, [st.backend], stylize_controls, api_visibility="private")  # a failed load shows
    st.use.click(
        h.use_result,
        [st.after, st.result, st.upload, st.origin, st.trail],
        [st.upload, st.before, st.origin, st.trail, st.chain],
        api_visibility="private",
    )
    st.undo.click(
        h.undo_result, [st.trail], [st.upload, st.before, st.origin, st.trail, st.chain], api_visibility="private"
    )
    demo.load(h.backends_md, None, [st.backends], api_name="backends")
    demo.load(h.stylize_controls, [st.backend], stylize_controls, api_visibility="private")

    c.run.click(
        h.compare,
        [c.custom, c.seed, caption_box, c.weight, c.candidates],
        [c.grid, c.status],
        api_name="compare",
        **gen,
    )
    c.metrics_btn.click(h.metrics, [c.metrics_set], [c.metrics], api_name="metrics")
    c.metrics_set.input(h.metrics, [c.metrics_set], [c.metrics], api_visibility="private")
    m.refresh.click(h.models_md, None, [m.table], api_name="models")
    # Ticking or unticking the caption box re-exports the downloads on show, so they match it.
    caption_box.input(
        h.refresh_downloads,
        [d.state, d.a, s.paths, s.pick, caption_box],
        [d.download, s.download],
        api_visibility="private",
    )


def build_demo(registry: Registry | None = None, results: str | list[str] | None = None) -> gr.Blocks:
    """The whole app as gr.Blocks (not launched). ``registry`` defaults to discovery from env vars + starters;
    ``results``: evaluation folders (or results files) offered on the Compare tab besides the shipped ones, the
    first shown first (default $SKETCHFACE_RESULTS, comma-separated)."""
    if registry is None:
        registry = Registry.discover().load()
    h = Handlers(registry, results)
    # delete_cache: Gradio's own copies of served files, checked hourly, removed after a day
    with SketchFaceBlocks(title="SketchFace: forensic face composites", delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# SketchFace\nForensic face composites from words, attributes or a sketch, refined by text.")
        gr.Markdown(NOTICE, elem_id="ai-notice")
        caption_box = gr.Checkbox(
            True, label="Also write the label as a visible caption strip under every downloaded picture"
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Describe", id="describe"):
                d = build_describe_tab(h)
            with gr.Tab("Sketch", id="sketch"):
                s = build_sketch_tab(h)
            with gr.Tab("Stylize", id="stylize"):
                st = build_stylize_tab(h)
            with gr.Tab("Compare", id="compare"):
                c = build_compare_tab(h)
            with gr.Tab("Models", id="models"):
                m = build_models_tab(h)
        wire_events(demo, h, tabs, caption_box, d, s, st, c, m)
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    demo.handlers = h  # for tests and scripts
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments for demo.launch() shared by main(), the tests and the benchmark."""
    return {"css": CSS, "max_file_size": f"{MAX_UPLOAD_MB}mb", "show_error": True}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="interface to listen on (0.0.0.0 for all; default $GRADIO_SERVER_NAME or 127.0.0.1)",
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument(
        "--share",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="create a public gradio.live link (off by default)",
    )
    p.add_argument("--device", default=None, help="torch device for the models (default: CPU)")
    p.add_argument(
        "--torch_threads",
        type=int,
        default=os.environ.get("SKETCHFACE_TORCH_THREADS", "1"),  # a string default goes through type=int too
        help="threads per torch operation (default $SKETCHFACE_TORCH_THREADS or 1: concurrent requests are the "
        "parallelism; more threads per operation oversubscribe a small CPU under load, see docs/crowd.md)",
    )
    p.add_argument(
        "--results",
        action="append",
        metavar="FOLDER",
        help="evaluation results (a folder with results.md/json, or the file) offered on the Compare tab besides the "
        "shipped docs/results/*; repeat for several, the first is shown first (default $SKETCHFACE_RESULTS)",
    )
    add_cli_flags(p)
    args = p.parse_args(argv)
    if args.torch_threads < 1:
        p.error(f"--torch_threads (or $SKETCHFACE_TORCH_THREADS) must be at least 1, got {args.torch_threads}")
    return args


def configure_logging() -> None:
    """The app's log on stderr: one line per user error (INFO), full tracebacks for real failures (ERROR)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [sketchface] %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging()
    limit_torch_threads(args.torch_threads)
    t0 = time.perf_counter()
    registry = Registry.discover({k: getattr(args, k) for k in KINDS}).load(device=args.device)
    demo = build_demo(registry, results=args.results)
    for e in registry.entries:
        print(f"[sketchface] {e.key}: {e.status}{'' if e.ok else ' — ' + e.reason}", flush=True)
    print(f"[sketchface] models loaded and UI built in {time.perf_counter() - t0:.1f} s", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())


if __name__ == "__main__":
    main()
