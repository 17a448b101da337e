"""What the stylization backends share: the result type, the backend error and input checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..attributes import MAX_INSTRUCTION_CHARS

ProgressFn = Callable[[int, int], Any]


class BackendUnavailable(RuntimeError):
    """A stylization backend cannot run here (weights missing and Hub unreachable, bad folder, ...)."""


@dataclass
class StylizeResult:
    """An edited face and what was done to it.

    ``changes`` maps CelebA attribute names to their requested state (latent editor; empty for
    InstructPix2Pix, which edits pixels directly); ``unknown_words`` are instruction words the latent
    editor could not use; ``params`` holds the backend's settings (steps, guidance, strength, sizes).
    """

    image: Image.Image
    changes: dict[str, bool]
    unknown_words: list[str]
    backend: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    caption: str = ""
    instruction: str = ""

    def to_metadata(self) -> dict[str, Any]:
        """Everything but the image, JSON-serialisable (for PNG text chunks or a sidecar file)."""
        return {
            "instruction": self.instruction,
            "changes": dict(self.changes),
            "unknown_words": list(self.unknown_words),
            "backend": self.backend,
            "seed": self.seed,
            "params": dict(self.params),
            "caption": self.caption,
        }


def check_instruction(instruction: str) -> str:
    """Return the stripped instruction; raise ``ValueError`` if it is empty or over 500 characters."""
    if not isinstance(instruction, str):
        raise ValueError(f"An instruction must be text; got {type(instruction).__name__}.")
    text = instruction.strip()
    if not text:
        raise ValueError("The instruction is empty: say what to change, e.g. 'make the hair brown'.")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise ValueError(
            f"The instruction has {len(text)} characters; at most {MAX_INSTRUCTION_CHARS} are accepted. "
            "Give one or a few short edits."
        )
    return text


def as_rgb_image(image: Any) -> Image.Image:
    """PIL image, uint8 array (H, W, 3) or float tensor/array (3, H, W) / (1, 3, H, W) in [0, 1] → RGB PIL."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (list, tuple)) and image:
        return as_rgb_image(image[0])
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 4:
            arr = arr[0]
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        return Image.fromarray(arr).convert("RGB")
    raise TypeError(f"Expected a PIL image, an array or a tensor; got {type(image).__name__}.")
