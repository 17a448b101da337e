"""The Gradio Blocks build without launching; handlers, the registry and PNG export work on tiny models."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from PIL import Image, ImageDraw

import app
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
    radios, md = out[:-1], out[-1]
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
    assert len(gallery) == 4 and len(h.history_view(state)) == 1 and "4 candidates" in status
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
        and len(h.history_view(state)) == 2
        and read_metadata(gallery[0][0])["parent"]["candidate"] == 2
    )
    with pytest.raises(gr.Error, match="two different picks"):
        h.cross(1, 1, 2, 0, None, False, state)
    gallery, state, *_ = h.cross(1, 3, 2, 0, None, False, state)
    assert len(gallery) == 2 and [label for _, label in h.history_view(state)][2].startswith("Round 3: #1 × #3")
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

    def spy(self, attributes=None, sketch=None, num_images=8, seed=0, temperature=1.0, description_weight=None):
        seen.append(description_weight)
        return original(self, attributes, sketch, num_images, seed, temperature, description_weight)

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
    monkeypatch.setattr(app, "open_image", lambda value, what="image", **_: value)  # the upload is the PIL image itself
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
        assert b.width > 3 * a.width  # 4 columns of 4 faces at 96 px against 3 single faces at 128 px
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
