"""Tests for the procedural face renderer, attribute sampler, dataset and CelebA-layout writer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchface.attributes import ATTRIBUTES, INDEX, NUM_ATTRIBUTES, Attributes
from sketchface.data.procedural import (
    CELEBA_MARGINALS,
    MASK_CLASSES,
    AttributeSampler,
    Face,
    ProceduralFaces,
    Stroke,
    apply_rules,
    render,
    write_celeba_layout,
)

C = {name: i for i, name in enumerate(MASK_CLASSES)}


def _vec(**on: bool) -> np.ndarray:
    v = -np.ones(NUM_ATTRIBUTES, np.int8)
    v[INDEX["No_Beard"]] = 1
    v[INDEX["Young"]] = 1
    for name, value in on.items():
        v[INDEX[name]] = 1 if value else -1
    return v


def test_mask_classes_contract():
    assert MASK_CLASSES[:5] == ("background", "skin", "nose", "eye_g", "l_eye")
    assert len(MASK_CLASSES) == 19 and MASK_CLASSES[-1] == "cloth"


@pytest.mark.parametrize("size", [32, 64, 128])
def test_render_types_and_shapes(size):
    face = render(None, 3, size)
    assert isinstance(face, Face)
    assert face.image.shape == (size, size, 3) and face.image.dtype == np.uint8
    assert face.mask.shape == (size, size) and face.mask.dtype == np.uint8
    assert face.labels.shape == (40,) and face.labels.dtype == np.int8
    assert set(np.unique(face.labels)) <= {-1, 1}
    assert face.mask.max() < len(MASK_CLASSES)
    assert face.image.std() > 20  # not blank


def test_determinism_identical_bytes():
    for seed in (0, 1, 12345):
        a, b = render(None, seed, 96), render(None, seed, 96)
        assert a.image.tobytes() == b.image.tobytes()
        assert a.mask.tobytes() == b.mask.tobytes()
        assert np.array_equal(a.labels, b.labels)
        assert all(np.array_equal(s.points, t.points) for s, t in zip(a.strokes, b.strokes))


def test_two_seeds_same_attributes_differ():
    v = _vec(Male=True, Black_Hair=True)
    a, b = render(v, 1, 64), render(v, 2, 64)
    assert np.array_equal(a.labels, b.labels)
    diff = np.abs(a.image.astype(int) - b.image.astype(int)).mean()
    assert diff > 10
    assert (a.mask != b.mask).mean() > 0.05


def test_changing_one_attribute_keeps_identity():
    # Per-choice random slots: switching Rosy_Cheeks must not move the background or the face outline.
    a = render(_vec(), 4, 64)
    b = render(_vec(Rosy_Cheeks=True), 4, 64)
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.image[:3, :3], b.image[:3, :3])
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() > 25


def test_accepts_attributes_mapping_and_vector():
    f1 = render(Attributes(Eyeglasses=True, Male=False), 7, 64)
    assert f1.labels[INDEX["Eyeglasses"]] == 1 and f1.labels[INDEX["Male"]] == -1
    f2 = render({"Wearing_Hat": True}, 7, 64)
    assert f2.labels[INDEX["Wearing_Hat"]] == 1
    f3 = render(_vec(Smiling=True), 7, 64)
    assert f3.labels[INDEX["Smiling"]] == 1
    with pytest.raises(ValueError):
        render(np.ones(39), 0, 64)


def test_rules():
    v = _vec(Bald=True, Bangs=True, Wavy_Hair=True, Black_Hair=True, Gray_Hair=True)
    out = apply_rules(v)
    assert out[INDEX["Bald"]] == 1 and out[INDEX["Bangs"]] == -1 and out[INDEX["Wavy_Hair"]] == -1
    assert out[[INDEX[h] for h in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]].sum() == -2  # one on
    assert out[INDEX["Gray_Hair"]] == 1
    hat = apply_rules(_vec(Bald=True, Wearing_Hat=True, Receding_Hairline=True))
    assert hat[INDEX["Bald"]] == -1 and hat[INDEX["Receding_Hairline"]] == -1
    # facial hair implies male unless Male is explicitly False
    m = apply_rules(_vec(Mustache=True))
    assert m[INDEX["Male"]] == 1 and m[INDEX["No_Beard"]] == -1
    explicit = np.zeros(40, bool)
    explicit[INDEX["Male"]] = True
    f = apply_rules(_vec(Mustache=True), explicit)
    assert f[INDEX["Male"]] == -1 and f[INDEX["Mustache"]] == 1
    # render: requested female with a goatee stays female; unknown Male with a mustache becomes male
    assert render(Attributes(Goatee=True, Male=False), 3, 32).labels[INDEX["Male"]] == -1
    assert render(Attributes(Mustache=True), 3, 32).labels[INDEX["Male"]] == 1
    straight_wavy = apply_rules(_vec(Straight_Hair=True, Wavy_Hair=True))
    assert straight_wavy[INDEX["Straight_Hair"]] == -1 and straight_wavy[INDEX["Wavy_Hair"]] == 1


def _agreement(face: Face) -> None:
    lab = {n: face.labels[i] > 0 for i, n in enumerate(ATTRIBUTES)}
    count = {n: int((face.mask == i).sum()) for i, n in enumerate(MASK_CLASSES)}
    S2 = face.mask.size
    assert (count["eye_g"] > 0) == lab["Eyeglasses"], "eyeglasses"
    assert (count["hat"] > 0) == lab["Wearing_Hat"], "hat"
    assert (count["ear_r"] > 0) == lab["Wearing_Earrings"], "earrings"
    assert (count["neck_l"] > 0) == lab["Wearing_Necklace"], "necklace"
    assert (count["mouth"] > 0) == lab["Mouth_Slightly_Open"], "open mouth"
    if lab["Bald"]:
        assert count["hair"] < 0.03 * S2, "bald: only a fringe"
    elif lab["Wearing_Hat"]:
        assert count["hair"] > 0, "hair below the hat"
    else:
        assert count["hair"] > 0.05 * S2, "hair"
    for part in ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "l_lip", "neck", "cloth"):
        assert count[part] > 0, part
    assert count["u_lip"] > 0 or lab["Mustache"]  # a mustache may cover the upper lip
    kinds = {s.kind for s in face.strokes}
    assert ("glasses" in kinds) == lab["Eyeglasses"]
    assert ("hat" in kinds) == lab["Wearing_Hat"]
    assert ("necktie" in kinds) == lab["Wearing_Necktie"]
    assert ("mustache" in kinds) == lab["Mustache"]
    assert ("goatee" in kinds) == lab["Goatee"]
    assert ("sideburn" in kinds) == lab["Sideburns"]
    assert ("hair_bangs" in kinds) == lab["Bangs"]
    assert ("wrinkle" in kinds) == (not lab["Young"])
    assert ("bags" in kinds) == lab["Bags_Under_Eyes"]


def test_mask_label_agreement_random_seeds():
    for seed in range(60):
        _agreement(render(None, seed, 64))


def test_mask_label_agreement_balanced_and_random_vectors():
    rng = np.random.default_rng(0)
    vecs = AttributeSampler("balanced").sample(rng, 40)
    for i, v in enumerate(vecs):
        face = render(v, 1000 + i, 64)
        assert np.array_equal(face.labels, v)  # sampler output is already rule-consistent
        _agreement(face)
    raw = np.where(rng.random((30, 40)) < 0.5, 1, -1).astype(np.int8)  # inconsistent on purpose
    for i, v in enumerate(raw):
        face = render(v, 2000 + i, 64)
        assert np.array_equal(face.labels, apply_rules(v, np.ones(40, bool)))
        _agreement(face)


def test_strokes_in_range_with_expected_kinds():
    face = render(_vec(Male=True, Eyeglasses=True, Wearing_Hat=True, Mustache=True, Goatee=True), 11, 128)
    kinds = {s.kind for s in face.strokes}
    expected = {"face", "hair", "hairline", "ear_l", "ear_r", "brow_l", "brow_r", "eye_l", "eye_r", "iris_l", "iris_r"}
    expected |= {"nose", "lip_upper", "lip_lower", "mouth_line", "glasses", "hat", "mustache", "goatee", "neck"}
    assert expected <= kinds, expected - kinds
    for s in face.strokes:
        assert isinstance(s, Stroke) and isinstance(s.closed, bool)
        assert s.points.dtype == np.float32 and s.points.ndim == 2 and s.points.shape[1] == 2 and len(s.points) >= 2
        assert 0 < s.width < 0.05
    inside = np.concatenate([s.points for s in face.strokes if s.kind not in ("shoulders", "necktie", "collar")])
    assert inside.min() > -0.05 and inside.max() < 1.05
    eyes = np.concatenate([s.points for s in face.strokes if s.kind.startswith(("eye", "brow", "nose", "lip"))])
    assert eyes.min() >= 0 and eyes.max() <= 1


def test_attribute_effects_are_visible():
    """Every attribute changes the 64 px image of the same seed (the classifier needs to see it)."""
    base = _vec(Brown_Hair=True, Attractive=True)
    ref = render(base, 21, 64).image.astype(int)
    for name in ATTRIBUTES:
        v = base.copy()
        v[INDEX[name]] = -v[INDEX[name]]
        if name in ("Black_Hair", "Blond_Hair", "Gray_Hair"):
            v[INDEX["Brown_Hair"]] = -1
        img = render(v, 21, 64).image.astype(int)
        changed = (np.abs(img - ref).max(-1) > 30).sum()
        assert changed >= 6, (name, changed)


def test_sampler_celeba_marginals():
    v = AttributeSampler("celeba").sample(np.random.default_rng(0), 20_000)
    assert v.shape == (20_000, 40) and v.dtype == np.int8
    rates = (v > 0).mean(0)
    bad = {
        ATTRIBUTES[i]: (round(r, 3), CELEBA_MARGINALS[i])
        for i, r in enumerate(rates)
        if abs(r - CELEBA_MARGINALS[i]) > 0.02
    }
    assert not bad, bad
    # co-occurrences: facial hair only on men, make-up mostly on women, grey hair mostly on the old
    male = v[:, INDEX["Male"]] > 0
    assert (v[~male, INDEX["Mustache"]] > 0).mean() < 0.01
    assert (v[~male, INDEX["Heavy_Makeup"]] > 0).mean() > 0.5 > (v[male, INDEX["Heavy_Makeup"]] > 0).mean()
    young = v[:, INDEX["Young"]] > 0
    assert (v[~young, INDEX["Gray_Hair"]] > 0).mean() > 4 * (v[young, INDEX["Gray_Hair"]] > 0).mean()
    assert np.array_equal(v, apply_rules(v))
    hair = v[:, [INDEX[h] for h in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]] > 0
    assert hair.sum(1).max() == 1


def test_sampler_balanced():
    v = AttributeSampler("balanced").sample(np.random.default_rng(1), 20_000)
    rates = dict(zip(ATTRIBUTES, (v > 0).mean(0)))
    hair_and_facial = {"Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Bald", "Bangs", "Straight_Hair"}
    hair_and_facial |= {"Wavy_Hair", "Receding_Hairline", "Mustache", "Goatee", "Sideburns", "5_o_Clock_Shadow"}
    hair_and_facial |= {"No_Beard", "Wearing_Hat"}
    for name, r in rates.items():
        if name in hair_and_facial:
            assert 0.15 < r < 0.7, (name, r)
        else:
            assert abs(r - 0.5) < 0.03, (name, r)


def test_sampler_fixed_values_and_bad_mode():
    fixed = np.zeros(40, np.int8)
    fixed[INDEX["Male"]] = -1
    fixed[INDEX["Blond_Hair"]] = 1
    v = AttributeSampler("celeba").sample(np.random.default_rng(0), 500, fixed)
    assert (v[:, INDEX["Male"]] == -1).all() and (v[:, INDEX["Blond_Hair"]] == 1).all()
    assert (v[:, INDEX["Black_Hair"]] == -1).all()
    with pytest.raises(ValueError):
        AttributeSampler("uniform")


def test_dataset_items_and_dataloader():
    ds = ProceduralFaces(size=32, length=8, start_seed=5, with_mask=True)
    item = ds[3]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["labels"].shape == (40,) and set(item["labels"].unique().tolist()) <= {0.0, 1.0}
    assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64
    face = render(ds.attributes(3), 8, 32)
    assert torch.equal(item["image"], torch.from_numpy(face.image).permute(2, 0, 1).float() / 255)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    batches = list(loader)
    images = torch.cat([b["image"] for b in batches])
    assert images.shape == (8, 3, 32, 32)
    assert torch.equal(images[3], item["image"])  # same item regardless of the worker
    with pytest.raises(IndexError):
        ds[8]


def test_dataset_sketch_modes():
    for mode in ("hand", "computed", "mixed"):
        item = ProceduralFaces(size=32, length=2, sketch=mode)[1]
        sk = item["sketch"]
        assert sk.shape == (1, 32, 32) and sk.dtype == torch.float32
        assert 0 <= sk.min() and sk.max() <= 1 and sk.mean() > 0.5  # mostly white paper
    with pytest.raises(ValueError):
        ProceduralFaces(sketch="pencil")


def test_dataset_edits_switch_attributes_of_the_same_face():
    plain = ProceduralFaces(size=32, length=12, start_seed=40)
    ds = ProceduralFaces(size=32, length=12, start_seed=40, edits=2)
    assert "edited_image" not in plain[0]
    switched_any = 0
    for i in range(12):
        item, same = ds[i], plain[i]
        assert torch.equal(item["image"], same["image"]) and torch.equal(item["labels"], same["labels"])
        assert item["edited_image"].shape == (3, 32, 32) and item["edited_labels"].shape == (40,)
        assert torch.equal(item["switched"], (item["edited_labels"] != item["labels"]).float())
        edited = item["labels"].clone()
        edited[item["switched"] > 0] = 1 - edited[item["switched"] > 0]
        assert torch.equal(edited, item["edited_labels"])
        if item["switched"].sum() == 0:  # every switch undone by the rules: the very same face
            assert torch.equal(item["edited_image"], item["image"])
        else:
            switched_any += 1
            assert not torch.equal(item["edited_image"], item["image"])
    assert switched_any >= 8
    assert torch.equal(ds[3]["edited_image"], ds[3]["edited_image"])  # deterministic per seed
    # the same identity: a switched pair is much closer than two different faces
    pairs = [(ds[i]["edited_image"] - ds[i]["image"]).abs().mean() for i in range(12) if ds[i]["switched"].sum()]
    others = [(plain[i]["image"] - plain[i + 1]["image"]).abs().mean() for i in range(11)]
    assert float(torch.stack(pairs).median()) < 0.5 * float(torch.stack(others).median())
    for bad in (-1, 41):
        with pytest.raises(ValueError, match="edits"):
            ProceduralFaces(edits=bad)


def test_write_celeba_layout(tmp_path):
    root = write_celeba_layout(tmp_path / "proc", 10, start_seed=3, size=32)
    files = sorted((root / "img_align_celeba").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(1, 11)]
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "10" and lines[1].split() == list(ATTRIBUTES)
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 10 and rows[0][0] == "000001.png"
    labels = np.array([[int(x) for x in r[1:]] for r in rows])
    assert labels.shape == (10, 40) and set(np.unique(labels)) <= {-1, 1}
    assert lines[2][10:13] in (" -1", "  1")  # padded like the original
    ds = ProceduralFaces(size=32, length=10, start_seed=3)
    assert np.array_equal(labels[4], ds.attributes(4))
    parts = [line.split() for line in (root / "list_eval_partition.txt").read_text().splitlines()]
    assert [p[1] for p in parts] == ["0"] * 8 + ["1"] + ["2"]
    from PIL import Image

    img = np.asarray(Image.open(files[4]))
    assert img.shape == (32, 32, 3)
    assert np.array_equal(img, render(ds.attributes(4), 7, 32).image)
