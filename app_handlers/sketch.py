"""The Sketch tab: a drawn or uploaded sketch (or a photo) → candidate faces."""

from __future__ import annotations

import time
import warnings
from typing import Any

import gradio as gr
from PIL import Image

from sketchface.attributes import Attributes, describe, parse_description, pretty
from sketchface.export import AI_LABEL, UPLOAD_LABEL
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.registry import has_sketch_input

from .common import (
    SKETCH_INPUT_SIDE,
    _export,
    download_copy,
    is_colour_photo,
    is_page_drawing,
    open_image,
    parse_seed,
    run_pipeline,
)


class SketchHandlers:
    """The Sketch tab's event functions (a part of :class:`app_handlers.Handlers`)."""

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
        if entry.task == "sketch" and caps.words_with_sketch:  # the words condition the drawing itself
            words = {"attributes": attrs} if attrs.known else {}
            images = run_pipeline(pipe, sketch, num_images=n, seed=seed, mix_strength=float(mix), **words).images
        elif entry.task == "sketch":
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
        if caps.words_with_sketch and attrs.known:  # what the words were read as (user text is never echoed raw)
            status += f" Words, where the drawing leaves them open: {describe(attrs)}"
        if unused:
            said = [pretty(k) for k in unused if attrs.known[k]] or [f"no {pretty(k).lower()}" for k in unused[:3]]
            more = len(unused) - len(said)
            status += (
                f" Not used: {', '.join(said)}{f' (and {more} implied)' if more > 0 else ''} — `{entry.key}` does "
                + ("not take words" if len(unused) == len(attrs.known) else "not take these attributes")
                + "; a model that takes words with a drawing (an MVAE, or a translator trained with words) "
                "combines them."
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
