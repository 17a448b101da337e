"""The offline stylization backend: instruction → CelebA attribute changes → a latent edit with the project's models.

The instruction is parsed with :func:`sketchface.attributes.parse_instruction`, the face is encoded by one of the
project's face pipelines (MVAE attribute directions through ``AttributeToFace.edit``, or pSp W+ directions through
``SketchToFace.edit``), edited in latent space and decoded; only the regions the edit changed replace the input's
pixels (:func:`apply_edit_residual`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..attributes import HAIR_COLOURS, INDEX, parse_instruction, pretty
from .editing import ProgressFn, StylizeResult, as_rgb_image, check_instruction


class EditNotUnderstood(ValueError):
    """The latent editor could not map any word of the instruction to a CelebA attribute change."""

    def __init__(self, instruction: str, unknown_words: Sequence[str]):
        self.instruction = instruction
        self.unknown_words = list(unknown_words)
        words = ", ".join(repr(w) for w in self.unknown_words) or repr(instruction)
        super().__init__(
            f"Could not use {words}: the latent editor only changes the 40 CelebA attributes "
            "(e.g. 'make the hair brown', 'add glasses', 'remove the mustache', 'make her smile'). "
            "Rephrase, or use the InstructPix2Pix backend for free-form edits."
        )


class AttributeNotEditable(ValueError):
    """The instruction maps to attributes, but the editing model has no direction for any of them."""

    def __init__(self, names: Sequence[str], editable: Sequence[str]):
        self.names = list(names)
        self.editable = list(editable)
        super().__init__(
            f"This model cannot edit {', '.join(pretty(n) for n in self.names)}; it can edit: "
            f"{', '.join(pretty(n) for n in self.editable) or 'nothing'}."
        )


def _describe_changes(changes: Mapping[str, bool]) -> str:
    on = [pretty(n) for n, v in changes.items() if v]
    off = [pretty(n) for n, v in changes.items() if not v]
    parts = []
    if on:
        parts.append(", ".join(on) + " on")
    if off:
        parts.append(", ".join(off) + " off")
    return "; ".join(parts)


def _normalise_changes(changes: Mapping[str, Any]) -> dict[str, bool]:
    """Validate attribute names and make each value a bool (official order)."""
    out: dict[str, bool] = {}
    for name, value in changes.items():
        if name not in INDEX:
            raise ValueError(f"The parser returned {name!r}, which is not a CelebA attribute.")
        if value is None:
            continue
        out[name] = bool(value)
    # A hair colour switched on switches the others off (CelebA labels at most one).
    if any(out.get(c) for c in HAIR_COLOURS):
        for c in HAIR_COLOURS:
            out.setdefault(c, False)
    return dict(sorted(out.items(), key=lambda kv: INDEX[kv[0]]))


class LatentEditor:
    """Instruction → CelebA attribute changes → latent-space edit with one of the project's models.

    ``model`` is a face pipeline (:class:`~sketchface.pipelines.base.FacePipeline`) whose capabilities declare an
    image encoder and the attributes it can edit: ``AttributeToFace`` (MVAE: the attribute expert's directions in
    the face's own context, see ``AttributeToFace.edit``) or ``SketchToFace`` (pSp inversion + stored W+
    directions). The face goes through ``model.encode``, the latent through ``model.edit(latents, changes,
    strength=...)`` (``strength=None``: the model's default, since its scale is the model's: MVAE 0..1, pSp
    standard deviations); changes outside ``capabilities.editable_attributes`` are reported, not made. ``seed`` is
    recorded (the latent edits are deterministic).
    ``parser`` defaults to :func:`sketchface.attributes.parse_instruction` and must return an object with
    ``changes`` (dict name → bool) and ``unknown_words``.

    ``keep_details`` (default on): the result is the input picture, at its own size, with only the regions the
    edit changed taken from the model (:func:`apply_edit_residual`; the model's rendering of the unedited face is
    ``model.decode(latents)``). Off: the model's whole decoded face, resized to the input's size.
    """

    name = "latent"

    def __init__(
        self,
        model: Any,
        *,
        parser: Callable[[str], Any] | None = None,
        strength: float | None = None,
        keep_details: bool = True,
        detail_threshold: tuple[float, float] = (0.17, 0.47),
        detail_floor: float = 0.04,
        mask_grow: int = 3,
    ):
        from .base import Capabilities

        caps = getattr(model, "capabilities", None)
        if not isinstance(caps, Capabilities):
            raise TypeError(
                f"{type(model).__name__} is not a face pipeline: it declares no capabilities for encode / "
                "edit(latents, changes) / decode."
            )
        if not caps.has_image_encoder:
            raise ValueError(f"{type(model).__name__} has no image encoder, so it cannot read the face to edit.")
        self.model = model
        self._parser = parse_instruction if parser is None else parser
        self.strength = None if strength is None else float(strength)
        self.keep_details = bool(keep_details)
        self.detail_threshold = (float(detail_threshold[0]), float(detail_threshold[1]))
        self.detail_floor = float(detail_floor)
        self.mask_grow = int(mask_grow)

    @classmethod
    def from_pretrained(cls, path_or_repo: str, *, kind: str = "mvae", **kwargs: Any) -> LatentEditor:
        """Load the editing model: ``kind="mvae"`` → AttributeToFace, ``kind="psp"`` → SketchToFace."""
        if kind == "mvae":
            from .attribute_to_face import AttributeToFace as Pipeline
        elif kind == "psp":
            from .sketch_to_face import SketchToFace as Pipeline
        else:
            raise ValueError(f"kind must be 'mvae' or 'psp'; got {kind!r}.")
        return cls(Pipeline.from_pretrained(path_or_repo), **kwargs)

    @property
    def parser(self) -> Callable[[str], Any]:
        return self._parser

    @property
    def device(self) -> torch.device:
        return torch.device(getattr(self.model, "device", "cpu"))

    def to(self, device: str | torch.device) -> LatentEditor:
        if callable(getattr(self.model, "to", None)):
            self.model.to(device)
        return self

    def available(self) -> tuple[bool, str]:
        return True, "ready (offline latent editor)"

    def parse(self, instruction: str) -> tuple[dict[str, bool], list[str]]:
        """``(changes, unknown_words)``; raises :class:`EditNotUnderstood` when nothing maps."""
        text = check_instruction(instruction)
        parsed = self.parser(text)
        changes = _normalise_changes(getattr(parsed, "changes", {}) or {})
        unknown = [str(w) for w in (getattr(parsed, "unknown_words", []) or [])]
        if not changes:
            raise EditNotUnderstood(text, unknown or re.findall(r"[\w']+", text))
        return changes, unknown

    @torch.inference_mode()
    def edit(
        self,
        image: Any,
        instruction: str,
        *,
        seed: int = 0,
        strength: float | None = None,
        progress: ProgressFn | None = None,
        changes: Mapping[str, bool] | None = None,
    ) -> StylizeResult:
        """Edit ``image`` by ``instruction`` (or by explicit ``changes``, skipping the parser)."""
        text = check_instruction(instruction) if changes is None else (instruction or "").strip()
        if changes is None:
            changes_, unknown = self.parse(text)
        else:
            changes_, unknown = _normalise_changes(changes), []
            if not changes_:
                raise ValueError("No attribute changes given.")
        source = as_rgb_image(image)
        strength = self.strength if strength is None else float(strength)
        # The model declares what it can move (SketchToFace: the fitted directions); the rest is reported, not made.
        editable = list(self.model.capabilities.editable_attributes)
        not_editable = [n for n in changes_ if n not in editable]
        if len(not_editable) == len(changes_):
            raise AttributeNotEditable(not_editable, editable)
        changes_ = {n: v for n, v in changes_.items() if n in editable}
        if progress is not None:
            progress(0, 1)
        # strength None = the model's own default (its scale differs: MVAE 0..1, pSp standard deviations).
        kwargs = {} if strength is None else {"strength": strength}
        latents = self.model.encode(source)
        out = as_rgb_image(self.model.edit(latents, dict(changes_), **kwargs).images[0])
        model_size = out.size
        recon = as_rgb_image(self.model.decode(latents)[0]) if self.keep_details else None
        if recon is not None:
            low, high = self.detail_threshold
            out = apply_edit_residual(source, out, recon, low, high, self.detail_floor, self.mask_grow)
        elif out.size != source.size:
            out = out.resize(source.size, Image.BICUBIC)
        if progress is not None:
            progress(1, 1)
        caption = f"Latent editor: {_describe_changes(changes_)}"
        if unknown:
            caption += f". Not used: {', '.join(repr(w) for w in unknown)}"
        if not_editable:
            caption += f". This model cannot edit {', '.join(pretty(n) for n in not_editable)}"
        caption += f". Seed {int(seed)}."
        return StylizeResult(
            image=out,
            instruction=text,
            changes=changes_,
            unknown_words=unknown,
            backend=self.name,
            seed=int(seed),
            params={
                "strength": strength,
                "keep_details": recon is not None,
                "model": type(self.model).__name__,
                "model_size": list(model_size),
                "not_editable": not_editable,
                "size": list(source.size),
            },
            caption=caption,
        )

    __call__ = edit


def apply_edit_residual(
    source: Image.Image,
    edited: Image.Image,
    recon: Image.Image,
    low: float = 0.17,
    high: float = 0.47,
    floor: float = 0.04,
    grow: int = 3,
) -> Image.Image:
    """Carry an edit over to the original picture, at the source's size: ``mask · edited + (1 − mask) · source``.

    A small model's decoder loses detail (and a VAE's blurs), so returning its output would change the whole
    face. Only the regions the edit changed are taken from it. ``diff`` is the per-pixel difference (largest
    channel, values in [0, 1]) between the model's rendering of the edited latent and of the unedited one
    (``recon``); the mask is 0 below ``max(floor, low · max(diff))`` and 1 above ``high · max(diff)``, so a
    faint edit (thin glasses frames) counts as much as a strong one (a new hair colour) while decoder noise below
    ``floor`` never does. The mask is dilated, then feathered, with a ``grow`` × ``grow`` window (pixels of the
    model's size, made odd). Everything outside it is the source, pixel for pixel. The defaults were chosen with
    ``evaluation/evaluate_edits.py`` on procedural faces that are not the reported held-out ones (docs/models.md).
    """
    w, h = source.size
    e = torch.from_numpy(np.asarray(edited.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    r = np.asarray(recon.convert("RGB").resize(edited.size, Image.BICUBIC), dtype=np.float32) / 255.0
    diff = (e - torch.from_numpy(r).permute(2, 0, 1)[None]).abs().amax(dim=1, keepdim=True)
    peak = float(diff.max())
    lo = max(floor, low * peak)
    hi = max(lo + 1e-3, high * peak)
    mask = ((diff - lo) / (hi - lo)).clamp(0, 1)
    if grow > 0:
        k = 2 * (grow // 2) + 1
        mask = F.max_pool2d(mask, k, stride=1, padding=k // 2)
        mask = F.avg_pool2d(mask, k, stride=1, padding=k // 2, count_include_pad=False)
    if (h, w) != tuple(e.shape[-2:]):
        mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False)
        e = F.interpolate(e, size=(h, w), mode="bilinear", align_corners=False)
    src = torch.from_numpy(np.asarray(source.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    out = (mask * e + (1 - mask) * src).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return Image.fromarray((out * 255.0).round().astype(np.uint8), "RGB")
