"""The Gradio Blocks build without launching; handlers, the registry and PNG export work on tiny models."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import app
import app_handlers.compare
import app_handlers.sketch
from app_handlers.common import _sentence, _short
from sketchface.attributes import ATTRIBUTES, PRESETS
from sketchface.export import AI_LABEL, add_caption, labelled_grid, read_metadata, remove_caption, save_png
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.registry import KINDS, Registry, split_sources

API_NAMES = {
    "parse",
    "preset",
    "describe",
    "more_like_this",
    "cross",
    "restore_round",
    "send_to_stylize",
    "sketch_preview",
    "sketch",
    "sketch_send_to_stylize",
    "stylize_load",
    "stylize",
    "backends",
    "compare",
    "metrics",
    "models",
}


@pytest.fixture(scope="module")
def demo(app_registry):
    return app.build_demo(app_registry)


def test_blocks_build_with_every_tab_and_endpoint(demo):
    assert isinstance(demo, gr.Blocks)
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert API_NAMES <= names, f"missing endpoints: {API_NAMES - names}"
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Describe", "Sketch", "Stylize", "Compare", "Models"]
    radios = [b for b in demo.blocks.values() if isinstance(b, gr.Radio) and "tri" in (b.elem_classes or [])]
    assert len(radios) == len(ATTRIBUTES)
    assert demo.fns[next(k for k, f in demo.fns.items() if f.api_name == "stylize")].concurrency_limit == 1


def test_build_without_any_model_says_what_is_missing():
    empty = Registry.discover({}, env={}, root="/nonexistent", defaults=False)
    demo = app.build_demo(empty)
    text = " ".join(str(b.value) for b in demo.blocks.values() if isinstance(b, gr.Markdown))
    assert "No attribute-to-face model is configured" in text
    assert "No sketch-to-face model is configured" in text
    with pytest.raises(gr.Error, match="No attribute-to-face model is loaded"):
        demo.handlers.generate("young man", *["?"] * 40, None, 4, 0, False, {})


def test_parse_updates_controls_and_lists_unknown_words(demo):
    out = demo.handlers.parse("young man with glasses and a flibbertigibbet")
    radios, md = out[: len(ATTRIBUTES)], out[len(ATTRIBUTES)]  # then the new reading (a gr.State)
    values = dict(zip(ATTRIBUTES, radios))
    assert values["Male"] == "yes" and values["Eyeglasses"] == "yes" and values["Young"] == "yes"
    assert values["Bald"] == "?"
    assert "flibbertigibbet" in md and "Not understood" in md
    text, *rest = demo.handlers.preset("Criminal 1")
    assert text == PRESETS["Criminal 1"].text and dict(zip(ATTRIBUTES, rest[:-1]))["Mustache"] == "yes"


def test_generate_variations_cross_and_history(demo):
    h = demo.handlers
    radios = ["?"] * len(ATTRIBUTES)
    with pytest.raises(gr.Error, match="Nothing to go on"):
        h.generate("", *radios, None, 4, 0, False, {})
    gallery, state, status, *_ = h.generate("gray hair", *radios, None, 4, 3, True, {})
    assert len(gallery) == 4 and len(h.history_view(state)[0]) == 1 and "4 candidates" in status
    meta = read_metadata(gallery[0][0])
    assert meta["seed"] == 3 and meta["attributes"]["Gray_Hair"] is True and meta["label"] == AI_LABEL
    assert meta["description_weight"] == DESCRIPTION_WEIGHT  # the tiny model is an MVAE
    plain, *_ = h.generate("gray hair", *radios, None, 2, 3, False, {}, 1.0)  # "Advanced": the plain PoE
    assert read_metadata(plain[0][0])["description_weight"] == 1.0
    with pytest.raises(gr.Error, match="description_weight must be a positive number"):
        h.generate("gray hair", *radios, None, 2, 3, False, {}, -1.0)
    with Image.open(gallery[0][0]) as img:  # gallery files: the model's size, label in the text chunks
        assert img.text["Description"] == AI_LABEL and img.size == (32, 32)
    with Image.open(app.download_copy(gallery[0][0], caption=True)) as img:  # download: enlarged, strip below
        assert img.width == 256 and img.height > 256 and read_metadata(img.filename)["seed"] == 3
    gallery, state, *_ = h.more_like_this(2, 0.3, 3, 0, None, False, state)
    assert (
        len(gallery) == 3
        and len(h.history_view(state)[0]) == 2
        and read_metadata(gallery[0][0])["parent"]["candidate"] == 2
    )
    with pytest.raises(gr.Error, match="two different picks"):
        h.cross(1, 1, 2, 0, None, False, state)
    gallery, state, *_ = h.cross(1, 3, 2, 0, None, False, state)
    assert len(gallery) == 2 and [label for _, label in h.history_view(state)[0]][2].startswith("Round 3: #1 × #3")
    gallery, state, *_ = h.restore_round(1, state)
    assert state["current"] == 0 and len(gallery) == 4
    with pytest.raises(gr.Error, match="no round 9"):
        h.restore_round(9, state)
    with pytest.raises(gr.Error, match="no candidate #9"):
        h.more_like_this(9, 0.3, 2, 0, None, False, state)


def test_export_png_metadata_caption_and_grid(tmp_path):
    img = Image.new("RGB", (64, 64), (200, 10, 10))
    path = save_png(img, tmp_path, "x", {"model": "m", "seed": 5, "instruction": "add glasses"}, caption=False)
    meta = read_metadata(path)
    assert meta["model_size"] == [64, 64] and meta["instruction"] == "add glasses" and meta["seed"] == 5
    with Image.open(path) as out:
        assert out.size == (256, 256) and out.text["seed"] == "5" and out.text["Software"] == "SketchFace"
    captioned = add_caption(img.resize((256, 256)))
    assert captioned.width == 256 and captioned.height > 256
    strip = captioned.crop((0, 256, 256, captioned.height)).convert("L")
    assert min(strip.getdata()) < 100, "the caption strip has dark text"
    grid = labelled_grid([[img, None], [img, img]], ["a", "b"], ["c1", "c2"], cell=64, footer=None)
    assert grid.width > 128 and grid.height > 128
    # several candidates per cell: side by side; a column is as wide as its longest set, columns 64 // 8 px apart
    strips = labelled_grid(
        [[[img, img, img], None], [[img], [img, img]]], ["a", "b"], ["c1", "c2"], cell=64, footer=None
    )
    assert strips.width - grid.width == (3 - 1) * 64 + (2 - 1) * 64 + 8 and strips.height == grid.height
    with pytest.raises(ValueError):
        labelled_grid([[img]], ["a", "b"], ["c"])
    assert json.loads(Image.open(path).text["sketchface"])["label"] == AI_LABEL
    strip_path = save_png(img, tmp_path, "y", {"seed": 1}, caption=True)
    with Image.open(strip_path) as captioned_file:
        assert captioned_file.height > 256 and remove_caption(captioned_file).size == (256, 256)
    assert remove_caption(img) is img


def test_registry_discovery_flags_env_and_unavailable(tmp_path):
    assert split_sources(["a, b", "c"]) == ["a", "b", "c"] and split_sources(None) == []
    (tmp_path / "checkpoints" / "mvae-procedural-64").mkdir(parents=True)
    reg = Registry.discover({}, env={"SKETCHFACE_PSP": "does/not-exist-offline"}, root=tmp_path)
    by_kind = {e.kind: e for e in reg.entries}
    assert by_kind["mvae"].origin == "local folder" and by_kind["mvae"].from_default
    assert by_kind["psp"].origin == "Hugging Face Hub" and not by_kind["psp"].from_default
    assert "cvae" not in by_kind and by_kind["instruct_pix2pix"].status == "lazy"
    reg = Registry.discover({"mvae": ["./no/such/folder"]}, env={}, root=tmp_path, defaults=False)
    assert reg.entries[0].status == "unavailable" and "neither a local folder" in reg.entries[0].reason
    reg.load()
    assert reg.loaded() == [] and {k.name for k in reg.missing_kinds()} == set(KINDS)
    # An empty folder: loading fails with the reason recorded, never raised.
    empty = tmp_path / "empty"
    empty.mkdir()
    reg = Registry.discover({"psp": [str(empty)]}, env={}, root=tmp_path, defaults=False).load()
    assert reg.entries[0].status == "unavailable" and reg.entries[0].reason


def test_cli_flags_parse():
    args = app.parse_args(["--mvae", "a", "--mvae", "b,c", "--psp", "owner/repo", "--port", "7999"])
    assert args.mvae == ["a", "b,c"] and args.psp == ["owner/repo"] and args.port == 7999 and args.share is False
    assert args.instruct_pix2pix is None


def test_attribute_agreement_counts_met_requests():
    import torch

    from sketchface.attributes import INDEX
    from sketchface.registry import attribute_agreement

    class Fixed(torch.nn.Module):  # predicts Male present, Eyeglasses absent, for every image
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def predict(self, x):
            p = torch.full((x.shape[0], len(ATTRIBUTES)), 0.2)
            p[:, INDEX["Male"]] = 0.9
            return p

    faces = [Image.new("RGB", (32, 32))] * 2
    got = attribute_agreement(Fixed(), faces, {"Male": True, "Eyeglasses": True, "Bald": False, "Young": None})
    assert got == [(2, 3), (2, 3)]
    assert attribute_agreement(Fixed(), faces, {}) == [(0, 0), (0, 0)]


def test_prune_outputs_removes_only_old_day_folders(tmp_path):
    from datetime import date

    for name in ("20261101", "20261119", "20261120", "20261122", "notes", "20261399"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "candidate-1.png").write_bytes(b"png")
    (tmp_path / "20261001.png").write_bytes(b"a file, not a day folder")
    removed = app.prune_outputs(tmp_path, keep_days=2, today=date(2026, 11, 22))
    assert sorted(removed) == ["20261101", "20261119"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["20261001.png", "20261120", "20261122", "20261399", "notes"]
    assert app.prune_outputs(tmp_path / "missing") == []


def _spy_description_weight(h, monkeypatch):
    """(the loaded attribute model's entry, the description weights its pipeline is called with, in order)."""
    entry = next(e for e in h.registry.loaded("attributes"))
    cls, original, seen = type(entry.pipeline), type(entry.pipeline).__call__, []

    def spy(self, attributes=None, *, description_weight=None, **options):
        seen.append(description_weight)
        return original(self, attributes, description_weight=description_weight, **options)

    monkeypatch.setattr(cls, "__call__", spy)
    return entry, seen


def test_sketch_tab_passes_the_description_weight_to_the_mvae(demo, monkeypatch):
    h = demo.handlers
    entry, seen = _spy_description_weight(h, monkeypatch)
    sketch = Image.new("L", (128, 128), 255)
    draw = ImageDraw.Draw(sketch)
    draw.ellipse((30, 20, 98, 108), outline=0, width=3)  # a face outline, eyes and a mouth
    draw.line((45, 50, 58, 50), fill=0, width=3)
    draw.line((70, 50, 83, 50), fill=0, width=3)
    draw.line((50, 85, 78, 85), fill=0, width=3)
    args = (None, sketch, "sketch", entry.key, "glasses", 2, 0, 0.5, False)
    # the upload is the PIL image itself
    monkeypatch.setattr(app_handlers.sketch, "open_image", lambda value, what="image", **_: value)
    gallery, *_ = h.sketch_generate(*args, 2.5)
    assert seen == [2.5] and read_metadata(gallery[0][0])["description_weight"] == 2.5
    gallery, *_ = h.sketch_generate(*args)  # the API default
    assert seen[-1] == DESCRIPTION_WEIGHT
    with pytest.raises(gr.Error, match="description_weight must be a positive number"):
        h.sketch_generate(*args, 0)


def test_compare_tab_draws_with_the_description_weight(demo, monkeypatch):
    h = demo.handlers
    _, seen = _spy_description_weight(h, monkeypatch)
    grid, status = h.compare("", 0, False, 4.5)
    assert set(seen) == {4.5} and len(seen) == len(PRESETS)  # every cell of the MVAE's row
    assert read_metadata(grid)["description_weight"] == 4.5 and "description weight 4.5" in status
    h.compare("", 0, False)  # the API default
    assert seen[-1] == DESCRIPTION_WEIGHT
    with pytest.raises(gr.Error, match="description_weight must be a positive number"):
        h.compare("", 0, False, -1)


def test_compare_tab_shows_several_candidates_per_description(demo):
    h = demo.handlers
    one, _ = h.compare("", 0, False)
    four, status = h.compare("bald man", 0, False, None, 4)
    meta = read_metadata(four)
    assert meta["candidates"] == 4 and len(meta["columns"]) == len(PRESETS) + 1 and "× 4 candidates" in status
    with Image.open(one) as a, Image.open(four) as b:
        # 4 columns of 4 faces at 96 px against 3 single faces at 128 px, wrapped to at most 1400 px (two bands)
        assert 2 * a.width < b.width <= 1400 and b.height > a.height
    with pytest.raises(gr.Error, match="Candidates per description must be 1 to 8"):
        h.compare("", 0, False, None, 0)
    with pytest.raises(gr.Error, match="at most 8 extra descriptions .*got 9"):  # a pasted list: no giant grid
        h.compare("\n".join(["bald man"] * 9), 0, False)


@pytest.mark.parametrize("seed", [None, "", float("nan"), 1.5, -1, 2**64, "seven"])
def test_bad_seeds_get_a_clear_error(seed):
    with pytest.raises(gr.Error, match="seed"):
        app.parse_seed(seed)


def test_seeds_the_boxes_send_are_whole_numbers():
    assert app.parse_seed(7) == 7 and app.parse_seed(7.0) == 7 and app.parse_seed("12") == 12
    assert app.parse_seed(app.MAX_SEED) == app.MAX_SEED


def test_handlers_refuse_an_empty_seed_box(demo):
    h = demo.handlers
    with pytest.raises(gr.Error, match="seed box is empty"):
        h.generate("bald man", *(["?"] * len(ATTRIBUTES)), None, 2, None, False, {})
    with pytest.raises(gr.Error, match="seed box is empty"):
        h.compare("", None, False)


# ---------------------------------------------------------------------------------------------------------------
# issue 22: the UI never silently does something else

UNK = ["?"] * len(ATTRIBUTES)


def _radios(values=None, **changes) -> list[str]:
    """The 40 radio values: ``values`` (a list, default all "?") with ``changes`` (name → "yes"/"no"/"?")."""
    out = list(values or UNK)
    for name, value in changes.items():
        out[ATTRIBUTES.index(name)] = value
    return out


def _used(gallery) -> dict:
    return read_metadata(gallery[0][0])["attributes"]


def test_generate_reads_changed_text_over_stale_controls_and_shows_what_it_used(demo):
    """The issue's example: "man with glasses and a mustache" → Understand; the text changed to "woman with blond
    hair, no glasses" → Generate (no Understand) gave "a man with blond hair, a mustache and glasses"."""
    h = demo.handlers
    *radios, md, reading = h.parse("man with glasses and a mustache", *UNK, None)
    assert dict(zip(ATTRIBUTES, radios))["Mustache"] == "yes" and "mustache" in md
    *_, pending = h.generate("woman with blond hair, no glasses", *radios, None, 2, 0, False, {}, None, reading)
    gallery = _[0]
    used = _used(gallery)
    assert used["Male"] is False and used["Blond_Hair"] is True and used["Eyeglasses"] is False
    assert "Mustache" not in used
    # the page then shows what was used: the radios and the "Understood" line
    *shown, line, reading = h.show_reading(pending)
    values = dict(zip(ATTRIBUTES, shown))
    assert [values[n] for n in ("Male", "Blond_Hair", "Eyeglasses", "Mustache")] == ["no", "yes", "no", "?"]
    assert "woman with blond hair" in line and "mustache" not in line.lower() and reading == pending
    # a control set by hand after the last reading wins over the next text, and the line says so
    gallery, *_, pending = h.generate("old man", *_radios(shown, Smiling="yes"), None, 2, 0, False, {}, None, reading)
    used = _used(gallery)
    assert used["Smiling"] is True and used["Male"] is True and used["Young"] is False
    assert "Set by hand, over the text:** smiling = yes" in pending["md"]
    # the text as last read: the controls are used as shown (a "?" set by hand clears what the text said)
    shown = h.show_reading(pending)[: len(ATTRIBUTES)]
    gallery, *_, pending = h.generate("old man", *_radios(shown, Young="?"), None, 2, 0, False, {}, None, pending)
    assert "Young" not in _used(gallery) and _used(gallery)["Smiling"] is True
    assert "young = ?" in pending["md"]
    # Understand applies the same rule (Enter too): the new text wins, except over what was set by hand since the
    # last reading (bald); a control set by hand before it (smiling) gives way to the new text
    shown = h.show_reading(pending)[: len(ATTRIBUTES)]
    *radios, md, reading = h.parse("woman", *_radios(shown, Bald="yes"), pending)
    values = dict(zip(ATTRIBUTES, radios))
    assert values["Male"] == "no" and values["Bald"] == "yes" and values["Smiling"] == "?" and "bald = yes" in md
    # a preset starts afresh: its text alone
    text, *radios, md, reading = h.preset("Criminal 1")
    assert dict(zip(ATTRIBUTES, radios))["Smiling"] == "?" and reading["text"] == text


def test_api_describe_is_stateless_radios_set_win_over_the_text(demo):
    """No reading (gradio_client, or a fresh page): a radio set to yes or no wins, "?" leaves it to the text; the
    same call twice gives the same faces."""
    h = demo.handlers
    gallery, *_ = h.generate("man with a mustache", *_radios(Mustache="no"), None, 2, 0, False, {})
    assert _used(gallery)["Mustache"] is False and _used(gallery)["Male"] is True
    again, *_ = h.generate("man with a mustache", *_radios(Mustache="no"), None, 2, 0, False, {})
    assert _used(again) == _used(gallery)


def test_a_new_round_closes_the_gallery_preview_and_messages_read_well(demo):
    h = demo.handlers
    gallery, state, *_ = h.generate("bald man", *UNK, None, 2, 0, False, {})
    gallery, state, status, a, b, selection, download, *_ = h.more_like_this(2, 0.3, 2, 0, None, False, state)
    strip, preview = h.history_view(state)
    # the gallery's preview index is cleared along with the selection (it showed the old index as if picked)
    assert a == 0 and b == 0 and isinstance(preview, gr.Gallery) and preview.selected_index is None
    assert len(strip) == 2
    _, _, status, *_ = h.restore_round(1, state)
    assert "Back to round 1: A bald man" in status and status.endswith(".") and ".." not in status
    long_label = _short("A young man with black hair, a goatee, a mustache, bushy eyebrows and glasses.")
    assert long_label.endswith("…") and len(long_label) <= 60
    assert _sentence(f"Back to round 1: {long_label}").endswith("…")
    with pytest.raises(gr.Error, match="Please upload a face image first"):  # not "an face image"
        app.open_image(None, "face image")
    with pytest.raises(gr.Error, match="Please upload an image first"):
        app.open_image(None)


def _tiny_cvae_pipeline():
    import torch

    from sketchface.models.mvae import CrossModalVAE, CrossModalVAEConfig
    from sketchface.pipelines.attribute_to_face import AttributeToFace

    torch.manual_seed(0)
    cfg = CrossModalVAEConfig(image_size=32, latent_dim=8, widths=[4, 8, 8, 8], fc_dim=16, attr_hidden=16)
    return AttributeToFace(CrossModalVAE(cfg))


CARD = "---\nlibrary_name: sketchface\ntags: [vae]\n---\n\n# tiny-cvae\n\nA cross-modal VAE for tests.\n"


@pytest.fixture(scope="module")
def cvae_registry(app_registry):
    """The tiny MVAE and pSp (no attribute directions) plus a tiny cross-modal VAE, whose card has front matter."""
    registry = Registry(list(app_registry.entries))
    registry.add("cvae", _tiny_cvae_pipeline(), "tiny-cvae", card=CARD)
    return registry


@pytest.fixture
def face_file(tmp_path):
    path = tmp_path / "face.png"
    from sketchface.data.procedural import render

    Image.fromarray(render({"Male": True}, seed=1, size=64).image).save(path)
    return str(path)


def _stylize(h, upload, instruction="add glasses", backend="latent", editor=None, origin=None):
    return h.stylize(upload, instruction, backend, editor, 1.0, True, 2, 7.5, 1.5, 0, False, origin)


def test_stylize_offers_only_editors_that_can_edit_an_uploaded_face(cvae_registry, face_file, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the InstructPix2Pix check answers at once
    h = app.Handlers(cvae_registry)
    assert h.editor_models() == ["mvae · tiny-mvae"]  # the cross-modal VAE and a pSp without directions are not
    md = h.backends_md()
    assert "`cvae · tiny-cvae` is not offered as an editor: it has no image encoder" in md
    assert "`psp · tiny-psp` is not offered as an editor: it has no fitted attribute directions" in md
    with pytest.raises(gr.Error, match="cvae · tiny-cvae cannot edit an uploaded face: it has no image encoder"):
        _stylize(h, face_file, editor="cvae · tiny-cvae")
    with pytest.raises(gr.Error, match="not loaded") as err:  # a name from outside is not echoed
        _stylize(h, face_file, editor="<script>alert(1)</script>")
    assert "<script>" not in str(err.value)
    after, caption, _download, _result = _stylize(h, face_file)  # no editor named: the first that can
    assert read_metadata(after)["editor"] == "mvae · tiny-mvae" and "Latent editor" in caption
    # Without an MVAE (the cross-modal VAE would have been the default): no latent editor offered, and why
    only = Registry([e for e in cvae_registry.entries if e.kind != "mvae"])
    h = app.Handlers(only)
    assert h.editor_models() == [] and "latent" not in [v for _, v in h.backend_choices()]
    assert "no loaded model can edit an uploaded face" in h.backends_md()
    with pytest.raises(gr.Error, match="needs a loaded model that can edit an uploaded face"):
        _stylize(h, face_file)
    with pytest.raises(gr.Error, match="Choose a backend first"):  # nothing to choose: Apply never guesses
        _stylize(h, face_file, backend=None)
    demo = app.build_demo(only)  # builds, without the latent editor among the choices
    radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "stylize-backend")
    assert "latent" not in [c[1] for c in radio.choices]


def test_unavailable_instruct_pix2pix_is_not_offered_and_the_models_tab_says_why(app_registry, face_file, monkeypatch):
    from sketchface.pipelines.stylize import InstructPix2PixBackend

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    h = app.Handlers(app_registry)
    state, why = h.ip2p_status()
    assert state == "unavailable" and "HF_HUB_OFFLINE" in why
    assert [v for _, v in h.backend_choices()] == ["latent"]
    radio, *sliders, run, md, table = h.stylize_controls("instruct-pix2pix")
    assert [c[1] for c in radio.choices] == ["latent"] and radio.value == "latent"
    assert [s.visible for s in sliders] == [False] * 3 and run.interactive is True
    assert "**instruct-pix2pix** — unavailable" in md
    row = next(line for line in table.splitlines() if "instruct_pix2pix" in line)
    assert "unavailable" in row and "lazy" not in row and "loads on first use" not in row
    assert "checking" in h.models_md(probe=False)  # building the page never waits on the Hub
    with pytest.raises(gr.Error, match="InstructPix2Pix is unavailable"):  # the API: one clear error
        _stylize(h, face_file, "make it a painting", backend="instruct-pix2pix")
    # Said to be available, then failing to load: recorded at once, so the page stops offering it.
    monkeypatch.setattr(InstructPix2PixBackend, "available", lambda self: (True, "weights found locally"))
    h = app.Handlers(app_registry)
    assert h.ip2p_status() == ("available", "weights found locally")
    assert "instruct-pix2pix" in [v for _, v in h.backend_choices()]
    assert "available: weights found locally" in h.models_md()
    with pytest.raises(gr.Error, match="HF_HUB_OFFLINE"):
        _stylize(h, face_file, "make it a painting", backend="instruct-pix2pix")
    assert h.ip2p_status()[0] == "unavailable" and [v for _, v in h.backend_choices()] == ["latent"]
    assert "unavailable" in next(line for line in h.models_md().splitlines() if "instruct_pix2pix" in line)


def _drawing(size: int = 128) -> dict:
    """A canvas value as the page's Sketchpad sends it: a blank white background, the black pen's strokes."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.ellipse((30, 20, 98, 108), outline=(0, 0, 0, 255), width=3)
    draw.line((45, 50, 58, 50), fill=(0, 0, 0, 255), width=3)
    draw.line((70, 50, 83, 50), fill=(0, 0, 0, 255), width=3)
    draw.line((50, 85, 78, 85), fill=(0, 0, 0, 255), width=3)
    background = Image.new("RGBA", (size, size), "white")
    return {"background": background, "layers": [layer], "composite": Image.alpha_composite(background, layer)}


def test_outputs_derived_from_an_upload_are_labelled_truthfully(demo, face_file, tmp_path, monkeypatch):
    from sketchface.export import UPLOAD_LABEL

    h = demo.handlers
    drawn = _drawing()
    assert app.is_page_drawing(drawn) and app.is_page_drawing({**drawn, "background": Image.new("L", (128, 128), 255)})
    photo = {**drawn, "background": Image.open(face_file).convert("RGBA").resize((128, 128))}
    assert not app.is_page_drawing(photo) and not app.is_page_drawing(drawn["composite"])
    assert not app.is_page_drawing({**drawn, "layers": [Image.open(face_file).convert("RGBA")]})
    args = ("mvae · tiny-mvae", "", 1, 0, 0.5, False)
    _, paths, *_ = h.sketch_generate(drawn, None, "sketch", *args)
    assert read_metadata(paths[0])["label"] == AI_LABEL  # drawn here: a composite
    _, paths, *_ = h.sketch_generate(photo, None, "sketch", *args)
    assert read_metadata(paths[0])["label"] == UPLOAD_LABEL  # a picture sent as the canvas: an upload
    monkeypatch.setattr(app_handlers.sketch, "open_image", lambda value, what="image", **_: Image.open(value))
    for kind in ("sketch", "photo"):
        _, paths, *_ = h.sketch_generate(None, face_file, kind, *args)
        assert read_metadata(paths[0])["label"] == UPLOAD_LABEL
    with Image.open(paths[0]) as img:
        assert img.text["Description"] == UPLOAD_LABEL
    copy = app.download_copy(paths[0], caption=True)  # the download keeps the label, and shows it
    with Image.open(copy) as img:
        assert img.text["Description"] == UPLOAD_LABEL and img.height > img.width
    monkeypatch.undo()
    # Stylize: a visitor's file is labelled as an upload, even when its own metadata claims to be a composite.
    after, caption, *_ = _stylize(h, face_file)
    assert read_metadata(after)["label"] == UPLOAD_LABEL and "derived from an uploaded image" in caption
    forged = save_png(Image.open(face_file), tmp_path, "forged", {"model": "mvae"})
    assert read_metadata(forged)["label"] == AI_LABEL
    after, *_ = _stylize(h, str(forged))
    assert read_metadata(after)["label"] == UPLOAD_LABEL


def test_stylize_edits_chain_and_undo_keeping_the_faces_label(demo):
    h = demo.handlers
    gallery, state, *_ = h.generate("bald man", *UNK, None, 2, 0, False, {})
    copy, before, _tabs, origin, trail = h.send_to_stylize(1, state, True)
    with Image.open(copy) as img:  # the face sent is the download copy: label in the metadata and as a strip
        assert img.text["Description"] == AI_LABEL and img.height > img.width and trail == []
    after, caption, _download, result = _stylize(h, copy, origin=origin)
    assert read_metadata(after)["label"] == AI_LABEL and "Labelled" not in caption  # made from words
    upload, before, origin2, trail, note = h.use_result(after, result, copy, origin, trail)
    assert upload == after and origin2 == result and trail == [{"path": copy, "origin": origin}]
    assert "step 2" in note and before.size == remove_caption(Image.open(after)).size
    again, *_ = _stylize(h, upload, "make the hair gray", origin=origin2)  # edits the result, not the original
    meta = read_metadata(again)
    assert meta["label"] == AI_LABEL and meta["changes"]["Gray_Hair"] is True
    back, before, origin3, trail, note = h.undo_result(trail)
    assert back == copy and origin3 == origin and trail == [] and note == ""
    with pytest.raises(gr.Error, match="Nothing to undo"):
        h.undo_result(trail)
    with pytest.raises(gr.Error, match="no result yet"):
        h.use_result(None, None, copy, origin, [])
    # a new upload starts afresh: no provenance, no undo trail
    assert h.stylize_upload(copy)[1:] == (None, [])


def test_every_download_path_carries_the_label(demo):
    """The galleries' own download buttons gave the bare 64-px file: they are gone; the downloads beside them carry
    the label (metadata always, the strip when ticked)."""
    by_id = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    for elem_id in ("candidates", "sketch-gallery", "history", "before"):
        buttons = by_id[elem_id].buttons or []
        assert "download" not in buttons and "download_all" not in buttons, elem_id
    checkbox = next(b for b in demo.blocks.values() if isinstance(b, gr.Checkbox) and "caption" in (b.label or ""))
    assert "download" in checkbox.label  # it promises the strip on downloads, which is what it does
    # ticking or unticking it after a pick re-exports the download on show
    gallery, state, *_ = demo.handlers.generate("bald man", *UNK, None, 2, 0, False, {})
    paths = [path for path, _ in gallery]
    for caption in (True, False):
        describe, sketch = demo.handlers.refresh_downloads(state, 1, paths, 2, caption)
        for path in (describe, sketch):
            with Image.open(path) as img:
                assert img.text["Description"] == AI_LABEL and (img.height > img.width) is caption


def test_compare_grid_wraps_into_rows_headed_by_the_descriptions(demo, monkeypatch):
    h, seen = demo.handlers, {}
    real = app_handlers.compare.labelled_grid

    def spy(cells, rows, cols, **kwargs):
        seen["cols"] = cols
        return real(cells, rows, cols, **kwargs)

    monkeypatch.setattr(app_handlers.compare, "labelled_grid", spy)
    grid, status = h.compare("bald man with a goatee\nsmiling young woman", 0, False, None, 8)
    assert seen["cols"][:3] == [f"{p.name}: {p.text}" for p in PRESETS.values()]
    assert seen["cols"][3:] == ["bald man with a goatee", "smiling young woman"]
    with Image.open(grid) as img:  # 8 candidates × 5 descriptions: rows of a page, not a 4,000-px strip
        assert img.width <= 1400 and img.height > 2 * 2 * 96  # two bands of two lines of faces


def test_labelled_grid_wraps_candidates_and_columns():
    faces = [Image.new("RGB", (64, 64), (40 * i, 90, 120)) for i in range(8)]
    cells = [[faces] * 5 for _ in range(3)]
    rows, cols = ["model a", "model b", "model c"], [f"description {j}" for j in range(5)]
    strip = labelled_grid(cells, rows, cols, cell=96, footer=None, per_row=None, max_width=None)
    grid = labelled_grid(cells, rows, cols, cell=96, footer=None)
    assert strip.width > 5 * 8 * 96 and strip.height < 96 * 4  # the old layout: one long strip
    # 8 faces a cell wrap to 2 × 4; the five columns to two bands of at most 1400 px
    assert grid.width <= 1400 and grid.height > 2 * 3 * 2 * 96
    px = grid.load()  # faces are drawn at full cell size (96 - 4 px), not shrunk
    y, x = next((y, x) for y in range(grid.height) for x in range(grid.width) if px[x, y] == (0, 90, 120))
    assert next(i for i in range(x, grid.width) if px[i, y] != (0, 90, 120)) - x == 92


def test_grid_labels_never_run_into_the_next_column():
    """A one-word label wider than its column ("mvae-procedural" over an 80-px face) is cut after its hyphen, then
    between letters, instead of running on under the next column's label."""
    from PIL import ImageDraw

    from sketchface.export import _font, _wrap

    probe, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), _font(12)
    assert _wrap(probe, "mvae-procedural", font, 74) == ["mvae-", "procedural"]
    assert _wrap(probe, "no-detail-gate and more", font, 74) == ["no-detail-", "gate and", "more"]
    assert _wrap(probe, "a mvae-procedural", font, 400) == ["a mvae-procedural"]  # fits: left whole
    lines = _wrap(probe, "x" * 60, font, 50)
    assert "".join(lines) == "x" * 60 and all(probe.textlength(t, font=font) <= 50 for t in lines)
    face = Image.new("RGB", (64, 64), (200, 30, 30))
    grid = labelled_grid([[face, face]], [""], ["mvae-procedural", "translator #2"], cell=80, footer=None)
    px, left = grid.load(), grid.width - 2 * 80  # the faces' columns start here; labels are dark on white
    first_line = [x for x in range(left, grid.width) if any(px[x, y][0] < 128 for y in range(0, 14))]
    assert first_line and max(x for x in first_line if x < left + 80) < left + 80 - 2  # ends inside its column


