"""MVAE / cross-modal VAE: product of experts, unknown-mask behaviour, shapes, losses, save/load, training scripts."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from torch.utils.data import Dataset

from sketchface.losses import (
    annealing_factor,
    attribute_nll,
    gaussian_kl,
    gaussian_kl_between,
    image_nll,
    random_known_mask,
)
from sketchface.models.layers import DecoderPatchDiscriminator
from sketchface.models.mvae import MVAE, CrossModalVAE, MVAEConfig, load_vae, poe, prior_expert
from tests.helpers import load_script, tiny_cvae_config, tiny_mvae_config

# ------------------------------------------------------------------------------------------------ product of experts


def test_poe_matches_closed_form_product_of_two_gaussians():
    # N(1, 1) x N(3, 4): precision 1 + 1/4 = 1.25 -> var 0.8; mean = 0.8 * (1*1 + 3/4) = 1.4
    mu = torch.tensor([[[1.0]], [[3.0]]])  # (M=2, B=1, D=1)
    logvar = torch.log(torch.tensor([[[1.0]], [[4.0]]]))
    pd_mu, pd_logvar = poe(mu, logvar)
    assert pd_mu.item() == pytest.approx(1.4, abs=1e-5)
    assert pd_logvar.exp().item() == pytest.approx(0.8, abs=1e-5)


def test_poe_matches_numeric_product_of_densities():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 1, 1), torch.randn(3, 1, 1) * 0.5
    pd_mu, pd_logvar = poe(mu, logvar)
    # product of the three densities on a grid, renormalised: compare its mean and variance
    x = torch.linspace(-8, 8, 20001, dtype=torch.float64)
    log_p = sum(-0.5 * (x - m) ** 2 / lv.exp() for m, lv in zip(mu.double().flatten(), logvar.double().flatten()))
    p = torch.exp(log_p - log_p.max())
    p = p / p.sum()
    mean = (p * x).sum()
    var = (p * (x - mean) ** 2).sum()
    assert pd_mu.item() == pytest.approx(mean.item(), abs=1e-4)
    assert pd_logvar.exp().item() == pytest.approx(var.item(), rel=1e-3)


def test_weighted_experts_scale_precision():
    torch.manual_seed(2)
    model = MVAE(tiny_mvae_config()).eval()
    values, known, sketch = torch.rand(3, 40).round(), torch.ones(3, 40), torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        experts = model.experts(values=values, known=known, sketch=sketch)
        (ma, la), (ms, ls) = experts["attributes"], experts["sketch"]
        # closed form: precisions 1 (prior) + w / var_a + 1 / var_s
        w = 3.0
        t = 1 + w * torch.exp(-la) + torch.exp(-ls)
        mean = (w * torch.exp(-la) * ma + torch.exp(-ls) * ms) / t
        mu, logvar = model.infer(values=values, known=known, sketch=sketch, weights={"attributes": w})
        torch.testing.assert_close(mu, mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(logvar, -torch.log(t), rtol=1e-4, atol=1e-5)
        # weight 1 is the plain product; a larger weight moves the posterior towards the description
        plain = model.infer(values=values, known=known, sketch=sketch)
        torch.testing.assert_close(
            model.infer(values=values, known=known, sketch=sketch, weights={"sketch": 1})[0], plain[0]
        )
        assert (mu - ma).abs().mean() < (plain[0] - ma).abs().mean()
    with pytest.raises(ValueError, match="unknown expert"):
        model.infer(values=values, known=known, weights={"text": 2.0})
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            model.infer(values=values, known=known, weights={"attributes": bad})


def test_poe_mask_ignores_absent_expert_per_sample():
    torch.manual_seed(1)
    mu, logvar = torch.randn(3, 2, 5), torch.randn(3, 2, 5)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # expert 1 absent for sample 1 only
    pd_mu, pd_logvar = poe(mu, logvar, mask)
    full_mu, full_logvar = poe(mu[:, :1], logvar[:, :1])
    sub_mu, sub_logvar = poe(mu[[0, 2], 1:], logvar[[0, 2], 1:])
    torch.testing.assert_close(pd_mu[:1], full_mu)
    torch.testing.assert_close(pd_logvar[:1], full_logvar)
    torch.testing.assert_close(pd_mu[1:], sub_mu)
    torch.testing.assert_close(pd_logvar[1:], sub_logvar)
    # and the absent expert really mattered where present
    assert not torch.allclose(pd_mu[1:], poe(mu[:, 1:], logvar[:, 1:])[0])


def test_prior_only_is_standard_normal():
    mu, logvar = prior_expert(4, 8)
    pd_mu, pd_logvar = poe(mu[None], logvar[None])
    torch.testing.assert_close(pd_mu, torch.zeros(4, 8))
    torch.testing.assert_close(pd_logvar, torch.zeros(4, 8), atol=1e-6, rtol=0)
    model = MVAE(tiny_mvae_config()).eval()
    m, lv = model.infer()
    assert m.abs().max() == 0 and lv.abs().max() < 1e-6
    # an all-unknown description must still give a proper posterior (finite, near the prior's scale)
    m2, lv2 = model.infer(values=torch.zeros(2, 40), known=torch.zeros(2, 40))
    assert torch.isfinite(m2).all() and torch.isfinite(lv2).all()


# ------------------------------------------------------------------------------------------------------- attributes


def test_unknown_values_do_not_change_the_attribute_expert():
    torch.manual_seed(2)
    model = MVAE(tiny_mvae_config()).eval()
    known = (torch.rand(4, 40) < 0.5).float()
    values = (torch.rand(4, 40) < 0.5).float()
    flipped = torch.where(known > 0, values, 1 - values)  # change only the unknown entries
    a = model.experts(values=values, known=known)["attributes"]
    b = model.experts(values=flipped, known=known)["attributes"]
    torch.testing.assert_close(a, b)
    # while changing a known entry does change it
    c = model.experts(values=torch.where(known > 0, 1 - values, values), known=known)["attributes"]
    assert not torch.allclose(a[0], c[0])


def test_random_known_mask_rates():
    g = torch.Generator().manual_seed(0)
    m = random_known_mask(4000, 40, 0.5, generator=g)
    assert m.shape == (4000, 40) and set(m.unique().tolist()) <= {0.0, 1.0}
    fully_known = (m.sum(1) == 40).float().mean().item()
    fully_unknown = (m.sum(1) == 0).float().mean().item()
    assert 0.45 < fully_known < 0.6  # the samples not hit (plus hits that dropped nothing)
    assert 0.03 < fully_unknown < 0.08  # 10% of the 50% hit
    assert random_known_mask(10, 40, 0.0).min() == 1


# ------------------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("size", [16, 32])
def test_mvae_shapes_and_loss(size):
    torch.manual_seed(3)
    model = MVAE(tiny_mvae_config(size))
    x, s = torch.rand(4, 3, size, size), torch.rand(4, 1, size, size)
    y = (torch.rand(4, 40) < 0.3).float()
    img, attrs, mu, logvar = model(x, y, None, s)
    assert img.shape == (4, 3, size, size) and attrs.shape == (4, 40) and mu.shape == logvar.shape == (4, 8)
    assert model.decode(mu).min() >= 0 and model.decode(mu).max() <= 1
    out = model.loss(x, y, random_known_mask(4, 40, 0.5), s, annealing_factor=0.5)
    assert {"joint", "image", "attributes", "sketch", "sketch_attributes", "loss"} <= set(out)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.sketch_encoder.parameters() if p.requires_grad)
    # one subset per sample: the same terms, every subset still trained over a batch
    torch.manual_seed(5)
    sampled = model.loss(x.repeat(8, 1, 1, 1), y.repeat(8, 1), None, s.repeat(8, 1, 1, 1), sample_subsets=True)
    assert sampled.keys() == out.keys() and all(sampled[k] > 0 for k in ("joint", "image", "sketch"))
    sampled["loss"].backward()
    # sketch subsets drop out of the loss for samples without a sketch
    out0 = model.loss(x, y, None, s, sketch_present=torch.zeros(4))
    assert out0["sketch"].item() == 0.0


@pytest.mark.parametrize("size", [16, 32])
def test_decoder_widths_and_full_resolution_stage(size):
    default = MVAE(tiny_mvae_config(size)).image_decoder
    # the default is the paper's mirror decoder, parameter for parameter (so older checkpoints load strictly)
    assert [tuple(p.shape) for p in default.parameters()] == [
        (16 * (size // 16) ** 2, 8),
        (16 * (size // 16) ** 2,),
        (16, 8, 4, 4),
        (8,),
        (8,),
        (8, 8, 4, 4),
        (8,),
        (8,),
        (8, 4, 4, 4),
        (4,),
        (4,),
        (4, 3, 4, 4),
        (3,),
    ]
    model = MVAE(tiny_mvae_config(size, decoder_widths=[24, 16, 12, 8], decoder_full_res=6))
    dec = model.image_decoder
    assert dec.fc[0].out_features == 24 * (size // 16) ** 2
    last = dec.deconv[-1]
    assert isinstance(last, torch.nn.Conv2d) and last.kernel_size == (3, 3) and last.in_channels == 6
    logits = model.decode_logits(torch.randn(2, 8))
    assert logits.shape == (2, 3, size, size)
    out = model.loss(torch.rand(2, 3, size, size), torch.ones(2, 40), None, torch.rand(2, 1, size, size))
    out["loss"].backward()
    assert all(p.grad is not None for p in dec.parameters())


def test_loss_returns_the_decoded_logits_for_an_extra_loss():
    torch.manual_seed(3)
    model = MVAE(tiny_mvae_config())
    x, s, y = torch.rand(4, 3, 16, 16), torch.rand(4, 1, 16, 16), (torch.rand(4, 40) < 0.3).float()
    assert "image_logits" not in model.loss(x, y, None, s)
    full = model.loss(x, y, None, s, return_image_logits=True)["image_logits"]
    assert full.shape == (5 * 4, 3, 16, 16) and full.requires_grad  # one decode per subset and sample
    # rows with an image target: every subset but the attribute-only one (cross_weight 0), here 4 of 5 per sample
    has_target = model.loss(x, y, None, s, return_image_logits=True)["image_has_target"]
    assert has_target.shape == (20,) and has_target.tolist() == [True] * 8 + [False] * 4 + [True] * 8
    no_sketch = model.loss(x, y, None, s, sketch_present=torch.zeros(4), return_image_logits=True)
    assert no_sketch["image_has_target"].sum() == 8  # joint and image only
    sampled_terms = model.loss(x, y, None, s, sample_subsets=True, return_image_logits=True)
    sampled = sampled_terms["image_logits"]
    assert sampled.shape == (4, 3, 16, 16) and sampled_terms["image_has_target"].shape == (4,)
    sampled.mean().backward()  # reaches the decoder
    assert model.image_decoder.deconv[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("sample_subsets", [False, True])
def test_loss_decodes_only_the_faces_it_scores(sample_subsets):
    """With cross_weight 0 the attribute-only subset's face is never scored, so it is not decoded (issue 26); the
    loss and its gradients equal those of the full decode (which return_image_logits still does)."""
    torch.manual_seed(3)
    model = MVAE(tiny_mvae_config()).eval()  # no dropout: both calls see the same network
    b = 16
    x, s, y = torch.rand(b, 3, 16, 16), torch.rand(b, 1, 16, 16), (torch.rand(b, 40) < 0.3).float()
    rows: list[int] = []
    hook = model.image_decoder.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    results = []
    for full in (True, False):
        model.zero_grad()
        torch.manual_seed(0)  # the same draws for both (with this seed some samples draw the attribute-only subset)
        terms = model.loss(x, y, None, s, sample_subsets=sample_subsets, return_image_logits=full)
        terms["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((terms, grads))
    hook.remove()
    (full_terms, full_grads), (terms, grads) = results
    for key in ("loss", "joint", "image", "attributes", "sketch", "sketch_attributes", "image_image_nll"):
        assert torch.allclose(terms[key], full_terms[key], rtol=1e-5, atol=1e-6), key
    assert torch.allclose(grads, full_grads, rtol=1e-4, atol=1e-6)
    if sample_subsets:  # only the samples that drew a subset with an image to score
        assert rows[0] == b and 0 < rows[1] < b
    else:  # one pass per subset: five, then four of the five
        assert rows == [b] * 5 + [b] * 4
    model.config.cross_weight = 0.5  # now that face is scored: decoded again
    rows.clear()
    model.image_decoder.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    model.loss(x, y, None, s)
    assert rows == [b] * 5


@pytest.mark.parametrize("size", [16, 64])
def test_patch_discriminator(size):
    disc = DecoderPatchDiscriminator((4, 8, 8))
    out = disc(torch.rand(3, 3, size, size) * 2 - 1)
    assert out.shape == (3, (size // 8) ** 2)  # one logit per patch
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in disc.modules())


def test_patch_discriminator_state_dict_keys():
    """train/mvae.py's adversarial runs save the critic in their training state: its keys must not change."""
    keys = list(DecoderPatchDiscriminator((4, 8, 8)).state_dict())
    per_conv = [
        "bias",
        "parametrizations.weight.original",
        "parametrizations.weight.0._u",
        "parametrizations.weight.0._v",
    ]
    assert keys == [f"net.{i}.{k}" for i in (0, 2, 4, 6) for k in per_conv]


