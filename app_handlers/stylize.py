"""The Stylize tab: edit a face by an instruction (latent editor or InstructPix2Pix), undo, chain."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from sketchface.attributes import MAX_INSTRUCTION_CHARS
from sketchface.data.sketch import downscale
from sketchface.export import AI_LABEL, MIN_EXPORT_SIDE
from sketchface.serving import LOAD

from .common import (
    IP2P_CHOICE,
    IP2P_RECHECK_S,
    STYLIZE_PREVIEW_SIDE,
    UNDO_STEPS,
    _digest,
    _export,
    _file_path,
    _label_for,
    _provenance,
    download_copy,
    md_text,
    open_image,
    parse_seed,
)


class StylizeHandlers:
    """The Stylize tab's event functions (a part of :class:`app_handlers.Handlers`)."""

    def _to_stylize(self, path: str, caption: bool):
        copy = download_copy(path, caption)
        return copy, self.stylize_load(copy), gr.Tabs(selected="stylize"), _provenance(copy), []

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
            with LOAD.threads():  # every core while this request runs alone (sketchface.serving)
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