def test_model_cards_lose_their_front_matter_and_the_pen_is_thin(cvae_registry):
    assert app.strip_front_matter(CARD).startswith("# tiny-cvae")
    assert app.strip_front_matter("# no front matter\n---\n") == "# no front matter\n---\n"
    demo = app.build_demo(cvae_registry)
    cards = [b.value for b in demo.blocks.values() if "model-card" in (getattr(b, "elem_classes", None) or [])]
    assert cards and all(not c.lstrip().startswith("---") and "library_name" not in c for c in cards)
    canvas = next(b for b in demo.blocks.values() if isinstance(b, gr.Sketchpad))
    assert canvas.brush.default_size <= 4 and canvas.brush.colors == ["#000000"]
    hint = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "pen-hint")
    assert "pick the pen first" in hint.value
    text = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "description")
    assert text.lines == 1  # Enter reads the text, as the hint says (a taller box takes Enter as a new line)


def _tiny_translator():
    import torch

    from sketchface.models.translator import SketchTranslator, TranslatorConfig
    from sketchface.pipelines.translator import SketchTranslatorPipeline

    torch.manual_seed(0)
    return SketchTranslatorPipeline(SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], groups=4)))


def test_a_translator_trained_with_words_draws_them_with_the_sketch():
    import torch

    from sketchface.models.translator import SketchTranslator, TranslatorConfig
    from sketchface.pipelines.translator import SketchTranslatorPipeline

    torch.manual_seed(0)
    net = SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], groups=4, attr_dim=40))
    for weight in net.word_parameters():  # trained words (a new model's start at zero and ignore them)
        torch.nn.init.normal_(weight, std=0.5)
    registry = Registry.discover({}, env={}, root="/nonexistent", defaults=False)
    registry.add("translator", SketchTranslatorPipeline(net), "tiny-words")
    h = app.build_demo(registry).handlers
    args = ("translator · tiny-words", 2, 0, 0.5, False)
    _, plain, _, status, _ = h.sketch_generate(_drawing(), None, "sketch", args[0], "", *args[1:])
    _, blond, _, said, _ = h.sketch_generate(_drawing(), None, "sketch", args[0], "blond woman", *args[1:])
    assert "Not used" not in said  # nothing dropped: every stated attribute reached the model
    assert "Words, where the drawing leaves them open: A woman with blond hair." in said and "Words" not in status
    assert read_metadata(blond[0])["attributes"]["Blond_Hair"] is True
    with Image.open(plain[0]) as a, Image.open(blond[0]) as b:
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() > 0  # the words changed the face


