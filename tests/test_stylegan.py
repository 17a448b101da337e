"""StyleGAN2 generator / discriminator: shapes, W+ layout, style mixing, save/load, training smoke run."""

from __future__ import annotations

import json

import pytest
import torch

from sketchface.models.layers import Blur, ModulatedConv2d, Upsample, make_kernel, separable_taps, upfirdn2d
from sketchface.models.stylegan import Discriminator, Generator, StyleGANConfig, n_styles_for
from tests.helpers import load_script, tiny_stylegan_config


@pytest.mark.parametrize("res,n", [(16, 6), (64, 10), (128, 12), (256, 14), (1024, 18)])
def test_w_plus_count(res, n):
    assert n_styles_for(res) == n
    assert StyleGANConfig(resolution=res).n_latent == n


def test_channel_table_matches_rosinality():
    cfg = StyleGANConfig(channel_multiplier=2, max_channels=512, resolution=1024)
    assert [cfg.channels(2**i) for i in range(2, 11)] == [512, 512, 512, 512, 512, 256, 128, 64, 32]


@pytest.mark.parametrize("res", [16, 32])
def test_shapes(res):
    torch.manual_seed(0)
    g, d = Generator(tiny_stylegan_config(res)), Discriminator(tiny_stylegan_config(res))
    z = torch.randn(3, 16)
    img = g(z)
    assert img.shape == (3, 3, res, res)
    assert torch.isfinite(img).all()
    assert d(img).shape == (3, 1)
    w_plus = g.broadcast(g.map(z))
    assert w_plus.shape == (3, g.n_latent, 16)


def test_gradients_reach_generator_and_discriminator():
    torch.manual_seed(0)
    g, d = Generator(tiny_stylegan_config()), Discriminator(tiny_stylegan_config())
    loss = torch.nn.functional.softplus(-d(g(torch.randn(4, 16)))).mean()
    loss.backward()
    assert all(p.grad is not None for p in g.convs.parameters())
    assert g.mapping[1].weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


def test_const_noise_is_deterministic_random_is_not():
    torch.manual_seed(0)
    g = Generator(tiny_stylegan_config())
    for m in g.modules():  # noise weights start at 0; make noise matter
        if hasattr(m, "weight") and m.__class__.__name__ == "NoiseInjection":
            m.weight.data.fill_(1.0)
    w = g.broadcast(g.map(torch.randn(2, 16)))
    assert torch.equal(g.synthesis(w, noise_mode="const"), g.synthesis(w, noise_mode="const"))
    assert not torch.equal(g.synthesis(w, noise_mode="random"), g.synthesis(w, noise_mode="random"))


def test_style_mixing_keeps_coarse_layers():
    torch.manual_seed(0)
    g = Generator(tiny_stylegan_config(32))
    w1, w2 = g.map(torch.randn(2, 16)), g.map(torch.randn(2, 16))
    mixed = g.mix(w1, w2, crossover=3)
    assert torch.equal(mixed[:, :3], g.broadcast(w1)[:, :3])
    assert torch.equal(mixed[:, 3:], g.broadcast(w2)[:, 3:])
    per_sample = g.mix(w1, w2, crossover=torch.tensor([1, 5]))
    assert torch.equal(per_sample[0, 1:], g.broadcast(w2)[0, 1:])
    assert torch.equal(per_sample[1, :5], g.broadcast(w1)[1, :5])


def test_fine_layers_change_image_less_than_coarse():
    # swapping only the last layers must change the image less than swapping everything
    torch.manual_seed(0)
    g = Generator(tiny_stylegan_config(32))
    w1, w2 = g.map(torch.randn(4, 16)), g.map(torch.randn(4, 16))
    base = g.synthesis(g.broadcast(w1))
    fine = g.synthesis(g.mix(w1, w2, crossover=g.n_latent - 2))
    full = g.synthesis(g.broadcast(w2))
    assert (fine - base).abs().mean() < (full - base).abs().mean()


