"""Which models the app serves: discovery from CLI flags, environment variables and local folders; loading.

Each model *kind* has a CLI flag and an environment variable naming one or more local folders or Hub repo ids
(comma-separated in the variable; the flag may repeat). Without either, the bundled starter checkpoints under
``checkpoints/`` are used when present. Loading never needs the network for local folders; a Hub id is used
from the local Hugging Face cache when cached, downloaded when the Hub is reachable, and otherwise reported as
unavailable with the reason (the app carries on without it).

>>> registry = Registry.discover({"mvae": ["checkpoints/mvae-procedural-64"]})   # doctest: +SKIP
>>> registry.load()                                                               # doctest: +SKIP
>>> [e.key for e in registry.loaded("attributes")]                                # doctest: +SKIP

This module imports neither gradio nor (until :meth:`Registry.load`) torch.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for hints only: this module does not import torch until Registry.load
    from .pipelines.base import FacePipeline

#: Repository root (the folder holding ``checkpoints/``) for the starter defaults.
ROOT = Path(__file__).resolve().parent.parent
#: A Hugging Face Hub repo id: ``owner/name`` (exactly one slash; the owner starts with a letter or digit).
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Kind:
    """A kind of model the app can serve.

    ``task``: "attributes" (attributes/text → faces), "sketch" (sketch → faces), "classifier" or "stylize";
    ``loader``: "module:Class" with ``from_pretrained(folder)``; ``defaults``: starter folders under the root.
    """

    name: str
    task: str
    loader: str
    defaults: tuple[str, ...]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "SKETCHFACE_" + self.name.upper()


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "mvae",
            "attributes",
            "sketchface.pipelines.attribute_to_face:AttributeToFace",
            ("checkpoints/mvae-procedural-64", "checkpoints/mvae-celeba-mini-64"),
            "multimodal VAE (paper 1, approach 2): attributes or words (and a sketch, if it has a sketch expert)",
        ),
        Kind(
            "cvae",
            "attributes",
            "sketchface.pipelines.attribute_to_face:AttributeToFace",
            ("checkpoints/cvae-procedural-64",),
            "cross-modal VAE (paper 1, approach 1): attributes → face",
        ),
        Kind(
            "layout_face",
            "attributes",
            "sketchface.pipelines.layout_face:LayoutFacePipeline",
            ("checkpoints/layout-celeba-mini-64",),
            "words → photographic faces trained on real faces (coarse colour layout prior + U-Net renderer)",
        ),
        Kind(
            "translator",
            "sketch",
            "sketchface.pipelines.translator:SketchTranslatorPipeline",
            ("checkpoints/translator-celeba-mini-128",),
            "direct sketch → photo translator trained on real faces (pix2pix U-Net + style code): sketch or photo → "
            "photographic faces",
        ),
        Kind(
            "psp",
            "sketch",
            "sketchface.pipelines.sketch_to_face:SketchToFace",
            ("checkpoints/psp-procedural-64",),
            "pSp encoder + StyleGAN2 generator (paper 2): sketch → faces",
        ),
        Kind(
            "classifier",
            "classifier",
            "sketchface.models.classifier:AttributeClassifier",
            ("checkpoints/classifier-procedural-64",),
            "attribute classifier: checks which requested attributes a candidate shows",
        ),
        Kind(
            "instruct_pix2pix",
            "stylize",
            "",  # loaded lazily by sketchface.pipelines.stylize on first use (about 1 GB)
            ("timbrooks/instruct-pix2pix",),
            "InstructPix2Pix (paper 2, stage two): free-form text edits; needs its weights cached or the Hub",
        ),
    )
}


@dataclass
class ModelEntry:
    """One configured model: where it comes from, whether it loaded, and why not."""

    kind: str
    source: str
    origin: str  # "local folder" | "Hugging Face Hub" | "not found"
    from_default: bool = False
    pipeline: Any = None
    status: str = "not loaded"  # "loaded" | "unavailable" | "not loaded" | "lazy"
    reason: str = ""
    card: str = ""
    folder: str | None = None
    load_seconds: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.source.rstrip("/")).name if self.origin != "Hugging Face Hub" else self.source

    @property
    def key(self) -> str:
        """Label shown in model pickers, e.g. ``"mvae · mvae-procedural-64"``."""
        return f"{self.kind} · {self.name}"

    @property
    def task(self) -> str:
        return KINDS[self.kind].task

    @property
    def ok(self) -> bool:
        return self.status == "loaded" and self.pipeline is not None


def split_sources(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b,c"]`` → ``["a", "b", "c"]`` (blank items dropped)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [s.strip() for item in items for s in str(item).split(",") if s.strip()]


def is_hub_repo_id(text: str) -> bool:
    """Whether ``text`` has the shape of a Hub repo id ``owner/name`` (not a path such as ``./x`` or ``/x/y``)."""
    return HUB_REPO_ID.match(text) is not None


def _origin(source: str, root: Path) -> tuple[str, str | None]:
    for candidate in (Path(source).expanduser(), root / source):
        if candidate.is_dir():
            return "local folder", str(candidate.resolve())
    if is_hub_repo_id(source):
        return "Hugging Face Hub", None
    return "not found", None


def _read_card(folder: str | None) -> str:
    if folder is None:
        return ""
    readme = Path(folder) / "README.md"
    try:
        return readme.read_text(encoding="utf-8")[:20_000]
    except OSError:
        return ""


def _read_config(folder: str | None) -> dict[str, Any]:
    import json

    if folder is None:
        return {}
    try:
        data = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    from .models.auto import normalise_config  # flat, with model_type, whatever year the folder was written

    return normalise_config(data) if isinstance(data, dict) else {}


_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether the Hugging Face Hub must not be contacted: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set now,
    or huggingface_hub's own offline flag (which it read from the environment when it was imported)."""
    if any(os.environ.get(v, "").strip().upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_folder(repo_id: str) -> tuple[str | None, str]:
    """Local snapshot of ``repo_id``: from the cache, else downloaded when the Hub answers; else (None, why).

    Offline (:func:`hub_offline`) only the cache is looked at: no connection is attempted, not even a probe.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return None, "huggingface_hub is not installed"
    try:
        return snapshot_download(repo_id, local_files_only=True), "from the local Hugging Face cache"
    except Exception:  # noqa: BLE001 - not cached: fall through to the network
        pass
    if hub_offline():
        return None, (
            "not in the local Hugging Face cache, and offline mode is on (HF_HUB_OFFLINE), so the Hub was not asked; "
            f"download it where there is a network (`hf download {repo_id}`) and copy the cache here"
        )
    from .hub import hub_reachable

    reachable, why = hub_reachable(timeout=3.0)
    if not reachable:
        return None, f"not in the local Hugging Face cache and the Hub is unreachable ({why})"
    try:
        return snapshot_download(repo_id), "downloaded from the Hugging Face Hub"
    except Exception as err:  # noqa: BLE001 - report any Hub error (missing repo, auth, ...) as the reason
        return None, f"download failed: {type(err).__name__}: {err}"


def _import(loader: str) -> Any:
    module, _, attr = loader.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry:
    """The configured models, in the order they were named (CLI flags / env vars first, then starters)."""

    def __init__(self, entries: Iterable[ModelEntry] = (), *, root: str | os.PathLike[str] = ROOT):
        self.entries: list[ModelEntry] = list(entries)
        self.root = Path(root)
        self.load_seconds: float | None = None

    # -- discovery ---------------------------------------------------------------------------------------
    @classmethod
    def discover(
        cls,
        flags: Mapping[str, str | Iterable[str] | None] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        root: str | os.PathLike[str] = ROOT,
        defaults: bool = True,
    ) -> Registry:
        """Entries for every kind: CLI ``flags[kind]`` if given, else ``$SKETCHFACE_<KIND>``, else the starters
        that exist under ``root`` (InstructPix2Pix's default Hub id is always listed; it loads lazily)."""
        flags = dict(flags or {})
        env = os.environ if env is None else env
        root = Path(root)
        entries: list[ModelEntry] = []
        for kind in KINDS.values():
            sources = split_sources(flags.get(kind.name)) or split_sources(env.get(kind.env))
            from_default = not sources
            if from_default and defaults:
                sources = [d for d in kind.defaults if kind.task == "stylize" or (root / d).is_dir()]
            for source in dict.fromkeys(sources):  # de-duplicated, order kept
                origin, folder = _origin(source, root)
                entry = ModelEntry(kind.name, source, origin, from_default=from_default, folder=folder)
                if kind.task == "stylize":
                    entry.status = "lazy"
                    entry.reason = "loads on first use"
                elif origin == "not found":
                    entry.status = "unavailable"
                    entry.reason = f"{source!r} is neither a local folder nor a Hugging Face repo id (owner/name)"
                entries.append(entry)
        return cls(entries, root=root)

    # -- loading -----------------------------------------------------------------------------------------
    def load(self, device: str | None = None) -> Registry:
        """Load every loadable entry (small models: seconds on a CPU). Failures are recorded, not raised."""
        t0 = time.perf_counter()
        for entry in self.entries:
            if entry.status in ("not loaded",):
                self.load_entry(entry, device=device)
        self.load_seconds = time.perf_counter() - t0
        return self

    def load_entry(self, entry: ModelEntry, device: str | None = None) -> ModelEntry:
        kind = KINDS[entry.kind]
        t0 = time.perf_counter()
        if entry.origin == "Hugging Face Hub" and entry.folder is None:
            folder, how = _hub_folder(entry.source)
            if folder is None:
                entry.status, entry.reason = "unavailable", how
                return entry
            entry.folder, entry.reason = folder, how
        entry.card = _read_card(entry.folder)
        entry.config = _read_config(entry.folder)
        cls = _import(kind.loader)
        try:
            model = cls.from_pretrained(entry.folder)
            if device is not None:
                model = model.to(device)
            if callable(getattr(model, "eval", None)):
                model.eval()
        except Exception as err:  # noqa: BLE001 - a broken checkpoint must not stop the app
            entry.status = "unavailable"
            entry.reason = f"loading failed: {type(err).__name__}: {err}"
            return entry
        entry.pipeline = model
        entry.status = "loaded"
        entry.reason = entry.reason or "local folder"
        entry.load_seconds = time.perf_counter() - t0
        return entry

    # -- queries -----------------------------------------------------------------------------------------
    def add(self, kind: str, pipeline: Any, source: str, *, card: str = "", origin: str = "in memory") -> ModelEntry:
        """Register an already-built pipeline (tests, notebooks)."""
        if kind not in KINDS:
            raise ValueError(f"Unknown kind {kind!r}; expected one of {sorted(KINDS)}")
        entry = ModelEntry(kind, source, origin, pipeline=pipeline, status="loaded", reason=origin, card=card)
        self.entries.append(entry)
        return entry

    def of_task(self, task: str) -> list[ModelEntry]:
        return [e for e in self.entries if KINDS[e.kind].task == task]

    def loaded(self, task: str | None = None) -> list[ModelEntry]:
        return [e for e in self.entries if e.ok and (task is None or e.task == task)]

    def get(self, key: str) -> ModelEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def first(self, kind: str) -> ModelEntry | None:
        return next((e for e in self.entries if e.kind == kind), None)

    def missing_kinds(self) -> list[Kind]:
        """Kinds with nothing loaded (nor lazily loadable), for the "what is not available" notes."""
        have = {e.kind for e in self.entries if e.ok or e.status == "lazy"}
        return [k for k in KINDS.values() if k.name not in have]


def has_sketch_input(pipeline: FacePipeline) -> bool:
    """Whether a pipeline declares that it draws from a sketch (``capabilities.takes_sketch``: the sketch pipelines,
    and an MVAE with a sketch expert)."""
    return pipeline.capabilities.takes_sketch


def attribute_agreement(
    classifier: Any, images: list[Any], requested: Mapping[str, bool | None]
) -> list[tuple[int, int]]:
    """For each image, ``(met, specified)``: how many of the requested (known) attributes the classifier sees.

    ``classifier`` is an :class:`~sketchface.models.classifier.AttributeClassifier`; images are PIL.
    """
    import torch

    from .attributes import INDEX
    from .metrics import to_tensor

    known = {k: v for k, v in requested.items() if v is not None}
    if not known or not images:
        return [(0, 0)] * len(images)
    device = next(classifier.parameters()).device
    with torch.inference_mode():
        probs = classifier.predict(to_tensor(images).to(device)).float().cpu().numpy()  # (N, 40)
    out = []
    for p in probs:
        met = sum(int((p[INDEX[name]] > 0.5) == value) for name, value in known.items())
        out.append((met, len(known)))
    return out


def add_cli_flags(parser: Any) -> None:
    """Add ``--mvae``, ``--cvae``, ``--psp``, ``--classifier``, ``--instruct-pix2pix`` to an argparse parser."""
    for kind in KINDS.values():
        parser.add_argument(
            kind.flag,
            dest=kind.name,
            action="append",
            metavar="PATH_OR_REPO",
            help=f"{kind.help}. Local folder or Hub repo id; repeat or comma-separate for several "
            f"(env {kind.env}; default: {', '.join(kind.defaults)})",
        )


__all__ = [
    "HUB_REPO_ID",
    "KINDS",
    "Kind",
    "ModelEntry",
    "Registry",
    "add_cli_flags",
    "attribute_agreement",
    "has_sketch_input",
    "hub_offline",
    "is_hub_repo_id",
    "split_sources",
]
