"""Text stylization: InstructPix2Pix on a tiny random pipeline, the offline path, and the latent editor."""

from __future__ import annotations

import json
import re
import string
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation import evaluate_edits as ev
from sketchface.attributes import ATTRIBUTES, HAIR_COLOURS, INDEX
from sketchface.pipelines.base import Capabilities, FaceOutput
from sketchface.pipelines.stylize import (
    MAX_INSTRUCTION_CHARS,
    AttributeNotEditable,
    BackendUnavailable,
    EditNotUnderstood,
    InstructPix2PixBackend,
    LatentEditor,
    Stylizer,
    StylizeResult,
    apply_edit_residual,
    as_rgb_image,
    check_instruction,
)
from tests.helpers import tiny_mvae_config, tiny_psp_config

# ---------------------------------------------------------------------------------------------
# A tiny randomly initialised InstructPix2Pix pipeline, built from configs here (no network).
# ---------------------------------------------------------------------------------------------


def _write_tiny_tokenizer(folder) -> None:
    """A character-level CLIP BPE vocabulary: every letter, with and without the end-of-word mark."""
    folder.mkdir(parents=True, exist_ok=True)
    letters = list(string.ascii_lowercase)
    vocab = ["<|startoftext|>", "<|endoftext|>", *letters, *(c + "</w>" for c in letters)]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


@pytest.fixture(scope="module")
def tiny_ip2p(tmp_path_factory):
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny-ip2p")
    _write_tiny_tokenizer(root / "tokenizer-src")
    tokenizer = transformers.CLIPTokenizer.from_pretrained(root / "tokenizer-src", model_max_length=32)

    torch.manual_seed(0)
    # InstructPix2Pix's UNet sees the noisy latents (4 ch) and the encoded input image (4 ch): in_channels=8.
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=8,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
    )
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),  # two blocks: vae_scale_factor 2
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = diffusers.EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    pipe = diffusers.StableDiffusionInstructPix2PixPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = root / "pipeline"
    pipe.save_pretrained(folder)
    return folder


def _face(size=(40, 30), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_instruct_pix2pix_tiny_pipeline_end_to_end(tiny_ip2p):
    backend = InstructPix2PixBackend(tiny_ip2p, device="cpu", steps=2)
    ok, reason = backend.available()
    assert ok, reason
    assert backend.pipe is None, "available() must not load the weights"

    calls = []
    face = _face((40, 30))
    result = backend.edit(face, "make the hair brown", seed=3, progress=lambda i, n: calls.append((i, n)))
    assert isinstance(result, StylizeResult)
    assert result.image.size == face.size and result.image.mode == "RGB"
    assert calls == [(1, 2), (2, 2)]
    assert result.backend == "instruct-pix2pix" and result.seed == 3
    assert result.params["working_size"] == 16  # unet sample_size 8 × vae scale factor 2
    assert result.params["steps"] == 2 and result.params["dtype"] == "float32"
    assert "make the hair brown" in result.caption

    again = backend.edit(face, "make the hair brown", seed=3, steps=2)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image)), "same seed → same image"
    other = backend.edit(face, "make the hair brown", seed=4, steps=2)
    assert not np.array_equal(np.asarray(other.image), np.asarray(result.image))


def test_instruct_pix2pix_runs_under_zero_gpu_when_spaces_is_installed(tiny_ip2p, monkeypatch):
    """On a ZeroGPU Space (the ``spaces`` package present) the diffusers call runs inside ``@spaces.GPU``; without
    the package the function is left as it is."""
    import types

    from sketchface.pipelines.stylize import zero_gpu

    def plain(x):
        return x

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert zero_gpu(plain) is plain
    held = []

    def gpu(duration):
        def wrap(fn):
            def run(*args, **kwargs):
                held.append(duration)  # the GPU is held while the function runs
                return fn(*args, **kwargs)

            return run

        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    backend = InstructPix2PixBackend(tiny_ip2p, device="cpu", steps=1)
    result = backend.edit(_face(), "make the hair brown", seed=0)
    assert held == [60] and result.image.size == _face().size


