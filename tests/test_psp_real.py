"""pSp on real photos in two stages (train/psp_real.py), tiny and on CPU."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from sketchface.models.psp import PSP
from sketchface.pipelines.sketch_to_face import SketchToFace
from tests.real_faces import write_celeba_layout

TINY = ["--style_dim", "16", "--max_channels", "8", "--encoder_channels", "4", "8", "8", "8", "--n_mlp", "1"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return write_celeba_layout(tmp_path_factory.mktemp("celeba"), n=12)


def _run(layout, out, *extra):
    from train import psp_real

    argv = [
        "--data_root", str(layout), "--output_dir", str(out), "--max_steps", "2", "--batch_size", "4",
        "--variants", "2", "--resolution", "32", "--eval_photos", "2", "--log_every", "1", "--warmup_steps", "1",
        "--precision", "fp32", "--adv_start", "1", *TINY, *extra,
    ]  # fmt: skip
    return psp_real.main(*psp_real.parse_args(argv))


def test_two_stages_give_a_sketch_psp_with_a_bank_of_real_styles(layout, tmp_path):
    ae = _run(layout, tmp_path / "ae", "--stage", "autoencoder")
    assert PSP.from_pretrained(str(ae)).cfg.in_channels == 3
    final = _run(layout, tmp_path / "sketch", "--stage", "sketch", "--autoencoder", str(ae), "--style_bank", "6")
    card = (final / "README.md").read_text()
    assert "non-commercial research" in card and "CBAM attention" in card
    psp = PSP.from_pretrained(str(final)).float()
    assert psp.cfg.in_channels == 1 and psp.style_bank.shape == (6, psp.n_styles, 16)
    assert float(psp.style_bank.abs().sum()) > 0 and float(psp.latent_avg.abs().sum()) > 0
    # the generator is the autoencoder's, untouched by the sketch stage
    gen_ae = PSP.from_pretrained(str(ae)).generator.state_dict()
    for k, v in psp.generator.state_dict().items():
        torch.testing.assert_close(v.float(), gen_ae[k].float(), msg=k)
    pipe = SketchToFace(psp)
    sketch = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(sketch).ellipse((12, 8, 52, 58), outline=0, width=2)
    faces = pipe(sketch, num_images=3, seed=0, mix_strength=1.0).images
    assert len({f.tobytes() for f in faces}) == 3  # fine styles from the bank vary the candidates


def test_the_sketch_stage_needs_the_autoencoder(layout, tmp_path):
    with pytest.raises(ValueError, match="--autoencoder"):
        _run(layout, tmp_path / "x", "--stage", "sketch")


def test_latent_only_steps_and_continuing_a_stage(layout, tmp_path):
    import json

    ae = _run(layout, tmp_path / "ae", "--stage", "autoencoder")
    more = _run(layout, tmp_path / "ae2", "--stage", "autoencoder", "--init_from", str(ae))
    assert "Started from" in (more / "README.md").read_text()
    out = tmp_path / "sketch"
    _run(layout, out, "--stage", "sketch", "--autoencoder", str(ae), "--latent_only_steps", "1", "--style_bank", "4")
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"step", "minutes", "latent"}  # the first step: the photo codes alone
    assert {"l2", "lpips", "attention"} <= set(rows[1])  # then paper 2's losses


def test_a_spatial_code_trains_through_both_stages_and_redraws_from_latents(layout, tmp_path):
    ae = _run(layout, tmp_path / "ae", "--stage", "autoencoder", "--spatial_resolution", "16")
    assert PSP.from_pretrained(str(ae)).cfg.spatial_resolution == 16
    out = tmp_path / "sketch"
    final = _run(layout, out, "--stage", "sketch", "--autoencoder", str(ae), "--style_bank", "4", "--augment", "flip")
    import json

    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"l2"' in line]
    assert rows and rows[0]["spatial"] > 0  # the sketch's spatial code is pulled towards the photo's
    card = (final / "README.md").read_text()
    assert "16-px spatial code" in card and "spatial code × 1.0" in card
    psp = PSP.from_pretrained(str(final)).float()
    assert psp.spatial and psp.encoder.spatial is not None
    pipe = SketchToFace(psp)
    sketch = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(sketch).ellipse((12, 8, 52, 58), outline=0, width=2)
    out = pipe(sketch, num_images=3, seed=0, mix_strength=1.0)
    assert len({f.tobytes() for f in out.images}) == 3  # the styles above the code still vary the candidates
    assert out.latents.shape[1] > psp.n_styles  # W+ and the spatial code, one tensor per face
    assert [f.tobytes() for f in pipe.decode(out.latents)] == [f.tobytes() for f in out.images]
    with pytest.raises(ValueError, match="spatial code"):
        pipe.decode(out.latents[:, : psp.n_styles])
