"""SketchFace web app: describe, sketch, stylize and compare forensic face composites.

    python app.py                      # starter checkpoints from checkpoints/, http://127.0.0.1:7860
    python app.py --mvae owner/repo --psp ./my-psp --host 0.0.0.0 --port 7860

Models are chosen by CLI flags or environment variables (SKETCHFACE_MVAE, SKETCHFACE_CVAE, SKETCHFACE_PSP,
SKETCHFACE_CLASSIFIER, SKETCHFACE_INSTRUCT_PIX2PIX) naming a local folder or a Hugging Face repo id; see the
Models tab. UI only: one build_*_tab() per tab, events wired last in wire_events(); the event functions are
``app_handlers.Handlers`` (one mixin per tab), and the models and all tensor work live in ``sketchface`` (which
never imports gradio).
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import re
import time
import types
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image, UnidentifiedImageError

from app_handlers import Handlers
from app_handlers.common import (
    IP2P_CHOICE,
    MAX_COMPARE_CANDIDATES,
    MAX_COMPARE_DESCRIPTIONS,
    MAX_SEED,
    MAX_UPLOAD_MB,
    SKETCH_INPUT_SIDE,
    STYLIZE_PREVIEW_SIDE,
    TRISTATE,
    UNKNOWN,
    _availability_md,
    _unreadable,
    decode_image,
    download_copy,
    is_colour_photo,
    is_page_drawing,
    log,
    md_text,
    open_image,
    parse_seed,
    prune_outputs,
)
from sketchface.attributes import (
    ATTRIBUTES,
    GROUPS,
    MAX_INSTRUCTION_CHARS,
    PRESETS,
    pretty,
)
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.registry import KINDS, Registry, add_cli_flags
from sketchface.serving import LOAD, limit_torch_threads

MAX_CANDIDATES = 16
#: A crowd (docs/crowd.md): describes running at once, one per core (each torch operation on one thread; see
#: main's --torch_threads), in a concurrency group of their own so that a long Compare never holds them up.
DESCRIBE_CONCURRENCY = max(2, os.cpu_count() or 1)
#: Events that may wait in the queue before Gradio answers "Queue is full": 50 visitors who open the page at once
#: queue two load events each, besides their clicks.
QUEUE_SIZE = 512
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"]

#: app.<name> for the tests, scripts and Spaces; the handlers' helpers live in app_handlers.common.
__all__ = [
    "Handlers",
    "MAX_SEED",
    "STYLIZE_PREVIEW_SIDE",
    "build_demo",
    "decode_image",
    "download_copy",
    "is_colour_photo",
    "is_page_drawing",
    "launch_kwargs",
    "main",
    "md_text",
    "open_image",
    "parse_args",
    "parse_seed",
    "prune_outputs",
    "public_message",
    "strip_front_matter",
]

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


def strip_front_matter(card: str) -> str:
    """A model card without its YAML front matter (``---`` … ``---`` at the top: Hub metadata, which Markdown
    would render as a giant heading)."""
    match = re.match(r"\A\ufeff?---[ \t]*\r?\n(?:.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", card, flags=re.DOTALL)
    return card[match.end() :].lstrip("\r\n") if match else card


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
            with LOAD.running():  # a model call that runs alone may use every core (sketchface.serving)
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
        "--alone_threads",
        type=int,
        default=os.environ.get("SKETCHFACE_ALONE_THREADS", "0"),
        help="threads per torch operation while a request runs alone (default $SKETCHFACE_ALONE_THREADS or 0: every "
        "usable core); with others running, each gets --torch_threads",
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
    if args.alone_threads < 0:
        p.error(
            f"--alone_threads (or $SKETCHFACE_ALONE_THREADS) must be 0 (every core) or more, got {args.alone_threads}"
        )
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
    from sketchface.trainer import usable_cpus

    limit_torch_threads(args.torch_threads)
    LOAD.configure(alone=args.alone_threads or usable_cpus(), shared=args.torch_threads)
    t0 = time.perf_counter()
    registry = Registry.discover({k: getattr(args, k) for k in KINDS}).load(device=args.device)
    demo = build_demo(registry, results=args.results)
    for e in registry.entries:
        print(f"[sketchface] {e.key}: {e.status}{'' if e.ok else ' — ' + e.reason}", flush=True)
    print(f"[sketchface] models loaded and UI built in {time.perf_counter() - t0:.1f} s", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())


if __name__ == "__main__":
    main()
