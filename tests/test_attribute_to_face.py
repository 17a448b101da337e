"""AttributeToFace: determinism per seed, tri-state input, sketch, variations/cross/edit, validation errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sketchface.attributes import ATTRIBUTES, Attributes, UnknownAttributeError
from sketchface.models.mvae import MVAE, CrossModalVAE, CrossModalVAEConfig, MVAEConfig
from sketchface.pipelines.attribute_to_face import (
    DESCRIPTION_WEIGHT,
    EDIT_MARGIN,
    EDIT_STEP,
    AttributeToFace,
    slerp,
)
from sketchface.pipelines.base import FaceOutput

SIZE = 16


def _tiny_model(cls=MVAE):
    torch.manual_seed(0)
    cfg_cls = CrossModalVAEConfig if cls is CrossModalVAE else MVAEConfig
    model = cls(cfg_cls(image_size=SIZE, latent_dim=8, widths=[4, 8, 8, 16], fc_dim=16, attr_hidden=32))
    # one training-mode pass so BatchNorm running statistics are not the identity defaults
    model.train()
    if cls is MVAE:
        model(torch.rand(8, 3, SIZE, SIZE), torch.rand(8, 40).round(), None, torch.rand(8, 1, SIZE, SIZE))
    else:
        model(torch.rand(8, 40).round())
    with torch.no_grad():  # an untrained decoder is nearly constant: amplify so uint8 images tell latents apart
        model.image_decoder.deconv[-1].weight.mul_(30)
    return model.eval()


@pytest.fixture(scope="module")
def pipe():
    return AttributeToFace(_tiny_model())


@pytest.fixture(scope="module")
def cvae_pipe():
    return AttributeToFace(_tiny_model(CrossModalVAE))


def _arr(images):
    """Faces (a FaceOutput's, or a list) → (N, H, W, 3) int16."""
    images = images.images if isinstance(images, FaceOutput) else images
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def test_candidates_are_seeded(pipe):
    attrs = Attributes(Male=True, Eyeglasses=True)
    a = pipe(attrs, num_images=4, seed=3).images
    assert len(a) == 4 and all(isinstance(im, Image.Image) and im.size == (SIZE, SIZE) for im in a)
    assert np.array_equal(_arr(a), _arr(pipe(attrs, num_images=4, seed=3)))
    assert not np.array_equal(_arr(a), _arr(pipe(attrs, num_images=4, seed=4)))
    # the candidates differ from each other, and temperature 0 collapses them to the posterior mean
    assert np.abs(_arr(a)[0] - _arr(a)[1]).max() > 0
    same = _arr(pipe(attrs, num_images=3, seed=3, temperature=0.0))
    assert np.array_equal(same[0], same[1])


def test_input_forms_agree(pipe):
    attrs = Attributes(Male=True, Smiling=False)
    ref = _arr(pipe(attrs, num_images=2, seed=1))
    vector = attrs.to_vector()
    assert np.array_equal(ref, _arr(pipe(vector, num_images=2, seed=1)))
    assert np.array_equal(ref, _arr(pipe(list(vector.tolist()), num_images=2, seed=1)))
    assert np.array_equal(ref, _arr(pipe({"Male": True, "Smiling": False}, num_images=2, seed=1)))
    assert np.array_equal(ref, _arr(pipe(torch.tensor(vector), num_images=2, seed=1)))
    # a different description gives different faces
    assert not np.array_equal(ref, _arr(pipe(Attributes(Male=False, Smiling=True), num_images=2, seed=1)))
    # nothing known: prior samples
    assert len(pipe(None, num_images=2).images) == 2


def test_text_description(pipe):
    from sketchface.attributes import parse_description

    parsed = parse_description("man with glasses").attributes
    assert np.array_equal(_arr(pipe("man with glasses", num_images=2)), _arr(pipe(parsed, num_images=2)))


def test_validation_errors(pipe):
    with pytest.raises(UnknownAttributeError, match="Eyeglases"):
        pipe({"Eyeglases": True})
    with pytest.raises(ValueError, match="40 values"):
        pipe(np.ones(39))
    with pytest.raises(ValueError, match="expected 1"):
        pipe(np.full(40, 2))
    with pytest.raises(ValueError, match="num_images"):
        pipe(Attributes(), num_images=0)
    with pytest.raises(ValueError, match="strength"):
        pipe.variations(torch.zeros(8), strength=1.5)
    with pytest.raises(ValueError, match="8 values"):
        pipe.variations(torch.zeros(5))
    with pytest.raises(UnknownAttributeError):
        pipe.edit(torch.zeros(8), {"Glasses": True})
    with pytest.raises(ValueError, match="True or False"):
        pipe.edit(torch.zeros(8), {"Eyeglasses": 1})
    with pytest.raises(ValueError, match="No attribute changes"):
        pipe.edit(torch.zeros(8), {})


def test_sketch_joins_the_description(pipe, cvae_pipe):
    sketch = Image.new("L", (64, 64), 255)
    sketch.paste(0, (20, 10, 44, 54))
    attrs = Attributes(Eyeglasses=True)
    with_sketch = _arr(pipe(attrs, sketch=sketch, num_images=2, seed=0))
    assert not np.array_equal(with_sketch, _arr(pipe(attrs, num_images=2, seed=0)))
    assert len(pipe(None, sketch=sketch.convert("RGBA"), num_images=2).images) == 2  # sketch alone, alpha → white
    with pytest.raises(ValueError, match="sketch expert"):
        cvae_pipe(attrs, sketch=sketch)


def test_description_weight_scales_the_attribute_expert(pipe, cvae_pipe):
    sketch = Image.new("L", (64, 64), 255)
    sketch.paste(0, (20, 10, 44, 54))
    attrs = Attributes(Eyeglasses=True, Male=False)
    s = torch.from_numpy(np.asarray(sketch.resize((SIZE, SIZE)), dtype=np.float32) / 255)[None, None]
    v, k = pipe._attribute_input(attrs)
    with torch.no_grad():
        plain = pipe.model.infer(values=v, known=k, sketch=s)
        weighted = pipe.model.infer(values=v, known=k, sketch=s, weights={"attributes": DESCRIPTION_WEIGHT})
    torch.testing.assert_close(pipe.posterior(attrs, sketch=sketch, description_weight=1.0)[0], plain[0])
    torch.testing.assert_close(pipe.posterior(attrs, sketch=sketch)[0], weighted[0])  # the default weight
    assert not torch.allclose(plain[0], weighted[0])
    # without a sketch it weighs the description against the prior alone
    with torch.no_grad():
        alone = pipe.model.infer(values=v, known=k, weights={"attributes": 5.0})
    torch.testing.assert_close(pipe.posterior(attrs, description_weight=5.0)[0], alone[0])
    assert not torch.allclose(pipe.posterior(attrs, description_weight=1.0)[0], alone[0])
    # nothing to weight: a sketch alone; the cross-modal VAE (no product of experts) refuses a weight, naming it
    assert pipe.capabilities.weighs_description and not cvae_pipe.capabilities.weighs_description
    torch.testing.assert_close(
        pipe.posterior(None, sketch=sketch, description_weight=5.0)[0], pipe.posterior(None, sketch=sketch)[0]
    )
    with pytest.raises(ValueError, match="description_weight"):
        cvae_pipe.posterior(attrs, description_weight=5.0)
    with pytest.raises(ValueError, match="description_weight"):
        cvae_pipe(attrs, num_images=1, description_weight=5.0)
    a = _arr(pipe(attrs, sketch=sketch, num_images=2, seed=1, description_weight=1.0))
    assert not np.array_equal(a, _arr(pipe(attrs, sketch=sketch, num_images=2, seed=1)))
    for bad in (0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="description_weight"):
            pipe(attrs, sketch=sketch, description_weight=bad)


def test_generate_variations_cross(pipe):
    out = pipe(Attributes(Male=True), num_images=3, seed=0)
    images, latents = out.images, out.latents
    assert latents.shape == (3, 8)
    assert np.array_equal(_arr(images), _arr(pipe.decode(latents)))
    # strength 0 reproduces the face; more strength moves further away
    z = latents[0]
    same = _arr(pipe.variations(z, num_images=2, seed=0, strength=0.0))
    assert np.array_equal(same[0], _arr(images[:1])[0])
    near = _arr(pipe.variations(z, num_images=4, seed=0, strength=0.2))
    far = _arr(pipe.variations(z, num_images=4, seed=0, strength=0.9))
    d = lambda v: np.abs(v - _arr(images[:1])).mean()  # noqa: E731
    assert d(near) < d(far)
    assert np.array_equal(near, _arr(pipe.variations(z, num_images=4, seed=0, strength=0.2)))
    # crossing: both ends included
    crossed = pipe.cross(latents[0], latents[1], num_images=5)
    path = crossed.images
    assert len(path) == 5 and crossed.latents.shape == (5, 8)
    assert np.array_equal(_arr(path), _arr(pipe.decode(crossed.latents)))
    assert np.array_equal(_arr(path[:1]), _arr(images[:1])) and np.array_equal(_arr(path[-1:]), _arr(images[1:2]))
    assert len(pipe.cross(latents[0], latents[1], num_images=3, spherical=False).images) == 3
    more = pipe.variations(z, num_images=3, seed=1, strength=0.5)
    assert more.latents.shape == (3, 8) and np.array_equal(_arr(more), _arr(pipe.decode(more.latents)))
    # images work wherever latents do (through the image expert); a (1, D) latent as well as a (D,) one
    assert pipe.encode(images[0]).shape == (1, 8)
    assert len(pipe.variations(images[0], num_images=2).images) == 2
    assert np.array_equal(near, _arr(pipe.variations(z[None], num_images=4, seed=0, strength=0.2)))


def test_slerp_endpoints_and_norm():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    z = slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(z[0], a)
    torch.testing.assert_close(z[2], b)
    assert z[1].norm().item() == pytest.approx(1.0, abs=1e-5)


def test_edit(pipe, cvae_pipe):
    face = pipe(Attributes(Male=True), num_images=1).images[0]
    out = pipe.edit(face, {"Eyeglasses": True})
    assert isinstance(out, FaceOutput) and out.images[0].size == face.size and out.latents.shape == (1, 8)
    assert np.array_equal(_arr(out), _arr(pipe.edit(face, {"Eyeglasses": True})))
    assert np.array_equal(_arr(out), _arr(pipe.decode(out.latents)))
    # the image path is the path of its latent (encode); strength 0 is the model's reconstruction
    assert np.array_equal(_arr(out), _arr(pipe.edit(pipe.encode(face), {"Eyeglasses": True})))
    assert np.array_equal(_arr(pipe.edit(face, {"Eyeglasses": True}, strength=0.0)), _arr([pipe.reconstruct(face)]))
    weak, strong = (
        pipe.edit(face, {"Eyeglasses": True}, strength=0.0, method="poe"),
        pipe.edit(face, {"Eyeglasses": True}, strength=1.0, method="poe"),
    )
    assert not np.array_equal(_arr(weak), _arr(strong))
    assert pipe.edit(torch.zeros(8), {"Smiling": True}).images[0].size == (SIZE, SIZE)  # a latent works too
    # a batch of latents: each row edited as on its own
    zs = pipe(Attributes(Male=True), num_images=3, seed=2).latents
    batch = pipe.edit(zs, {"Smiling": True}, strength=0.5)
    assert batch.latents.shape == (3, 8)
    for i in range(3):
        assert np.array_equal(_arr(batch)[i], _arr(pipe.edit(zs[i], {"Smiling": True}, strength=0.5))[0])
    z = cvae_pipe(Attributes(Male=True), num_images=1).latents
    assert cvae_pipe.edit(z[0], {"Eyeglasses": True}).images[0].size == (SIZE, SIZE)
    with pytest.raises(ValueError, match="no attribute decoder"):
        cvae_pipe.read_attributes(z[0])
    with pytest.raises(ValueError, match="no image encoder"):
        cvae_pipe.encode(face)
    with pytest.raises(ValueError, match="method"):
        pipe.edit(face, {"Eyeglasses": True}, method="pixels")


def test_edit_direction_is_latent_arithmetic(pipe):
    on, off = pipe.edit_direction({"Eyeglasses": True}), pipe.edit_direction({"Eyeglasses": False})
    torch.testing.assert_close(on, -off)  # removing is the opposite move of adding
    assert on.norm() > 0 and EDIT_STEP > 0
    both = pipe.edit_direction({"Eyeglasses": True, "Smiling": True})
    torch.testing.assert_close(both, on + pipe.edit_direction({"Smiling": True}))
    z = torch.randn(8, generator=torch.Generator().manual_seed(0))
    expected = pipe.decode(z + 1.5 * on)[0]  # on already includes EDIT_STEP
    got = pipe.edit(z, {"Eyeglasses": True}, strength=1.5, method="direction").images[0]
    assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_read_attributes_matches_attribute_decoder(pipe):
    z = torch.randn(8, generator=torch.Generator().manual_seed(1))
    read = pipe.read_attributes(z)
    assert list(read) == list(ATTRIBUTES) and all(isinstance(v, bool) for v in read.values())
    logits = pipe.model.decode_attributes(z[None])[0]
    assert [read[n] for n in ATTRIBUTES] == (logits > 0).tolist()


def test_context_direction_holds_the_rest_of_the_description(pipe):
    z = torch.randn(8, generator=torch.Generator().manual_seed(2))
    context = pipe.read_attributes(z)
    context["Male"] = True
    step = pipe.edit_direction({"Goatee": True}, context=context)
    # by hand: the expert's mean for the full description with a goatee minus the same without one
    on, off = {**context, "Goatee": True}, {**context, "Goatee": False}
    mus = []
    for d in (on, off):
        v, k = pipe._attribute_input(Attributes(d))
        mus.append(pipe.model.infer(values=v, known=k)[0][0])
    torch.testing.assert_close(step, EDIT_STEP * (mus[0] - mus[1]))
    # it depends on the face's context, unlike the global direction
    flipped = {**context, "Male": False}
    assert not torch.allclose(step, pipe.edit_direction({"Goatee": True}, context=flipped))
    assert not torch.allclose(step, pipe.edit_direction({"Goatee": True}))
    # removing is still the opposite move of adding, in the same context
    torch.testing.assert_close(pipe.edit_direction({"Goatee": False}, context=context), -step)


def test_default_edit_moves_along_the_faces_own_context(pipe):
    z = torch.randn(8, generator=torch.Generator().manual_seed(3))
    changes = {"Eyeglasses": True, "Smiling": False}
    step = pipe.edit_direction(changes, context=pipe.read_attributes(z))
    expected = pipe.decode(z + 0.7 * step)[0]
    got = pipe.edit(z, changes, strength=0.7, max_boost=1.0).images[0]
    assert np.array_equal(np.asarray(got), np.asarray(expected))
    # with the boost, the step is the shortest on the grid whose rendering the model reads as changed
    scale = pipe._step_scale(z, step, changes, 0.7, 2.0)
    boosts = [1.0 + 0.25 * i for i in range(5)]
    assert any(scale == pytest.approx(0.7 * b) for b in boosts)
    model = pipe.model
    with torch.inference_mode():
        reads = [
            model.decode_attributes(model.infer(image=model.decode(z[None] + 0.7 * b * step))[0])[0] for b in boosts
        ]
    done = [
        bool(r[ATTRIBUTES.index("Eyeglasses")] > EDIT_MARGIN and r[ATTRIBUTES.index("Smiling")] < -EDIT_MARGIN)
        for r in reads
    ]
    assert scale == pytest.approx(0.7 * (boosts[done.index(True)] if any(done) else 1.0), rel=1e-5)
    assert np.array_equal(_arr(pipe.edit(z, changes, strength=0.7)), _arr(pipe.decode(z + scale * step)))
    assert pipe._step_scale(z, step, changes, 0.7, 1.0) == 0.7 and pipe._step_scale(z, step, changes, 0.0, 2.0) == 0.0
    with pytest.raises(ValueError, match="'context', 'direction' or 'poe'"):
        pipe.edit(z, changes, method="global")


def test_from_pretrained(tmp_path, pipe):
    pipe.model.save_pretrained(tmp_path / "mvae")
    loaded = AttributeToFace.from_pretrained(str(tmp_path / "mvae"))
    assert np.array_equal(
        _arr(loaded(Attributes(Male=True), num_images=2)), _arr(pipe(Attributes(Male=True), num_images=2))
    )
    assert loaded.device.type == "cpu" and loaded.to("cpu") is loaded
    with pytest.raises(FileNotFoundError):
        AttributeToFace.from_pretrained(str(tmp_path / "missing"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"config": {"image_size": 64, "widths": [8]}}))
    with pytest.raises(ValueError, match="model_type"):
        AttributeToFace.from_pretrained(str(tmp_path / "other"))
    with pytest.raises(TypeError, match="MVAE"):
        AttributeToFace(torch.nn.Linear(2, 2))


def test_criminal_sketch_grid(pipe, cvae_pipe):
    from sketchface.pipelines.attribute_to_face import criminal_sketch_grid

    grid, labels = criminal_sketch_grid({"mvae": pipe, "cvae": cvae_pipe}, num_images=4, cell=16)
    assert grid.size == (4 * 16, 6 * 16) and len(labels) == 6 and labels[0][0] == "mvae"


def test_registry_reads_sketch_input_from_the_pipeline(pipe, cvae_pipe):
    from sketchface.registry import has_sketch_input

    assert pipe.capabilities.takes_sketch and has_sketch_input(pipe) is True
    assert has_sketch_input(cvae_pipe) is False
