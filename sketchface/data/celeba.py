"""Readers for the official CelebA / CelebAMask-HQ files, and datasets over them.

The project reads the formats itself: torchvision's ``CelebA`` class insists on the complete,
md5-checked official files, while SketchFace must also work on subsets (``celeba-mini``) and
without a partition file.

Layouts (``root`` is the folder passed to the datasets)::

    CelebA                               CelebAMask-HQ
    root/img_align_celeba/000001.jpg     root/CelebA-HQ-img/0.jpg … 29999.jpg
    root/list_attr_celeba.txt            root/CelebAMask-HQ-attribute-anno.txt
    root/list_eval_partition.txt (opt.)  root/CelebA-HQ-to-CelebA-mapping.txt (optional: official split)
                                         root/CelebAMask-HQ-mask-anno/0/00000_hair.png … (optional masks)

``list_attr_celeba.txt``: line 1 is the number of images, line 2 the 40 attribute names in
official order, then one row per image, ``000001.jpg -1  1  1 -1 …`` (values 1 / -1, separated
by any whitespace). ``CelebAMask-HQ-attribute-anno.txt`` has the same shape with ``0.jpg`` …;
its values are 1 / -1 in the released file, and 0 / 1 files (as some re-exports write) are
accepted too (0 → absent), as long as one file does not mix the two conventions.
``list_eval_partition.txt``: ``000001.jpg 0`` with 0 = train, 1 = valid, 2 = test.

Every reader checks everything and raises :class:`CelebAFormatError` naming the file and line:
nothing is skipped silently.

Dataset items are dicts (the same contract as :mod:`sketchface.data.procedural`):
``"image"`` float32 (3, S, S) in [0, 1]; ``"labels"`` float32 (40,) in {0, 1} (absent for
:class:`ImageFolder`); ``"mask"`` int64 (S, S) CelebAMask-HQ class ids (:data:`MASK_CLASSES`),
only for :class:`CelebAHQ` with masks; ``"sketch"`` float32 (1, S, S) in [0, 1] (white paper = 1)
when ``sketch="computed"``.

Crops (:func:`crop_box`; the aligned CelebA images are 178×218, face centred):

* ``"paper1"`` (default): the centred 178×178 square (rows 20–198), then resized. This is what
  torchvision's ``Resize(64)`` + ``CenterCrop(64)`` does, as in the MVAE reference code
  (mhw32/multimodal-vae-public, ``celeba/train.py``) that paper 1 builds on; paper 1 itself only
  says the images were "re-sized to 64x64". Shows hair and chin.
* ``"face"``: the tighter 148×148 box at x=15, y=40 used by many CelebA GAN/VAE codes.
* ``"center"``: torchvision ``CenterCrop(148)`` (x=15, y=35).
* ``"square"``: the centred square of the shorter side, for any image (same as ``"paper1"``).
* ``"none"``: no crop; the whole image is squashed to a square.

For images of other sizes the boxes scale with the shorter side (``"face"`` keeps its relative
vertical offset 40/218).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..attributes import ATTRIBUTES, NUM_ATTRIBUTES
from .sketch import MASK_CLASSES, photo_to_sketch  # MASK_CLASSES: CelebAMask-HQ's, index = class id (0 = background)

__all__ = [
    "CROPS",
    "MASK_CLASSES",
    "SPLITS",
    "AttributeTable",
    "CelebA",
    "CelebAFormatError",
    "CelebAHQ",
    "ImageFolder",
    "LICENCE_NOTE",
    "crop_box",
    "deterministic_split",
    "read_attr_file",
    "read_hq_attr_file",
    "read_hq_mapping_file",
    "read_partition_file",
]


#: What every model card of a model trained on CelebA says about the data (the images are research-only).
LICENCE_NOTE = (
    "Trained on CelebA images (CelebA-mini, a subset of the official training split). CelebA is available for "
    "**non-commercial research purposes only** (see the CelebA agreement); this model inherits that restriction."
)

#: Split names and their code in ``list_eval_partition.txt``.
SPLITS: dict[str, int] = {"train": 0, "valid": 1, "test": 2}
CROPS: tuple[str, ...] = ("paper1", "face", "center", "square", "none")
CELEBA_SIZE = 202_599  # images in the full official release
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class CelebAFormatError(ValueError):
    """A CelebA file that does not follow the official format (or names an image that is missing).

    ``path`` and ``line`` (1-based, or ``None`` for the whole file) say where.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


