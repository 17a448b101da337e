"""SketchToFace: a sketch -> candidate faces with pSp + StyleGAN2 (paper 2, stage one).

pipe = SketchToFace.from_pretrained("checkpoints/psp-procedural-64")
out = pipe(sketch, num_images=4, seed=0, mix_strength=0.5)   # out.images[0] = plain reconstruction
w_plus = out.latents[:1]                                       # (1, n_styles, style_dim): candidate 0's W+
edited = pipe.edit(w_plus, {"Eyeglasses": True, "Gray_Hair": True}, strength=1.5).images[0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..models.psp import PSP
from .base import Capabilities, FaceOutput, FacePipeline, check_num_images


def _to_pil_list(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> list of RGB PIL images."""
    arr = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).cpu().numpy(), mode="RGB") for a in arr]


def prepare_sketch(sketch: Any, size: int, normalize: bool | None = None) -> torch.Tensor:
    """Sketch (PIL, numpy array, path, bytes or image-editor dict) -> (1, 1, size, size) float in [0, 1].

    ``normalize=None`` normalises with :func:`sketchface.data.sketch.normalize_user_sketch` at 256 px or more
    (alpha to white, inverted dark backgrounds, crop to content, pad square) unless the input is already a square
    mode-"L" PIL image, which is taken as pre-normalised; then it is resized to ``size`` (Lanczos), as the training
    pairs are (:func:`sketchface.data.pairs.make_pair`). A tensor (1|3, H, W) or (B, C, H, W) in [0, 1] passes as is.
    Raises ``SketchError`` for unusable input.
    """
    if isinstance(sketch, torch.Tensor):
        x = sketch if sketch.ndim == 4 else sketch[None]
        return x.float()
    pre = isinstance(sketch, Image.Image) and sketch.mode == "L" and sketch.size[0] == sketch.size[1]
    if normalize is None:
        normalize = not pre
    if normalize:
        from ..data.sketch import normalize_user_sketch

        img = normalize_user_sketch(sketch, size=max(size, 256))
    else:
        img = sketch if isinstance(sketch, Image.Image) else Image.fromarray(np.asarray(sketch))
        img = img.convert("L")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    return arr.view(1, 1, size, size)


def _is_grey(img: Image.Image) -> bool:
    if img.mode in ("L", "LA", "1", "I", "F", "I;16"):
        return True
    a = np.asarray(img.convert("RGB"), dtype=np.int16)
    return int(np.abs(a - a.mean(axis=2, keepdims=True)).max()) <= 12


