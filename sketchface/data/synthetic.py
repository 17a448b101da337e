"""Synthetic stand-in faces for smoke tests: coloured ellipses with eyes and their outline sketches.

Far cheaper than the procedural renderer, so a training script's `--dataset synthetic` runs two steps in a test
within seconds. Items follow the dataset contract: ``image`` (3, S, S) and ``sketch`` (1, S, S) in [0, 1],
``labels`` (40,) all zero (these shapes carry no attributes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class SyntheticFaces(Dataset):
    """``length`` seeded items from ``start_seed``; item i is the same for the same seed."""

    def __init__(self, size: int, length: int, start_seed: int = 0):
        self.size, self.length, self.start_seed = size, length, start_seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.start_seed + i)
        s = self.size
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        c = torch.rand(3, 3, generator=g)  # background, skin, eye colours
        r = 0.5 + 0.3 * torch.rand(2, generator=g)
        face = ((xx / r[0]) ** 2 + (yy / r[1]) ** 2 < 1).float()  # (S, S)
        img = c[0].view(3, 1, 1) * (1 - face) + c[1].view(3, 1, 1) * face
        eyes = (((xx.abs() - 0.3) / 0.1) ** 2 + ((yy + 0.15) / 0.07) ** 2 < 1).float()
        img = img * (1 - eyes) + c[2].view(3, 1, 1) * eyes
        sketch = 1 - (F.max_pool2d(face[None], 3, 1, 1) - face[None]).clamp(0, 1)  # outline, dark on white
        return {"image": img.clamp(0, 1), "labels": torch.zeros(40), "sketch": sketch}
