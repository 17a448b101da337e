"""pSp encoder, PSP checkpoint module, CBAM attention loss, attribute directions, training smoke run."""

from __future__ import annotations

import json

import pytest
import torch

from sketchface.attributes import INDEX
from sketchface.models.layers import CBAM
from sketchface.models.psp import (
    PSP,
    AttentionLoss,
    ClassifierFeatureNet,
    GradualStyleEncoder,
    fit_linear_boundaries,
)
from sketchface.models.stylegan import Generator
from tests.helpers import load_script, tiny_psp_config, tiny_stylegan_config


@pytest.mark.parametrize("res,n", [(16, 6), (32, 8), (64, 10), (128, 12), (256, 14), (1024, 18)])
def test_encoder_style_count(res, n):
    cfg = tiny_psp_config(res)
    assert cfg.n_styles == n
    if res <= 64:
        enc = GradualStyleEncoder(cfg)
        out = enc(torch.randn(2, 1, res, res))
        assert out.shape == (2, n, 16)


@pytest.mark.parametrize("res", [16, 32, 64])  # 16 px: no fine heads, coarse heads read a 1x1 map
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_inference_heads_equal_the_per_head_modules(res, channels_last):
    torch.manual_seed(0)
    enc = GradualStyleEncoder(tiny_psp_config(res)).eval()
    if channels_last:
        enc.to(memory_format=torch.channels_last)
    x = torch.randn(2, 1, res, res)
    reference = enc(x).detach()  # gradients on: one module per head
    with torch.inference_mode():
        torch.testing.assert_close(enc(x), reference)
        torch.testing.assert_close(enc(x), reference)  # from the cache
    with torch.no_grad():
        enc.styles[-1].linear.weight.mul_(3.0)  # e.g. load_state_dict: the cache follows the weights
    changed = enc(x).detach()
    assert not torch.allclose(changed, reference)
    with torch.inference_mode():
        torch.testing.assert_close(enc(x), changed)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_psp_shapes_and_latent_avg(in_channels):
    torch.manual_seed(0)
    psp = PSP(tiny_psp_config(32, in_channels=in_channels))
    psp.latent_avg.fill_(0.25)
    x = torch.rand(2, in_channels, 48, 48)  # resized to the encoder size internally
    img, w_plus = psp(x)
    assert img.shape == (2, 3, 32, 32) and w_plus.shape == (2, 8, 16)
    offsets = psp.encoder(psp.prepare_input(x))
    assert torch.allclose(w_plus, offsets + 0.25)
    # grey input to an RGB encoder and vice versa are converted
    assert psp.encode(torch.rand(1, 4 - in_channels if in_channels == 3 else 3, 32, 32)).shape == (1, 8, 16)


def test_encoder_gradients_and_frozen_generator_untouched():
    torch.manual_seed(0)
    psp = PSP(tiny_psp_config(32))  # 32 px: coarse, middle and fine heads all present
    psp.generator.requires_grad_(False)
    img, _ = psp(torch.rand(2, 1, 32, 32))
    img.pow(2).mean().backward()
    assert all(p.grad is not None for p in psp.encoder.parameters() if p.requires_grad)
    assert all(p.grad is None for p in psp.generator.parameters())


def test_save_load_round_trip_fp16(tmp_path):
    torch.manual_seed(0)
    psp = PSP(tiny_psp_config())
    psp.latent_avg.normal_()
    psp.directions[3].normal_()
    psp.direction_scales[3] = 2.0
    x = torch.rand(1, 1, 16, 16)
    ref = psp(x)[0]
    psp.save_pretrained(tmp_path / "full")
    loaded = PSP.from_pretrained(tmp_path / "full", strict=True)
    assert loaded.cfg == psp.cfg
    assert torch.allclose(loaded(x)[0], ref, atol=1e-6)
    assert torch.equal(loaded.direction_scales, psp.direction_scales)
    psp.half().save_pretrained(tmp_path / "half")
    half = PSP.from_pretrained(tmp_path / "half", strict=True)
    assert half.latent_avg.dtype == torch.float32  # fp16 storage loads into fp32
    assert (half(x)[0] - ref).abs().max() < 0.05


def test_generator_weights_carried(tmp_path):
    g = Generator(tiny_stylegan_config())
    psp = PSP(tiny_psp_config())
    psp.generator.load_state_dict(g.state_dict())
    psp.save_pretrained(tmp_path)
    loaded = PSP.from_pretrained(tmp_path, strict=True)
    z = torch.randn(2, 16)
    assert torch.allclose(loaded.generator(z, noise_mode="const"), g(z, noise_mode="const"))


