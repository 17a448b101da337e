import sys

import torch
from torch.utils.data import Dataset

from sketchface.training import cli_command, pool_to_batch, render_pool


class Faces(Dataset):
    """Items in the dataset contract; item i is filled with i / 10 so the pool's order can be checked."""

    def __init__(self, n: int, sketch: bool = True):
        self.n, self.sketch = n, sketch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        item = {"image": torch.full((3, 4, 4), i / 10), "labels": torch.tensor([1.0, 0.0] * 20), "seed": i}
        if self.sketch:
            item["sketch"] = torch.full((1, 4, 4), 1.5)  # out of range: clamped to white
        return item


def test_render_pool_materialises_uint8_in_order():
    pool = render_pool(Faces(7), batch_size=3)
    assert set(pool) == {"image", "labels", "sketch"} and all(v.dtype == torch.uint8 for v in pool.values())
    assert pool["image"].shape == (7, 3, 4, 4) and pool["image"][:, 0, 0, 0].tolist() == [0, 26, 51, 76, 102, 128, 153]
    assert pool["labels"][0, :4].tolist() == [1, 0, 1, 0] and int(pool["sketch"].min()) == 255
    assert set(render_pool(Faces(5, sketch=False))) == {"image", "labels"}  # no sketch: none asked for
    assert set(render_pool(Faces(5), keys=("image",))) == {"image"}


def test_render_pool_keeps_edits_and_pool_to_batch_restores_them():
    class Edited(Faces):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            item["edited_image"] = torch.full((3, 4, 4), 0.2)
            item["edited_labels"] = torch.tensor([0.0, 1.0] * 20)
            item["switched"] = torch.ones(40)
            return item

    pool = render_pool(Edited(5), batch_size=2)
    assert set(pool) == {"image", "labels", "sketch", "edited_image", "edited_labels", "switched"}
    assert int(pool["edited_image"][0, 0, 0, 0]) == 51 and pool["edited_labels"][0, :2].tolist() == [0, 1]
    batch = pool_to_batch(pool, torch.tensor([4, 1]))
    assert all(v.dtype == torch.float32 for v in batch.values())
    torch.testing.assert_close(batch["image"][:, 0, 0, 0], torch.tensor([102, 26]) / 255)
    assert batch["sketch"].max() == 1 and batch["switched"].min() == 1 and batch["labels"][0, :2].tolist() == [1, 0]


def test_render_pool_stops_after_max_minutes():
    pool = render_pool(Faces(10), max_minutes=0.0, batch_size=4)  # the first batch is always kept
    assert len(pool["image"]) == 4


def test_cli_command_from_config(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest"])  # not the script itself: the command is rebuilt from the config
    cmd = cli_command(
        "mvae",
        {"steps": 10, "sketch": False, "widths": [8, 16], "lr": 0.001, "resume": True},
        {"steps": 6000, "sketch": True, "widths": [32], "lr": 0.001, "resume": False},
        skip=("resume",),
    )
    assert cmd == "python train/mvae.py --steps 10 --no-sketch --widths 8 16"


def test_cli_command_quotes_the_running_script(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train/classifier.py", "--max_steps", "5"])
    assert cli_command("classifier", {"max_steps": 5}, {"max_steps": 1}) == "python train/classifier.py --max_steps 5"


def test_atomic_write_bytes_text_and_callables(tmp_path):
    from sketchface.training import atomic_write

    assert atomic_write(tmp_path / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(str(tmp_path / "b.md"), "ü text").read_bytes() == "ü text".encode()
    seen = []
    atomic_write(tmp_path / "c.pt", lambda tmp: (seen.append(tmp.name), torch.save({"x": torch.ones(2)}, tmp)))
    assert seen == ["c.pt.tmp"] and torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["x"], torch.ones(2))
    (tmp_path / "b.md").write_text("old")
    try:
        atomic_write(tmp_path / "b.md", lambda tmp: (tmp.write_text("half"), 1 / 0))
    except ZeroDivisionError:
        pass
    assert (tmp_path / "b.md").read_text() == "old"  # a failed write leaves the previous file in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.md", "b.md.tmp", "c.pt"]


def test_render_pool_reports_a_pool_cut_short():
    info = {}
    pool = render_pool(Faces(10), max_minutes=0, batch_size=4, info=info)
    assert info["capped"] and info["faces"] == len(pool["image"]) < info["of"]
    render_pool(Faces(10), batch_size=4, info=info)
    assert not info["capped"] and info["faces"] == info["of"]


def test_face_dataset_reads_celeba_celeba_hq_and_image_folders(tmp_path):
    import pytest

    from sketchface.training import face_dataset
    from tests.test_celeba import make_celeba, make_hq, write_image

    make_celeba(tmp_path / "celeba")
    ds = face_dataset("celeba", str(tmp_path / "celeba"), size=16, split="train", sketch="mixed")
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and item["sketch"].shape == (1, 16, 16) and item["labels"].shape == (40,)
    make_hq(tmp_path / "hq")
    item = face_dataset("celeba-hq", str(tmp_path / "hq"), size=16, split="all", sketch="computed")[0]
    assert item["sketch"].shape == (1, 16, 16) and item["labels"].shape == (40,)
    assert "mask" not in face_dataset("celeba-hq", str(tmp_path / "hq"), size=16, split="all")[0]
    (tmp_path / "folder").mkdir()
    for i in range(30):
        write_image(tmp_path / "folder" / f"{i:03d}.png", size=(20, 24))
    parts = [face_dataset("folder", str(tmp_path / "folder"), size=16, split=s) for s in ("train", "valid", "test")]
    assert sum(len(p) for p in parts) == 30 and len(parts[0]) > 15 and "labels" not in parts[0][0]
    with pytest.raises(ValueError, match="--data_root"):
        face_dataset("celeba", None, size=16)
