"""SketchTranslatorPipeline: a sketch (or the paper-2 sketch of a photo) → candidate photographs, with the direct
translator (:class:`sketchface.models.translator.SketchTranslator`).

pipe = SketchTranslatorPipeline.from_pretrained("checkpoints/translator-celeba-mini-64")
faces = pipe(sketch, num_images=8, seed=0, mix_strength=0.5).images   # candidate 0: the most likely colouring
faces = pipe(sketch, attributes="blond woman", num_images=4).images     # a translator trained with words (attr_dim)
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from PIL import Image
from torch import nn

from ..models.translator import SketchTranslator
from ..trainer import native_bf16
from .attribute_to_face import AttributesLike, _to_attributes
from .base import Capabilities, FaceOutput, FacePipeline, check_num_images
from .sketch_to_face import _is_grey, _to_pil_list, prepare_sketch

#: Variety 1 draws style codes with this standard deviation times the model's ``style_temperature`` (the prior's is
#: 1, reached at the default 0.5 where ``style_temperature`` is 1).
MAX_TEMPERATURE = 2.0


class SketchTranslatorPipeline(FacePipeline):
    """Sketch in, candidate faces out (RGB PIL at the model's resolution), seeded.

    Candidate 0 uses style code 0 (the most likely colours and light for the drawing); candidates 1.. draw codes
    from N(0, t²·I) with ``t = 2 · mix_strength · config.style_temperature`` (0: all candidates equal candidate 0;
    0.5: the model's chosen spread, the prior it was trained with where ``style_temperature`` is 1). The drawing
    itself (shapes, features, hair line) is the same in every candidate.

    A translator trained with words (``attr_dim`` > 0) also takes ``attributes``: what the witness said (CelebA's 40,
    tri-state), which every candidate follows where the drawing leaves it open (hair colour, skin, sex, age).

    It has no latent space of its own: a face depends on the sketch's features as well as on its style code, so
    :attr:`FaceOutput.latents` is ``None``, and there is nothing to encode, decode or edit.
    """

    def __init__(self, model: SketchTranslator, device: str | torch.device | None = None, *, bf16: bool | None = None):
        # channels_last: oneDNN's convolutions skip a layout reorder on every call (CPU)
        self.model = model.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        if device is not None:
            self.model.to(device)
        self._bf16 = bf16
        self._bf16_copy: SketchTranslator | None = None

    @property
    def capabilities(self) -> Capabilities:
        """What this pipeline takes and can do (read by the app and the evaluation; never guessed from signatures)."""
        return Capabilities(takes_sketch=True, words_with_sketch=bool(self.model.attr_dim))

    @property
    def bf16(self) -> bool:
        """Draw in bfloat16 autocast: as asked, else where the device runs it natively (e.g. a CPU with AMX)."""
        return native_bf16(self.device) if self._bf16 is None else bool(self._bf16)

    @classmethod
    def from_pretrained(cls, path_or_repo: str, device: str | torch.device | None = None) -> SketchTranslatorPipeline:
        """A saved translator (local folder or Hub repo id; weights may be stored in half precision)."""
        return cls(SketchTranslator.from_pretrained(path_or_repo, strict=True).float(), device=device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def resolution(self) -> int:
        return self.model.resolution

    def to(self, device: str | torch.device) -> SketchTranslatorPipeline:
        self.model.to(device)
        self._bf16_copy = None
        return self

    def _drawer(self) -> SketchTranslator:
        """The network that draws: the model itself, or under bfloat16 a copy with its convolution and linear weights
        stored in bfloat16 (autocast would otherwise cast every weight again on every call: ~4 ms of the shipped
        translator's ~60 on a 2-core CPU, for the same pixels). Made on first use, so it holds the weights the model
        had then; the config is the model's own."""
        if not self.bf16:
            return self.model
        if self._bf16_copy is None:
            net = copy.deepcopy(self.model)
            for mod in net.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    mod.to(torch.bfloat16)
            net.config = self.model.config
            self._bf16_copy = net
        return self._bf16_copy

    def eval(self) -> SketchTranslatorPipeline:  # the registry calls eval() on what it loads
        return self

    def prepare_sketch(self, sketch: Any, normalize: bool | None = None) -> torch.Tensor:
        """(1, 1, R, R) in [0, 1]: see :func:`sketchface.pipelines.sketch_to_face.prepare_sketch`. A colour photo
        is turned into paper 2's sketch first."""
        if isinstance(sketch, Image.Image) and not _is_grey(sketch):
            from ..data.sketch import normalize_user_sketch, photo_to_sketch

            sketch, normalize = normalize_user_sketch(photo_to_sketch(sketch)), None
        return prepare_sketch(sketch, self.resolution, normalize).to(self.device)

    def words(self, attributes: AttributesLike) -> torch.Tensor | None:
        """A description → (1, 40) float (+1 present, −1 absent, 0 unknown), or None when nothing is stated. A
        translator without words (``attr_dim`` 0) refuses a description that states something."""
        vector = _to_attributes(attributes).to_vector()
        if not vector.any():
            return None
        if not self.model.attr_dim:
            raise ValueError(
                "this translator takes no words (it was trained on sketches alone); leave attributes out, or use a "
                "translator trained with --attr_dim 40"
            )
        return torch.from_numpy(vector.astype("float32"))[None].to(self.device)

    def style_codes(self, num_images: int, seed: int, mix_strength: float) -> torch.Tensor:
        """(num_images, style_dim): row 0 zeros, rows 1.. N(0, (2·mix_strength·style_temperature)²) draws from
        ``seed``."""
        g = torch.Generator().manual_seed(int(seed))
        t = MAX_TEMPERATURE * float(mix_strength) * self.model.config.style_temperature
        z = torch.randn(num_images, self.model.style_dim, generator=g) * t
        z[0] = 0
        return z.to(self.device)

    @torch.inference_mode()
    def __call__(
        self,
        sketch: Any,
        *,
        num_images: int = 4,
        seed: int = 0,
        mix_strength: float = 0.5,
        normalize: bool | None = None,
        attributes: AttributesLike = None,
        words_guidance: float | None = None,
    ) -> FaceOutput:
        """Sketch (+ a description, for a translator trained with words) → ``num_images`` candidate faces (RGB PIL at
        the model's resolution); no latents. ``words_guidance`` (default: the model's ``config.words_guidance``)
        scales how strongly the words act (1: as trained)."""
        num_images = check_num_images(num_images)
        if not 0.0 <= mix_strength <= 1.0:
            raise ValueError(f"mix_strength must be in [0, 1], got {mix_strength}")
        words = self.words(attributes)
        guidance = self.model.config.words_guidance if words_guidance is None else float(words_guidance)
        if not 0.0 <= guidance <= 10.0:
            raise ValueError(f"words_guidance must be between 0 and 10, got {guidance}")
        x = self.prepare_sketch(sketch, normalize).contiguous(memory_format=torch.channels_last)
        z = self.style_codes(num_images, seed, mix_strength) if self.model.style_dim else None
        net = self._drawer()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            rows = torch.zeros(num_images, dtype=torch.long, device=x.device)  # every candidate from the one sketch
            faces = net.draw(x, z, words, guidance, rows).float()
        # the sketch's own detail where the gate opens; candidate 0's gate serves all (its network in bfloat16 too)
        faces = net.add_detail(faces, x, shared=True, bf16=self.bf16)
        return FaceOutput(_to_pil_list(faces * 2 - 1), None)

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        """Refused: a face needs the sketch's features as well as a style code, so no latent redraws it alone."""
        raise ValueError(
            "SketchTranslatorPipeline has no latent space to decode: its faces depend on the sketch (its outputs "
            "carry latents=None)."
        )
