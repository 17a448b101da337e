"""App fixtures: a model registry of tiny models for tests/test_app*.py (no starter checkpoints needed).

The sketch model is a real, randomly initialised tiny pSp saved to disk and loaded through the registry (the
app's own loading path). The attribute model is a tiny real AttributeToFace when that pipeline exists, else a
stand-in with the same interface (tests only: the app itself never fakes a model).
"""

from __future__ import annotations

import socket
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image


class StandInAttributeToFace:
    """Test stand-in with AttributeToFace's interface: seeded flat-colour 32 px faces, deterministic."""

    device = "cpu"

    def _face(self, seed: int, base: np.ndarray | None = None, strength: float = 1.0) -> Image.Image:
        rng = np.random.default_rng(seed)
        arr = rng.integers(0, 256, (32, 32, 3)).astype(np.float32)
        if base is not None:
            arr = base * (1 - strength) + arr * strength
        return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")

    def __call__(self, attributes, sketch=None, num_images=1, seed=0, temperature=1.0):
        return [self._face(seed * 1000 + i) for i in range(num_images)]

    def variations(self, image, num_images=1, seed=0, strength=0.3):
        base = np.asarray(image.convert("RGB").resize((32, 32)), np.float32)
        return [self._face(seed * 1000 + i + 7, base, strength) for i in range(num_images)]

    def cross(self, a, b, num_images=1, seed=0):
        ea, eb = (np.asarray(x.convert("RGB").resize((32, 32)), np.float32) for x in (a, b))
        return [
            Image.fromarray((ea * t + eb * (1 - t)).astype(np.uint8), "RGB") for t in np.linspace(0.2, 0.8, num_images)
        ]

    def edit(self, image, changes, seed=0, strength=1.0):
        arr = np.asarray(image.convert("RGB"), np.int16).copy()
        arr[:, : 2 * len(changes)] = 255  # one bright band per change: visible and checkable
        return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def _tiny_psp_folder(root) -> str:
    import torch

    from sketchface.models import psp as psp_mod
    from sketchface.models import stylegan

    torch.manual_seed(0)
    cfg = psp_mod.PSPConfig(
        encoder_channels=[4, 8, 8, 16],
        blocks_per_stage=[1, 1, 1, 1],
        fpn_channels=8,
        generator=asdict(stylegan.StyleGANConfig(resolution=32, style_dim=16, n_mlp=2, max_channels=8)),
    )
    model = psp_mod.PSP(cfg)
    folder = root / "tiny-psp"
    model.save_pretrained(folder)
    (folder / "README.md").write_text("# tiny-psp\n\nRandomly initialised test model.\n")
    return str(folder)


@pytest.fixture(scope="session")
def app_registry(tmp_path_factory):
    """Registry with a tiny pSp (loaded from disk), an attribute model and no classifier / InstructPix2Pix."""
    from sketchface.registry import Registry

    root = tmp_path_factory.mktemp("app-models")
    registry = Registry.discover(
        {"psp": [_tiny_psp_folder(root)], "instruct_pix2pix": ["local-only/missing-ip2p"]},
        env={},
        defaults=False,
    ).load()
    registry.add("mvae", StandInAttributeToFace(), "test-stand-in", card="# test stand-in\n")
    return registry


@pytest.fixture(scope="session")
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
