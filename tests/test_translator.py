"""The sketch → photo translator: model, pipeline, training script (tiny configs, CPU)."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sketchface.models.layers import PatchDiscriminator
from sketchface.models.translator import SketchTranslator, TranslatorConfig
from sketchface.pipelines.translator import SketchTranslatorPipeline
from tests.helpers import killed_after_first_save
from tests.real_faces import write_celeba_layout

TINY = TranslatorConfig(resolution=32, channels=[8, 16, 16], style_dim=4, groups=4)


def _model(seed: int = 0, **config) -> SketchTranslator:
    torch.manual_seed(seed)
    m = SketchTranslator(dataclasses.replace(TINY, **config))
    with torch.no_grad():  # FiLM starts at the identity; give it weight so the code matters in these tests
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear) and mod.out_features % 2 == 0 and mod.in_features == 4:
                mod.weight.normal_(0, 0.5)
    return m.eval()


def _sketch() -> Image.Image:
    img = Image.new("L", (120, 120), 255)
    d = ImageDraw.Draw(img)
    d.ellipse((25, 15, 95, 105), outline=0, width=3)
    d.line((45, 50, 55, 50), fill=0, width=3)
    d.line((65, 50, 75, 50), fill=0, width=3)
    return img


def test_shapes_and_the_style_code():
    m = _model()
    s = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        out = m(s)
    assert out.shape == (3, 3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1
    with torch.no_grad():
        torch.testing.assert_close(out, m(s, torch.zeros(3, 4)))  # no code = code 0
        assert not torch.allclose(out, m(s, torch.randn(3, 4)))
        torch.testing.assert_close(m.decode(m.encode_sketch(s), torch.zeros(3, 4)), out)
    photo = torch.rand(3, 3, 32, 32)
    fake, mu, logvar = m.train()(s, style_photo=photo)
    assert fake.shape == out.shape and mu.shape == logvar.shape == (3, 4)
    fake.mean().backward()
    assert m.style_encoder[0].weight.grad is not None  # the style encoder trains through forward


def test_config_is_checked():
    with pytest.raises(ValueError, match="divisible"):
        TranslatorConfig(resolution=36, channels=[8, 16, 16, 16])
    with pytest.raises(ValueError, match="multiple of groups"):
        TranslatorConfig(channels=[8, 12], groups=8)
    with pytest.raises(ValueError, match="no style code"):
        SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], style_dim=0)).encode_style(
            torch.rand(1, 3, 32, 32)
        )
    for t in (0, -1, 4.5):
        with pytest.raises(ValueError, match="style_temperature"):
            TranslatorConfig(style_temperature=t)
    with pytest.raises(ValueError, match="upsample"):
        TranslatorConfig(upsample="area")
    with pytest.raises(ValueError, match="one mode per doubling"):
        TranslatorConfig(channels=[8, 16, 16], upsample=["bicubic"])
    with pytest.raises(ValueError, match="upsample"):
        TranslatorConfig(channels=[8, 16, 16], upsample=["bicubic", "area"])


def test_upsample_mode_is_a_run_time_setting_of_the_same_weights():
    """The decoder's upsampling can be switched on trained weights: the same parameters, nearest as before by
    default, a different (interpolated) face with bilinear or bicubic."""
    m = _model().eval()
    s, z = torch.rand(2, 1, 32, 32), torch.randn(2, 4)
    before = m(s, z)
    assert m.config.upsample == "nearest"
    for mode in ("bilinear", "bicubic"):
        other = _model(upsample=mode).eval()
        other.load_state_dict(m.state_dict())  # same parameters: nothing to train
        out = other(s, z)
        assert out.shape == before.shape and 0 <= out.min() and out.max() <= 1
        assert (out - before).abs().max() > 1e-3
    torch.testing.assert_close(m(s, z), before)  # the default is unchanged


def test_upsample_can_be_chosen_per_doubling_and_round_trips_through_config_json(tmp_path):
    """A list of modes, coarsest doubling first: all "nearest" is the default model exactly; interpolating only the
    coarse doublings changes the face; the list is saved in config.json and read back."""
    m = _model().eval()
    n = len(m.config.channels) - 1
    s, z = torch.rand(2, 1, 32, 32), torch.randn(2, 4)
    before = m(s, z)
    same = _model(upsample=["nearest"] * n).eval()
    same.load_state_dict(m.state_dict())
    torch.testing.assert_close(same(s, z), before)
    coarse = ["bicubic"] + ["nearest"] * (n - 1)
    mixed = _model(upsample=coarse).eval()
    mixed.load_state_dict(m.state_dict())
    assert mixed.config.upsample_modes == coarse
    assert (mixed(s, z) - before).abs().max() > 1e-3
    mixed.save_pretrained(tmp_path)
    again = SketchTranslator.from_pretrained(tmp_path).eval()
    assert again.config.upsample == coarse
    torch.testing.assert_close(again(s, z), mixed(s, z))


def test_a_translator_widened_for_words_starts_where_it_was_and_then_follows_them():
    m = _model()
    wide = m.with_attributes(40).eval()
    assert wide.attr_dim == 40 and wide.config.style_dim == 4 and m.attr_dim == 0
    s, z = torch.rand(2, 1, 32, 32), torch.randn(2, 4)
    said = torch.zeros(2, 40)
    said[:, 9] = 1  # Blond_Hair
    with torch.no_grad():
        before = m(s, z)
        torch.testing.assert_close(wide(s, z), before)  # nothing stated
        torch.testing.assert_close(wide(s, z, attributes=said), before)  # the new inputs start at zero weight
        for weight in wide.word_parameters():  # as if trained: the words now reach the FiLM layers
            weight.normal_(0, 0.5)
        assert not torch.allclose(wide(s, z, attributes=said), before)
        torch.testing.assert_close(wide(s, z), before)  # still the sketch-only model when nothing is said
    with pytest.raises(ValueError, match="40 values"):
        wide(s, attributes=torch.zeros(2, 39))
    with pytest.raises(ValueError, match="takes no attributes"):
        m(s, attributes=said)
    with pytest.raises(ValueError, match="already takes 40"):
        wide.with_attributes(40)
    with pytest.raises(ValueError, match="attr_dim"):
        TranslatorConfig(attr_dim=-1)


def test_pipeline_takes_words_only_from_a_translator_trained_with_them():
    from sketchface.attributes import parse_description

    plain = SketchTranslatorPipeline(_model())
    assert not plain.capabilities.words_with_sketch and plain.capabilities.takes_sketch
    assert len(plain(_sketch(), num_images=1, attributes=None).images) == 1  # nothing stated: fine
    with pytest.raises(ValueError, match="takes no words"):
        plain(_sketch(), attributes="blond hair")
    wide = _model().with_attributes(40)
    with torch.no_grad():
        for weight in wide.word_parameters():
            weight.normal_(0, 0.5)
    for mirror in (False, True):
        wide.config.mirror_average = mirror
        pipe = SketchTranslatorPipeline(wide)
        assert pipe.capabilities.words_with_sketch
        a = [np.asarray(im, float) for im in pipe(_sketch(), num_images=2, seed=3).images]
        b = [np.asarray(im, float) for im in pipe(_sketch(), num_images=2, seed=3, attributes="blond hair").images]
        said = parse_description("blond hair").attributes  # blond, and so no other hair colour
        c = [np.asarray(im, float) for im in pipe(_sketch(), num_images=2, seed=3, attributes=said).images]
        d = [np.asarray(im, float) for im in pipe(_sketch(), num_images=2, seed=3, attributes={"Blond_Hair": 1}).images]
        assert np.abs(a[0] - b[0]).mean() > 0 and np.array_equal(b[0], c[0])  # words and attributes alike
        assert np.abs(c[0] - d[0]).mean() > 0  # every stated value counts, the implied "no black hair" too
        assert np.abs(b[0] - b[1]).mean() > 0  # the candidates still differ
        # guidance scales the words' effect: 1 as trained, 0 as if nothing were said, 3 further from that
        one = pipe(_sketch(), num_images=1, seed=3, attributes="blond hair", words_guidance=1).images[0]
        assert np.array_equal(np.asarray(one, float), b[0])
        none = pipe(_sketch(), num_images=1, seed=3, attributes="blond hair", words_guidance=0).images[0]
        assert np.abs(np.asarray(none, float) - a[0]).max() <= 1  # the face without words (rounding aside)
        far = pipe(_sketch(), num_images=1, seed=3, attributes="blond hair", words_guidance=3).images[0]
        assert np.abs(np.asarray(far, float) - a[0]).mean() > np.abs(b[0] - a[0]).mean()
    with pytest.raises(ValueError, match="words_guidance"):
        pipe(_sketch(), attributes="blond hair", words_guidance=-1)
    with pytest.raises(ValueError, match="words_guidance"):
        TranslatorConfig(words_guidance=11)


def test_pca_style_code_is_fixed_whitened_coarse_colour(tmp_path):
    from sketchface.trainer import _half_copy

    with pytest.raises(ValueError, match="style_source must be one of"):
        TranslatorConfig(style_source="magic")
    cfg = TranslatorConfig(resolution=32, channels=[8, 16], style_dim=3, groups=4, style_source="pca", style_input=8)
    m = SketchTranslator(cfg)
    assert not hasattr(m, "style_encoder")  # nothing to learn: the code is fixed by fit_style
    g = torch.Generator().manual_seed(0)
    # photos that differ in overall colour (3 factors) plus pixel noise
    tint = torch.rand(200, 3, 1, 1, generator=g)
    photos = (0.6 * tint + 0.4 * torch.rand(200, 3, 32, 32, generator=g)).clamp(0, 1)
    with pytest.raises(ValueError, match="more than style_dim"):
        m.fit_style(photos[:3])
    explained = m.fit_style(photos)
    assert explained > 0.9  # the three colour factors are the first three components
    mu, logvar = m.encode_style(photos)
    torch.testing.assert_close(mu.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(mu.T), torch.eye(3), atol=1e-3, rtol=0)  # whitened: N(0, I) is the prior
    assert float(logvar.max()) < -4  # only a little training noise around the fixed code
    torch.testing.assert_close(m.encode_style(photos)[0], mu)  # deterministic
    # a redder photo moves the code; the same colours give the same code
    red = photos[:1].clone()
    red[:, 0] = 1
    assert float((m.encode_style(red)[0] - mu[:1]).norm()) > 1
    # the basis travels with the weights, also in half precision
    _half_copy(m).save_pretrained(tmp_path)
    back = SketchTranslator.from_pretrained(str(tmp_path)).float()
    assert back.config.style_source == "pca"
    torch.testing.assert_close(back.encode_style(photos)[0], mu, atol=0.02, rtol=0.01)
    with pytest.raises(ValueError, match="fit_style is for"):
        SketchTranslator(TINY).fit_style(photos)


def test_patch_discriminator_sees_patches():
    d = PatchDiscriminator(in_channels=4, width=8)
    assert d(torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32)).shape == (2, 1, 4, 4)
    assert PatchDiscriminator(in_channels=3, width=8)(torch.rand(2, 3, 32, 32)).shape == (2, 1, 4, 4)


def test_save_load_round_trip_in_half_precision(tmp_path):
    from sketchface.trainer import _half_copy

    m = _model()
    _half_copy(m).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "sketch-translator" and cfg["channels"] == [8, 16, 16]
    pipe = SketchTranslatorPipeline.from_pretrained(str(tmp_path))
    assert next(pipe.model.parameters()).dtype == torch.float32
    s = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(pipe.model(s), m(s), atol=5e-3, rtol=0)  # fp16 storage costs little


def test_pipeline_candidates(tmp_path):
    pipe = SketchTranslatorPipeline(_model())
    out = pipe(_sketch(), num_images=4, seed=1, mix_strength=0.5)
    faces = out.images
    assert out.latents is None  # no latent space of its own: a face depends on the sketch's features too
    assert len(faces) == 4 and all(f.size == (32, 32) and f.mode == "RGB" for f in faces)
    again = pipe(_sketch(), num_images=4, seed=1, mix_strength=0.5).images
    assert [f.tobytes() for f in faces] == [f.tobytes() for f in again]  # seeded
    other = pipe(_sketch(), num_images=4, seed=2, mix_strength=0.5).images
    assert faces[0].tobytes() == other[0].tobytes()  # candidate 0 is code 0 whatever the seed
    assert faces[1].tobytes() != other[1].tobytes()
    assert len({f.tobytes() for f in faces}) == 4  # candidates differ
    same = [np.asarray(f, dtype=int) for f in pipe(_sketch(), num_images=3, seed=1, mix_strength=0.0).images]
    assert max(np.abs(f - same[0]).max() for f in same) <= 1  # all code 0 (rows of a batch may round apart)
    caps = pipe.capabilities
    assert caps.takes_sketch and not caps.takes_words and caps.editable_attributes == () and not caps.has_image_encoder
    with pytest.raises(ValueError, match="no latent space"):
        pipe.decode(torch.zeros(1, 8))
    with pytest.raises(ValueError, match="no image encoder"):
        pipe.encode(_sketch())
    with pytest.raises(ValueError, match="no attribute edits"):
        pipe.edit(torch.zeros(1, 8), {"Eyeglasses": True})
    with pytest.raises(ValueError, match="mix_strength"):
        pipe(_sketch(), mix_strength=1.5)
    # the model's style_temperature widens the draws at every variety (row 0 stays code 0); wider codes, more spread
    wide = SketchTranslatorPipeline(_model())
    wide.model.config.style_temperature = 1.5
    torch.testing.assert_close(wide.style_codes(4, 1, 0.5), 1.5 * pipe.style_codes(4, 1, 0.5))
    assert not wide.style_codes(4, 1, 0.5)[0].any()

    def spread(p):
        f = np.stack([np.asarray(x, dtype=float) for x in p(_sketch(), num_images=4, seed=1).images[1:]])
        return f.std(0).mean()

    assert spread(wide) > spread(pipe)
    with pytest.raises(ValueError, match="num_images"):
        pipe(_sketch(), num_images=0)


def test_mirror_average_draws_each_candidate_from_the_sketch_and_its_mirror_image(tmp_path):
    sketch = _sketch()
    ImageDraw.Draw(sketch).line((10, 20, 40, 100), fill=0, width=4)  # not symmetric, or the test could not fail
    pipe = SketchTranslatorPipeline(_model())
    plain = pipe(sketch, num_images=3, seed=1).images
    mirrored = pipe(sketch.transpose(Image.Transpose.FLIP_LEFT_RIGHT), num_images=3, seed=1).images
    model = _model(mirror_average=True)  # the same weights
    both = SketchTranslatorPipeline(model)(sketch, num_images=3, seed=1).images
    assert any(a.tobytes() != b.tobytes() for a, b in zip(plain, both))
    for a, m, b in zip(plain, mirrored, both):  # each face: the mean of the two drawings, the second mirrored back
        expect = (np.asarray(a, dtype=float) + np.asarray(m, dtype=float)[:, ::-1]) / 2
        assert np.abs(np.asarray(b, dtype=float) - expect).max() <= 1.0  # (8-bit rounding of each)
    assert len({f.tobytes() for f in both}) == 3  # the candidates still differ
    model.save_pretrained(tmp_path / "m")  # a run-time setting saved with the weights
    assert SketchTranslatorPipeline.from_pretrained(str(tmp_path / "m")).model.config.mirror_average is True
    assert SketchTranslatorPipeline(_model()).model.config.mirror_average is False  # older checkpoints: off


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("bf16", [False, True])
def test_the_decoder_gets_channels_last_features(mirror, bf16, monkeypatch):
    # oneDNN reorders every layer's input that is not channels_last (the shipped translator's decoder ran ~25 %
    # slower when the mirror average's repeat_interleave copied its features into the default layout)
    pipe = SketchTranslatorPipeline(_model(mirror_average=mirror), bf16=bf16)
    seen = []
    decode = SketchTranslator.decode

    def spy(self, feats, z, attributes=None):  # on the class: the bfloat16 copy of the network draws too
        seen.append([f.is_contiguous(memory_format=torch.channels_last) for f in feats])
        return decode(self, feats, z, attributes)

    monkeypatch.setattr(SketchTranslator, "decode", spy)
    for n in (1, 3):
        pipe(_sketch(), num_images=n, seed=1)
    assert seen and all(all(s) for s in seen), seen


def test_bfloat16_drawing_stays_close_to_float32():
    model = _model(mirror_average=True)
    a = SketchTranslatorPipeline(model, bf16=False)(_sketch(), num_images=3, seed=1).images
    b = SketchTranslatorPipeline(model, bf16=True)(_sketch(), num_images=3, seed=1).images
    diff = np.abs(np.stack([np.asarray(x, float) - np.asarray(y, float) for x, y in zip(a, b)]))
    assert 0 < diff.max() and diff.mean() < 3  # bfloat16 was used, and the faces stay within a few levels
    # the bfloat16 copy of the weights draws exactly what autocast draws from the float32 weights
    pipe = SketchTranslatorPipeline(model, bf16=True)
    assert pipe._drawer() is not model and pipe._drawer().stem.weight.dtype == torch.bfloat16
    assert model.stem.weight.dtype == torch.float32  # the model itself is left as it was
    pipe._drawer = lambda: model
    c = pipe(_sketch(), num_images=3, seed=1).images
    assert all(x.tobytes() == y.tobytes() for x, y in zip(b, c))


def test_pipeline_sketches_a_colour_photo_first():
    pipe = SketchTranslatorPipeline(_model())
    photo = Image.new("RGB", (100, 120), (200, 160, 140))
    ImageDraw.Draw(photo).ellipse((20, 20, 80, 100), fill=(120, 80, 60))
    x = pipe.prepare_sketch(photo)
    assert x.shape == (1, 1, 32, 32) and float(x.max()) == 1.0 and float(x.min()) < 0.8  # a sketch, not a photo


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return write_celeba_layout(tmp_path_factory.mktemp("celeba"), n=12)


def _train(layout, out, steps, *extra):
    from train import translator

    argv = [
        "--data_root", str(layout), "--output_dir", str(out), "--max_steps", str(steps), "--batch_size", "4",
        "--variants", "2", "--resolution", "32", "--channels", "8", "16", "16", "--style_dim", "4",
        "--eval_photos", "2", "--eval_every", "100", "--log_every", "1", "--adv_start", "1", "--warmup_steps", "1",
        "--save_every", "2", "--precision", "fp32", *extra,
    ]  # fmt: skip
    return translator.main(*translator.parse_args(argv))


def test_training_runs_saves_a_card_and_resumes_exactly(layout, tmp_path, monkeypatch):
    straight = _train(layout, tmp_path / "a", 4)
    card = (straight / "README.md").read_text()
    assert "non-commercial research" in card and "samples/s" in card and "precision fp32" in card
    summary = json.loads((straight / "eval.json").read_text())["summary"]
    assert summary["steps"] == 4 and {"computed/mse", "edges/lpips", "xdog/mse"} <= set(summary["eval"])
    pipe = SketchTranslatorPipeline.from_pretrained(str(straight))
    assert len(pipe(_sketch(), num_images=2).images) == 2
    # the same run killed right after its step-2 save, then resumed: the same weights as four steps in one go
    killed_after_first_save(monkeypatch, lambda: _train(layout, tmp_path / "b", 4))
    resumed = _train(layout, tmp_path / "b", 4, "--resume")
    a = SketchTranslator.from_pretrained(str(straight)).state_dict()
    b = SketchTranslator.from_pretrained(str(resumed)).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0, msg=k)


def test_a_trained_translator_learns_words_from_the_labels(layout, tmp_path):
    from sketchface.models.classifier import AttributeClassifier, ClassifierConfig

    reader = tmp_path / "reader"
    AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8])).save_pretrained(reader)
    base = _train(layout, tmp_path / "base", 1, "--augment", "none")
    out = _train(layout, tmp_path / "words", 3, "--init_from", str(base), "--attr_dim", "40", "--eval_every", "3",
                 "--attr_lambda", "0.5", "--attr_classifier", str(reader))  # fmt: skip
    card = (out / "README.md").read_text()
    assert "It also takes words" in card and "with the witness's words" in card and "Male, Young" in card
    assert "Attribute loss: + 0.5·binary cross-entropy" in card
    logged = [json.loads(line) for line in (tmp_path / "words" / "log.jsonl").read_text().splitlines()]
    assert any("attr" in row for row in logged)  # the attribute loss ran and was logged
    record = json.loads((out / "eval.json").read_text())
    assert record["args"]["attr_dim"] == 40
    assert {"words/computed/mse", "words/edges/sface"} <= set(record["summary"]["eval"])
    pipe = SketchTranslatorPipeline.from_pretrained(str(out))
    assert pipe.capabilities.words_with_sketch
    trained = torch.cat([w.flatten() for w in pipe.model.word_parameters()])
    assert float(trained.abs().max()) > 0  # three steps moved the words' weights off zero
    assert len(pipe(_sketch(), num_images=2, attributes="a bald man").images) == 2
    assert (tmp_path / "words" / "samples-000003.png").is_file()


def test_augment_modes_flip_only_or_leave_the_pairs_alone():
    from sketchface.data.pairs import augment_batch

    g = torch.Generator().manual_seed(0)
    sketch, image = torch.rand(16, 1, 8, 8), torch.rand(16, 3, 8, 8)
    s0, i0 = augment_batch(sketch, image, g, "none")
    assert torch.equal(s0, sketch) and torch.equal(i0, image)
    s1, i1 = augment_batch(sketch, image, g, "flip")
    flipped = [not torch.equal(s1[k], sketch[k]) for k in range(16)]
    assert 0 < sum(flipped) < 16  # some mirrored, some not
    for k in range(16):  # sketch and photo mirrored together, nothing else moved
        want = (sketch[k].flip(-1), image[k].flip(-1)) if flipped[k] else (sketch[k], image[k])
        assert torch.equal(s1[k], want[0]) and torch.equal(i1[k], want[1])
    s2, _ = augment_batch(sketch, image, g, "full")
    assert not torch.equal(s2, sketch)
    drawn = torch.rand(16, 3, 8, 8)  # images of the same faces (cached drawings) are mirrored with their pairs
    s3, i3, d3 = augment_batch(sketch, image, g, "flip", drawn)
    for k in range(16):
        mirrored = not torch.equal(s3[k], sketch[k])
        assert torch.equal(d3[k], drawn[k].flip(-1) if mirrored else drawn[k])
        assert torch.equal(i3[k], image[k].flip(-1) if mirrored else image[k])
    with pytest.raises(ValueError, match="cannot carry"):
        augment_batch(sketch, image, g, "full", drawn)
    from train import translator

    with pytest.raises(SystemExit):
        translator.parse_args(["--augment", "wobbly"])
    with pytest.raises(SystemExit):
        translator.parse_args(["--style_source", "magic"])
    with pytest.raises(SystemExit, match="one mode per doubling"):  # before any photo is drawn
        translator.parse_args(["--resolution", "32", "--channels", "8", "16", "16", "--upsample", "bilinear", "nearest",
                               "nearest"])  # fmt: skip


def test_a_new_translator_can_train_with_interpolated_coarse_doublings(layout, tmp_path):
    out = _train(layout, tmp_path / "coarse", 1, "--upsample", "bilinear", "nearest", "--augment", "flip")
    assert json.loads((out / "config.json").read_text())["upsample"] == ["bilinear", "nearest"]
    assert SketchTranslator.from_pretrained(str(out)).config.upsample_modes == ["bilinear", "nearest"]


def test_a_deterministic_translator_trains_without_a_style_code(layout, tmp_path):
    out = _train(layout, tmp_path / "plain", 2, "--style_dim", "0", "--augment", "flip", "--lpips_lambda", "0")
    card = (out / "README.md").read_text()
    assert "mirrored at random every batch" in card and "ST-LPIPS is not a training loss" in card
    assert "deterministic, every candidate of a sketch is the same face" in card and "style code for colour" not in card
    pipe = SketchTranslatorPipeline.from_pretrained(str(out))
    assert pipe.model.style_dim == 0
    faces = pipe(_sketch(), num_images=2).images
    assert len(faces) == 2 and faces[0].size == faces[1].size


def test_a_pca_style_translator_trains_and_gives_different_candidates(layout, tmp_path):
    out = _train(layout, tmp_path / "pca", 3, "--style_source", "pca", "--augment", "flip")
    card = (out / "README.md").read_text()
    assert "principal components" in card and "KL(style)" not in card
    record = json.loads((out / "eval.json").read_text())
    assert record["args"]["style_source"] == "pca"
    pipe = SketchTranslatorPipeline.from_pretrained(str(out))
    assert pipe.model.config.style_source == "pca" and float(pipe.model.style_basis.abs().sum()) > 0  # fitted
    a, b = (np.asarray(im, dtype=float) for im in pipe(_sketch(), num_images=2, seed=0).images)
    assert np.abs(a - b).mean() > 0  # candidate 1 has its own colouring


def test_evaluation_and_benchmark_scripts_know_the_translator(tmp_path):
    from evaluation import benchmark, evaluate

    _model().save_pretrained(tmp_path)
    assert evaluate.detect_kind(tmp_path) == "sketch"
    kind, pipe = evaluate.load_pipeline(str(tmp_path))
    assert kind == "sketch" and isinstance(pipe, SketchTranslatorPipeline)
    step, info = benchmark.TRAINABLE["translator"](torch.device("cpu"), 2)
    step()  # one optimiser step of the starter's architecture
    assert info["batch"] == 2 and info["params"] > 1e6


def test_benchmark_times_each_training_option():
    from evaluation import benchmark

    cfg = benchmark.parse_args(
        ["--train_models", "mvae", "mvae-decode-all", "--train_batch", "2", "--train_steps", "1"]
    )
    for name in cfg.train_models:
        result = benchmark.bench_training(name, cfg, torch.device("cpu"))
        assert set(result["options"]) == {"fp32", "channels_last", "bf16"}, result
        assert all(o["steps_per_s"] > 0 for o in result["options"].values())
    assert "the attribute-only one for nothing" in result["note"]
    table = benchmark.format_table(
        {"meta": {"device": "cpu", "torch": "x"}, "pipelines": {}, "training": {name: result}}
    )
    assert "| mvae-decode-all | " in table and "| bf16 |" in table


def test_benchmark_multivae_trains_the_same_networks():
    """The multivae entry wraps mvae-2experts' very networks: same parameter count, same initial weights (same
    seed), and one optimiser step of each runs with a finite loss."""
    pytest.importorskip("multivae")  # optional benchmark dependency (requirements-bench.txt)
    from evaluation import benchmark

    cpu = torch.device("cpu")
    models = {}
    for name in ("mvae-2experts", "multivae"):
        torch.manual_seed(0)
        step, info = benchmark.TRAINABLE[name](cpu, 2)
        step()
        models[name] = info
    assert models["mvae-2experts"]["params"] == models["multivae"]["params"] > 1e6
    assert models["multivae"]["config"]["use_sketch"] is False


def test_benchmark_without_multivae_says_how_to_install(monkeypatch):
    from evaluation import benchmark

    monkeypatch.setitem(sys.modules, "multivae", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "multivae.models", None)
    cfg = benchmark.parse_args(["--train_models", "multivae", "--train_batch", "2", "--train_steps", "1"])
    result = benchmark.bench_training("multivae", cfg, torch.device("cpu"))
    assert "pip install multivae" in result["skipped"]


def test_benchmark_times_data_sources(tmp_path):
    """--loaders: ms per batch of each data source, as a share of the step it feeds when that step was timed; a
    missing CelebA folder is reported, not fatal."""
    from evaluation import benchmark

    root = write_celeba_layout(tmp_path / "celeba", n=24)
    cfg = benchmark.parse_args(
        ["--train_batch", "4", "--train_steps", "1", "--data_root", str(root), "--loaders", "procedural-pool"]
    )
    training = {"mvae": {"options": {"bf16": {"step_ms": {"p50_ms": 100.0}}}}}
    loaders = {}
    for name in ("procedural-pool", "procedural-render", "celeba-stream", "pairs-pool"):
        loaders[name] = r = benchmark.bench_loader(name, cfg, training)
        assert r["batch"] == 4 and r["batch_ms"]["p50_ms"] > 0, (name, r)
        assert ("share_of_step" in r) == (r["feeds"] == "mvae")  # only the mvae step was timed here
    cfg.data_root = str(tmp_path / "nowhere")
    loaders["celeba-stream"] = benchmark.bench_loader("celeba-stream", cfg, training)
    assert "does not exist" in loaders["celeba-stream"]["skipped"]
    table = benchmark.format_table(
        {"meta": {"device": "cpu", "torch": "x"}, "pipelines": {}, "training": {}, "loaders": loaders}
    )
    assert "| procedural-pool | mvae (64 px) | 4 |" in table and "| pairs-pool | translator (128 px) | 4 |" in table
    assert "| celeba-stream | – | – | skipped: " in table


def _detail_case(size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A gray 'photo' with fine detail, its colour-dodge sketch, and a face that lacks the detail (its blur)."""
    from sketchface.models.translator import DetailGate

    g = torch.Generator().manual_seed(0)
    shading = torch.nn.functional.interpolate(torch.rand(1, 1, 4, 4, generator=g), size=size, mode="bicubic")
    detail = (torch.rand(1, 1, size, size, generator=g) < 0.15).float()  # dark specks: pores, lashes, strands
    photo = (0.3 + 0.5 * shading - 0.25 * detail).clamp(0.05, 1)
    gate = DetailGate(4, size)
    sketch = (photo / gate.blur(photo)).clamp(max=1)  # paper 2's dodge, s = min(1, Y / blur(Y))
    face = gate.blur(photo).expand(1, 3, -1, -1)  # the shading right, the detail missing
    return photo, sketch, face