# -------------------------------------------------------------------------------- attention loss
def test_cbam_shapes_and_formula():
    torch.manual_seed(0)
    cbam = CBAM(8, reduction=2)
    f = torch.randn(2, 8, 5, 5)
    mc, ms = cbam.maps(f)
    assert mc.shape == (2, 8, 1, 1) and ms.shape == (2, 1, 5, 5)
    assert ((mc > 0) & (mc < 1)).all() and ((ms > 0) & (ms < 1)).all()
    assert torch.allclose(cbam(f), cbam.spatial(mc * f) * f)  # F'' = M_s(F') ⊗ F


def test_attention_loss_zero_frozen_and_differentiable():
    loss = AttentionLoss(seed=0)
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(y, y).item() == 0.0
    assert all(not p.requires_grad for p in loss.parameters())
    assert len(list(loss.parameters())) > 0
    y_hat = (y + 0.3 * torch.randn_like(y)).requires_grad_(True)
    value = loss(y, y_hat)
    assert value.item() > 0
    value.backward()
    assert y_hat.grad is not None and y_hat.grad.abs().sum() > 0
    loss.train()
    assert not loss.training  # stays in eval mode
    # same seed -> same network; a different seed -> a different one
    assert loss(y, y_hat).item() == AttentionLoss(seed=0)(y, y_hat).item()
    assert loss(y, y_hat).item() != AttentionLoss(seed=1)(y, y_hat).item()
    assert "seed 0" in loss.description


def test_attention_loss_on_classifier_layers():
    clf = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 40),
    )
    loss = AttentionLoss.from_classifier(clf, layer=2)
    assert isinstance(loss.features, ClassifierFeatureNet) and loss.features.out_channels == 6
    assert all(not p.requires_grad for p in clf.parameters())
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(y, y).item() == 0.0
    assert loss(y, -y).item() > 0


# ------------------------------------------------------------------------------------ directions
def test_fit_linear_boundaries_recovers_direction():
    torch.manual_seed(0)
    w = torch.randn(2000, 8)
    true = torch.zeros(8)
    true[2] = 1.0
    labels = torch.stack([(w[:, 2] > 0.3).float(), torch.zeros(2000)], dim=1)  # 2nd: never present
    fit = fit_linear_boundaries(w, labels)
    assert torch.nn.functional.cosine_similarity(fit["normals"][0], true, dim=0) > 0.95
    assert fit["accuracy"][0] > 0.9
    assert fit["scales"][1] == 0  # not enough positives -> not editable
    assert abs(float(fit["offsets"][0]) + 0.3) < 0.15  # boundary at w_2 = 0.3


def test_edit_moves_across_boundary():
    torch.manual_seed(0)
    psp = PSP(tiny_psp_config())
    i = INDEX["Eyeglasses"]
    n = torch.nn.functional.normalize(torch.randn(16), dim=0)
    psp.directions[i] = n
    psp.direction_scales[i] = 1.0
    w = torch.randn(3, psp.n_styles, 16)
    on = psp.edit(w, {"Eyeglasses": True}, strength=2.0)
    assert ((on.mean(1) @ n) >= 2.0 - 1e-4).all()
    off = psp.edit(w, {"Eyeglasses": False}, strength=2.0)
    assert ((off.mean(1) @ n) <= -2.0 + 1e-4).all()
    again = psp.edit(on, {"Eyeglasses": True}, strength=1.0)  # already far enough: unchanged
    assert torch.allclose(again, on)
    assert psp.editable_attributes == ["Eyeglasses"]
    with pytest.raises(ValueError):
        psp.edit(w, {"Smiling": True})
    with pytest.raises(KeyError):
        psp.edit(w, {"Glasses": True})


def test_mix_fine_leaves_coarse_layers():
    psp = PSP(tiny_psp_config(32))
    w = torch.randn(2, 8, 16)
    r = torch.randn(2, 16)
    mixed = psp.mix_fine(w, r, 1.0, start=4)
    assert torch.equal(mixed[:, :4], w[:, :4])
    assert torch.allclose(mixed[:, 4:], r[:, None].expand(-1, 4, -1))
    assert torch.equal(psp.mix_fine(w, r, 0.0), w)


# ---------------------------------------------------------------------------------- training smoke


