"""LayoutFacePipeline: a description → candidate photographic faces, with "more like this", crossing and attribute
edits (:class:`sketchface.models.layout_face.LayoutFace`, issue 25).

pipe = LayoutFacePipeline.from_pretrained("runs/layout-64/final")   # train/layout_face.py
out = pipe("young woman with glasses and blond hair", num_images=8, seed=0)
more = pipe.variations(out.latents[3], num_images=8, seed=1, strength=0.3)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..attributes import ATTRIBUTES, INDEX, NUM_ATTRIBUTES, check_name
from ..models.layout_face import LayoutFace
from ..trainer import native_bf16
from .attribute_to_face import AttributesLike, _to_attributes, _to_pil
from .base import Capabilities, FaceOutput, FacePipeline, check_num_images

#: an attribute drawn in fewer of the faces asked for it than this share is "seldom drawn" (see seldom_drawn)
SELDOM = 0.5


def seldom_drawn(eval_json: Path) -> dict[str, float]:
    """The attributes a saved model drew in under :data:`SELDOM` of the validation faces whose description stated
    them (name → share), from its ``eval.json``: the run-time settings' figures that
    ``scripts/layout_prior_sweep.py --record`` wrote (``prior_sweep``: all validation vectors, several draws) where
    present, else ``train/layout_face.py``'s final check (``present/<name>``); empty when the file is missing (a Hub
    model, an older folder) or unreadable."""
    try:
        record = json.loads(eval_json.read_text())
        final = record["prior_sweep"]["scores"] if "prior_sweep" in record else record["summary"]["eval"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    shares = {k.removeprefix("present/"): v for k, v in final.items() if k.startswith("present/")}
    numbers = {name: v for name, v in shares.items() if name in INDEX and isinstance(v, (int, float))}
    return {name: float(v) for name, v in numbers.items() if v < SELDOM}


class LayoutFacePipeline(FacePipeline):
    """Description in (attributes, words, a ±1/0 vector), candidate faces out (RGB PIL at the model's size), seeded.

    Each candidate draws its own coarse colour layout from the prior for the description and renders it; what the
    witness did not say (unknown attributes) varies between candidates as it varies between real people. The latent
    of a face is ``[z, a]``: its layout code (``layout_dim``) and the description it was drawn with (40 values, ±1 or
    0), so :meth:`decode` redraws it exactly. There is no image encoder: a face drawn by another model cannot be read
    back (its layout could be, its description not), so breeding needs candidates of this model.
    """

    capabilities = Capabilities(takes_words=True, editable_attributes=tuple(ATTRIBUTES))

    def __init__(self, model: LayoutFace, device: str | torch.device | None = None, *, bf16: bool | None = None):
        # channels_last: oneDNN's convolutions skip a layout reorder on every call (CPU)
        self.model = model.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        if device is not None:
            self.model.to(device)
        self._bf16 = bf16

    @property
    def bf16(self) -> bool:
        """Render in bfloat16 autocast: as asked, else where the device runs it natively (e.g. a CPU with AMX: 2.5×
        faster on the 2-core CPU, faces within a few levels of float32's)."""
        return native_bf16(self.device) if self._bf16 is None else bool(self._bf16)

    @classmethod
    def from_pretrained(cls, path_or_repo: str, device: str | torch.device | None = None) -> LayoutFacePipeline:
        """A saved model (local folder or Hub repo id; weights may be stored in half precision). A local folder's
        ``eval.json`` also gives :attr:`seldom_drawn`."""
        pipe = cls(LayoutFace.from_pretrained(path_or_repo, strict=True).float(), device=device)
        pipe.seldom_drawn = MappingProxyType(seldom_drawn(Path(path_or_repo) / "eval.json"))
        return pipe

    @property
    def device(self) -> torch.device:
        return self.model.layout_mean.device

    @property
    def image_size(self) -> int:
        return self.model.resolution

    resolution = image_size

    def to(self, device: str | torch.device) -> LayoutFacePipeline:
        self.model.to(device)
        return self

    def eval(self) -> LayoutFacePipeline:  # the registry calls eval() on what it loads
        return self

    @property
    def latent_dim(self) -> int:
        return self.model.layout_dim + NUM_ATTRIBUTES

    # ------------------------------------------------------------------------------------------------ helpers
    def values(self, attributes: AttributesLike) -> torch.Tensor:
        """A description → (1, 40) float: +1 present, −1 absent, 0 unknown."""
        vector = _to_attributes(attributes).to_vector().astype(np.float32)
        return torch.from_numpy(vector)[None].to(self.device)

    @staticmethod
    def _generator(seed: int) -> torch.Generator:
        return torch.Generator(device="cpu").manual_seed(int(seed))  # drawn on the CPU: same faces on any device

    def _as_latent(self, latent: Any) -> torch.Tensor:
        """One face's latent (latent_dim,), as :attr:`FaceOutput.latents` gives it; images are refused."""
        if not (torch.is_tensor(latent) or isinstance(latent, np.ndarray)) or latent.ndim not in (1, 2):
            raise ValueError(
                f"{type(self).__name__} has no image encoder: it cannot read a face image into its latent. Pick a "
                "candidate this model drew (its FaceOutput.latents row)."
            )
        z = torch.as_tensor(latent, dtype=torch.float32).reshape(-1)
        if z.shape[0] != self.latent_dim:
            raise ValueError(f"a latent of this model has {self.latent_dim} values, got {z.shape[0]}")
        return z.to(self.device)

    def _render(self, z: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(z, values).float()

    def _faces(self, z: torch.Tensor, values: torch.Tensor) -> FaceOutput:
        return FaceOutput(_to_pil(self._render(z, values)), torch.cat([z, values], 1).cpu())

    # --------------------------------------------------------------------------------------------- generate
    @torch.inference_mode()
    def __call__(
        self,
        attributes: AttributesLike = None,
        *,
        sketch: Any = None,
        num_images: int = 8,
        seed: int = 0,
        temperature: float = 1.0,
        description_weight: float | None = None,
    ) -> FaceOutput:
        """N candidate faces for a description and their latents (N, layout_dim + 40); the same seed gives the same
        faces. ``temperature`` scales how far the layouts stray from the description's most likely one (0: all
        candidates share it; 1: as much as real faces with that description differ). ``sketch`` and
        ``description_weight`` (the word pipelines' other options) are refused: this model draws from words alone
        and has no product of experts to weigh them in."""
        if sketch is not None:
            raise ValueError("sketch: this model draws from a description alone; use a sketch model (Sketch tab).")
        if description_weight is not None:
            raise ValueError("description_weight: this model has no product of experts to weigh a description in.")
        n = check_num_images(num_images)
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        values = self.values(attributes).expand(n, -1)
        z = self.model.sample_layout(values, self._generator(seed), temperature)
        return self._faces(z, values)

    @torch.inference_mode()
    def decode(self, latents: Any) -> list[Image.Image]:
        """Latents (N, latent_dim) or (latent_dim,) → faces."""
        lat = torch.as_tensor(latents, dtype=torch.float32).to(self.device)
        lat = lat.reshape(-1, lat.shape[-1])
        if lat.shape[1] != self.latent_dim:
            raise ValueError(f"latents of this model have {self.latent_dim} values, got {lat.shape[1]}")
        k = self.model.layout_dim
        return _to_pil(self._render(lat[:, :k], lat[:, k:]))

    # ---------------------------------------------------------------------------------- breeding the faces
    @torch.inference_mode()
    def variations(self, latent: Any, *, num_images: int = 8, seed: int = 0, strength: float = 0.5) -> FaceOutput:
        """ "More like this": N faces with the same description and layouts near the chosen one's: around the
        neighbours' mean layout ``m``, ``z_i = m + sqrt(1 − s²)·(z − m) + s·(d_i − m)`` with ``d_i`` fresh draws for the
        description; strength 0 returns the face itself, 1 fresh draws."""
        n = check_num_images(num_images)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        lat = self._as_latent(latent)
        k = self.model.layout_dim
        z0, values = lat[None, :k], lat[None, k:].expand(n, -1)
        mean = self.model.prior_mean(values[:1])
        draws = self.model.sample_layout(values, self._generator(seed))
        z = mean + (1 - strength**2) ** 0.5 * (z0 - mean) + strength * (draws - mean)
        return self._faces(z, values)

    @torch.inference_mode()
    def cross(self, latent_a: Any, latent_b: Any, *, num_images: int = 5) -> FaceOutput:
        """Cross two candidates: N faces along the straight path from a to b (both ends included); the layout and
        the description both blend (a value between −1 and 1 is a weaker statement of the attribute)."""
        n = check_num_images(num_images)
        a, b = self._as_latent(latent_a), self._as_latent(latent_b)
        t = torch.linspace(0, 1, n, device=self.device)[:, None]
        lat = (1 - t) * a + t * b
        k = self.model.layout_dim
        return self._faces(lat[:, :k], lat[:, k:])

    # -------------------------------------------------------------------------------------------------- edit
    @torch.inference_mode()
    def edit(self, latents: Any, changes: Mapping[str, bool], *, strength: float = 1.0) -> FaceOutput:
        """Change attributes of faces (latents (N, latent_dim) or (latent_dim,)): each named value moves
        ``strength`` of the way to +1 (True) or −1 (False), and the layout moves as the mean layout of the
        description's neighbours moves (lighter hair for blond), so the rest of the face stays. Strength 0 returns
        the faces unchanged."""
        if not changes:
            raise ValueError("edit needs at least one attribute change, e.g. {'Eyeglasses': True}")
        lat = torch.as_tensor(latents, dtype=torch.float32).to(self.device)
        lat = lat.reshape(-1, lat.shape[-1]).clone()
        if lat.shape[1] != self.latent_dim:
            raise ValueError(
                f"{type(self).__name__} edits latents of {self.latent_dim} values (FaceOutput.latents), got "
                f"{lat.shape[1]}; it has no image encoder to read a face."
            )
        k = self.model.layout_dim
        values = lat[:, k:].clone()
        for name, on in changes.items():
            check_name(name)
            i = INDEX[name]
            values[:, i] += float(strength) * ((1.0 if on else -1.0) - values[:, i])
        z = lat[:, :k] + self.model.prior_mean(values) - self.model.prior_mean(lat[:, k:])
        return self._faces(z, values)


__all__ = ["LayoutFacePipeline"]
