"""What the app's handlers share: limits, reading uploads, writing downloads, seeds, short texts, errors.

No tensor code: pipelines take and give PIL images.
"""

from __future__ import annotations

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
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageOps, UnidentifiedImageError

from sketchface.data.sketch import SKETCH_WORK_SIDE, downscale
from sketchface.export import AI_LABEL, UPLOAD_LABEL, read_metadata, remove_caption, save_png
from sketchface.registry import KINDS, Registry
from sketchface.serving import LOAD

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
IP2P_RECHECK_S = 600  # InstructPix2Pix's availability is checked again after this long (it may probe the Hub)
UNDO_STEPS = 20  # Stylize: how many "Use this result" steps Undo can go back
IP2P_CHOICE = ("InstructPix2Pix (free-form)", "instruct-pix2pix")
#: What Pillow may decode from a browser: the formats of app.IMAGE_TYPES (phone cameras' MPO files open as JPEG). Pillow
#: can open others (EPS runs Ghostscript, for one); an uploaded file never reaches them, whatever its name says.
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
#: The shipped evaluation results (one folder per set) that the Compare tab offers, besides those named at start-up.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "docs" / "results"
DEFAULT_RESULTS = "eval-procedural"
YES, NO, UNKNOWN = "yes", "no", "?"
TRISTATE = [YES, NO, UNKNOWN]
OUT_DIR = Path(os.environ.get("SKETCHFACE_OUTPUT_DIR", Path(tempfile.gettempdir()) / "sketchface-app"))
#: Output PNGs live in one folder per day under OUT_DIR; folders older than this many days are deleted.
KEEP_DAYS = int(os.environ.get("SKETCHFACE_KEEP_DAYS", "2"))
MAX_RESULTS_CHARS = 60_000  # a results file shown on the Compare tab (the shipped ones are under 10,000)

log = logging.getLogger("sketchface.app")


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
        with LOAD.threads():  # every core while this request runs alone, one thread each under a crowd
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
