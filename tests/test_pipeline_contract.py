"""Every shipped face pipeline keeps the one contract (sketchface/pipelines/base.py): loaded from the starter
checkpoints through the registry, each returns FaceOutput with num_images faces whose latents decode back to the
same faces, declares its capabilities, takes keyword-only options and refuses what it does not support by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sketchface.attributes import ATTRIBUTES, Attributes
from sketchface.pipelines.base import Capabilities, FaceOutput, FacePipeline
from sketchface.registry import ROOT, Registry, has_sketch_input

#: kind → (starter folder, expected capabilities; editable_attributes None = "the checkpoint's fitted directions")
SHIPPED = {
    "mvae": ("checkpoints/mvae-procedural-64", Capabilities(True, True, True, True, tuple(ATTRIBUTES))),
    "cvae": ("checkpoints/cvae-procedural-64", Capabilities(False, True, False, False, tuple(ATTRIBUTES))),
    "psp": ("checkpoints/psp-procedural-64", None),
    "translator": ("checkpoints/translator-celeba-mini-128", Capabilities(takes_sketch=True, words_with_sketch=True)),
    "layout_face": (
        "checkpoints/layout-celeba-mini-64",
        Capabilities(takes_words=True, editable_attributes=tuple(ATTRIBUTES)),
    ),
}


@pytest.fixture(scope="module")
def pipelines() -> dict[str, FacePipeline]:
    missing = [folder for folder, _ in SHIPPED.values() if not (ROOT / folder).is_dir()]
    assert not missing, f"starter checkpoints missing: {missing}"
    registry = Registry.discover({k: [folder] for k, (folder, _) in SHIPPED.items()}, env={}, defaults=False).load()
    out = {}
    for kind in SHIPPED:
        entry = registry.first(kind)
        assert entry is not None and entry.ok, (kind, entry and entry.reason)
        out[kind] = entry.pipeline
    return out


def _sketch() -> Image.Image:
    img = Image.new("L", (128, 128), 255)
    draw = ImageDraw.Draw(img)
    draw.ellipse((30, 20, 98, 108), outline=0, width=3)
    draw.line((45, 50, 58, 50), fill=0, width=3)
    draw.line((70, 50, 83, 50), fill=0, width=3)
    draw.line((50, 85, 78, 85), fill=0, width=3)
    return img


def _main_input(pipe: FacePipeline):
    return Attributes(Male=True, Eyeglasses=True) if pipe.capabilities.takes_words else _sketch()


def _arr(images) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


@pytest.mark.parametrize("kind", list(SHIPPED))
def test_call_returns_face_output_whose_latents_decode_to_the_same_faces(pipelines, kind):
    pipe = pipelines[kind]
    assert isinstance(pipe, FacePipeline)
    out = pipe(_main_input(pipe), num_images=3, seed=5)
    assert isinstance(out, FaceOutput) and len(out.images) == 3
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in out.images)
    again = pipe(_main_input(pipe), num_images=3, seed=5)
    assert np.array_equal(_arr(out.images), _arr(again.images)), "same seed, same faces"
    if kind == "translator":  # no latent space of its own: the faces depend on the sketch's features
        assert out.latents is None
        with pytest.raises(ValueError, match="no latent space"):
            pipe.decode(torch.zeros(1, 8))
        return
    assert isinstance(out.latents, torch.Tensor) and out.latents.shape[0] == 3
    redrawn = _arr(pipe.decode(out.latents))
    assert np.abs(redrawn - _arr(out.images)).max() <= 1, "decode(latents) redraws the faces"
    one = _arr(pipe.decode(out.latents[1:2]))[0]  # one row at a time draws it too
    assert np.abs(one - _arr(out.images)[1]).max() <= 1


@pytest.mark.parametrize("kind", list(SHIPPED))
def test_capabilities_are_declared(pipelines, kind):
    pipe = pipelines[kind]
    caps = pipe.capabilities
    assert isinstance(caps, Capabilities)
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.takes_sketch = not caps.takes_sketch
    expected = SHIPPED[kind][1]
    if expected is None:  # pSp: a sketch, an image encoder, and the directions fitted in the checkpoint
        fitted = tuple(pipe.psp.editable_attributes)
        expected = Capabilities(takes_sketch=True, has_image_encoder=True, editable_attributes=fitted)
        assert fitted, "the starter pSp has fitted attribute directions"
    assert caps == expected
    assert has_sketch_input(pipe) is caps.takes_sketch


@pytest.mark.parametrize("kind", list(SHIPPED))
def test_options_are_keyword_only_and_unsupported_ones_are_refused_by_name(pipelines, kind):
    pipe = pipelines[kind]
    x = _main_input(pipe)
    with pytest.raises(TypeError):
        pipe(x, 2)  # num_images must be named
    with pytest.raises(TypeError, match="colourfulness"):
        pipe(x, num_images=1, seed=0, colourfulness=2.0)
    with pytest.raises(ValueError, match="num_images"):
        pipe(x, num_images=0, seed=0)
    if not pipe.capabilities.weighs_description:
        err = ValueError if pipe.capabilities.takes_words else TypeError  # declared but refused / not an option
        with pytest.raises(err, match="description_weight"):
            pipe(x, num_images=1, seed=0, description_weight=2.0)
    if pipe.capabilities.takes_words and not pipe.capabilities.takes_sketch:
        with pytest.raises(ValueError, match="sketch"):
            pipe(x, num_images=1, seed=0, sketch=_sketch())
    if pipe.capabilities.editable_attributes:
        latents = pipe(x, num_images=1, seed=0).latents
        with pytest.raises(TypeError):
            pipe.edit(latents, {"Smiling": True}, 1.0)  # strength must be named


@pytest.mark.parametrize("kind", list(SHIPPED))
def test_encode_and_edit_follow_the_capabilities(pipelines, kind):
    pipe = pipelines[kind]
    caps = pipe.capabilities
    out = pipe(_main_input(pipe), num_images=2, seed=1)
    face = out.images[0]
    if caps.has_image_encoder:
        z = pipe.encode(face)
        assert z.shape[0] == 1 and len(pipe.decode(z)) == 1
    else:
        with pytest.raises(ValueError, match="no image encoder"):
            pipe.encode(face)
    if caps.editable_attributes:
        name = "Smiling" if "Smiling" in caps.editable_attributes else caps.editable_attributes[0]
        edited = pipe.edit(out.latents, {name: True}, strength=1.0)
        assert isinstance(edited, FaceOutput) and len(edited.images) == 2
        assert edited.latents.shape == out.latents.shape
        assert np.abs(_arr(pipe.decode(edited.latents)) - _arr(edited.images)).max() <= 1
    else:
        with pytest.raises(ValueError, match="no attribute edits"):
            pipe.edit(torch.zeros(1, 8), {"Smiling": True}, strength=1.0)