def test_mvae_without_sketch_expert():
    model = MVAE(tiny_mvae_config(use_sketch=False))
    assert model.sketch_encoder is None
    with pytest.raises(ValueError, match="sketch"):
        model.infer(sketch=torch.rand(1, 1, 16, 16))
    out = model.loss(torch.rand(2, 3, 16, 16), torch.ones(2, 40), sketch=torch.rand(2, 1, 16, 16))
    assert "sketch" not in out


def test_cross_modal_vae_shapes_and_loss():
    model = CrossModalVAE(tiny_cvae_config(32))
    assert model.config.activation == "leaky_relu" and not hasattr(model, "image_encoder")
    img, mu, logvar = model(torch.ones(3, 40))
    assert img.shape == (3, 3, 32, 32) and mu.shape == (3, 8)
    out = model.loss(torch.rand(3, 3, 32, 32), torch.ones(3, 40), annealing_factor=0.0)
    out["loss"].backward()
    assert out["loss"].item() == pytest.approx(out["recon"].item(), rel=1e-5)  # KL annealed away
    with pytest.raises(ValueError, match="attributes only"):
        model.infer(image=torch.rand(1, 3, 32, 32))


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of 16"):
        MVAEConfig(image_size=40)
    with pytest.raises(ValueError, match="decoder_widths"):
        MVAEConfig(decoder_widths=[64, 32])
    with pytest.raises(ValueError, match="decoder_full_res"):
        MVAEConfig(decoder_full_res=-1)
    with pytest.raises(ValueError, match="activation"):
        MVAEConfig(activation="tanh")
    assert MVAEConfig(image_size=128).image_size == 128