def test_detail_gate_blurs_as_the_sketch_does_and_puts_its_detail_back_where_open():
    import cv2

    from sketchface.data.sketch import _reference_kernel
    from sketchface.models.translator import DetailGate

    gate = DetailGate(4, 128)
    y = torch.rand(1, 1, 128, 128)
    want = cv2.GaussianBlur(y[0, 0].numpy(), (_reference_kernel(128),) * 2, 0)  # OpenCV's sigma for that kernel
    np.testing.assert_allclose(gate.blur(y)[0, 0].numpy(), want, atol=1e-5)
    for h, w in ((40, 24), (8, 8), (1, 5)):  # not square; smaller than the 31-px kernel (reflected again and again)
        y = torch.rand(2, 1, h, w)
        for i in range(2):
            want = cv2.GaussianBlur(y[i, 0].numpy(), (_reference_kernel(128),) * 2, 0)
            np.testing.assert_allclose(gate.blur(y)[i, 0].numpy(), want, atol=1e-5)
    photo, sketch, face = _detail_case()
    gate = DetailGate(4, 32)
    shut, open_ = torch.zeros_like(sketch), torch.ones_like(sketch)
    assert torch.equal(gate(face, sketch, shut), face)  # a shut gate leaves the face alone
    drawn = gate(face, sketch, open_)[:, :1]
    before, after = float((face[:, :1] - photo).abs().mean()), float((drawn - photo).abs().mean())
    assert after < 0.6 * before  # an open one puts the sketch's detail back on the face's shading

    def fine(t):
        return (t - torch.nn.functional.avg_pool2d(t, 3, 1, 1, count_include_pad=False)).flatten()

    assert torch.corrcoef(torch.stack([fine(drawn), fine(photo)]))[0, 1] > 0.9  # the specks where they were
    half = gate(face, sketch)  # the untrained network: half open everywhere
    assert torch.allclose(half, (face + gate(face, sketch, open_)) / 2, atol=1e-6)

    with torch.no_grad():  # a trained-looking gate: one face's gate serves all with ``shared``, bf16 near float32
        for layer in gate.net:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.normal_(0, 0.5)
    faces = torch.cat([face, face.flip(-1), 1 - face])
    sketches = sketch.expand(3, -1, -1, -1)
    g0 = gate.gate(faces[:1], sketch)
    assert torch.equal(gate(faces, sketches, shared=True), gate(faces, sketches, g0.expand(3, -1, -1, -1)))
    assert not torch.allclose(gate(faces, sketches), gate(faces, sketches, shared=True))
    g16 = gate._gate(gate._parts(faces, sketches)[1], bf16=True)
    assert g16.dtype == torch.float32 and 0 < float((g16 - gate.gate(faces, sketches)).abs().max()) < 0.02


