"""Train paper 1's cross-modal VAE (Approach 1, Algorithm 1): attributes → q(z|a) → image decoder, MSE + KL.

Same options as ``train/mvae.py`` (this is that script with ``--model cvae`` defaults: LeakyReLU, MSE image
likelihood, no image or sketch expert)::

    python train/cvae.py --output_dir checkpoints/cvae-procedural-64
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# train/ is not a package: load the sibling script by path (no sys.path changes).
_spec = importlib.util.spec_from_file_location("train_mvae", Path(__file__).with_name("mvae.py"))
base = sys.modules.setdefault("train_mvae", importlib.util.module_from_spec(_spec))  # dataclasses need it there
_spec.loader.exec_module(base)

MVAEArguments = base.MVAEArguments
TrainingArguments = base.TrainingArguments
main = base.main


def parse_args(argv: list[str] | None = None) -> tuple[TrainingArguments, MVAEArguments]:
    return base.parse_args(argv, model="cvae", description=__doc__)


if __name__ == "__main__":
    main(*parse_args())
