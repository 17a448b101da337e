"""Text stylization: edit a composite by an instruction ("make the hair brown", "add glasses").

Two backends behind one front object, :class:`Stylizer`:

* :class:`LatentEditor` (``"latent"``, the offline default): the instruction is parsed into CelebA
  attribute changes with :func:`sketchface.attributes.parse_instruction`, the face is encoded by one of
  the project's own face pipelines (:class:`~sketchface.pipelines.base.FacePipeline`: MVAE attribute directions
  through ``AttributeToFace.edit``, or pSp W+ directions through ``SketchToFace.edit``), edited in latent space
  and decoded; only the regions the edit
  changed replace the input's pixels. Instant on a CPU; only the 40 CelebA attributes can be edited, and
  words it could not use are reported.
* :class:`InstructPix2PixBackend` (``"instruct-pix2pix"``): diffusers'
  ``StableDiffusionInstructPix2PixPipeline`` (paper 2's second stage), loaded lazily from a Hub id or a
  local folder. Any instruction, but it needs the weights (several GB) in the local cache or a
  reachable Hub, and a GPU to be quick. When the weights cannot be had it raises
  :class:`BackendUnavailable` within seconds instead of hanging.

Both return a :class:`StylizeResult`: the edited image plus what was done, for captions and metadata.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..attributes import HAIR_COLOURS, INDEX, MAX_INSTRUCTION_CHARS, parse_instruction, pretty
from ..registry import hub_offline, is_hub_repo_id

#: The InstructPix2Pix checkpoint of Brooks et al. on the Hugging Face Hub.
DEFAULT_INSTRUCT_PIX2PIX = "timbrooks/instruct-pix2pix"
BACKENDS = ("latent", "instruct-pix2pix")

ProgressFn = Callable[[int, int], Any]


class BackendUnavailable(RuntimeError):
    """A stylization backend cannot run here (weights missing and Hub unreachable, bad folder, ...)."""


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


@dataclass
class StylizeResult:
    """An edited face and what was done to it.

    ``changes`` maps CelebA attribute names to their requested state (latent editor; empty for
    InstructPix2Pix, which edits pixels directly); ``unknown_words`` are instruction words the latent
    editor could not use; ``params`` holds the backend's settings (steps, guidance, strength, sizes).
    """

    image: Image.Image
    changes: dict[str, bool]
    unknown_words: list[str]
    backend: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    caption: str = ""
    instruction: str = ""

    def to_metadata(self) -> dict[str, Any]:
        """Everything but the image, JSON-serialisable (for PNG text chunks or a sidecar file)."""
        return {
            "instruction": self.instruction,
            "changes": dict(self.changes),
            "unknown_words": list(self.unknown_words),
            "backend": self.backend,
            "seed": self.seed,
            "params": dict(self.params),
            "caption": self.caption,
        }


def check_instruction(instruction: str) -> str:
    """Return the stripped instruction; raise ``ValueError`` if it is empty or over 500 characters."""
    if not isinstance(instruction, str):
        raise ValueError(f"An instruction must be text; got {type(instruction).__name__}.")
    text = instruction.strip()
    if not text:
        raise ValueError("The instruction is empty: say what to change, e.g. 'make the hair brown'.")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise ValueError(
            f"The instruction has {len(text)} characters; at most {MAX_INSTRUCTION_CHARS} are accepted. "
            "Give one or a few short edits."
        )
    return text


def as_rgb_image(image: Any) -> Image.Image:
    """PIL image, uint8 array (H, W, 3) or float tensor/array (3, H, W) / (1, 3, H, W) in [0, 1] → RGB PIL."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (list, tuple)) and image:
        return as_rgb_image(image[0])
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 4:
            arr = arr[0]
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        return Image.fromarray(arr).convert("RGB")
    raise TypeError(f"Expected a PIL image, an array or a tensor; got {type(image).__name__}.")


def _describe_changes(changes: Mapping[str, bool]) -> str:
    on = [pretty(n) for n, v in changes.items() if v]
    off = [pretty(n) for n, v in changes.items() if not v]
    parts = []
    if on:
        parts.append(", ".join(on) + " on")
    if off:
        parts.append(", ".join(off) + " off")
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# Latent editor
# ----------------------------------------------------------------------------------------------


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
    ``train/evaluate_edits.py`` on procedural faces that are not the reported held-out ones (docs/models.md).
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


# ----------------------------------------------------------------------------------------------
# InstructPix2Pix
# ----------------------------------------------------------------------------------------------


#: Seconds of GPU a ZeroGPU Space asks for one InstructPix2Pix edit (20 steps at 512 px take a few seconds on an
#: A100; the margin covers the first call, which also moves the weights to the GPU).
ZERO_GPU_SECONDS = 60


