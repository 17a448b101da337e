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

from typing import Any

import torch

from ..attributes import MAX_INSTRUCTION_CHARS
from ..hub import hub_reachable
from .editing import BackendUnavailable, ProgressFn, StylizeResult, as_rgb_image, check_instruction
from .instruct_pix2pix import DEFAULT_INSTRUCT_PIX2PIX, ZERO_GPU_SECONDS, InstructPix2PixBackend, zero_gpu
from .latent_editor import AttributeNotEditable, EditNotUnderstood, LatentEditor, apply_edit_residual

BACKENDS = ("latent", "instruct-pix2pix")


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
    "ZERO_GPU_SECONDS",
    "AttributeNotEditable",
    "BackendUnavailable",
    "EditNotUnderstood",
    "InstructPix2PixBackend",
    "LatentEditor",
    "Stylizer",
    "StylizeResult",
    "apply_edit_residual",
    "as_rgb_image",
    "check_instruction",
    "hub_reachable",
    "zero_gpu",
]