class SketchToFace(FacePipeline):
    """pSp sketch encoder + StyleGAN2 generator: PIL sketch in, PIL faces out, seeded.

    Multimodal outputs (paper 2, fig. 5): candidate 0 is the plain reconstruction; candidates 1..K-1 blend
    the fine (colour / texture) style layers of W+ with random styles from the mapping network by
    ``mix_strength`` (0 = identical to candidate 0, 1 = fine layers fully replaced). Coarse and middle layers
    (pose, face shape, features) always come from the sketch.
    """

    def __init__(self, psp: PSP, device: str | torch.device | None = None, truncation_psi: float = 0.7):
        # channels_last: the CPU's oneDNN convolutions skip a layout reorder on every call (same outputs to 1e-6,
        # 10-20 % faster on the 2-core CPU; docs/history.md, "Speeding up pSp"). Only 4-D weights change layout.
        self.psp = psp.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.truncation_psi = truncation_psi
        if device is not None:
            self.to(device)

    @classmethod
    def from_pretrained(cls, path_or_repo: str, device: str | torch.device | None = None, **kwargs) -> SketchToFace:
        """Load a PSP checkpoint (local folder or Hub repo id) saved by train/psp.py."""
        psp = PSP.from_pretrained(path_or_repo, strict=True).float()
        return cls(psp, device=device, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.psp.latent_avg.device

    def to(self, device: str | torch.device) -> SketchToFace:
        self.psp.to(device)
        return self

    @property
    def resolution(self) -> int:
        return self.psp.resolution

    @property
    def capabilities(self) -> Capabilities:
        """A sketch in; :meth:`encode` reads any face image (a colour photo through its computed sketch), so this
        pipeline can edit an uploaded face along the attribute directions the checkpoint has fitted."""
        return Capabilities(
            takes_sketch=True, has_image_encoder=True, editable_attributes=tuple(self.psp.editable_attributes)
        )

    # ----------------------------------------------------------------------------------- inputs
    def prepare_sketch(self, sketch: Any, normalize: bool | None = None) -> torch.Tensor:
        """Sketch (PIL, numpy array, path, bytes or image-editor dict) -> (1, 1, S, S) float in [0, 1] (see
        :func:`prepare_sketch`). Raises ``SketchError`` for unusable input."""
        return prepare_sketch(sketch, self.psp.cfg.encoder_input_size, normalize).to(self.device)

    @staticmethod
    def sketch_from_photo(photo: Any, mask: Any = None) -> Image.Image:
        """Paper 2's computed sketch of a face photo (colour dodge), for photo -> sketch -> face."""
        from ..data.sketch import photo_to_sketch

        return photo_to_sketch(photo, mask=mask)

    # ------------------------------------------------------------------------------------ main API
    @torch.inference_mode()
    def __call__(
        self,
        sketch: Any,
        *,
        num_images: int = 4,
        seed: int = 0,
        mix_strength: float = 0.5,
        normalize: bool | None = None,
    ) -> FaceOutput:
        """Sketch -> ``num_images`` candidate faces (RGB PIL at the generator resolution) and their W+
        (num_images, n_styles, style_dim)."""
        num_images = check_num_images(num_images)
        if not 0.0 <= mix_strength <= 1.0:
            raise ValueError(f"mix_strength must be in [0, 1], got {mix_strength}")
        w_plus, spatial = self.psp.encode_spatial(self.prepare_sketch(sketch, normalize))  # (1, n, D), code or None
        w_all = self.candidates(w_plus, num_images, seed, mix_strength)
        if spatial is not None:  # one spatial code (the sketch's) for all candidates; the styles vary them
            spatial = spatial.expand(num_images, -1, -1, -1)
        latents = self.psp.pack(w_all, spatial)
        return FaceOutput(self.decode(latents), latents.cpu())

    def candidates(self, w_plus: torch.Tensor, num_images: int, seed: int, mix_strength: float) -> torch.Tensor:
        """(1, n, D) -> (num_images, n, D): row 0 unchanged, rows 1.. fine layers mixed with random styles."""
        w = w_plus.expand(num_images, -1, -1)
        if num_images == 1 or mix_strength == 0:  # nothing to mix: skip the mapping network (~0.7 ms a sketch)
            return w.clone()
        g = torch.Generator().manual_seed(int(seed))
        w_rand = self.psp.random_styles(num_images, g, truncation_psi=self.truncation_psi)
        strength = torch.full((num_images, 1, 1), float(mix_strength), device=self.device)
        strength[0] = 0.0
        return self.psp.mix_fine(w, w_rand, 1.0) * strength + w * (1 - strength)

    @torch.inference_mode()
    def encode(self, image: Any, *, normalize: bool | None = None) -> torch.Tensor:
        """Sketch or face -> W+ (1, n_styles, style_dim), followed by the spatial code's rows for a model with one
        (:meth:`PSP.pack`).

        A colour photo goes through the computed sketch (:meth:`sketch_from_photo`) first, since the encoder reads
        sketches. The exact latents of faces this pipeline drew are in :attr:`FaceOutput.latents`.
        """
        if isinstance(image, Image.Image):
            if self.psp.cfg.in_channels == 1 and not _is_grey(image):
                image = self.sketch_from_photo(image)
                normalize = False if normalize is None else normalize
                if image.size[0] != image.size[1]:
                    normalize = True
        return self.psp.pack(*self.psp.encode_spatial(self.prepare_sketch(image, normalize)))

    @torch.inference_mode()
    def decode(self, w_plus: torch.Tensor) -> list[Image.Image]:
        """W+ (B, n_styles, style_dim) or (n_styles, style_dim) (with a spatial model's code, as ``latents`` of
        :class:`FaceOutput`) -> B RGB PIL images."""
        if w_plus.ndim == 2:
            w_plus = w_plus[None]
        w, spatial = self.psp.unpack(w_plus.to(self.device).float())
        return _to_pil_list(self.psp.decode(w, features=spatial))

    @torch.inference_mode()
    def edit(self, w_plus: torch.Tensor, changes: Mapping[str, bool], *, strength: float = 1.0) -> FaceOutput:
        """Move W+ (B, n_styles, style_dim) along the stored attribute directions (``{"Eyeglasses": True,
        "Smiling": False}``, see :meth:`PSP.edit`) -> the B edited faces and their W+.

        ``strength`` is in standard deviations of the attribute's signed distance over generator samples.
        Raises ``ValueError`` for an attribute without a fitted direction (see ``capabilities.editable_attributes``).
        """
        if w_plus.ndim == 2:
            w_plus = w_plus[None]
        w, spatial = self.psp.unpack(w_plus.to(self.device).float())
        edited = self.psp.pack(self.psp.edit(w, changes, strength), spatial)
        return FaceOutput(self.decode(edited), edited.cpu())