# ------------------------------------------------------------------------------------------------------------ losses


def test_elbo_terms():
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    assert gaussian_kl(mu, logvar).abs().max() == 0
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension
    assert gaussian_kl(torch.ones(1, 4), torch.zeros(1, 4)).item() == pytest.approx(2.0)
    assert gaussian_kl_between(
        torch.ones(1, 4), torch.zeros(1, 4), mu[:1, :1].expand(1, 4), torch.zeros(1, 4)
    ).item() == (pytest.approx(2.0))
    # KL(N(0, 4) || N(0, 1)) = 0.5 (4 - 1 - log 4)
    assert gaussian_kl_between(
        torch.zeros(1, 1), torch.log(torch.full((1, 1), 4.0)), torch.zeros(1, 1), torch.zeros(1, 1)
    ).item() == pytest.approx(0.5 * (3 - math.log(4)), abs=1e-5)
    logits = torch.tensor([[0.0, 0.0]])
    assert attribute_nll(logits, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    assert attribute_nll(logits, torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        math.log(2), abs=1e-6
    )
    target = torch.full((1, 3, 2, 2), 0.5)
    assert image_nll(torch.zeros(1, 3, 2, 2), target, "mse").item() == pytest.approx(0.0)
    assert image_nll(torch.zeros(1, 3, 2, 2), target, "bce").item() == pytest.approx(12 * math.log(2), abs=1e-5)
    assert (
        annealing_factor(0, 10) == pytest.approx(0.1)
        and annealing_factor(50, 10) == 1.0
        and annealing_factor(3, 0) == 1.0
    )


# ---------------------------------------------------------------------------------------------------------- save/load


@pytest.mark.parametrize(
    "cls,cfg",
    [
        (MVAE, tiny_mvae_config()),
        (CrossModalVAE, tiny_cvae_config()),
        (MVAE, tiny_mvae_config(decoder_widths=[16, 12, 8, 8], decoder_full_res=4)),
    ],
)
def test_save_load_round_trip(tmp_path, cls, cfg):
    torch.manual_seed(4)
    model = cls(cfg)
    model.train()
    if cls is MVAE:
        model(torch.rand(4, 3, 16, 16), torch.ones(4, 40), None, torch.rand(4, 1, 16, 16))  # move BN stats
    else:
        model(torch.rand(4, 40))
    model.eval().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == cfg.model_type  # flat config.json
    loaded = load_vae(str(tmp_path))
    assert isinstance(loaded, cls) and loaded.config == model.config and not loaded.training
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        torch.testing.assert_close(sd[k], sd2[k])
    z = torch.randn(2, 8)
    torch.testing.assert_close(model.decode(z), loaded.decode(z))


def test_load_vae_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_vae(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"config": {"model_type": "classifier"}}))
    with pytest.raises(ValueError, match="model_type"):
        load_vae(str(tmp_path))