def test_a_translator_with_a_detail_gate_saves_loads_and_draws_every_candidate_with_one_gate(tmp_path):
    base = _model()
    model = base.with_detail_gate(4)
    assert model.config.detail_gate == 4 and base.detail is None
    for k, v in base.state_dict().items():  # the translator itself is unchanged
        torch.testing.assert_close(model.state_dict()[k], v, atol=0, rtol=0)
    with pytest.raises(ValueError, match="already has"):
        model.with_detail_gate(4)
    with torch.no_grad():
        model.detail.net[-1].weight.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["detail_gate"] == 4
    pipe = SketchTranslatorPipeline.from_pretrained(str(tmp_path / "m"))  # strict: the gate's weights are saved
    torch.testing.assert_close(pipe.model.detail.net[-1].weight, model.detail.net[-1].weight)
    sketch = _sketch()
    plain = SketchTranslatorPipeline(base, bf16=False)(sketch, num_images=3, seed=1).images
    gated = SketchTranslatorPipeline(model.eval(), bf16=False)(sketch, num_images=3, seed=1).images
    assert all(a.tobytes() != b.tobytes() for a, b in zip(plain, gated)) and len({f.tobytes() for f in gated}) == 3
    x = pipe.prepare_sketch(sketch)
    faces = torch.stack([torch.from_numpy(np.asarray(f, dtype=np.float32) / 255).permute(2, 0, 1) for f in plain])
    g0 = model.detail.gate(faces[:1], x)  # candidate 0's gate serves them all
    want = model.add_detail(faces, x, g0)
    got = torch.stack([torch.from_numpy(np.asarray(f, dtype=np.float32) / 255).permute(2, 0, 1) for f in gated])
    assert float((got - want).abs().max()) <= 2 / 255  # (8-bit rounding of the faces before and after)
    with pytest.raises(ValueError, match="detail_gate"):
        TranslatorConfig(detail_gate=-1)
    with pytest.raises(ValueError, match="one-channel"):
        TranslatorConfig(detail_gate=4, in_channels=3)


