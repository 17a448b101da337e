"""SketchToFace pipeline: PIL in / PIL out, seeding, multimodal candidates, encode/decode/edit, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sketchface.attributes import INDEX
from sketchface.models.psp import PSP
from sketchface.pipelines.sketch_to_face import SketchToFace
from tests.helpers import tiny_psp_config

RES = 32


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    cfg = tiny_psp_config(RES)
    psp = PSP(cfg)
    i = INDEX["Eyeglasses"]
    psp.directions[i] = torch.nn.functional.normalize(torch.randn(16), dim=0)
    psp.direction_scales[i] = 1.0
    return SketchToFace(psp)


def drawing(size=200) -> Image.Image:
    img = Image.new("RGB", (size, size + 40), "white")
    d = ImageDraw.Draw(img)
    d.ellipse([40, 40, size - 40, size], outline="black", width=4)
    d.line([80, 100, 100, 100], fill="black", width=3)
    d.line([120, 100, 140, 100], fill="black", width=3)
    return img


def test_call_returns_pil_candidates(pipe):
    result = pipe(drawing(), num_images=4, seed=0, mix_strength=0.7)
    out = result.images
    assert len(out) == 4 and result.latents.shape == (4, pipe.psp.n_styles, 16)
    assert all(isinstance(im, Image.Image) and im.size == (RES, RES) and im.mode == "RGB" for im in out)
    arrays = [np.asarray(im, dtype=np.int16) for im in out]
    assert any(np.abs(arrays[0] - a).max() > 0 for a in arrays[1:])  # candidates differ


def test_seeded_and_candidate_zero_is_reconstruction(pipe):
    a = pipe(drawing(), num_images=3, seed=5, mix_strength=0.8).images
    b = pipe(drawing(), num_images=3, seed=5, mix_strength=0.8).images
    c = pipe(drawing(), num_images=3, seed=6, mix_strength=0.8).images
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[1]), np.asarray(c[1]))
    plain = pipe(drawing(), num_images=1, seed=99, mix_strength=0.0).images[0]
    assert np.array_equal(np.asarray(plain), np.asarray(a[0]))
    zero = pipe(drawing(), num_images=3, seed=5, mix_strength=0.0).images
    assert all(np.array_equal(np.asarray(zero[0]), np.asarray(z)) for z in zero)


def test_candidates_only_change_fine_layers(pipe):
    w = pipe.psp.encode(torch.rand(1, 1, RES, RES))
    cands = pipe.candidates(w, 4, seed=0, mix_strength=1.0)
    start = pipe.psp.n_styles // 2
    assert torch.equal(cands[:, :start], w.expand(4, -1, -1)[:, :start])
    assert not torch.allclose(cands[1:, start:], w.expand(3, -1, -1)[:, start:])


def test_candidates_without_mixing_skip_the_mapping_network(pipe, monkeypatch):
    w = pipe.psp.encode(torch.rand(1, 1, RES, RES))
    mixed = pipe.candidates(w, 3, seed=0, mix_strength=0.5)

    def no_mapping(*args, **kwargs):
        raise AssertionError("the mapping network ran with nothing to mix")

    monkeypatch.setattr(pipe.psp.generator, "map", no_mapping)
    one = pipe.candidates(w, 1, seed=0, mix_strength=0.5)
    none = pipe.candidates(w, 3, seed=0, mix_strength=0.0)
    assert torch.equal(one, w) and torch.equal(one, mixed[:1])
    assert torch.equal(none, w.expand(3, -1, -1))
    none[0, 0, 0] += 1  # a copy, not a view of the encoder's latent
    assert not torch.equal(none[0], w[0])


def test_prenormalised_input_and_arrays(pipe):
    pre = Image.new("L", (RES, RES), 255)
    ImageDraw.Draw(pre).ellipse([6, 4, 26, 28], outline=0, width=2)
    assert len(pipe(pre, num_images=1).images) == 1
    x = pipe.prepare_sketch(pre)
    assert x.shape == (1, 1, RES, RES) and x.max() <= 1 and x.min() >= 0
    assert pipe.prepare_sketch(np.asarray(drawing())).shape == (1, 1, RES, RES)


def test_bad_arguments(pipe):
    with pytest.raises(ValueError):
        pipe(drawing(), num_images=0)
    with pytest.raises(ValueError):
        pipe(drawing(), mix_strength=1.5)


def test_encode_decode_edit(pipe):
    out = pipe(drawing(), num_images=2, seed=1, mix_strength=0.5)
    faces = out.images
    w = out.latents[1:2]  # candidate 1's own W+
    assert w.shape == (1, pipe.psp.n_styles, 16)
    assert np.array_equal(np.asarray(pipe.decode(w)[0]), np.asarray(faces[1]))
    assert np.array_equal(np.asarray(pipe.decode(w[0])[0]), np.asarray(faces[1]))  # (n_styles, D) too
    other = Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8))
    assert pipe.encode(other).shape == w.shape  # a photo goes through the computed sketch
    assert pipe.encode(drawing()).shape == w.shape
    edited = pipe.edit(w, {"Eyeglasses": True}, strength=2.0)
    assert len(edited.images) == 1 and edited.images[0].size == (RES, RES) and edited.latents.shape == w.shape
    assert np.array_equal(np.asarray(pipe.decode(edited.latents)[0]), np.asarray(edited.images[0]))
    both = pipe.edit(out.latents, {"Eyeglasses": True}, strength=2.0)  # a batch: each row as on its own
    assert np.array_equal(np.asarray(both.images[1]), np.asarray(edited.images[0]))
    assert pipe.capabilities.editable_attributes == ("Eyeglasses",)
    with pytest.raises(ValueError):
        pipe.edit(w, {"Bald": True})


def test_from_pretrained_round_trip(pipe, tmp_path):
    pipe.psp.save_pretrained(tmp_path)
    loaded = SketchToFace.from_pretrained(str(tmp_path))
    assert loaded.device == torch.device("cpu")
    a = pipe(drawing(), num_images=2, seed=3).images
    b = loaded(drawing(), num_images=2, seed=3).images
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert loaded.to("cpu") is loaded
