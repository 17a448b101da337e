"""Helpers shared by several test files: loading a training script by path, and the tiny model configs."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

from sketchface.models.mvae import CrossModalVAEConfig, MVAEConfig
from sketchface.models.psp import PSPConfig
from sketchface.models.stylegan import StyleGANConfig

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str, folder: str = "train", module_name: str | None = None) -> ModuleType:
    """Execute ``<folder>/<name>.py`` afresh as module ``module_name`` (default ``train_<name>``), registered in
    ``sys.modules`` (dataclasses look their module up there while the file executes)."""
    spec = importlib.util.spec_from_file_location(module_name or f"train_{name}", ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tiny_mvae_config(size: int = 16, **kw) -> MVAEConfig:
    """An MVAE small enough for CPU tests (4-16 channels, 8-d latent); ``kw`` overrides any field."""
    return MVAEConfig(**{**dict(image_size=size, latent_dim=8, widths=[4, 8, 8, 16], fc_dim=16, attr_hidden=32), **kw})


def tiny_cvae_config(size: int = 16) -> CrossModalVAEConfig:
    return CrossModalVAEConfig(image_size=size, latent_dim=8, widths=[4, 8, 8, 16], fc_dim=16, attr_hidden=32)


def tiny_stylegan_config(res: int = 16, **kw) -> StyleGANConfig:
    return StyleGANConfig(resolution=res, style_dim=16, n_mlp=2, max_channels=8, **kw)


def tiny_psp_config(res: int = 16, **kw) -> PSPConfig:
    return PSPConfig(
        encoder_channels=[4, 8, 8, 16],
        blocks_per_stage=[1, 1, 1, 1],
        fpn_channels=8,
        generator=asdict(tiny_stylegan_config(res)),
        **kw,
    )
