"""train/stylegan.py and train/psp.py on the shared Trainer (issue 24): two processes (torchrun, gloo on the CPU)
train on different rows of procedural faces at 16 px and save a model that loads (pSp with the generator tuned too);
a run killed with SIGKILL and resumed ends with the weights of an uninterrupted one, bit for bit; --push_to_hub uploads
exactly the saved folder."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import torch
from safetensors.torch import load_file

from sketchface.models.psp import PSP
from sketchface.models.stylegan import Generator
from tests.helpers import (
    FakeHfApi,
    assert_ranks_saw_different_rows,
    load_script,
    tiny_psp_config,
    tiny_stylegan_config,
    torchrun_script,
)

STYLEGAN_ARGS = [
    "--data", "procedural", "--resolution", "16", "--max_channels", "8", "--style_dim", "16", "--n_mlp", "2",
    "--batch_size", "4", "--pool_size", "32", "--num_workers", "0", "--d_reg_every", "2", "--precision", "fp32",
    "--sample_count", "4", "--save_every", "2", "--log_every", "1", "--diffaugment", "translation,color,cutout",
]  # fmt: skip
PSP_ARGS = [
    "--data", "procedural", "--pool_size", "32", "--batch_size", "4", "--num_workers", "0", "--perceptual", "none",
    "--encoder_channels", "4,8,8,16", "--blocks_per_stage", "1,1,1,1", "--fpn_channels", "8", "--eval_samples", "4",
    "--no-eval_identity", "--warmup_steps", "1", "--precision", "fp32", "--save_every", "2", "--log_every", "1",
]  # fmt: skip


def _equal_weights(a: Path, b: Path) -> None:
    x, y = load_file(a), load_file(b)
    assert x.keys() == y.keys()
    for k in x:
        assert torch.equal(x[k], y[k]), k


def test_stylegan_two_processes_train_on_different_rows_and_resume_bit_for_bit_after_kill_9(tmp_path):
    straight = tmp_path / "straight"
    args = [*STYLEGAN_ARGS, "--max_steps", "4"]
    proc, rows = torchrun_script(tmp_path, "straight", "stylegan", [*args, "--output_dir", str(straight)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_ranks_saw_different_rows(rows, steps=4, batch=4)
    g = Generator.from_pretrained(straight / "generator", strict=True)
    assert g.cfg.resolution == 16 and g.w_avg.abs().sum() > 0
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["device"] == "cpu × 2" and summary["images_seen"] == 32
    assert "4 steps × batch 4 × 2 process(es)" in (straight / "generator" / "README.md").read_text()

    # the same run, rank 0 killed with SIGKILL right after the step-2 state is saved, then resumed
    killed = tmp_path / "killed"
    args = [*args, "--output_dir", str(killed)]
    proc, _ = torchrun_script(tmp_path, "killed", "stylegan", args, kill_at=2)
    assert proc.returncode != 0 and not (killed / "generator").exists()
    assert json.loads((killed / "state" / "trainer.json").read_text())["step"] == 2
    proc, rows_resumed = torchrun_script(tmp_path, "resumed", "stylegan", [*args, "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r[2:] for r in rows] == rows_resumed  # it continues on the rows the uninterrupted run took
    # bit for bit: G, D, the EMA generator, both optimisers and every rank's RNG (z, noise, mixing, DiffAugment)
    _equal_weights(straight / "generator" / "model.safetensors", killed / "generator" / "model.safetensors")
    _equal_weights(straight / "discriminator" / "model.safetensors", killed / "discriminator" / "model.safetensors")


def test_psp_two_processes_tune_the_generator_on_different_rows_and_resume_bit_for_bit(tmp_path):
    """16 px (the finest pyramid level unused: the DDP "unused parameters" crash of issue 24) with --generator_lr > 0
    (the generator DDP-wrapped with the encoder) and its regulariser."""
    Generator(tiny_stylegan_config()).save_pretrained(tmp_path / "gen")
    start = Generator.from_pretrained(tmp_path / "gen").state_dict()
    args = [*PSP_ARGS, "--generator", str(tmp_path / "gen"), "--generator_lr", "1e-2", "--generator_reg_every", "1"]
    args += ["--max_steps", "4", "--no-fp16_storage"]
    straight = tmp_path / "straight"
    proc, rows = torchrun_script(tmp_path, "straight", "psp", [*args, "--output_dir", str(straight)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_ranks_saw_different_rows(rows, steps=4, batch=4)
    psp = PSP.from_pretrained(straight / "final", strict=True)
    tuned = psp.generator.state_dict()
    assert any(not torch.equal(start[k], tuned[k]) for k in start if k.startswith("convs."))
    assert all(torch.equal(start[k], tuned[k]) for k in start if k.startswith("mapping."))
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["device"] == "cpu × 2" and "fine-tuned" in summary["generator"]
    assert "batch 4 × 2 processes" in (straight / "final" / "README.md").read_text()

    killed = tmp_path / "killed"
    args = [*args, "--output_dir", str(killed)]
    proc, _ = torchrun_script(tmp_path, "killed", "psp", args, kill_at=2)
    assert proc.returncode != 0 and not (killed / "final").exists()
    proc, rows_resumed = torchrun_script(tmp_path, "resumed", "psp", [*args, "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r[2:] for r in rows] == rows_resumed
    _equal_weights(straight / "final" / "model.safetensors", killed / "final" / "model.safetensors")


def _folder(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_psp_push_uploads_exactly_the_saved_float16_folder_with_its_card(tmp_path, monkeypatch):
    PSP(tiny_psp_config()).save_pretrained(tmp_path / "start")
    (tmp_path / "start" / "eval.json").write_text('{"attention_lambda": 1000.0}')  # an evaluation's figures
    mod = load_script("psp")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    FakeHfApi.uploads = []
    # refit into the starting folder itself (as the docs' directions command): its eval.json stays and goes up too
    args = [
        *PSP_ARGS,
        "--init_from",
        str(tmp_path / "start"),
        "--max_steps",
        "2",
        "--save_dir",
        str(tmp_path / "start"),
    ]
    final = mod.main(*mod.parse_args([*args, "--output_dir", str(tmp_path / "run"), "--push_to_hub", "me/psp"]))
    assert [repo for repo, _ in FakeHfApi.uploads] == ["me/psp"]
    uploaded = FakeHfApi.uploads[0][1]
    assert uploaded == _folder(final) and set(uploaded) == {
        "README.md",
        "config.json",
        "model.safetensors",
        "eval.json",
    }
    assert {t.dtype for t in load_file(final / "model.safetensors").values()} == {torch.float16}
    card = uploaded["README.md"].decode()
    assert "pSp sketch encoder" in card and "Stored in float16" in card and "an in-memory pool of 32 faces" in card
    assert PSP.from_pretrained(final).latent_avg.dtype == torch.float32


def test_stylegan_push_uploads_exactly_the_saved_generator_folder(tmp_path, monkeypatch):
    mod = load_script("stylegan")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    FakeHfApi.uploads = []
    args = [*STYLEGAN_ARGS, "--data", "synthetic", "--max_steps", "1", "--output_dir", str(tmp_path / "run")]
    final = mod.main(*mod.parse_args([*args, "--push_to_hub", "me/gen"]))
    assert [repo for repo, files in FakeHfApi.uploads] == ["me/gen"] and FakeHfApi.uploads[0][1] == _folder(final)
    assert "StyleGAN2 generator" in FakeHfApi.uploads[0][1]["README.md"].decode()


def test_psp_freezes_only_the_encoder_parameters_no_style_reads():
    mod = load_script("psp")
    small, larger = PSP(tiny_psp_config(16)), PSP(tiny_psp_config(32))
    assert mod.freeze_unreached(small) == ["lat1.weight", "lat1.bias"]  # 16 px: no style from the finest level
    assert not small.encoder.lat1.weight.requires_grad and small.encoder.lat2.weight.requires_grad
    assert mod.freeze_unreached(larger) == [] and all(p.requires_grad for p in larger.encoder.parameters())