# ----------------------------------------------------------------------------------------------
# File readers
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeTable:
    """The contents of an attribute file: image names (file order) and ±1 labels, shape (N, 40) int8."""

    path: Path
    filenames: tuple[str, ...]
    labels: np.ndarray
    lines: tuple[int, ...]  # the 1-based line each row came from (for error messages)

    def __len__(self) -> int:
        return len(self.filenames)

    def row(self, filename: str) -> np.ndarray:
        """The ±1 labels of one image."""
        return self.labels[self.filenames.index(filename)]


def _read_lines(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", newline=None) as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as err:
        raise CelebAFormatError(path, None, f"not a UTF-8/ASCII text file ({err.reason}).") from err
    while lines and not lines[-1].strip():  # trailing blank lines at the end of the file are harmless
        lines.pop()
    return lines


def _read_attr(path: str | os.PathLike, allow_zero_one: bool) -> AttributeTable:
    path = Path(path)
    lines = _read_lines(path)
    if len(lines) < 2:
        raise CelebAFormatError(
            path, None, "expected a count line and a line of 40 attribute names; the file is too short."
        )
    count_text = lines[0].strip()
    if not count_text.isdigit():
        raise CelebAFormatError(path, 1, f"expected the number of images, got {lines[0][:60]!r}.")
    count = int(count_text)
    names = lines[1].split()
    if tuple(names) != ATTRIBUTES:
        if len(names) != NUM_ATTRIBUTES:
            detail = f"found {len(names)} names"
        else:
            k = next(i for i, (a, b) in enumerate(zip(names, ATTRIBUTES)) if a != b)
            detail = f"name {k + 1} is {names[k]!r}, expected {ATTRIBUTES[k]!r}"
        raise CelebAFormatError(path, 2, f"expected the 40 CelebA attribute names in official order; {detail}.")

    allowed = {"1", "-1", "0"} if allow_zero_one else {"1", "-1"}
    filenames: list[str] = []
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    seen: dict[str, int] = {}
    first_minus: int | None = None  # line of the first -1 and of the first 0 (conventions must not mix)
    first_zero: int | None = None
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            raise CelebAFormatError(path, lineno, "blank line inside the table.")
        if len(parts) != NUM_ATTRIBUTES + 1:
            raise CelebAFormatError(
                path, lineno, f"expected an image name and 40 values, got {len(parts) - 1} values for {parts[0]!r}."
            )
        name, values = parts[0], parts[1:]
        for k, v in enumerate(values):
            if v not in allowed:
                expected = "1/-1 (or 0/1)" if allow_zero_one else "1 or -1"
                raise CelebAFormatError(path, lineno, f"{name}: {ATTRIBUTES[k]} is {v!r}; expected {expected}.")
        if allow_zero_one:
            if first_minus is None and "-1" in values:
                first_minus = lineno
            if first_zero is None and "0" in values:
                first_zero = lineno
            if first_minus is not None and first_zero is not None:
                raise CelebAFormatError(
                    path,
                    max(first_minus, first_zero),
                    f"mixes the 1/-1 convention (line {first_minus}) with 0/1 (line {first_zero}).",
                )
        if name in seen:
            raise CelebAFormatError(path, lineno, f"duplicate image {name!r} (first listed on line {seen[name]}).")
        seen[name] = lineno
        filenames.append(name)
        rows.append(values)
        line_numbers.append(lineno)
    if count != len(rows):
        raise CelebAFormatError(path, 1, f"the count line says {count} images but the file lists {len(rows)}.")
    labels = np.array(rows, dtype=np.int8).reshape(len(rows), NUM_ATTRIBUTES)
    labels[labels == 0] = -1  # 0/1 convention → ±1
    return AttributeTable(path, tuple(filenames), labels, tuple(line_numbers))


def read_attr_file(path: str | os.PathLike) -> AttributeTable:
    """Read ``list_attr_celeba.txt`` (or a subset of it: the count line must match the rows present).

    Raises :class:`CelebAFormatError` (file and line) for a bad count line, a header that is not the 40
    names in order, a row without exactly 40 values, a value other than 1 / -1, or a duplicate image.
    """
    return _read_attr(path, allow_zero_one=False)


def read_hq_attr_file(path: str | os.PathLike) -> AttributeTable:
    """Read ``CelebAMask-HQ-attribute-anno.txt``: as :func:`read_attr_file`, values 1/-1 or 0/1 (not mixed)."""
    return _read_attr(path, allow_zero_one=True)


def read_partition_file(path: str | os.PathLike) -> dict[str, int]:
    """Read ``list_eval_partition.txt``: image name → 0 (train), 1 (valid) or 2 (test), in file order."""
    path = Path(path)
    out: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2:
            raise CelebAFormatError(path, lineno, f"expected 'image_name 0|1|2', got {line.strip()[:60]!r}.")
        name, code = parts
        if code not in ("0", "1", "2"):
            raise CelebAFormatError(path, lineno, f"{name}: partition is {code!r}; expected 0, 1 or 2.")
        if name in out:
            raise CelebAFormatError(path, lineno, f"duplicate image {name!r} (first listed on line {lines_of[name]}).")
        out[name] = int(code)
        lines_of[name] = lineno
    return out


def read_hq_mapping_file(path: str | os.PathLike) -> dict[str, str]:
    """Read ``CelebA-HQ-to-CelebA-mapping.txt`` (header ``idx orig_idx orig_file``): ``"0.jpg"`` → ``"119614.jpg"``."""
    path = Path(path)
    lines = _read_lines(path)
    if not lines or lines[0].split() != ["idx", "orig_idx", "orig_file"]:
        raise CelebAFormatError(path, 1, "expected the header 'idx orig_idx orig_file'.")
    out: dict[str, str] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise CelebAFormatError(path, lineno, f"expected 'idx orig_idx orig_file', got {line.strip()[:60]!r}.")
        key = f"{parts[0]}.jpg"
        if key in out:
            raise CelebAFormatError(path, lineno, f"duplicate idx {parts[0]}.")
        out[key] = parts[2]
    return out


def _official_partition(celeba_filename: str) -> int:
    """CelebA's official split by image number: 1–162770 train, 162771–182637 valid, the rest test."""
    number = int(Path(celeba_filename).stem)
    return 0 if number <= 162_770 else 1 if number <= 182_637 else 2


def deterministic_split(
    filenames: Sequence[str], seed: int = 0, valid_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, int]:
    """Assign each image to train (0), valid (1) or test (2) from a seeded hash of its file name.

    An image's split depends only on its name and ``seed``, never on which other images are present,
    so adding images never moves existing ones between splits. The fractions hold approximately.
    """
    if not (0 <= valid_fraction and 0 <= test_fraction and valid_fraction + test_fraction < 1):
        raise ValueError(
            f"need 0 <= valid_fraction, test_fraction and a sum < 1; got {valid_fraction}, {test_fraction}."
        )
    out = {}
    for name in filenames:
        digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64  # uniform in [0, 1)
        out[name] = 2 if u < test_fraction else 1 if u < test_fraction + valid_fraction else 0
    return out


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


def crop_box(width: int, height: int, crop: str) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of a crop (see the module docstring) for an image of this size."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}; got {crop!r}.")
    short = min(width, height)
    if crop == "none":
        return 0, 0, width, height
    if crop in ("paper1", "square"):
        side = short
        top = round((height - side) / 2)
    elif crop == "center":
        side = round(short * 148 / 178)
        top = round((height - side) / 2)
    else:  # "face"
        side = round(short * 148 / 178)
        top = min(round(height * 40 / 218), height - side)
    left = round((width - side) / 2)
    return left, top, left + side, top + side


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise CelebAFormatError(path, None, f"cannot read the image ({err}).") from err


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB → float32 (3, H, W) in [0, 1]; PIL L → (1, H, W)."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def _computed_sketch(img: Image.Image, mask: np.ndarray | None, size: int) -> torch.Tensor:
    """Paper 2's colour-dodge sketch of the (cropped) photo, resized to ``size``: float32 (1, S, S)."""
    sketch = photo_to_sketch(img, mask=mask)
    return _to_tensor(sketch.convert("L").resize((size, size), Image.Resampling.BICUBIC))


