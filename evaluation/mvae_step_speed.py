"""Steps per second of one MVAE training step (the shipped architecture, batch 64, with a sketch) in one option, for
whatever ``sketchface`` is importable: run it from two checkouts in turn to compare code versions (issue 26).

    OMP_NUM_THREADS=1 taskset -c 1 python -m evaluation.mvae_step_speed bf16 --steps 8
    cd ../old-checkout && PYTHONPATH=. OMP_NUM_THREADS=1 taskset -c 1 python ../main/evaluation/mvae_step_speed.py fp32

Prints the median CPU seconds and wall seconds per step, and steps/s. ``fp32``: float32; ``cl``: float32 in the
channels_last memory format; ``bf16``: bfloat16 autocast + channels_last (what training uses by default).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sketchface.models.mvae import MVAE, load_vae


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("option", choices=["fp32", "cl", "bf16"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--checkpoint", default="checkpoints/mvae-procedural-64", help="whose architecture to time")
    args = p.parse_args()
    torch.manual_seed(0)
    cl = args.option in ("cl", "bf16")

    def fmt(t):
        return t.to(memory_format=torch.channels_last) if cl else t

    model = fmt(MVAE(load_vae(args.checkpoint).config).train())
    s = model.config.image_size
    x, sketch = fmt(torch.rand(64, 3, s, s)), fmt(torch.rand(64, 1, s, s))
    y = (torch.rand(64, model.config.num_attributes) > 0.5).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.option == "bf16"):
            loss = model.loss(x, y, None, sketch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(), step()  # warm-up
    cpu, wall = [], []
    for _ in range(args.steps):
        c, w = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    w = statistics.median(wall)
    print(f"{args.option} cpu_s_per_step {statistics.median(cpu):.4f} wall_s_per_step {w:.4f} steps_per_s {1 / w:.3f}")


if __name__ == "__main__":
    main()
