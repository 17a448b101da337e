"""The words → photo model (issue 25): layout code, layout prior, renderer, pipeline contract, training script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sketchface.attributes import ATTRIBUTES, INDEX, NUM_ATTRIBUTES, UnknownAttributeError
from sketchface.models.layout_face import LayoutFace, LayoutFaceConfig, hide_attributes
from sketchface.pipelines.layout_face import LayoutFacePipeline
from tests.helpers import killed_after_first_save
from tests.real_faces import write_celeba_layout

TINY = {"resolution": 16, "channels": [8, 16], "groups": 4, "layout_size": 4, "layout_dim": 6, "bank_size": 80}


def _photos(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Photos whose brightness follows attribute 0 and whose top half follows attribute 1 (and noise)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.where(torch.rand(n, NUM_ATTRIBUTES, generator=g) < 0.5, 1.0, -1.0)
    photos = 0.5 + 0.05 * torch.randn(n, 3, 16, 16, generator=g)
    photos += 0.2 * labels[:, 0].view(-1, 1, 1, 1)
    photos[..., :8, :] += 0.1 * labels[:, 1].view(-1, 1, 1, 1)
    return photos.clamp(0, 1), labels


def _fitted(seed: int = 0, **config) -> LayoutFace:
    torch.manual_seed(seed)
    model = LayoutFace({**TINY, **config})
    photos, labels = _photos()
    model.fit_layout(photos)
    model.fit_prior(photos, labels)
    return model.eval()


def test_config_is_checked():
    with pytest.raises(ValueError, match="layout_size"):
        LayoutFaceConfig(**{**TINY, "layout_size": 32})
    with pytest.raises(ValueError, match="layout_dim"):
        LayoutFaceConfig(**{**TINY, "layout_dim": 3 * 4 * 4 + 1})
    with pytest.raises(ValueError, match="divisible"):
        LayoutFaceConfig(**{**TINY, "resolution": 17})
    with pytest.raises(UnknownAttributeError, match="Did you mean Wearing_Hat"):
        LayoutFaceConfig(**{**TINY, "must_match": ["Wearing_Hats"]})


def test_hide_attributes_hides_a_random_share_per_row():
    labels = torch.where(torch.rand(500, NUM_ATTRIBUTES) < 0.5, 1.0, -1.0)
    hidden = hide_attributes(labels, torch.Generator().manual_seed(0))
    kept = hidden != 0
    assert torch.equal(hidden[kept], labels[kept])  # what is kept is unchanged, the rest is 0
    share = kept.float().mean(1)
    assert share.min() < 0.1 and share.max() > 0.9 and 0.4 < float(share.mean()) < 0.6  # every amount of description


def test_layout_code_is_whitened_and_reversible():
    model = LayoutFace({**TINY, "layout_dim": 48})  # every component: the layout comes back exactly
    photos, _ = _photos(60)
    assert model.fit_layout(photos) == pytest.approx(1.0, abs=1e-5)
    z = torch.cat([model.layout_code(photos), model.layout_code(photos.flip(-1))])
    assert z.mean(0).abs().max() < 1e-3
    strong = torch.cov(z.T).diagonal()[:20]  # the leading components: unit variance over the photos and mirrors
    assert torch.allclose(strong, torch.ones(20), atol=1e-2)
    back = model.layout_image(model.layout_code(photos))
    want = torch.nn.functional.interpolate(model.coarse(photos).view(-1, 3, 4, 4), size=(16, 16), mode="bilinear")
    assert torch.allclose(back, want.clamp(0, 1), atol=1e-4)
    with pytest.raises(ValueError, match="needs more than"):
        LayoutFace(TINY).fit_layout(photos[:2])


def test_the_prior_draws_from_the_photos_that_contradict_the_description_least():
    model = _fitted(neighbours=8)
    photos, labels = _photos()
    values = torch.zeros(3, NUM_ATTRIBUTES)
    values[0, 0], values[1, 0] = 1, -1  # bright, dark, unknown
    g = torch.Generator().manual_seed(0)
    draws = model.layout_image(model.sample_layout(values.repeat_interleave(50, 0), g)).mean((1, 2, 3)).view(3, 50)
    assert (draws[0] > 0.6).all() and (draws[1] < 0.4).all()  # 0.5 ± 0.2 by attribute 0
    assert draws[2].min() < 0.4 < 0.6 < draws[2].max()  # unknown: either
    # the neighbours contradict the fewest stated attributes: 3 layouts agree with both statements, 8 are kept
    model.bank_labels[:, 5] = -1
    model.bank_labels[:3, 5] = 1  # a rare attribute: 3 of 80 layouts
    model.bank_labels[:, 6] = 1
    model.bank_labels[40:, 6] = -1  # a common one
    stated = torch.zeros(1, NUM_ATTRIBUTES)
    stated[0, 5], stated[0, 6] = 1, 1
    keep = model._candidates(stated)[0]
    assert keep[:3].all() and not keep[40:].any()  # then those contradicting one statement (not both)
    assert keep.sum() == 40  # 3 agree with both; the 37 others of the first half tie at one contradiction
    mean = model.prior_mean(stated)
    assert torch.allclose(mean[0], model.bank_codes[keep].mean(0), atol=1e-5)
    assert torch.allclose(model.sample_layout(stated, g, temperature=0.0), mean)
    with pytest.raises(ValueError, match="labels must be"):
        model.fit_prior(photos, labels[:, :10])
    with pytest.raises(ValueError, match="bank_size"):
        model.fit_prior(photos[:10], labels[:10])
    with pytest.raises(ValueError, match="never called"):
        LayoutFace({**TINY, "bank_size": 0}).sample_layout(stated)


def test_must_match_attributes_outweigh_every_other_contradiction(tmp_path):
    model = _fitted(neighbours=4)
    model.bank_labels[:, 5] = -1
    model.bank_labels[:4, 5] = 1  # a rare attribute: 4 of 80 layouts have it...
    model.bank_labels[4:, 7:27] = 1  # the rest agree with the 20 other statements below...
    model.bank_labels[:4, 7:27] = -1  # ...which those 4 contradict
    stated = torch.zeros(1, NUM_ATTRIBUTES)
    stated[0, 5], stated[0, 7:27] = 1, 1
    plain = model._candidates(stated)[0]
    assert not plain[:4].any()  # a plain count: the 20 common statements win
    model.config.must_match = ["Wearing_Hat"]  # another attribute: no effect
    assert torch.equal(model._candidates(stated)[0], plain)
    name = ATTRIBUTES[5]
    model.config.must_match = [name]
    keep = model._candidates(stated)[0]
    assert keep[:4].all() and keep.sum() == 4  # only the layouts that have it
    unstated = stated.clone()
    unstated[0, 5] = -1  # stated absent: counted as usual
    assert not model._candidates(unstated)[0][:4].any()
    model.save_pretrained(tmp_path)
    assert LayoutFace.from_pretrained(str(tmp_path)).config.must_match == [name]


def test_stated_glasses_and_mustache_are_drawn_into_the_layout():
    model = _fitted(resolution=32, layout_size=8, channels=[8, 16])
    z = model.sample_layout(torch.zeros(3, NUM_ATTRIBUTES), torch.Generator().manual_seed(0))
    plain = model.layout_image(z)
    values = torch.zeros(3, NUM_ATTRIBUTES)
    values[0, INDEX["Eyeglasses"]], values[1, INDEX["Mustache"]], values[2, INDEX["Eyeglasses"]] = 1, 1, -1
    drawn = model.with_accessories(plain, values, z)
    changed = (drawn - plain).abs().sum(1)  # (3, R, R)
    rows = changed.sum(-1)
    assert rows[0, 12:20].sum() > 0.9 * rows[0].sum() > 0  # glasses around the eyes (row ~16 of 32)
    assert rows[1, 19:27].sum() > 0.9 * rows[1].sum() > 0  # a mustache above the mouth (row ~22)
    assert changed[2].sum() == 0  # stated absent: nothing drawn
    assert torch.equal(model.with_accessories(plain, values, z), drawn)  # one latent, one face
    other = model.with_accessories(plain, values, z + 0.1)
    assert not torch.equal(other[0], drawn[0])  # another latent, other glasses
    with torch.no_grad():
        assert torch.equal(model(z, values), model(z, values * 0 + values))
        off = model(z, values)
        model.config.draw_accessories = True
        on = model(z, values)
    assert torch.equal(on[2], off[2]) and not torch.equal(on[0], off[0])


def test_save_and_load_keep_the_fitted_layout_and_prior(tmp_path):
    model = _fitted()
    model.save_pretrained(tmp_path)
    back = LayoutFace.from_pretrained(str(tmp_path), strict=True).eval()
    for name in ("layout_mean", "layout_basis", "layout_unbasis", "bank_codes", "bank_labels"):
        assert torch.equal(getattr(model, name), getattr(back, name)), name
    values = torch.zeros(2, NUM_ATTRIBUTES)
    z = model.sample_layout(values, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(z, values), back(z, values))
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "layout-face"


def test_pipeline_keeps_the_contract():
    from sketchface.models.auto import PIPELINES

    assert PIPELINES["layout-face"].endswith(":LayoutFacePipeline")
    pipe = LayoutFacePipeline(_fitted(), bf16=False)
    caps = pipe.capabilities
    assert caps.takes_words and not caps.takes_sketch and not caps.has_image_encoder
    assert "Eyeglasses" in caps.editable_attributes
    out = pipe("a young man with glasses", num_images=4, seed=3)
    assert len(out.images) == 4 and out.images[0].size == (16, 16)
    assert out.latents.shape == (4, pipe.latent_dim) == (4, 6 + NUM_ATTRIBUTES)
    values = out.latents[:, 6:]
    assert (values[:, INDEX["Eyeglasses"]] == 1).all() and (values[:, INDEX["Male"]] == 1).all()
    assert (values[:, INDEX["Blond_Hair"]] == 0).all()  # not said: unknown
    again = pipe("a young man with glasses", num_images=4, seed=3)
    assert [np.asarray(a).tobytes() for a in out.images] == [np.asarray(a).tobytes() for a in again.images]
    redrawn = pipe.decode(out.latents)
    assert all(np.abs(np.asarray(a, float) - np.asarray(b, float)).max() <= 1 for a, b in zip(redrawn, out.images))
    assert not np.array_equal(np.asarray(out.images[0]), np.asarray(out.images[1]))  # candidates differ
    same = pipe({"Male": True}, num_images=2, seed=0, temperature=0.0)
    assert np.array_equal(np.asarray(same.images[0]), np.asarray(same.images[1]))
    with pytest.raises(ValueError, match="temperature"):
        pipe({"Male": True}, num_images=2, temperature=-1)
    with pytest.raises(ValueError, match="description_weight"):
        pipe({"Male": True}, num_images=2, description_weight=2.0)  # not a product of experts
    with pytest.raises(ValueError, match="sketch"):
        pipe({"Male": True}, num_images=2, sketch=np.zeros((16, 16)))


def test_breeding_and_edits():
    pipe = LayoutFacePipeline(_fitted())
    out = pipe({"Male": True, "Blond_Hair": False}, num_images=3, seed=0)
    same = pipe.variations(out.latents[0], num_images=2, seed=5, strength=0.0)
    assert torch.allclose(same.latents, out.latents[:1].expand(2, -1), atol=1e-5)
    near = pipe.variations(out.latents[0], num_images=8, seed=5, strength=0.3)
    far = pipe.variations(out.latents[0], num_images=8, seed=5, strength=1.0)
    d_near = (near.latents[:, :6] - out.latents[0, :6]).norm(dim=1).mean()
    d_far = (far.latents[:, :6] - out.latents[0, :6]).norm(dim=1).mean()
    assert d_near < d_far and torch.equal(near.latents[:, 6:], out.latents[:1, 6:].expand(8, -1))
    crossed = pipe.cross(out.latents[0], out.latents[1], num_images=5)
    assert torch.allclose(crossed.latents[0], out.latents[0]) and torch.allclose(crossed.latents[-1], out.latents[1])
    edited = pipe.edit(out.latents[:1], {"Blond_Hair": True}, strength=1.0)
    lat = edited.latents[0]
    assert lat[6 + INDEX["Blond_Hair"]] == 1 and lat[6 + INDEX["Male"]] == 1
    shift = pipe.model.prior_mean(lat[None, 6:]) - pipe.model.prior_mean(out.latents[:1, 6:])
    assert torch.allclose(lat[:6], out.latents[0, :6] + shift[0], atol=1e-5)  # the layout follows the change
    unchanged = pipe.edit(out.latents[:1], {"Blond_Hair": True}, strength=0.0)
    assert torch.allclose(unchanged.latents, out.latents[:1])
    with pytest.raises(UnknownAttributeError):
        pipe.edit(out.latents[:1], {"Sunglasses": True})
    with pytest.raises(ValueError, match="no image encoder"):
        pipe.variations(out.images[0], num_images=2)
    with pytest.raises(ValueError, match="no image encoder"):
        pipe.encode(out.images[0])
    with pytest.raises(ValueError, match="values"):
        pipe.decode(torch.zeros(1, 7))


def test_seldom_drawn_attributes_come_from_the_saved_evaluation(tmp_path):
    from sketchface.pipelines.layout_face import seldom_drawn

    _fitted().save_pretrained(tmp_path)
    assert LayoutFacePipeline.from_pretrained(str(tmp_path)).seldom_drawn == {}  # no eval.json: nothing claimed
    final = {"present/Eyeglasses": 0.1, "present/Male": 0.9, "present/Bald": 0.0, "present/Not_An_Attr": 0.0}
    (tmp_path / "eval.json").write_text(json.dumps({"summary": {"eval": {**final, "fidelity": 0.7}}}))
    pipe = LayoutFacePipeline.from_pretrained(str(tmp_path))
    assert dict(pipe.seldom_drawn) == {"Eyeglasses": 0.1, "Bald": 0.0}
    with pytest.raises(TypeError):
        pipe.seldom_drawn["Male"] = 0.0  # read-only
    swept = {"scores": {"present/Eyeglasses": 0.8, "present/Male": 0.4, "present/Bald": float("nan")}}
    (tmp_path / "eval.json").write_text(json.dumps({"summary": {"eval": final}, "prior_sweep": swept}))
    assert seldom_drawn(tmp_path / "eval.json") == {"Male": 0.4}  # the run-time settings' figures win
    (tmp_path / "eval.json").write_text("{not json")
    assert seldom_drawn(tmp_path / "eval.json") == {} and seldom_drawn(tmp_path / "missing.json") == {}


def test_describe_warns_when_asked_for_what_the_model_seldom_draws(tmp_path):
    from app_handlers import Handlers
    from sketchface.attributes import ATTRIBUTES
    from sketchface.registry import ROOT, Registry

    _fitted().save_pretrained(tmp_path)
    (tmp_path / "eval.json").write_text(json.dumps({"summary": {"eval": {"present/Eyeglasses": 0.1}}}))
    registry = Registry.discover({"layout_face": [str(tmp_path)]}, env={}, defaults=False).load()
    h = Handlers(registry)
    entry = registry.first("layout_face")
    unknown = ["?"] * len(ATTRIBUTES)
    status = h.generate("a man with glasses", *unknown, entry.key, 2, 0, False, {})[2]
    assert "seldom draws" in status and "eyeglasses (10% of the time)" in status
    assert "may draw them" not in status  # no other model loaded to suggest
    status = h.generate("a man without glasses", *unknown, entry.key, 2, 0, False, {})[2]
    assert "seldom" not in status
    cvae = str(ROOT / "checkpoints" / "cvae-procedural-64")
    both = Registry.discover({"layout_face": [str(tmp_path)], "cvae": [cvae]}, env={}, defaults=False).load()
    status = Handlers(both).generate("a man with glasses", *unknown, entry.key, 2, 0, False, {})[2]
    assert "`cvae · cvae-procedural-64` may draw them" in status


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    return write_celeba_layout(tmp_path_factory.mktemp("celeba"), n=12)


def _train(celeba, out, steps, *extra):
    from train import layout_face

    argv = [
        "--data_root", str(celeba), "--output_dir", str(out), "--max_steps", str(steps), "--batch_size", "4",
        "--resolution", "16", "--channels", "8", "16", "--layout_size", "4", "--layout_dim", "4",
        "--eval_photos", "4", "--eval_every", "100", "--log_every", "1", "--warmup_steps", "1", "--save_every", "2",
        "--precision", "fp32", "--judge", "", *extra,
    ]  # fmt: skip
    return layout_face.main(*layout_face.parse_args(argv))


def test_training_fits_the_prior_saves_a_card_and_loads_in_the_app_registry(celeba, tmp_path):
    out = _train(celeba, tmp_path / "run", 3, "--lpips_lambda", "0.1", "--rare_repeat", "3", "--guidance", "2",
                 "--p_glasses", "1", "--p_mustache", "0.5", "--must_match", "Wearing_Hat", "Bald",
                 "--draw_accessories", "--attr_lambda", "0.5")  # fmt: skip
    card = (out / "README.md").read_text()
    assert "guidance 2;" in card and json.loads((out / "config.json").read_text())["guidance"] == 2
    assert "non-commercial research" in card and "samples/s" in card and "0.1·ST-LPIPS" in card
    assert "appear 3 times as often" in card
    assert "0.5·attribute loss" in card and "classifier-celeba-mini-64" in card
    assert "glasses on 100% of the photos labelled without them and a mustache on 50% of the men" in card
    assert "must show each of Wearing_Hat, Bald that the description states" in card
    assert "turn drawn glasses and mustaches into photographed ones" in card
    config = json.loads((out / "config.json").read_text())
    assert config["must_match"] == ["Wearing_Hat", "Bald"] and config["draw_accessories"] is True
    record = json.loads((out / "eval.json").read_text())
    summary = record["summary"]
    assert summary["steps"] == 3 and {"recon/mse", "recon/lpips", "diversity"} <= set(summary["eval"])
    assert 0 < summary["layout_explained"] <= 1
    from sketchface.models.auto import AutoPipeline

    pipe = AutoPipeline.from_pretrained(str(out))
    assert isinstance(pipe, LayoutFacePipeline) and float(pipe.model.layout_basis.abs().sum()) > 0  # fitted
    assert len(pipe({"Eyeglasses": True}, num_images=2, seed=0).images) == 2
    from sketchface.registry import KINDS, Registry

    assert KINDS["layout_face"].task == "attributes"
    registry = Registry.discover({"layout_face": [str(out)]}, env={}).load()
    entry = registry.first("layout_face")
    assert entry.ok and isinstance(entry.pipeline, LayoutFacePipeline)


def test_attribute_loss_reads_the_stated_attributes_only():
    from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
    from train.layout_face import attribute_loss

    torch.manual_seed(0)
    reader = AttributeClassifier(ClassifierConfig(stem_width=8, widths=[8, 16])).eval().requires_grad_(False)
    faces = torch.rand(4, 3, 64, 64, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        agree = torch.where(reader(faces) > 0, 1.0, -1.0)
    nothing = attribute_loss(reader, faces, torch.zeros(4, NUM_ATTRIBUTES), 1.0, g)
    assert nothing.item() == 0.0  # nothing stated: nothing to obey
    fits = attribute_loss(reader, faces, agree, 1.0, g)
    contradicts = attribute_loss(reader, faces, -agree, 1.0, g)
    assert fits.item() < contradicts.item()
    one = torch.zeros(4, NUM_ATTRIBUTES)
    one[:, INDEX["Male"]] = -agree[:, INDEX["Male"]]  # only Male stated: the loss is that attribute's alone
    logits = reader(faces).detach()[:, INDEX["Male"]]
    only = attribute_loss(reader, faces, one, 0.0, torch.Generator().manual_seed(1))
    expect = torch.nn.functional.softplus(logits * agree[:, INDEX["Male"]]).mean()
    assert abs(only.item() - expect.item()) < 0.05  # noise std 0.02 moves the logits a little
    only.backward()
    assert faces.grad is not None and faces.grad.abs().sum() > 0
    assert all(p.grad is None for p in reader.parameters())  # the reader stays frozen


@pytest.mark.parametrize("extra", [(), ("--adv_lambda", "0.1", "--adv_start", "2")], ids=["l1", "patchgan"])
def test_training_resumes_exactly(celeba, tmp_path, monkeypatch, extra):
    """With the PatchGAN term the critic and its optimiser are part of the saved state: a resumed run that lost them
    would train on from a fresh critic and end with different weights."""
    straight = _train(celeba, tmp_path / "a", 4, *extra)
    killed_after_first_save(monkeypatch, lambda: _train(celeba, tmp_path / "b", 4, *extra))
    resumed = _train(celeba, tmp_path / "b", 4, *extra, "--resume")
    if extra:
        assert (
            "0.1·hinge loss of a conditional PatchGAN critic (layout + face; from step 2"
            in (resumed / "README.md").read_text()
        )
    a = LayoutFace.from_pretrained(str(straight)).state_dict()
    b = LayoutFace.from_pretrained(str(resumed)).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0, msg=k)


def test_benchmark_times_its_training_step():
    from evaluation import benchmark

    step, info = benchmark.TRAINABLE["layout_face"](torch.device("cpu"), 2)
    step()  # one optimiser step of the starter's architecture
    assert info["batch"] == 2 and info["params"] > 1e6
    from evaluation import evaluate

    with pytest.raises(evaluate.CheckpointError):
        evaluate.load_pipeline("/nonexistent/layout-face")


def test_rare_photos_can_be_shown_more_often():
    from train.layout_face import repeat_rare

    labels = -torch.ones(4, NUM_ATTRIBUTES)
    labels[1, INDEX["Eyeglasses"]] = 1
    labels[3, INDEX["Male"]] = 1  # common: not repeated
    pool = {"image": torch.arange(4).view(4, 1), "labels": labels}
    assert repeat_rare(pool, 1)["image"].flatten().tolist() == [0, 1, 2, 3]
    assert sorted(repeat_rare(pool, 3)["image"].flatten().tolist()) == [0, 1, 1, 1, 2, 3]
    with pytest.raises(SystemExit):
        repeat_rare(pool, 0)


def test_guidance_extrapolates_from_the_face_drawn_with_nothing_stated():
    model = _fitted()
    values = torch.zeros(2, NUM_ATTRIBUTES)
    values[:, INDEX["Eyeglasses"]] = 1
    z = model.sample_layout(values, torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = model(z, values, guidance=1.0)
        without = model(z, torch.zeros_like(values), guidance=1.0)
        assert torch.allclose(model(z, values, guidance=0.0), without, atol=1e-6)
        guided = model(z, values, guidance=2.0)
        assert torch.allclose(guided, (2 * plain - without).clamp(0, 1), atol=1e-5)
        model.config.guidance = 2.0  # the checkpoint's run-time default
        assert torch.allclose(model(z, values), guided)
    with pytest.raises(ValueError, match="guidance"):
        LayoutFaceConfig(**{**TINY, "guidance": -1})


def test_bfloat16_rendering_stays_close_to_float32():
    model = _fitted()
    a = LayoutFacePipeline(model, bf16=False)("a man with glasses", num_images=4, seed=1)
    b = LayoutFacePipeline(model, bf16=True)("a man with glasses", num_images=4, seed=1)
    assert torch.equal(a.latents, b.latents)  # the same draws; only the rendering's precision differs
    diff = np.abs(np.stack([np.asarray(x, float) - np.asarray(y, float) for x, y in zip(a.images, b.images)]))
    assert diff.mean() < 3 and diff.max() < 40


def test_prior_sweep_scores_each_setting_on_the_validation_split(celeba, tmp_path, capsys):
    from scripts import layout_prior_sweep

    out = _train(celeba, tmp_path / "run", 1)
    argv = [str(out), "--data_root", str(celeba), "--judge", "", "--threads", "1", "--neighbours", "2", "4",
            "--must_match", "none", "Wearing_Hat,Bald", "--seeds", "2"]  # fmt: skip
    layout_prior_sweep.main(argv)
    lines = capsys.readouterr().out.splitlines()
    rows = [r for r in lines if r.startswith("| ") and r[2].isdigit()]
    assert [r.split(" | ")[:3] for r in rows] == [
        ["| 2", "1", "none"], ["| 2", "1", "Wearing_Hat, Bald"], ["| 4", "1", "none"], ["| 4", "1", "Wearing_Hat, Bald"]
    ]  # fmt: skip
    head = next(r for r in lines if r.startswith("| neighbours"))
    assert head.split(" | ")[-3:] == ["diversity", "sface/men", "sface/women |"]  # sex read by the SFace probe
    assert all(float(r.split(" | ")[-3]) > 0 for r in rows)  # diversity measured
    with pytest.raises(SystemExit):
        layout_prior_sweep.main([str(out), "--data_root", str(celeba), "--must_match", "Wearing_Hats"])
    assert "Did you mean Wearing_Hat" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        layout_prior_sweep.main(argv + ["--record"])  # several combinations
    assert "--record takes one combination" in capsys.readouterr().err
    one = [str(out), "--data_root", str(celeba), "--judge", "", "--threads", "1", "--neighbours", "3",
           "--must_match", "Bald", "--record"]  # fmt: skip
    layout_prior_sweep.main(one)
    config = json.loads((out / "config.json").read_text())
    assert config["neighbours"] == 3 and config["must_match"] == ["Bald"]
    swept = json.loads((out / "eval.json").read_text())["prior_sweep"]
    assert swept["neighbours"] == 3 and swept["seeds"] == 1 and swept["scores"]["diversity"] > 0
    assert LayoutFace.from_pretrained(str(out)).config.must_match == ["Bald"]
