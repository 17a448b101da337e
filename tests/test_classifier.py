"""AttributeClassifier: shapes, resizing, save/load round trip, and the training script end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
TINY = ClassifierConfig(image_size=16, stem_width=4, widths=[8, 8], dropout=0.0)


class TinyFaces(Dataset):
    """Stand-in dataset: attribute 0 ("5_o_Clock_Shadow") = bright image, the rest random."""

    def __init__(self, n: int = 32, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = (torch.rand(n, 40, generator=g) > 0.5).float()
        self.images = torch.rand(n, 3, size, size, generator=g) * 0.5 + self.labels[:, :1, None, None] * 0.5

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "labels": self.labels[i]}


def test_shapes_and_any_input_size():
    torch.manual_seed(0)
    model = AttributeClassifier(TINY).eval()
    for size in (16, 32, 64):
        x = torch.rand(3, 3, size, size)
        assert model(x).shape == (3, 40)
        assert model.features(x).shape == (3, model.feature_dim) == (3, 8)
    p = model.predict(torch.rand(2, 3, 40, 40))
    assert p.shape == (2, 40) and float(p.min()) >= 0 and float(p.max()) <= 1
    with pytest.raises(ValueError):
        model(torch.rand(2, 1, 16, 16))


def test_default_config_is_small():
    model = AttributeClassifier()
    n = sum(p.numel() for p in model.parameters())
    assert n * 4 < 2.0e6  # ≤ 2 MB of float32 weights
    assert model.config.image_size == 64


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = AttributeClassifier(TINY)
    model.train()(torch.rand(4, 3, 16, 16))  # move BatchNorm running stats away from their defaults
    model.eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())  # flat, as huggingface_hub writes dataclass configs
    assert saved["widths"] == [8, 8] and saved["model_type"] == "attribute-classifier"
    loaded = AttributeClassifier.from_pretrained(tmp_path)
    assert loaded.config == model.config and not loaded.training
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_data_argument_forms():
    train = load_script("classifier")
    train_args, cfg = train.parse_args(["--data", "celeba:/some/root"])
    assert (cfg.data, cfg.data_root) == ("celeba", "/some/root")
    assert train.parse_args(["--data", "celeba", "--data_root", "/r"])[1].data_root == "/r"
    for bad in (["--data", "celeba"], ["--data", "imagenet"], ["--noise", "-0.1"], ["--eval_noise", "3"]):
        with pytest.raises(SystemExit):
            train.parse_args(bad)


def test_noise_augmentation_and_noisy_held_out_set():
    train = load_script("classifier")
    x = torch.full((64, 3, 16, 16), 0.5)
    # without noise the augmentation of a flat grey image stays flat (shift, flip and contrast keep it flat)
    flat = train.augment(x, torch.Generator().manual_seed(0))
    assert float((flat - flat.mean(dim=(1, 2, 3), keepdim=True)).abs().max()) < 1e-5
    noisy = train.augment(x, torch.Generator().manual_seed(0), noise=0.05)
    spread = (noisy - noisy.mean(dim=(1, 2, 3), keepdim=True)).flatten(1).std(1)
    touched = spread > 1e-4
    assert 16 < int(touched.sum()) < 48  # about half the images get noise …
    assert float(spread.max()) < 0.06  # … of std at most `noise`
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1

    held_out = {"tiny": TinyFaces(8), "other": TinyFaces(8, seed=1)}
    assert train.with_noisy_copy(held_out, 0) is held_out
    sets = train.with_noisy_copy(held_out, 0.03)
    assert list(sets) == ["tiny", "other", "tiny+noise0.03"]
    a, b, clean = sets["tiny+noise0.03"][3], sets["tiny+noise0.03"][3], held_out["tiny"][3]
    torch.testing.assert_close(a["image"], b["image"])  # the same noise every time: repeatable evaluations
    torch.testing.assert_close(a["labels"], clean["labels"])
    diff = a["image"] - clean["image"]
    assert 0.02 < float(diff.std()) < 0.04 and float(a["image"].min()) >= 0


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        ClassifierConfig(image_size=8)
    with pytest.raises(ValueError):
        ClassifierConfig(widths=[])


def _tiny_args(out: Path) -> list[str]:
    return [
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--batch_size",
        "8",
        "--eval_samples",
        "16",
        "--image_size",
        "16",
        "--stem_width",
        "4",
        "--widths",
        "8",
        "8",
        "--num_workers",
        "0",
        "--checkpoint_every",
        "1",
    ]


def test_training_script_two_steps_with_stand_in_data(tmp_path, monkeypatch):
    train = load_script("classifier")
    monkeypatch.setattr(train, "build_datasets", lambda cfg: (TinyFaces(32), {"tiny": TinyFaces(16, seed=1)}))
    train_args, cfg = train.parse_args(_tiny_args(tmp_path / "run"))
    assert train_args.max_steps == 2 and cfg.widths == [8, 8]
    train.main(train_args, cfg)
    out = tmp_path / "run"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    report = json.loads((out / "eval.json").read_text())
    tiny = report["sets"]["tiny"]
    assert set(tiny["accuracy"]) == set(tiny["balanced_accuracy"]) and len(tiny["accuracy"]) == 40
    assert 0 <= tiny["mean_accuracy"] <= 1 and report["steps"] == 2
    card = (out / "README.md").read_text()
    assert card.startswith("---") and "balanced accuracy" in card.lower() and "Wearing_Hat" in card
    assert "license: mit" in card and "non-commercial" not in card  # procedural data: no CelebA terms
    assert "samples/s in " in card and "with channels_last" in card  # issue 26: speed and precision on the card
    # the same card for a model trained on CelebA states the data's licence
    cfg.data = "celeba"
    train.write_model_card(train_args, cfg, report, tmp_path / "celeba-card.md")
    celeba = (tmp_path / "celeba-card.md").read_text()
    assert "license_name: celeba-research-only" in celeba and "non-commercial research purposes only" in celeba
    model = AttributeClassifier.from_pretrained(out)
    assert model.config.image_size == 16

    # a finished run ships without its training state unless asked to keep it
    assert not (out / "state").exists() and not (out / "checkpoint.pt").exists()
    train.main(*train.parse_args([*_tiny_args(out), "--keep_checkpoint"]))
    assert (out / "state" / "trainer.json").is_file()
    # --resume continues from the saved training state instead of starting again
    train_args, cfg = train.parse_args([*_tiny_args(out), "--max_steps", "3", "--resume"])
    train.main(train_args, cfg)
    assert json.loads((out / "eval.json").read_text())["steps"] == 3

    # --init_from fine-tunes: the run starts from the saved weights (zero steps leave them as they were)
    tuned = tmp_path / "tuned"
    train.main(*train.parse_args([*_tiny_args(tuned), "--max_steps", "0", "--init_from", str(out)]))
    before, after = AttributeClassifier.from_pretrained(out), AttributeClassifier.from_pretrained(tuned)
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert f"fine-tuned from `{out}`" in (tuned / "README.md").read_text()
    with pytest.raises(SystemExit, match="architecture"):
        train.main(*train.parse_args([*_tiny_args(tmp_path / "bad"), "--widths", "8", "16", "--init_from", str(out)]))


@pytest.mark.skipif(importlib.util.find_spec("sketchface.data.procedural") is None, reason="procedural faces missing")
def test_training_script_on_procedural_faces(tmp_path):
    train = load_script("classifier")
    args = _tiny_args(tmp_path / "proc")
    train_args, cfg = train.parse_args([*args, "--train_samples", "32", "--eval_samples", "8"])
    assert cfg.data == "procedural"
    train.main(train_args, cfg)
    report = json.loads((tmp_path / "proc" / "eval.json").read_text())
    assert set(report["sets"]) == {"procedural-celeba", "procedural-balanced", "procedural-celeba+noise0.03"}
    assert "+noise0.03` is the first set again" in (tmp_path / "proc" / "README.md").read_text()


CELEBA_MINI = ROOT / ".." / "shared" / "data" / "celeba-mini"


@pytest.mark.skipif(not (CELEBA_MINI / "list_attr_celeba.txt").is_file(), reason="CelebA-mini not present")
def test_training_script_on_celeba_mini(tmp_path):
    train = load_script("classifier")
    args = [*_tiny_args(tmp_path / "celeba"), "--data", f"celeba:{CELEBA_MINI}", "--no-cache", "--pos_weight"]
    train.main(*train.parse_args(args))
    report = json.loads((tmp_path / "celeba" / "eval.json").read_text())
    assert set(report["sets"]) == {"celeba-valid", "celeba-test", "celeba-valid+noise0.03"}
    assert report["sets"]["celeba-test"]["num_samples"] > 50


def test_training_script_on_celeba_hq_and_its_data_flags(tmp_path, capsys):
    from tests.real_faces import write_celeba_hq_layout

    hq = write_celeba_hq_layout(tmp_path / "hq")
    train = load_script("classifier")
    out = tmp_path / "run"
    train_args, cfg = train.parse_args(
        [*_tiny_args(out), "--batch_size", "4", "--data", f"celeba-hq:{hq}", "--pool_size", "4"]
    )
    assert (cfg.data, cfg.data_root, cfg.cache) == ("celeba-hq", str(hq), None)
    report = train.main(train_args, cfg)
    # the train split's 6 photos are more than --pool_size 4: streamed; held out on the valid and test splits
    assert report["steps"] == 2 and report["train_size"] == 6 and report["data_mode"] == "stream"
    sets = json.loads((out / "eval.json").read_text())["sets"]
    assert set(sets) == {"celeba-hq-valid", "celeba-hq-test", "celeba-hq-valid+noise0.03"}
    assert sets["celeba-hq-valid"]["num_samples"] == 2 and sets["celeba-hq-test"]["num_samples"] == 4
    assert AttributeClassifier.from_pretrained(out).config.image_size == 16
    card = (out / "README.md").read_text()
    assert "CelebA-HQ in the CelebAMask-HQ layout" in card and "6 images, streamed by DataLoader workers" in card
    assert "license_name: celeba-research-only" in card and "non-commercial research purposes only" in card
    assert "| celeba-hq-test | 4 |" in card
    # the default --pool_size reads these few photos into memory
    args = [*_tiny_args(tmp_path / "pool"), "--batch_size", "4", "--data", "celeba-hq", "--data_root", str(hq)]
    small = train.main(*train.parse_args([*args, "--max_steps", "1", "--eval_noise", "0"]))
    assert small["data_mode"] == "pool" and set(small["sets"]) == {"celeba-hq-valid", "celeba-hq-test"}

    # an image folder has no labels to learn from: refused, saying why and what to use
    for bad, message in [
        (["--data", f"folder:{tmp_path}"], "no attribute labels, and the classifier cannot learn"),
        (["--data", "folder", "--data_root", str(tmp_path)], "--data celeba-hq or --data celeba"),
        (["--data", "celeba-hq"], "--data celeba-hq needs --data_root PATH"),
    ]:
        with pytest.raises(SystemExit):
            train.parse_args(bad)
        assert message in capsys.readouterr().err
    assert train.parse_args(["--no-cache"])[1].cache is False and train.parse_args(["--cache"])[1].cache is True