def test_instruct_pix2pix_through_stylizer(tiny_ip2p):
    stylizer = Stylizer(instruct_pix2pix=InstructPix2PixBackend(tiny_ip2p, device="cpu", steps=1))
    result = stylizer(_face((64, 64)), "add a hat", backend="instruct-pix2pix", seed=0, image_guidance_scale=1.2)
    assert result.image.size == (64, 64)
    assert result.params["image_guidance_scale"] == 1.2 and result.params["steps"] == 1
    status = stylizer.backends()
    assert status["instruct-pix2pix"][0] is True
    assert status["latent"][0] is False and "not configured" in status["latent"][1]


def test_offline_hub_id_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = InstructPix2PixBackend("sketchface-tests/no-such-instruct-pix2pix", device="cpu")
    t0 = time.perf_counter()
    ok, reason = backend.available()
    with pytest.raises(BackendUnavailable) as info:
        backend.edit(_face(), "make the hair brown")
    elapsed = time.perf_counter() - t0
    assert elapsed < 15.0, f"the offline answer took {elapsed:.1f} s"
    assert not ok
    message = str(info.value)
    assert "sketchface-tests/no-such-instruct-pix2pix" in message and "not in the local cache" in message
    assert "latent editor" in message and "hf download" in message
    assert backend.pipe is None


def test_unreachable_hub_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    backend = InstructPix2PixBackend("sketchface-tests/no-such-instruct-pix2pix", hub_timeout=1.0)
    t0 = time.perf_counter()
    ok, reason = backend.available()
    assert time.perf_counter() - t0 < 10.0
    assert not ok and "unreachable" in reason and "127.0.0.1:9" in reason


def test_bad_local_folders(tmp_path):
    missing = InstructPix2PixBackend(tmp_path / "nope")
    ok, reason = missing.available()
    assert not ok and "does not exist" in reason
    with pytest.raises(BackendUnavailable, match="does not exist"):
        missing.load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailable, match="model_index.json"):
        InstructPix2PixBackend(tmp_path / "empty").load()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model_index.json").write_text(json.dumps({"unet": ["diffusers", "UNet2DConditionModel"]}))
    with pytest.raises(BackendUnavailable, match="unet"):
        InstructPix2PixBackend(partial).load()


# ---------------------------------------------------------------------------------------------
# The latent editor with stand-ins for the parser and the model.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Edit:
    changes: dict
    matches: list = field(default_factory=list)
    unknown_words: list = field(default_factory=list)


_STAND_IN_WORDS = {
    "brown": {"Brown_Hair": True},
    "blond": {"Blond_Hair": True},
    "smile": {"Smiling": True},
    "glasses": {"Eyeglasses": True},
    "hat": {"Wearing_Hat": True},
    "mustache": {"Mustache": False},  # only used with "remove" here
}
_FILLER = {"make", "the", "hair", "her", "him", "add", "a", "remove", "and", "give"}


def stand_in_parser(text: str) -> _Edit:
    """Keyword stand-in for sketchface.attributes.parse_instruction (same result shape)."""
    changes, unknown = {}, []
    for word in re.findall(r"[a-z']+", text.lower()):
        if word in _STAND_IN_WORDS:
            changes.update(_STAND_IN_WORDS[word])
        elif word not in _FILLER:
            unknown.append(word)
    return _Edit(changes, unknown_words=unknown)


class StandInModel:
    """Stand-in face pipeline (the contract of AttributeToFace/SketchToFace): the latent of any face is one number,
    it decodes to a black face, and edit() draws one bright column per attribute switched on."""

    capabilities = Capabilities(has_image_encoder=True, editable_attributes=tuple(ATTRIBUTES))

    def __init__(self, size=32):
        self.size = size
        self.calls = []
        self.encoded = []  # the sizes of the faces it was given

    def encode(self, image):
        self.encoded.append(image.size)
        return torch.zeros(1, 1)

    def decode(self, latents):
        return [Image.new("RGB", (self.size, self.size)) for _ in latents]

    def edit(self, latents, changes, *, strength=1.0):
        self.calls.append({"latents": latents, "changes": dict(changes), "strength": strength})
        out = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        for name, on in changes.items():
            if on:
                out[:, INDEX[name] % self.size] = 255
        return FaceOutput([Image.fromarray(out)], latents)


