"""Attributes (and/or a sketch) → candidate faces, with "more like this", crossing and attribute edits.

>>> pipe = AttributeToFace.from_pretrained("checkpoints/mvae-procedural-64")      # doctest: +SKIP
>>> out = pipe({"Male": True, "Eyeglasses": True}, num_images=8, seed=0)          # doctest: +SKIP
>>> more = pipe.variations(out.latents[3], num_images=8, seed=1, strength=0.5)   # doctest: +SKIP

A description is tri-state (:class:`sketchface.attributes.Attributes`): stated-present, stated-absent or
unknown. Unknown attributes are left to the model's posterior, so the candidates differ in what the witness
did not say and keep what they did. With an MVAE checkpoint, a sketch joins the description in the product of
experts (``sketch + "he wore glasses"``); the cross-modal VAE (paper 1, Approach 1) takes attributes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..attributes import ATTRIBUTES, NUM_ATTRIBUTES, Attributes, check_name, parse_description
from ..models.mvae import MVAE, CrossModalVAE, load_vae
from .base import Capabilities, FaceOutput, FacePipeline, check_num_images

#: Latent step per unit of edit strength along an attribute direction (see ``AttributeToFace.edit``); chosen
#: with ``evaluation/evaluate_edits.py`` on procedural faces that are not the reported held-out ones (docs/models.md).
EDIT_STEP = 2.5
#: Largest factor by which ``edit`` lengthens a step whose rendered face the model itself does not yet read as
#: changed (image expert → attribute decoder), and the logit margin it asks for (same provenance as ``EDIT_STEP``).
EDIT_MAX_BOOST = 2.0
EDIT_MARGIN = 3.0
#: How much a description counts in the MVAE's product of experts: the attribute expert's precision is multiplied
#: by it, against the prior and, when there is one, the sketch. At 1 (the plain PoE, as in the papers) the prior
#: pulls faces towards the average one and a sketch drowns out much of what the witness said (sketch + "glasses"
#: drew glasses on 31 % of faces with the first starter); higher, more of what was said shows and the candidates
#: differ as much as before. 6 suits the starter, whose decoder learnt to redraw a sketched face with what a weighted
#: description adds (``train/mvae.py --decoder_edits``): a sketch plus "Eyeglasses" draws glasses on about 9 faces
#: in 10 and the faces stay as close to the drawing as the sketch alone puts them. Chosen on procedural faces that
#: are not the held-out ones (``evaluation/evaluate.py --start_seed 20000000``, docs/models.md).
DESCRIPTION_WEIGHT = 6.0

AttributesLike = Attributes | str | Mapping[str, "bool | None"] | Sequence[float] | np.ndarray | torch.Tensor | None


def _to_attributes(attributes: AttributesLike) -> Attributes:
    """Attributes | text | {name: bool|None} | ±1/0 vector of length 40 | None (nothing known) → Attributes."""
    if attributes is None:
        return Attributes()
    if isinstance(attributes, Attributes):
        return attributes
    if isinstance(attributes, str):
        return parse_description(attributes).attributes
    if isinstance(attributes, Mapping):
        return Attributes(dict(attributes))  # raises UnknownAttributeError naming a bad key
    if torch.is_tensor(attributes):
        attributes = attributes.detach().cpu().numpy()
    arr = np.asarray(attributes)
    if arr.ndim != 1 or arr.shape[0] != NUM_ATTRIBUTES:
        raise ValueError(
            f"An attribute vector must have {NUM_ATTRIBUTES} values (±1 or 0 for unknown) in CelebA order; "
            f"got shape {arr.shape}."
        )
    return Attributes.from_vector(arr)


def _to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] → list of RGB PIL images."""
    arr = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in arr]