def test_the_translator_draws_from_sketches_and_photos_and_says_what_it_did_not_use(tmp_path):
    registry = Registry.discover({}, env={}, root="/nonexistent", defaults=False)
    registry.add("translator", _tiny_translator(), "tiny-translator")
    h = app.build_demo(registry).handlers
    assert h.sketch_models() == ["translator · tiny-translator"]  # the default of the Sketch tab
    args = ("translator · tiny-translator", "gray hair, glasses", 3, 0, 0.5, False)
    gallery, paths, sketch, status, _ = h.sketch_generate(_drawing(), None, "sketch", *args)
    assert len(paths) == 3 and sketch.mode == "L"
    assert "Not used: eyeglasses, gray hair (and 3 implied)" in status  # what was said, not the implied "no" list
    assert "does not take words" in status
    assert read_metadata(paths[0])["label"] == AI_LABEL  # drawn with the page's pen
    # a colour photo uploaded as "a sketch" is sketched first, and the status says so
    photo = Image.new("RGB", (160, 200), (90, 140, 200))
    ImageDraw.Draw(photo).ellipse((30, 30, 130, 170), fill=(210, 160, 130))
    photo.save(tmp_path / "photo.png")
    _, _, _, status, _ = h.sketch_generate(None, str(tmp_path / "photo.png"), "sketch", *args[:1], "", *args[2:])
    assert "photo → sketch" in status and "because the upload is a colour photo" in status
    assert "Not used" not in status
    # a grey drawing uploaded as a sketch stays a sketch
    drawing = _drawing()["composite"].convert("L")
    drawing.save(tmp_path / "drawing.png")
    _, _, _, status, _ = h.sketch_generate(None, str(tmp_path / "drawing.png"), "sketch", *args[:1], "", *args[2:])
    assert "uploaded sketch" in status


