"""train/mvae.py and train/classifier.py on the shared Trainer (issue 24): two processes (torchrun, gloo on the CPU)
train on different rows and save a model that loads; a run killed with SIGKILL and resumed ends with the weights of
an uninterrupted one, bit for bit; --push_to_hub uploads exactly the saved files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sketchface.models.classifier import AttributeClassifier
from sketchface.models.mvae import load_vae
from tests.helpers import (
    FakeHfApi,
    assert_ranks_saw_different_rows,
    killed_after_first_save,
    load_script,
    torchrun_script,
)

MVAE_ARGS = [
    "--image_size", "16", "--latent_dim", "8", "--widths", "4", "8", "8", "16", "--fc_dim", "16",
    "--attr_hidden", "32", "--batch_size", "4", "--num_workers", "0", "--eval_samples", "8", "--train_samples", "24",
    "--precision", "fp32", "--save_dtype", "float32", "--checkpoint_every", "2", "--log_every", "1",
]  # fmt: skip
CLASSIFIER_ARGS = [
    "--image_size", "16", "--stem_width", "4", "--widths", "8", "8", "--batch_size", "8", "--num_workers", "0",
    "--eval_samples", "8", "--eval_noise", "0", "--train_samples", "32", "--precision", "fp32", "--log_every", "1",
]  # fmt: skip


# the adversarial term too: a second DDP model (the critic), its lazy R1 penalty, subset sampling
ADVERSARIAL = ["--sample_subsets", "--adversarial_weight", "0.5", "--adversarial_start", "1", "--r1_gamma", "0.01"]


def test_mvae_two_processes_train_on_different_rows_and_resume_bit_for_bit_after_kill_9(tmp_path):
    straight = tmp_path / "straight"
    args = [*MVAE_ARGS, *ADVERSARIAL, "--d_widths", "4", "8", "--steps", "4"]
    proc, rows = torchrun_script(tmp_path, "straight", "mvae", [*args, "--output_dir", str(straight)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_ranks_saw_different_rows(rows, steps=4, batch=4)
    model = load_vae(str(straight))
    assert model.config.model_type == "mvae" and model.config.image_size == 16
    report = json.loads((straight / "eval.json").read_text())
    assert report["steps"] == 4 and report["device"] == "cpu × 2" and report["samples_per_s"] > 0
    assert "min on cpu × 2" in (straight / "README.md").read_text()
    logged = [json.loads(line)["step"] for line in (straight / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]  # the main process logs, once per step

    # the same run, rank 0 killed with SIGKILL right after the step-2 state is saved, then resumed; rank 1 writes its
    # share of each state late (a busy machine), which once lost its RNG state: the main process must wait for it
    killed = tmp_path / "killed"
    args = [*args, "--output_dir", str(killed)]
    proc, _ = torchrun_script(tmp_path, "killed", "mvae", args, kill_at=2, slow_rank=1)
    assert proc.returncode != 0 and not (killed / "model.safetensors").exists()
    assert json.loads((killed / "state" / "trainer.json").read_text())["step"] == 2
    assert {p.name for p in (killed / "state").glob("random_states_*.pkl")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    proc, rows_resumed = torchrun_script(tmp_path, "resumed", "mvae", [*args, "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r[2:] for r in rows] == rows_resumed  # it continues on the rows the uninterrupted run took
    a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys() and {t.dtype for t in a.values() if t.is_floating_point()} == {torch.float32}
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit for bit: weights, optimiser, every rank's RNG restored


def test_classifier_two_processes_stream_different_rows(tmp_path):
    out = tmp_path / "clf"
    args = [*CLASSIFIER_ARGS, "--max_steps", "3", "--output_dir", str(out), "--no-cache"]  # streamed: a loader per rank
    proc, rows = torchrun_script(tmp_path, "clf", "classifier", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_ranks_saw_different_rows(rows, steps=3, batch=8)
    assert AttributeClassifier.from_pretrained(out).config.image_size == 16
    report = json.loads((out / "eval.json").read_text())
    assert report["steps"] == 3 and report["device"] == "cpu × 2"
    assert not (out / "state").exists()  # a finished folder ships without its training state


def _model_files(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in ("README.md", "config.json", "eval.json", "model.safetensors")}


@pytest.mark.parametrize("script", ["classifier", "mvae"])
def test_killed_and_resumed_run_matches_an_uninterrupted_one_and_push_uploads_the_saved_files(
    tmp_path, monkeypatch, script
):
    """In one process (the save-then-die pattern of tests/test_translator.py); dropout and the random draws on."""
    import huggingface_hub

    train = load_script(script)
    base = [*(CLASSIFIER_ARGS if script == "classifier" else MVAE_ARGS), "--checkpoint_every", "2", "--max_steps", "4"]
    # the classifier from its in-memory pool (augmentation on); the MVAE streamed by a DataLoader
    base += ["--keep_checkpoint"] if script == "classifier" else ["--no-cache", "--sample_subsets"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train.main(*train.parse_args([*base, "--output_dir", str(straight)]))
    killed_after_first_save(monkeypatch, lambda: train.main(*train.parse_args([*base, "--output_dir", str(resumed)])))
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


def test_resume_says_when_a_rank_s_random_state_is_missing(tmp_path, monkeypatch, capsys):
    """accelerate skips a missing RNG file silently; the Trainer names it (the run then cannot repeat bit for bit)."""
    train = load_script("mvae")
    args = [*MVAE_ARGS, "--checkpoint_every", "2", "--max_steps", "4", "--output_dir", str(tmp_path / "run")]
    killed_after_first_save(monkeypatch, lambda: train.main(*train.parse_args(args)))
    (tmp_path / "run" / "state" / "random_states_0.pkl").unlink()
    capsys.readouterr()
    train.main(*train.parse_args([*args, "--resume"]))
    out = capsys.readouterr().out
    assert "random_states_0.pkl missing" in out and "will not repeat an uninterrupted one exactly" in out
    assert (tmp_path / "run" / "model.safetensors").is_file()  # it still resumes and finishes
