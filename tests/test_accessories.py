"""Drawn glasses and mustaches (sketchface.data.accessories): where they go, which labels change, what stays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchface.attributes import INDEX, NUM_ATTRIBUTES
from sketchface.data.accessories import EYES, UPPER_LIP, add_accessories

GLASSES, MUSTACHE, NO_BEARD, MALE = (INDEX[a] for a in ("Eyeglasses", "Mustache", "No_Beard", "Male"))


def _batch(n: int = 8, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = 0.55 + 0.05 * torch.rand(n, 3, size, size, generator=g)  # light, even "skin"
    images[:, :, : size // 8] = 0.15  # dark hair at the top
    labels = -torch.ones(n, NUM_ATTRIBUTES)
    labels[:, NO_BEARD] = 1
    labels[: n // 2, MALE] = 1
    labels[0, GLASSES] = 1  # already wears glasses
    labels[1, MUSTACHE] = 1  # already has a mustache
    return images, labels


def _changed_rows(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    """Per image row (fraction of the height), how much the pixels changed."""
    return (after - before).abs().sum((0, 1, 3)).numpy()


def test_glasses_on_everyone_labelled_without_them_over_the_eyes():
    images, labels = _batch()
    out, new = add_accessories(images, labels, np.random.default_rng(0), p_glasses=1.0, p_mustache=0.0)
    assert (new[:, GLASSES] == 1).all()
    assert torch.equal(out[0], images[0])  # already labelled with glasses: untouched
    strongest = (out[1:] - images[1:]).abs().amax((1, 2, 3))
    assert (strongest > 0.03).all()  # every other face gets frames (silver ones on light skin show little)
    assert (strongest > 0.2).float().mean() > 0.6  # most of them stand out
    changed = _changed_rows(images[1:], out[1:])
    size = images.shape[-1]
    eyes = slice(int((EYES[0][1] - 0.15) * size), int((EYES[0][1] + 0.15) * size))
    assert changed[eyes].sum() > 0.95 * changed.sum()  # drawn around the eyes
    assert torch.equal(torch.cat([new[:, :GLASSES], new[:, GLASSES + 1 :]], 1),
                       torch.cat([labels[:, :GLASSES], labels[:, GLASSES + 1 :]], 1))  # fmt: skip
    assert torch.equal(images, _batch()[0])  # the input is not modified


def test_mustache_only_on_men_without_one_and_they_lose_no_beard():
    images, labels = _batch()
    out, new = add_accessories(images, labels, np.random.default_rng(1), p_glasses=0.0, p_mustache=1.0)
    men = labels[:, MALE] > 0
    drawn = men & (labels[:, MUSTACHE] < 0)
    assert (new[drawn, MUSTACHE] == 1).all() and (new[drawn, NO_BEARD] == -1).all()
    assert torch.equal(out[~drawn], images[~drawn]) and torch.equal(new[~drawn], labels[~drawn])
    changed = _changed_rows(images[drawn], out[drawn])
    size = images.shape[-1]
    lip = slice(int((UPPER_LIP[1] - 0.1) * size), int((UPPER_LIP[1] + 0.1) * size))
    assert changed[lip].sum() > 0.95 * changed.sum()
    # coloured like the dark hair: darker than the skin it covers
    row = int(UPPER_LIP[1] * size)
    assert (out[drawn, :, row, size // 2] < images[drawn, :, row, size // 2] - 0.1).all()


def test_shares_are_respected_and_draws_repeat_with_the_seed():
    images = torch.full((400, 3, 16, 16), 0.6)
    labels = -torch.ones(400, NUM_ATTRIBUTES)
    labels[:, MALE] = 1
    _, new = add_accessories(images, labels, np.random.default_rng(2), p_glasses=0.25, p_mustache=0.5)
    assert 0.18 < float((new[:, GLASSES] > 0).float().mean()) < 0.32
    assert 0.42 < float((new[:, MUSTACHE] > 0).float().mean()) < 0.58
    a = add_accessories(images[:20], labels[:20], np.random.default_rng(3), 0.5, 0.5)
    b = add_accessories(images[:20], labels[:20], np.random.default_rng(3), 0.5, 0.5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    none = add_accessories(images[:20], labels[:20], np.random.default_rng(3), 0.0, 0.0)
    assert torch.equal(none[0], images[:20]) and torch.equal(none[1], labels[:20])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(N, 3, S, S\)"):
        add_accessories(torch.zeros(2, 1, 8, 8), -torch.ones(2, NUM_ATTRIBUTES), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(N, 3, S, S\)"):
        add_accessories(torch.zeros(2, 3, 8, 12), -torch.ones(2, NUM_ATTRIBUTES), np.random.default_rng(0))