def test_the_gate_learns_from_faces_drawn_once_as_from_faces_drawn_every_step():
    from sketchface.data.pairs import augment_batch
    from train.translator import draw_base_faces

    torch.manual_seed(0)
    cfg = dict(resolution=32, channels=[8, 16, 16], style_dim=4, upsample="nearest", detail_gate=4, mirror_average=True)
    model = SketchTranslator(TranslatorConfig(**cfg)).eval()
    sketches = (torch.rand(6, 1, 32, 32) * 255).to(torch.uint8)
    x = sketches.float() / 255
    drawn = draw_base_faces(model, sketches, "cpu", chunk=4, quiet=True)  # two chunks
    assert drawn.dtype == torch.float16 and drawn.shape == (6, 3, 32, 32)
    torch.testing.assert_close(drawn.float(), model.base_faces(x), atol=1e-3, rtol=0)
    # mirrored with their sketches, the drawings stay what the translator draws from the mirrored sketches (the
    # mirror average), so the gate sees the same faces as when it draws them every step
    s, _, d = augment_batch(x, x.expand(-1, 3, -1, -1), torch.Generator().manual_seed(1), "flip", drawn)
    assert not torch.equal(s, x)
    with torch.no_grad():
        torch.testing.assert_close(model(s, detail_only=True, base=d), model(s, detail_only=True), atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="detail_only"):
        model(x, base=drawn)