def test_colour_photos_are_told_from_drawings():
    grey = Image.new("L", (64, 64), 255)
    pen = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(pen).ellipse((10, 10, 54, 54), outline=(20, 40, 200), width=2)  # a blue pen drawing
    photo = Image.new("RGB", (64, 64), (200, 150, 120))
    assert not app.is_colour_photo(grey) and not app.is_colour_photo(pen) and app.is_colour_photo(photo)


def test_breeding_starts_from_the_picked_candidates_own_latent(cvae_registry):
    """More like this and cross use the round's latents (FaceOutput.latents) when the same model drew it: strength 0
    gives the picked face itself, and the cross-modal VAE, which cannot read a face image, breeds too."""
    h = app.Handlers(cvae_registry)
    radios = ["?"] * len(ATTRIBUTES)
    for key in ("mvae · tiny-mvae", "cvae · tiny-cvae"):
        gallery, state, *_ = h.generate("bald man", *radios, key, 3, 0, False, {})
        assert state["rounds"][0]["latents"].shape[0] == 3
        picked = np.asarray(state["rounds"][0]["images"][1])
        _, same, *_ = h.more_like_this(2, 0.0, 2, 0, key, False, state)
        assert all(np.array_equal(np.asarray(im), picked) for im in same["rounds"][-1]["images"])
        _, crossed, *_ = h.cross(2, 3, 3, 0, key, False, state)
        ends = crossed["rounds"][-1]["images"]
        assert np.array_equal(np.asarray(ends[0]), picked)
        assert np.array_equal(np.asarray(ends[-1]), np.asarray(state["rounds"][0]["images"][2]))
        assert crossed["rounds"][-1]["latents"].shape[0] == 3  # a cross can be bred again
    # a round drawn by another model: its image, read by this model's image encoder (the MVAE) or refused by name
    _, state, *_ = h.generate("bald man", *radios, "mvae · tiny-mvae", 2, 0, False, {})
    with pytest.raises(gr.Error, match="no image encoder"):
        h.more_like_this(1, 0.3, 2, 0, "cvae · tiny-cvae", False, state)