def test_latent_editor_hair_colour_and_size():
    model = StandInModel()
    editor = LatentEditor(model, parser=stand_in_parser, keep_details=False)  # the model's whole face comes back
    face = _face((64, 64))
    result = editor.edit(face, "make the hair brown", seed=7)
    assert result.backend == "latent" and result.seed == 7
    assert result.changes["Brown_Hair"] is True
    assert all(result.changes[c] is False for c in HAIR_COLOURS if c != "Brown_Hair")
    assert result.unknown_words == []
    assert result.image.size == (64, 64) and result.params["model_size"] == [32, 32]
    assert model.calls[-1]["changes"] == result.changes and model.encoded[-1] == (64, 64)
    assert model.calls[-1]["strength"] == 1.0  # strength None: the model's own default
    col = np.asarray(result.image.resize((32, 32), Image.NEAREST))[:, INDEX["Brown_Hair"] % 32]
    assert col.min() > 200, "the model's output is what comes back"
    assert "brown hair on" in result.caption and "Seed 7" in result.caption
    json.dumps(result.to_metadata())


def test_latent_editor_several_edits_and_unused_words():
    editor = LatentEditor(StandInModel(), parser=stand_in_parser)
    result = editor(_face((32, 32)), "add glasses and a hat, remove the mustache, with blue eyes")
    assert result.changes == {"Eyeglasses": True, "Mustache": False, "Wearing_Hat": True}
    assert list(result.changes) == sorted(result.changes, key=INDEX.get), "official order"
    assert result.unknown_words == ["with", "blue", "eyes"]
    assert "'blue'" in result.caption and "Not used" in result.caption


def test_latent_editor_nothing_understood():
    model = StandInModel()
    editor = LatentEditor(model, parser=stand_in_parser)
    with pytest.raises(EditNotUnderstood) as info:
        editor.edit(_face(), "blue eyes please")
    assert info.value.unknown_words == ["blue", "eyes", "please"]
    assert "'blue'" in str(info.value) and "InstructPix2Pix" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert model.calls == [], "nothing must be edited"


def test_latent_editor_explicit_changes_and_bad_names():
    model = StandInModel()
    editor = LatentEditor(model, parser=stand_in_parser)
    result = editor.edit(_face(), "", changes={"Gray_Hair": True})
    assert result.changes["Gray_Hair"] and not result.changes["Black_Hair"]
    with pytest.raises(ValueError, match="not a CelebA attribute"):
        LatentEditor(model, parser=lambda t: _Edit({"Blue_Eyes": True})).edit(_face(), "blue eyes")
    with pytest.raises(TypeError, match="edit"):
        LatentEditor(object())

    class NoEncoder(StandInModel):  # like the cross-modal VAE: it cannot read the face to edit
        capabilities = Capabilities(editable_attributes=tuple(ATTRIBUTES))

    with pytest.raises(ValueError, match="no image encoder"):
        LatentEditor(NoEncoder())


def test_instruction_length_limit(tiny_ip2p):
    long = "make the hair brown " * 30
    assert len(long.strip()) > MAX_INSTRUCTION_CHARS
    stylizer = Stylizer(
        LatentEditor(StandInModel(), parser=stand_in_parser), InstructPix2PixBackend(tiny_ip2p, device="cpu")
    )
    for backend in ("latent", "instruct-pix2pix"):
        with pytest.raises(ValueError, match="at most 500"):
            stylizer(_face(), long, backend=backend)
    assert stylizer.instruct_pix2pix.pipe is None, "refused before loading anything"
    assert check_instruction("x" * MAX_INSTRUCTION_CHARS) == "x" * MAX_INSTRUCTION_CHARS
    with pytest.raises(ValueError, match="empty"):
        check_instruction("   ")


def test_stylizer_backend_choice():
    model = StandInModel()
    stylizer = Stylizer(LatentEditor(model, parser=stand_in_parser))
    result = stylizer(_face(), "make her smile", seed=2, strength=0.5)
    assert result.backend == "latent" and result.changes == {"Smiling": True}
    assert model.calls[-1]["strength"] == 0.5
    with pytest.raises(ValueError, match="Unknown backend"):
        stylizer(_face(), "make her smile", backend="dall-e")
    with pytest.raises(BackendUnavailable, match="not configured"):
        stylizer(_face(), "make her smile", backend="instruct-pix2pix")
    with pytest.raises(ValueError):
        Stylizer(default="nope")


