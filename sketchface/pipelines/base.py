"""The contract every face pipeline keeps (modelled on diffusers' ``DiffusionPipeline`` + ``BaseOutput``).

>>> pipe = SketchToFace.from_pretrained("checkpoints/psp-procedural-64")          # doctest: +SKIP
>>> out = pipe(sketch, num_images=4, seed=0)        # FaceOutput(images=[4 PIL faces], latents=(4, n, D))
>>> pipe.decode(out.latents)                         # the same four faces again
>>> pipe.edit(out.latents[:1], {"Eyeglasses": True}, strength=1.5).images[0]
>>> pipe.capabilities.takes_sketch, pipe.capabilities.editable_attributes

A pipeline is called with its main input (a description, a sketch) and keyword-only options: ``num_images`` and
``seed`` always, plus the options of that pipeline (``sketch``, ``description_weight``, ``mix_strength``, ...). What
it can do is *declared* in :attr:`FacePipeline.capabilities`; callers read that, never the signatures. A keyword a
pipeline does not take is refused by Python (``TypeError`` naming it); an option it takes but cannot honour with
this checkpoint (a sketch for an MVAE without a sketch expert, a description weight for the cross-modal VAE) is
refused with a ``ValueError`` naming it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from PIL import Image


@dataclass(frozen=True)
class Capabilities:
    """What a face pipeline takes and can do, declared by the pipeline (per checkpoint where it depends on one).

    ``takes_sketch``: ``__call__`` draws from a sketch (its main input, or ``sketch=`` for a word pipeline).
    ``takes_words``: ``__call__``'s main input is a description (CelebA attributes or plain words).
    ``weighs_description``: ``__call__`` takes ``description_weight`` (how much the words count against the rest).
    ``has_image_encoder``: :meth:`FacePipeline.encode` reads any face image into a latent (so an uploaded face can
    be edited). ``editable_attributes``: the attributes :meth:`FacePipeline.edit` can move; empty when it has no
    latent edits. ``words_with_sketch``: a sketch pipeline's ``__call__`` also takes ``attributes=`` (a description
    that the faces follow where the drawing leaves it open: hair colour, skin, sex, age).
    """

    takes_sketch: bool = False
    takes_words: bool = False
    weighs_description: bool = False
    has_image_encoder: bool = False
    editable_attributes: tuple[str, ...] = ()
    words_with_sketch: bool = False


@dataclass
class FaceOutput:
    """What a face pipeline returns: the faces (RGB PIL at the model's size) and their latents, row ``i`` for
    face ``i`` (``None`` when the pipeline has no latent space that :meth:`FacePipeline.decode` could redraw from)."""

    images: list[Image.Image]
    latents: torch.Tensor | None = None


def check_num_images(num_images: int) -> int:
    """``num_images`` as an int ≥ 1; ValueError otherwise."""
    if int(num_images) < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    return int(num_images)


class FacePipeline(ABC):
    """Base of the face pipelines: ``from_pretrained``, ``__call__ → FaceOutput``, ``encode``, ``decode``, ``edit``
    and the declared :class:`Capabilities`.

    Subclasses declare ``capabilities`` (a class attribute, or a property where it depends on the checkpoint) and
    implement ``from_pretrained``, ``__call__`` and ``decode``. ``encode`` and ``edit`` refuse, naming why, unless
    the capabilities say the pipeline can do them and the subclass implements them.
    """

    capabilities: Capabilities = Capabilities()
    #: attributes this checkpoint was measured to draw in under half of the faces whose description asks for them
    #: (name → the share drawn), so that a user can be told; empty where not measured
    seldom_drawn: Mapping[str, float] = MappingProxyType({})

    @classmethod
    @abstractmethod
    def from_pretrained(cls, path_or_repo: str, **kwargs: Any) -> FacePipeline:
        """Load a checkpoint folder or Hub repo id."""

    @abstractmethod
    def __call__(self, main_input: Any, /, *, num_images: int, seed: int, **options: Any) -> FaceOutput:
        """``num_images`` candidate faces for the main input; the same seed gives the same faces."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        """Latents (as in :attr:`FaceOutput.latents`) → the faces they draw."""

    def encode(self, image: Any) -> torch.Tensor:
        """A face image → its latent, a batch of one that :meth:`decode` and :meth:`edit` take."""
        raise ValueError(f"{type(self).__name__} has no image encoder: it cannot read a face into a latent.")

    def edit(self, latents: torch.Tensor, changes: Mapping[str, bool], *, strength: float = 1.0) -> FaceOutput:
        """Move latents by attribute changes (``{"Eyeglasses": True}``) → the edited faces and latents."""
        raise ValueError(f"{type(self).__name__} has no attribute edits: it cannot change {', '.join(changes)}.")


__all__ = ["Capabilities", "FaceOutput", "FacePipeline", "check_num_images"]