# ---------------------------------------------------------------------------------------------- training scripts


class TinyFaces(Dataset):
    """Stand-in for the procedural dataset (same item contract): random images, labels and sketches."""

    def __init__(self, n: int, size: int = 16, sketch: bool = True, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.labels = (torch.rand(n, 40, generator=g) < 0.3).float()
        self.sketches = torch.rand(n, 1, size, size, generator=g) if sketch else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.images[i], "labels": self.labels[i]}
        if self.sketches is not None:
            item["sketch"] = self.sketches[i]
        return item


TINY_ARGS = [
    "--image_size", "16", "--latent_dim", "8", "--widths", "4", "8", "8", "16", "--fc_dim", "16",
    "--attr_hidden", "32", "--batch_size", "4", "--num_workers", "0", "--eval_samples", "8",
]  # fmt: skip


def test_precision_flags():
    train = load_script("mvae")
    assert train.parse_args([])[0].precision == "auto" and train.parse_args([])[0].channels_last
    assert train.parse_args(["--mixed_precision", "no"])[0].precision == "fp32"  # the older flag still works
    plain, _ = train.parse_args(["--precision", "fp32", "--no-channels_last"])
    assert plain.precision == "fp32" and not plain.channels_last
    with pytest.raises(SystemExit):
        train.parse_args(["--precision", "fp8"])