def test_as_rgb_image_conversions():
    assert as_rgb_image(np.zeros((8, 6, 3), np.uint8)).size == (6, 8)
    assert as_rgb_image(torch.ones(1, 3, 5, 7)).getpixel((0, 0)) == (255, 255, 255)
    assert as_rgb_image([Image.new("L", (4, 4))]).mode == "RGB"
    with pytest.raises(TypeError):
        as_rgb_image("face.png")


def test_real_instruction_parser():
    editor = LatentEditor(StandInModel())
    changes, unknown = editor.parse("make the hair brown")
    assert changes["Brown_Hair"] is True and changes["Black_Hair"] is False
    assert editor.parse("remove the mustache")[0].get("Mustache") is False
    assert editor.parse("add a hat")[0].get("Wearing_Hat") is True
    assert editor.parse("make her smile")[0].get("Smiling") is True
    several, _ = editor.parse("add glasses and make the hair blond")
    assert several.get("Eyeglasses") is True and several.get("Blond_Hair") is True
    with pytest.raises(EditNotUnderstood) as info:
        editor.parse("blue eyes")
    assert "blue" in info.value.unknown_words
    partial, unknown = editor.parse("make the hair brown with blue eyes")
    assert partial["Brown_Hair"] is True and "blue" in unknown


# ---------------------------------------------------------------------------------------------
# evaluation/evaluate_edits.py end to end in a "cell world": attribute k is the brightness of cell k.
# ---------------------------------------------------------------------------------------------


_CELL = 8  # 64 px face = 8 × 8 cells of 8 px; cells 0..39 hold the attributes


def _cell_slices(k):
    r, c = divmod(k, 8)
    return slice(r * _CELL, (r + 1) * _CELL), slice(c * _CELL, (c + 1) * _CELL)


def cell_face(force, seed, size):
    rng = np.random.default_rng(seed)
    labels = rng.random(40) < 0.3
    for name, value in force.items():
        labels[INDEX[name]] = value
    img = rng.integers(0, 40, (size, size, 3)).astype(np.int16) + 100  # the "identity": per-seed texture
    for k, on in enumerate(labels):
        ys, xs = _cell_slices(k)
        img[ys, xs] += 80 if on else -80
    return img.clip(0, 255).astype(np.uint8)


class CellEditor:
    """Stand-in face pipeline whose latent is the picture itself (1, H, W, 3): edit() flips the requested cells
    (``broken=True`` leaves the latent unchanged)."""

    capabilities = Capabilities(has_image_encoder=True, editable_attributes=tuple(ATTRIBUTES))

    def __init__(self, broken=False):
        self.broken = broken

    def encode(self, image):
        return torch.from_numpy(np.asarray(image, dtype=np.int16).copy())[None]

    def decode(self, latents):
        return [Image.fromarray(z.numpy().clip(0, 255).astype(np.uint8)) for z in latents]

    def edit(self, latents, changes, *, strength=1.0):
        arr = latents[0].numpy().copy()
        if not self.broken:
            for name, on in changes.items():
                ys, xs = _cell_slices(INDEX[name])
                present = arr[ys, xs].mean() > 120
                if present != on:
                    arr[ys, xs] += 160 if on else -160
        edited = torch.from_numpy(arr)[None]
        return FaceOutput(self.decode(edited), edited)


class CellClassifier:
    def predict(self, x):  # (B, 3, 64, 64) in [0, 1] → (B, 40) probabilities
        cells = torch.stack([x[:, :, ys, xs].mean(dim=(1, 2, 3)) for ys, xs in map(_cell_slices, range(40))], 1)
        return (cells - 120 / 255).mul(20).sigmoid()


def pixel_identity(a, b):
    fa, fb = (t.flatten(1) - t.flatten(1).mean(1, keepdim=True) for t in (a, b))
    return torch.nn.functional.cosine_similarity(fa, fb).numpy()


