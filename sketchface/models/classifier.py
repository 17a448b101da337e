"""A small CNN that predicts the 40 CelebA attributes of a face image.

It judges generated faces (attribute fidelity), gives the feature space for the Fréchet classifier
distance (:func:`sketchface.metrics.frechet_classifier_distance`), and can read the attributes of an
uploaded photo. About 0.4 M parameters (≈ 1.7 MB of float32 weights): a batch of 64 faces at 64 px
runs in tens of milliseconds on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..attributes import NUM_ATTRIBUTES


@dataclass
class ClassifierConfig:
    """Hyper-parameters of :class:`AttributeClassifier` (JSON-serialisable: it becomes config.json)."""

    model_type: str = "attribute-classifier"
    image_size: int = 64  # inputs of any size are resized to this
    stem_width: int = 16
    widths: tuple[int, ...] | list[int] = field(default_factory=lambda: [24, 48, 96, 128])
    dropout: float = 0.1
    num_attributes: int = NUM_ATTRIBUTES

    def __post_init__(self) -> None:
        self.widths = [int(w) for w in self.widths]  # JSON gives lists; keep one type so configs compare equal
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if not self.widths:
            raise ValueError("widths must name at least one block")


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class AttributeClassifier(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="sketchface",
    tags=["sketchface", "celeba-attributes", "image-classification"],
    repo_url="https://github.com/sketchface/sketchface",
):
    """Multi-label attribute classifier: float (B, 3, H, W) in [0, 1] → logits (B, 40).

    Any input size works (it is resized to ``config.image_size`` with antialiasing). Attribute order is
    :data:`sketchface.attributes.ATTRIBUTES`. Call ``.eval()`` before :meth:`predict` / :meth:`features`
    (``from_pretrained`` already does).
    """

    def __init__(self, config: ClassifierConfig | dict | None = None):
        super().__init__()
        if config is None:
            config = ClassifierConfig()
        elif isinstance(config, dict):
            config = ClassifierConfig(**config)
        self.config = config
        self._hub_mixin_config = config  # huggingface_hub's mixin writes a dataclass config flat into config.json

        layers: list[nn.Module] = [_conv_bn_relu(3, config.stem_width)]  # full resolution: thin strokes matter
        c = config.stem_width
        for w in config.widths:
            # each block halves the resolution: (B, c, H, W) → (B, w, H/2, W/2)
            layers += [_conv_bn_relu(c, w, stride=2), _conv_bn_relu(w, w)]
            c = w
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c, config.num_attributes)
        self.feature_dim = c

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        x = x.to(dtype=self.head.weight.dtype, device=self.head.weight.device)
        s = self.config.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x * 2.0 - 1.0  # [0, 1] → [-1, 1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, D): globally average-pooled activations of the last block."""
        h = self.body(self._prepare(x))  # (B, D, s/2^k, s/2^k)
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_attributes); sigmoid gives the probability that each attribute is present."""
        return self.head(self.dropout(self.features(x)))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities (B, num_attributes) in [0, 1]."""
        return torch.sigmoid(self(x))


__all__ = ["AttributeClassifier", "ClassifierConfig"]