def _check_common(size: int, sketch: str | None) -> None:
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8; got {size!r}.")
    if sketch not in (None, "computed"):
        raise ValueError(f"sketch must be None or 'computed'; got {sketch!r}.")


def _select_split(
    split: str, names: Sequence[str], partition: dict[str, int] | None, seed: int, valid: float, test: float
) -> list[int]:
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be 'train', 'valid', 'test' or 'all'; got {split!r}.")
    if split == "all":
        return list(range(len(names)))
    parts = partition if partition is not None else deterministic_split(names, seed, valid, test)
    return [i for i, n in enumerate(names) if parts[n] == SPLITS[split]]


def _check_images_exist(folder: Path, table: AttributeTable, indices: Sequence[int]) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"Image folder {folder} does not exist (the attribute file is {table.path}).")
    present = set(os.listdir(folder))
    missing = [i for i in indices if table.filenames[i] not in present]
    if missing:
        first = missing[0]
        more = f" ({len(missing) - 1} more listed images are missing too)" if len(missing) > 1 else ""
        raise CelebAFormatError(
            table.path,
            table.lines[first],
            f"image {table.filenames[first]!r} is listed but {folder / table.filenames[first]} does not exist{more}.",
        )


class CelebA(Dataset):
    """Aligned CelebA (``img_align_celeba/`` + ``list_attr_celeba.txt``) at ``size``×``size``.

    Args:
        root: folder with the official layout; subsets are fine (e.g. ``shared/data/celeba-mini``).
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``. With ``list_eval_partition.txt`` the
            official split; without it, :func:`deterministic_split` (seeded hash of the file name).
        size: output side in pixels (paper 1: 64).
        crop: see the module docstring (default ``"paper1"``: centred 178×178 square, as MVAE's code).
        sketch: ``None`` or ``"computed"`` (paper 2's colour-dodge sketch of the same crop, as ``"sketch"``).
        seed, valid_fraction, test_fraction: the deterministic split when there is no partition file.

    Every listed image of the chosen split must exist (checked here, the error names file and line);
    an image that cannot be decoded raises :class:`CelebAFormatError` naming it when loaded.
    """

    attr_filename = "list_attr_celeba.txt"
    partition_filename = "list_eval_partition.txt"
    image_dirname = "img_align_celeba"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: int = 64,
        crop: str = "paper1",
        sketch: str | None = None,
        seed: int = 0,
        valid_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ):
        _check_common(size, sketch)
        crop_box(178, 218, crop)  # validates the name
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"CelebA root {self.root} does not exist.")
        attr_path = self.root / self.attr_filename
        if not attr_path.is_file():
            raise FileNotFoundError(f"{attr_path} not found: expected the official CelebA layout under {self.root}.")
        self.table = read_attr_file(attr_path)
        partition = None
        part_path = self.root / self.partition_filename
        if part_path.is_file():
            partition = read_partition_file(part_path)
            missing = [n for n in self.table.filenames if n not in partition]
            if missing:
                raise CelebAFormatError(
                    part_path, None, f"has no partition for {missing[0]!r} ({len(missing)} listed images missing)."
                )
        self.partition_source = "official" if partition is not None else f"hash(seed={seed})"
        self.indices = _select_split(split, self.table.filenames, partition, seed, valid_fraction, test_fraction)
        self.image_dir = self.root / self.image_dirname
        _check_images_exist(self.image_dir, self.table, self.indices)
        self.split, self.size, self.crop, self.sketch = split, size, crop, sketch

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def filenames(self) -> list[str]:
        """Image file names of this split, in item order."""
        return [self.table.filenames[i] for i in self.indices]

    @property
    def labels(self) -> np.ndarray:
        """±1 labels of this split, (N, 40) int8."""
        return self.table.labels[self.indices]

    def path(self, index: int) -> Path:
        return self.image_dir / self.table.filenames[self.indices[index]]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images.")
        row = self.indices[index]
        img = _open_rgb(self.path(index))
        cropped = img.crop(crop_box(*img.size, self.crop))
        item = {
            "image": _to_tensor(cropped.resize((self.size, self.size), Image.Resampling.BICUBIC)).clamp_(0, 1),
            "labels": torch.from_numpy((self.table.labels[row] == 1).astype(np.float32)),
        }
        if self.sketch == "computed":
            item["sketch"] = _computed_sketch(cropped, None, self.size)
        return item

    def __repr__(self) -> str:
        return (
            f"CelebA(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, size={self.size}, "
            f"crop={self.crop!r}, partition={self.partition_source})"
        )


