"""Helpers shared by several test files: loading a training script by path, the tiny model configs, and running a
training script in several processes under torchrun (tests/test_training_multiprocess*.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
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


# -- several processes: train/<script>.py under torchrun (gloo on the CPU) -------------------------------------------
# Runs the script as torchrun would, after two test-only patches: every rank appends its rows of each step to
# ROWS/rows-rank<r>.txt (and the sums of its models' weights at each saved state to ROWS/sums-rank<r>.txt), and with
# KILL_AT=k rank 0 kills itself (SIGKILL) right after the training state of step k is saved.
LAUNCHER = """
import os, signal, sys
from sketchface import trainer as T

rows_dir, kill_at, script = sys.argv[1], int(sys.argv[2]), sys.argv[3]
batch_indices, save_state = T.Trainer.batch_indices, T.Trainer.save_state


def logged(self, n, start_step=0):
    for idx in batch_indices(self, n, start_step):
        with open(os.path.join(rows_dir, f"rows-rank{self.process_index}.txt"), "a") as f:
            f.write(" ".join(map(str, idx.tolist())) + "\\n")
        yield idx


def save_then_die(self, step):
    save_state(self, step)
    sums = [float(sum(p.double().sum() for p in m.parameters())) for m in self.accelerator._models]
    with open(os.path.join(rows_dir, f"sums-rank{self.process_index}.txt"), "a") as f:
        f.write(f"{step} {sums}\\n")
    if step == kill_at and self.is_main:
        os.kill(os.getpid(), signal.SIGKILL)


T.Trainer.batch_indices, T.Trainer.save_state = logged, save_then_die
if os.environ.get("SKETCHFACE_TEST_SLOW_RANK"):  # that rank writes its share of every saved state 1.5 s late
    import time
    import accelerate.accelerator as A

    slow, save_accelerator_state = int(os.environ["SKETCHFACE_TEST_SLOW_RANK"]), A.save_accelerator_state

    def late(output_dir, *args, **kwargs):
        if int(os.environ.get("RANK", "0")) == slow:
            time.sleep(1.5)
        return save_accelerator_state(output_dir, *args, **kwargs)

    A.save_accelerator_state = late
import importlib

module = importlib.import_module("train." + script)
module.main(*module.parse_args(sys.argv[4:]))
"""


def torchrun_script(
    tmp_path: Path, name: str, script: str, args: list[str], kill_at: int = -1, procs: int = 2, slow_rank: int = -1
):
    """Run ``train/<script>.py`` under torchrun with ``procs`` CPU processes; returns (the finished process, rows per
    rank); in a finished run the weight sums at every saved state agree across ranks (DDP kept them in step)."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    rows = tmp_path / f"rows-{name}"
    rows.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
    }
    if slow_rank >= 0:
        env["SKETCHFACE_TEST_SLOW_RANK"] = str(slow_rank)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
    proc = subprocess.run(
        [*cmd, str(launcher), str(rows), str(kill_at), script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    per_rank = [
        [list(map(int, line.split())) for line in (rows / f"rows-rank{r}.txt").read_text().splitlines()]
        if (rows / f"rows-rank{r}.txt").is_file()
        else []
        for r in range(procs)
    ]
    if proc.returncode == 0:  # (a killed run's other ranks may die before they write)
        sums = [(rows / f"sums-rank{r}.txt").read_text() for r in range(procs)]
        assert sums[0] and all(x == sums[0] for x in sums), sums
    return proc, per_rank


def assert_ranks_saw_different_rows(rows: list[list[list[int]]], steps: int, batch: int) -> None:
    assert len(rows[0]) == len(rows[1]) == steps
    for a, b in zip(*rows):
        assert len(a) == len(b) == batch and not set(a) & set(b)  # every step: each rank its own rows


class Killed(Exception):
    """Raised by :func:`killed_after_first_save` in place of a SIGKILL (in-process tests)."""


def killed_after_first_save(monkeypatch, run) -> None:
    """Call ``run()`` with the Trainer dying right after its first saved state (as a killed run would), then restore
    ``Trainer.save_state``: the caller resumes from that state."""
    import pytest

    from sketchface.trainer import Trainer

    save_state = Trainer.save_state

    def save_then_die(self, step):
        save_state(self, step)
        raise Killed

    monkeypatch.setattr(Trainer, "save_state", save_then_die)
    with pytest.raises(Killed):
        run()
    monkeypatch.setattr(Trainer, "save_state", save_state)


class FakeHfApi:
    """Records what HfApi.upload_folder would send: the files under folder_path that allow_patterns lets through."""

    uploads: list[tuple[str, dict[str, bytes]]] = []

    def create_repo(self, repo_id, exist_ok=False):
        pass

    def upload_folder(self, folder_path, repo_id, commit_message, allow_patterns=None):
        from fnmatch import fnmatch

        files = {
            str(p.relative_to(folder_path)): p.read_bytes()
            for p in sorted(Path(folder_path).rglob("*"))
            if p.is_file()
            and (allow_patterns is None or any(fnmatch(str(p.relative_to(folder_path)), x) for x in allow_patterns))
        }
        FakeHfApi.uploads.append((repo_id, files))
        return "https://hub/commit"