def zero_gpu(fn: Callable[..., Any], duration: int = ZERO_GPU_SECONDS) -> Callable[..., Any]:
    """``fn`` under ZeroGPU's ``@spaces.GPU(duration=…)`` when the ``spaces`` package is installed (Hugging Face
    Spaces installs it; on other hardware the decorator does nothing), else ``fn`` itself. A ZeroGPU Space holds a
    GPU only while such a function runs."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def _run_instruct_pix2pix(pipe: Any, text: str, **kwargs: Any) -> Image.Image:
    """The GPU part of an InstructPix2Pix edit: the diffusers call (wrapped by :func:`zero_gpu` per backend)."""
    return pipe(text, **kwargs).images[0]


def hub_reachable(timeout: float = 2.0) -> tuple[bool, str]:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds (DNS included).

    Runs in a daemon thread so that a slow DNS lookup cannot hold the caller longer than ``timeout``.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    # Behind a proxy the Hub is reached through it: probe the proxy instead.
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY")
    url = urlparse(proxy if proxy and endpoint.startswith("https") else endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    result: list[tuple[bool, str]] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append((True, f"{host}:{port} reachable"))
        except OSError as err:
            result.append((False, f"cannot connect to {host}:{port} ({err.__class__.__name__}: {err})"))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return False, f"no answer from {host}:{port} within {timeout:g} s"
    return result[0]


def _incomplete_components(folder: Path) -> list[str]:
    """Components named in ``model_index.json`` whose folder is missing (a partial download)."""
    index = json.loads((folder / "model_index.json").read_text())
    missing = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        if name in {"safety_checker", "feature_extractor", "image_encoder"}:
            continue  # optional: not loaded by this backend
        if not (folder / name).is_dir():
            missing.append(name)
    return missing


class InstructPix2PixBackend:
    """diffusers' ``StableDiffusionInstructPix2PixPipeline``, loaded on first use.

    ``model`` is a Hub id (default ``timbrooks/instruct-pix2pix``) or a local folder written by
    ``save_pretrained``. Weights load in fp16 on CUDA and fp32 on CPU. The face is resized to the model's
    working size (``unet.sample_size × vae_scale_factor``: 512 for the real model) and the result back to
    the input size. Without the weights (not cached and the Hub unreachable, ``HF_HUB_OFFLINE=1``, or a
    bad folder) :meth:`load` and :meth:`edit` raise :class:`BackendUnavailable` within seconds.
    """

    name = "instruct-pix2pix"

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_INSTRUCT_PIX2PIX,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        steps: int = 20,
        guidance_scale: float = 7.5,
        image_guidance_scale: float = 1.5,
        working_size: int | None = None,
        allow_download: bool = True,
        hub_timeout: float = 2.0,
        safety_checker: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.model = str(model)
        self.cache_dir = None if cache_dir is None else str(cache_dir)  # None: the Hugging Face cache
        self._device = torch.device(device) if device is not None else None
        self._dtype = dtype
        self.steps = int(steps)
        self.guidance_scale = float(guidance_scale)
        self.image_guidance_scale = float(image_guidance_scale)
        self._working_size = working_size
        self.allow_download = allow_download
        self.hub_timeout = float(hub_timeout)
        self.safety_checker = safety_checker
        self.pipe: Any = None
        self._run = zero_gpu(_run_instruct_pix2pix)  # the diffusers call, on a ZeroGPU Space under @spaces.GPU

    # Where the weights are --------------------------------------------------------------------
    def _is_local(self) -> bool:
        """A folder (existing, or path-like); otherwise a Hub id ``owner/name`` (at most one slash)."""
        m = self.model
        return os.path.isdir(m) or os.path.isabs(m) or m.startswith((".", "~")) or not is_hub_repo_id(m)

    def _unavailable_message(self, cached: str, hub: str) -> str:
        return (
            f"InstructPix2Pix weights for {self.model!r} are {cached} and the Hub is unreachable: {hub}. "
            f"Use the latent editor (backend 'latent'), or download the weights where there is a network with "
            f"`hf download {self.model}` and copy the Hugging Face cache here, or pass a local folder written by "
            "save_pretrained."
        )

    def resolve(self) -> tuple[str, bool]:
        """``(path_or_repo, local_files_only)`` for ``from_pretrained``, without loading any weights.

        Raises :class:`BackendUnavailable` when the weights cannot be had; never waits on the network
        longer than ``hub_timeout``.
        """
        if self._is_local():
            folder = Path(self.model).expanduser()
            if not folder.is_dir():
                raise BackendUnavailable(f"InstructPix2Pix folder {str(folder)!r} does not exist.")
            if not (folder / "model_index.json").is_file():
                raise BackendUnavailable(
                    f"{str(folder)!r} has no model_index.json: not a diffusers pipeline folder "
                    "(write one with StableDiffusionInstructPix2PixPipeline.save_pretrained)."
                )
            missing = _incomplete_components(folder)
            if missing:
                raise BackendUnavailable(f"{str(folder)!r} lacks the pipeline components {missing}.")
            return str(folder), True

        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snapshot = Path(snapshot_download(self.model, local_files_only=True, cache_dir=self.cache_dir))
            if (snapshot / "model_index.json").is_file() and not _incomplete_components(snapshot):
                return self.model, True
            cached = "only partly in the local cache"
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            cached = "not in the local cache"
        if hub_offline():
            raise BackendUnavailable(self._unavailable_message(cached, "offline mode is on (HF_HUB_OFFLINE)"))
        if not self.allow_download:
            raise BackendUnavailable(
                f"InstructPix2Pix weights for {self.model!r} are {cached} and downloading is disabled "
                f"(allow_download=False). Use the latent editor, or run `hf download {self.model}`."
            )
        ok, why = hub_reachable(self.hub_timeout)
        if not ok:
            raise BackendUnavailable(self._unavailable_message(cached, why))
        return self.model, False

    def available(self) -> tuple[bool, str]:
        """``(ok, reason)`` without loading weights (may probe the Hub for ``hub_timeout`` seconds)."""
        if self.pipe is not None:
            return True, f"loaded from {self.model!r}"
        try:
            where, local = self.resolve()
        except BackendUnavailable as err:
            return False, str(err)
        if local:
            return True, f"weights found locally for {self.model!r} (loaded on first use)"
        return True, f"weights for {self.model!r} will be downloaded from the Hub on first use (several GB)"

    # Loading ------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        if self._dtype is not None:
            return self._dtype
        return torch.float16 if self.device.type == "cuda" else torch.float32

    def to(self, device: str | torch.device) -> InstructPix2PixBackend:
        self._device = torch.device(device)
        if self.pipe is not None:
            self.pipe.to(self.device, self.dtype)
        return self

    def load(self) -> Any:
        """Load (once) and return the diffusers pipeline; :class:`BackendUnavailable` if it cannot."""
        if self.pipe is not None:
            return self.pipe
        where, local_only = self.resolve()
        import diffusers.utils
        from diffusers import StableDiffusionInstructPix2PixPipeline

        # diffusers renamed torch_dtype to dtype (the old name warns); older releases only know torch_dtype.
        dtype_kw = "dtype" if hasattr(diffusers.utils, "_resolve_dtype") else "torch_dtype"
        extra: dict[str, Any] = (
            {} if self.safety_checker else {"safety_checker": None, "requires_safety_checker": False}
        )
        try:
            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                where, local_files_only=local_only, cache_dir=self.cache_dir, **{dtype_kw: self.dtype}, **extra
            )
        except (OSError, ValueError) as err:
            raise BackendUnavailable(f"Could not load InstructPix2Pix from {self.model!r}: {err}") from err
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        return pipe

    @property
    def working_size(self) -> int:
        """Side of the square the model works at (512 for timbrooks/instruct-pix2pix)."""
        if self._working_size is not None:
            return int(self._working_size)
        if self.pipe is None:
            return 512
        sample = self.pipe.unet.config.sample_size
        sample = sample[0] if isinstance(sample, (list, tuple)) else sample
        return int(sample) * int(self.pipe.vae_scale_factor)

    @torch.inference_mode()
    def edit(
        self,
        image: Any,
        instruction: str,
        *,
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float | None = None,
        image_guidance_scale: float | None = None,
        progress: ProgressFn | None = None,
    ) -> StylizeResult:
        """Edit ``image`` by ``instruction``; ``progress(done_steps, total_steps)`` after each step."""
        text = check_instruction(instruction)
        source = as_rgb_image(image)
        pipe = self.load()
        steps = self.steps if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"steps must be at least 1; got {steps}.")
        guidance = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        image_guidance = self.image_guidance_scale if image_guidance_scale is None else float(image_guidance_scale)
        size = self.working_size
        work = source.resize((size, size), Image.LANCZOS) if source.size != (size, size) else source
        callback = None
        if progress is not None:

            def callback(_pipe: Any, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
                progress(i + 1, steps)
                return kwargs

        # A CPU generator gives the same noise on every device (diffusers moves it).
        generator = torch.Generator("cpu").manual_seed(int(seed))
        t0 = time.perf_counter()
        out = self._run(
            pipe,
            text,
            image=work,
            num_inference_steps=steps,
            guidance_scale=guidance,
            image_guidance_scale=image_guidance,
            generator=generator,
            callback_on_step_end=callback,
        )
        seconds = time.perf_counter() - t0
        out = as_rgb_image(out)
        if out.size != source.size:
            out = out.resize(source.size, Image.LANCZOS)
        caption = (
            f"InstructPix2Pix: {text!r}, {steps} steps, text guidance {guidance:g}, "
            f"image guidance {image_guidance:g}, seed {int(seed)}."
        )
        return StylizeResult(
            image=out,
            instruction=text,
            changes={},
            unknown_words=[],
            backend=self.name,
            seed=int(seed),
            params={
                "model": self.model,
                "steps": steps,
                "guidance_scale": guidance,
                "image_guidance_scale": image_guidance,
                "working_size": size,
                "size": list(source.size),
                "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""),
                "seconds": round(seconds, 3),
            },
            caption=caption,
        )

    __call__ = edit


# ----------------------------------------------------------------------------------------------
# Front object
# ----------------------------------------------------------------------------------------------


class Stylizer:
    """Edit a face by a text instruction with the chosen backend (``"latent"`` or ``"instruct-pix2pix"``).

    >>> stylizer = Stylizer(latent=LatentEditor(attribute_to_face))      # doctest: +SKIP
    >>> result = stylizer(face, "make the hair brown and add glasses", seed=0)  # doctest: +SKIP
    >>> result.image, result.changes, result.caption                      # doctest: +SKIP
    """

    def __init__(
        self,
        latent: LatentEditor | None = None,
        instruct_pix2pix: InstructPix2PixBackend | None = None,
        *,
        default: str = "latent",
    ):
        if default not in BACKENDS:
            raise ValueError(f"default must be one of {BACKENDS}; got {default!r}.")
        self.latent = latent
        self.instruct_pix2pix = instruct_pix2pix
        self.default = default

    @classmethod
    def from_pretrained(
        cls,
        latent_checkpoint: str | None = None,
        *,
        latent_kind: str = "mvae",
        instruct_pix2pix: str | None = DEFAULT_INSTRUCT_PIX2PIX,
        default: str = "latent",
        **ip2p_kwargs: Any,
    ) -> Stylizer:
        """Latent editor from a project checkpoint (if given) + a lazily loaded InstructPix2Pix backend."""
        latent = LatentEditor.from_pretrained(latent_checkpoint, kind=latent_kind) if latent_checkpoint else None
        ip2p = InstructPix2PixBackend(instruct_pix2pix, **ip2p_kwargs) if instruct_pix2pix else None
        return cls(latent, ip2p, default=default)

    def _backend(self, name: str | None) -> LatentEditor | InstructPix2PixBackend:
        name = self.default if name is None else name
        if name not in BACKENDS:
            raise ValueError(f"Unknown backend {name!r}; expected one of {BACKENDS}.")
        backend = self.latent if name == "latent" else self.instruct_pix2pix
        if backend is None:
            raise BackendUnavailable(f"The {name!r} backend is not configured in this Stylizer.")
        return backend

    def backends(self) -> dict[str, tuple[bool, str]]:
        """``{name: (available, reason)}`` for both backends, loading no weights."""
        out = {}
        for name in BACKENDS:
            try:
                out[name] = self._backend(name).available()
            except BackendUnavailable as err:
                out[name] = (False, str(err))
        return out

    @property
    def device(self) -> torch.device:
        return self._backend(None).device

    def to(self, device: str | torch.device) -> Stylizer:
        for backend in (self.latent, self.instruct_pix2pix):
            if backend is not None:
                backend.to(device)
        return self

    def __call__(
        self,
        image: Any,
        instruction: str,
        *,
        backend: str | None = None,
        seed: int = 0,
        progress: ProgressFn | None = None,
        **params: Any,
    ) -> StylizeResult:
        """Edit ``image`` by ``instruction``. ``params`` go to the backend (``strength`` for the latent
        editor; ``steps``, ``guidance_scale``, ``image_guidance_scale`` for InstructPix2Pix)."""
        text = check_instruction(instruction)
        return self._backend(backend).edit(image, text, seed=seed, progress=progress, **params)

    edit = __call__


__all__ = [
    "BACKENDS",
    "DEFAULT_INSTRUCT_PIX2PIX",
    "MAX_INSTRUCTION_CHARS",
    "AttributeNotEditable",
    "BackendUnavailable",
    "EditNotUnderstood",
    "InstructPix2PixBackend",
    "LatentEditor",
    "Stylizer",
    "StylizeResult",
    "as_rgb_image",
    "check_instruction",
    "hub_reachable",
]