def test_sketch_tab_edits_each_candidate_from_its_own_w_plus(demo, monkeypatch):
    """Words on the Sketch tab move each pSp candidate's own W+ (FaceOutput.latents) along the fitted directions."""
    h = demo.handlers
    entry = next(e for e in h.registry.loaded("sketch"))
    pipe = entry.pipeline
    monkeypatch.setattr(app_handlers.sketch, "open_image", lambda value, what="image", **_: value)
    sketch = Image.new("L", (128, 128), 255)
    ImageDraw.Draw(sketch).ellipse((30, 20, 98, 108), outline=0, width=3)
    psp, i = pipe.psp, ATTRIBUTES.index("Eyeglasses")
    saved = psp.direction_scales.clone(), psp.directions.clone()
    try:  # give the tiny pSp one direction to edit along
        with torch.no_grad():
            psp.direction_scales[i] = 1.0
            psp.directions[i] = torch.nn.functional.normalize(torch.ones_like(psp.directions[i]), dim=0)
        assert "Eyeglasses" in pipe.capabilities.editable_attributes
        _, paths, seen, _, _ = h.sketch_generate(None, sketch, "sketch", entry.key, "glasses", 2, 0, 0.5, False)
        out = pipe(seen, num_images=2, seed=0, mix_strength=0.5)
        expected = pipe.edit(out.latents, {"Eyeglasses": True}).images
        plain = out.images
    finally:
        with torch.no_grad():
            psp.direction_scales.copy_(saved[0])
            psp.directions.copy_(saved[1])
    for path, face in zip(paths, expected, strict=True):
        with Image.open(path) as img:
            assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(face))
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(expected, plain, strict=True))
