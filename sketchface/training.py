"""Small helpers shared by the training scripts in ``train/`` (no model or data code)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any


def cli_command(script: str, config: Mapping[str, Any], defaults: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    """The command line that reproduces a run, for model cards: ``python train/<script>.py --flag value …``.

    When the script itself is running, its real arguments are quoted; otherwise (called from Python) every field of
    ``config`` that differs from ``defaults`` becomes a flag, booleans as ``--x`` / ``--no-x`` and lists spaced out.
    """
    head = f"python train/{script}.py"
    if sys.argv and sys.argv[0].endswith(f"{script}.py"):
        return " ".join([head, *sys.argv[1:]])
    skipped = set(skip)
    parts = [head]
    for key, value in config.items():
        if key in skipped or value == defaults.get(key):
            continue
        if isinstance(value, bool):
            parts.append(f"--{key}" if value else f"--no-{key}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"--{key} " + " ".join(map(str, value)))
        else:
            parts.append(f"--{key} {value}")
    return " ".join(parts)
