"""One entry point for every SketchFace checkpoint: ``config.json``'s ``model_type`` names the class.

Every model saves its config dataclass flat into ``config.json`` (huggingface_hub's ``PyTorchModelHubMixin``
round-trips dataclass configs), with a ``model_type`` field::

    from sketchface.models.auto import AutoModel, AutoPipeline

    model = AutoModel.from_pretrained("checkpoints/mvae-procedural-64")          # an MVAE
    pipe = AutoPipeline.from_pretrained("checkpoints/translator-celeba-mini-128")  # a SketchTranslatorPipeline

Folders written before the format was unified still load: the MVAE, cross-modal VAE and classifier nested their
config under a ``"config"`` key, and pSp and the StyleGAN generator had no ``model_type`` (recognised by their
fields). ``python -m sketchface.models.auto FOLDER...`` rewrites such a ``config.json`` in the current format.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

#: model_type → "module:Class" of the model.
MODELS: dict[str, str] = {
    "mvae": "sketchface.models.mvae:MVAE",
    "cvae": "sketchface.models.mvae:CrossModalVAE",
    "attribute-classifier": "sketchface.models.classifier:AttributeClassifier",
    "psp": "sketchface.models.psp:PSP",
    "stylegan2": "sketchface.models.stylegan:Generator",
    "sketch-translator": "sketchface.models.translator:SketchTranslator",
    "layout-face": "sketchface.models.layout_face:LayoutFace",
}

#: model_type → "module:Class" of the face pipeline that serves it (the classifier and a bare generator have none).
PIPELINES: dict[str, str] = {
    "mvae": "sketchface.pipelines.attribute_to_face:AttributeToFace",
    "cvae": "sketchface.pipelines.attribute_to_face:AttributeToFace",
    "psp": "sketchface.pipelines.sketch_to_face:SketchToFace",
    "sketch-translator": "sketchface.pipelines.translator:SketchTranslatorPipeline",
    "layout-face": "sketchface.pipelines.layout_face:LayoutFacePipeline",
}

# Fields that identify the configs written before every config.json carried a model_type.
_LEGACY_FIELDS = (
    ("psp", "fpn_channels"),
    ("attribute-classifier", "stem_width"),
    ("stylegan2", "n_mlp"),
)


class UnknownModelError(ValueError):
    """config.json names no model SketchFace knows (or is not a SketchFace config at all)."""


def _import(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def config_file(path_or_repo: str | Path, **hub_kwargs: Any) -> Path:
    """The ``config.json`` of a checkpoint folder or Hub repo id (downloaded, or from the local Hub cache)."""
    p = Path(path_or_repo)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"{path_or_repo}: no config.json (not a SketchFace checkpoint folder).")
        return p / "config.json"
    if p.exists():
        raise FileNotFoundError(f"{path_or_repo} is a file; pass the checkpoint folder (config.json + weights).")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(str(path_or_repo), "config.json", **hub_kwargs))
    except Exception as e:  # noqa: BLE001 - offline, missing repo, bad id: all mean "cannot find it"
        raise FileNotFoundError(
            f"Cannot find the checkpoint {str(path_or_repo)!r}: not a local folder, and the Hub lookup failed ({e})."
        ) from e


def normalise_config(raw: Any) -> dict[str, Any]:
    """A config.json's contents in the current format: flat, with ``model_type`` (legacy layouts recognised)."""
    if not isinstance(raw, dict):
        raise UnknownModelError(f"config.json must hold a JSON object, not {type(raw).__name__}.")
    config = dict(raw["config"]) if isinstance(raw.get("config"), dict) and len(raw) == 1 else dict(raw)
    if "model_type" not in config:
        found = next((t for t, key in _LEGACY_FIELDS if key in config), None)
        if found is not None:
            config = {"model_type": found, **config}
    return config


def read_config(path_or_repo: str | Path, **hub_kwargs: Any) -> dict[str, Any]:
    """The checkpoint's config (see :func:`normalise_config`)."""
    path = config_file(path_or_repo, **hub_kwargs)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnknownModelError(f"{path_or_repo}: config.json is not valid JSON ({e}).") from e
    return normalise_config(raw)


def model_type(path_or_repo: str | Path, **hub_kwargs: Any) -> str:
    """The ``model_type`` of a checkpoint; :class:`UnknownModelError` when SketchFace has no such model."""
    found = read_config(path_or_repo, **hub_kwargs).get("model_type")
    if found not in MODELS:
        raise UnknownModelError(
            f"{path_or_repo}: config.json describes model_type={found!r}; SketchFace knows {sorted(MODELS)}."
        )
    return found


class AutoModel:
    """``AutoModel.from_pretrained(folder_or_repo)``: the model class named by config.json's ``model_type``."""

    @staticmethod
    def from_pretrained(path_or_repo: str | Path, **kwargs: Any) -> Any:
        hub = {k: v for k, v in kwargs.items() if k in ("revision", "cache_dir", "token", "local_files_only")}
        cls = _import(MODELS[model_type(path_or_repo, **hub)])
        return cls.from_pretrained(str(path_or_repo), **kwargs)


class AutoPipeline:
    """``AutoPipeline.from_pretrained(folder_or_repo)``: the face pipeline that serves the checkpoint's model."""

    @staticmethod
    def from_pretrained(path_or_repo: str | Path, **kwargs: Any) -> Any:
        kind = model_type(path_or_repo)
        if kind not in PIPELINES:
            raise UnknownModelError(
                f"{path_or_repo} holds a {kind!r} model, which no face pipeline serves "
                f"(pipelines serve {sorted(PIPELINES)})."
            )
        return _import(PIPELINES[kind]).from_pretrained(str(path_or_repo), **kwargs)


def migrate(folder: str | Path) -> bool:
    """Rewrite ``folder/config.json`` in the current format (flat, with ``model_type``; nested generator configs
    of pSp too). Weights are untouched. Returns whether the file changed."""
    path = Path(folder) / "config.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    config = normalise_config(raw)
    if config.get("model_type") not in MODELS:
        raise UnknownModelError(f"{folder}: cannot tell which model config.json describes.")
    if config["model_type"] == "psp" and isinstance(config.get("generator"), dict):
        config["generator"] = {"model_type": "stylegan2", **config["generator"]}
    if config == raw:
        return False
    from ..training import atomic_write

    atomic_write(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return True


if __name__ == "__main__":  # python -m sketchface.models.auto FOLDER...
    for arg in sys.argv[1:]:
        print(f"{arg}: {'rewritten' if migrate(arg) else 'already current'}")