def test_upfirdn_shapes_and_dc_gain():
    x = torch.ones(1, 2, 8, 8)
    up = Upsample([1, 3, 3, 1])(x)
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[..., 4:-4, 4:-4], torch.ones(1, 2, 8, 8), atol=1e-5)  # preserves a constant
    blur = Blur([1, 3, 3, 1], pad=(2, 1))(x)
    assert blur.shape == (1, 2, 8, 8)
    down = upfirdn2d(x, torch.ones(2, 2) / 4, down=2)
    assert down.shape == (1, 2, 4, 4)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    g = Generator(tiny_stylegan_config())
    g.w_avg.fill_(0.5)
    g.save_pretrained(tmp_path / "g")
    g2 = Generator.from_pretrained(tmp_path / "g", strict=True)
    assert g2.cfg == g.cfg
    assert torch.equal(g2.w_avg, g.w_avg)
    z = torch.randn(2, 16)
    assert torch.allclose(g(z, noise_mode="const"), g2(z, noise_mode="const"))
    d = Discriminator(tiny_stylegan_config())
    d.save_pretrained(tmp_path / "d")
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(Discriminator.from_pretrained(tmp_path / "d", strict=True)(x), d(x))


def test_bad_resolution():
    with pytest.raises(ValueError):
        StyleGANConfig(resolution=48)


def test_diffaugment_shapes_and_grad():
    mod = load_script("stylegan")
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = mod.diff_augment(x, "translation,color,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError):
        mod.diff_augment(x, "rotate")


def test_training_smoke(tmp_path):
    mod = load_script("stylegan")
    args = (
        f"--output_dir {tmp_path / 'run'} --dataset synthetic --resolution 16 --max_channels 8 --style_dim 16 "
        "--n_mlp 2 --batch_size 4 --pool_size 16 --steps 2 --num_workers 0 --d_reg_every 1 "
        "--diffaugment translation,color,cutout --sample_count 4"
    ).split()
    final = mod.main(*mod.parse_args(args))
    g = Generator.from_pretrained(final, strict=True)
    assert g.cfg.resolution == 16
    assert (tmp_path / "run" / "state" / "trainer.json").exists()
    assert (tmp_path / "run" / "samples" / "final.png").exists()
    assert g.w_avg.abs().sum() > 0  # w_avg was tracked
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pool_size"] == 16 and summary["pool"]["mode"] == "pool" and not summary["pool"]["capped"]
    card = (final / "README.md").read_text()
    assert "StyleGAN2 generator (16 px" in card and "an in-memory pool of 16 faces" in card and " samples/s" in card
    # resume continues from the saved step (--max_steps is the shared name of --steps)
    mod.main(*mod.parse_args([*args, "--resume", "--max_steps", "3"]))
    assert json.loads((tmp_path / "run" / "state" / "trainer.json").read_text())["step"] == 3
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3


def test_pool_cut_short_by_minutes_says_so(tmp_path):
    mod = load_script("stylegan")
    args = f"--output_dir {tmp_path / 'run'} --data synthetic --resolution 16 --max_channels 8 --style_dim 16 "
    args += "--n_mlp 2 --batch_size 4 --pool_size 4096 --max_steps 1 --num_workers 0 --pool_max_minutes 0"
    final = mod.main(*mod.parse_args(args.split()))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pool"]["capped"] and summary["pool_size"] == 128 and summary["pool"]["of"] == 4096
    assert "128 faces of 4,096: rendering stopped after --pool_max_minutes 0" in (final / "README.md").read_text()


def test_data_flags_take_the_shared_names_and_real_data_sets(tmp_path):
    mod = load_script("stylegan")
    train_args, cfg = mod.parse_args(["--data", f"folder:{tmp_path}", "--max_steps", "7"])
    assert (cfg.data, cfg.data_root, train_args.max_steps) == ("folder", str(tmp_path), 7)
    assert mod.parse_args(["--dataset", "celeba-hq", "--data_root", "x", "--steps", "5"])[0].max_steps == 5
    with pytest.raises(SystemExit):
        mod.parse_args(["--data", "celeba"])  # needs --data_root
    from PIL import Image

    for i in range(12):
        Image.new("RGB", (20, 24), (10 * i, 50, 90)).save(tmp_path / f"{i:03d}.png")
    ds = mod.make_dataset(cfg)
    assert 0 < len(ds) <= 12 and ds[0]["image"].shape == (3, 64, 64)


@pytest.mark.parametrize("up,pad", [(1, (2, 1)), (2, (2, 1)), (1, (-1, 2))])
def test_separable_fir_equals_depthwise_conv(up, pad):
    kernel = make_kernel([1, 3, 3, 1]) * 4
    taps = separable_taps(kernel)
    assert taps is not None and len(taps[0]) == 4
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(upfirdn2d(x, kernel, up=up, pad=pad, taps=taps), upfirdn2d(x, kernel, up=up, pad=pad))
    assert separable_taps(torch.eye(2)) is None  # not an outer product: the conv path is used


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_inference_cache_follows_the_weights(upsample):
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, 3, style_dim=8, upsample=upsample).eval()
    x, style = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    reference = conv(x, style)  # gradients on: computed fresh
    with torch.inference_mode():
        torch.testing.assert_close(conv(x, style), reference)
        torch.testing.assert_close(conv(x, style), reference)  # from the cache
    with torch.no_grad():
        conv.weight.mul_(2.0).add_(0.1)  # an optimizer step or load_state_dict changes the weight in place
    with torch.inference_mode():
        fresh = conv(x, style)
    torch.testing.assert_close(fresh, conv(x, style).detach())
    assert not torch.allclose(fresh, reference)