@pytest.mark.parametrize("script", ["mvae", "cvae"])
def test_training_script_two_steps(tmp_path, monkeypatch, script):
    train = load_script(script)
    mvae_module = train if script == "mvae" else train.base
    monkeypatch.setattr(mvae_module, "build_datasets", lambda cfg: (TinyFaces(16), TinyFaces(8, seed=1)))
    out = tmp_path / "run"
    # cover the other data path and options: streaming DataLoader (cvae), rebalancing + subset sampling (mvae)
    extra = ["--no-cache"] if script == "cvae" else ["--rebalance", "--sample_subsets", "--time_limit", "30"]
    train_args, cfg = train.parse_args([*TINY_ARGS, "--output_dir", str(out), "--steps", "2", *extra])
    report = train.main(train_args, cfg)
    assert report["steps"] == 2
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert (out / "state" / "trainer.json").is_file() and not list(out.glob("*.tmp"))
    model = load_vae(str(out))
    assert model.config.model_type == script and model.config.image_size == 16
    card = (out / "README.md").read_text()
    assert "not measured" in card  # no --classifier given
    # issue 26: the precision it was trained in and its speed are in the card (auto: bf16 where native, else fp32)
    from sketchface.trainer import resolve_precision

    assert report["precision"] == resolve_precision("auto", torch.device("cpu")) and report["channels_last"]
    assert report["samples_per_s"] > 0 and f"samples/s in {report['precision']} with channels_last" in card
    if script == "mvae":  # a model trained on CelebA says the data's licence in its card
        cfg.data = "celeba"
        mvae_module.write_model_card(train_args, cfg, report, tmp_path / "celeba-card.md")
        celeba = (tmp_path / "celeba-card.md").read_text()
        assert "license_name: celeba-research-only" in celeba and "non-commercial research purposes only" in celeba
    # --resume continues from the saved training state
    train_args, cfg = train.parse_args([*TINY_ARGS, "--output_dir", str(out), "--steps", "3", "--resume"])
    assert train.main(train_args, cfg)["steps"] == 3


