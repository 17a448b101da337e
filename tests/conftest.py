"""App fixtures: a model registry of tiny models for tests/test_app*.py (no starter checkpoints needed).

Both models are real, randomly initialised tiny networks (an MVAE with a sketch expert, a pSp + StyleGAN2)
saved to disk and loaded through the registry, the app's own loading path.
"""

from __future__ import annotations

import socket

import pytest


def _tiny_mvae_folder(root) -> str:
    import torch

    from sketchface.models.mvae import MVAE
    from tests.helpers import tiny_mvae_config

    torch.manual_seed(0)
    model = MVAE(tiny_mvae_config(32, widths=[4, 8, 8, 8], attr_hidden=16))
    folder = root / "tiny-mvae"
    model.save_pretrained(folder)
    (folder / "README.md").write_text("# tiny-mvae\n\nRandomly initialised test model with a sketch expert.\n")
    return str(folder)


def _tiny_psp_folder(root) -> str:
    import torch

    from sketchface.models.psp import PSP
    from tests.helpers import tiny_psp_config

    torch.manual_seed(0)
    model = PSP(tiny_psp_config(32))
    folder = root / "tiny-psp"
    model.save_pretrained(folder)
    (folder / "README.md").write_text("# tiny-psp\n\nRandomly initialised test model.\n")
    return str(folder)


@pytest.fixture(scope="session")
def app_registry(tmp_path_factory):
    """Registry with a tiny pSp (loaded from disk), an attribute model and no classifier / InstructPix2Pix."""
    from sketchface.registry import Registry

    root = tmp_path_factory.mktemp("app-models")
    flags = {
        "mvae": [_tiny_mvae_folder(root)],
        "psp": [_tiny_psp_folder(root)],
        "instruct_pix2pix": ["local-only/missing-ip2p"],
    }
    registry = Registry.discover(flags, env={}, defaults=False).load()
    assert [e.status for e in registry.entries[:2]] == ["loaded", "loaded"], [e.reason for e in registry.entries]
    return registry


@pytest.fixture(scope="session")
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