def test_evaluate_edits_end_to_end(tmp_path):
    assert len(ev.INSTRUCTIONS) >= 40
    assert len({a for _, t in ev.INSTRUCTIONS for a in t}) >= 15
    assert all(a in INDEX for _, t in ev.INSTRUCTIONS for a in t)
    intended = dict(ev.INSTRUCTIONS)

    def oracle_parser(text):  # the intended changes, except one instruction it "does not understand"
        return _Edit({} if text == "add a double chin" else intended[text], unknown_words=[])

    cfg = ev.EvalEditsConfig(out_dir=str(tmp_path / "out"), faces_per_instruction=2, latency_repeats=2, grid_faces=2)
    editor = LatentEditor(CellEditor(), parser=oracle_parser)
    report, befores, afters = ev.run_evaluation(cfg, editor, CellClassifier(), pixel_identity, face_source=cell_face)
    n = len(ev.INSTRUCTIONS)
    assert report["n_edits"] == 2 * n and len(afters) == 2 * n
    assert report["change_seen"] == pytest.approx((n - 1) / n)
    assert report["not_understood"] == ["add a double chin"]
    assert report["untouched_kept"] == 1.0
    assert report["per_attribute"]["Double_Chin"]["change_seen"] == 0.0
    assert report["per_attribute"]["Eyeglasses"]["change_seen"] == 1.0
    assert report["identity_edited"] > report["identity_different_person"] + 0.2
    assert befores[0].size == (64, 64) and report["latency_ms"]["p50"] > 0

    out = ev.write_outputs(report, befores, afters, cfg.out_dir, cfg.grid_faces)
    saved = json.loads((out / "edits.json").read_text())
    assert saved["change_seen"] == report["change_seen"]
    md = (out / "edits.md").read_text()
    assert "| eyeglasses |" in md and "add a double chin" in md
    grid = Image.open(out / "edits_grid.png")
    assert grid.width > 4 * 96 and grid.height > len(ev.GRID_INSTRUCTIONS) * 96

    broken = LatentEditor(CellEditor(broken=True), parser=oracle_parser)
    bad, _, _ = ev.run_evaluation(cfg, broken, CellClassifier(), None, face_source=cell_face)
    assert bad["change_seen"] == 0.0 and bad["identity_edited"] is None


def test_evaluate_edits_args():
    cfg = ev.parse_args(["--editor", "x", "--classifier", "y", "--no-identity", "--faces_per_instruction", "3"])
    assert cfg.identity is False and cfg.faces_per_instruction == 3 and cfg.start_seed == 10_000_000


def test_latent_editor_edits_the_encoded_latent_and_decodes_it():
    class WPlusModel:  # like SketchToFace: encode(image) → W+, edit(w_plus, changes) → FaceOutput, decode(W+)
        capabilities = Capabilities(has_image_encoder=True, editable_attributes=("Eyeglasses",))

        def __init__(self):
            self.seen, self.decoded = None, None

        def encode(self, image):
            return torch.full((1, 10, 4), float(np.asarray(image).mean()))

        def decode(self, latents):
            self.decoded = latents
            return [Image.new("RGB", (16, 16), (200, 200, 200))]

        def edit(self, w_plus, changes, *, strength=1.0):
            self.seen = w_plus
            return FaceOutput([Image.new("RGB", (16, 16), (9, 9, 9))], w_plus + 1)

    model = WPlusModel()
    face = _face((16, 16))
    result = LatentEditor(model, parser=stand_in_parser).edit(face, "add glasses")
    assert isinstance(model.seen, torch.Tensor) and model.seen.shape == (1, 10, 4)
    assert model.decoded is model.seen, "the unedited rendering is the decoded latent of the face"
    assert result.image.getpixel((0, 0)) == (9, 9, 9)
    plain = LatentEditor(model, parser=stand_in_parser, keep_details=False).edit(face, "add glasses")
    assert plain.image.getpixel((0, 0)) == (9, 9, 9)


@pytest.mark.slow
def test_real_instruct_pix2pix_if_cached():
    """The real timbrooks/instruct-pix2pix (GPU recommended): runs only where its weights are available."""
    backend = InstructPix2PixBackend(allow_download=False, steps=10)
    ok, reason = backend.available()
    if not ok:
        pytest.skip(reason)
    face = _face((64, 64))
    result = backend.edit(face, "make the hair brown", seed=0)
    assert result.image.size == (64, 64) and result.params["working_size"] == 512


def test_latent_editor_respects_editable_attributes():
    class Directions(StandInModel):  # like SketchToFace: directions fitted for a few attributes only
        capabilities = Capabilities(has_image_encoder=True, editable_attributes=("Brown_Hair", "Eyeglasses", "Smiling"))

    model = Directions()
    editor = LatentEditor(model, parser=stand_in_parser)
    result = editor.edit(_face(), "make the hair brown and add a hat")
    assert model.calls[-1]["changes"] == {"Brown_Hair": True}
    assert set(result.params["not_editable"]) == {"Black_Hair", "Blond_Hair", "Gray_Hair", "Wearing_Hat"}
    assert "cannot edit" in result.caption and "wearing hat" in result.caption
    with pytest.raises(AttributeNotEditable, match="cannot edit wearing hat"):
        editor.edit(_face(), "add a hat")