def test_adversarial_fine_tuning_from_a_checkpoint(tmp_path, monkeypatch):
    train = load_script("mvae")
    monkeypatch.setattr(train, "build_datasets", lambda cfg: (TinyFaces(16), TinyFaces(8, seed=1)))
    first = tmp_path / "first"
    train.main(*train.parse_args([*TINY_ARGS, "--output_dir", str(first), "--steps", "1", "--sample_subsets"]))
    before = load_vae(str(first)).state_dict()
    out = tmp_path / "gan"
    args = [
        "--init_from",
        str(first),
        "--adversarial_weight",
        "0.5",
        "--adversarial_start",
        "1",
        "--r1_gamma",  # off by default; the lazy penalty runs at step 0
        "0.01",
        "--d_widths",
        "4",
        "8",
    ]
    # the model flags are ignored: the run takes the checkpoint's architecture (latent 8, not 32)
    train_args, cfg = train.parse_args(
        [*TINY_ARGS, "--latent_dim", "32", "--output_dir", str(out), "--steps", "3", *args]
    )
    report = train.main(train_args, cfg)
    assert report["steps"] == 3 and report["anneal_steps"] == 0  # the KL was annealed in the first run
    tuned = load_vae(str(out))
    assert tuned.config.latent_dim == 8
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items() if k.startswith("image_decoder"))
    saved = {p.name for p in (out / "state").iterdir()}
    assert {"model_1.safetensors", "optimizer_1.bin"} <= saved  # the critic and its optimiser: resumable
    card = (out / "README.md").read_text()
    assert f"Fine-tuned from `{first}`" in card and "Adversarial term: weight 0.5" in card
    train_args, cfg = train.parse_args([*TINY_ARGS, "--output_dir", str(out), "--steps", "4", "--resume", *args])
    assert train.main(train_args, cfg)["steps"] == 4
    with pytest.raises(SystemExit, match="cvae"):
        train.main(
            *train.parse_args([*TINY_ARGS, "--model", "cvae", "--init_from", str(first), "--output_dir", str(out)])
        )


def test_decoder_loss_trains_the_decoder_alone():
    torch.manual_seed(6)
    model = MVAE(tiny_mvae_config()).eval()
    x, s, y = torch.rand(4, 3, 16, 16), torch.rand(4, 1, 16, 16), (torch.rand(4, 40) < 0.3).float()
    terms = model.decoder_loss(x, y, None, s, annealing_factor=0.3)  # the loss() arguments are accepted
    assert terms["image_logits"].shape == (4, 3, 16, 16) and terms["image_has_target"].all()
    expected = (torch.sigmoid(terms["image_logits"]) - x).abs().mean()
    torch.testing.assert_close(terms["loss"], expected)
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.image_decoder.parameters())
    others = [p for n, p in model.named_parameters() if not n.startswith("image_decoder.")]
    assert others and all(p.grad is None for p in others)  # encoders run without gradients


def test_decoder_loss_redraws_edited_faces_from_sketch_and_description():
    torch.manual_seed(7)
    model = MVAE(tiny_mvae_config()).eval()
    x, s, y = torch.zeros(10, 3, 16, 16), torch.rand(10, 1, 16, 16), (torch.rand(10, 40) < 0.3).float()
    switched = torch.zeros(10, 40)
    switched[:, 15] = 1  # Eyeglasses
    edited_labels = (y - switched).abs()
    edited = torch.ones(10, 3, 16, 16)
    model.decode_logits = lambda z: torch.full((len(z), 3, 16, 16), -1e4)  # draws black: L1 = share of edit rows
    kw = dict(edited_image=edited, edited_labels=edited_labels, switched=switched)
    terms = model.decoder_loss(x, y, torch.zeros(10, 40), s, **kw)
    torch.testing.assert_close(terms["loss"], torch.tensor(0.2))  # every fifth face is the edited one
    torch.testing.assert_close(model.decoder_loss(x, y, None, s)["loss"], torch.tensor(0.0))
    # the fifth posterior is the sketch's times the weighted description of the edited face
    seen = []
    model.combine = lambda experts, masks=None, prior=True: seen.append(masks) or MVAE.combine(experts, masks, prior)
    model.decoder_loss(x, y, None, s, description_weight=5.0, **kw)
    for masks in seen[-2:]:  # the sketch + description turns, the face's own and the edited one
        assert masks[0] is None and torch.equal(masks[1], torch.full((10,), 5.0))
    assert all(masks is None for masks in seen[:-2])
    with pytest.raises(ValueError, match="sketch"):
        model.decoder_loss(x, y, None, None, **kw)