@pytest.mark.parametrize("up,pad", [(1, (2, 1)), (2, (2, 1)), (1, (-1, 2))])
def test_fir_on_channels_last_equals_contiguous(up, pad):
    # channels_last tensors take the depthwise-convolution path, contiguous ones the shifted multiply-adds
    kernel = make_kernel([1, 3, 3, 1]) * 4
    taps = separable_taps(kernel)
    x = torch.randn(2, 5, 9, 9)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert not x_cl.is_contiguous()
    torch.testing.assert_close(upfirdn2d(x_cl, kernel, up=up, pad=pad, taps=taps), upfirdn2d(x, kernel, up=up, pad=pad))


def test_to_rgb_conv_on_channels_last_equals_contiguous_with_gradients():
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 3, 1, style_dim=8, demodulate=False)
    x, style = torch.randn(2, 6, 5, 5, requires_grad=True), torch.randn(2, 8)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out, out_cl = conv(x, style), conv(x_cl, style)  # conv2d path, batched-matmul path
    torch.testing.assert_close(out_cl, out)
    out.square().sum().backward()
    grad_w = conv.weight.grad.clone()
    conv.weight.grad = None
    out_cl.square().sum().backward()
    torch.testing.assert_close(x_cl.grad, x.grad)
    torch.testing.assert_close(conv.weight.grad, grad_w)


@pytest.mark.parametrize("batch", [1, 3])
def test_channels_last_generator_draws_the_same_faces(batch):
    # the pipelines convert their generator to channels_last; from 32 px on it then runs in that layout
    torch.manual_seed(0)
    g = Generator(StyleGANConfig(resolution=64, style_dim=16, n_mlp=2, max_channels=16)).eval()
    w_plus = torch.randn(batch, g.n_latent, 16)
    with torch.inference_mode():
        reference = g.synthesis(w_plus)
        g.to(memory_format=torch.channels_last)
        out = g.synthesis(w_plus)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_real_data_larger_than_the_pool_is_streamed(tmp_path):
    from PIL import Image

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(24):
        Image.new("RGB", (20, 24), (10 * i, 50, 255 - 10 * i)).save(faces / f"{i:03d}.png")
    mod = load_script("stylegan")
    args = f"--output_dir {tmp_path / 'run'} --data folder --data_root {faces} --resolution 16 --max_channels 8 "
    args += "--style_dim 16 --n_mlp 2 --batch_size 4 --pool_size 8 --max_steps 2 --num_workers 0 --sample_count 4"
    final = mod.main(*mod.parse_args(args.split()))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pool"]["mode"] == "stream" and summary["pool_size"] > 8 and summary["steps"] == 2
    assert "streamed from the data set" in (final / "README.md").read_text()
    assert Generator.from_pretrained(final).cfg.resolution == 16


def test_a_spatial_code_replaces_the_activations_below_its_resolution():
    torch.manual_seed(0)
    g = Generator(StyleGANConfig(resolution=32, style_dim=16, n_mlp=1, max_channels=8)).eval()
    w = torch.randn(2, g.n_latent, 16)
    feats = torch.randn(2, g.cfg.channels(16), 16, 16)
    with torch.no_grad():
        out = g.synthesis(w, features=feats)
        coarse = w.clone()
        coarse[:, :3] += 5  # the 4 and 8 px layers' styles: unused when the code enters at 16 px
        assert torch.equal(g.synthesis(coarse, features=feats), out)
        fine = w.clone()
        fine[:, -1] += 5  # the last toRGB: still used
        assert not torch.equal(g.synthesis(fine, features=feats), out)
        assert not torch.equal(g.synthesis(w, features=feats + 1), out)
        assert out.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="features must be"):
        g.synthesis(w, features=torch.randn(2, 3, 16, 16))