def test_latent_editor_with_tiny_sketch_to_face():
    """Integration with the real SketchToFace (random tiny pSp; one fitted direction): encode → W+ edit → decode."""

    from sketchface.models import psp as psp_mod
    from sketchface.pipelines import sketch_to_face as s2f

    torch.manual_seed(0)
    cfg = tiny_psp_config(32)
    psp = psp_mod.PSP(cfg)
    i = INDEX["Eyeglasses"]
    psp.directions[i] = torch.nn.functional.normalize(torch.randn(16), dim=0)
    psp.direction_scales[i] = 1.0
    pipe = s2f.SketchToFace(psp)
    face = pipe(Image.new("L", (32, 32), 255), num_images=1, seed=0).images[0]  # read through its computed sketch

    editor = LatentEditor(pipe, parser=stand_in_parser, strength=3.0)
    result = editor.edit(face, "add glasses", seed=0)
    assert result.image.size == face.size and result.changes == {"Eyeglasses": True}
    diff = np.abs(np.asarray(result.image, np.int16) - np.asarray(face, np.int16)).mean()
    assert diff > 1.0, "moving W+ along the direction changes the face"
    with pytest.raises(AttributeNotEditable):
        editor.edit(face, "add a hat")


def test_apply_edit_residual_takes_only_the_changed_region():
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    recon = np.full((16, 16, 3), 120, np.uint8)
    edited = recon.copy()
    edited[2:6, 2:6] = 250  # the edit changed one 4 x 4 patch of the model's 16 x 16 rendering
    out = np.asarray(apply_edit_residual(source, Image.fromarray(edited), Image.fromarray(recon), grow=1))
    assert out.shape == (64, 64, 3)
    src = np.asarray(source)
    assert np.array_equal(out[40:, 40:], src[40:, 40:]), "untouched regions are the source, pixel for pixel"
    assert np.abs(out[12:20, 12:20].astype(int) - 250).max() <= 2, "the changed region comes from the edit"
    # nothing changed (strength 0): the source comes back unchanged
    same = apply_edit_residual(source, Image.fromarray(recon), Image.fromarray(recon))
    assert np.array_equal(np.asarray(same), src)
    # a change below the threshold is decoder noise, not an edit
    noisy = recon.copy()
    noisy[::2] += 10  # 10 / 255 < floor = 0.04
    assert np.array_equal(np.asarray(apply_edit_residual(source, Image.fromarray(noisy), Image.fromarray(recon))), src)
    # thresholds are relative to the strongest change: a faint edit (thin frames) is carried over in full
    faint = recon.copy()
    faint[8:12, 8:12] += 26  # 0.10
    out = np.asarray(apply_edit_residual(source, Image.fromarray(faint), Image.fromarray(recon), grow=1))
    assert np.abs(out[36:44, 36:44].astype(int) - 146).max() <= 1
    assert np.array_equal(out[:24, :24], src[:24, :24])


def test_latent_editor_keeps_details_outside_the_edit():
    """With keep_details (the default) the editor returns the input's own pixels where the model changed nothing."""

    class Painter:  # "decodes" a flat face; the edit paints a square where glasses would go
        capabilities = Capabilities(has_image_encoder=True, editable_attributes=("Eyeglasses",))

        def encode(self, image):
            return torch.zeros(1, 1)

        def decode(self, latents):
            return [Image.new("RGB", (16, 16), (120, 120, 120))]

        def edit(self, latents, changes, *, strength=1.0):
            out = np.full((16, 16, 3), 120, np.uint8)
            out[6:9, 3:13] = (20, 20, 20)
            return FaceOutput([Image.fromarray(out)], latents)

    face = _face((64, 64))
    result = LatentEditor(Painter(), parser=stand_in_parser).edit(face, "add glasses")
    out, src = np.asarray(result.image), np.asarray(face)
    assert result.params["keep_details"] is True
    assert np.array_equal(out[48:], src[48:]) and np.array_equal(out[:12], src[:12])
    assert out[28:34, 20:44].max() <= 30, "the painted region replaces the input there"
    plain = LatentEditor(Painter(), parser=stand_in_parser, keep_details=False).edit(face, "add glasses")
    assert plain.params["keep_details"] is False and not np.array_equal(np.asarray(plain.image)[48:], src[48:])