def test_decoder_only_training_keeps_the_encoders(tmp_path, monkeypatch):
    train = load_script("mvae")
    monkeypatch.setattr(train, "build_datasets", lambda cfg: (TinyFaces(16), TinyFaces(8, seed=1)))
    first = tmp_path / "first"
    train.main(*train.parse_args([*TINY_ARGS, "--output_dir", str(first), "--steps", "2", "--sample_subsets"]))
    with pytest.raises(SystemExit, match="--init_from"):
        train.main(*train.parse_args([*TINY_ARGS, "--output_dir", str(tmp_path / "x"), "--decoder_only"]))
    before = load_vae(str(first)).state_dict()
    out = tmp_path / "decoder"
    new_decoder = ["--decoder_widths", "16", "12", "8", "8", "--decoder_full_res", "4"]
    args = ["--init_from", str(first), "--decoder_only", "--output_dir", str(out), "--steps", "3", *new_decoder]
    assert train.main(*train.parse_args([*TINY_ARGS, *args]))["steps"] == 3
    tuned = load_vae(str(out))
    assert tuned.config.decoder_widths == [16, 12, 8, 8] and tuned.config.decoder_full_res == 4
    after = tuned.state_dict()
    kept = [k for k in before if not k.startswith("image_decoder.")]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)  # BatchNorm statistics included
    assert after["image_decoder.fc.0.weight"].shape[0] == 16
    assert "Decoder retrained alone" in (out / "README.md").read_text()
    # without new decoder flags the checkpoint's own decoder is fine-tuned
    again = tmp_path / "again"
    args = ["--init_from", str(out), "--decoder_only", "--output_dir", str(again), "--steps", "2"]
    train.main(*train.parse_args([*TINY_ARGS, *args]))
    assert load_vae(str(again)).config.decoder_full_res == 4


@pytest.mark.skipif(importlib.util.find_spec("sketchface.data.procedural") is None, reason="procedural faces missing")
def test_mvae_script_on_procedural_faces(tmp_path):
    train = load_script("mvae")
    train_args, cfg = train.parse_args(
        [*TINY_ARGS, "--output_dir", str(tmp_path), "--steps", "2", "--train_samples", "16"]
    )
    assert train.main(train_args, cfg)["steps"] == 2


def test_decoder_edits_run_on_procedural_faces(tmp_path, capsys):
    train = load_script("mvae")
    first = tmp_path / "first"
    train.main(*train.parse_args([*TINY_ARGS, "--output_dir", str(first), "--steps", "1", "--train_samples", "8"]))
    out = tmp_path / "edits"
    args = ["--init_from", str(first), "--decoder_only", "--decoder_edits", "2", "--train_samples", "8"]
    assert train.main(*train.parse_args([*TINY_ARGS, *args, "--output_dir", str(out), "--steps", "2"]))["steps"] == 2
    assert "up to 2 attributes switched" in (out / "README.md").read_text()
    for bad, message in [
        (["--decoder_edits", "2"], "--decoder_only"),
        (["--decoder_only", "--decoder_edits", "2", "--no-sketch"], "--sketch"),
        (["--decoder_only", "--decoder_edits", "2", "--data", "celeba", "--data_root", "x"], "procedural"),
        (["--decoder_only", "--decoder_edits", "41"], "1 to 40"),
    ]:
        with pytest.raises(SystemExit):
            train.parse_args([*TINY_ARGS, *bad])
        assert message in capsys.readouterr().err