def test_training_smoke(tmp_path):
    Generator(tiny_stylegan_config()).save_pretrained(tmp_path / "gen")
    mod = load_script("psp")
    train_args, cfg = mod.parse_args(
        f"--generator {tmp_path / 'gen'} --output_dir {tmp_path / 'run'} --dataset synthetic --pool_size 16 "
        "--batch_size 4 --steps 2 --num_workers 0 --encoder_channels 4,8,8,16 --blocks_per_stage 1,1,1,1 "
        "--fpn_channels 8 --perceptual none --eval_samples 4 --warmup_steps 1 --no-eval_identity".split()
    )
    final = mod.main(train_args, cfg)
    psp = PSP.from_pretrained(final, strict=True)
    assert psp.cfg.resolution == 16 and psp.latent_avg.abs().sum() > 0
    assert (tmp_path / "run" / "state" / "trainer.json").exists()
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert '"steps": 2' in summary and "eval_held_out" in summary
    card = (final / "README.md").read_text()
    assert "an in-memory pool of 16 faces" in card and " samples/s" in card and "precision fp32" in card
    train_args.resume, train_args.max_steps = True, 3
    mod.main(train_args, cfg)
    assert json.loads((tmp_path / "run" / "state" / "trainer.json").read_text())["step"] == 3


def test_training_tunes_generator_synthesis_only_when_asked(tmp_path):
    PSP(tiny_psp_config()).save_pretrained(tmp_path / "start")
    mod = load_script("psp")
    args = (
        f"--init_from {tmp_path / 'start'} --dataset synthetic --pool_size 16 --batch_size 4 --steps 3 "
        "--num_workers 0 --perceptual none --eval_samples 0 --warmup_steps 1 --generator_reg_every 1"
    ).split()
    start = PSP.from_pretrained(tmp_path / "start").generator.state_dict()
    for lr in (0.0, 1e-2):
        out = tmp_path / f"run-{lr}"
        final = mod.main(*mod.parse_args([*args, "--output_dir", str(out), "--generator_lr", str(lr)]))
        tuned = PSP.from_pretrained(final).generator.state_dict()
        changed = {k for k in start if not torch.equal(start[k].half(), tuned[k].half())}
        if lr == 0:
            assert not changed  # pSp proper: the generator is frozen
        else:  # synthesis layers move, the mapping network (random styles) and the buffers do not
            assert any(k.startswith("convs.") for k in changed) and any(k.startswith("to_rgb") for k in changed)
            assert not any(k.startswith("mapping.") or k.startswith("noise_") or k == "w_avg" for k in changed)
            assert "regulariser" in (out / "summary.json").read_text()

    # resuming keeps the choice frozen/tuned (the optimizer state differs) but takes this run's learning rates
    with pytest.raises(SystemExit, match="kept the generator frozen"):
        mod.main(
            *mod.parse_args([*args, "--output_dir", str(tmp_path / "run-0.0"), "--generator_lr", "1e-2", "--resume"])
        )
    out = tmp_path / "run-0.01"
    args += ["--output_dir", str(out), "--generator_lr", "2e-2", "--max_steps", "4", "--resume"]
    mod.main(*mod.parse_args(args))
    assert json.loads((out / "state" / "trainer.json").read_text())["step"] == 4
    state = torch.load(out / "state" / "optimizer.bin", weights_only=True)
    assert [g["base_lr"] for g in state["param_groups"]][1] == 2e-2


def test_attention_sweep(tmp_path):
    PSP(tiny_psp_config()).save_pretrained(tmp_path / "start")
    (tmp_path / "start" / "eval.json").write_text('{"attention_lambda": 1000.0}')  # as train/psp.py summarises
    from evaluation import sweep_attention as sweep

    cfg = sweep.parse_args(
        [
            "--lambdas", "0", "1e6", "--runs_dir", str(tmp_path / "runs"), "--out_dir", str(tmp_path / "out"), "--",
            "--init_from", str(tmp_path / "start"), "--dataset", "synthetic", "--pool_size", "8", "--batch_size", "4",
            "--steps", "1", "--num_workers", "0", "--perceptual", "none", "--eval_samples", "4", "--no-eval_identity",
        ]
    )  # fmt: skip
    assert cfg.lambdas == [0.0, 1e6] and "--dataset" in cfg.psp_args
    rows = sweep.main(cfg)
    assert [r["label"] for r in rows] == ["starting checkpoint (trained with λ4 = 1e3)", "0", "1e6"]
    assert [r["steps"] for r in rows] == [0, 1, 1] and all("computed" in r["eval"] for r in rows)
    start, tuned = (PSP.from_pretrained(tmp_path / "runs" / n / "final") for n in ("start", "lambda-1e6"))
    assert torch.equal(start.generator.state_dict()["input.input"], tuned.generator.state_dict()["input.input"])
    table = (tmp_path / "out" / "sweep.md").read_text()
    assert table.count("\n| ") == 3 and table.startswith("| λ4 | steps | MSE (computed)")  # header, three runs
    assert '"attention_lambda": 1000000.0' in (tmp_path / "out" / "sweep.json").read_text()
    with pytest.raises(SystemExit):  # the sweep sets λ4 itself
        sweep.parse_args(["--", "--init_from", str(tmp_path / "start"), "--attention_lambda", "5"])