def test_detail_only_training_moves_the_gate_and_nothing_else(layout, tmp_path, capsys):
    base = _train(layout, tmp_path / "base", 1, "--augment", "none")
    out = _train(layout, tmp_path / "gate", 3, "--init_from", str(base), "--detail_gate", "4", "--detail_only",
                 "--augment", "none", "--lr", "1e-2")  # fmt: skip
    assert "candidate 0 of the pool, drawn once" in capsys.readouterr().err  # (unmirrored: each face drawn once)
    before = SketchTranslator.from_pretrained(str(base)).state_dict()
    after = SketchTranslator.from_pretrained(str(out)).state_dict()
    assert set(after) - set(before) and all(k.startswith("detail.") for k in set(after) - set(before))
    for k, v in before.items():
        torch.testing.assert_close(after[k], v, atol=0, rtol=0, msg=k)
    assert float(after["detail.net.6.weight"].abs().max()) > 0  # the gate learned (it starts at zero)
    card = (out / "README.md").read_text()
    assert "trained the detail gate alone (4 channels" in card and "non-commercial research" in card
    # --fresh_gate: a new gate of the width asked for in place of the trained one, the translator as it was
    again = _train(layout, tmp_path / "fresh", 1, "--init_from", str(out), "--detail_gate", "6", "--fresh_gate",
                   "--detail_only", "--augment", "none", "--lr", "1e-9")  # fmt: skip
    fresh = SketchTranslator.from_pretrained(str(again))
    assert fresh.config.detail_gate == 6 and fresh.state_dict()["detail.net.0.weight"].shape[0] == 6
    bare = fresh.without_detail_gate()
    assert bare.detail is None and bare.config.detail_gate == 0
    for k, v in bare.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0, msg=k)
    with pytest.raises(ValueError, match="no detail gate"):
        bare.without_detail_gate()
    from train import translator

    with pytest.raises(SystemExit, match="--init_from"):
        translator.parse_args(["--detail_only"])
    with pytest.raises(SystemExit, match="--fresh_gate"):
        translator.parse_args(["--fresh_gate", "--init_from", str(out)])
