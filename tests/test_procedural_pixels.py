"""Rendered procedural faces stay byte-identical: image, parsing mask, labels and sketch strokes of a fixed set of
faces, pinned by digest. A guard for refactors of ``sketchface.data.procedural`` (issue 24: splitting ``_draw``).

Floating-point rendering can differ in the last bit between numpy / OpenCV releases, so the digests pin the
versions they were recorded with and the test skips under others. Re-record (after checking that a change is
intended) with ``python tests/test_procedural_pixels.py`` and paste its output over ``RECORDED``.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from sketchface.attributes import CRIMINALS
from sketchface.data.procedural import render

#: (name, render keyword arguments): every attribute branch is drawn on and off across the balanced seeds.
CASES = (
    [(f"celeba-128-{s}", {"seed": s, "size": 128}) for s in range(8)]
    + [(f"celeba-64-{s}", {"seed": s, "size": 64}) for s in range(4)]
    + [(f"balanced-96-{s}", {"seed": s, "size": 96, "mode": "balanced"}) for s in range(32)]
    + [(f"criminal-{i}", {"attributes": p.attributes, "seed": i, "size": 128}) for i, p in enumerate(CRIMINALS)]
)


def digest(face) -> str:
    h = hashlib.sha256()
    for arr in (face.image, face.mask, face.labels):
        h.update(np.ascontiguousarray(arr).tobytes())
        h.update(str((arr.dtype, arr.shape)).encode())
    for s in face.strokes:
        h.update(f"{s.kind}|{s.closed}|{s.width!r}|{s.points.dtype}|{s.points.shape}".encode())
        h.update(np.ascontiguousarray(s.points).tobytes())
    return h.hexdigest()[:20]


RECORDED = {
    "versions": ["2.4.6", "5.1.0"],
    "celeba-128-0": "2b61b79d1c7be3447a00",
    "celeba-128-1": "be6b05ad55591b18b6bf",
    "celeba-128-2": "30acaab3844820b63f92",
    "celeba-128-3": "7c1b3cec5e85fe9fae2a",
    "celeba-128-4": "d4e8d6e6f0339d77f1d6",
    "celeba-128-5": "efd575aaf55c9ba58b6d",
    "celeba-128-6": "828c2265fc06049bf32c",
    "celeba-128-7": "c14910f6bece429eba0d",
    "celeba-64-0": "827c9abe1a21363ebc86",
    "celeba-64-1": "a448a5ef476263e1989a",
    "celeba-64-2": "1f13cc274202878954b2",
    "celeba-64-3": "366dc51191dd2dece337",
    "balanced-96-0": "473f27387df68d1fc655",
    "balanced-96-1": "8b4f710e95fc99f40c72",
    "balanced-96-2": "f9639935bec7dd9ecc7a",
    "balanced-96-3": "fa9de5866ef8490e77c2",
    "balanced-96-4": "fea686fb6b287b114fd4",
    "balanced-96-5": "f6a2894a958d998a7665",
    "balanced-96-6": "e095e3be41965c379644",
    "balanced-96-7": "3a53f70980e766183982",
    "balanced-96-8": "0474df7bc11028678c84",
    "balanced-96-9": "0e74ec8401f7cfef65f2",
    "balanced-96-10": "30706c42b17f3f85877c",
    "balanced-96-11": "f164847c2d56efdc8ea4",
    "balanced-96-12": "818b6b3100672f613b92",
    "balanced-96-13": "cd7dac93a301fec05b1b",
    "balanced-96-14": "8cb890ae2f66db856efc",
    "balanced-96-15": "3e8a39d3746e2d289aab",
    "balanced-96-16": "1900783cb408a755ff14",
    "balanced-96-17": "0361a0e1f8e41bf0aa6a",
    "balanced-96-18": "d77c20147620aba00faf",
    "balanced-96-19": "cbd550238e3c941e5e17",
    "balanced-96-20": "a781926a689fca77da17",
    "balanced-96-21": "2ecebbc8d53951038c61",
    "balanced-96-22": "b96b1eaf128c835d626c",
    "balanced-96-23": "3948609ada1616ba0fdf",
    "balanced-96-24": "e331bc013ac693aa1571",
    "balanced-96-25": "bab023d38f2d92c0b63a",
    "balanced-96-26": "52291b768d1ba7301349",
    "balanced-96-27": "b5206429f3437d3ced65",
    "balanced-96-28": "11d92845eaca6dcc0694",
    "balanced-96-29": "858459509d9c89be8c59",
    "balanced-96-30": "34ab6025f1cd69d34b35",
    "balanced-96-31": "38feeb30ee833b6a4b40",
    "criminal-0": "73f10f5e5ca2bcb96331",
    "criminal-1": "13f28952f2985f9a530d",
    "criminal-2": "4a5ad835b9f03fb3b409",
}


def test_rendered_faces_are_byte_identical_to_the_recorded_ones():
    if RECORDED["versions"] != [np.__version__, cv2.__version__]:
        pytest.skip(
            f"digests recorded with numpy/OpenCV {RECORDED['versions']}, not {np.__version__}/{cv2.__version__}"
        )
    changed = [name for name, kwargs in CASES if digest(render(**kwargs)) != RECORDED[name]]
    assert not changed, f"{len(changed)} of {len(CASES)} faces render differently: {changed}"


if __name__ == "__main__":
    print("RECORDED = {")
    print(f'    "versions": {[np.__version__, cv2.__version__]!r},'.replace("'", '"'))
    for name, kwargs in CASES:
        print(f'    "{name}": "{digest(render(**kwargs))}",')
    print("}")