def _image_tensor(image: Any, size: int, channels: int) -> torch.Tensor:
    """PIL / ndarray (H, W[, C]) uint8 / tensor (C, H, W) in [0, 1] → (1, channels, size, size) float in [0, 1].

    Transparent pixels become white (the sketch background); images are resized to the model's size.
    """
    if torch.is_tensor(image):
        t = image.detach().float().cpu()
        if t.ndim == 4:
            t = t[0]
        if t.ndim == 2:
            t = t[None]
        if t.shape[0] not in (1, 3):
            raise ValueError(f"expected an image tensor (C, H, W) with 1 or 3 channels, got {tuple(image.shape)}")
        if channels == 1 and t.shape[0] == 3:
            t = (0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2])[None]
        elif channels == 3 and t.shape[0] == 1:
            t = t.expand(3, -1, -1)
        t = t[None]
        if t.shape[-2:] != (size, size):
            t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True)
        return t.clamp(0, 1)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, an array or a tensor; got {type(image).__name__}")
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BICUBIC)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr)
    t = t[None] if channels == 1 else t.permute(2, 0, 1)
    return t[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents a, b (D,) at fractions t (N,) → (N, D); linear if nearly parallel."""
    a_n, b_n = a / a.norm().clamp_min(1e-8), b / b.norm().clamp_min(1e-8)
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-6, 1 - 1e-6))
    t = t[:, None]
    if omega.abs() < 1e-3:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class AttributeToFace(FacePipeline):
    """Tri-state attributes (and/or a sketch) → N candidate faces from an MVAE or cross-modal VAE.

    Latents are the VAE's z, (N, latent_dim). Both models edit a latent along their attribute expert's directions;
    only the MVAE reads a face image (its image expert) and weighs a description against a sketch."""

    def __init__(self, model: MVAE | CrossModalVAE):
        if not isinstance(model, (MVAE, CrossModalVAE)):
            raise TypeError(f"AttributeToFace needs an MVAE or CrossModalVAE, got {type(model).__name__}")
        # channels_last: the CPU's oneDNN convolutions skip a layout reorder on every call (same outputs to 1e-6,
        # 10-20 % faster on the 2-core CPU; docs/history.md, "Speeding up pSp"). Only 4-D weights change layout.
        self.model = model.float().eval().to(memory_format=torch.channels_last)

    # --------------------------------------------------------------------------------------------- plumbing
    @classmethod
    def from_pretrained(cls, path_or_repo: str, **kwargs: Any) -> AttributeToFace:
        """Load a checkpoint folder or Hub repo (config.json + model.safetensors) of an MVAE or cross-modal VAE.

        Raises FileNotFoundError for a missing checkpoint and ValueError for one of another model type.
        """
        return cls(load_vae(str(path_or_repo), **kwargs))

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: str | torch.device) -> AttributeToFace:
        self.model.to(device)
        return self

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def capabilities(self) -> Capabilities:
        """Words always; a sketch with an MVAE that has a sketch expert; ``description_weight`` and an image encoder
        with an MVAE (its product of experts, its image expert); edits of all 40 attributes with both."""
        mvae = isinstance(self.model, MVAE)
        return Capabilities(
            takes_sketch=mvae and self.model.sketch_encoder is not None,
            takes_words=True,
            weighs_description=mvae,
            has_image_encoder=mvae,
            editable_attributes=tuple(ATTRIBUTES),
        )

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device="cpu").manual_seed(int(seed))

    def _randn(self, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
        return torch.randn(shape, generator=g).to(self.device)  # drawn on the CPU: same faces on any device

    def _attribute_input(self, attributes: Attributes, n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        values, known = attributes.to_model_input()
        v = torch.from_numpy(values).to(self.device)[None].expand(n, -1)
        k = torch.from_numpy(known).to(self.device)[None].expand(n, -1)
        return v, k

    # ------------------------------------------------------------------------------------------- posterior
    @torch.inference_mode()
    def posterior(
        self, attributes: AttributesLike = None, *, sketch: Any = None, description_weight: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | description, sketch) as (mu, logvar), each (1, latent_dim).

        MVAE: the attribute expert's precision is multiplied by ``description_weight`` (default
        :data:`DESCRIPTION_WEIGHT`; 1 = the plain product of experts). The cross-modal VAE has no product to weight:
        a ``description_weight`` is refused (ValueError), as is a sketch without a sketch expert."""
        attrs = _to_attributes(attributes)
        caps = self.capabilities
        if description_weight is not None and not caps.weighs_description:
            raise ValueError(
                f"description_weight: {type(self.model).__name__} has no product of experts to weigh a description in."
            )
        weight = DESCRIPTION_WEIGHT if description_weight is None else float(description_weight)
        if not (np.isfinite(weight) and weight > 0):
            raise ValueError(f"description_weight must be a positive number, got {description_weight!r}")
        if sketch is not None and not caps.takes_sketch:
            raise ValueError("This checkpoint has no sketch expert: use an MVAE trained with --sketch.")
        if isinstance(self.model, CrossModalVAE):
            v, k = self._attribute_input(attrs)
            return self.model.infer(values=v, known=k)
        s = _image_tensor(sketch, self.image_size, 1).to(self.device) if sketch is not None else None
        if attrs.is_empty and s is None:
            return self.model.infer()
        v, k = self._attribute_input(attrs) if not attrs.is_empty else (None, None)
        weights = {"attributes": weight} if v is not None else None
        return self.model.infer(values=v, known=k, sketch=s, weights=weights)

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
        """N candidate faces (PIL RGB, model size) for a description and/or a sketch, and their latents
        (N, latent_dim): z = mu + temperature · sigma · eps, decoded in one batch; same seed → same faces.
        ``description_weight``: how much the description counts (see :meth:`posterior`)."""
        n = check_num_images(num_images)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        mu, logvar = self.posterior(attributes, sketch=sketch, description_weight=description_weight)
        eps = self._randn((n, mu.shape[1]), self._generator(seed))
        z = mu + float(temperature) * torch.exp(0.5 * logvar) * eps  # (N, D)
        return FaceOutput(_to_pil(self.model.decode(z)), z.cpu())

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        """Latents (N, D) or (D,) → faces."""
        z = torch.as_tensor(latents, dtype=torch.float32).to(self.device)
        return _to_pil(self.model.decode(z.reshape(-1, z.shape[-1])))

    # ------------------------------------------------------------------------------------ latents of images
    @torch.inference_mode()
    def encode(self, image: Any) -> torch.Tensor:
        """Image → latent (1, latent_dim): the mean of q(z | image) = PoE(prior, image expert). MVAE only."""
        mu, _ = self._image_posterior(image)
        return mu.cpu()

    @torch.inference_mode()
    def reconstruct(self, image: Any) -> Image.Image:
        """The model's rendering of a face: decode(mean of q(z | image)). MVAE only."""
        return self.decode(self._image_posterior(image)[0])[0]

    def _image_posterior(self, image: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.capabilities.has_image_encoder:
            raise ValueError("The cross-modal VAE has no image encoder: pass a latent (FaceOutput.latents) instead.")
        x = _image_tensor(image, self.image_size, 3).to(self.device)
        return self.model.infer(image=x)

    @staticmethod
    def _is_latent(x: Any) -> bool:
        """A latent of one face: (latent_dim,) or (1, latent_dim), a tensor or an array (anything else is an image)."""
        return (torch.is_tensor(x) or isinstance(x, np.ndarray)) and (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1))

    def _as_latent(self, image_or_latent: Any) -> torch.Tensor:
        """One face's latent (latent_dim,): a latent as given, or an image's (MVAE: its image expert's mean)."""
        if self._is_latent(image_or_latent):
            z = torch.as_tensor(image_or_latent).reshape(-1)
            if z.shape[0] != self.model.config.latent_dim:
                raise ValueError(f"a latent must have {self.model.config.latent_dim} values, got {z.shape[0]}")
            return z.float().to(self.device)
        return self.encode(image_or_latent)[0].to(self.device)

    # ---------------------------------------------------------------------------------- breeding the faces
    @torch.inference_mode()
    def variations(
        self, latent_or_image: Any, *, num_images: int = 8, seed: int = 0, strength: float = 0.5
    ) -> FaceOutput:
        """ "More like this": N faces near a chosen one, z_i = sqrt(1 - s²) · z + s · eps_i (s = strength in [0, 1]).

        The mix keeps the prior's scale, so strength 0 returns the face itself and 1 a fresh prior sample. A face
        image (MVAE) starts from its image expert's mean.
        """
        n = check_num_images(num_images)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        z0 = self._as_latent(latent_or_image)
        eps = self._randn((n, z0.shape[0]), self._generator(seed))
        z = (1 - strength**2) ** 0.5 * z0[None] + strength * eps
        return FaceOutput(_to_pil(self.model.decode(z)), z.cpu())

    @torch.inference_mode()
    def cross(self, latent_a: Any, latent_b: Any, *, num_images: int = 5, spherical: bool = True) -> FaceOutput:
        """Cross two candidates: N faces along the path from a to b (both ends included)."""
        n = check_num_images(num_images)
        a, b = self._as_latent(latent_a), self._as_latent(latent_b)
        t = torch.linspace(0, 1, n, device=self.device)
        z = slerp(a, b, t) if spherical else (1 - t[:, None]) * a + t[:, None] * b
        return FaceOutput(_to_pil(self.model.decode(z)), z.cpu())

    # -------------------------------------------------------------------------------------------------- edit
    @torch.inference_mode()
    def edit(
        self,
        latents: Any,
        changes: Mapping[str, bool],
        *,
        strength: float = 1.0,
        method: str = "context",
        max_boost: float | None = None,
    ) -> FaceOutput:
        """Change some attributes of faces → the edited faces (at the model's size) and their latents.

        ``latents``: (N, latent_dim) or (latent_dim,), e.g. :attr:`FaceOutput.latents`; or a face image (MVAE: its
        image expert's mean, or the picture itself with ``method="poe"``).

        ``method="context"`` (default): latent arithmetic along the attribute expert's directions *in this face's
        context*, ``z + strength · EDIT_STEP · Σ (mu(d with the attribute as asked) − mu(d with it opposite))``,
        where ``z`` is the image's posterior mean (or the given latent), ``d`` is the full 40-attribute
        description the model's attribute decoder reads off ``z`` with the requested changes applied, and
        ``mu(·)`` is the attribute expert's posterior mean given all 40. Holding the other 39 attributes fixed
        moves the face along what the one attribute changes *for this face*, not along what tends to come with
        it in the training data (adding a goatee does not also make the face more male). ``method="direction"``:
        the same with ``mu(·)`` given that one attribute and nothing else (one global direction per attribute).
        ``method="poe"``: PoE(prior, image expert, attribute expert(changes)) with the image expert's precision
        scaled by ``1 − 0.98 · strength`` so the stated changes win where they conflict with the picture (the
        MVAE's own conditioning; it redraws more of the face). The cross-modal VAE has neither an image expert
        nor an attribute decoder, so it always uses ``"direction"``.

        With ``"context"`` the step grows (up to ``max_boost`` times, default ``EDIT_MAX_BOOST``; 1 turns it off)
        until the model reads the change off its own rendering of the edited face (:meth:`_step_scale`), so
        attributes the decoder draws faintly get a longer step and the rest stay short. Deterministic (posterior
        means). Strength 0 returns the model's reconstruction.
        """
        if not changes:
            raise ValueError("No attribute changes given.")
        if method not in ("context", "direction", "poe"):
            raise ValueError(f"method must be 'context', 'direction' or 'poe', got {method!r}")
        for name, value in changes.items():
            check_name(name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"Change for {name} must be True or False, got {value!r}.")
        if (torch.is_tensor(latents) or isinstance(latents, np.ndarray)) and latents.ndim == 2 and len(latents) > 1:
            rows = [self._edit_one(z, changes, float(strength), method, max_boost) for z in latents]
        else:
            rows = [self._edit_one(latents, changes, float(strength), method, max_boost)]
        z = torch.cat(rows)  # (N, latent_dim)
        return FaceOutput(_to_pil(self.model.decode(z)), z.cpu())

    def _edit_one(
        self, image_or_latent: Any, changes: Mapping[str, bool], strength: float, method: str, max_boost: float | None
    ) -> torch.Tensor:
        """One face's edited latent (1, latent_dim) (see :meth:`edit`)."""
        if method != "poe" or isinstance(self.model, CrossModalVAE):
            z = self._as_latent(image_or_latent)
            contextual = method != "direction" and not isinstance(self.model, CrossModalVAE)
            context = self.read_attributes(z) if contextual else None
            step = self.edit_direction(changes, context=context)
            boost = (EDIT_MAX_BOOST if max_boost is None else float(max_boost)) if contextual else 1.0
            scale = self._step_scale(z, step, changes, strength, boost)
            return z[None] + scale * step
        if self._is_latent(image_or_latent):  # PoE needs the picture: decode the latent first
            image_or_latent = self.model.decode(self._as_latent(image_or_latent)[None])[0]
        v, k = self._attribute_input(Attributes({n: bool(x) for n, x in changes.items()}))
        x = _image_tensor(image_or_latent, self.image_size, 3).to(self.device)
        ex = self.model.experts(image=x, values=v, known=k)
        mu_x, logvar_x = ex["image"]
        weight = max(1.0 - 0.98 * strength, 1e-3)
        logvar_x = logvar_x - float(np.log(weight))  # precision · weight
        mu, _ = self.model.combine([(mu_x, logvar_x), ex["attributes"]])
        return mu

    @torch.inference_mode()
    def _step_scale(
        self, z: torch.Tensor, step: torch.Tensor, changes: Mapping[str, bool], strength: float, max_boost: float
    ) -> float:
        """The shortest of ``strength · (1, 1.25, 1.5, …, max_boost)`` whose decoded face, encoded again by the image
        expert, the attribute decoder reads with every change at logit margin ``EDIT_MARGIN``; ``strength`` itself
        if none does (an attribute the model cannot draw here only gets distorted by a longer step) or if
        ``max_boost ≤ 1``. The model checks its own rendering, not the evaluator's."""
        if max_boost <= 1.0 or strength <= 0:
            return strength
        boosts = torch.arange(1.0, float(max_boost) + 1e-6, 0.25, device=step.device)
        latents = z[None] + (strength * boosts)[:, None] * step[None]
        latents = self.model.infer(image=self.model.decode(latents))[0]  # what the rendered faces show
        logits = self.model.decode_attributes(latents)
        index = torch.tensor([ATTRIBUTES.index(n) for n in changes], device=step.device)
        sign = torch.tensor([1.0 if v else -1.0 for v in changes.values()], device=step.device)
        done = ((logits[:, index] * sign) > EDIT_MARGIN).all(dim=1)
        # none does: a longer step would only distort the face further, so keep the plain one
        first = int(done.nonzero()[0, 0]) if bool(done.any()) else 0
        return strength * float(boosts[first])

    @torch.inference_mode()
    def read_attributes(self, latent: torch.Tensor) -> dict[str, bool]:
        """The 40 attributes the model's attribute decoder reads off one latent (logit > 0 → present)."""
        if not isinstance(self.model, MVAE):  # the cross-modal VAE has no attribute decoder
            raise ValueError(f"{type(self.model).__name__} has no attribute decoder to read attributes with.")
        logits = self.model.decode_attributes(self._as_latent(latent)[None])[0]
        return {name: bool(x > 0) for name, x in zip(ATTRIBUTES, logits.tolist(), strict=True)}

    @torch.inference_mode()
    def edit_direction(self, changes: Mapping[str, bool], context: Mapping[str, bool] | None = None) -> torch.Tensor:
        """``EDIT_STEP · Σ (mu(attribute as requested) − mu(its opposite))`` over the changes → (latent_dim,).

        Without ``context`` each ``mu`` is the attribute expert's posterior mean given that one attribute alone;
        with ``context`` (a full or partial description of the face, e.g. :meth:`read_attributes`) it is given
        the context with all the changes applied, the one attribute set either way.
        """
        base = {n: bool(v) for n, v in (context or {}).items()}
        for name, value in changes.items():
            check_name(name)
            base[name] = bool(value)
        ons = [{**base, n: bool(v)} if context is not None else {n: bool(v)} for n, v in changes.items()]
        offs = [{**on, n: not bool(v)} for on, (n, v) in zip(ons, changes.items(), strict=True)]
        inputs = [self._attribute_input(Attributes(d)) for d in ons + offs]  # one batch: every on, then every off
        mu = self.model.infer(values=torch.cat([v for v, _ in inputs]), known=torch.cat([k for _, k in inputs]))[0]
        return EDIT_STEP * (mu[: len(ons)] - mu[len(ons) :]).sum(dim=0)


def criminal_sketch_grid(
    pipelines: Mapping[str, AttributeToFace], num_images: int = 8, seed: int = 0, cell: int = 64
) -> tuple[Image.Image, list[tuple[str, str]]]:
    """Paper 1's "criminal sketch test": one row per (model, criminal), ``num_images`` candidates per row.

    ``pipelines``: {row label: pipeline}. Uses :data:`sketchface.attributes.CRIMINALS` (three described
    suspects). Returns (grid image, row labels as (model, criminal text)) so a caller can caption the rows.
    """
    from ..attributes import CRIMINALS

    rows: list[list[Image.Image]] = []
    labels: list[tuple[str, str]] = []
    for name, pipe in pipelines.items():
        for criminal in CRIMINALS:
            faces = pipe(criminal.attributes, num_images=num_images, seed=seed).images
            rows.append([f.resize((cell, cell), Image.BICUBIC) for f in faces])
            labels.append((name, f"{criminal.name}: {criminal.text}"))
    grid = Image.new("RGB", (cell * num_images, cell * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, face in enumerate(row):
            grid.paste(face, (c * cell, r * cell))
    return grid, labels


__all__ = ["AttributeToFace", "criminal_sketch_grid", "slerp"]
