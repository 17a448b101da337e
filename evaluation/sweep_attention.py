"""Paper 2's λ4 sweep: the same pSp training with the attention-loss weight λ4 ∈ {0, 1, 1e3, 1e6, 1e9}.

Each value gets its own run of ``train/psp.py`` (same seed, data and steps; only λ4 differs), then paper 2's
Table 1 figures on held-out procedural faces, for computed and hand-drawn-style sketches. Every flag this script
does not know goes to ``train/psp.py`` unchanged. With ``--init_from`` every run starts from one pSp checkpoint (a
fine-tuning sweep: what a CPU can afford) and the first row is that checkpoint itself, evaluated the same way, so
the effect of the extra steps alone can be told apart; with ``--generator`` each encoder is trained from scratch
into that generator, as the paper did (100k steps each there: GPU work)::

    python -m evaluation.sweep_attention --out_dir docs/results/sweep-attention -- \\
        --init_from checkpoints/psp-procedural-64 --steps 60 --batch_size 16 --pool_size 2048 \\
        --eval_samples 128 --num_workers 2 --classifier checkpoints/classifier-procedural-64

Writes ``sweep.json`` and ``sweep.md`` to ``--out_dir``; the runs' checkpoints go to ``--runs_dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

if not __package__:  # run as a file, not with python -m: the repository root on sys.path, as -m has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train import psp  # noqa: E402

PAPER_LAMBDAS = [0.0, 1.0, 1e3, 1e6, 1e9]


@dataclass
class SweepConfig:
    lambdas: list[float] = field(default_factory=lambda: list(PAPER_LAMBDAS))
    reference: bool = True  # with --init_from, also evaluate the starting checkpoint (no training)
    runs_dir: str = "runs/sweep-attention"
    out_dir: str = "results/sweep-attention"
    psp_args: list[str] = field(default_factory=list)  # everything else goes to train/psp.py


def parse_args(argv: list[str] | None = None) -> SweepConfig:
    d = SweepConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lambdas", type=float, nargs="+", default=d.lambdas)
    p.add_argument("--reference", action=argparse.BooleanOptionalAction, default=d.reference)
    p.add_argument("--runs_dir", default=d.runs_dir)
    p.add_argument("--out_dir", default=d.out_dir)
    args, rest = p.parse_known_args(argv)
    cfg = SweepConfig(**vars(args), psp_args=[a for a in rest if a != "--"])
    for flag in ("--attention_lambda", "--output_dir", "--save_dir"):
        if any(a == flag or a.startswith(flag + "=") for a in cfg.psp_args):
            p.error(f"{flag} is set by the sweep for each run")
    _, base = run_config(cfg, 0.0, "check")  # fails early on a bad train/psp.py flag
    if not base.init_from and not base.generator:
        p.error("give --init_from (a pSp checkpoint) or --generator (a StyleGAN2 generator)")
    return cfg


def run_config(
    cfg: SweepConfig, attention_lambda: float, name: str, steps: int | None = None
) -> tuple[psp.TrainingArguments, psp.PSPArguments]:
    """train/psp.py's configuration for one point of the sweep: the shared flags, this λ4, its own folders."""
    run = Path(cfg.runs_dir) / name
    args = [*cfg.psp_args, "--attention_lambda", str(attention_lambda), "--output_dir", str(run)]
    args += ["--save_dir", str(run / "final")]
    if steps is not None:
        args += ["--max_steps", str(steps)]
    return psp.parse_args(args)


def _lambda_label(value: float) -> str:
    """0, 1, 1e3, 1e6, 1e9 as the paper writes them."""
    if value < 1e3:
        return f"{value:g}"
    mantissa, exponent = f"{value:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _trained_lambda(checkpoint: str) -> float | None:
    """The λ4 a pSp checkpoint folder was trained with, from the summary train/psp.py wrote beside it, if any."""
    for name in ("eval.json", "summary.json"):
        path = Path(checkpoint) / name
        if path.is_file():
            value = json.loads(path.read_text()).get("attention_lambda")
            if value is not None:
                return float(value)
    return None


def to_markdown(rows: list[dict]) -> str:
    """One line per run: paper 2's Table 1 columns, computed and hand-drawn-style sketches side by side."""
    kinds = [k for k in ("computed", "hand") if any(k in r["eval"] for r in rows)]
    perceptual = next((r["perceptual"] for r in rows if r.get("perceptual") not in (None, "none")), "perceptual")
    head = "| λ4 | steps |"
    rule = "|---|---:|"
    for k in kinds:
        head += f" MSE ({k}) ↓ | {perceptual} ({k}) ↓ | SFace cos ({k}) ↑ | attr. agreement ({k}) ↑ |"
        rule += "---:|---:|---:|---:|"
    lines = [head, rule]
    for r in rows:
        line = f"| {r['label']} | {r['steps']} |"
        for k in kinds:
            e = r["eval"].get(k, {})

            def f(key, spec=".4f", e=e):
                return "–" if e.get(key) is None else format(e[key], spec)

            line += f" {f('mse')} | {f('perceptual', '.3f')} | {f('identity_sface', '.3f')} | "
            line += f"{f('attribute_agreement_labels', '.3f')} |"
        lines.append(line)
    diff = [r["eval"].get(k, {}).get("identity_sface_different_people") for r in rows for k in kinds]
    diff = [d for d in diff if d is not None]
    if diff:
        lines += ["", f"SFace cosine between different people (baseline): {sum(diff) / len(diff):.3f}."]
    return "\n".join(lines) + "\n"


def main(cfg: SweepConfig) -> list[dict]:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, base = run_config(cfg, 0.0, "check")
    points: list[tuple[str, float | None, int | None]] = []
    if cfg.reference and base.init_from:
        points.append(("start", _trained_lambda(base.init_from), 0))
    points += [(f"lambda-{_lambda_label(v)}", v, None) for v in cfg.lambdas]
    rows = []
    for name, value, steps in points:
        train_args, run_args = run_config(cfg, value, name, steps)
        print(f"== {name}: λ4 = {value:g}, {train_args.max_steps} steps", flush=True)
        psp.main(train_args, run_args)
        summary = json.loads((Path(train_args.output_dir) / "summary.json").read_text())
        label = (
            f"starting checkpoint (trained with λ4 = {_lambda_label(value)})" if steps == 0 else _lambda_label(value)
        )
        rows.append(
            {
                "label": label,
                "attention_lambda": value,
                "steps": summary["steps"],
                "perceptual": summary.get("perceptual"),
                "eval": summary.get("eval_held_out", {}),
                "minutes": summary.get("minutes"),
            }
        )
        (out / "sweep.json").write_text(json.dumps({"config": asdict(cfg), "runs": rows}, indent=2))
    (out / "sweep.md").write_text(to_markdown(rows))
    print(to_markdown(rows))
    return rows


if __name__ == "__main__":
    main(parse_args())