def test_latent_editor_with_tiny_attribute_to_face(tmp_path):
    """Integration with the real AttributeToFace (random tiny MVAE) and main() of evaluate_edits on checkpoints."""
    from sketchface.models import mvae
    from sketchface.pipelines import attribute_to_face as a2f

    torch.manual_seed(0)
    cfg = tiny_mvae_config(16)
    pipe = a2f.AttributeToFace(mvae.MVAE(cfg))
    editor = LatentEditor(pipe, parser=stand_in_parser, keep_details=False)
    face = _face((48, 48))
    weak = editor.edit(face, "make the hair blond", strength=0.0)
    strong = editor.edit(face, "make the hair blond", strength=1.0)
    assert strong.image.size == (48, 48) and strong.params["model_size"] == [16, 16]
    assert strong.changes["Blond_Hair"] is True and strong.params["strength"] == 1.0
    assert not np.array_equal(np.asarray(weak.image), np.asarray(strong.image)), "strength reaches the model"

    # The evaluation command end to end on saved (untrained) checkpoints, procedural faces and the real parser.
    from sketchface.models import classifier as classifier_mod

    pipe.model.save_pretrained(tmp_path / "mvae")
    clf = classifier_mod.AttributeClassifier(classifier_mod.ClassifierConfig(image_size=16, stem_width=4, widths=[8]))
    clf.save_pretrained(tmp_path / "clf")
    argv = ["--editor", str(tmp_path / "mvae"), "--classifier", str(tmp_path / "clf"), "--out_dir", str(tmp_path)]
    argv += ["--faces_per_instruction", "1", "--size", "32", "--latency_repeats", "2", "--no-identity"]
    report = ev.main(ev.parse_args([*argv, "--max_instructions", "8"]))
    assert report["n_edits"] == 8 and report["parser_agreement"] == 1.0
    assert 0.0 <= report["change_seen"] <= 1.0 and report["identity_edited"] is None
    assert (tmp_path / "edits.md").is_file() and (tmp_path / "edits_grid.png").is_file()


def test_evaluate_edits_with_instruct_pix2pix(tiny_ip2p, tmp_path):
    """The evaluation runs InstructPix2Pix too (tiny random pipeline, three instructions, cell-world judge)."""
    cfg = ev.EvalEditsConfig(faces_per_instruction=1, latency_repeats=1, ip2p_steps=1, size=64)
    backend = InstructPix2PixBackend(tiny_ip2p, device="cpu")
    short = ev.INSTRUCTIONS[:2]
    report, befores, afters = ev.run_evaluation(
        cfg, backend, CellClassifier(), pixel_identity, face_source=cell_face, instructions=short
    )
    assert report["backend"] == "instruct-pix2pix" and report["n_edits"] == 2
    assert report["parser_agreement"] is None and all(r["changes"] == {} for r in report["records"])
    assert all(a.size == (64, 64) for a in afters)
    md = ev.to_markdown(report)
    assert md.startswith("InstructPix2Pix") and "parser" not in md
    ev.write_outputs(report, befores, afters, tmp_path, grid_faces=1)
    assert (tmp_path / "edits_grid.png").is_file()


def test_cached_hub_id_works_offline(tiny_ip2p, tmp_path, monkeypatch):
    """A Hub id whose snapshot is in the Hugging Face cache loads with HF_HUB_OFFLINE=1 (the deployed path)."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--sketchface-tests--tiny-ip2p"
    shutil.copytree(tiny_ip2p, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = InstructPix2PixBackend("sketchface-tests/tiny-ip2p", cache_dir=tmp_path / "hub", device="cpu", steps=1)
    ok, reason = backend.available()
    assert ok and "found locally" in reason, reason
    assert backend.edit(_face((32, 32)), "add a hat").image.size == (32, 32)
    ok, reason = InstructPix2PixBackend("sketchface-tests/other", cache_dir=tmp_path / "hub").available()
    assert not ok and "not in the local cache" in reason
