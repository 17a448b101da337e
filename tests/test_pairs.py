"""(sketch, photo) pairs from photos: drawing styles, the shared frame, the dataset, the pool and augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sketchface.data import pairs as pairs_mod
from sketchface.data.pairs import (
    EVAL_STYLES,
    STYLES,
    SketchPhotoPairs,
    augment_pairs,
    crop_square,
    edge_sketch,
    eval_pairs,
    hand_sketch,
    make_pair,
    make_sketch,
    pair_pool,
    xdog_sketch,
)
from sketchface.data.sketch import normalize_sketch_with_box, normalize_user_sketch
from tests.real_faces import write_celeba_layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return write_celeba_layout(tmp_path_factory.mktemp("celeba"), n=12)


def _photo_with_square(w=180, h=220, box=(60, 70, 120, 150)) -> np.ndarray:
    img = Image.new("RGB", (w, h), (235, 225, 215))
    ImageDraw.Draw(img).rectangle(box, fill=(40, 30, 20))
    return np.asarray(img)


def _dark_centroid(a: np.ndarray, level: int = 100) -> np.ndarray:
    ys, xs = np.nonzero(a < level)
    return np.array([xs.mean(), ys.mean()])


def test_line_art_is_dark_ink_on_white():
    rgb = _photo_with_square()
    gray = rgb.mean(axis=2).astype(np.uint8)
    for out in (xdog_sketch(gray), edge_sketch(gray, width=3)):
        assert out.dtype == np.uint8 and out.shape == gray.shape
        assert np.median(out) == 255 and out.min() < 60  # mostly paper, some ink
        assert out[:40, :40].min() == 255  # flat areas draw nothing
    thin, wide = edge_sketch(gray, width=1), edge_sketch(gray, width=4)
    assert (wide < 128).sum() > 2 * (thin < 128).sum()  # the pen width is real


def test_a_branching_line_is_traced_once_as_continuous_paths():
    ink = np.zeros((60, 60), np.uint8)
    cv2.line(ink, (5, 30), (55, 30), 255, 1)  # a T: a bar and a stem
    cv2.line(ink, (30, 31), (30, 55), 255, 1)
    paths = pairs_mod._paths(ink)
    pixels = np.concatenate(paths).astype(int)
    assert len(pixels) == len({tuple(p) for p in pixels.tolist()})  # no pixel twice
    assert len(pixels) >= int((ink > 0).sum()) - 2  # all but a stray pixel where runs meet
    for path in paths:  # each path is continuous: consecutive points are neighbours
        assert np.abs(np.diff(path, axis=0)).max() <= 1
    assert 2 <= len(paths) <= 3  # the bar (maybe cut at the stem) and the stem


def test_hand_drawing_follows_the_photo_s_contours_by_hand():
    rgb = _photo_with_square()
    gray = rgb.mean(axis=2).astype(np.uint8)
    a, again = hand_sketch(gray, seed=1), hand_sketch(gray, seed=1)
    assert a.shape == gray.shape and a.dtype == np.uint8 and np.array_equal(a, again)  # repeatable
    ink = a < 160
    assert ink.any() and a[:40, :40].min() == 255  # the square's outline, nothing on flat paper
    ys, xs = np.nonzero(ink)  # the lines stay near the square's edges (60..120 × 70..150), wobbling a little
    assert 45 <= xs.min() and xs.max() <= 135 and 55 <= ys.min() and ys.max() <= 165
    assert not np.array_equal(a, hand_sketch(gray, seed=2))  # another hand
    assert np.array_equal(hand_sketch(gray, min_length=10.0), np.full_like(gray, 255))  # every line too short


def test_every_style_keeps_only_the_foreground():
    rgb = _photo_with_square()
    fg = np.zeros(rgb.shape[:2], bool)
    fg[50:170, 40:140] = True
    rng = np.random.default_rng(0)
    for style in STYLES:
        for r in (None, rng):
            out = make_sketch(rgb, fg, style, r)
            assert out.shape == rgb.shape[:2] and out.dtype == np.uint8, style
            assert out[~fg].min() == 255, style
    with pytest.raises(ValueError, match="style must be one of"):
        make_sketch(rgb, fg, "charcoal")


def test_crop_square_inside_and_past_the_edges():
    rgb = np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    inside = crop_square(rgb, (10, 20, 40), 40)
    np.testing.assert_array_equal(inside, rgb[20:60, 10:50])  # same size: no resampling
    flat = np.full((100, 80, 3), (10, 200, 30), np.uint8)
    past = crop_square(flat, (-30, -10, 140), 64)  # reaches past every edge
    assert past.shape == (64, 64, 3) and np.abs(past.astype(int) - [10, 200, 30]).max() <= 1  # no mirrored content


def test_normalize_sketch_with_box_gives_the_square_it_cut():
    img = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(img).ellipse((150, 40, 230, 160), outline=0, width=4)
    out, (x0, y0, side) = normalize_sketch_with_box(img, size=128)
    assert out.size == (128, 128) and np.array_equal(np.asarray(out), np.asarray(normalize_user_sketch(img, 128)))
    assert side == pytest.approx(121 * 1.16, abs=1.5)  # the taller side plus 8 % each way
    assert x0 + side / 2 == pytest.approx(190.5, abs=1.5) and y0 + side / 2 == pytest.approx(100.5, abs=1.5)  # centred
    # cutting the drawing itself with the box lands the strokes where the normalised sketch has them
    cut = crop_square(np.stack([np.asarray(img)] * 3, -1), (x0, y0, side), 128)[:, :, 0]
    np.testing.assert_allclose(_dark_centroid(cut, 128), _dark_centroid(np.asarray(out), 128), atol=1.5)


def test_make_pair_cuts_the_photo_in_the_sketch_frame():
    rgb = _photo_with_square(box=(30, 120, 90, 200))  # off centre, near the bottom left
    sketch, photo, style = make_pair(rgb, None, "computed", 64)
    assert style == "computed" and sketch.shape == (64, 64) and photo.shape == (64, 64, 3)
    # the square's outline in the sketch and the dark square in the photo sit in the same place
    np.testing.assert_allclose(_dark_centroid(sketch, 160), _dark_centroid(photo.mean(axis=2)), atol=3)


def test_make_pair_falls_back_when_a_style_draws_nothing():
    flat = np.full((120, 100, 3), 128, np.uint8)
    flat[40:80, 30:70] = 120  # too faint for edges at the evaluation thresholds
    sketch, _, style = make_pair(flat, None, "edges", 32, np.random.default_rng(1))
    assert style in STYLES and sketch.min() < 255


def test_dataset_items_are_repeatable_and_in_contract(layout):
    ds = SketchPhotoPairs(layout, "train", size=32, variants=3)
    assert len(ds) == 6 * 3  # 6 training photos
    a, b = ds[4], ds[4]
    assert a["sketch"].shape == (1, 32, 32) and a["image"].shape == (3, 32, 32) and a["labels"].shape == (40,)
    assert torch.equal(a["sketch"], b["sketch"]) and torch.equal(a["image"], b["image"])  # seeded
    assert 0 <= float(a["sketch"].min()) and float(a["sketch"].max()) <= 1 and a["sketch"].max() == 1
    variants = [ds[i]["sketch"] for i in range(3, 6)]  # the same photo, three drawings
    assert not torch.equal(variants[0], variants[1]) or not torch.equal(variants[1], variants[2])
    assert torch.equal(ds[3]["labels"], ds[5]["labels"])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_eval_pairs_draw_every_evaluation_style_once(layout):
    ev = eval_pairs(layout, 32)
    assert len(ev["sketch"]) == 4 * len(EVAL_STYLES)  # 4 test photos
    assert ev["style"].tolist()[: len(EVAL_STYLES)] == [STYLES.index(s) for s in EVAL_STYLES]
    assert ev["photo"].tolist()[: len(EVAL_STYLES) + 1] == [0] * len(EVAL_STYLES) + [1]
    again = eval_pairs(layout, 32, photos=1)
    assert torch.equal(again["sketch"], ev["sketch"][: len(EVAL_STYLES)])


def test_pair_pool_is_cached(layout, tmp_path, monkeypatch):
    cache = tmp_path / "pool.pt"
    pool = pair_pool(layout, 32, 2, cache=cache)
    assert pool["image"].dtype == torch.uint8 and pool["image"].shape == (12, 3, 32, 32) and cache.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("rendered again although the cache matches")

    monkeypatch.setattr("sketchface.training.render_pool", fail)
    again = pair_pool(layout, 32, 2, cache=cache)
    assert torch.equal(again["sketch"], pool["sketch"])
    with pytest.raises(AssertionError, match="rendered again"):
        pair_pool(layout, 32, 3, cache=cache)  # other settings: not the cached pool


def test_unknown_styles_and_folders_are_refused(tmp_path, layout):
    with pytest.raises(ValueError, match="styles must be"):
        SketchPhotoPairs(layout, styles=["oil"])
    with pytest.raises(FileNotFoundError):
        SketchPhotoPairs(tmp_path / "missing")


def test_augment_pairs_moves_sketch_and_photo_together():
    sketch = torch.ones(4, 1, 32, 32)
    image = torch.ones(4, 3, 32, 32)
    sketch[:, :, 8:12, 20:24] = 0
    image[:, :, 8:12, 20:24] = 0
    g = torch.Generator().manual_seed(0)
    s, i = augment_pairs(sketch, image, g, wobble=0.0)
    assert s.shape == sketch.shape and i.shape == image.shape and 0 <= float(s.min()) and float(s.max()) <= 1
    for k in range(4):  # without the wobble, ink and dark photo pixels stay together
        np.testing.assert_allclose(
            _dark_centroid(s[k, 0].numpy(), 0.5), _dark_centroid(i[k, 0].numpy(), 0.5), atol=0.75
        )
    s2, _ = augment_pairs(sketch, image, torch.Generator().manual_seed(0), wobble=0.0)
    assert torch.equal(s, s2)  # seeded
    moved = [_dark_centroid(s[k, 0].numpy(), 0.5) for k in range(4)]
    assert np.ptp(np.array(moved), axis=0).max() > 0.5  # the batch is not moved as one
    wob, _ = augment_pairs(sketch, image, torch.Generator().manual_seed(0))
    assert not torch.equal(wob, s)  # the sketch alone wobbles


def test_styles_are_exported_in_order():
    assert pairs_mod.STYLES[: len(pairs_mod.STYLE_WEIGHTS)] == STYLES and abs(sum(pairs_mod.STYLE_WEIGHTS) - 1) < 1e-9