def test_training_evaluation_with_a_classifier_reports_the_weighted_sketch_figures():
    from sketchface.models.classifier import AttributeClassifier, ClassifierConfig

    train = load_script("mvae")
    torch.manual_seed(3)
    model = MVAE(tiny_mvae_config()).eval()
    clf = AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8, 8])).eval()
    faces = TinyFaces(12)
    pool = train.render_pool(faces, 0)
    ev = train.evaluate(model, pool, clf, seed=0, num_candidates=2)
    for key in (
        "fidelity_full",
        "fidelity_balanced",
        "sketch_attributes_fidelity",
        "sketch_attributes_fidelity_weighted",
        "sketch_plus_glasses_rate",
        "sketch_plus_glasses_rate_weighted",
        "fidelity_full_weighted",
        "fidelity_partial_weighted",
    ):
        assert 0.0 <= ev[key] <= 1.0, key
    assert set(ev["fidelity_rare"]) == set(train.RARE) and ev["diversity_partial_weighted"] >= 0


@pytest.mark.filterwarnings("ignore:photo_to_sketch")  # procedural faces have no face YuNet finds at 64 px
def test_mvae_script_on_celeba_hq_streams_past_the_pool_size(tmp_path):
    from tests.real_faces import write_celeba_hq_layout

    hq = write_celeba_hq_layout(tmp_path / "hq")
    train = load_script("mvae")
    out = tmp_path / "run"
    train_args, cfg = train.parse_args(
        [*TINY_ARGS, "--output_dir", str(out), "--steps", "2", "--data", f"celeba-hq:{hq}"]
    )
    assert (cfg.data, cfg.data_root, cfg.cache) == ("celeba-hq", str(hq), None)
    report = train.main(*train.parse_args([*TINY_ARGS, "--output_dir", str(out), "--steps", "2", "--data",
                                           "celeba-hq", "--data_root", str(hq), "--pool_size", "4"]))  # fmt: skip
    # the train split's 6 photos are more than --pool_size 4: streamed; held out on the valid split (2 photos)
    assert report["steps"] == 2 and report["train_size"] == 6 and report["data_mode"] == "stream"
    assert report["eval"]["num_faces"] == 2 and "reconstruction_rmse" in report["eval"]
    assert json.loads((out / "eval.json").read_text())["eval"]["num_faces"] == 2
    model = load_vae(str(out))
    assert model.config.model_type == "mvae" and model.config.image_size == 16 and model.config.use_sketch
    card = (out / "README.md").read_text()
    assert "CelebA-HQ in the CelebAMask-HQ layout" in card and "streamed by DataLoader workers" in card
    assert "license_name: celeba-research-only" in card and "non-commercial research purposes only" in card
    assert "the valid split (2 images)" in card
    # below the pool size (the default 50,000) the photos are read into memory once
    small = train.main(*train.parse_args([*TINY_ARGS, "--output_dir", str(tmp_path / "pool"), "--steps", "1",
                                          "--data", f"celeba-hq:{hq}", "--model", "cvae"]))  # fmt: skip
    assert small["data_mode"] == "pool" and load_vae(str(tmp_path / "pool")).config.model_type == "cvae"


def test_mvae_data_flags_refuse_an_image_folder_and_take_kind_path(tmp_path, capsys):
    train = load_script("mvae")
    cvae = load_script("cvae")
    for kind in ("celeba", "celeba-hq"):
        train_args, cfg = train.parse_args(["--data", f"{kind}:/some/root"])
        assert (cfg.data, cfg.data_root) == (kind, "/some/root")
        assert cvae.parse_args(["--data", kind, "--data_root", "/r"])[1].data_root == "/r"
    assert train.parse_args([])[1].data == "procedural" and train.parse_args(["--no-cache"])[1].cache is False
    for bad, message in [
        (["--data", f"folder:{tmp_path}"], "no attribute labels"),
        (["--data", "folder", "--data_root", str(tmp_path)], "--data celeba-hq or --data celeba"),
        (["--data", "celeba-hq"], "--data celeba-hq needs --data_root PATH"),
        (["--data", "imagenet"], "one of procedural, celeba, celeba-hq"),
    ]:
        for script in (train, cvae):
            with pytest.raises(SystemExit):
                script.parse_args(bad)
            assert message in capsys.readouterr().err