def test_w_norm_loss():
    mod = load_script("psp")
    avg = torch.zeros(4)
    w = torch.zeros(2, 3, 4)
    w[0, 0, 0] = 3.0
    w[0, 1, 1] = 4.0
    assert mod.w_norm_loss(w, avg).item() == pytest.approx(2.5)  # (5 + 0) / 2


def test_training_on_an_image_folder_without_labels(tmp_path):
    from PIL import Image

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(40):
        Image.new("RGB", (20, 24), (6 * i, 50, 255 - 6 * i)).save(faces / f"{i:03d}.png")
    PSP(tiny_psp_config()).save_pretrained(tmp_path / "start")
    mod = load_script("psp")
    args = f"--init_from {tmp_path / 'start'} --data folder:{faces} --pool_size 64 --batch_size 4 --max_steps 2 "
    args += f"--num_workers 0 --perceptual none --eval_samples 4 --no-eval_identity --output_dir {tmp_path / 'run'}"
    final = mod.main(*mod.parse_args(args.split()))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pool"]["mode"] == "pool" and 20 < summary["pool"]["faces"] < 40  # the train split
    assert list(summary["eval_held_out"]) == ["computed"] and summary["eval_held_out"]["computed"]["n"] > 0
    assert "the test split" in (final / "README.md").read_text()


def test_resumed_time_schedule_carries_on_from_the_recorded_training_time(tmp_path):
    """--max_minutes: the learning rate decays over training time, and a resumed run counts the time already spent
    (issue 24: it used to restart the schedule)."""
    PSP(tiny_psp_config()).save_pretrained(tmp_path / "start")
    mod = load_script("psp")
    out = tmp_path / "run"
    args = f"--init_from {tmp_path / 'start'} --dataset synthetic --pool_size 16 --batch_size 4 --num_workers 0 "
    args += f"--perceptual none --eval_samples 0 --warmup_steps 1 --log_every 1 --max_minutes 10 --output_dir {out}"
    mod.main(*mod.parse_args([*args.split(), "--max_steps", "2"]))
    budget = 10 - 75 / 60  # --reserve_seconds stay for evaluation and saving
    meta = json.loads((out / "state" / "trainer.json").read_text())
    meta["elapsed_seconds"] = 0.9 * budget * 60  # as if the first run had trained that long
    (out / "state" / "trainer.json").write_text(json.dumps(meta))
    mod.main(*mod.parse_args([*args.split(), "--max_steps", "3", "--resume"]))
    lr = [json.loads(line)["lr"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(lr) == 3 and lr[1] == pytest.approx(5e-4 * 0.55, rel=0.01)  # half-way by steps: cosine at 0.55
    # resumed at 90 % of the time budget: the cosine near its floor (0.122), not where 2 of 3 steps put it (0.325)
    assert lr[2] == pytest.approx(5e-4 * 0.122, rel=0.05)


def test_spatial_code_config_and_pack_round_trip():
    from sketchface.models.psp import PSP, PSPConfig

    gen = {"resolution": 32, "style_dim": 16, "n_mlp": 1, "max_channels": 8}
    with pytest.raises(ValueError, match="spatial_resolution"):
        PSPConfig(generator=gen, spatial_resolution=4)
    psp = PSP(PSPConfig(generator=gen, encoder_channels=[4, 8, 8, 8], spatial_resolution=16)).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        w, spatial = psp.encode_spatial(x)
        assert spatial.shape == (2, 8, 16, 16)
        packed = psp.pack(w, spatial)
        w2, s2 = psp.unpack(packed)
        assert torch.equal(w2, w) and torch.equal(s2, spatial)
        image, w3 = psp(x)
        assert torch.equal(image, psp.decode(w, features=spatial)) and torch.equal(w3, w)
