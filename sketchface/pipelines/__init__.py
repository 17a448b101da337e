"""Pipelines between models and UI: PIL in, :class:`FaceOutput` (PIL faces + latents) out, seeded; one contract
(:class:`FacePipeline`) with declared :class:`Capabilities`.

Each pipeline lives in its own module and is imported on first access, so that importing one does not
load the others' dependencies (diffusers is only needed by the InstructPix2Pix backend).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Capabilities": "base",
    "FaceOutput": "base",
    "FacePipeline": "base",
    "AttributeToFace": "attribute_to_face",
    "SketchToFace": "sketch_to_face",
    "SketchTranslatorPipeline": "translator",
    "LayoutFacePipeline": "layout_face",
    "Stylizer": "stylize",
    "StylizeResult": "editing",
    "LatentEditor": "latent_editor",
    "InstructPix2PixBackend": "instruct_pix2pix",
    "BackendUnavailable": "editing",
    "EditNotUnderstood": "latent_editor",
    "AttributeNotEditable": "latent_editor",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_EXPORTS)
