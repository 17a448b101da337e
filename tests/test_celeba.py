"""Tests of sketchface.data.celeba on tiny fixtures written in the exact official formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sketchface.attributes import ATTRIBUTES, INDEX
from sketchface.data.celeba import (
    MASK_CLASSES,
    CelebA,
    CelebAFormatError,
    CelebAHQ,
    ImageFolder,
    crop_box,
    deterministic_split,
    read_attr_file,
    read_hq_attr_file,
    read_hq_mapping_file,
    read_partition_file,
)

MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-mini"


def row_values(seed: int) -> list[int]:
    return list(np.random.default_rng(seed).choice([-1, 1], size=40))


def write_attr(path: Path, rows: dict[str, list[int]], count: int | None = None, header: list[str] | None = None):
    """The official list_attr_celeba.txt layout: CRLF, trailing space after the names, 2-wide values."""
    lines = [str(len(rows) if count is None else count), " ".join(header or ATTRIBUTES) + " "]
    lines += [name + " " + " ".join(f"{v:2d}" for v in values) for name, values in rows.items()]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def write_image(path: Path, size=(178, 218), colour=(200, 40, 40), band=None):
    """A solid image; ``band=(top, bottom, colour)`` paints rows top..bottom another colour."""
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = colour
    if band is not None:
        arr[band[0] : band[1]] = band[2]
    Image.fromarray(arr).save(path)
    return path


def make_celeba(root: Path, n: int = 6, partition: bool = True) -> dict[str, list[int]]:
    (root / "img_align_celeba").mkdir(parents=True)
    rows = {f"{i:06d}.jpg": row_values(i) for i in range(1, n + 1)}
    for i, name in enumerate(rows):
        write_image(root / "img_align_celeba" / name, colour=((40 * i) % 256, 100, (200 - 30 * i) % 256))
    write_attr(root / "list_attr_celeba.txt", rows)
    if partition:
        codes = [0, 0, 0, 1, 2, 2][:n] + [0] * max(0, n - 6)
        text = "".join(f"{name} {c}\n" for name, c in zip(rows, codes))
        (root / "list_eval_partition.txt").write_text(text)
    return rows


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------


def test_read_attr_file_official_format(tmp_path):
    rows = {"000001.jpg": row_values(1), "000002.jpg": row_values(2), "000007.jpg": row_values(7)}
    table = read_attr_file(write_attr(tmp_path / "list_attr_celeba.txt", rows))
    assert table.filenames == ("000001.jpg", "000002.jpg", "000007.jpg")
    assert table.labels.dtype == np.int8 and table.labels.shape == (3, 40)
    assert table.labels.tolist() == list(rows.values()) and table.lines == (3, 4, 5)
    assert table.row("000007.jpg").tolist() == rows["000007.jpg"] and len(table) == 3


def test_read_attr_file_variable_whitespace(tmp_path):
    values = row_values(3)
    text = "1\n" + "\t".join(ATTRIBUTES) + "\n  000003.jpg\t" + "   ".join(map(str, values)) + "  \n\n\n"
    (tmp_path / "a.txt").write_text(text)
    assert read_attr_file(tmp_path / "a.txt").labels[0].tolist() == values


def _error(tmp_path, rows, **kw) -> CelebAFormatError:
    path = write_attr(tmp_path / "list_attr_celeba.txt", rows, **kw)
    with pytest.raises(CelebAFormatError) as info:
        read_attr_file(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_attr_count_must_match(tmp_path):
    err = _error(tmp_path, {"000001.jpg": row_values(1)}, count=202599)
    assert err.line == 1 and "202599" in str(err) and "lists 1" in str(err)


def test_attr_count_line_must_be_a_number(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("many\n" + " ".join(ATTRIBUTES) + "\n")
    with pytest.raises(CelebAFormatError, match="line 1: expected the number of images"):
        read_attr_file(path)


def test_attr_header_must_be_the_40_names_in_order(tmp_path):
    swapped = list(ATTRIBUTES)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    err = _error(tmp_path, {"000001.jpg": row_values(1)}, header=swapped)
    assert err.line == 2 and "name 3 is 'Bags_Under_Eyes', expected 'Attractive'" in str(err)
    err = _error(tmp_path, {"000001.jpg": row_values(1)}, header=list(ATTRIBUTES[:-1]))
    assert err.line == 2 and "found 39 names" in str(err)


def test_attr_wrong_number_of_values(tmp_path):
    rows = {"000001.jpg": row_values(1), "000002.jpg": row_values(2)[:39]}
    err = _error(tmp_path, rows)
    assert err.line == 4 and "got 39 values for '000002.jpg'" in str(err)


@pytest.mark.parametrize("bad", [0, 2, "x", "1.0"])
def test_attr_values_must_be_plus_minus_one(tmp_path, bad):
    values: list = row_values(2)
    values[INDEX["Smiling"]] = bad
    path = tmp_path / "list_attr_celeba.txt"
    lines = ["2", " ".join(ATTRIBUTES), "000001.jpg " + " ".join(map(str, row_values(1)))]
    lines.append("000002.jpg " + " ".join(map(str, values)))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebAFormatError, match=rf"line 4: 000002.jpg: Smiling is '{bad}'; expected 1 or -1"):
        read_attr_file(path)


def test_attr_duplicate_names(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    lines = ["3", " ".join(ATTRIBUTES)] + [
        f"{n} " + " ".join(map(str, row_values(1))) for n in ("a.jpg", "b.jpg", "a.jpg")
    ]
    path.write_text("\n".join(lines))
    with pytest.raises(CelebAFormatError, match=r"line 5: duplicate image 'a.jpg' \(first listed on line 3\)"):
        read_attr_file(path)


def test_attr_blank_line_inside(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    lines = ["2", " ".join(ATTRIBUTES), "a.jpg " + " ".join(map(str, row_values(1))), ""]
    lines.append("b.jpg " + " ".join(map(str, row_values(2))))
    path.write_text("\n".join(lines))
    with pytest.raises(CelebAFormatError, match="line 4: blank line"):
        read_attr_file(path)


def test_attr_too_short_or_binary(tmp_path):
    (tmp_path / "short.txt").write_text("0\n")
    with pytest.raises(CelebAFormatError, match="too short"):
        read_attr_file(tmp_path / "short.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(CelebAFormatError, match="UTF-8"):
        read_attr_file(tmp_path / "bin.txt")


def test_hq_attr_file_conventions(tmp_path):
    pm = {"0.jpg": row_values(0), "1.jpg": row_values(1)}
    path = write_attr(tmp_path / "CelebAMask-HQ-attribute-anno.txt", pm)
    assert read_hq_attr_file(path).labels.tolist() == list(pm.values())
    zero_one = {k: [max(v, 0) for v in vals] for k, vals in pm.items()}
    write_attr(path, zero_one)
    assert read_hq_attr_file(path).labels.tolist() == list(pm.values()), "0 means absent"
    with pytest.raises(CelebAFormatError, match="expected 1 or -1"):
        read_attr_file(path)  # the CelebA file never has 0
    mixed = {"0.jpg": row_values(0), "1.jpg": [0] * 40}
    mixed["0.jpg"][0] = -1
    write_attr(path, mixed)
    with pytest.raises(CelebAFormatError, match="line 4: mixes the 1/-1 convention"):
        read_hq_attr_file(path)
    write_attr(path, {"0.jpg": [2] + [1] * 39})
    with pytest.raises(CelebAFormatError, match=r"line 3: 0.jpg: 5_o_Clock_Shadow is '2'; expected 1/-1 \(or 0/1\)"):
        read_hq_attr_file(path)


def test_read_partition_file(tmp_path):
    path = tmp_path / "list_eval_partition.txt"
    path.write_text("000001.jpg 0\r\n000002.jpg 1\r\n000003.jpg 2\r\n")
    assert read_partition_file(path) == {"000001.jpg": 0, "000002.jpg": 1, "000003.jpg": 2}
    for text, pattern in [
        ("000001.jpg 0\n000002.jpg 3\n", "line 2: 000002.jpg: partition is '3'"),
        ("000001.jpg\n", "line 1: expected 'image_name 0|1|2'"),
        ("000001.jpg 0 extra\n", "line 1: expected"),
        ("a.jpg 0\nb.jpg 0\na.jpg 1\n", r"line 3: duplicate image 'a.jpg' \(first listed on line 1\)"),
    ]:
        path.write_text(text)
        with pytest.raises(CelebAFormatError, match=pattern):
            read_partition_file(path)


def test_read_hq_mapping_file(tmp_path):
    path = tmp_path / "CelebA-HQ-to-CelebA-mapping.txt"
    path.write_text("idx         orig_idx        orig_file\n0 119613 119614.jpg\n1 99094 99095.jpg\n")
    assert read_hq_mapping_file(path) == {"0.jpg": "119614.jpg", "1.jpg": "99095.jpg"}
    path.write_text("0 119613 119614.jpg\n")
    with pytest.raises(CelebAFormatError, match="line 1: expected the header"):
        read_hq_mapping_file(path)
    path.write_text("idx orig_idx orig_file\n0 x 1.jpg\n")
    with pytest.raises(CelebAFormatError, match="line 2"):
        read_hq_mapping_file(path)


def test_crop_boxes():
    assert crop_box(178, 218, "paper1") == (0, 20, 178, 198)  # = Resize(64) + CenterCrop(64), as MVAE's code
    assert crop_box(178, 218, "face") == (15, 40, 163, 188)
    assert crop_box(178, 218, "center") == (15, 35, 163, 183)  # = torchvision CenterCrop(148)
    assert crop_box(178, 218, "none") == (0, 0, 178, 218)
    assert crop_box(300, 200, "square") == (50, 0, 250, 200)
    with pytest.raises(ValueError, match="crop must be one of"):
        crop_box(10, 10, "tight")


def test_deterministic_split_properties():
    names = [f"{i:06d}.jpg" for i in range(1, 3001)]
    split = deterministic_split(names, seed=0)
    assert split == deterministic_split(list(reversed(names)), seed=0), "independent of order"
    assert deterministic_split(names[:100], seed=0) == {n: split[n] for n in names[:100]}, "independent of the rest"
    counts = np.bincount(list(split.values()), minlength=3) / len(names)
    assert abs(counts[1] - 0.1) < 0.02 and abs(counts[2] - 0.1) < 0.02
    assert deterministic_split(names, seed=1) != split
    assert set(deterministic_split(names, valid_fraction=0, test_fraction=0).values()) == {0}
    with pytest.raises(ValueError):
        deterministic_split(names, valid_fraction=0.6, test_fraction=0.5)


# ----------------------------------------------------------------------------------------------
# CelebA dataset
# ----------------------------------------------------------------------------------------------


def test_celeba_dataset_items_and_official_split(tmp_path):
    rows = make_celeba(tmp_path)
    sizes = {s: len(CelebA(tmp_path, split=s, size=16)) for s in ("train", "valid", "test", "all")}
    assert sizes == {"train": 3, "valid": 1, "test": 2, "all": 6}
    ds = CelebA(tmp_path, split="test", size=16)
    assert ds.filenames == ["000005.jpg", "000006.jpg"] and ds.partition_source == "official"
    item = ds[1]
    assert set(item) == {"image", "labels"}
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    expected = (np.array(rows["000006.jpg"]) == 1).astype(np.float32)
    assert item["labels"].dtype == torch.float32 and item["labels"].tolist() == expected.tolist()
    colour = item["image"].mean(dim=(1, 2)) * 255  # image 6 is (200, 100, 50)
    assert torch.allclose(colour, torch.tensor([200.0, 100.0, 50.0]), atol=6)
    assert ds.labels.shape == (2, 40) and ds.path(0).name == "000005.jpg"
    with pytest.raises(IndexError):
        ds[2]
    batch = next(iter(DataLoader(CelebA(tmp_path, split="all", size=16), batch_size=4)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["labels"].shape == (4, 40)


def test_celeba_crop_is_applied(tmp_path):
    make_celeba(tmp_path, n=1, partition=False)
    # Rows 0-19 red: the "paper1" crop (rows 20-198) must not see them, "none" must.
    write_image(tmp_path / "img_align_celeba" / "000001.jpg", colour=(0, 0, 255), band=(0, 20, (255, 0, 0)))
    paper1 = CelebA(tmp_path, split="all", size=32, crop="paper1")[0]["image"]
    none = CelebA(tmp_path, split="all", size=32, crop="none")[0]["image"]
    assert paper1[0].max() < 0.2 and paper1[2].min() > 0.8
    assert none[0, 0].mean() > 0.8


def test_celeba_without_partition_uses_seeded_split(tmp_path):
    make_celeba(tmp_path, n=40, partition=False)
    parts = {
        s: CelebA(tmp_path, split=s, size=8, valid_fraction=0.2, test_fraction=0.2).filenames
        for s in ("train", "valid", "test")
    }
    every = sorted(parts["train"] + parts["valid"] + parts["test"])
    assert every == CelebA(tmp_path, split="all", size=8).filenames and len(set(every)) == 40
    assert all(parts.values()), "each split non-empty"
    again = CelebA(tmp_path, split="test", size=8, valid_fraction=0.2, test_fraction=0.2)
    assert again.filenames == parts["test"] and again.partition_source == "hash(seed=0)"
    other = CelebA(tmp_path, split="test", size=8, seed=1, valid_fraction=0.2, test_fraction=0.2)
    assert other.filenames != parts["test"]


def test_celeba_missing_image_is_named_at_construction(tmp_path):
    make_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(CelebAFormatError, match=r"list_attr_celeba.txt, line 6: image '000004.jpg' is listed") as info:
        CelebA(tmp_path, split="all")
    assert "000004.jpg does not exist" in str(info.value)
    assert len(CelebA(tmp_path, split="train")) == 3, "other splits still load"


def test_celeba_unreadable_image_is_named_when_loaded(tmp_path):
    make_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg")
    ds = CelebA(tmp_path, split="train")
    ds[0]
    with pytest.raises(CelebAFormatError, match=r"000002.jpg: cannot read the image"):
        ds[1]


def test_celeba_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CelebA(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt not found"):
        CelebA(tmp_path)
    make_celeba(tmp_path)
    with open(tmp_path / "list_eval_partition.txt", "w") as f:
        f.write("000001.jpg 0\n")
    with pytest.raises(CelebAFormatError, match="no partition for '000002.jpg'"):
        CelebA(tmp_path)
    (tmp_path / "list_eval_partition.txt").unlink()
    for kwargs, pattern in [
        ({"split": "training"}, "split must be"),
        ({"crop": "tight"}, "crop must be"),
        ({"size": 4}, "size must be"),
        ({"sketch": "hand"}, "sketch must be"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            CelebA(tmp_path, **kwargs)


@pytest.mark.filterwarnings("ignore:photo_to_sketch")
def test_celeba_computed_sketch(tmp_path):
    make_celeba(tmp_path, n=1, partition=False)
    write_image(tmp_path / "img_align_celeba" / "000001.jpg", colour=(230, 230, 230), band=(100, 110, (20, 20, 20)))
    item = CelebA(tmp_path, split="all", size=32, sketch="computed")[0]
    sketch = item["sketch"]
    assert sketch.shape == (1, 32, 32) and sketch.dtype == torch.float32
    assert 0 <= sketch.min() and sketch.max() <= 1 and sketch.mean() > 0.5, "white paper, dark strokes"
    assert sketch.min() < 0.5, "the dark band leaves strokes"


# ----------------------------------------------------------------------------------------------
# CelebA-HQ / CelebAMask-HQ
# ----------------------------------------------------------------------------------------------


def make_hq(root: Path, n: int = 3, masks: bool = True, mapping: bool = False) -> dict[str, list[int]]:
    (root / "CelebA-HQ-img").mkdir(parents=True)
    rows = {f"{i}.jpg": row_values(100 + i) for i in range(n)}
    for i, name in enumerate(rows):
        write_image(root / "CelebA-HQ-img" / name, size=(64, 64), colour=(50 * i, 80, 80))
    write_attr(root / "CelebAMask-HQ-attribute-anno.txt", rows)
    if masks:
        folder = root / "CelebAMask-HQ-mask-anno" / "0"
        folder.mkdir(parents=True)
        for i in range(n):
            skin = np.zeros((32, 32), np.uint8)
            skin[4:28, 4:28] = 255
            hair = np.zeros((32, 32), np.uint8)
            hair[0:10, :] = 255  # overlaps the skin: hair (a later class) wins
            Image.fromarray(skin).save(folder / f"{i:05d}_skin.png")
            Image.fromarray(np.stack([hair] * 3, -1)).save(folder / f"{i:05d}_hair.png")
    if mapping:
        text = "idx orig_idx orig_file\n0 10 11.jpg\n1 170000 170001.jpg\n2 190000 190001.jpg\n"
        (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text(text)
    return rows


@pytest.mark.filterwarnings("ignore:photo_to_sketch")
def test_celebahq_items_and_masks(tmp_path):
    rows = make_hq(tmp_path)
    ds = CelebAHQ(tmp_path, size=16)
    assert len(ds) == 3 and ds.with_mask and ds.partition_source == "hash(seed=0)"
    item = ds[2]
    assert item["image"].shape == (3, 16, 16) and item["labels"].tolist() == [float(v == 1) for v in rows["2.jpg"]]
    mask = item["mask"]
    assert mask.shape == (16, 16) and mask.dtype == torch.int64
    hair, skin = MASK_CLASSES.index("hair"), MASK_CLASSES.index("skin")
    full = ds.load_mask("2.jpg")
    assert full.shape == (32, 32) and full[0, 0] == hair and full[5, 5] == hair and full[20, 20] == skin
    assert full[31, 31] == 0 and set(np.unique(mask.numpy())) == {0, skin, hair}
    sketch = CelebAHQ(tmp_path, size=16, sketch="computed")[0]["sketch"]
    assert sketch.shape == (1, 16, 16)


def test_celebahq_official_split_from_mapping(tmp_path):
    make_hq(tmp_path, masks=False, mapping=True)
    assert CelebAHQ(tmp_path, split="train", size=8).filenames == ["0.jpg"]
    assert CelebAHQ(tmp_path, split="valid", size=8).filenames == ["1.jpg"]
    assert CelebAHQ(tmp_path, split="test", size=8).filenames == ["2.jpg"]
    assert "mask" not in CelebAHQ(tmp_path, size=8)[0]
    with pytest.raises(FileNotFoundError, match="with_mask=True"):
        CelebAHQ(tmp_path, with_mask=True)


def test_celebahq_missing_mask_and_image(tmp_path):
    make_hq(tmp_path)
    for f in (tmp_path / "CelebAMask-HQ-mask-anno" / "0").glob("00001_*.png"):
        f.unlink()
    ds = CelebAHQ(tmp_path, size=8)
    with pytest.raises(CelebAFormatError, match="no mask file for image '1.jpg'"):
        ds[1]
    (tmp_path / "CelebA-HQ-img" / "2.jpg").unlink()
    with pytest.raises(CelebAFormatError, match="line 5: image '2.jpg' is listed"):
        CelebAHQ(tmp_path)


def test_mask_classes_match_the_procedural_module():
    assert MASK_CLASSES[0] == "background" and len(MASK_CLASSES) == 19
    from sketchface.data import procedural

    assert procedural.MASK_CLASSES == MASK_CLASSES


# ----------------------------------------------------------------------------------------------
# Plain image folders
# ----------------------------------------------------------------------------------------------


def test_image_folder(tmp_path):
    write_image(tmp_path / "b.png", size=(40, 60), colour=(0, 255, 0))
    write_image(tmp_path / "a.JPG", size=(90, 50), colour=(255, 0, 0))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path, size=24)
    assert len(ds) == 2 and [p.name for p in ds.files] == ["a.JPG", "b.png"]
    item = ds[1]
    assert set(item) == {"image"} and item["image"].shape == (3, 24, 24)
    assert item["image"][1].mean() > 0.9 and item["image"][0].mean() < 0.1
    (tmp_path / "c.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CelebAFormatError, match="c.png: cannot read the image"):
        ImageFolder(tmp_path)[2]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No images"):
        ImageFolder(tmp_path / "empty")


# ----------------------------------------------------------------------------------------------
# The real CelebA-mini subset (skipped when absent)
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (MINI / "list_attr_celeba.txt").is_file(), reason="shared/data/celeba-mini not present")
def test_celeba_mini():
    table = read_attr_file(MINI / "list_attr_celeba.txt")
    assert len(table) == 899 and table.filenames[0] == "000001.jpg"
    first = dict(zip(ATTRIBUTES, table.row("000001.jpg")))
    assert first["Smiling"] == 1 and first["Young"] == 1 and first["Male"] == -1
    splits = {s: CelebA(MINI, split=s, size=64) for s in ("train", "valid", "test")}
    names = [set(d.filenames) for d in splits.values()]
    assert sum(map(len, names)) == 899 and set.union(*names) == set(table.filenames)
    assert all(len(n) > 50 for n in names)
    assert CelebA(MINI, split="test").filenames == splits["test"].filenames, "deterministic"
    all_ = CelebA(MINI, split="all", size=64)
    item = all_[0]
    assert all_.filenames[0] == "000001.jpg" and item["image"].shape == (3, 64, 64)
    assert item["labels"][INDEX["Smiling"]] == 1 and item["labels"][INDEX["Young"]] == 1
    assert item["labels"][INDEX["Male"]] == 0
    assert 0.1 < item["image"].mean() < 0.9