class CelebAHQ(Dataset):
    """CelebA-HQ / CelebAMask-HQ (``CelebA-HQ-img/`` + ``CelebAMask-HQ-attribute-anno.txt``).

    The 1024×1024 images are resized whole to ``size`` (they are already square and face-centred).
    ``with_mask`` (default: when ``CelebAMask-HQ-mask-anno/`` exists) adds ``"mask"``: the per-part
    masks ``CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png`` combined into one class-id map in
    :data:`MASK_CLASSES` order, a later class overwriting an earlier one where they overlap (as the
    official ``g_mask.py``), resized with nearest neighbour. A part without a file is not annotated
    (fully occluded or absent); an image with no part file at all is an error.

    Splits: with ``CelebA-HQ-to-CelebA-mapping.txt``, CelebA's official split of the source image (as
    the official ``g_partition.py``); otherwise :func:`deterministic_split`.
    """

    attr_filename = "CelebAMask-HQ-attribute-anno.txt"
    mapping_filename = "CelebA-HQ-to-CelebA-mapping.txt"
    image_dirname = "CelebA-HQ-img"
    mask_dirname = "CelebAMask-HQ-mask-anno"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "all",
        size: int = 256,
        sketch: str | None = None,
        with_mask: bool | None = None,
        seed: int = 0,
        valid_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ):
        _check_common(size, sketch)
        self.root = Path(root)
        attr_path = self.root / self.attr_filename
        if not attr_path.is_file():
            raise FileNotFoundError(f"{attr_path} not found: expected the CelebAMask-HQ layout under {self.root}.")
        self.table = read_hq_attr_file(attr_path)
        partition = None
        mapping_path = self.root / self.mapping_filename
        if mapping_path.is_file():
            mapping = read_hq_mapping_file(mapping_path)
            missing = [n for n in self.table.filenames if n not in mapping]
            if missing:
                raise CelebAFormatError(mapping_path, None, f"has no entry for {missing[0]!r}.")
            partition = {n: _official_partition(mapping[n]) for n in self.table.filenames}
        self.partition_source = "official" if partition is not None else f"hash(seed={seed})"
        self.indices = _select_split(split, self.table.filenames, partition, seed, valid_fraction, test_fraction)
        self.image_dir = self.root / self.image_dirname
        _check_images_exist(self.image_dir, self.table, self.indices)
        self.mask_dir = self.root / self.mask_dirname
        if with_mask is None:
            with_mask = self.mask_dir.is_dir()
        elif with_mask and not self.mask_dir.is_dir():
            raise FileNotFoundError(f"with_mask=True but {self.mask_dir} does not exist.")
        self.split, self.size, self.sketch, self.with_mask = split, size, sketch, with_mask

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def filenames(self) -> list[str]:
        return [self.table.filenames[i] for i in self.indices]

    def path(self, index: int) -> Path:
        return self.image_dir / self.table.filenames[self.indices[index]]

    def load_mask(self, filename: str) -> np.ndarray:
        """The combined class-id map of one image at the masks' own resolution (512×512): uint8 (H, W)."""
        number = int(Path(filename).stem)
        folder = self.mask_dir / str(number // 2000)
        combined: np.ndarray | None = None
        for class_id, part in enumerate(MASK_CLASSES[1:], start=1):
            part_path = folder / f"{number:05d}_{part}.png"
            if not part_path.is_file():
                continue
            try:
                with Image.open(part_path) as im:
                    arr = np.asarray(im)
            except (OSError, UnidentifiedImageError, ValueError) as err:
                raise CelebAFormatError(part_path, None, f"cannot read the mask ({err}).") from err
            if arr.ndim == 3:
                arr = arr[:, :, 0]  # the official script reads the first channel
            if combined is None:
                combined = np.zeros(arr.shape, dtype=np.uint8)
            elif arr.shape != combined.shape:
                raise CelebAFormatError(part_path, None, f"mask size {arr.shape} differs from {combined.shape}.")
            combined[arr != 0] = class_id  # later classes overwrite earlier ones, as g_mask.py
        if combined is None:
            raise CelebAFormatError(
                folder, None, f"no mask file for image {filename!r} (expected {number:05d}_<part>.png)."
            )
        return combined

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images.")
        row = self.indices[index]
        img = _open_rgb(self.path(index))
        item = {
            "image": _to_tensor(img.resize((self.size, self.size), Image.Resampling.BICUBIC)).clamp_(0, 1),
            "labels": torch.from_numpy((self.table.labels[row] == 1).astype(np.float32)),
        }
        mask = None
        if self.with_mask:
            mask = self.load_mask(self.table.filenames[row])
            small = Image.fromarray(mask).resize((self.size, self.size), Image.Resampling.NEAREST)
            item["mask"] = torch.from_numpy(np.asarray(small).astype(np.int64))
        if self.sketch == "computed":
            item["sketch"] = _computed_sketch(img, mask, self.size)
        return item


class ImageFolder(Dataset):
    """Any folder of face images (sorted file names, no labels): items have ``"image"`` (and ``"sketch"``).

    ``crop`` defaults to ``"square"`` (centred square of the shorter side). Files that are not images by
    extension are ignored; an image that cannot be decoded raises :class:`CelebAFormatError` when loaded.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int = 64,
        crop: str = "square",
        sketch: str | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ):
        _check_common(size, sketch)
        crop_box(64, 64, crop)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"Image folder {self.root} does not exist.")
        exts = tuple(e.lower() for e in extensions)
        self.files = sorted(p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in exts)
        if not self.files:
            raise FileNotFoundError(f"No images ({', '.join(exts)}) in {self.root}.")
        self.size, self.crop, self.sketch = size, crop, sketch

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        img = _open_rgb(self.files[index])
        cropped = img.crop(crop_box(*img.size, self.crop))
        item = {"image": _to_tensor(cropped.resize((self.size, self.size), Image.Resampling.BICUBIC)).clamp_(0, 1)}
        if self.sketch == "computed":
            item["sketch"] = _computed_sketch(cropped, None, self.size)
        return item
