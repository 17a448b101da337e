"""The shared training harness: precision, schedule, batches per rank, atomic saves and the push helper."""

from __future__ import annotations

import json

import pytest
import torch

from sketchface.models.translator import SketchTranslator, TranslatorConfig
from sketchface.trainer import Trainer, TrainingArguments, _half_copy, native_bf16, push_folder


def _args(tmp_path, **kw) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path / "run"), **kw)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="precision"):
        TrainingArguments(precision="fp8")
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainingArguments(lr_schedule="step")


def test_bfloat16_and_float32_steps_agree_on_a_tiny_model():
    """Issue 26: one bf16-autocast step and one float32 step give gradients with cosine >= 0.999."""
    torch.manual_seed(0)
    model = SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16, 16], style_dim=4, groups=4))
    sketch, photo = torch.rand(4, 1, 32, 32), torch.rand(4, 3, 32, 32)

    def grads(dtype: torch.dtype | None) -> torch.Tensor:
        model.zero_grad()
        torch.manual_seed(1)  # the same reparameterisation noise
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            fake, _, _ = model(sketch, style_photo=photo)
            loss = (fake.float() - photo).abs().mean()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    g32, g16 = grads(None), grads(torch.bfloat16)
    assert float(torch.nn.functional.cosine_similarity(g32, g16, dim=0)) >= 0.999


def test_precision_auto_follows_the_hardware(tmp_path):
    trainer = Trainer(_args(tmp_path, precision="auto"), cpu=True)
    assert trainer.precision == ("bf16" if native_bf16(torch.device("cpu")) else "fp32")
    assert Trainer(_args(tmp_path, precision="fp32"), cpu=True).precision == "fp32"
    with pytest.raises(ValueError, match="fp16 needs a CUDA"):
        Trainer(_args(tmp_path, precision="fp16"), cpu=True)


def test_schedule_warms_up_then_decays(tmp_path):
    trainer = Trainer(_args(tmp_path, max_steps=100, warmup_steps=10, lr=1.0, precision="fp32"), cpu=True)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = trainer.scheduler(opt)
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warm-up
    assert lrs[10] > lrs[50] > lrs[99] >= 0.1 - 1e-6  # cosine down to 10 %


def test_time_budget_drives_progress(tmp_path, monkeypatch):
    trainer = Trainer(_args(tmp_path, max_steps=1000, max_minutes=10.0, precision="fp32"), cpu=True)
    monkeypatch.setattr(trainer, "elapsed_minutes", lambda: 5.0)
    assert trainer.progress(100) == pytest.approx(0.5) and not trainer.done(100)
    monkeypatch.setattr(trainer, "elapsed_minutes", lambda: 10.5)
    assert trainer.progress(100) == 1.0 and trainer.done(100)


def test_pool_batches_cover_epochs_and_give_ranks_disjoint_rows(tmp_path, monkeypatch):
    pool = {"x": torch.arange(20)}
    trainer = Trainer(_args(tmp_path, batch_size=4, precision="fp32"), cpu=True)
    it = trainer.pool_batches(pool)
    epoch = torch.cat([next(it)["x"] for _ in range(5)])
    assert sorted(epoch.tolist()) == list(range(20))  # one epoch: every row once
    resumed = trainer.pool_batches(pool, start_step=3)
    fresh = trainer.pool_batches(pool)
    for _ in range(3):
        next(fresh)
    assert torch.equal(next(resumed)["x"], next(fresh)["x"])  # resuming lands on the same rows
    # two ranks: each takes its own slice of every step
    rows = []
    for rank in (0, 1):
        monkeypatch.setattr(Trainer, "process_index", property(lambda self, r=rank: r))
        monkeypatch.setattr(Trainer, "num_processes", property(lambda self: 2))
        rows.append(next(trainer.pool_batches(pool))["x"].tolist())
    assert not set(rows[0]) & set(rows[1]) and len(rows[0]) == len(rows[1]) == 4
    with pytest.raises(ValueError, match="fewer than one step"):
        next(trainer.pool_batches({"x": torch.arange(3)}))


def test_save_pretrained_is_atomic_half_precision_and_push_uploads_that_folder(tmp_path):
    trainer = Trainer(_args(tmp_path, precision="fp32"), cpu=True)
    model = SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], style_dim=0, groups=4))
    folder = trainer.save_pretrained(model, tmp_path / "final", card="# card\n")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert not (tmp_path / "final.tmp").exists()
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(folder / "model.safetensors").values()} == {torch.float16}
    assert next(model.parameters()).dtype == torch.float32  # the live model is untouched
    assert next(_half_copy(model).parameters()).dtype == torch.float16

    class FakeApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, exist_ok):
            self.calls.append(("create", repo_id))

        def upload_folder(self, folder_path, repo_id, commit_message):
            from pathlib import Path

            self.calls.append(("upload", repo_id, {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}))
            return "https://hub/commit"

    api = FakeApi()
    assert push_folder(folder, "me/model", api=api) == "https://hub/commit"
    uploaded = api.calls[1][2]
    assert uploaded == {p.name: p.read_bytes() for p in folder.iterdir()}  # exactly what was saved


