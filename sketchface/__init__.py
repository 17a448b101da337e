"""SketchFace: forensic face composites from attributes, plain words or sketches.

``import sketchface`` is light (no torch import); pipelines and models load on first use::

    import sketchface
    sketchface.attributes.parse_description("Chubby young man with glasses")
    pipe = sketchface.AttributeToFace.from_pretrained("checkpoints/mvae-procedural-64")
"""

from __future__ import annotations

import importlib
from typing import Any

from . import attributes
from .attributes import ATTRIBUTES, Attributes, describe, parse_description

__version__ = "0.1.0"

# Public names that live in heavier modules, imported on first access (PEP 562).
_LAZY = {
    "AttributeToFace": "sketchface.pipelines",
    "FaceOutput": "sketchface.pipelines",
    "FacePipeline": "sketchface.pipelines",
    "SketchToFace": "sketchface.pipelines",
    "Stylizer": "sketchface.pipelines",
    "data": "sketchface.data",
    "metrics": "sketchface.metrics",
    "models": "sketchface.models",
    "pipelines": "sketchface.pipelines",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if module.__name__.endswith(name) else getattr(module, name)
    raise AttributeError(f"module 'sketchface' has no attribute {name!r}")


__all__ = ["ATTRIBUTES", "Attributes", "attributes", "describe", "parse_description", *_LAZY]
