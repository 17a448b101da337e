"""The InstructPix2Pix stylization backend: diffusers' pipeline, loaded lazily, under ZeroGPU on a Space.

Any instruction, but it needs the weights (several GB) in the local cache or a reachable Hub, and a GPU to be
quick. When the weights cannot be had it raises :class:`~.editing.BackendUnavailable` within seconds instead of
hanging (the Hub is probed with :func:`sketchface.hub.hub_reachable`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import hub
from ..registry import hub_offline, is_hub_repo_id
from .editing import BackendUnavailable, ProgressFn, StylizeResult, as_rgb_image, check_instruction

#: The InstructPix2Pix checkpoint of Brooks et al. on the Hugging Face Hub.
DEFAULT_INSTRUCT_PIX2PIX = "timbrooks/instruct-pix2pix"


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
        ok, why = hub.hub_reachable(self.hub_timeout)
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