def test_save_state_and_resume_restore_the_step_and_time(tmp_path):
    args = _args(tmp_path, precision="fp32", resume=True)
    trainer = Trainer(args, cpu=True)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    model, opt = trainer.prepare(model, opt)
    trainer.meta["setup_seconds"] = 12.5  # a script's own values travel with the state
    trainer.save_state(7)
    meta = json.loads((tmp_path / "run" / "state" / "trainer.json").read_text())
    assert meta["step"] == 7 and not (tmp_path / "run" / "state.tmp").exists()
    again = Trainer(args, cpu=True)
    m2, o2 = again.prepare(torch.nn.Linear(2, 2), torch.optim.Adam(torch.nn.Linear(2, 2).parameters()))
    assert again.resume() == 7 and again.meta == {"setup_seconds": 12.5}
    torch.testing.assert_close(m2.weight, model.weight)
    fresh = Trainer(_args(tmp_path / "other", precision="fp32", resume=True), cpu=True)
    assert fresh.resume() == 0  # nothing saved there: start from 0


def test_schedule_helpers_match_the_training_scripts_formulas():
    import math

    from sketchface.trainer import cosine_decay, warmup_cosine, warmup_factor

    # the formulas train/mvae.py, train/classifier.py (warm-up, then cosine to 5 %) and train/psp.py (warm-up times a
    # cosine to 10 % over the run) computed before they shared these helpers: equal to the last bit
    def mvae_lr(lr, warm, step, total):
        if step < warm:
            return lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

    def psp_lr(base, warm, step, progress):
        w = min(1.0, (step + 1) / max(warm, 1))
        return base * w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    for lr, warm, total in ((3e-4, 100, 2000), (1e-3, 0, 50), (2e-4, 7, 7)):
        for step in range(0, total + 30, 3):
            assert warmup_cosine(lr, step, warm, total, floor=0.05) == mvae_lr(lr, warm, step, total)
            progress = step / total
            assert lr * warmup_factor(step, warm) * cosine_decay(progress, 0.1) == psp_lr(lr, warm, step, progress)
            assert cosine_decay(min(progress, 1.0), 0.1) == 0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0)))
    assert warmup_cosine(1.0, 0, 10, 100, floor=0.05) == 0.1 and warmup_cosine(1.0, 10, 10, 100, floor=0.05) == 1.0
    assert cosine_decay(1.0, 0.05) == pytest.approx(0.05) and cosine_decay(5.0, 0.05) == cosine_decay(1.0, 0.05)


def test_dataset_batches_stream_the_rows_pool_batches_take(tmp_path, monkeypatch):
    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return {"x": torch.tensor(i)}

    trainer = Trainer(_args(tmp_path, batch_size=4, precision="fp32"), cpu=True)
    pool = {"x": torch.arange(20)}
    for start in (0, 7):  # from the start, and resumed in the second epoch
        streamed, pooled = trainer.dataset_batches(Rows(), start), trainer.pool_batches(pool, start)
        for _ in range(6):
            assert torch.equal(next(streamed)["x"], next(pooled)["x"])
    state = torch.get_rng_state()
    next(trainer.dataset_batches(Rows(), 0))
    assert torch.equal(torch.get_rng_state(), state)  # the loader leaves the global RNG alone (exact resume)
    monkeypatch.setattr(Trainer, "num_processes", property(lambda self: 8))
    with pytest.raises(ValueError, match="fewer than one step"):
        trainer.dataset_batches(Rows(), 0).__next__()


def test_save_pretrained_into_the_run_folder_keeps_the_state_and_push_sends_only_the_model(tmp_path, monkeypatch):
    args = _args(tmp_path, precision="fp32", push_to_hub="me/model")
    trainer = Trainer(args, cpu=True)
    model = SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], style_dim=0, groups=4))
    opt = torch.optim.Adam(model.parameters())
    model, opt = trainer.prepare(model, opt)  # channels_last: the float32 save needs a contiguous copy
    trainer.save_state(3)
    run = tmp_path / "run"
    sent = {}

    class FakeApi:
        def create_repo(self, repo_id, exist_ok):
            pass

        def upload_folder(self, folder_path, repo_id, commit_message, allow_patterns=None):
            sent.update({n: (run / n).read_bytes() for n in allow_patterns})
            return "ok"

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    trainer.finish(model, run, card="# card\n", record={"steps": 3}, fp16=False)
    assert (run / "state" / "trainer.json").is_file()  # the training state survives the save
    assert trainer.saved_files(run) == ["README.md", "config.json", "eval.json", "model.safetensors"]
    assert sent == {n: (run / n).read_bytes() for n in trainer.saved_files(run)}
    assert SketchTranslator.from_pretrained(str(run)).state_dict().keys() == trainer.unwrap(model).state_dict().keys()
