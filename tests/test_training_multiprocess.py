"""train/mvae.py and train/classifier.py on the shared Trainer (issue 24): two processes (torchrun, gloo on the CPU)
train on different rows and save a model that loads; a run killed with SIGKILL and resumed ends with the weights of
an uninterrupted one, bit for bit; --push_to_hub uploads exactly the saved files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sketchface.models.classifier import AttributeClassifier
from sketchface.models.mvae import load_vae
from tests.helpers import ROOT, load_script

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
import importlib

module = importlib.import_module("train." + script)
module.main(*module.parse_args(sys.argv[4:]))
"""

MVAE_ARGS = [
    "--image_size", "16", "--latent_dim", "8", "--widths", "4", "8", "8", "16", "--fc_dim", "16",
    "--attr_hidden", "32", "--batch_size", "4", "--num_workers", "0", "--eval_samples", "8", "--train_samples", "24",
    "--precision", "fp32", "--save_dtype", "float32", "--checkpoint_every", "2", "--log_every", "1",
]  # fmt: skip
CLASSIFIER_ARGS = [
    "--image_size", "16", "--stem_width", "4", "--widths", "8", "8", "--batch_size", "8", "--num_workers", "0",
    "--eval_samples", "8", "--eval_noise", "0", "--train_samples", "32", "--precision", "fp32", "--log_every", "1",
]  # fmt: skip


def _torchrun(tmp_path: Path, name: str, script: str, args: list[str], kill_at: int = -1, procs: int = 2):
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


def _assert_ranks_saw_different_rows(rows: list[list[list[int]]], steps: int, batch: int) -> None:
    assert len(rows[0]) == len(rows[1]) == steps
    for a, b in zip(*rows):
        assert len(a) == len(b) == batch and not set(a) & set(b)  # every step: each rank its own rows


# the adversarial term too: a second DDP model (the critic), its lazy R1 penalty, subset sampling
ADVERSARIAL = ["--sample_subsets", "--adversarial_weight", "0.5", "--adversarial_start", "1", "--r1_gamma", "0.01"]


def test_mvae_two_processes_train_on_different_rows_and_resume_bit_for_bit_after_kill_9(tmp_path):
    straight = tmp_path / "straight"
    args = [*MVAE_ARGS, *ADVERSARIAL, "--d_widths", "4", "8", "--steps", "4"]
    proc, rows = _torchrun(tmp_path, "straight", "mvae", [*args, "--output_dir", str(straight)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_ranks_saw_different_rows(rows, steps=4, batch=4)
    model = load_vae(str(straight))
    assert model.config.model_type == "mvae" and model.config.image_size == 16
    report = json.loads((straight / "eval.json").read_text())
    assert report["steps"] == 4 and report["device"] == "cpu × 2" and report["samples_per_s"] > 0
    assert "min on cpu × 2" in (straight / "README.md").read_text()
    logged = [json.loads(line)["step"] for line in (straight / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]  # the main process logs, once per step

    # the same run, rank 0 killed with SIGKILL right after the step-2 state is saved, then resumed
    killed = tmp_path / "killed"
    args = [*args, "--output_dir", str(killed)]
    proc, _ = _torchrun(tmp_path, "killed", "mvae", args, kill_at=2)
    assert proc.returncode != 0 and not (killed / "model.safetensors").exists()
    assert json.loads((killed / "state" / "trainer.json").read_text())["step"] == 2
    proc, rows_resumed = _torchrun(tmp_path, "resumed", "mvae", [*args, "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r[2:] for r in rows] == rows_resumed  # it continues on the rows the uninterrupted run took
    a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys() and {t.dtype for t in a.values() if t.is_floating_point()} == {torch.float32}
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit for bit: weights, optimiser, every rank's RNG restored


def test_classifier_two_processes_stream_different_rows(tmp_path):
    out = tmp_path / "clf"
    args = [*CLASSIFIER_ARGS, "--max_steps", "3", "--output_dir", str(out), "--no-cache"]  # streamed: a loader per rank
    proc, rows = _torchrun(tmp_path, "clf", "classifier", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_ranks_saw_different_rows(rows, steps=3, batch=8)
    assert AttributeClassifier.from_pretrained(out).config.image_size == 16
    report = json.loads((out / "eval.json").read_text())
    assert report["steps"] == 3 and report["device"] == "cpu × 2"
    assert not (out / "state").exists()  # a finished folder ships without its training state


class _Killed(Exception):
    pass


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


def _model_files(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in ("README.md", "config.json", "eval.json", "model.safetensors")}


@pytest.mark.parametrize("script", ["classifier", "mvae"])
def test_killed_and_resumed_run_matches_an_uninterrupted_one_and_push_uploads_the_saved_files(
    tmp_path, monkeypatch, script
):
    """In one process (the save-then-die pattern of tests/test_translator.py); dropout and the random draws on."""
    import huggingface_hub

    from sketchface.trainer import Trainer

    train = load_script(script)
    base = [*(CLASSIFIER_ARGS if script == "classifier" else MVAE_ARGS), "--checkpoint_every", "2", "--max_steps", "4"]
    # the classifier from its in-memory pool (augmentation on); the MVAE streamed by a DataLoader
    base += ["--keep_checkpoint"] if script == "classifier" else ["--no-cache", "--sample_subsets"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train.main(*train.parse_args([*base, "--output_dir", str(straight)]))
    save_state = Trainer.save_state

    def save_then_die(self, step):
        save_state(self, step)
        raise _Killed

    monkeypatch.setattr(Trainer, "save_state", save_then_die)
    with pytest.raises(_Killed):
        train.main(*train.parse_args([*base, "--output_dir", str(resumed)]))
    monkeypatch.setattr(Trainer, "save_state", save_state)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    FakeHfApi.uploads = []
    train.main(*train.parse_args([*base, "--output_dir", str(resumed), "--resume", "--push_to_hub", "me/model"]))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the push: exactly the model files saved into the run's folder, not its training state or log
    assert [repo for repo, _ in FakeHfApi.uploads] == ["me/model"]
    uploaded = FakeHfApi.uploads[0][1]
    assert uploaded == _model_files(resumed) and (resumed / "state").is_dir() and (resumed / "log.jsonl").is_file()
